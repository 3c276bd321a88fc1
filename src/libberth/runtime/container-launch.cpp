#include "runtime/container-launch.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <optional>

#include "basic/fs-util.h"
#include "basic/string-util.h"
#include "config/values.h"
#include "runtime/child.h"
#include "runtime/environment.h"
#include "runtime/etc-files.h"
#include "runtime/mount-plan.h"
#include "runtime/paths.h"
#include "runtime/root-assembly.h"
#include "runtime/supervise-protocol.h"

namespace berth::runtime {

namespace {

// One framed message from the child; nullopt on EOF before any byte.
struct Message {
    MessageHeader header{};
    std::vector<char> payload;
    UniqueFd fd;
};

Result<std::optional<Message>> read_message(int sock) {
    Message m;
    int fd = -1;
    int rc = recv_message_header(sock, &m.header, &fd);
    m.fd.reset(fd);
    if (rc < 0) return fail_errno("read from container");
    if (rc == 0) return std::optional<Message>{};
    if (m.header.length > (1u << 20)) return fail(EPROTO, "oversized message from container");
    m.payload.resize(m.header.length);
    size_t got = 0;
    while (got < m.payload.size()) {
        ssize_t r = ::read(sock, m.payload.data() + got, m.payload.size() - got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return fail_errno("read from container");
        if (r == 0) return fail(EPIPE, "container closed the setup channel mid-message");
        got += static_cast<size_t>(r);
    }
    return std::optional<Message>{std::move(m)};
}

Error error_from(const Message& m) {
    ErrorPayload e;
    std::memcpy(&e, m.payload.data(), std::min(sizeof e, m.payload.size()));
    e.message[sizeof e.message - 1] = '\0';
    return Error{e.code, e.message};
}

// Explains a child that vanished without a message.
Error died_early(ChildProcess& child) {
    auto status = child.wait(true);
    if (status && *status)
        return Error{EIO, fmt::format("container setup process exited with status {}", **status)};
    return Error{EIO, "container setup process exited unexpectedly"};
}

// What the child mounts, in the order it mounts it (mount-plan.h), with the detached trees
// (volumes) it attaches: it inherits their fds with the clone.
struct PlannedMounts {
    MountPlan plan;
    std::vector<UniqueFd> trees;
};

Result<> plan_container_mounts(const LaunchInputs& in, const std::string& stage, PlannedMounts* out) {
    const config::Declaration& decl = *in.decl;
    MountInputs mi;
    mi.decl = &decl;
    mi.root = in.root->spec();
    mi.upper_on_stage = in.root->upper_on_stage();
    mi.stage_dir = stage;
    mi.user_namespace = in.security->user_namespace.has_value();
    mi.new_network_namespace = decl.network.mode != config::NetworkMode::Host;
    mi.hostname_file = render_hostname(in.hostname);
    auto addresses = BERTH_TRY_CTX(planned_addresses(decl), "network");
    mi.hosts_file = apply_add_hosts(render_hosts(in.hostname, addresses), decl.network);
    std::string host_resolv_conf = read_file("/etc/resolv.conf").value_or("");
    auto name_servers = BERTH_TRY_CTX(planned_name_servers(decl), "network");
    mi.resolv_conf =
        apply_dns_settings(name_servers.empty() ? render_resolv_conf(decl.network.mode, host_resolv_conf)
                                                : render_network_resolv_conf(name_servers, host_resolv_conf),
                           decl.network);
    mi.timezone_file = BERTH_TRY(resolve_timezone(decl.timezone));
    mi.notify_socket_host = in.notify_socket;
    mi.secrets = in.secrets;
    mi.devices = in.devices;
    for (const auto& v : *in.volumes) {
        mi.volumes.emplace(v.name, v.mount);
        if (v.created) mi.new_volumes.insert(v.name);
    }
    out->plan = BERTH_TRY(plan_mounts(mi));
    for (auto& op : out->plan.ops) {
        if (!op.detached) continue;
        auto tree = BERTH_TRY_CTX(open_detached_tree(op.source), fmt::format("mount '{}'", op.target));
        op.tree_fd = tree.get();
        out->trees.push_back(std::move(tree));
    }
    return {};
}

// The Launch message: identity, argv, envp, workdir, search PATH (child.h).
struct LaunchMessage {
    std::string blob;
    size_t strings = 0;  // argv + envp entries
};

LaunchMessage encode_launch(const Launched& l, const std::vector<std::string>& command) {
    const Identity& id = l.identity;
    LaunchHeader lh;
    lh.uid = id.uid;
    lh.gid = id.gid;
    lh.ngroups = static_cast<uint32_t>(id.groups.size());
    lh.argc = static_cast<uint32_t>(command.size());
    lh.envc = static_cast<uint32_t>(l.env.size() + l.payload_only_env.size());
    lh.effective = lh.permitted = l.effective_caps;
    std::string search_path = kDefaultPath;
    for (const auto& e : l.env)
        if (e.rfind("PATH=", 0) == 0) search_path = e.substr(5);
    LaunchMessage m;
    m.blob.assign(reinterpret_cast<const char*>(&lh), sizeof lh);
    m.blob.append(reinterpret_cast<const char*>(id.groups.data()), id.groups.size() * sizeof(gid_t));
    for (const auto& a : command) m.blob.append(a.c_str(), a.size() + 1);
    for (const auto& e : l.env) m.blob.append(e.c_str(), e.size() + 1);
    for (const auto& e : l.payload_only_env) m.blob.append(e.c_str(), e.size() + 1);
    m.blob.append(l.workdir.c_str(), l.workdir.size() + 1);
    m.blob.append(search_path.c_str(), search_path.size() + 1);
    m.strings = command.size() + l.env.size() + l.payload_only_env.size();
    return m;
}

// The payload's identity, environment and working directory, resolved from the container's own
// /etc/passwd and /etc/group (through /proc/PID/root: the root the child has just built).
Result<> resolve_payload(const LaunchInputs& in, Launched* l) {
    const config::Declaration& decl = *in.decl;
    const store::ImageConfig& image = in.root->image();
    UniqueFd croot(
        ::open(fmt::format("/proc/{}/root", l->child.pid()).c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!croot) return fail_errno("open the container's root");
    std::string passwd = BERTH_TRY_CTX(read_container_file(croot.get(), "/etc/passwd"), "user");
    std::string group = BERTH_TRY_CTX(read_container_file(croot.get(), "/etc/group"), "user");
    std::string user =
        decl.user.user.empty() && decl.user.group.empty() ? image.user : user_spec_string(decl.user);
    l->identity = BERTH_TRY_CTX(resolve_identity(user, decl.supplementary_groups, passwd, group), "user");

    EnvironmentInputs ei;
    ei.image_env = image.env;
    // The vendor's variables (CDI) over the image's; the declaration's own still win.
    if (in.devices) ei.image_env.insert(ei.image_env.end(), in.devices->env.begin(), in.devices->env.end());
    ei.environment_files = decl.environment_files;
    ei.table = decl.environment;
    ei.hostname = in.hostname;
    ei.home = l->identity.home;
    ei.tty = in.options->tty;
    if (!in.notify_socket.empty()) ei.notify_socket = kNotifySocketInContainer;
    if (in.secrets && !in.secrets->empty())
        ei.table["CREDENTIALS_DIRECTORY"] = std::string(config::kSecretsDir);
    l->env = BERTH_TRY(compose_environment(ei));
    if (in.secrets)
        for (const auto& secret : *in.secrets)
            if (!secret.declared.environment.empty())
                l->payload_only_env.push_back(secret.declared.environment + "=" + secret.value);
    if (in.listen && !in.listen->fds.empty()) {
        l->payload_only_env.push_back(fmt::format("LISTEN_FDS={}", in.listen->fds.size()));
        // Room for any pid: the child writes the one the payload sees (child.cpp, set_listen_pid).
        l->payload_only_env.push_back("LISTEN_PID=" + std::string(10, '0'));
        if (!in.listen->names.empty()) l->payload_only_env.push_back("LISTEN_FDNAMES=" + in.listen->names);
    }
    // One value a variable: what the payload alone gets wins over the declared table.
    std::erase_if(l->env, [&](const std::string& entry) {
        std::string_view key = std::string_view(entry).substr(0, entry.find('='));
        for (const auto& only : l->payload_only_env)
            if (std::string_view(only).substr(0, only.find('=')) == key) return true;
        return false;
    });
    l->workdir = !decl.workdir.empty() ? decl.workdir : !image.working_dir.empty() ? image.working_dir : "/";
    l->effective_caps = l->identity.uid == 0 ? in.security->root_caps.bounding : 0;
    return {};
}

// Only the standard nodes and the declared devices open from here on, whatever capabilities the
// payload holds (device-cgroup.h). Then the CDI hooks, from the runtime's side, with the OCI state
// on stdin as runc and crun give it (the payload is not exec'd yet: "created").
Result<> restrict_devices(const LaunchInputs& in, pid_t pid) {
    BERTH_TRY_VOID_CTX(
        attach_device_program(in.cgroup->payload_fd(), build_device_program(device_allow_list(*in.devices))),
        fmt::format("device cgroup '{}'", in.cgroup->payload_path()));
    if (in.devices->hooks.empty()) return {};
    std::string state = oci_state_json(in.decl->name, "created", pid, path_join(run_dir(), "containers"));
    BERTH_TRY_VOID_CTX(run_hooks(in.devices->hooks, cdi::HookKind::CreateContainer, state),
                       "createContainer hook");
    BERTH_TRY_VOID_CTX(run_hooks(in.devices->hooks, cdi::HookKind::StartContainer, state),
                       "startContainer hook");
    return {};
}

}  // namespace

Result<> launch_container(const LaunchInputs& in, Launched* out) {
    const config::Declaration& decl = *in.decl;
    const RunOptions& opt = *in.options;
    const SecurityPlan& sec = *in.security;

    const std::string stage = path_join(run_dir(), ".stage");
    BERTH_TRY_VOID_CTX(mkdir_p(stage, 0755), "stage directory");
    PlannedMounts mounts;
    BERTH_TRY_VOID(plan_container_mounts(in, stage, &mounts));
    const std::string root_dir = path_join(stage, "root");
    const bool new_netns = decl.network.mode != config::NetworkMode::Host;

    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) return fail_errno("socketpair");
    UniqueFd parent_end(sv[0]), child_end(sv[1]);
    UniqueFd devnull;
    if (!opt.interactive && !opt.tty) {
        devnull.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
        if (!devnull) return fail_errno("open /dev/null");
    }
    Launched l;
    l.signal_fd = in.signal_fd;

    // The child decodes the launch message into these without allocating. They are uninitialised
    // on purpose: above malloc's mmap threshold they are fresh anonymous mappings, so only the
    // child's copy-on-write pages ever become resident; zero-filling them cost the supervisor
    // 1.5 MiB of RSS for its whole life. Freed once the payload is exec'd (on return).
    constexpr size_t kLaunchCapacity = 1u << 20, kPointerCapacity = 1u << 16;
    auto launch_buffer = std::make_unique_for_overwrite<char[]>(kLaunchCapacity);
    auto pointer_buffer = std::make_unique_for_overwrite<char*[]>(kPointerCapacity);
    ChildConfig cfg;
    cfg.sync_fd = child_end.get();
    cfg.stdin_fd = devnull.get();
    cfg.plan = &mounts.plan;
    cfg.stage_dir = stage.c_str();
    cfg.root_dir = root_dir.c_str();
    cfg.hostname = in.hostname.c_str();
    cfg.loopback_up = new_netns;
    cfg.user_namespace = sec.user_namespace.has_value();
    cfg.tty = opt.tty;
    cfg.init = decl.init;
    cfg.no_new_privileges = decl.security.no_new_privileges;
    cfg.bounding = sec.root_caps.bounding;
    cfg.last_cap = last_capability();
    if (sec.seccomp) {
        cfg.seccomp = sec.seccomp->bpf.data();
        cfg.seccomp_size = sec.seccomp->bpf.size();
    }
    cfg.rlimits = sec.rlimits.data();
    cfg.nrlimits = sec.rlimits.size();
    // Prepared here, read by the child: the strings live in `decl` and `sysctl_paths`.
    std::vector<std::string> sysctl_paths;
    std::vector<ChildSysctl> sysctls;
    sysctl_paths.reserve(decl.sysctl.size());  // no reallocation: sysctls point into it
    for (const auto& [key, value] : decl.sysctl) {
        // Validation refused these already; a declaration that skipped it must not reach the
        // host's tunables either (the child writes through the host's /proc).
        if (std::string why = config::sysctl_refusal(key, decl.network.mode); !why.empty())
            return fail(EPERM, "sysctl {} {}", quote(key), why);
        sysctl_paths.push_back(config::sysctl_path(key));
        sysctls.push_back({sysctl_paths.back().c_str(), value.c_str()});
    }
    cfg.sysctls = sysctls.data();
    cfg.nsysctls = sysctls.size();
    cfg.launch_buffer = launch_buffer.get();
    cfg.launch_capacity = kLaunchCapacity;
    cfg.pointer_buffer = pointer_buffer.get();
    cfg.pointer_capacity = kPointerCapacity;
    if (in.listen) {
        cfg.listen_fds = in.listen->fds.data();
        cfg.nlisten = in.listen->fds.size();
    }

    uint64_t flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWCGROUP;
    if (new_netns) flags |= CLONE_NEWNET;
    if (sec.user_namespace) flags |= CLONE_NEWUSER;
    bool in_child = false;
    l.child = BERTH_TRY_CTX(clone_child(flags, in.cgroup->payload_fd(), &in_child), "start");
    if (in_child) {
        ::close(sv[0]);
        child_main(cfg);
    }
    child_end.reset();

    // --- from outside: id maps, the root (root-assembly.h) and volumes idmapped, network ---
    UniqueFd assembled_root;
    if (sec.user_namespace) {
        BERTH_TRY_VOID_CTX(write_id_maps(l.child.pid(), *sec.user_namespace), "user namespace");
        assembled_root = BERTH_TRY_CTX(assemble_root(mounts.plan.root, l.child.pid(), *sec.user_namespace),
                                       "root file system for the user namespace");
        UniqueFd userns = BERTH_TRY_CTX(open_user_namespace(l.child.pid()), "user namespace");
        for (const auto& op : mounts.plan.ops)
            if (op.tree_fd >= 0)
                if (auto r = idmap_tree(op.tree_fd, op.source, userns.get()); !r && opt.warn)
                    opt.warn(fmt::format("{}; files owned by host root appear as 'nobody' in '{}'",
                                         r.error().what(), op.target));
    }
    l.network = BERTH_TRY_CTX(attach_network(decl, l.child.pid()), "network");
    if (l.network && opt.warn)
        for (const auto& w : l.network->warnings()) opt.warn(w);
    GoPayload go;
    go.assembled_root = assembled_root ? 1 : 0;
    if (send_message(parent_end.get(), MessageType::Go, &go, sizeof go,
                     assembled_root ? assembled_root.get() : -1) < 0)
        return fail(died_early(l.child));
    assembled_root.reset();
    // While the child mounts: the I/O wait of this removal overlaps its work.
    in.root->remove_stale_scratch();
    mounts.trees.clear();  // the child holds its own copies until it has attached them

    // --- the child builds its root ---
    auto mounted = BERTH_TRY(read_message(parent_end.get()));
    if (!mounted) return fail(died_early(l.child));
    if (mounted->header.type == MessageType::Error) return fail(error_from(*mounted));
    if (mounted->header.type != MessageType::Mounted)
        return fail(EPROTO, "unexpected message from container");
    l.pty_master = std::move(mounted->fd);

    // --- the device cgroup, now that the child has mounted (a block volume's device opens in
    // its mount), then the vendor's hooks (devices.h) ---
    if (in.devices) BERTH_TRY_VOID(restrict_devices(in, l.child.pid()));

    // --- identity from the container's own files, then the command ---
    BERTH_TRY_VOID(resolve_payload(in, &l));
    LaunchMessage launch = encode_launch(l, in.command);
    if (launch.blob.size() > kLaunchCapacity || launch.strings + 2 > kPointerCapacity)
        return fail(E2BIG, "command and environment are too large");
    if (in.before_exec) BERTH_TRY_VOID(in.before_exec(l));
    if (send_message(parent_end.get(), MessageType::Launch, launch.blob.data(),
                     static_cast<uint32_t>(launch.blob.size())) < 0)
        return fail(died_early(l.child));

    // --- EOF: execve succeeded (the channel is close-on-exec) ---
    auto launched = BERTH_TRY(read_message(parent_end.get()));
    if (launched) {
        if (launched->header.type == MessageType::Error) return fail(error_from(*launched));
        return fail(EPROTO, "unexpected message from container");
    }
    forget_secret_strings(l.payload_only_env);
    for (auto& op : mounts.plan.ops)
        if (op.kind == MountOp::Kind::Secret) ::explicit_bzero(op.data.data(), op.data.size());
    *out = std::move(l);
    return {};
}

}  // namespace berth::runtime
