// The hand-over between `berth run` and berth-supervise, the small executable that supervises a
// running payload in berth's place (issue #3: a supervisor under 2 MiB RSS).
//
// Once the payload has run for RunOptions::handover_delay_ms (so that a quick command never pays
// for two execs), `berth run` execve()s berth-supervise in the SAME process, so MAINPID,
// the cgroup, the flock on NAME.lock, the blocked signal mask and the open fds all carry over.
// When the payload has exited, berth-supervise sends systemd STOPPING=1 (by hand: a datagram to
// $NOTIFY_SOCKET) and execve()s the full berth binary (through an O_PATH
// fd opened before the first exec, so a replaced binary does not matter) as
//   berth internal-teardown --status S --lock-fd L NAME
// which undoes what the RAII owners of run_container() would have undone, from the runtime state
// file (state.h, "teardown"), and exits with the payload's status.
//
// This header is shared by both programs; it must stay free of anything but constants (the
// small executable links nothing but a static libc).
#pragma once

namespace berth::runtime {

// argv[1] of berth-supervise: bumped whenever the argv layout below changes, so that a
// berth-supervise from another build refuses to run instead of misreading its arguments.
inline constexpr const char* kSuperviseProtocol = "berth-supervise/3";

// berth-supervise argv layout (numbers in decimal, -1 = absent).
enum SuperviseArg {
    kArgProtocol = 1,
    kArgName,          // container name (for messages and the teardown)
    kArgPidfd,         // pidfd of the payload (our child)
    kArgSignalFd,      // signalfd of the forwarded signals (the mask survives execve)
    kArgPtyMaster,     // pty master for -t, or -1
    kArgNotifySocket,  // notify relay socket (notify = "container"), or -1
    kArgStopSignal,    // what SIGTERM/SIGINT become for the payload
    kArgStopRequests,  // SIGTERM/SIGINTs already forwarded by berth (the second is a SIGKILL)
    kArgLockFd,        // NAME.lock, flocked: passed on to the teardown
    kArgTeardownExe,   // O_PATH fd of the full berth binary (also runs the health probes)
    kArgHealth,        // the health check's timing, health_format_arg(), or "-" (health-supervise.h)
    kSuperviseArgc,
};

// What a payload may tell systemd through the notify relay (notify = "container"), used by both
// supervisors: never MAINPID, the supervisor is the service's main process.
inline constexpr const char* kRelayedNotifyFields[] = {
    "READY=", "STATUS=",   "RELOADING=",           "STOPPING=",
    "ERRNO=", "WATCHDOG=", "EXTEND_TIMEOUT_USEC=", "MONOTONIC_USEC="};

// The hidden `berth` subcommand berth-supervise executes at the end.
inline constexpr const char* kTeardownCommand = "internal-teardown";

}  // namespace berth::runtime
