// decide_pull: the policy x what the store has, for tags and digest pins.
#include "registry/pull-policy.h"

#include <gtest/gtest.h>

using namespace berth::registry;

namespace {

const std::string kA = "sha256:" + std::string(64, 'a');
const std::string kB = "sha256:" + std::string(64, 'b');

Reference ref(const std::string& text) { return *parse_reference(text); }

std::string decide(PullPolicy p, const std::string& text, LocalImage local) {
    auto d = decide_pull(p, ref(text), local);
    if (!d) return "error: " + d.error().what();
    return std::string(d->action == PullAction::Pull ? "pull" : "local") +
           (d->local_fallback ? "+fallback" : "");
}

}  // namespace

TEST(PullPolicy, ParsesTheFourNamesOnly) {
    for (auto name : {"missing", "always", "never", "newer"}) {
        auto p = parse_pull_policy(name);
        ASSERT_TRUE(p) << name;
        EXPECT_EQ(pull_policy_name(*p), name);
    }
    for (auto bad : {"", "Missing", "if-not-present", "always "}) EXPECT_FALSE(parse_pull_policy(bad)) << bad;
}

TEST(PullPolicy, DecidesForATag) {
    const std::string tag = "docker.io/library/nginx:1.27";
    LocalImage none, present{true, kA}, unknown_digest{true, ""};
    EXPECT_EQ(decide(PullPolicy::Missing, tag, none), "pull");
    EXPECT_EQ(decide(PullPolicy::Missing, tag, present), "local");
    EXPECT_EQ(decide(PullPolicy::Missing, tag, unknown_digest), "local") << "an imported image counts";
    EXPECT_EQ(decide(PullPolicy::Always, tag, none), "pull");
    EXPECT_EQ(decide(PullPolicy::Always, tag, present), "pull");
    EXPECT_EQ(decide(PullPolicy::Newer, tag, none), "pull");
    EXPECT_EQ(decide(PullPolicy::Newer, tag, present), "pull+fallback");
    EXPECT_EQ(decide(PullPolicy::Never, tag, present), "local");
    std::string never = decide(PullPolicy::Never, tag, none);
    EXPECT_NE(
        never.find("error: image 'docker.io/library/nginx:1.27' is not in the store and pull = \"never\""),
        std::string::npos)
        << never;
    EXPECT_NE(never.find("berth image pull docker.io/library/nginx:1.27"), std::string::npos) << never;
}

TEST(PullPolicy, ADigestPinIsPresentOnlyWithThatDigest) {
    const std::string pinned = "quay.io/team/app:v1@" + kA;
    LocalImage same{true, kA}, other{true, kB}, none;
    EXPECT_EQ(decide(PullPolicy::Missing, pinned, same), "local");
    EXPECT_EQ(decide(PullPolicy::Missing, pinned, other), "pull") << "the tag moved locally: fetch the pin";
    EXPECT_EQ(decide(PullPolicy::Missing, pinned, none), "pull");
    EXPECT_EQ(decide(PullPolicy::Newer, pinned, same), "local") << "a digest cannot change";
    EXPECT_EQ(decide(PullPolicy::Newer, pinned, other), "pull");
    EXPECT_EQ(decide(PullPolicy::Always, pinned, same), "pull");
    EXPECT_EQ(decide(PullPolicy::Never, pinned, same), "local");
    std::string never = decide(PullPolicy::Never, pinned, other);
    EXPECT_NE(never.find("holds " + kB + " instead"), std::string::npos) << never;
    EXPECT_EQ(decide(PullPolicy::Never, pinned, LocalImage{true, ""}).substr(0, 6), "error:");
}
