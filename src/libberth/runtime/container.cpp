#include "runtime/container.h"

#include <fcntl.h>
#include <linux/mount.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <cstring>
#include <memory>

#include "basic/fs-private.h"
#include "basic/fs-util.h"
#include "basic/string-util.h"
#include "bus/storage-client.h"
#include "runtime/capabilities.h"
#include "runtime/cgroup.h"
#include "runtime/child.h"
#include "runtime/environment.h"
#include "runtime/etc-files.h"
#include "runtime/handover.h"
#include "runtime/identity.h"
#include "runtime/mount-plan.h"
#include "runtime/network-seam.h"
#include "runtime/notify-relay.h"
#include "runtime/paths.h"
#include "runtime/relay.h"
#include "runtime/sd-notify.h"
#include "runtime/seccomp-compile.h"
#include "runtime/spawn.h"
#include "runtime/state.h"
#include "runtime/supervise-protocol.h"
#include "runtime/supervise.h"
#include "runtime/user-namespace.h"

namespace berth::runtime {

namespace {

const char* network_mode_name(config::NetworkMode m) {
    switch (m) {
        case config::NetworkMode::None:
            return "none";
        case config::NetworkMode::Host:
            return "host";
        case config::NetworkMode::Veth:
            return "veth";
        case config::NetworkMode::Bridge:
            return "bridge";
    }
    return "none";
}

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

// Reads one framed message; nullopt on EOF before any byte.
struct Message {
    MessageHeader header{};
    std::vector<char> payload;
    UniqueFd fd;
};

Result<std::optional<Message>> read_message(int sock) {
    Message m;
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } control;
    std::memset(&control, 0, sizeof control);
    struct iovec iov = {&m.header, sizeof m.header};
    struct msghdr msg {};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.buf;
    msg.msg_controllen = sizeof control.buf;
    ssize_t n;
    do n = ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
    while (n < 0 && errno == EINTR);
    if (n < 0) return fail_errno("read from container");
    if (n == 0) return std::optional<Message>{};
    for (struct cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            int fd;
            std::memcpy(&fd, CMSG_DATA(c), sizeof fd);
            m.fd.reset(fd);
        }
    size_t got = static_cast<size_t>(n);
    auto read_exact = [&](char* p, size_t size) -> Result<> {
        while (size > 0) {
            ssize_t r = ::read(sock, p, size);
            if (r < 0 && errno == EINTR) continue;
            if (r < 0) return fail_errno("read from container");
            if (r == 0) return fail(EPIPE, "container closed the setup channel mid-message");
            p += r;
            size -= static_cast<size_t>(r);
        }
        return {};
    };
    if (got < sizeof m.header)
        BERTH_TRY_VOID(read_exact(reinterpret_cast<char*>(&m.header) + got, sizeof m.header - got));
    if (m.header.length > (1u << 20)) return fail(EPROTO, "oversized message from container");
    m.payload.resize(m.header.length);
    BERTH_TRY_VOID(read_exact(m.payload.data(), m.payload.size()));
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

// A detached copy (open_tree) of the mount tree at `path`.
Result<UniqueFd> open_detached_tree(const std::string& path) {
    UniqueFd tree(static_cast<int>(::syscall(SYS_open_tree, AT_FDCWD, path.c_str(),
                                             OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE)));
    if (!tree) return fail_errno("open_tree '{}'", path);
    return tree;
}

// Maps a detached tree's ids through the user namespace of `pid` (host root = container root).
Result<> idmap_tree(int tree, const std::string& path, pid_t pid) {
    UniqueFd userns(::open(fmt::format("/proc/{}/ns/user", pid).c_str(), O_RDONLY | O_CLOEXEC));
    if (!userns) return fail_errno("open user namespace of {}", pid);
    struct mount_attr attr {};
    attr.attr_set = MOUNT_ATTR_IDMAP;
    attr.userns_fd = static_cast<uint64_t>(userns.get());
    if (::syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) < 0)
        return fail_errno("idmap '{}'", path);
    return {};
}

// An idmapped copy of `path` for the container's user namespace, as a detached mount fd.
Result<UniqueFd> make_idmapped(const std::string& path, pid_t pid) {
    auto tree = BERTH_TRY(open_detached_tree(path));
    BERTH_TRY_VOID(idmap_tree(tree.get(), path, pid));
    return tree;
}

uint64_t now_usec() {
    struct timespec ts {};
    ::clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000000 + static_cast<uint64_t>(ts.tv_nsec) / 1000;
}

Result<int> run_impl(const config::Declaration& decl, const RunOptions& opt) {
    if (decl.name.empty()) return fail(EINVAL, "declaration has no name");
    const std::string cdir = BERTH_TRY(prepare_containers_run_dir());

    // One supervisor per name.
    const std::string lock_path = path_join(cdir, decl.name + ".lock");
    // 0600: a user who could open it could also flock it and make the name look taken.
    UniqueFd lock(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (!lock) return fail_errno("open '{}'", lock_path);
    if (::flock(lock.get(), LOCK_EX | LOCK_NB) < 0)
        return fail(EBUSY, "already running (lock '{}' is held)", lock_path);
    ScopeExit unlink_lock([&] { ::unlink(lock_path.c_str()); });

    // --- root file system ---
    store::MountSpec root;
    bool upper_on_stage = false;
    store::ImageConfig image;
    std::optional<bus::PreparedSnapshot> snapshot;
    std::string created_layer_dir;
    std::string stale_scratch;  // overlayfs' old scratch directory, removed during the start
    ScopeExit remove_stale_scratch([&] {
        if (!stale_scratch.empty()) (void)remove_tree(stale_scratch);
    });
    ScopeExit remove_new_layer([&] {
        if (!created_layer_dir.empty()) (void)remove_tree(created_layer_dir);
    });
    ScopeExit release_snapshot([&] {
        if (snapshot) (void)bus::release_container_snapshot(decl, snapshot->snapshot_id);
    });
    if (!decl.rootfs.empty()) {
        if (!is_directory(decl.rootfs))
            return fail(ENOENT, "root file system '{}' does not exist", decl.rootfs);
        root.kind = store::MountSpec::Kind::Overlay;
        root.lowerdirs = {decl.rootfs};
        if (decl.ephemeral) {
            upper_on_stage = true;
        } else {
            // The writable layer holds whatever the payload made, setuid-root binaries included:
            // the directories above it are root's alone (0700, as tmpfiles makes /var/lib/berth),
            // also when `berth run` is the first to create them.
            const std::string layers = path_join(state_dir(), "rootfs-layers");
            BERTH_TRY_VOID_CTX(make_private_directory(state_dir()), "state directory");
            BERTH_TRY_VOID_CTX(make_private_directory(layers), "writable layer");
            std::string layer = path_join(layers, decl.name);
            if (!path_exists(layer)) created_layer_dir = layer;
            root.upperdir = path_join(layer, "upper");
            root.workdir = path_join(layer, "work");
            BERTH_TRY_VOID_CTX(mkdir_p(root.upperdir, 0755), "writable layer");
            BERTH_TRY_VOID_CTX(mkdir_p(root.workdir, 0700), "writable layer");
            // overlayfs empties <workdir>/work (its scratch directory) at every mount: an rmdir on
            // the host file system, which on one mounted `discard` waits for the device (2-5 ms
            // here, in the middle of the start). Move it aside now, a rename, and remove it while
            // the child builds the root (after Go, below). One supervisor per name holds the
            // lock, so the fixed name cannot race; a leftover from a run that died goes first.
            const std::string scratch = path_join(root.workdir, "work");
            stale_scratch = path_join(layer, "work.old");
            if (path_exists(stale_scratch)) (void)remove_tree(stale_scratch);
            if (::rename(scratch.c_str(), stale_scratch.c_str()) < 0) stale_scratch.clear();
        }
    } else if (!decl.image.empty()) {
        auto prepared = bus::prepare_container_snapshot(decl);
        if (!prepared) return fail(prepared.error().wrap(fmt::format("prepare image '{}'", decl.image)));
        snapshot = std::move(*prepared);
        root = snapshot->rootfs;
        image = snapshot->config;
    } else {
        return fail(EINVAL, "neither 'rootfs' nor 'image' is set");
    }

    // --- identity-independent security ---
    auto userns = BERTH_TRY_CTX(resolve_user_namespace(decl, state_dir()), "user namespace");
    if (userns && !created_layer_dir.empty()) {
        // The container's root owns its new writable layer.
        (void)::chown(root.upperdir.c_str(), userns->base, userns->base);
        (void)::chown(root.workdir.c_str(), userns->base, userns->base);
    }

    // --- named volumes: created in the store on first use; a container that never starts takes
    // the empty volumes it created with it ---
    std::vector<bus::PreparedVolume> volumes = BERTH_TRY(bus::prepare_volumes(decl));
    bool keep_new_volumes = false;
    ScopeExit discard_volumes([&] {
        if (!keep_new_volumes) (void)bus::discard_new_volumes(volumes);
    });

    CapabilitySets root_caps = BERTH_TRY_CTX(compute_capabilities(decl.security, true), "capabilities");
    std::optional<SeccompProgram> seccomp;
    if (decl.security.seccomp != config::SeccompMode::Unconfined) {
        SeccompProfile loaded;
        const SeccompProfile* profile = &default_seccomp_profile();
        if (decl.security.seccomp == config::SeccompMode::Profile) {
            loaded = BERTH_TRY(load_seccomp_profile(decl.security.seccomp_profile));
            profile = &loaded;
        }
        struct utsname uts {};
        ::uname(&uts);
        auto rules = resolve_seccomp_rules(*profile, root_caps.bounding, uts.release);
        seccomp = BERTH_TRY(compile_seccomp(profile->default_action, profile->default_errno, rules,
                                            seccomp_cache_dir(), profile->abis));
    }

    // --- command and environment inputs ---
    std::vector<std::string> command = decl.command;
    if (command.empty()) {
        command = image.entrypoint;
        command.insert(command.end(), image.cmd.begin(), image.cmd.end());
    }
    if (command.empty()) return fail(EINVAL, "no command to run (set 'command' in [container])");
    std::vector<ChildRlimit> rlimits;
    for (const auto& [name, value] : decl.resources.limits) {
        int res = BERTH_TRY_CTX(rlimit_resource(name), "[resources] limits");
        rlimits.push_back({res, {static_cast<rlim_t>(value), static_cast<rlim_t>(value)}});
    }

    // --- cgroup ---
    std::string cg_mount = BERTH_TRY_CTX(cgroup2_mount_point(), "cgroup");
    ContainerCgroup cgroup;
    if (opt.systemd) {
        cgroup = BERTH_TRY_CTX(ContainerCgroup::split_delegated(cg_mount), "cgroup");
    } else {
        bool own_parent = opt.cgroup_parent.empty();
        std::string parent = own_parent ? path_join(cg_mount, "berth") : opt.cgroup_parent;
        cgroup = BERTH_TRY_CTX(ContainerCgroup::create_own(parent, decl.name, decl.resources, own_parent),
                               "cgroup");
    }
    if (opt.warn)
        for (const auto& w : cgroup.warnings()) opt.warn(w);

    // --- notify relay (notify = "container") ---
    UniqueFd notify_socket;
    std::string notify_path;
    ScopeExit unlink_notify([&] {
        if (!notify_path.empty()) ::unlink(notify_path.c_str());
    });
    const char* host_notify = std::getenv("NOTIFY_SOCKET");
    if (decl.notify == config::NotifyMode::Container && host_notify && *host_notify) {
        notify_path = path_join(cdir, decl.name + ".notify");
        ::unlink(notify_path.c_str());
        notify_socket.reset(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
        struct sockaddr_un sa {};
        sa.sun_family = AF_UNIX;
        if (!notify_socket || notify_path.size() >= sizeof sa.sun_path)
            return fail(EINVAL, "notify socket path too long");
        std::memcpy(sa.sun_path, notify_path.c_str(), notify_path.size());
        // Senders are told apart by their credentials (notify-relay.h), not by the socket's mode:
        // any uid of the container must be able to send.
        if (int r = enable_notify_credentials(notify_socket.get()); r < 0)
            return fail(-r, "notify socket: SO_PASSCRED");
        if (::bind(notify_socket.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0)
            return fail_errno("bind notify socket '{}'", notify_path);
        ::chmod(notify_path.c_str(), 0666);
    }

    // --- mount plan ---
    const std::string hostname = decl.hostname.empty() ? decl.name : decl.hostname;
    const std::string stage = path_join(run_dir(), ".stage");
    BERTH_TRY_VOID_CTX(mkdir_p(stage, 0755), "stage directory");
    const bool new_netns = decl.network.mode != config::NetworkMode::Host;
    MountInputs mi;
    mi.decl = &decl;
    mi.root = root;
    mi.upper_on_stage = upper_on_stage;
    mi.stage_dir = stage;
    mi.user_namespace = userns.has_value();
    mi.new_network_namespace = new_netns;
    mi.hostname_file = render_hostname(hostname);
    std::string address = BERTH_TRY_CTX(planned_address(decl), "network");
    mi.hosts_file = render_hosts(hostname, address);
    mi.resolv_conf = render_resolv_conf(decl.network.mode, read_file("/etc/resolv.conf").value_or(""));
    mi.notify_socket_host = notify_path;
    for (const auto& v : volumes) {
        mi.volumes.emplace(v.name, v.mount);
        if (v.created) mi.new_volumes.insert(v.name);
    }
    MountPlan plan = BERTH_TRY(plan_mounts(mi));
    // Detached trees (volumes) the child attaches; it inherits these fds with the clone.
    std::vector<UniqueFd> trees;
    for (auto& op : plan.ops) {
        if (!op.detached) continue;
        auto tree = BERTH_TRY_CTX(open_detached_tree(op.source), fmt::format("mount '{}'", op.target));
        op.tree_fd = tree.get();
        trees.push_back(std::move(tree));
    }
    const std::string root_dir = path_join(stage, "root");

    // --- start ---
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) return fail_errno("socketpair");
    UniqueFd parent_end(sv[0]), child_end(sv[1]);
    UniqueFd devnull;
    if (!opt.interactive && !opt.tty) {
        devnull.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
        if (!devnull) return fail_errno("open /dev/null");
    }
    SignalsBlocked signals = BERTH_TRY(block_forwarded_signals());

    // The child decodes the launch message into these without allocating. They are uninitialised
    // on purpose: above malloc's mmap threshold they are fresh anonymous mappings, so only the
    // child's copy-on-write pages ever become resident; zero-filling them cost the supervisor
    // 1.5 MiB of RSS for its whole life. Freed once the payload is exec'd.
    constexpr size_t kLaunchCapacity = 1u << 20, kPointerCapacity = 1u << 16;
    auto launch_buffer = std::make_unique_for_overwrite<char[]>(kLaunchCapacity);
    auto pointer_buffer = std::make_unique_for_overwrite<char*[]>(kPointerCapacity);
    ChildConfig cfg;
    cfg.sync_fd = child_end.get();
    cfg.stdin_fd = devnull.get();
    cfg.plan = &plan;
    cfg.stage_dir = stage.c_str();
    cfg.root_dir = root_dir.c_str();
    cfg.hostname = hostname.c_str();
    cfg.loopback_up = new_netns;
    cfg.user_namespace = userns.has_value();
    cfg.tty = opt.tty;
    cfg.init = decl.init;
    cfg.no_new_privileges = decl.security.no_new_privileges;
    cfg.bounding = root_caps.bounding;
    cfg.last_cap = last_capability();
    if (seccomp) {
        cfg.seccomp = seccomp->bpf.data();
        cfg.seccomp_size = seccomp->bpf.size();
    }
    cfg.rlimits = rlimits.data();
    cfg.nrlimits = rlimits.size();
    cfg.launch_buffer = launch_buffer.get();
    cfg.launch_capacity = kLaunchCapacity;
    cfg.pointer_buffer = pointer_buffer.get();
    cfg.pointer_capacity = kPointerCapacity;

    uint64_t flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWCGROUP;
    if (new_netns) flags |= CLONE_NEWNET;
    if (userns) flags |= CLONE_NEWUSER;
    bool in_child = false;
    ChildProcess child = BERTH_TRY_CTX(clone_child(flags, cgroup.payload_fd(), &in_child), "start");
    if (in_child) {
        ::close(sv[0]);
        child_main(cfg);
    }
    child_end.reset();

    // --- from outside: id maps, idmapped base layer, network ---
    UniqueFd idmapped;
    if (userns) {
        BERTH_TRY_VOID_CTX(write_id_maps(child.pid(), *userns), "user namespace");
        if (root.kind == store::MountSpec::Kind::Overlay) {
            auto m = make_idmapped(root.lowerdirs[0], child.pid());
            if (m)
                idmapped = std::move(*m);
            else if (opt.warn)
                opt.warn(fmt::format("{}; files owned by host root appear as 'nobody' in the container",
                                     m.error().what()));
        }
    }
    if (userns)
        for (const auto& op : plan.ops)
            if (op.tree_fd >= 0)
                if (auto r = idmap_tree(op.tree_fd, op.source, child.pid()); !r && opt.warn)
                    opt.warn(fmt::format("{}; files owned by host root appear as 'nobody' in '{}'",
                                         r.error().what(), op.target));
    auto network = BERTH_TRY_CTX(attach_network(decl, child.pid()), "network");
    if (network && opt.warn)
        for (const auto& w : network->warnings()) opt.warn(w);
    GoPayload go;
    go.idmapped_lower = idmapped ? 1 : 0;
    if (send_message(parent_end.get(), MessageType::Go, &go, sizeof go, idmapped ? idmapped.get() : -1) < 0)
        return fail(died_early(child));
    idmapped.reset();
    // While the child mounts: the I/O wait of this removal overlaps its work.
    if (!stale_scratch.empty()) {
        (void)remove_tree(stale_scratch);
        stale_scratch.clear();
    }
    trees.clear();  // the child holds its own copies until it has attached them

    // --- the child builds its root ---
    auto mounted = BERTH_TRY(read_message(parent_end.get()));
    if (!mounted) return fail(died_early(child));
    if (mounted->header.type == MessageType::Error) return fail(error_from(*mounted));
    if (mounted->header.type != MessageType::Mounted)
        return fail(EPROTO, "unexpected message from container");
    UniqueFd pty_master = std::move(mounted->fd);

    // --- identity from the container's own files ---
    UniqueFd croot(
        ::open(fmt::format("/proc/{}/root", child.pid()).c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!croot) return fail_errno("open the container's root");
    std::string passwd = BERTH_TRY_CTX(read_container_file(croot.get(), "/etc/passwd"), "user");
    std::string group = BERTH_TRY_CTX(read_container_file(croot.get(), "/etc/group"), "user");
    std::string user =
        decl.user.user.empty() && decl.user.group.empty() ? image.user : user_spec_string(decl.user);
    Identity id = BERTH_TRY_CTX(resolve_identity(user, decl.supplementary_groups, passwd, group), "user");

    EnvironmentInputs ei;
    ei.image_env = image.env;
    ei.environment_files = decl.environment_files;
    ei.table = decl.environment;
    ei.hostname = hostname;
    ei.home = id.home;
    ei.tty = opt.tty;
    if (notify_socket) ei.notify_socket = kNotifySocketInContainer;
    std::vector<std::string> env = BERTH_TRY(compose_environment(ei));
    std::string workdir = !decl.workdir.empty()        ? decl.workdir
                          : !image.working_dir.empty() ? image.working_dir
                                                       : "/";
    std::string search_path = kDefaultPath;
    for (const auto& e : env)
        if (e.rfind("PATH=", 0) == 0) search_path = e.substr(5);

    LaunchHeader lh;
    lh.uid = id.uid;
    lh.gid = id.gid;
    lh.ngroups = static_cast<uint32_t>(id.groups.size());
    lh.argc = static_cast<uint32_t>(command.size());
    lh.envc = static_cast<uint32_t>(env.size());
    lh.effective = lh.permitted = id.uid == 0 ? root_caps.bounding : 0;
    std::string blob(reinterpret_cast<const char*>(&lh), sizeof lh);
    blob.append(reinterpret_cast<const char*>(id.groups.data()), id.groups.size() * sizeof(gid_t));
    for (const auto& a : command) blob.append(a.c_str(), a.size() + 1);
    for (const auto& e : env) blob.append(e.c_str(), e.size() + 1);
    blob.append(workdir.c_str(), workdir.size() + 1);
    blob.append(search_path.c_str(), search_path.size() + 1);
    if (blob.size() > kLaunchCapacity || command.size() + env.size() + 2 > kPointerCapacity)
        return fail(E2BIG, "command and environment are too large");
    if (send_message(parent_end.get(), MessageType::Launch, blob.data(), static_cast<uint32_t>(blob.size())) <
        0)
        return fail(died_early(child));

    // --- EOF: execve succeeded (the channel is close-on-exec) ---
    auto launched = BERTH_TRY(read_message(parent_end.get()));
    if (launched) {
        if (launched->header.type == MessageType::Error) return fail(error_from(*launched));
        return fail(EPROTO, "unexpected message from container");
    }
    keep_new_volumes = true;  // the payload runs: its volumes hold its data from now on
    parent_end.reset();
    launch_buffer.reset();
    pointer_buffer.reset();

    RuntimeState st;
    st.name = decl.name;
    st.pid = child.pid();
    st.supervisor_pid = ::getpid();
    st.cgroup = cgroup.payload_path();
    st.started_at_usec = now_usec();
    st.network_mode = network_mode_name(decl.network.mode);
    st.address = network ? network->address() : "";
    st.hostname = hostname;
    st.user_namespace = userns;
    st.uid = id.uid;
    st.gid = id.gid;
    st.groups.assign(id.groups.begin(), id.groups.end());
    st.env = env;
    st.workdir = workdir;
    st.bounding = root_caps.bounding;
    st.effective = lh.effective;
    st.no_new_privileges = decl.security.no_new_privileges;
    if (seccomp) {
        // `berth exec` loads the same program; make sure it is on disk even if caching failed.
        if (!path_exists(seccomp->cache_path))
            (void)write_file_atomic(
                seccomp->cache_path,
                std::string_view(reinterpret_cast<const char*>(seccomp->bpf.data()), seccomp->bpf.size()),
                0600);
        st.seccomp = seccomp->cache_path;
    }
    // What the RAII owners here undo, for a teardown in another process image (handover.h).
    st.teardown.cgroup_remove = cgroup.created_path();
    st.teardown.cgroup_prune = cgroup.prune_path();
    st.teardown.notify_socket = notify_path;
    st.teardown.snapshot = snapshot.has_value();
    if (network) st.teardown.network = network->teardown_record();
    BERTH_TRY_VOID_CTX(write_state(st), "write runtime state");
    ScopeExit drop_state([&] { remove_state(decl.name); });

    if (notify_socket)
        notify_systemd(
            fmt::format("MAINPID={}\nSTATUS=Container {} started, waiting for it to report readiness",
                        ::getpid(), decl.name)
                .c_str());
    else
        notify_systemd(
            fmt::format("READY=1\nMAINPID={}\nSTATUS=Container {} running", ::getpid(), decl.name).c_str());
    if (opt.on_started) opt.on_started(child.pid());

    // --- supervise: here at first, then (if the payload still runs after
    // opt.handover_delay_ms) in the small berth-supervise, which only returns on failure ---
    char relay_buf[16384];
    Relay relay;
    relay.pidfd = child.pidfd();
    relay.signal_fd = signals.fd();
    relay.pty_master = pty_master ? pty_master.get() : -1;
    relay.notify_socket = notify_socket ? notify_socket.get() : -1;
    relay.payload = child.pid();
    relay.stop_signal = decl.stop_signal;
    relay.buf = relay_buf;
    relay.buf_size = sizeof relay_buf;
    relay_start(&relay);
    RawTerminalScope terminal(pty_master.valid());
    const bool hand_over = !opt.supervisor_exe.empty() && !opt.teardown_exe.empty();
    std::optional<int> exited;
    if (hand_over) {
        // A payload that is done within the delay (a quick command, a start-latency benchmark)
        // never pays for the two execs; one that stays is supervised by the small executable.
        if (opt.handover_delay_ms > 0)
            exited = BERTH_TRY(supervise_relay(
                &relay, child, relay_monotonic_msec() + static_cast<uint64_t>(opt.handover_delay_ms)));
        if (!exited) {
            // berth-supervise puts the terminal in raw mode itself (and restores this mode).
            terminal.restore();
            HandoverFds fds;
            fds.pidfd = child.pidfd();
            fds.signal_fd = signals.fd();
            fds.pty_master = relay.pty_master;
            fds.notify_socket = relay.notify_socket;
            fds.lock_fd = lock.get();
            Error e = hand_over_supervision(opt.supervisor_exe, opt.teardown_exe, decl.name, decl.stop_signal,
                                            relay.stop_requests, fds);
            terminal.make_raw();
            if (opt.warn) opt.warn(fmt::format("supervising in berth itself: {}", e.what()));
        }
    }
    if (!exited) exited = BERTH_TRY(supervise_relay(&relay, child, 0));
    int status = *exited;
    notify_systemd(
        fmt::format("STOPPING=1\nSTATUS=Container {} exited with status {}", decl.name, status).c_str());

    // --- tear down (the rest goes with the RAII owners above) ---
    BERTH_TRY_VOID_CTX(cgroup.destroy(), "cgroup");
    network.reset();
    created_layer_dir.clear();  // a persistent layer that ran is kept
    return status;
}

}  // namespace

Result<int> run_container(const config::Declaration& decl, const RunOptions& options) {
    auto result = run_impl(decl, options);
    if (!result) return fail(std::move(result.error()).wrap(fmt::format("container '{}'", decl.name)));
    return result;
}

}  // namespace berth::runtime
