// [container] pull: when `berth run` fetches a declared remote image, as a pure decision the
// runtime applies (the network is berthd's).  Podman's --pull vocabulary:
//   missing (default)  pull only when the store lacks the image (or the pinned digest);
//   always             pull every start (a pull that finds everything present costs one manifest
//                      request);
//   never              only the store: an image not present is an error, never a silent pull;
//   newer              ask the registry every start, pull when it has a different image, and run
//                      the local one when the registry cannot be reached.
// A digest pin names immutable content: with "missing"/"newer"/"never" a store that holds the
// pinned digest is enough; one that holds the tag at another digest does not count as present.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "basic/result.h"
#include "registry/reference.h"

namespace berth::registry {

enum class PullPolicy { Missing, Always, Never, Newer };

std::optional<PullPolicy> parse_pull_policy(std::string_view text);
std::string_view pull_policy_name(PullPolicy policy);  // "missing", ...

// What the store has for the qualified reference.
struct LocalImage {
    bool present = false;     // an image is stored under this reference (tag or digest)
    std::string repo_digest;  // the manifest digest it was pulled as ("sha256:..."); "" unknown
};

enum class PullAction { UseLocal, Pull };

struct PullDecision {
    PullAction action = PullAction::UseLocal;
    // With Pull: when the registry cannot be reached, run the local image instead of failing
    // ("newer" with an image present).
    bool local_fallback = false;
    std::string reason;  // one line for logs and `berth plan`
    bool operator==(const PullDecision&) const = default;
};

// Pure: an error only for "never" with nothing usable in the store (the
// message names the reference and says how to get the image).
Result<PullDecision> decide_pull(PullPolicy policy, const Reference& qualified, const LocalImage& local);

}  // namespace berth::registry
