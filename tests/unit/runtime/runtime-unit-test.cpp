// Pure logic of the runtime: capability sets, seccomp profiles, identity, environment, the mount
// plan, cgroup writes, user-namespace ranges, generated /etc files, runtime state.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <functional>

#include "basic/fs-util.h"
#include "basic/unique.h"
#include "runtime/capabilities.h"
#include "runtime/cgroup.h"
#include "runtime/environment.h"
#include "runtime/etc-files.h"
#include "runtime/identity.h"
#include "runtime/mount-plan.h"
#include "runtime/seccomp-compile.h"
#include "runtime/seccomp-profile.h"
#include "runtime/state.h"
#include "runtime/user-namespace.h"
#include "test-util.h"

namespace berth::runtime {
namespace {

bool has_rule(const std::vector<SeccompRule>& rules, const std::string& name, SeccompAction action,
              int err = -1) {
    for (const auto& r : rules)
        if (r.action == action && (err < 0 || r.errno_ret == err) &&
            std::find(r.names.begin(), r.names.end(), name) != r.names.end())
            return true;
    return false;
}

TEST(Capabilities, DefaultSetIsDockersFourteenWithoutMknod) {
    uint64_t m = default_capabilities();
    EXPECT_EQ(__builtin_popcountll(m), 13);
    EXPECT_EQ(capability_mask_hex(m), "00000000a00425fb");
    EXPECT_FALSE(m & (1ULL << CAP_MKNOD));
}

TEST(Capabilities, AddAndDropAdjustTheBoundingSetAndNonRootGetsNoEffective) {
    config::Security s;
    s.capabilities_add = {"CAP_SYS_ADMIN", "net_admin"};
    s.capabilities_drop = {"CAP_CHOWN"};
    auto root = compute_capabilities(s, true);
    ASSERT_TRUE(root);
    EXPECT_TRUE(root->bounding & (1ULL << CAP_SYS_ADMIN));
    EXPECT_TRUE(root->bounding & (1ULL << CAP_NET_ADMIN));
    EXPECT_FALSE(root->bounding & (1ULL << CAP_CHOWN));
    EXPECT_EQ(root->effective, root->bounding);
    EXPECT_EQ(root->inheritable, 0u);
    auto user = compute_capabilities(s, false);
    ASSERT_TRUE(user);
    EXPECT_EQ(user->effective, 0u);
    EXPECT_EQ(user->permitted, 0u);
    s.capabilities_drop = {"ALL"};
    EXPECT_EQ(compute_capabilities(s, true)->bounding, (1ULL << CAP_SYS_ADMIN) | (1ULL << CAP_NET_ADMIN));
    s.capabilities_add.clear();
    EXPECT_EQ(compute_capabilities(s, true)->bounding, 0u);
}

TEST(Capabilities, UnknownNameIsRejected) {
    config::Security s;
    s.capabilities_add = {"CAP_FLY"};
    auto r = compute_capabilities(s, true);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().what().find("CAP_FLY"), std::string::npos);
}

TEST(Seccomp, DefaultProfileAnswersClone3WithEnosysAndDeniesMountWithoutSysAdmin) {
    auto rules = resolve_seccomp_rules(default_seccomp_profile(), default_capabilities(), "6.1.0");
    EXPECT_TRUE(has_rule(rules, "clone3", SeccompAction::Errno, 38));
    EXPECT_FALSE(has_rule(rules, "mount", SeccompAction::Allow));
    EXPECT_FALSE(has_rule(rules, "unshare", SeccompAction::Allow));
    EXPECT_FALSE(has_rule(rules, "kexec_load", SeccompAction::Allow));
    EXPECT_TRUE(has_rule(rules, "chroot", SeccompAction::Allow));
    EXPECT_TRUE(has_rule(rules, "ptrace", SeccompAction::Allow));  // minKernel 4.8
    EXPECT_TRUE(has_rule(rules, "read", SeccompAction::Allow));
}

TEST(Seccomp, SysAdminUnlocksMountAndPlainClone3) {
    uint64_t caps = default_capabilities() | (1ULL << CAP_SYS_ADMIN);
    auto rules = resolve_seccomp_rules(default_seccomp_profile(), caps, "6.1.0");
    EXPECT_TRUE(has_rule(rules, "mount", SeccompAction::Allow));
    EXPECT_TRUE(has_rule(rules, "clone3", SeccompAction::Allow));
    EXPECT_FALSE(has_rule(rules, "clone3", SeccompAction::Errno));
}

TEST(Seccomp, ParsesDockerProfilesWithCapabilityConditions) {
    auto p = parse_seccomp_profile(R"({
        "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
        "syscalls": [
          {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
          {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
          {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
           "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
          {"names": ["arm_only"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["arm64"]}}
        ]})",
                                   "test.json");
    ASSERT_TRUE(p) << p.error().what();
    EXPECT_EQ(p->rules.size(), 3u);
    auto without = resolve_seccomp_rules(*p, default_capabilities(), "6.1");
    EXPECT_FALSE(has_rule(without, "mount", SeccompAction::Allow));
    auto with = resolve_seccomp_rules(*p, 1ULL << CAP_SYS_ADMIN, "6.1");
    EXPECT_TRUE(has_rule(with, "mount", SeccompAction::Allow));
    EXPECT_EQ(p->rules[2].args.at(0).value, 8u);
}

TEST(Seccomp, AcceptsAnOciConfigWrappingTheProfile) {
    auto p = parse_seccomp_profile(R"({"linux": {"seccomp": {"defaultAction": "SCMP_ACT_ALLOW"}}})",
                                   "config.json");
    ASSERT_TRUE(p) << p.error().what();
    EXPECT_EQ(p->default_action, SeccompAction::Allow);
}

TEST(Seccomp, BrokenProfilesNameTheFileAndTheProblem) {
    auto bad_json = parse_seccomp_profile("{ nope", "/etc/x.json");
    ASSERT_FALSE(bad_json);
    EXPECT_NE(bad_json.error().what().find("/etc/x.json"), std::string::npos);
    auto bad_action = parse_seccomp_profile(R"({"defaultAction": "SCMP_ACT_MAYBE"})", "y.json");
    ASSERT_FALSE(bad_action);
    EXPECT_NE(bad_action.error().what().find("SCMP_ACT_MAYBE"), std::string::npos);
    auto bad_op = parse_seccomp_profile(
        R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["x"], "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 9, "value": 1, "op": "SCMP_CMP_EQ"}]}]})",
        "z.json");
    ASSERT_FALSE(bad_op);
    EXPECT_NE(bad_op.error().what().find("syscalls[0]"), std::string::npos);
}

TEST(Seccomp, CompiledProgramIsCachedAndReused) {
    char dir[] = "/tmp/berth-seccomp-XXXXXX";
    ASSERT_TRUE(::mkdtemp(dir));
    const auto& p = default_seccomp_profile();
    auto rules = resolve_seccomp_rules(p, default_capabilities(), "6.1.0");
    auto first = compile_seccomp(p.default_action, p.default_errno, rules, dir);
    ASSERT_TRUE(first) << first.error().what();
    EXPECT_GT(first->bpf.size(), 100u * 8);
    EXPECT_TRUE(path_exists(first->cache_path));
    auto second = compile_seccomp(p.default_action, p.default_errno, rules, dir);
    ASSERT_TRUE(second);
    EXPECT_EQ(first->bpf, second->bpf);
    EXPECT_EQ(first->cache_path, second->cache_path);
    auto other = compile_seccomp(
        p.default_action, p.default_errno,
        resolve_seccomp_rules(p, default_capabilities() | (1ULL << CAP_SYS_ADMIN), "6.1.0"), dir);
    ASSERT_TRUE(other);
    EXPECT_NE(other->cache_path, first->cache_path);
    (void)remove_tree(dir);
}

TEST(Seccomp, JsonProfilesAdmitTheCompatAbiOnlyWhenTheyListIt) {
    EXPECT_EQ(default_seccomp_profile().abis, SeccompAbis::NativeAndCompat);
    auto plain = parse_seccomp_profile(R"({"defaultAction": "SCMP_ACT_ALLOW"})", "a.json");
    ASSERT_TRUE(plain);
    EXPECT_EQ(plain->abis, SeccompAbis::Native);
    if (!*seccomp_compat_abi()) GTEST_SKIP() << "no compat ABI on this architecture";
    auto listed = parse_seccomp_profile(
        fmt::format(R"({{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["{}", "{}"]}})",
                    seccomp_native_abi(), seccomp_compat_abi()),
        "b.json");
    ASSERT_TRUE(listed);
    EXPECT_EQ(listed->abis, SeccompAbis::NativeAndCompat);
    auto mapped = parse_seccomp_profile(fmt::format(R"({{"defaultAction": "SCMP_ACT_ALLOW",
                        "archMap": [{{"architecture": "{}", "subArchitectures": ["{}", "SCMP_ARCH_X32"]}}]}})",
                                                    seccomp_native_abi(), seccomp_compat_abi()),
                                        "c.json");
    ASSERT_TRUE(mapped);
    EXPECT_EQ(mapped->abis, SeccompAbis::NativeAndCompat);
}

