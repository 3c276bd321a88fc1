#include "runtime/seccomp-compile.h"

#include <linux/filter.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>

#include "basic/fnv.h"
#include "basic/fs-util.h"
#include "basic/unique.h"

namespace berth::runtime {

namespace {

uint32_t to_scmp_action(SeccompAction a, int err) {
    switch (a) {
        case SeccompAction::Allow:
            return SCMP_ACT_ALLOW;
        case SeccompAction::Errno:
            return SCMP_ACT_ERRNO(static_cast<uint16_t>(err));
        case SeccompAction::Kill:
            return SCMP_ACT_KILL_THREAD;
        case SeccompAction::KillProcess:
            return SCMP_ACT_KILL_PROCESS;
        case SeccompAction::Trap:
            return SCMP_ACT_TRAP;
        case SeccompAction::Trace:
            return SCMP_ACT_TRACE(static_cast<uint16_t>(err));
        case SeccompAction::Log:
            return SCMP_ACT_LOG;
    }
    return SCMP_ACT_KILL_PROCESS;
}

scmp_compare to_scmp_op(SeccompOp op) {
    switch (op) {
        case SeccompOp::NotEqual:
            return SCMP_CMP_NE;
        case SeccompOp::LessThan:
            return SCMP_CMP_LT;
        case SeccompOp::LessEqual:
            return SCMP_CMP_LE;
        case SeccompOp::Equal:
            return SCMP_CMP_EQ;
        case SeccompOp::GreaterEqual:
            return SCMP_CMP_GE;
        case SeccompOp::GreaterThan:
            return SCMP_CMP_GT;
        case SeccompOp::MaskedEqual:
            return SCMP_CMP_MASKED_EQ;
    }
    return SCMP_CMP_EQ;
}

// FNV-1a, 64 bits: only names the cache entry. Correctness does not rest on it: the full key is
// stored next to the program and compared before the program is used. (A cryptographic hash
// here cost the start path all of libcrypto: loading it and initialising OpenSSL.)
using berth::fnv1a64;  // basic/fnv.h

void release_ctx(void* ctx) { seccomp_release(ctx); }

Result<std::vector<unsigned char>> build(SeccompAction default_action, int default_errno,
                                         const std::vector<SeccompRule>& rules, SeccompAbis abis) {
    scmp_filter_ctx raw = seccomp_init(to_scmp_action(default_action, default_errno));
    if (!raw) return fail(ENOMEM, "seccomp_init");
    std::unique_ptr<void, decltype(&release_ctx)> ctx(raw, release_ctx);
    // We install the program ourselves; libseccomp must not touch no_new_privs.
    seccomp_attr_set(raw, SCMP_FLTATR_CTL_NNP, 0);
    // A call through an ABI the filter does not admit (x32, or i386 with a native-only profile)
    // kills the whole process, not one thread of it (libseccomp's default), which could leave a
    // multi-threaded program hanging.
    seccomp_attr_set(raw, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
    if (abis == SeccompAbis::NativeAndCompat && *seccomp_compat_abi()) {
        // libseccomp resolves "x86" for the profile name "SCMP_ARCH_X86".
        std::string name = std::string(seccomp_compat_abi()).substr(std::string_view("SCMP_ARCH_").size());
        std::transform(name.begin(), name.end(), name.begin(),
                       [](unsigned char c) { return std::tolower(c); });
        uint32_t compat = seccomp_arch_resolve_name(name.c_str());
        // Rules added below are translated for every ABI in the filter, by syscall name.
        if (int rc = compat ? seccomp_arch_add(raw, compat) : -EINVAL; rc < 0 && rc != -EEXIST)
            return fail(-rc, "seccomp: admit the {} ABI", seccomp_compat_abi());
    }
    // A binary search tree of syscall numbers: constant-ish cost per syscall for long allow-lists.
    seccomp_attr_set(raw, SCMP_FLTATR_CTL_OPTIMIZE, 2);
    for (const auto& rule : rules) {
        uint32_t action = to_scmp_action(rule.action, rule.errno_ret);
        if (action == to_scmp_action(default_action, default_errno)) continue;
        std::vector<scmp_arg_cmp> cmps;
        for (const auto& a : rule.args) {
            scmp_arg_cmp c{};
            c.arg = a.index;
            c.op = to_scmp_op(a.op);
            c.datum_a = a.value;
            c.datum_b = a.value_two;
            cmps.push_back(c);
        }
        for (const auto& name : rule.names) {
            int nr = seccomp_syscall_resolve_name(name.c_str());
            if (nr == __NR_SCMP_ERROR) continue;  // not on this architecture
            int rc = seccomp_rule_add_array(raw, action, nr, static_cast<unsigned>(cmps.size()),
                                            cmps.empty() ? nullptr : cmps.data());
            // -EEXIST: an identical rule exists (profiles repeat names across capability rules).
            if (rc < 0 && rc != -EEXIST && rc != -EACCES) return fail(-rc, "seccomp rule for '{}'", name);
        }
    }
    UniqueFd mem(::memfd_create("berth-seccomp", MFD_CLOEXEC));
    if (!mem) return fail_errno("memfd_create");
    int rc = seccomp_export_bpf(raw, mem.get());
    if (rc < 0) return fail(-rc, "seccomp_export_bpf");
    off_t size = ::lseek(mem.get(), 0, SEEK_END);
    if (size <= 0) return fail(EIO, "seccomp_export_bpf produced no program");
    std::vector<unsigned char> out(static_cast<size_t>(size));
    if (::pread(mem.get(), out.data(), out.size(), 0) != size) return fail_errno("read seccomp program");
    return out;
}

}  // namespace

Result<SeccompProgram> compile_seccomp(SeccompAction default_action, int default_errno,
                                       const std::vector<SeccompRule>& rules, const std::string& cache_dir,
                                       SeccompAbis abis) {
    SeccompProgram program;
    std::string key, key_path;
    if (!cache_dir.empty()) {
        const scmp_version* v = seccomp_version();
        key = serialize_seccomp(default_action, default_errno, rules) +
              fmt::format("libseccomp {}.{}.{}\n", v->major, v->minor, v->micro) +
              fmt::format("abis {} badarch kill-process\n", static_cast<int>(abis));
        const std::string base = path_join(cache_dir, fmt::format("{:016x}", fnv1a64(key)));
        program.cache_path = base + ".bpf";
        key_path = base + ".key";
        if (auto cached_key = read_file(key_path); cached_key && *cached_key == key) {
            if (auto cached = read_file(program.cache_path);
                cached && !cached->empty() && cached->size() % sizeof(sock_filter) == 0) {
                program.bpf.assign(cached->begin(), cached->end());
                return program;
            }
        }
    }
    program.bpf = BERTH_TRY_CTX(build(default_action, default_errno, rules, abis), "compile seccomp filter");
    if (!program.cache_path.empty()) {
        // A cache write failure only costs speed next time. The key goes last: an entry is used
        // only once both files are complete (each is replaced atomically).
        if (mkdir_p(cache_dir, 0700) &&
            write_file_atomic(
                program.cache_path,
                std::string_view(reinterpret_cast<const char*>(program.bpf.data()), program.bpf.size()),
                0600))
            (void)write_file_atomic(key_path, key, 0600);
    }
    return program;
}

int install_seccomp(const unsigned char* bpf, size_t size) {
    struct sock_fprog prog {};
    prog.len = static_cast<unsigned short>(size / sizeof(struct sock_filter));
    prog.filter = reinterpret_cast<struct sock_filter*>(const_cast<unsigned char*>(bpf));
    if (::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0) return -errno;
    return 0;
}

}  // namespace berth::runtime
