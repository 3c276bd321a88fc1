// Health checks run by the container's supervisor (issue #18): the state machine, pure.
//
// Why pure and libc-only: the same machine runs in `berth run` (when it supervises in-process) and
// in the static, C++-runtime-free berth-supervise, and unit tests feed it probe results and times
// and assert the transitions and actions without a container. It decides; the caller (relay.cpp,
// health-loop) acts: it runs the probe (`berth internal-health-probe`, the `berth exec` path),
// logs transitions, tells systemd and kills the payload.
//
// The rules are Docker's HEALTHCHECK rules, which operators know:
//   - a container starts in Starting; during `start_period` probes run every `start_interval`
//     and a failing probe does not count;
//   - a passing probe makes it Healthy (and resets the failure streak);
//   - after the start period, `retries` consecutive failing probes make it Unhealthy (also
//     from Starting: a container that never passed becomes Unhealthy once its start period is
//     over and it failed `retries` times);
//   - the next probe starts `interval` (`start_interval` within the start period) after the
//     previous one ended, so probes never overlap.
// Only transitions are reported (`changed`); the caller logs nothing else.
#pragma once

#include <stdint.h>

namespace berth::runtime {

enum HealthState : int { kHealthStarting = 0, kHealthHealthy = 1, kHealthUnhealthy = 2 };
// [health] on_failure, in config::HealthOnFailure's order.
enum HealthAction : int { kHealthActNone = 0, kHealthActKill = 1, kHealthActRestart = 2, kHealthActStop = 3 };

// Exit statuses of the supervisor after an on_failure action (the generator lists them in
// RestartForceExitStatus= / RestartPreventExitStatus=, so that systemd restarts, or does not,
// whatever Restart= says).
inline constexpr int kHealthRestartStatus = 250;
inline constexpr int kHealthStopStatus = 251;

// [health] in milliseconds (Docker's defaults).
struct HealthTiming {
    uint64_t interval_ms = 30000, timeout_ms = 30000, start_period_ms = 0, start_interval_ms = 5000;
    uint32_t retries = 3;
    int on_failure = kHealthActNone;
};

struct HealthMachine {
    HealthTiming timing;
    int state = kHealthStarting;
    uint32_t failing_streak = 0;
    bool ever_passed = false;
};

// What one probe result means.
struct HealthStep {
    bool changed = false;  // a transition: log it, update the unit's STATUS=
    int from = kHealthStarting;
    int to = kHealthStarting;
    bool first_pass = false;      // notify = "healthy": READY=1 now
    bool watchdog = false;        // WATCHDOG=1 now (a pass, or any probe inside the start period)
    int action = kHealthActNone;  // on_failure, once, on the transition to Unhealthy
    uint64_t next_in_ms = 0;      // when to run the next probe, from now
};

// Whether `since_start_ms` (time since the payload started) lies inside the start period.
inline bool health_in_start_period(const HealthTiming& t, uint64_t since_start_ms) noexcept {
    return since_start_ms < t.start_period_ms;
}

// The delay before the probe after one that ended at `since_start_ms` (or before the first one).
inline uint64_t health_next_delay(const HealthMachine& m, uint64_t since_start_ms) noexcept {
    const bool starting = !m.ever_passed && health_in_start_period(m.timing, since_start_ms);
    return starting ? m.timing.start_interval_ms : m.timing.interval_ms;
}

// Feeds one probe result, ended at `since_start_ms`.
inline HealthStep health_record(HealthMachine* m, bool passed, uint64_t since_start_ms) noexcept {
    HealthStep step;
    step.from = m->state;
    const bool in_start = health_in_start_period(m->timing, since_start_ms);
    if (passed) {
        step.first_pass = !m->ever_passed;
        m->ever_passed = true;
        m->failing_streak = 0;
        m->state = kHealthHealthy;
        step.watchdog = true;
    } else if (in_start && m->state == kHealthStarting) {
        // Does not count: the payload is still allowed to be getting ready.
        step.watchdog = true;
    } else {
        if (m->failing_streak < UINT32_MAX) ++m->failing_streak;
        if (m->failing_streak >= m->timing.retries && m->state != kHealthUnhealthy) {
            m->state = kHealthUnhealthy;
            step.action = m->timing.on_failure;
        }
    }
    step.to = m->state;
    step.changed = step.to != step.from;
    step.next_in_ms = health_next_delay(*m, since_start_ms);
    return step;
}

// "starting", "healthy", "unhealthy".
inline const char* health_state_name(int state) noexcept {
    switch (state) {
        case kHealthHealthy:
            return "healthy";
        case kHealthUnhealthy:
            return "unhealthy";
        default:
            return "starting";
    }
}

}  // namespace berth::runtime
