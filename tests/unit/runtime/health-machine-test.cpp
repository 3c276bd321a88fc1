// The health state machine (runtime/health.h), pure: probe results and times in, transitions and
// actions out; the supervisor's argument for berth-supervise; the effective check of a declaration.
#include <gtest/gtest.h>

#include "runtime/health-supervise.h"
#include "runtime/health.h"
#include "runtime/state.h"

using namespace berth;
using namespace berth::runtime;

namespace {

HealthMachine machine(uint64_t interval, uint32_t retries, uint64_t start_period = 0,
                      uint64_t start_interval = 5, int on_failure = kHealthActNone) {
    HealthMachine m;
    m.timing.interval_ms = interval;
    m.timing.timeout_ms = 1000;
    m.timing.retries = retries;
    m.timing.start_period_ms = start_period;
    m.timing.start_interval_ms = start_interval;
    m.timing.on_failure = on_failure;
    return m;
}

}  // namespace

TEST(HealthMachine, PassThenFailReportsEachTransitionOnceOverManyProbes) {
    HealthMachine m = machine(100, 3, 0, 5, kHealthActRestart);
    int transitions = 0, actions = 0;
    uint64_t t = 0;
    // 10 passing probes, then 12 failing ones: starting -> healthy -> unhealthy, nothing else.
    for (int i = 0; i < 22; ++i) {
        t += 100;
        HealthStep s = health_record(&m, i < 10, t);
        transitions += s.changed;
        actions += s.action != kHealthActNone;
        if (i == 0) {
            EXPECT_TRUE(s.changed);
            EXPECT_EQ(s.from, kHealthStarting);
            EXPECT_EQ(s.to, kHealthHealthy);
            EXPECT_TRUE(s.first_pass);
        } else if (i == 12) {  // the third failure in a row
            EXPECT_TRUE(s.changed);
            EXPECT_EQ(s.to, kHealthUnhealthy);
            EXPECT_EQ(s.action, kHealthActRestart);
        } else {
            EXPECT_FALSE(s.changed) << "probe " << i;
            EXPECT_FALSE(s.first_pass);
        }
        EXPECT_EQ(s.watchdog, i < 10) << "WATCHDOG=1 only on passes, probe " << i;
        EXPECT_EQ(s.next_in_ms, 100u);
    }
    EXPECT_EQ(transitions, 2);
    EXPECT_EQ(actions, 1);
    EXPECT_EQ(m.failing_streak, 12u);
    // Back: one transition, the streak reset.
    HealthStep back = health_record(&m, true, t + 100);
    EXPECT_TRUE(back.changed);
    EXPECT_EQ(back.to, kHealthHealthy);
    EXPECT_FALSE(back.first_pass);
    EXPECT_EQ(m.failing_streak, 0u);
}

TEST(HealthMachine, FailuresWithinTheStartPeriodDoNotCountAndProbeAtTheStartInterval) {
    HealthMachine m = machine(1000, 1, 10000, 200);
    EXPECT_EQ(health_next_delay(m, 0), 200u);
    for (uint64_t t = 200; t < 10000; t += 200) {
        HealthStep s = health_record(&m, false, t);
        EXPECT_FALSE(s.changed) << t;
        EXPECT_EQ(m.state, kHealthStarting);
        EXPECT_TRUE(s.watchdog) << "a slow start is not a hung supervisor";
        EXPECT_EQ(s.next_in_ms, 200u);
    }
    // Past the start period one failure (retries = 1) is enough.
    HealthStep s = health_record(&m, false, 10000);
    EXPECT_TRUE(s.changed);
    EXPECT_EQ(s.from, kHealthStarting);
    EXPECT_EQ(s.to, kHealthUnhealthy);
    EXPECT_EQ(s.next_in_ms, 1000u);
}

TEST(HealthMachine, AFirstPassEndsTheStartPeriodEarly) {
    HealthMachine m = machine(1000, 2, 60000, 100);
    HealthStep s = health_record(&m, true, 300);
    EXPECT_TRUE(s.first_pass);
    EXPECT_EQ(s.next_in_ms, 1000u) << "healthy: the normal interval";
    // Inside the start period but after a pass, failures count.
    EXPECT_FALSE(health_record(&m, false, 1300).changed);
    HealthStep u = health_record(&m, false, 2300);
    EXPECT_TRUE(u.changed);
    EXPECT_EQ(u.to, kHealthUnhealthy);
}

TEST(HealthMachine, TheSupervisorArgumentRoundTrips) {
    RelayHealth h;
    h.machine.timing = {1500, 250, 90000, 100, 7, kHealthActStop};
    h.notify_ready = true;
    h.watchdog = false;
    h.started_msec = 123456789;
    char buf[160];
    ASSERT_GT(health_format_arg(h, buf, sizeof buf), 0);
    RelayHealth back;
    bool enabled = false;
    ASSERT_TRUE(health_parse_arg(buf, &back, &enabled)) << buf;
    EXPECT_TRUE(enabled);
    EXPECT_EQ(back.machine.timing.interval_ms, 1500u);
    EXPECT_EQ(back.machine.timing.timeout_ms, 250u);
    EXPECT_EQ(back.machine.timing.start_period_ms, 90000u);
    EXPECT_EQ(back.machine.timing.start_interval_ms, 100u);
    EXPECT_EQ(back.machine.timing.retries, 7u);
    EXPECT_EQ(back.machine.timing.on_failure, kHealthActStop);
    EXPECT_TRUE(back.notify_ready);
    EXPECT_FALSE(back.watchdog);
    EXPECT_EQ(back.started_msec, 123456789u);
    ASSERT_TRUE(health_parse_arg("-", &back, &enabled));
    EXPECT_FALSE(enabled);
    for (const char* bad : {"", "1:2:3", "0:1:0:1:1:0:0:5", "1:1:0:1:1:9:0:5", "1:1:0:1:1:0:0:5x"})
        EXPECT_FALSE(health_parse_arg(bad, &back, &enabled)) << bad;
}

