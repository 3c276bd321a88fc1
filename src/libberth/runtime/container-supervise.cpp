#include "runtime/container-supervise.h"

#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <iterator>
#include <optional>

#include "basic/fs-util.h"
#include "basic/time-util.h"
#include "basic/unique.h"
#include "config/values.h"
#include "runtime/handover.h"
#include "runtime/health-supervise.h"
#include "runtime/relay.h"
#include "runtime/sd-notify.h"
#include "runtime/supervise.h"

namespace berth::runtime {

RuntimeState describe_running(const StateInputs& in) {
    const config::Declaration& decl = *in.decl;
    const Launched& l = *in.launched;
    RuntimeState st;
    st.name = decl.name;
    st.pid = l.child.pid();
    st.supervisor_pid = ::getpid();
    st.cgroup = in.cgroup->payload_path();
    st.started_at_usec = now_usec(CLOCK_REALTIME);
    st.image_id = in.image_id;
    st.network_mode = config::network_mode_name(decl.network.mode);
    st.address = l.network ? l.network->address() : "";
    st.hostname = in.hostname;
    st.user_namespace = in.security->user_namespace;
    st.uid = l.identity.uid;
    st.gid = l.identity.gid;
    st.groups.assign(l.identity.groups.begin(), l.identity.groups.end());
    st.env = l.env;
    st.workdir = l.workdir;
    st.bounding = in.security->root_caps.bounding;
    st.effective = l.effective_caps;
    st.no_new_privileges = decl.security.no_new_privileges;
    if (const auto& seccomp = in.security->seccomp) {
        // `berth exec` loads the same program; make sure it is on disk even if caching failed.
        if (!path_exists(seccomp->cache_path))
            (void)write_file_atomic(
                seccomp->cache_path,
                std::string_view(reinterpret_cast<const char*>(seccomp->bpf.data()), seccomp->bpf.size()),
                0600);
        st.seccomp = seccomp->cache_path;
    }
    if (auto health = resolve_health(decl, in.image); health && *health) st.health = std::move(**health);
    st.teardown.cgroup_remove = in.cgroup->created_path();
    st.teardown.cgroup_prune = in.cgroup->prune_path();
    st.teardown.notify_socket = in.notify_socket;
    st.teardown.snapshot = in.snapshot;
    if (l.network) st.teardown.network = l.network->teardown_record();
    return st;
}

Result<> StateFile::write(const RuntimeState& st) {
    BERTH_TRY_VOID_CTX(write_state(st), "write runtime state");
    name_ = st.name;
    return {};
}

Result<int> supervise_container(const SuperviseInputs& in) {
    const config::Declaration& decl = *in.decl;
    const RunOptions& opt = *in.options;
    Launched& l = *in.launched;
    const uint64_t started_msec = relay_monotonic_msec();
    auto spec = BERTH_TRY(resolve_health(decl, in.image));
    if (decl.notify == config::NotifyMode::Healthy) {
        // Not ready before the first passing probe; until the supervisor's health check runs and
        // extends it probe by probe, the start period's first probe is what TimeoutStartSec= must
        // allow for.
        std::string extend;
        if (spec && spec->start_period_us > 0)
            extend = fmt::format("\nEXTEND_TIMEOUT_USEC={}",
                                 spec->start_interval_us + spec->timeout_us + 10'000'000);
        notify_systemd(fmt::format("MAINPID={}\nSTATUS=Container {} started, waiting for its first passing "
                                   "health probe{}",
                                   ::getpid(), decl.name, extend)
                           .c_str());
    } else if (in.notify_socket >= 0)
        notify_systemd(
            fmt::format("MAINPID={}\nSTATUS=Container {} started, waiting for it to report readiness",
                        ::getpid(), decl.name)
                .c_str());
    else
        notify_systemd(
            fmt::format("READY=1\nMAINPID={}\nSTATUS=Container {} running", ::getpid(), decl.name).c_str());
    if (opt.on_started) opt.on_started(l.child.pid());

    char relay_buf[16384];
    Relay relay;
    relay.pidfd = l.child.pidfd();
    relay.signal_fd = l.signal_fd;
    relay.pty_master = l.pty_master ? l.pty_master.get() : -1;
    relay.notify_socket = in.notify_socket;
    relay.payload = l.child.pid();
    relay.stop_signal = decl.stop_signal;
    relay.name = decl.name.c_str();
    relay.buf = relay_buf;
    relay.buf_size = sizeof relay_buf;
    relay_start(&relay);
    RawTerminalScope terminal(l.pty_master.valid());
    // The health check starts with the long supervision (berth-supervise's, or ours when the
    // hand-over failed): the first probe is due a start interval after the start, well after the
    // hand-over delay.
    RelayHealth health;
    if (spec) {
        HealthTiming& t = health.machine.timing;
        t.interval_ms = spec->interval_us / 1000;
        t.timeout_ms = spec->timeout_us / 1000;
        t.start_period_ms = spec->start_period_us / 1000;
        t.start_interval_ms = spec->start_interval_us / 1000;
        t.retries = spec->retries;
        t.on_failure = spec->on_failure;
        health.notify_ready = spec->notify_healthy;
        health.watchdog = spec->watchdog;
        health.name = decl.name.c_str();
        health.started_msec = started_msec;
    }
    char health_arg[160] = "-";
    if (spec && health_format_arg(health, health_arg, sizeof health_arg) < 0)
        return fail(EOVERFLOW, "health check timing");
    std::optional<int> exited;
    // A payload that is done within the delay (a quick command, a start-latency benchmark) never
    // pays for the two execs of a hand-over, nor for a second private berthd to release its
    // snapshot; one that stays is supervised by the small executable, and lets go of storage.
    if (opt.handover_delay_ms > 0)
        exited = BERTH_TRY(supervise_relay(
            &relay, l.child, relay_monotonic_msec() + static_cast<uint64_t>(opt.handover_delay_ms)));
    if (!exited && in.storage) in.storage->close();
    if (!exited && !opt.supervisor_exe.empty() && !opt.teardown_exe.empty()) {
        // berth-supervise puts the terminal in raw mode itself (and restores this mode).
        terminal.restore();
        HandoverFds fds;
        fds.pidfd = l.child.pidfd();
        fds.signal_fd = l.signal_fd;
        fds.pty_master = relay.pty_master;
        fds.notify_socket = relay.notify_socket;
        fds.lock_fd = in.lock_fd;
        Error e = hand_over_supervision(opt.supervisor_exe, opt.teardown_exe, decl.name, decl.stop_signal,
                                        relay.stop_requests, fds, health_arg);
        terminal.make_raw();
        if (opt.warn) opt.warn(fmt::format("supervising in berth itself: {}", e.what()));
    }
    UniqueFd self_exe;
    if (!exited && spec) {
        // Probes run the full berth binary: this one, through an fd (as the teardown does).
        self_exe.reset(::open("/proc/self/exe", O_PATH | O_CLOEXEC));
        if (!self_exe) return fail_errno("open /proc/self/exe for the health probes");
        health.exe_fd = self_exe.get();
        if (int rc = health_start(&health); rc < 0) return fail(-rc, "start the health check");
        relay.health = &health;
    }
    if (!exited) exited = BERTH_TRY(supervise_relay(&relay, l.child, 0));
    if (relay.health) {
        health_stop(&health);
        if (health.forced_status) exited = health.forced_status;
    }
    notify_systemd(
        fmt::format("STOPPING=1\nSTATUS=Container {} exited with status {}", decl.name, *exited).c_str());
    return *exited;
}

}  // namespace berth::runtime