#if defined(__x86_64__)
// A system call through the i386 ABI (int $0x80) and through the x32 ABI, from 64-bit code.
long i386_syscall(long nr, long a = 0) {
    long ret;
    asm volatile("int $0x80"
                 : "=a"(ret)
                 : "a"(nr), "b"(a), "c"(0), "d"(0)
                 : "r8", "r9", "r10", "r11", "memory");
    return ret;
}
long x32_syscall(long nr) {
    long ret;
    asm volatile("syscall" : "=a"(ret) : "a"(nr | 0x40000000L) : "rcx", "r11", "memory");
    return ret;
}
constexpr long kI386Getpid = 20, kI386Personality = 136, kI386KexecLoad = 283, kX32Getpid = 39;

// Runs `body` in a child under `program` (or none); its wait status.
int under_filter(const SeccompProgram* program, const std::function<int()>& body) {
    pid_t pid = ::fork();
    if (pid == 0) {
        // A kernel without IA-32 emulation (ia32_emulation=0, or a sandboxing hypervisor) answers
        // int $0x80 with SIGSEGV: let it kill this child quietly (the test then skips) instead of
        // ASan's handler reporting it as an error. A raw rt_sigaction, which ASan does not
        // intercept, sets the default action back.
        struct {
            void (*handler)(int);
            unsigned long flags;
            void (*restorer)();
            unsigned long mask;
        } default_action = {SIG_DFL, 0, nullptr, 0};
        ::syscall(SYS_rt_sigaction, SIGSEGV, &default_action, nullptr, sizeof default_action.mask);
        if (program) {
            ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
            if (install_seccomp(program->bpf.data(), program->bpf.size()) < 0) ::_exit(100);
        }
        ::_exit(body());
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    return status;
}

bool exited_zero(int status) { return WIFEXITED(status) && WEXITSTATUS(status) == 0; }
bool killed_by_sigsys(int status) { return WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS; }

// The decision in docs/SECURITY.md: 32-bit x86 programs run under the same rules as 64-bit ones
// (Docker's amd64 profile does the same); x32 calls, which Docker also admits, kill the process.
TEST(Seccomp, DefaultFilterRunsI386CallsUnderTheSameRulesAndKillsX32Calls) {
    auto getpid_i386 = [] { return i386_syscall(kI386Getpid) == ::syscall(SYS_getpid) ? 0 : 1; };
    if (!exited_zero(under_filter(nullptr, getpid_i386))) GTEST_SKIP() << "the kernel runs no i386 code";
    const auto& p = default_seccomp_profile();
    auto rules = resolve_seccomp_rules(p, default_capabilities(), "6.1.0");
    auto both = compile_seccomp(p.default_action, p.default_errno, rules, "", p.abis);
    ASSERT_TRUE(both) << both.error().what();
    EXPECT_TRUE(exited_zero(under_filter(&*both, getpid_i386)));
    // Denied by the allow-list, and by an argument rule (personality: only harmless personas).
    EXPECT_TRUE(
        exited_zero(under_filter(&*both, [] { return i386_syscall(kI386KexecLoad) == -EPERM ? 0 : 1; })));
    EXPECT_TRUE(exited_zero(under_filter(&*both, [] {
        bool query_ok = i386_syscall(kI386Personality, 0xffffffffL) >= 0;
        bool no_randomize_denied = i386_syscall(kI386Personality, 0x0040000L) == -EPERM;
        return query_ok && no_randomize_denied ? 0 : 1;
    })));
    EXPECT_TRUE(killed_by_sigsys(under_filter(&*both, [] { return x32_syscall(kX32Getpid) >= 0 ? 0 : 0; })));
    // A native-only filter (a JSON profile that does not list the i386 ABI) kills i386 calls.
    auto native = compile_seccomp(p.default_action, p.default_errno, rules, "", SeccompAbis::Native);
    ASSERT_TRUE(native);
    EXPECT_TRUE(killed_by_sigsys(under_filter(&*native, getpid_i386)));
    EXPECT_TRUE(exited_zero(under_filter(&*native, [] { return ::syscall(SYS_getpid) > 0 ? 0 : 1; })));
}

// TIOCSTI on the process's own controlling terminal (which the tty layer itself allows) is denied
// by the default filter, also with garbage in the upper 32 bits of the request (the kernel reads
// an unsigned int); every other ioctl on the terminal still works.
TEST(Seccomp, DefaultFilterDeniesTiocstiAndAllowsOtherTerminalIoctls) {
    const auto& p = default_seccomp_profile();
    auto rules = resolve_seccomp_rules(p, default_capabilities(), "6.1.0");
    auto program = compile_seccomp(p.default_action, p.default_errno, rules, "", p.abis);
    ASSERT_TRUE(program) << program.error().what();
    int master = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    ASSERT_GE(master, 0);
    ASSERT_EQ(::grantpt(master), 0);
    ASSERT_EQ(::unlockpt(master), 0);
    std::string slave_name = ::ptsname(master);
    // In the child: a session whose controlling terminal is the pty; 0 = the request was denied.
    auto push = [&](unsigned long request) {
        return [request, slave_name] {
            ::setsid();
            int slave = ::open(slave_name.c_str(), O_RDWR);
            if (slave < 0 || ::ioctl(slave, TIOCSCTTY, 0) < 0) return 2;
            char c = '!';
            long rc = ::syscall(SYS_ioctl, slave, request, &c);
            struct winsize ws {};
            if (::ioctl(slave, TIOCGWINSZ, &ws) < 0) return 3;
            return rc == -1 && errno == EPERM ? 0 : 1;
        };
    };
    int control = under_filter(nullptr, push(TIOCSTI));
    if (WIFEXITED(control) && WEXITSTATUS(control) == 0)
        GTEST_SKIP() << "this kernel refuses TIOCSTI itself (dev.tty.legacy_tiocsti = 0)";
    EXPECT_EQ(WEXITSTATUS(control), 1) << "the unfiltered control could not push a byte";
    EXPECT_TRUE(exited_zero(under_filter(&*program, push(TIOCSTI))));
    EXPECT_TRUE(exited_zero(under_filter(&*program, push(0x100000000UL | TIOCSTI))));
    // The neighbouring request (TIOCGWINSZ, 0x5413) passes the filter.
    int other = under_filter(&*program, push(TIOCGWINSZ));
    EXPECT_TRUE(WIFEXITED(other) && WEXITSTATUS(other) == 1);
    ::close(master);
}
#endif

TEST(Seccomp, UsesTheCachedProgramOnlyWhenItsStoredKeyMatches) {
    char dir[] = "/tmp/berth-seccomp-XXXXXX";
    ASSERT_TRUE(::mkdtemp(dir));
    ScopeExit cleanup([&] { (void)remove_tree(dir); });
    const auto& p = default_seccomp_profile();
    auto rules = resolve_seccomp_rules(p, default_capabilities(), "6.1.0");
    auto first = compile_seccomp(p.default_action, p.default_errno, rules, dir);
    ASSERT_TRUE(first) << first.error().what();
    ASSERT_EQ(first->cache_path.substr(first->cache_path.size() - 4), ".bpf");
    const std::string key_path = first->cache_path.substr(0, first->cache_path.size() - 4) + ".key";
    auto key = read_file(key_path);
    ASSERT_TRUE(key) << "the key is stored next to the program";
    EXPECT_NE(key->find("libseccomp "), std::string::npos);

    // A (different, well-formed) program under the matching key is what the next start loads:
    // proof that the cache is read rather than recompiled.
    const std::string marker(8, '\x06');  // one sock_filter: BPF_RET
    ASSERT_TRUE(write_file_atomic(first->cache_path, marker, 0600));
    auto cached = compile_seccomp(p.default_action, p.default_errno, rules, dir);
    ASSERT_TRUE(cached);
    EXPECT_EQ(std::string(cached->bpf.begin(), cached->bpf.end()), marker);

    // The same file under a key that differs (another profile whose hash collided) is not used:
    // the program is rebuilt and the entry rewritten for this key.
    ASSERT_TRUE(write_file_atomic(key_path, "some other profile\n", 0600));
    auto rebuilt = compile_seccomp(p.default_action, p.default_errno, rules, dir);
    ASSERT_TRUE(rebuilt);
    EXPECT_EQ(rebuilt->bpf, first->bpf);
    EXPECT_EQ(read_file(key_path).value_or(""), *key);
    EXPECT_EQ(read_file(first->cache_path).value_or("").size(), first->bpf.size());
}

const char* kPasswd = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n";
const char* kGroup = "root:x:0:\napp:x:1000:\nextra:x:1001:app\nwheel:x:10:\n";

TEST(Identity, ResolvesNamesFromTheContainersFiles) {
    auto id = resolve_identity("app", {}, kPasswd, kGroup);
    ASSERT_TRUE(id);
    EXPECT_EQ(id->uid, 1000u);
    EXPECT_EQ(id->gid, 1000u);
    EXPECT_EQ(id->groups, std::vector<gid_t>{1001});
    EXPECT_EQ(id->home, "/home/app");
    auto with_group = resolve_identity("app:wheel", {"root"}, kPasswd, kGroup);
    ASSERT_TRUE(with_group);
    EXPECT_EQ(with_group->gid, 10u);
    EXPECT_EQ(with_group->groups, (std::vector<gid_t>{0, 1001}));
}

TEST(Identity, NumericUidsNeedNoPasswdEntryButUnknownNamesFail) {
    auto id = resolve_identity("4242", {}, kPasswd, kGroup);
    ASSERT_TRUE(id);
    EXPECT_EQ(id->uid, 4242u);
    EXPECT_EQ(id->gid, 0u);
    EXPECT_EQ(id->home, "/");
    auto root = resolve_identity("", {}, kPasswd, kGroup);
    ASSERT_TRUE(root);
    EXPECT_EQ(root->home, "/root");
    auto bad = resolve_identity("ghost", {}, kPasswd, kGroup);
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.error().what().find("unknown user 'ghost'"), std::string::npos);
    EXPECT_FALSE(resolve_identity("app:nogroup", {}, kPasswd, kGroup));
}

