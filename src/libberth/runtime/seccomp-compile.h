// Turning a resolved seccomp profile into a BPF program (libseccomp), with an on-disk cache:
// building Docker's profile with libseccomp costs tens of milliseconds, so the program is compiled
// once per distinct (profile, capabilities, kernel, libseccomp) and reused from
// <cache dir>/<hash>.bpf, whose full key is kept in <hash>.key and compared on every use (so the
// hash only names the entry). The key names the kernel release and the libseccomp version, so a
// cache that outlives either is never used for them.
#pragma once

#include <string>
#include <vector>

#include "basic/result.h"
#include "runtime/seccomp-profile.h"

namespace berth::runtime {

struct SeccompProgram {
    std::vector<unsigned char> bpf;  // struct sock_filter[]
    std::string cache_path;          // where it is (or would be) cached; empty = not cached
};

// Compiles (or loads from `cache_dir` when non-empty) the program for these rules.
// `abis`: which system-call ABIs the program admits (the rules apply to each); a call through any
// other ABI kills the process.
Result<SeccompProgram> compile_seccomp(SeccompAction default_action, int default_errno,
                                       const std::vector<SeccompRule>& rules, const std::string& cache_dir,
                                       SeccompAbis abis = SeccompAbis::Native);

// Child side: installs a program (no_new_privs or CAP_SYS_ADMIN needed). Returns 0 or -errno.
int install_seccomp(const unsigned char* bpf, size_t size);

}  // namespace berth::runtime
