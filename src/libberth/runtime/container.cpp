// `berth run`: one container, in four stages along systemd-nspawn's lines, each with typed inputs
// and outputs and RAII owners for what it makes, so that a start that fails at any step undoes
// exactly what was done (in reverse order: the objects below go away in reverse):
//   1. rootfs   (container-rootfs.h):   the directory and its writable layer, or the snapshot;
//   2. security (container-security.h): user namespace, capabilities, seccomp, rlimits;
//      then the named volumes, the cgroup and the notify relay socket (here);
//   3. launch   (container-launch.h):   mounts planned, the child cloned and talked through the
//      sync protocol until the payload is exec'd;
//   4. supervise (container-supervise.h): state record, readiness, the supervise loop (relay.h)
//      and the hand-over to berth-supervise.
#include "runtime/container.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "basic/fs-util.h"
#include "basic/string-util.h"
#include "bus/storage-client.h"
#include "config/unit.h"
#include "runtime/cgroup.h"
#include "runtime/container-launch.h"
#include "runtime/container-rootfs.h"
#include "runtime/container-security.h"
#include "runtime/container-supervise.h"
#include "runtime/devices.h"
#include "runtime/notify-relay.h"
#include "runtime/paths.h"
#include "runtime/sd-notify.h"
#include "runtime/supervise.h"