// Ids from the image's files at the edges of uid_t (CVE-2024-40635 class): uid_t(-1) is "leave
// unchanged" to setresuid and 2^32 truncates to 0, so either would have run the payload as root.
TEST(Identity, IdsThatOverflowUidTAreRefusedNeverRoot) {
    const std::string passwd =
        "minus:x:4294967295:1000::/:/bin/sh\nwrap:x:4294967296:1000::/:/bin/sh\n"
        "wrapgid:x:1000:4294967296::/:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n"
        "digits10:x:0:0::/:/bin/sh\n";
    const std::string group = "app:x:1000:\nwrapgroup:x:4294967296:app\nminusgroup:x:4294967295:app\n";
    for (const char* user : {"minus", "wrap", "wrapgid", "app:wrapgroup", "app:minusgroup", "4294967295",
                             "18446744073709551616", "1000:4294967295"}) {
        SCOPED_TRACE(user);
        EXPECT_FALSE(resolve_identity(user, {}, passwd, group));
    }
    EXPECT_FALSE(resolve_identity("app", {"wrapgroup"}, passwd, group));
    auto app = resolve_identity("app", {}, passwd, group);  // the overflowing groups are not joined
    ASSERT_TRUE(app);
    EXPECT_EQ(app->uid, 1000u);
    EXPECT_TRUE(app->groups.empty());
    auto high = resolve_identity("2147483648:4294967294", {}, passwd, group);
    ASSERT_TRUE(high);
    EXPECT_EQ(high->uid, 2147483648u);
    EXPECT_EQ(high->gid, 4294967294u);
}

