#include "registry/auto-update.h"

#include <fmt/format.h>

#include <algorithm>
#include <iterator>

namespace berth::registry {

namespace {

// "sha256:0123456789ab" -> "sha256:0123456789ab" (12 hex digits, as `berth image list` shows).
std::string short_digest(const std::string& digest) {
    const auto colon = digest.find(':');
    const size_t keep = colon == std::string::npos ? 12 : colon + 1 + 12;
    return digest.substr(0, keep);
}

}  // namespace

// In the enums' order.
constexpr std::string_view kModeNames[] = {"off", "registry", "local"};
constexpr std::string_view kVerdictNames[] = {"up to date", "update", "unreachable", "not created"};

std::optional<AutoUpdateMode> parse_auto_update_mode(std::string_view text) {
    for (size_t i = 0; i < std::size(kModeNames); ++i)
        if (kModeNames[i] == text) return static_cast<AutoUpdateMode>(i);
    return std::nullopt;
}

std::string_view auto_update_mode_name(AutoUpdateMode mode) { return kModeNames[static_cast<size_t>(mode)]; }

std::string_view auto_update_verdict_name(AutoUpdateVerdict verdict) {
    return kVerdictNames[static_cast<size_t>(verdict)];
}

std::vector<AutoUpdateStep> plan_auto_update(const std::vector<AutoUpdateCandidate>& candidates) {
    std::vector<AutoUpdateStep> steps;
    for (const auto& c : candidates) {
        if (c.mode == AutoUpdateMode::Off) continue;
        AutoUpdateStep s;
        s.name = c.name;
        s.mode = c.mode;
        s.image = c.image;
        s.from = c.running;
        const char* source = c.mode == AutoUpdateMode::Registry ? "the registry" : "the store";
        if (!c.available) {
            s.verdict = AutoUpdateVerdict::Unreachable;
            s.reason = fmt::format("could not ask {} for '{}': {}; nothing changed", source, c.image,
                                   c.error.empty() ? "no answer" : c.error);
        } else if (c.running.empty()) {
            s.verdict = AutoUpdateVerdict::NotCreated;
            s.to = *c.available;
            s.reason =
                fmt::format("has no writable layer here yet; its next start takes {}", short_digest(s.to));
        } else if (*c.available == c.running) {
            s.verdict = AutoUpdateVerdict::UpToDate;
            s.to = c.running;
            s.reason =
                fmt::format("runs {}, the digest {} has for '{}'", short_digest(c.running), source, c.image);
        } else {
            s.verdict = AutoUpdateVerdict::Update;
            s.to = *c.available;
            s.reason = fmt::format("runs {}, {} has {} for '{}'", short_digest(c.running), source,
                                   short_digest(s.to), c.image);
        }
        steps.push_back(std::move(s));
    }
    return steps;
}

UpdateJudgement judge_update(const UpdateObservation& seen) {
    const std::string& st = seen.active_state;
    const double window_s = static_cast<double>(seen.window_us) / 1e6;
    // Gone down or crash-looping: no point waiting out the window.
    if (st == "failed") return {UpdateOutcome::RollBack, "the unit failed after the restart"};
    if (st == "inactive" || st == "deactivating")
        return {UpdateOutcome::RollBack, fmt::format("the unit is {} after the restart", st)};
    if (seen.restarts > 0)
        return {UpdateOutcome::RollBack,
                fmt::format("the unit restarted {} time(s) after the update", seen.restarts)};
    if (st == "active") {
        if (!seen.has_health_check) return {UpdateOutcome::Keep, "active (no health check)"};
        if (seen.health == "healthy") return {UpdateOutcome::Keep, "healthy"};
        if (seen.health == "unhealthy")
            return {UpdateOutcome::RollBack, "the health check reports unhealthy"};
    }
    if (seen.elapsed_us >= seen.window_us) {
        if (st == "active")
            return {UpdateOutcome::RollBack, fmt::format("not healthy within {:.0f}s (health: {})", window_s,
                                                         seen.health.empty() ? "unknown" : seen.health)};
        return {UpdateOutcome::RollBack, fmt::format("not active within {:.0f}s (unit: {})", window_s, st)};
    }
    return {UpdateOutcome::Wait, ""};
}

std::vector<std::string> push_history(const std::vector<std::string>& history, const std::string& running,
                                      std::vector<std::string>* dropped) {
    std::vector<std::string> out;
    if (!running.empty()) out.push_back(running);
    for (const auto& h : history) {
        if (std::find(out.begin(), out.end(), h) != out.end()) continue;
        if (out.size() < kAutoUpdateHistory)
            out.push_back(h);
        else if (dropped)
            dropped->push_back(h);
    }
    return out;
}

}  // namespace berth::registry
