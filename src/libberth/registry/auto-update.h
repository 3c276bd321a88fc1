// `berth auto-update` (issue #18) as pure decisions; cmd-auto-update.cpp asks the registry, the
// store and systemd, and acts.
//
// One pass over the containers whose declaration says `[container] auto_update`:
//   1. plan_auto_update: for each, the digest it runs against the digest it would run now
//      ("registry": the tag's manifest digest, asked with a HEAD request; "local": the store's
//      image for the name). A container whose source cannot be asked (registry down) is left as
//      it is, and said so: an unreachable registry never stops or restarts anything.
//   2. For each Update: pull, pin the running image as the container's previous one (a short
//      history, kept from gc), restart the unit, then watch it: judge_update decides, from what
//      systemd and the supervisor's health file say, whether to keep waiting, keep the new image,
//      or roll back to the previous one. Healthy (or active, for a container with no health
//      check) within the window keeps it; failed, unhealthy, or still starting when the window
//      closes rolls back, and the run exits non-zero.
// Why pure: which containers change and when to roll back are the parts that must not be
// wrong, and they are tested here without a registry, a store or a systemd.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace berth::registry {

// [container] auto_update = "registry" | "local" | "off" (default)
enum class AutoUpdateMode { Off, Registry, Local };

std::optional<AutoUpdateMode> parse_auto_update_mode(std::string_view text);
std::string_view auto_update_mode_name(AutoUpdateMode mode);  // "off", "registry", "local"

// What the command found out about one container before deciding.
struct AutoUpdateCandidate {
    std::string name;
    AutoUpdateMode mode = AutoUpdateMode::Off;
    std::string image;    // the declaration's reference
    std::string running;  // the digest (image id) its writable layer was made from; "" not known
    // The digest it would run now (the registry's, or the store's for the name); nullopt when it
    // could not be asked, with `error` saying why.
    std::optional<std::string> available;
    std::string error;
};

enum class AutoUpdateVerdict {
    UpToDate,     // running what is available
    Update,       // a different image is available
    Unreachable,  // the source could not be asked: nothing changes
    NotCreated,   // never started here: nothing runs to update (its next start takes the new one)
};
std::string_view auto_update_verdict_name(AutoUpdateVerdict verdict);  // "up to date", ...

struct AutoUpdateStep {
    std::string name;
    AutoUpdateMode mode = AutoUpdateMode::Off;
    std::string image;
    AutoUpdateVerdict verdict = AutoUpdateVerdict::UpToDate;
    std::string from, to;  // digests (Update: both; otherwise what is known)
    std::string reason;    // one line for the log and --dry-run

    bool operator==(const AutoUpdateStep&) const = default;
};

// Candidates in, one step each, in the same order; Off candidates are left out.
std::vector<AutoUpdateStep> plan_auto_update(const std::vector<AutoUpdateCandidate>& candidates);

// After the restart, one look at the unit.
struct UpdateObservation {
    std::string active_state;  // systemd's ActiveState: "active", "activating", "failed", ...
    bool has_health_check = false;
    std::string health;       // the supervisor's state: "starting", "healthy", "unhealthy", ""
    uint64_t elapsed_us = 0;  // since the restart was asked
    uint64_t window_us = 0;   // how long it may take
    uint32_t restarts = 0;    // NRestarts since the restart (a crash loop is a failure)
};

enum class UpdateOutcome { Wait, Keep, RollBack };

struct UpdateJudgement {
    UpdateOutcome outcome = UpdateOutcome::Wait;
    std::string reason;  // RollBack: why, for the journal; Keep: what made it good

    bool operator==(const UpdateJudgement&) const = default;
};

UpdateJudgement judge_update(const UpdateObservation& seen);

// The previous images kept per container (the pinned history); older ones are unpinned.
inline constexpr size_t kAutoUpdateHistory = 2;

// The history after an update from `running`: `running` first, then the older entries, without
// duplicates, at most kAutoUpdateHistory; `dropped` gets those that fall off (to unpin).
std::vector<std::string> push_history(const std::vector<std::string>& history, const std::string& running,
                                      std::vector<std::string>* dropped);

}  // namespace berth::registry