// The host reads the container's /etc/passwd and /etc/group (berth run, berth exec --user): a
// FIFO there must not block the read, a device must not be opened, a symlink must not lead to a
// host file. SIGALRM ends the test binary if a read blocks.
TEST(Identity, ContainerFilesThatAreNotRegularFilesAreRefusedAndSymlinksStayInside) {
    test::TempDir dir("berth-identity");
    const std::string root = dir / "root";
    ASSERT_TRUE(mkdir_p(root + "/etc"));
    ASSERT_TRUE(write_file(dir / "host-passwd", "hostonly:x:4321:4321::/:/bin/sh\n"));
    UniqueFd root_fd(::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    ASSERT_TRUE(root_fd);
    ::alarm(20);

    EXPECT_EQ(read_container_file(root_fd.get(), "/etc/passwd").value_or("<error>"), "");  // missing
    ASSERT_TRUE(write_file(root + "/etc/passwd", kPasswd));
    EXPECT_EQ(read_container_file(root_fd.get(), "/etc/passwd").value_or("<error>"), kPasswd);

    ASSERT_EQ(::mkfifo((root + "/etc/group").c_str(), 0644), 0);
    auto fifo = read_container_file(root_fd.get(), "/etc/group");
    ASSERT_FALSE(fifo);
    EXPECT_EQ(fifo.error().message, "container's '/etc/group' is a FIFO, not a regular file");
    ASSERT_EQ(::unlink((root + "/etc/group").c_str()), 0);

    ASSERT_TRUE(mkdir_p(root + "/etc/group"));
    auto directory = read_container_file(root_fd.get(), "/etc/group");
    ASSERT_FALSE(directory);
    EXPECT_NE(directory.error().message.find("is a directory"), std::string::npos)
        << directory.error().what();
    ASSERT_EQ(::rmdir((root + "/etc/group").c_str()), 0);

    // A symlink to a device resolves inside the tree; here the tree's /dev/zero is a FIFO too
    // (mknod needs root; the check is the same for every non-regular file).
    ASSERT_TRUE(mkdir_p(root + "/dev"));
    ASSERT_EQ(::mkfifo((root + "/dev/zero").c_str(), 0644), 0);
    ASSERT_EQ(::symlink("/dev/zero", (root + "/etc/group").c_str()), 0);
    auto zero = read_container_file(root_fd.get(), "/etc/group");
    ASSERT_FALSE(zero);
    EXPECT_NE(zero.error().message.find("is a FIFO"), std::string::npos) << zero.error().what();
    ASSERT_EQ(::unlink((root + "/etc/group").c_str()), 0);

    // Symlinks to a host file, absolute or climbing out: resolved inside, where nothing is.
    std::string climb = "../../../../../../../..";
    for (const std::string& to : {dir / "host-passwd", climb + (dir / "host-passwd"),
                                  std::string("/proc/self/root") + (dir / "host-passwd")}) {
        SCOPED_TRACE(to);
        ASSERT_EQ(::unlink((root + "/etc/passwd").c_str()), 0);
        ASSERT_EQ(::symlink(to.c_str(), (root + "/etc/passwd").c_str()), 0);
        auto text = read_container_file(root_fd.get(), "/etc/passwd");
        EXPECT_EQ(text.value_or(""), "") << "read a host file through the container's symlink";
    }
    ::alarm(0);
}

TEST(Environment, FilesParseWithCommentsQuotesAndLineNumbers) {
    auto env = parse_environment_file("# c\n\nA=1\nexport B=\"two words\"\nC='x'\n", "f.env");
    ASSERT_TRUE(env);
    ASSERT_EQ(env->size(), 3u);
    EXPECT_EQ((*env)[1].second, "two words");
    auto bad = parse_environment_file("A=1\nnot a line\n", "f.env");
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.error().what().find("f.env:2"), std::string::npos);
}

TEST(Environment, TableOverridesImageDefaultsAndRuntimeAddsItsOwn) {
    EnvironmentInputs in;
    in.image_env = {"PATH=/image/bin", "A=image"};
    in.table = {{"A", "table"}};
    in.hostname = "h";
    in.home = "/root";
    in.tty = true;
    auto env = compose_environment(in);
    ASSERT_TRUE(env);
    auto has = [&](const std::string& kv) { return std::find(env->begin(), env->end(), kv) != env->end(); };
    EXPECT_TRUE(has("A=table"));
    EXPECT_TRUE(has("PATH=/image/bin"));
    EXPECT_TRUE(has("HOME=/root"));
    EXPECT_TRUE(has("HOSTNAME=h"));
    EXPECT_TRUE(has("TERM=xterm"));
    EXPECT_TRUE(has("container=berth"));
}

MountInputs inputs(const config::Declaration& d) {
    MountInputs in;
    in.decl = &d;
    in.root.kind = store::MountSpec::Kind::Overlay;
    in.root.lowerdirs = {"/srv/root"};
    in.upper_on_stage = true;
    in.stage_dir = "/run/berth/.stage";
    in.probe = [](const std::string& p) -> std::optional<bool> {
        if (p == "/srv/root" || p == "/srv/data") return true;
        if (p == "/dev/fuse") return false;
        return std::nullopt;
    };
    return in;
}

TEST(MountPlan, OverlayRootUsesTheStageForAnEphemeralLayer) {
    config::Declaration d;
    auto plan = plan_mounts(inputs(d));
    ASSERT_TRUE(plan) << plan.error().what();
    EXPECT_EQ(plan->root.overlay_options,
              "lowerdir=/srv/root,upperdir=/run/berth/.stage/upper,workdir=/run/berth/.stage/work");
    EXPECT_FALSE(plan->root.assembled);  // no user namespace: the child mounts it by path
}

// Issue #19: secrets go on their own tmpfs at /run/secrets (nosuid, nodev, noexec), after the
// declared mounts (a tmpfs on /run cannot cover it), one Secret op each with its value, mode and
// owner; none of that without secrets.
TEST(MountPlan, SecretsGetAPrivateTmpfsAfterTheDeclaredMounts) {
    config::Declaration d;
    config::Mount run;
    run.type = config::MountType::Tmpfs;
    run.target = "/run";
    d.mounts.push_back(run);
    auto in = inputs(d);
    auto plan = plan_mounts(in);
    ASSERT_TRUE(plan) << plan.error().what();
    for (const auto& op : plan->ops) EXPECT_NE(op.target.rfind("/run/secrets", 0), 0u) << op.target;

    config::Secret db;
    db.name = "db";
    db.target = "/etc/app/db";
    db.mode = 0440;
    db.gid = 7;
    std::vector<SecretValue> secrets = {{db, "v"}};
    in.secrets = &secrets;
    plan = plan_mounts(in);
    ASSERT_TRUE(plan) << plan.error().what();
    auto at = [&](std::string_view target) {
        for (size_t i = 0; i < plan->ops.size(); ++i)
            if (plan->ops[i].target == target) return i;
        return plan->ops.size();
    };
    size_t tmpfs = at("/run/secrets"), secret = at("/etc/app/db");
    ASSERT_LT(tmpfs, plan->ops.size());
    ASSERT_LT(secret, plan->ops.size());
    EXPECT_GT(tmpfs, at("/run"));
    EXPECT_GT(secret, tmpfs);
    EXPECT_EQ(plan->ops[tmpfs].fstype, "tmpfs");
    EXPECT_EQ(plan->ops[tmpfs].flags & (MS_NOSUID | MS_NODEV | MS_NOEXEC), MS_NOSUID | MS_NODEV | MS_NOEXEC);
    const MountOp& op = plan->ops[secret];
    EXPECT_EQ(op.kind, MountOp::Kind::Secret);
    EXPECT_EQ(op.source, "/run/secrets/db");
    EXPECT_EQ(op.data, "v");
    EXPECT_EQ(op.file_mode, 0440u);
    EXPECT_EQ(op.owner_uid, -1);  // the payload's, at Launch
    EXPECT_EQ(op.owner_gid, 7);
}

// Issue #15 item 5: with a user namespace the supervisor assembles the root outside the namespace
// (root-assembly.h), the persistent layer directory as one idmapped mount holding upper and work;
// nothing is left for the child to mount by path, and no "userxattr" (the overlay is the host's).
TEST(MountPlan, AUserNamespacesRootIsAssembledByTheSupervisorFromTheLayerDirectory) {
    config::Declaration d;
    auto in = inputs(d);
    in.user_namespace = true;
    auto plan = plan_mounts(in);
    ASSERT_TRUE(plan) << plan.error().what();
    EXPECT_TRUE(plan->root.assembled);
    EXPECT_TRUE(plan->root.upper_on_stage);
    EXPECT_EQ(plan->root.layer_dir, "");
    in.upper_on_stage = false;
    in.root.lowerdirs = {"/srv/root", "/srv/data"};
    in.root.upperdir = "/var/lib/berth/overlay/snapshots/c-web/upper";
    in.root.workdir = "/var/lib/berth/overlay/snapshots/c-web/work";
    plan = plan_mounts(in);
    ASSERT_TRUE(plan) << plan.error().what();
    EXPECT_TRUE(plan->root.assembled);
    EXPECT_EQ(plan->root.layer_dir, "/var/lib/berth/overlay/snapshots/c-web");
    EXPECT_EQ(plan->root.upper_name, "upper");
    EXPECT_EQ(plan->root.work_name, "work");
    EXPECT_EQ(plan->root.overlay_options.find("userxattr"), std::string::npos) << plan->root.overlay_options;
    // overlayfs wants upper and work on one mount: the idmapped layer directory must hold both.
    in.root.workdir = "/elsewhere/work";
    plan = plan_mounts(in);
    ASSERT_FALSE(plan);
    EXPECT_NE(plan.error().what().find("must be siblings"), std::string::npos) << plan.error().what();
    // A bind root (btrfs snapshot) is assembled too, a block device cannot be.
    in.root = {};
    in.root.kind = store::MountSpec::Kind::Bind;
    in.root.source = "/srv/root";
    plan = plan_mounts(in);
    ASSERT_TRUE(plan) << plan.error().what();
    EXPECT_TRUE(plan->root.assembled);
    in.user_namespace = false;
    EXPECT_FALSE(plan_mounts(in)->root.assembled);
}

