// Seccomp profiles: the model shared by berth's built-in default (equivalent to Docker's default
// profile) and Docker/OCI JSON profiles loaded from a path.
//
// A profile is a default action plus rules; a rule may depend on the container's capabilities
// (includes.caps / excludes.caps) and on the kernel version (includes.minKernel). resolve()
// evaluates those conditions for one container and yields the flat list of rules that
// compile_seccomp() turns into BPF. Everything here is pure: no kernel calls.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "basic/result.h"

namespace berth::runtime {

enum class SeccompAction { Allow, Errno, Kill, KillProcess, Trap, Trace, Log };

enum class SeccompOp { NotEqual, LessThan, LessEqual, Equal, GreaterEqual, GreaterThan, MaskedEqual };

struct SeccompArg {
    unsigned index = 0;
    uint64_t value = 0;
    uint64_t value_two = 0;
    SeccompOp op = SeccompOp::Equal;
};

struct SeccompRule {
    std::vector<std::string> names;
    SeccompAction action = SeccompAction::Allow;
    int errno_ret = 1;  // EPERM
    std::vector<SeccompArg> args;
    std::vector<std::string> includes_caps;  // all needed ("CAP_SYS_ADMIN")
    std::vector<std::string> excludes_caps;  // rule skipped if any is present
    std::string min_kernel;                  // "4.8"
};

// The system-call ABIs a filter admits, each under the same rules; a call through any other ABI
// kills the process (SIGSYS). Compat is the 32-bit ABI the native kernel also runs (x86_64: i386,
// aarch64: arm, s390x: s390); never x32, which Docker admits but no distribution ships a userland
// for (docs/SECURITY.md).
enum class SeccompAbis { Native, NativeAndCompat };

// libseccomp names of this build's native ABI and its 32-bit compat ABI ("" = none).
const char* seccomp_native_abi();
const char* seccomp_compat_abi();

struct SeccompProfile {
    SeccompAction default_action = SeccompAction::Errno;
    int default_errno = 1;  // EPERM
    std::vector<SeccompRule> rules;
    // Built-in default: NativeAndCompat (as Docker). JSON profiles: NativeAndCompat when their
    // "architectures" or "archMap" list the compat ABI, else Native.
    SeccompAbis abis = SeccompAbis::Native;
};

// Docker's default profile (moby profiles/seccomp/default.json), native and 32-bit compat ABIs.
const SeccompProfile& default_seccomp_profile();

// Parses a Docker seccomp profile or an OCI runtime-spec "seccomp" object (also accepted wrapped
// in a full OCI config as linux.seccomp). `origin` names the file in messages.
Result<SeccompProfile> parse_seccomp_profile(const std::string& json_text, const std::string& origin);
Result<SeccompProfile> load_seccomp_profile(const std::string& path);

// The rules that apply to a container with capability bounding set `caps` on kernel `release`
// ("6.1.0-..."), in order.
std::vector<SeccompRule> resolve_seccomp_rules(const SeccompProfile& profile, uint64_t caps,
                                               const std::string& kernel_release);

// Stable text form of a resolved profile (cache key input and debugging).
std::string serialize_seccomp(SeccompAction default_action, int default_errno,
                              const std::vector<SeccompRule>& rules);

}  // namespace berth::runtime
