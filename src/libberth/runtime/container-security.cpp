#include "runtime/container-security.h"

#include <sys/resource.h>
#include <sys/utsname.h>

#include <utility>

#include "basic/fs-util.h"
#include "basic/string-util.h"
#include "runtime/paths.h"
#include "runtime/seccomp-profile.h"

namespace berth::runtime {

Result<int> rlimit_resource(const std::string& name) {
    static const std::pair<const char*, int> table[] = {
        {"as", RLIMIT_AS},           {"core", RLIMIT_CORE},         {"cpu", RLIMIT_CPU},
        {"data", RLIMIT_DATA},       {"fsize", RLIMIT_FSIZE},       {"locks", RLIMIT_LOCKS},
        {"memlock", RLIMIT_MEMLOCK}, {"msgqueue", RLIMIT_MSGQUEUE}, {"nice", RLIMIT_NICE},
        {"nofile", RLIMIT_NOFILE},   {"nproc", RLIMIT_NPROC},       {"rss", RLIMIT_RSS},
        {"rtprio", RLIMIT_RTPRIO},   {"rttime", RLIMIT_RTTIME},     {"sigpending", RLIMIT_SIGPENDING},
        {"stack", RLIMIT_STACK},
    };
    for (const auto& [n, r] : table)
        if (name == n) return r;
    return fail(EINVAL, "unknown resource limit '{}'", name);
}

Result<> check_limits_on_host(const config::Declaration& decl) {
    auto nofile = decl.resources.limits.find("nofile");
    if (nofile == decl.resources.limits.end()) return {};
    auto text = read_file("/proc/sys/fs/nr_open");
    if (!text) return {};  // no procfs: setrlimit will say
    auto nr_open = parse_unsigned(trim(*text));
    if (nr_open && nofile->second > *nr_open)
        return fail(
            EINVAL,
            "[resources] limits.nofile = {} is above the kernel's limit on open files, fs.nr_open = {} "
            "(expected at most {}, or raise it: sysctl fs.nr_open)",
            nofile->second, *nr_open, *nr_open);
    return {};
}

Result<SecurityPlan> plan_security(const config::Declaration& decl) {
    SecurityPlan plan;
    BERTH_TRY_VOID(check_limits_on_host(decl));
    plan.user_namespace = BERTH_TRY_CTX(resolve_user_namespace(decl, state_dir()), "user namespace");
    plan.root_caps = BERTH_TRY_CTX(compute_capabilities(decl.security, true), "capabilities");
    if (decl.security.seccomp != config::SeccompMode::Unconfined) {
        SeccompProfile loaded;
        const SeccompProfile* profile = &default_seccomp_profile();
        if (decl.security.seccomp == config::SeccompMode::Profile) {
            loaded = BERTH_TRY(load_seccomp_profile(decl.security.seccomp_profile));
            profile = &loaded;
        }
        struct utsname uts {};
        ::uname(&uts);
        auto rules = resolve_seccomp_rules(*profile, plan.root_caps.bounding, uts.release);
        plan.seccomp = BERTH_TRY(compile_seccomp(profile->default_action, profile->default_errno, rules,
                                                 seccomp_cache_dir(), profile->abis));
    }
    for (const auto& [name, value] : decl.resources.limits) {
        int res = BERTH_TRY_CTX(rlimit_resource(name), "[resources] limits");
        plan.rlimits.push_back({res, {static_cast<rlim_t>(value), static_cast<rlim_t>(value)}});
    }
    return plan;
}

}  // namespace berth::runtime