TEST(MountPlan, MasksAndReadOnlyPathsComeLastAfterUserMounts) {
    config::Declaration d;
    config::Mount m;
    m.source = "/srv/data";
    m.target = "/data/";
    m.read_only = true;
    d.mounts.push_back(m);
    d.security.devices = {"/dev/fuse"};
    auto plan = plan_mounts(inputs(d));
    ASSERT_TRUE(plan);
    auto& ops = plan->ops;
    auto index = [&](const std::string& target, MountOp::Kind kind) {
        for (size_t i = 0; i < ops.size(); ++i)
            if (ops[i].target == target && ops[i].kind == kind) return static_cast<long>(i);
        return -1L;
    };
    long data = index("/data", MountOp::Kind::BindHost);
    ASSERT_GE(data, 0);
    EXPECT_TRUE(ops[data].read_only);
    EXPECT_GE(index("/dev/fuse", MountOp::Kind::BindHost), 0);
    long kcore = index("/proc/kcore", MountOp::Kind::Mask);
    long sys = index("/proc/sys", MountOp::Kind::ReadOnly);
    EXPECT_GT(kcore, data);
    EXPECT_GT(sys, data);
    EXPECT_GE(index("/sys/firmware", MountOp::Kind::Mask), 0);
    EXPECT_EQ(ops[0].target, "/proc");
}

// Docker's lists (moby oci/defaults.go): masked, and read-only.
TEST(MountPlan, MaskedAndReadOnlyPathsAreDockersAndEveryOneIsPlanned) {
    const std::vector<std::string> docker_masked = {
        "/proc/asound",      "/proc/acpi",          "/proc/interrupts", "/proc/kcore",
        "/proc/keys",        "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
        "/proc/sched_debug", "/proc/scsi",          "/sys/firmware",    "/sys/devices/virtual/powercap"};
    const std::vector<std::string> docker_read_only = {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                                                       "/proc/sysrq-trigger"};
    EXPECT_EQ(masked_paths(), docker_masked);
    EXPECT_EQ(read_only_paths(), docker_read_only);
    config::Declaration d;
    auto plan = plan_mounts(inputs(d));
    ASSERT_TRUE(plan);
    auto count = [&](const std::string& target, MountOp::Kind kind) {
        return std::count_if(plan->ops.begin(), plan->ops.end(),
                             [&](const MountOp& o) { return o.target == target && o.kind == kind; });
    };
    for (const auto& p : docker_masked) EXPECT_EQ(count(p, MountOp::Kind::Mask), 1) << p;
    for (const auto& p : docker_read_only) EXPECT_EQ(count(p, MountOp::Kind::ReadOnly), 1) << p;
    EXPECT_EQ(count("/proc/asound", MountOp::Kind::ReadOnly), 0);  // masked, not just read-only
}

// No device node of the image opens (nodev on the root, whatever its kind), nor one made in /dev
// or left in a volume; the nodes that work are bind mounts of the host's.
TEST(MountPlan, TheRootDevAndVolumesAreNodevAndReadOnlyBindsAreRecursive) {
    config::Declaration d;
    config::Mount ro;
    ro.source = "/srv/data";
    ro.target = "/ro";
    ro.read_only = true;
    d.mounts.push_back(ro);
    config::Mount vol;
    vol.type = config::MountType::Volume;
    vol.source = "cache";
    vol.target = "/cache";
    d.mounts.push_back(vol);
    auto in = inputs(d);
    store::MountSpec bind;
    bind.kind = store::MountSpec::Kind::Bind;
    bind.source = "/srv/data";
    in.volumes["cache"] = bind;
    auto find = [](const MountPlan& plan, const std::string& target) {
        return *std::find_if(plan.ops.begin(), plan.ops.end(),
                             [&](const MountOp& o) { return o.target == target; });
    };
    auto overlay = plan_mounts(in);
    ASSERT_TRUE(overlay) << overlay.error().what();
    EXPECT_TRUE(overlay->root.flags & MS_NODEV);
    MountOp dev = find(*overlay, "/dev");
    EXPECT_EQ(dev.fstype, "tmpfs");
    EXPECT_TRUE(dev.flags & MS_NODEV);
    EXPECT_EQ(find(*overlay, "/dev/null").kind, MountOp::Kind::BindHost);
    EXPECT_EQ(find(*overlay, "/dev/null").source, "/dev/null");
    MountOp r = find(*overlay, "/ro");
    EXPECT_TRUE(r.read_only);
    EXPECT_TRUE(r.recursive);
    EXPECT_FALSE(r.nodev);  // a host path keeps its host mount's flags
    EXPECT_TRUE(find(*overlay, "/cache").nodev);
    in.root = bind;
    auto bound = plan_mounts(in);
    ASSERT_TRUE(bound) << bound.error().what();
    EXPECT_TRUE(bound->root.flags & MS_NODEV);
    store::MountSpec block;
    block.kind = store::MountSpec::Kind::Block;
    block.source = "/dev/fuse";
    block.fstype = "ext4";
    in.root = block;
    auto device = plan_mounts(in);
    ASSERT_TRUE(device) << device.error().what();
    EXPECT_TRUE(device->root.flags & MS_NODEV);
}

TEST(MountPlan, SysfsIsFreshAndReadOnlyUnlessAUserNamespaceSharesTheHostNetwork) {
    config::Declaration d;
    auto in = inputs(d);
    auto plan = plan_mounts(in);
    auto sys =
        std::find_if(plan->ops.begin(), plan->ops.end(), [](const MountOp& o) { return o.target == "/sys"; });
    ASSERT_NE(sys, plan->ops.end());
    EXPECT_EQ(sys->fstype, "sysfs");
    EXPECT_TRUE(sys->flags & MS_RDONLY);
    in.user_namespace = true;
    in.new_network_namespace = false;
    plan = plan_mounts(in);
    sys =
        std::find_if(plan->ops.begin(), plan->ops.end(), [](const MountOp& o) { return o.target == "/sys"; });
    EXPECT_EQ(sys->kind, MountOp::Kind::BindHost);
    EXPECT_TRUE(sys->read_only);
}

