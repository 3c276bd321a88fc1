// The supervisor's half of health checks (issue #18): when to probe, running the probe, and acting
// on the state machine's verdict (health.h). Part of the supervise loop (relay.h), so libc only:
// compiled into berth-runtime and into the static berth-supervise; no allocation, no exceptions.
//
// Event-driven: one timerfd in the loop's poll set wakes the supervisor for the next probe (and
// for the backstops below); between probes it sleeps in poll() like a supervisor without health
// checks, and its resident set does not grow (docs/PERFORMANCE.md measures it).
//
// A probe is a child process: the full berth binary, executed from the O_PATH fd the supervisor
// already holds for its teardown, as `berth internal-health-probe --timeout-ms T NAME`. That is
// the `berth exec` path (runtime/exec.cpp): the payload's cgroup and namespaces, its user,
// capabilities, no_new_privs and seccomp program, the command in a session of its own whose
// process group is killed at the timeout. Its one-line verdict comes back on a pipe:
//   "EXIT DURATION_US\n" followed by the tail of the command's output.
// Backstop: a helper that has not answered by timeout + 10 s is SIGKILLed and counts as failed.
//
// What the supervisor does with a verdict: feed the machine; on a transition, one line to stderr
// (the journal: "health: healthy -> unhealthy: probe exited with status 1 after 3 ms: <tail>")
// and STATUS= to systemd; READY=1 on the first pass with notify = "healthy" (EXTEND_TIMEOUT_USEC
// before, while inside the start period); WATCHDOG=1 on each pass (and each probe inside the
// start period); on_failure on the transition to unhealthy; and the state, for `berth list` and
// `berth status`, in <run dir>/containers/NAME.health (JSON, replaced by rename).
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "runtime/health.h"

namespace berth::runtime {

struct RelayHealth {
    HealthMachine machine;
    const char* name = "";
    int exe_fd = -1;            // O_PATH fd of the full berth binary
    uint64_t started_msec = 0;  // CLOCK_MONOTONIC when the payload started
    bool notify_ready = false;  // notify = "healthy": READY=1 on the first pass
    bool watchdog = false;      // [health] watchdog = true: WATCHDOG=1 while healthy
    // Set by health_start / the loop.
    int timer_fd = -1;
    int probe_pidfd = -1;
    int probe_out = -1;            // read end of the helper's stdout
    uint64_t next_probe_msec = 0;  // CLOCK_MONOTONIC; 0 while a probe runs
    uint64_t probe_deadline_msec = 0;
    uint64_t kill_at_msec = 0;     // after stop/restart: SIGKILL the payload if it is still there
    int forced_status = 0;         // kHealthRestartStatus / kHealthStopStatus once acted
    uint64_t changed_at_usec = 0;  // CLOCK_REALTIME of the last transition (published)
    size_t out_len = 0;
    char out[2048];
};

// Parses berth-supervise's health argument, "-" (none) or
// "INTERVAL_MS:TIMEOUT_MS:START_PERIOD_MS:START_INTERVAL_MS:RETRIES:ON_FAILURE:FLAGS:STARTED_MSEC"
// (FLAGS: 1 notify = "healthy", 2 watchdog). false when malformed; *enabled false for "-".
bool health_parse_arg(const char* text, RelayHealth* h, bool* enabled) noexcept;
// The same argument, written by `berth run` for the hand-over; its length, or -1 if it did not fit.
int health_format_arg(const RelayHealth& h, char* buf, size_t size) noexcept;

// Creates the timer and schedules the first probe. 0 or -errno.
int health_start(RelayHealth* h) noexcept;
// The timer fired: starts a probe when one is due, enforces the backstops. `pidfd` is the
// payload's (for the delayed SIGKILL after stop/restart).
void health_on_timer(RelayHealth* h, int payload_pidfd) noexcept;
// The helper's stdout is readable: takes what it wrote; at EOF reaps it and acts on the verdict.
// `stop_signal` is what stop/restart send first.
void health_on_output(RelayHealth* h, int payload_pidfd, int stop_signal) noexcept;
// The payload has exited: kills a running probe and closes the fds.
void health_stop(RelayHealth* h) noexcept;

}  // namespace berth::runtime