namespace berth::runtime {

namespace {

// One supervisor per name: an flock on <containers run dir>/NAME.lock, unlinked on the way out.
class NameLock {
public:
    ~NameLock() {
        if (fd_) ::unlink(path_.c_str());
    }
    Result<> acquire(const std::string& dir, const std::string& name) {
        path_ = path_join(dir, name + ".lock");
        // 0600: a user who could open it could also flock it and make the name look taken.
        UniqueFd fd(::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
        if (!fd) return fail_errno("open '{}'", path_);
        if (::flock(fd.get(), LOCK_EX | LOCK_NB) < 0)
            return fail(EBUSY, "already running (lock '{}' is held)", path_);
        fd_ = std::move(fd);
        return {};
    }
    int fd() const { return fd_.get(); }

private:
    std::string path_;
    UniqueFd fd_;
};

// The named volumes, created in the store on first use; a container that never starts takes the
// empty volumes it created with it.
class NewVolumes {
public:
    explicit NewVolumes(bus::StorageSession& storage) : storage_(storage) {}
    NewVolumes(const NewVolumes&) = delete;
    NewVolumes& operator=(const NewVolumes&) = delete;
    ~NewVolumes() {
        if (!keep_) (void)bus::discard_new_volumes(storage_, volumes_);
    }
    Result<> prepare(const config::Declaration& decl) {
        volumes_ = BERTH_TRY(bus::prepare_volumes(storage_, decl));
        return {};
    }
    const std::vector<bus::PreparedVolume>& list() const { return volumes_; }
    void keep() { keep_ = true; }  // the payload runs: its volumes hold its data from now on

private:
    bus::StorageSession& storage_;
    std::vector<bus::PreparedVolume> volumes_;
    bool keep_ = false;
};

// notify = "container": the relay socket the payload's sd_notify() reaches (notify-relay.h),
// bound at <containers run dir>/NAME.notify and unlinked on the way out.
class NotifySocket {
public:
    ~NotifySocket() {
        if (!path_.empty()) ::unlink(path_.c_str());
    }
    Result<> bind(const std::string& dir, const std::string& name) {
        path_ = path_join(dir, name + ".notify");
        ::unlink(path_.c_str());
        fd_.reset(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
        struct sockaddr_un sa {};
        sa.sun_family = AF_UNIX;
        if (!fd_ || path_.size() >= sizeof sa.sun_path) return fail(EINVAL, "notify socket path too long");
        std::memcpy(sa.sun_path, path_.c_str(), path_.size());
        // Senders are told apart by their credentials (notify-relay.h), not by the socket's mode:
        // any uid of the container must be able to send.
        if (int r = enable_notify_credentials(fd_.get()); r < 0)
            return fail(-r, "notify socket: SO_PASSCRED");
        if (::bind(fd_.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0)
            return fail_errno("bind notify socket '{}'", path_);
        ::chmod(path_.c_str(), 0666);
        return {};
    }
    int fd() const { return fd_ ? fd_.get() : -1; }
    const std::string& path() const { return path_; }

private:
    std::string path_;
    UniqueFd fd_;
};

Result<std::vector<std::string>> payload_command(const config::Declaration& decl,
                                                 const store::ImageConfig& image) {
    std::vector<std::string> command = decl.command;
    if (command.empty()) {
        command = image.entrypoint;
        command.insert(command.end(), image.cmd.begin(), image.cmd.end());
    }
    if (command.empty()) return fail(EINVAL, "no command to run (set 'command' in [container])");
    return command;
}

Result<ContainerCgroup> make_cgroup(const config::Declaration& decl, const RunOptions& opt) {
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
    return cgroup;
}

// BERTH_TEST_SIGNAL_AT=STEP[:SIGNUM] (tests only): raise SIGNUM (default SIGINT) at STEP, so
// that a test interrupts every step of the start in turn, deterministically.
void test_signal_at(std::string_view step) {
    static const char* at = std::getenv("BERTH_TEST_SIGNAL_AT");
    if (!at) return;
    std::string_view want = at;
    int sig = SIGINT;
    if (auto colon = want.find(':'); colon != std::string_view::npos) {
        sig = std::atoi(at + colon + 1);
        want = want.substr(0, colon);
    }
    if (want == step) ::kill(::getpid(), sig);
}

// Between the steps of a start: a SIGINT/SIGTERM/SIGHUP/SIGQUIT (blocked since the first step)
// stops it there, and the owners above undo what was made. Before, a Ctrl-C in the first
// milliseconds killed berth outright and left the lock file and a writable layer behind
// (issue #15 item 8). Once the payload runs, the supervise loop reads them as stop requests.
Result<> checkpoint(std::string_view step) {
    test_signal_at(step);
    if (int sig = take_stop_request())
        return fail(EINTR, "start interrupted by SIG{} (after step '{}'): nothing was left behind",
                    sigabbrev_np(sig), step);
    return {};
}

// While `berth run --systemd` pulls its image (pull = ..., issue #17), systemd hears of it: STATUS=
// says "pulling REF", and each step of progress (new bytes, at most once a second) pushes the
// start timeout kPullExtend further with EXTEND_TIMEOUT_USEC=, so that a large first pull is not
// killed by TimeoutStartSec while a stalled one still is (kPullExtend after its last byte).
constexpr auto kPullExtend = std::chrono::seconds(30);

bus::PullHooks pull_hooks(const RunOptions& opt) {
    bus::PullHooks hooks;
    hooks.warn = opt.warn;
    // The stop signals are blocked during a start (checkpoint() takes them between steps); a pull
    // is one step that can last minutes, so it takes them while it runs.
    hooks.stop_requested = [] { return take_stop_request(); };
    if (!opt.systemd) return hooks;
    struct Seen {
        std::string reference;
        uint64_t bytes = 0;
        std::chrono::steady_clock::time_point at{};
    };
    auto seen = std::make_shared<Seen>();
    const auto extend = std::chrono::duration_cast<std::chrono::microseconds>(kPullExtend).count();
    hooks.started = [seen, extend](const std::string& reference) {
        seen->reference = reference;
        seen->at = std::chrono::steady_clock::now();
        (void)notify_systemd(
            fmt::format("STATUS=pulling {}\nEXTEND_TIMEOUT_USEC={}", reference, extend).c_str());
    };
    hooks.progress = [seen, extend](double, uint64_t bytes) {
        auto now = std::chrono::steady_clock::now();
        if (bytes <= seen->bytes || now - seen->at < std::chrono::seconds(1)) return;
        seen->bytes = bytes;
        seen->at = now;
        (void)notify_systemd(fmt::format("STATUS=pulling {} ({} bytes)\nEXTEND_TIMEOUT_USEC={}",
                                         seen->reference, bytes, extend)
                                 .c_str());
    };
    return hooks;
}

Result<int> run_impl(const config::Declaration& decl, const RunOptions& opt) {
    if (decl.name.empty()) return fail(EINVAL, "declaration has no name");
    // First: restored last, once everything below is undone or handed over.
    // First of all: the sockets become close-on-exec before berth runs any helper (berthd).
    ListenFds listen = BERTH_TRY(take_listen_fds());
    order_listen_fds(listen, config::listen_fd_names(decl));
    SignalsBlocked signals = BERTH_TRY(block_forwarded_signals());
    BERTH_TRY_VOID(checkpoint("begin"));
    const std::string cdir = BERTH_TRY(prepare_containers_run_dir());
    NameLock lock;
    BERTH_TRY_VOID(lock.acquire(cdir, decl.name));
    BERTH_TRY_VOID(checkpoint("lock"));
    // Before anything is made: a secret that cannot be read fails the start with nothing to undo.
    std::vector<SecretValue> secrets = BERTH_TRY(read_secrets(decl, opt.systemd));

    // One connection to storage for the snapshot, the volumes and their release (it outlives
    // their owners below, which release through it).
    bus::StorageSession storage;
    storage.pull_hooks = pull_hooks(opt);
    // --- 1. root file system ---
    ContainerRoot root(decl, storage);
    BERTH_TRY_VOID(root.prepare());
    // Never silent (issue #15 item 1): the run's log says when the image changed under a
    // persistent container, and what became of its writable layer.
    if (auto change = root.image_change_message(); !change.empty() && opt.warn) opt.warn(change);
    BERTH_TRY_VOID(checkpoint("rootfs"));

    // --- 2. identity-independent security, volumes, cgroup, notify relay ---
    // With a user namespace the writable layer stays unshifted (root-assembly.h): no chown.
    SecurityPlan security = BERTH_TRY(plan_security(decl));
    // Declarations are portable: a device missing here fails this start, naming it.
    DevicePlan devices = BERTH_TRY_CTX(plan_devices(decl), "devices");
    BERTH_TRY_VOID(checkpoint("security"));
    NewVolumes volumes(storage);
    BERTH_TRY_VOID(volumes.prepare(decl));
    BERTH_TRY_VOID(checkpoint("volumes"));
    storage.idle();  // until the container stops: the store's lock is free meanwhile
    LaunchInputs in;
    in.command = BERTH_TRY(payload_command(decl, root.image()));
    ContainerCgroup cgroup = BERTH_TRY(make_cgroup(decl, opt));
    BERTH_TRY_VOID(checkpoint("cgroup"));
    NotifySocket notify;
    const char* host_notify = std::getenv("NOTIFY_SOCKET");
    if (decl.notify == config::NotifyMode::Container && host_notify && *host_notify)
        BERTH_TRY_VOID(notify.bind(cdir, decl.name));
    BERTH_TRY_VOID(checkpoint("notify"));

    // --- 3. launch ---
    in.decl = &decl;
    in.options = &opt;
    in.root = &root;
    in.security = &security;
    in.volumes = &volumes.list();
    in.cgroup = &cgroup;
    in.devices = &devices;
    in.notify_socket = notify.path();
    in.hostname = decl.hostname.empty() ? decl.name : decl.hostname;
    in.signal_fd = signals.fd();
    in.secrets = &secrets;
    in.listen = &listen;
    // The state `berth exec` and `berth list` read, written before the payload may exec (a
    // payload that is up can be entered at once) and removed after it is gone.
    StateInputs si;
    si.decl = &decl;
    si.cgroup = &cgroup;
    si.security = &security;
    si.hostname = in.hostname;
    si.notify_socket = notify.path();
    si.snapshot = root.has_snapshot();
    si.image = &root.image();
    si.image_id = root.image_id();
    StateFile state;
    in.before_exec = [&](const Launched& child) {
        si.launched = &child;
        auto written = state.write(describe_running(si));
        si.launched = nullptr;
        return written;
    };
    Launched launched;
    BERTH_TRY_VOID(launch_container(in, &launched));
    forget_secrets(secrets);
    // From here a stop request is the supervise loop's: it reaches the payload.
    test_signal_at("launched");
    volumes.keep();
    root.payload_started();

    // --- 4. supervise ---
    SuperviseInputs sup;
    sup.decl = &decl;
    sup.options = &opt;
    sup.launched = &launched;
    sup.notify_socket = notify.fd();
    sup.lock_fd = lock.fd();
    sup.storage = &storage;
    sup.image = &root.image();
    int status = BERTH_TRY(supervise_container(sup));

    // --- tear down (the rest goes with the RAII owners above) ---
    BERTH_TRY_VOID_CTX(cgroup.destroy(), "cgroup");
    launched.network.reset();
    root.keep_layer();  // a persistent layer that ran is kept
    return status;
}

}  // namespace

Result<int> run_container(const config::Declaration& decl, const RunOptions& options) {
    auto result = run_impl(decl, options);
    if (!result) return fail(std::move(result.error()).wrap(fmt::format("container '{}'", decl.name)));
    return result;
}

}  // namespace berth::runtime