TEST(HealthSpec, FillsInDockersDefaultsAndTravelsInTheRuntimeState) {
    config::Declaration d;
    d.name = "web";
    EXPECT_FALSE(*resolve_health(d));
    d.health.command = std::vector<std::string>{"/bin/check"};
    d.health.retries = 5;
    d.notify = config::NotifyMode::Healthy;
    auto spec = resolve_health(d);
    ASSERT_TRUE(spec && *spec);
    EXPECT_EQ((*spec)->interval_us, 30'000'000u);
    EXPECT_EQ((*spec)->timeout_us, 30'000'000u);
    EXPECT_EQ((*spec)->start_interval_us, 5'000'000u);
    EXPECT_EQ((*spec)->retries, 5u);
    EXPECT_TRUE((*spec)->notify_healthy);
    RuntimeState st;
    st.name = "web";
    st.health = **spec;
    auto back = state_from_json(state_to_json(st), "test");
    ASSERT_TRUE(back) << back.error().what();
    ASSERT_TRUE(back->health);
    EXPECT_EQ(back->health->command, (*spec)->command);
    EXPECT_EQ(back->health->retries, 5u);
    EXPECT_TRUE(back->health->notify_healthy);
    // notify = "healthy" with the check disabled cannot start.
    d.health.command = std::vector<std::string>{};
    EXPECT_FALSE(resolve_health(d));
}

// An image's HEALTHCHECK (Docker's config.Healthcheck) under the declaration's [health].
namespace {
store::ImageConfig image_with_check(std::vector<std::string> test) {
    store::ImageConfig image;
    image.healthcheck.test = std::move(test);
    image.healthcheck.interval_ns = 2'000'000'000;
    image.healthcheck.timeout_ns = 500'000'000;
    image.healthcheck.start_period_ns = 10'000'000'000;
    image.healthcheck.retries = 2;
    return image;
}
}  // namespace

TEST(HealthSpec, TakesTheImagesHealthcheckWhenTheDeclarationHasNone) {
    config::Declaration d;
    d.name = "web";
    const auto exec_form = image_with_check({"CMD", "/bin/test", "-f", "/ok"});
    auto spec = resolve_health(d, &exec_form);
    ASSERT_TRUE(spec && *spec);
    EXPECT_EQ((*spec)->command, (std::vector<std::string>{"/bin/test", "-f", "/ok"}));
    EXPECT_EQ((*spec)->interval_us, 2'000'000u);
    EXPECT_EQ((*spec)->timeout_us, 500'000u);
    EXPECT_EQ((*spec)->start_period_us, 10'000'000u);
    EXPECT_EQ((*spec)->start_interval_us, 5'000'000u);  // unset in the image: Docker's default
    EXPECT_EQ((*spec)->retries, 2u);
    const auto shell_form = image_with_check({"CMD-SHELL", "wget -q -O- localhost || exit 1"});
    spec = resolve_health(d, &shell_form);
    ASSERT_TRUE(spec && *spec);
    EXPECT_EQ((*spec)->command,
              (std::vector<std::string>{"/bin/sh", "-c", "wget -q -O- localhost || exit 1"}));
    // NONE, or no Healthcheck at all: no check, and notify = "healthy" cannot start.
    const auto none = image_with_check({"NONE"});
    EXPECT_FALSE(*resolve_health(d, &none));
    d.notify = config::NotifyMode::Healthy;
    auto refused = resolve_health(d, &none);
    ASSERT_FALSE(refused);
    EXPECT_NE(std::string(refused.error().what()).find("or an image with a HEALTHCHECK"), std::string::npos)
        << refused.error().what();
    EXPECT_TRUE(resolve_health(d, &exec_form));
}

TEST(HealthSpec, TheDeclarationOverridesOrDisablesTheImagesHealthcheck) {
    config::Declaration d;
    d.name = "web";
    const auto image = image_with_check({"CMD", "/bin/test", "-f", "/ok"});
    d.health.command = std::vector<std::string>{"/bin/mine"};
    d.health.interval_us = 7'000'000;
    auto spec = resolve_health(d, &image);
    ASSERT_TRUE(spec && *spec);
    EXPECT_EQ((*spec)->command, std::vector<std::string>{"/bin/mine"});
    EXPECT_EQ((*spec)->interval_us, 7'000'000u);  // declared
    EXPECT_EQ((*spec)->timeout_us, 500'000u);     // unset: the image's
    EXPECT_EQ((*spec)->retries, 2u);
    d.health.command = std::vector<std::string>{};  // [health] command = []
    EXPECT_FALSE(*resolve_health(d, &image));
}
