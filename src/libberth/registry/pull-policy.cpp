#include "registry/pull-policy.h"

#include <utility>

namespace berth::registry {

namespace {

constexpr std::pair<PullPolicy, std::string_view> kNames[] = {
    {PullPolicy::Missing, "missing"},
    {PullPolicy::Always, "always"},
    {PullPolicy::Never, "never"},
    {PullPolicy::Newer, "newer"},
};

}  // namespace

std::optional<PullPolicy> parse_pull_policy(std::string_view text) {
    for (auto [policy, name] : kNames)
        if (name == text) return policy;
    return std::nullopt;
}

std::string_view pull_policy_name(PullPolicy policy) {
    for (auto [p, name] : kNames)
        if (p == policy) return name;
    return "missing";
}

Result<PullDecision> decide_pull(PullPolicy policy, const Reference& qualified, const LocalImage& local) {
    // A pin is satisfied only by the pinned content, whatever the tag points at locally.
    bool usable = local.present && (qualified.digest.empty() || local.repo_digest == qualified.digest);
    std::string ref = qualified.str();
    switch (policy) {
        case PullPolicy::Always:
            return PullDecision{PullAction::Pull, false, fmt::format("pull = \"always\": pulling '{}'", ref)};
        case PullPolicy::Never:
            if (usable)
                return PullDecision{PullAction::UseLocal, false, fmt::format("'{}' is in the store", ref)};
            if (local.present)
                return fail(
                    0,
                    "image '{}' is not in the store (it holds {} instead) and pull = \"never\": pull it with "
                    "`berth image pull {}`",
                    ref, local.repo_digest.empty() ? "another digest" : local.repo_digest, ref);
            return fail(
                0, "image '{}' is not in the store and pull = \"never\": pull it with `berth image pull {}`",
                ref, ref);
        case PullPolicy::Newer:
            if (usable && !qualified.digest.empty())
                return PullDecision{PullAction::UseLocal, false,
                                    fmt::format("'{}' is in the store (a digest cannot change)", ref)};
            if (usable)
                return PullDecision{
                    PullAction::Pull, true,
                    fmt::format("pull = \"newer\": checking the registry for a newer '{}'", ref)};
            return PullDecision{PullAction::Pull, false, fmt::format("'{}' is not in the store", ref)};
        case PullPolicy::Missing:
            if (usable)
                return PullDecision{PullAction::UseLocal, false, fmt::format("'{}' is in the store", ref)};
            return PullDecision{PullAction::Pull, false, fmt::format("'{}' is not in the store", ref)};
    }
    return fail(0, "unknown pull policy");
}

}  // namespace berth::registry
