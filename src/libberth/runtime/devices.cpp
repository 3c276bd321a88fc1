#include "runtime/devices.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "basic/fs-util.h"
#include "basic/io-util.h"
#include "basic/process-util.h"
#include "basic/string-util.h"
#include "config/values.h"

namespace berth::runtime {

namespace {

// The host node behind `path`: a character or block device, or an error naming it.
Result<DeviceRule> host_node(const std::string& path, const std::string& what) {
    struct stat st {};
    if (::stat(path.c_str(), &st) < 0) return fail_errno("{} '{}' is not on this host", what, path);
    if (!S_ISCHR(st.st_mode) && !S_ISBLK(st.st_mode))
        return fail(EINVAL, "{} '{}' is not a device node", what, path);
    DeviceRule r;
    r.type = S_ISCHR(st.st_mode) ? DeviceType::Char : DeviceType::Block;
    r.major = ::major(st.st_rdev);
    r.minor = ::minor(st.st_rdev);
    return r;
}

Result<> check_cdi_node(const cdi::DeviceNode& n, const std::string& host, const DeviceRule& rule) {
    struct stat st {};
    if (::stat(host.c_str(), &st) < 0) return fail_errno("stat '{}'", host);
    char type = static_cast<char>(rule.type);
    std::string want_type = n.type == "u" ? "c" : n.type;
    if (!want_type.empty() && want_type != std::string(1, type))
        return fail(EINVAL, "CDI device node '{}': the spec says type '{}', the host node '{}' is '{}'",
                    n.path, n.type, host, type);
    if ((n.major && *n.major != rule.major) || (n.minor && *n.minor != rule.minor))
        return fail(EINVAL, "CDI device node '{}': the spec says {}:{}, the host node '{}' is {}:{}", n.path,
                    n.major ? std::to_string(*n.major) : "*", n.minor ? std::to_string(*n.minor) : "*", host,
                    *rule.major, *rule.minor);
    if (n.file_mode && (st.st_mode & 07777) != *n.file_mode)
        return fail(EINVAL, "CDI device node '{}': the spec says mode {:04o}, the host node '{}' has {:04o}",
                    n.path, *n.file_mode, host, st.st_mode & 07777);
    if ((n.uid && *n.uid != st.st_uid) || (n.gid && *n.gid != st.st_gid))
        return fail(EINVAL, "CDI device node '{}': the spec says owner {}:{}, the host node '{}' has {}:{}",
                    n.path, n.uid ? std::to_string(*n.uid) : "*", n.gid ? std::to_string(*n.gid) : "*", host,
                    st.st_uid, st.st_gid);
    return {};
}

}  // namespace

Result<DevicePlan> plan_devices(const config::Declaration& decl, const cdi::Registry* registry) {
    DevicePlan plan;
    std::vector<std::string> cdi_names;
    for (const auto& text : decl.security.devices) {
        std::string why;
        auto entry = config::parse_device_entry(text, &why);
        if (!entry) return fail(EINVAL, "security.devices: {} {}", quote(text), why);
        if (entry->cdi) {
            cdi_names.push_back(text);
            continue;
        }
        DeviceRule rule = BERTH_TRY(host_node(entry->path, "device"));
        rule.access = entry->permissions;
        plan.rules.push_back(rule);
    }
    if (cdi_names.empty()) return plan;
    cdi::Registry loaded;
    if (!registry) {
        loaded = cdi::load_registry(cdi::spec_dirs());
        registry = &loaded;
    }
    cdi::ContainerEdits edits = BERTH_TRY(registry->resolve(cdi_names));
    for (const auto& n : edits.device_nodes) {
        std::string host = n.host_path.empty() ? n.path : n.host_path;
        DeviceRule rule = BERTH_TRY(host_node(host, fmt::format("CDI device node '{}': host node", n.path)));
        BERTH_TRY_VOID(check_cdi_node(n, host, rule));
        rule.access = n.permissions.empty() ? "rwm" : n.permissions;
        plan.rules.push_back(rule);
        plan.nodes.push_back({host, normalize_absolute_path(n.path)});
    }
    for (const auto& m : edits.mounts)
        if (!path_exists(m.host_path))
            return fail(ENOENT, "CDI mount: '{}' is not on this host", m.host_path);
    for (const auto& h : edits.hooks)
        if (h.kind != cdi::HookKind::CreateContainer && h.kind != cdi::HookKind::StartContainer)
            return fail(
                EOPNOTSUPP,
                "CDI hook '{}': berth runs createContainer and startContainer hooks only, the spec asks for "
                "another kind",
                h.path);
    plan.mounts = edits.mounts;
    plan.env = edits.env;
    plan.hooks = edits.hooks;
    return plan;
}

std::vector<DeviceRule> device_allow_list(const DevicePlan& plan) {
    std::vector<DeviceRule> rules = standard_device_rules();
    rules.insert(rules.end(), plan.rules.begin(), plan.rules.end());
    return rules;
}

std::string oci_state_json(const std::string& id, const std::string& status, int pid,
                           const std::string& bundle) {
    nlohmann::json j = {{"ociVersion", "1.0.2"}, {"id", id},
                        {"status", status},      {"pid", pid},
                        {"bundle", bundle},      {"annotations", nlohmann::json::object()}};
    return j.dump();
}

namespace {

Result<> run_hook(const cdi::Hook& hook, const std::string& state_json) {
    int in_pipe[2];
    if (::pipe2(in_pipe, O_CLOEXEC) < 0) return fail_errno("pipe");
    UniqueFd in_rd(in_pipe[0]), in_wr(in_pipe[1]);
    // Built before fork(): the child only makes system calls.
    std::vector<std::string> args = hook.args.empty() ? std::vector<std::string>{hook.path} : hook.args;
    std::vector<char*> argv, envp;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::vector<std::string> env = hook.env;
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    pid_t pid = ::fork();
    if (pid < 0) return fail_errno("fork");
    if (pid == 0) {
        sigset_t none;
        sigemptyset(&none);
        ::sigprocmask(SIG_SETMASK, &none, nullptr);  // run_container() blocked the stop signals
        ::dup2(in_rd.get(), 0);
        ::execve(hook.path.c_str(), argv.data(), envp.data());
        ::_exit(127);
    }
    UniqueFd pidfd = BERTH_TRY(pidfd_open(pid));
    in_rd.reset();
    // A hook that does not read its stdin gets EPIPE: fine (SIGPIPE is ignored around the write).
    struct sigaction ignore {
    }, old{};
    ignore.sa_handler = SIG_IGN;
    ::sigaction(SIGPIPE, &ignore, &old);
    (void)write_all(in_wr.get(), state_json, "hook stdin");
    ::sigaction(SIGPIPE, &old, nullptr);
    in_wr.reset();
    pollfd p{pidfd.get(), POLLIN, 0};
    int timeout_ms = hook.timeout_s ? static_cast<int>(*hook.timeout_s) * 1000 : -1;
    int r;
    while ((r = ::poll(&p, 1, timeout_ms)) < 0 && errno == EINTR) {
    }
    if (r == 0) {
        ::kill(pid, SIGKILL);
        (void)wait_for_pid(pid, "hook");
        return fail(ETIMEDOUT, "hook '{}' did not finish within {} s", hook.path, *hook.timeout_s);
    }
    int status = BERTH_TRY(wait_for_pid(pid, "hook"));
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return fail(EIO, "hook '{}' failed ({})", hook.path,
                    WIFEXITED(status) ? fmt::format("exit status {}", WEXITSTATUS(status))
                                      : fmt::format("signal {}", WTERMSIG(status)));
    return {};
}

}  // namespace

Result<> run_hooks(const std::vector<cdi::Hook>& hooks, cdi::HookKind kind, const std::string& state_json) {
    for (const auto& h : hooks)
        if (h.kind == kind) BERTH_TRY_VOID(run_hook(h, state_json));
    return {};
}

}  // namespace berth::runtime