TEST(MountPlan, BadSourcesAreNamed) {
    config::Declaration d;
    config::Mount m;
    m.source = "/nope";
    m.target = "/x";
    d.mounts.push_back(m);
    auto plan = plan_mounts(inputs(d));
    ASSERT_FALSE(plan);
    EXPECT_EQ(plan.error().what().rfind("bind source '/nope' does not exist", 0), 0u);
    config::Declaration d2;
    d2.security.devices = {"/dev/nothing"};
    EXPECT_FALSE(plan_mounts(inputs(d2)));
    config::Declaration d3;
    config::Mount rel;
    rel.type = config::MountType::Tmpfs;
    rel.target = "relative";
    d3.mounts.push_back(rel);
    EXPECT_FALSE(plan_mounts(inputs(d3)));
    config::Declaration d4;
    auto in = inputs(d4);
    in.root.lowerdirs = {"/srv/a,b"};
    EXPECT_FALSE(plan_mounts(in));
}

TEST(MountPlan, VolumesAreBoundFromTheStoreOrMountedFromTheirDevice) {
    config::Declaration d;
    config::Mount dir;
    dir.type = config::MountType::Volume;
    dir.source = "cache";
    dir.target = "/var/cache/app";
    d.mounts.push_back(dir);
    config::Mount dev;
    dev.type = config::MountType::Volume;
    dev.source = "db";
    dev.target = "/db";
    dev.read_only = true;
    d.mounts.push_back(dev);
    auto in = inputs(d);
    store::MountSpec bind;
    bind.kind = store::MountSpec::Kind::Bind;
    bind.source = "/srv/data";
    in.volumes["cache"] = bind;
    store::MountSpec block;
    block.kind = store::MountSpec::Kind::Block;
    block.source = "/dev/fuse";  // any existing non-directory stands for the thin device
    block.fstype = "ext4";
    block.options = "discard";
    in.volumes["db"] = block;
    auto plan = plan_mounts(in);
    ASSERT_TRUE(plan) << plan.error().what();
    auto find = [&](const std::string& target) {
        return std::find_if(plan->ops.begin(), plan->ops.end(),
                            [&](const MountOp& o) { return o.target == target; });
    };
    auto c = find("/var/cache/app");
    ASSERT_NE(c, plan->ops.end());
    EXPECT_EQ(c->kind, MountOp::Kind::BindHost);
    EXPECT_EQ(c->source, "/srv/data");
    EXPECT_TRUE(c->target_is_dir);
    EXPECT_FALSE(c->read_only);
    EXPECT_TRUE(c->detached);     // attached from a tree the supervisor opens
    EXPECT_FALSE(c->take_owner);  // not new: keeps its owner
    auto b = find("/db");
    ASSERT_NE(b, plan->ops.end());
    EXPECT_EQ(b->kind, MountOp::Kind::Mount);
    EXPECT_EQ(b->source, "/dev/fuse");
    EXPECT_EQ(b->fstype, "ext4");
    EXPECT_EQ(b->data, "discard");
    EXPECT_EQ(b->flags, static_cast<unsigned long>(MS_NOSUID | MS_NODEV));
    // read_only per mount (bind + remount), not per superblock, which other containers share.
    ASSERT_NE(b + 1, plan->ops.end());
    EXPECT_EQ(b[1].kind, MountOp::Kind::ReadOnly);
    EXPECT_EQ(b[1].target, "/db");
    EXPECT_FALSE(b[1].optional);
    // The store may hand out a read-only volume: honoured even when the declaration does not ask.
    in.volumes["cache"].read_only = true;
    in.new_volumes = {"cache"};
    plan = plan_mounts(in);
    ASSERT_TRUE(plan);
    EXPECT_TRUE(find("/var/cache/app")->read_only);
    EXPECT_TRUE(find("/var/cache/app")->take_owner);  // new: seeded from the image's directory
}

TEST(MountPlan, VolumeProblemsAreNamed) {
    config::Declaration d;
    config::Mount v;
    v.type = config::MountType::Volume;
    v.source = "data";
    v.target = "/data";
    d.mounts.push_back(v);
    auto in = inputs(d);
    auto plan = plan_mounts(in);
    ASSERT_FALSE(plan);
    EXPECT_EQ(plan.error().message, "volume 'data' was not prepared by the store");
    store::MountSpec gone;
    gone.source = "/srv/vanished";
    in.volumes["data"] = gone;
    plan = plan_mounts(in);
    ASSERT_FALSE(plan);
    EXPECT_EQ(plan.error().message, "volume 'data': '/srv/vanished' is not a directory");
    store::MountSpec block;
    block.kind = store::MountSpec::Kind::Block;
    block.source = "/dev/fuse";
    block.fstype = "ext4";
    in.volumes["data"] = block;
    in.user_namespace = true;
    plan = plan_mounts(in);
    ASSERT_FALSE(plan);
    EXPECT_EQ(plan.error().code, EOPNOTSUPP);
    EXPECT_NE(plan.error().what().find("volume 'data'"), std::string::npos);
}

TEST(Cgroup, ResourcesMapToFilesAndMissingControllersAreReported) {
    config::Resources r;
    r.memory_max = 256 << 20;
    r.cpu_quota_percent = 150;
    r.tasks_max = 64;
    auto w = plan_cgroup_writes(r, {"memory", "pids"});
    EXPECT_EQ(w.files, (std::vector<std::pair<std::string, std::string>>{{"memory.max", "268435456"},
                                                                         {"pids.max", "64"}}));
    EXPECT_EQ(w.unapplied, std::vector<std::string>{"cpu_quota"});
    EXPECT_EQ(w.missing_controllers, std::set<std::string>{"cpu"});
    auto all = plan_cgroup_writes(r, {"memory", "pids", "cpu"});
    EXPECT_TRUE(all.unapplied.empty());
    EXPECT_NE(std::find(all.files.begin(), all.files.end(),
                        std::make_pair(std::string("cpu.max"), std::string("150000 100000"))),
              all.files.end());
}

TEST(UserNamespace, PicksTheLowestFreeAlignedRange) {
    EXPECT_EQ(pick_free_range({}, 65536), kPickFirst);
    EXPECT_EQ(pick_free_range({{kPickFirst, 65536}}, 65536), kPickFirst + 65536);
    EXPECT_EQ(pick_free_range({{kPickFirst + 100, 10}}, 65536), kPickFirst + 65536);
    EXPECT_EQ(pick_free_range({{0, kPickLast}}, 65536), std::nullopt);
    EXPECT_EQ(parse_subid_file("a:100000:65536\nbroken\n"), (std::vector<IdRange>{{100000, 65536}}));
}

// The writable layer's idmapped mount maps the container's range as the container does, and host
// root (overlayfs' own bookkeeping) to an id no container uses; the container's map never has it.
TEST(UserNamespace, TheWritableLayersMapAddsHostRootOnlyAsTheBookkeepingId) {
    EXPECT_EQ(container_id_map({524288, 65536}), "0 524288 65536\n");
    auto map = writable_layer_id_map({524288, 65536});
    ASSERT_TRUE(map) << map.error().what();
    EXPECT_EQ(*map, "0 524288 65536\n4294967293 0 1\n");
    EXPECT_FALSE(writable_layer_id_map({0, 65536}));  // would map host root twice
    EXPECT_FALSE(writable_layer_id_map({524288, 0}));
    EXPECT_FALSE(writable_layer_id_map({1, kLayerBookkeepingId + 1}));  // range reaches the id
    EXPECT_TRUE(writable_layer_id_map({1, kLayerBookkeepingId}));
}

