// `berth auto-update`'s decisions (registry/auto-update.h): which containers change, and when an
// update is kept or rolled back.
#include "registry/auto-update.h"

#include <gtest/gtest.h>

using namespace berth::registry;

namespace {

const std::string kV1 = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
const std::string kV2 = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

AutoUpdateCandidate candidate(std::string name, AutoUpdateMode mode, std::string running,
                              std::optional<std::string> available, std::string error = "") {
    AutoUpdateCandidate c;
    c.name = std::move(name);
    c.mode = mode;
    c.image = "localhost:5000/web:latest";
    c.running = std::move(running);
    c.available = std::move(available);
    c.error = std::move(error);
    return c;
}

UpdateObservation seen(std::string state, bool check, std::string health, uint64_t elapsed_s) {
    UpdateObservation o;
    o.active_state = std::move(state);
    o.has_health_check = check;
    o.health = std::move(health);
    o.elapsed_us = elapsed_s * 1'000'000;
    o.window_us = 60'000'000;
    return o;
}

}  // namespace

TEST(AutoUpdateMode, ParsesTheThreeModesAndNothingElse) {
    EXPECT_EQ(parse_auto_update_mode("registry"), AutoUpdateMode::Registry);
    EXPECT_EQ(parse_auto_update_mode("local"), AutoUpdateMode::Local);
    EXPECT_EQ(parse_auto_update_mode("off"), AutoUpdateMode::Off);
    EXPECT_FALSE(parse_auto_update_mode("Registry"));
    EXPECT_FALSE(parse_auto_update_mode("true"));
    EXPECT_FALSE(parse_auto_update_mode(""));
    for (auto m : {AutoUpdateMode::Off, AutoUpdateMode::Registry, AutoUpdateMode::Local})
        EXPECT_EQ(parse_auto_update_mode(auto_update_mode_name(m)), m);
}

TEST(AutoUpdatePlan, UpdatesOnlyTheContainersWhoseDigestChanged) {
    auto steps = plan_auto_update({
        candidate("same", AutoUpdateMode::Registry, kV1, kV1),
        candidate("changed", AutoUpdateMode::Registry, kV1, kV2),
        candidate("off", AutoUpdateMode::Off, kV1, kV2),
        candidate("local", AutoUpdateMode::Local, kV2, kV1),
    });
    ASSERT_EQ(steps.size(), 3u);  // "off" is not a candidate
    EXPECT_EQ(steps[0].name, "same");
    EXPECT_EQ(steps[0].verdict, AutoUpdateVerdict::UpToDate);
    EXPECT_EQ(steps[1].name, "changed");
    EXPECT_EQ(steps[1].verdict, AutoUpdateVerdict::Update);
    EXPECT_EQ(steps[1].from, kV1);
    EXPECT_EQ(steps[1].to, kV2);
    EXPECT_EQ(
        steps[1].reason,
        "runs sha256:111111111111, the registry has sha256:222222222222 for 'localhost:5000/web:latest'");
    // "local" follows the store, even back to an older image (a re-tag is a change too).
    EXPECT_EQ(steps[2].verdict, AutoUpdateVerdict::Update);
    EXPECT_EQ(steps[2].to, kV1);
}

TEST(AutoUpdatePlan, AnUnreachableRegistryChangesNothingAndSaysWhy) {
    auto steps = plan_auto_update({candidate("web", AutoUpdateMode::Registry, kV1, std::nullopt,
                                             "connect to localhost:5000: refused")});
    ASSERT_EQ(steps.size(), 1u);
    EXPECT_EQ(steps[0].verdict, AutoUpdateVerdict::Unreachable);
    EXPECT_EQ(
        steps[0].reason,
        "could not ask the registry for 'localhost:5000/web:latest': connect to localhost:5000: refused; "
        "nothing changed");
    EXPECT_TRUE(steps[0].to.empty());
}

TEST(AutoUpdatePlan, AContainerWithNoLayerYetIsNotRestarted) {
    auto steps = plan_auto_update({candidate("new", AutoUpdateMode::Local, "", kV2)});
    ASSERT_EQ(steps.size(), 1u);
    EXPECT_EQ(steps[0].verdict, AutoUpdateVerdict::NotCreated);
}

TEST(AutoUpdateJudge, KeepsAHealthyOrActiveUncheckedUnitAndWaitsForAStartingOne) {
    EXPECT_EQ(judge_update(seen("active", true, "healthy", 3)).outcome, UpdateOutcome::Keep);
    EXPECT_EQ(judge_update(seen("active", false, "", 1)).outcome, UpdateOutcome::Keep);
    EXPECT_EQ(judge_update(seen("active", true, "starting", 3)).outcome, UpdateOutcome::Wait);
    EXPECT_EQ(judge_update(seen("activating", true, "", 3)).outcome, UpdateOutcome::Wait);
    EXPECT_EQ(judge_update(seen("activating", false, "", 59)).outcome, UpdateOutcome::Wait);
}

TEST(AutoUpdateJudge, RollsBackAnUnhealthyFailedCrashLoopingOrLateUnit) {
    EXPECT_EQ(judge_update(seen("active", true, "unhealthy", 3)),
              (UpdateJudgement{UpdateOutcome::RollBack, "the health check reports unhealthy"}));
    EXPECT_EQ(judge_update(seen("failed", true, "", 1)),
              (UpdateJudgement{UpdateOutcome::RollBack, "the unit failed after the restart"}));
    EXPECT_EQ(judge_update(seen("inactive", false, "", 1)).outcome, UpdateOutcome::RollBack);
    auto looping = seen("activating", false, "", 5);
    looping.restarts = 2;
    EXPECT_EQ(judge_update(looping).reason, "the unit restarted 2 time(s) after the update");
    EXPECT_EQ(judge_update(seen("active", true, "starting", 60)),
              (UpdateJudgement{UpdateOutcome::RollBack, "not healthy within 60s (health: starting)"}));
    EXPECT_EQ(judge_update(seen("activating", false, "", 61)),
              (UpdateJudgement{UpdateOutcome::RollBack, "not active within 60s (unit: activating)"}));
}

TEST(AutoUpdateHistory, KeepsTheLastTwoImagesNewestFirstAndUnpinsTheRest) {
    std::vector<std::string> dropped;
    auto h = push_history({}, kV1, &dropped);
    EXPECT_EQ(h, std::vector<std::string>{kV1});
    h = push_history(h, kV2, &dropped);
    EXPECT_EQ(h, (std::vector<std::string>{kV2, kV1}));
    EXPECT_TRUE(dropped.empty());
    const std::string v3 = "sha256:3333";
    h = push_history(h, v3, &dropped);
    EXPECT_EQ(h, (std::vector<std::string>{v3, kV2}));
    EXPECT_EQ(dropped, std::vector<std::string>{kV1});
    // A rollback target coming back to the top is not duplicated.
    dropped.clear();
    h = push_history(h, kV2, &dropped);
    EXPECT_EQ(h, (std::vector<std::string>{kV2, v3}));
    EXPECT_TRUE(dropped.empty());
}
