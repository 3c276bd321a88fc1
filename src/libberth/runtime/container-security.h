// Stage 2 of `berth run` (container.cpp): the security settings that do not depend on the
// container's files (nspawn's seccomp/capability steps), computed on the host before the start:
// the user namespace's id range, the capability sets, the compiled seccomp program, the
// resource limits. Pure of side effects but for the seccomp cache and the id-range allocation
// (user-namespace.h); the child applies them (child.cpp).
#pragma once

#include <optional>
#include <vector>

#include "basic/result.h"
#include "config/declaration.h"
#include "runtime/capabilities.h"
#include "runtime/child.h"
#include "runtime/seccomp-compile.h"
#include "runtime/user-namespace.h"

namespace berth::runtime {

struct SecurityPlan {
    std::optional<IdRange> user_namespace;  // none: the host's
    CapabilitySets root_caps;               // for a payload that runs as root
    std::optional<SeccompProgram> seccomp;  // none: unconfined
    std::vector<ChildRlimit> rlimits;
};

Result<SecurityPlan> plan_security(const config::Declaration& decl);

// The setrlimit(2) resource of a [resources] limits name ("nofile" -> RLIMIT_NOFILE).
Result<int> rlimit_resource(const std::string& name);
// [resources] limits the host cannot grant, named with the host's limit: nofile above the
// kernel's fs.nr_open (setrlimit fails with a bare EPERM in the child otherwise). For the start
// and for `berth validate` (a warning there: the declaration may be meant for another host).
Result<> check_limits_on_host(const config::Declaration& decl);

}  // namespace berth::runtime