TEST(EtcFiles, ResolvConfDropsLoopbackServersForPrivateNetworks) {
    std::string host = "nameserver 127.0.0.53\nsearch lan\n";
    EXPECT_EQ(render_resolv_conf(config::NetworkMode::Host, host), host);
    std::string veth = render_resolv_conf(config::NetworkMode::Veth, host);
    EXPECT_EQ(veth.find("127.0.0.53"), std::string::npos);
    EXPECT_NE(veth.find("search lan"), std::string::npos);
    EXPECT_NE(veth.find("nameserver 8.8.8.8"), std::string::npos);
    EXPECT_EQ(render_resolv_conf(config::NetworkMode::Veth, "nameserver 10.0.0.1\n"),
              "nameserver 10.0.0.1\n");
    EXPECT_EQ(render_resolv_conf(config::NetworkMode::None, host).find("nameserver"), std::string::npos);
    EXPECT_NE(render_hosts("web", "10.0.0.2/24").find("10.0.0.2\tweb\n"), std::string::npos);
    EXPECT_NE(render_hosts("web", "").find("127.0.1.1\tweb\n"), std::string::npos);
}

// Issue #20: a container on declared networks asks their gateways (dnsmasq), keeping the host's
// search domains and options, never the host's own servers.
TEST(EtcFiles, ResolvConfOnDeclaredNetworksNamesTheirGateways) {
    std::string host = "nameserver 10.255.255.53\nsearch lan\noptions ndots:2\n";
    EXPECT_EQ(render_network_resolv_conf({"10.89.1.1", "10.89.2.1"}, host),
              "nameserver 10.89.1.1\nnameserver 10.89.2.1\nsearch lan\noptions ndots:2\n");
}

// Issue #20: /etc/hosts names the container at each of its addresses, IPv6 ones included, one
// network's after the other's.
TEST(EtcFiles, HostsNameTheContainerAtEveryAddressOfEveryNetworkIpv6Included) {
    auto hosts = render_hosts("web", std::vector<std::string>{"10.89.1.5/24", "fd00:89:1::a59:105/64",
                                                              "10.89.2.7/24", "fd00:89:2::a59:207/64"});
    EXPECT_NE(
        hosts.find("10.89.1.5\tweb\nfd00:89:1::a59:105\tweb\n10.89.2.7\tweb\nfd00:89:2::a59:207\tweb\n"),
        std::string::npos)
        << hosts;
    EXPECT_EQ(hosts.find("127.0.1.1"), std::string::npos) << hosts;
    EXPECT_NE(render_hosts("web", std::vector<std::string>{}).find("127.0.1.1\tweb\n"), std::string::npos);
}

TEST(State, RoundTripsThroughJson) {
    RuntimeState s;
    s.name = "web";
    s.pid = 123;
    s.supervisor_pid = 120;
    s.cgroup = "/sys/fs/cgroup/x";
    s.started_at_usec = 42;
    s.user_namespace = IdRange{524288, 65536};
    s.groups = {1, 2};
    s.env = {"A=1"};
    s.seccomp = "/run/berth/seccomp/abc.bpf";
    auto back = state_from_json(state_to_json(s), "t");
    ASSERT_TRUE(back) << back.error().what();
    EXPECT_EQ(back->pid, 123);
    EXPECT_EQ(back->user_namespace, s.user_namespace);
    EXPECT_EQ(back->groups, s.groups);
    EXPECT_EQ(back->seccomp, s.seccomp);
    EXPECT_FALSE(state_from_json("{}", "t"));
}

// `berth status` / `berth list` show the image id a start resolved (issue #17); a record written
// before the field existed reads as "unknown".
TEST(State, CarriesTheImageIdTheStartResolved) {
    RuntimeState s;
    s.name = "web";
    s.cgroup = "/sys/fs/cgroup/berth/web";
    s.image_id = "sha256:" + std::string(64, 'a');
    auto back = state_from_json(state_to_json(s), "t");
    ASSERT_TRUE(back) << back.error().what();
    EXPECT_EQ(back->image_id, s.image_id);
    auto old = state_from_json(
        R"({"name":"web","pid":1,"supervisor_pid":2,"cgroup":"/c","started_at_usec":3})", "t");
    ASSERT_TRUE(old) << old.error().what();
    EXPECT_EQ(old->image_id, "");
}

TEST(State, CarriesWhatTheTeardownAfterAHandOverNeeds) {
    RuntimeState s;
    s.name = "web";
    s.cgroup = "/sys/fs/cgroup/berth/web";
    s.teardown.cgroup_remove = "/sys/fs/cgroup/berth/web";
    s.teardown.cgroup_prune = "/sys/fs/cgroup/berth";
    s.teardown.notify_socket = "/run/berth/containers/web.notify";
    s.teardown.snapshot = true;
    s.teardown.network = NetworkTeardown{"ve-web", true, "delete chain ip berth c-web-guard\n", true, "br0"};
    s.teardown.network->loopback_proxies = {{4242, "fd00:89:1::a59:105:80"}};  // network/loopback-proxy.h
    auto back = state_from_json(state_to_json(s), "t");
    ASSERT_TRUE(back) << back.error().what();
    EXPECT_EQ(back->teardown.cgroup_remove, s.teardown.cgroup_remove);
    EXPECT_EQ(back->teardown.cgroup_prune, s.teardown.cgroup_prune);
    EXPECT_EQ(back->teardown.notify_socket, s.teardown.notify_socket);
    EXPECT_TRUE(back->teardown.snapshot);
    ASSERT_TRUE(back->teardown.network);
    EXPECT_EQ(back->teardown.network->host_interface, "ve-web");
    EXPECT_TRUE(back->teardown.network->own_link);
    EXPECT_EQ(back->teardown.network->nft_remove, s.teardown.network->nft_remove);
    EXPECT_TRUE(back->teardown.network->own_nft);
    EXPECT_EQ(back->teardown.network->localnet_bridge, "br0");
    EXPECT_EQ(back->teardown.network->loopback_proxies, s.teardown.network->loopback_proxies);
    // A container without network keeps "network": null.
    s.teardown.network.reset();
    back = state_from_json(state_to_json(s), "t");
    ASSERT_TRUE(back);
    EXPECT_FALSE(back->teardown.network);
}

// Drops apply first, then adds (berth.toml(5), Docker): dropping ALL and adding one capability
// keeps exactly that one (configs/examples/rootfs-readonly.toml), adding ALL keeps everything but
// the named drops, and a capability both dropped and added is kept.
TEST(Capabilities, DropsApplyFirstThenAdds) {
    config::Security s;
    s.capabilities_drop = {"ALL"};
    s.capabilities_add = {"NET_BIND_SERVICE"};
    auto only = compute_capabilities(s, true);
    ASSERT_TRUE(only) << only.error().what();
    EXPECT_EQ(only->bounding, 1ULL << CAP_NET_BIND_SERVICE);
    EXPECT_EQ(only->effective, 1ULL << CAP_NET_BIND_SERVICE);
    EXPECT_EQ(only->permitted, 1ULL << CAP_NET_BIND_SERVICE);
    EXPECT_EQ(only->inheritable, 0u);
    EXPECT_EQ(only->ambient, 0u);

    s.capabilities_drop = {"CAP_CHOWN", "net_raw"};
    s.capabilities_add = {"CAP_CHOWN", "SYS_ADMIN"};
    auto both = compute_capabilities(s, true);
    ASSERT_TRUE(both);
    EXPECT_EQ(both->bounding, (default_capabilities() & ~(1ULL << CAP_NET_RAW)) | (1ULL << CAP_SYS_ADMIN));

    s.capabilities_drop = {"SYS_ADMIN"};
    s.capabilities_add = {"ALL"};
    auto all = compute_capabilities(s, true);
    ASSERT_TRUE(all);
    EXPECT_FALSE(all->bounding & (1ULL << CAP_SYS_ADMIN));
    EXPECT_TRUE(all->bounding & (1ULL << CAP_NET_ADMIN));
    EXPECT_TRUE(all->bounding & (1ULL << CAP_MKNOD));

    // The order in which the lists are written does not matter, nor where ALL stands in them.
    s.capabilities_drop = {"CAP_KILL", "ALL"};
    s.capabilities_add = {"NET_BIND_SERVICE"};
    EXPECT_EQ(compute_capabilities(s, true)->bounding, 1ULL << CAP_NET_BIND_SERVICE);
    // A non-root user still gets the bounding set only.
    auto user = compute_capabilities(s, false);
    EXPECT_EQ(user->bounding, 1ULL << CAP_NET_BIND_SERVICE);
    EXPECT_EQ(user->effective, 0u);
}

