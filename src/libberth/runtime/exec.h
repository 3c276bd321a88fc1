// `berth exec NAME -- CMD...`: run a command inside a running container. Joins the payload's
// cgroup and all its namespaces (one setns() on its pidfd), then forks so the command is inside
// the pid namespace, with the container's identity, capabilities, no_new_privs and seccomp
// program (recorded in the runtime state) unless overridden.
#pragma once

#include <string>
#include <vector>

#include "basic/result.h"

namespace berth::runtime {

struct ExecOptions {
    std::vector<std::string> command;
    bool tty = false;
    bool interactive = true;
    std::string user;              // "" = the container's payload user; else "name|uid[:group]"
    std::vector<std::string> env;  // extra "K=V"
    std::string workdir;           // "" = the container's
};

// Returns the command's exit status (or 128+signal).
Result<int> exec_in_container(const std::string& name, const ExecOptions& options);

// A health probe (runtime/health.h): `command` run as `berth exec` runs it (the payload's cgroup,
// namespaces, user, capabilities, no_new_privs and seccomp), with stdin on /dev/null and its
// stdout and stderr captured; at `timeout_ms` its whole process group is SIGKILLed.
struct ProbeOutcome {
    int exit_status = 0;  // exit code or 128+signal; -1 when it timed out
    uint64_t duration_us = 0;
    std::string output;  // the last kProbeOutputTail bytes it wrote
};
inline constexpr size_t kProbeOutputTail = 1024;
Result<ProbeOutcome> probe_in_container(const std::string& name, const std::vector<std::string>& command,
                                        uint64_t timeout_ms);

}  // namespace berth::runtime