namespace {

// The index of the op mounting `kind` on `target`, or -1.
long op_index(const MountPlan& plan, const std::string& target, MountOp::Kind kind) {
    for (size_t i = 0; i < plan.ops.size(); ++i)
        if (plan.ops[i].target == target && plan.ops[i].kind == kind) return static_cast<long>(i);
    return -1;
}

}  // namespace

TEST(MountPlan, AReadOnlyRootGetsTmpfsOnTmpVarTmpAndRunBeforeTheFilesInRun) {
    config::Declaration d;
    auto writable = plan_mounts(inputs(d));
    ASSERT_TRUE(writable);
    EXPECT_EQ(op_index(*writable, "/tmp", MountOp::Kind::Mount), -1) << "a writable root has its own /tmp";
    d.read_only = true;
    auto in = inputs(d);
    in.notify_socket_host = "/run/berth/web.notify";
    auto plan = plan_mounts(in);
    ASSERT_TRUE(plan);
    for (const char* dir : {"/tmp", "/var/tmp", "/run"}) {
        long i = op_index(*plan, dir, MountOp::Kind::Mount);
        ASSERT_GE(i, 0) << dir;
        EXPECT_EQ(plan->ops[i].fstype, "tmpfs");
        EXPECT_EQ(plan->ops[i].flags, static_cast<unsigned long>(MS_NOSUID | MS_NODEV));
    }
    EXPECT_LT(op_index(*plan, "/run", MountOp::Kind::Mount),
              op_index(*plan, kNotifySocketInContainer, MountOp::Kind::BindHost));
    d.read_only_tmpfs = false;
    auto none = plan_mounts(inputs(d));
    ASSERT_TRUE(none);
    EXPECT_EQ(op_index(*none, "/run", MountOp::Kind::Mount), -1);
    EXPECT_TRUE(none->root.read_only);
}

TEST(MountPlan, ShmSizeTimezoneMaskAndUnmask) {
    config::Declaration d;
    d.shm_size = 256u << 20;
    d.security.mask = {"/proc/cpuinfo", "/srv/secret"};
    d.security.unmask = {"/proc/kcore", "/proc/sys"};
    auto in = inputs(d);
    in.timezone_file = "/usr/share/zoneinfo/Europe/Paris";
    auto plan = plan_mounts(in);
    ASSERT_TRUE(plan);
    long shm = op_index(*plan, "/dev/shm", MountOp::Kind::Mount);
    ASSERT_GE(shm, 0);
    EXPECT_EQ(plan->ops[shm].data, "mode=1777,size=268435456");
    long tz = op_index(*plan, "/etc/localtime", MountOp::Kind::BindHost);
    ASSERT_GE(tz, 0);
    EXPECT_EQ(plan->ops[tz].source, "/usr/share/zoneinfo/Europe/Paris");
    EXPECT_TRUE(plan->ops[tz].read_only);
    EXPECT_FALSE(plan->ops[tz].target_is_dir);
    EXPECT_EQ(op_index(*plan, "/proc/kcore", MountOp::Kind::Mask), -1);
    EXPECT_EQ(op_index(*plan, "/proc/sys", MountOp::Kind::ReadOnly), -1);
    EXPECT_GE(op_index(*plan, "/proc/keys", MountOp::Kind::Mask), 0) << "only the named ones are unmasked";
    EXPECT_GT(op_index(*plan, "/srv/secret", MountOp::Kind::Mask),
              op_index(*plan, "/proc/keys", MountOp::Kind::Mask));
    EXPECT_GE(op_index(*plan, "/proc/cpuinfo", MountOp::Kind::Mask), 0);
    d.security.unmask = {"ALL"};
    auto all = plan_mounts(inputs(d));
    ASSERT_TRUE(all);
    for (const auto& p : masked_paths()) EXPECT_EQ(op_index(*all, p, MountOp::Kind::Mask), -1) << p;
    for (const auto& p : read_only_paths()) EXPECT_EQ(op_index(*all, p, MountOp::Kind::ReadOnly), -1) << p;
    EXPECT_GE(op_index(*all, "/srv/secret", MountOp::Kind::Mask), 0)
        << "unmask ALL is the defaults, not mask";
}

TEST(MountPlan, TimezonesResolveInsideTheZoneDatabaseOnly) {
    EXPECT_EQ(resolve_timezone("").value_or("x"), "");
    if (!path_exists("/usr/share/zoneinfo/Europe/Paris")) GTEST_SKIP() << "the host has no tzdata";
    auto paris = resolve_timezone("Europe/Paris");
    ASSERT_TRUE(paris) << paris.error().what();
    EXPECT_EQ(paris->rfind("/usr/share/zoneinfo/", 0), 0u) << *paris;
    auto missing = resolve_timezone("Mars/Olympus_Mons");
    ASSERT_FALSE(missing);
    EXPECT_NE(std::string(missing.error().what()).find("Mars/Olympus_Mons"), std::string::npos);
    EXPECT_FALSE(resolve_timezone("../../../etc/shadow"));
    EXPECT_FALSE(resolve_timezone("Europe")) << "a directory is not a zone";
    if (path_exists("/etc/localtime")) {
        auto host = resolve_timezone("host");
        ASSERT_TRUE(host) << host.error().what();
        EXPECT_EQ(host->front(), '/');
    }
}

TEST(EtcFiles, AddHostsAndDnsSettingsGoOverTheRenderedFiles) {
    config::Network n;
    EXPECT_EQ(apply_dns_settings("nameserver 10.0.0.1\nsearch lan\n", n),
              "nameserver 10.0.0.1\nsearch lan\n");
    EXPECT_EQ(apply_add_hosts("127.0.0.1\tlocalhost", n), "127.0.0.1\tlocalhost");
    n.add_hosts = {{"db", "10.0.0.5"}, {"v6", "fd00::5"}};
    EXPECT_EQ(apply_add_hosts("127.0.0.1\tlocalhost", n),
              "127.0.0.1\tlocalhost\n10.0.0.5\tdb\nfd00::5\tv6\n");
    n.dns = {"192.0.2.53", "2001:db8::53"};
    EXPECT_EQ(apply_dns_settings("nameserver 10.0.0.1\nsearch lan\noptions ndots:5\n", n),
              "search lan\noptions ndots:5\nnameserver 192.0.2.53\nnameserver 2001:db8::53\n");
    n.dns_search = {"example.com", "corp"};
    n.dns_options = {"ndots:2", "edns0"};
    EXPECT_EQ(apply_dns_settings("# host\nnameserver 10.0.0.1\ndomain lan\nsearch lan\noptions ndots:5\n", n),
              "# host\nnameserver 192.0.2.53\nnameserver 2001:db8::53\nsearch example.com corp\n"
              "options ndots:2 edns0\n");
}

}  // namespace
}  // namespace berth::runtime
