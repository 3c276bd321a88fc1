// [health] (issue #18): parsing with defaults left unset, strict validation with positions, the
// canonical TOML round trip, and what the generator makes of it (WatchdogSec=, ExecReload=,
// the on_failure exit statuses).
#include <gtest/gtest.h>

#include "config/config.h"
#include "config/unit.h"

using namespace berth;
using namespace berth::config;

namespace {

Result<Declaration> parse(std::string_view text) {
    return parse_declaration("web", SourceText{"web.toml", std::string(text)});
}

std::string error_of(std::string_view text) {
    auto d = parse(text);
    EXPECT_FALSE(d) << "expected an error for:\n" << text;
    return d ? std::string() : d.error().what();
}

UnitOptions options() {
    UnitOptions o;
    o.bindir = "/usr/bin";
    o.pinned_dir = "/run/systemd/generator/berth";
    return o;
}

constexpr std::string_view kImage = "[container]\nimage = \"busybox\"\n";

}  // namespace

TEST(HealthConfig, ReadsEveryKey) {
    auto d = parse(std::string(kImage) +
                   "notify = \"healthy\"\n[health]\ncommand = [\"/bin/check\", \"-q\"]\n"
                   "interval = \"10s\"\ntimeout = 2\nretries = 5\nstart_period = \"2min\"\n"
                   "start_interval = \"500ms\"\non_failure = \"restart\"\nwatchdog = true\n"
                   "reload_signal = \"HUP\"\n");
    ASSERT_TRUE(d) << d.error().what();
    const Health& h = d->health;
    ASSERT_TRUE(h.command);
    EXPECT_EQ(*h.command, (std::vector<std::string>{"/bin/check", "-q"}));
    EXPECT_EQ(h.interval_us, 10'000'000u);
    EXPECT_EQ(h.timeout_us, 2'000'000u);
    EXPECT_EQ(h.retries, 5u);
    EXPECT_EQ(h.start_period_us, 120'000'000u);
    EXPECT_EQ(h.start_interval_us, 500'000u);
    EXPECT_EQ(h.on_failure, HealthOnFailure::Restart);
    EXPECT_TRUE(h.watchdog);
    EXPECT_EQ(h.reload_signal, 1);
    EXPECT_EQ(d->notify, NotifyMode::Healthy);
}

TEST(HealthConfig, LeavesUnsetKeysUnsetAndRoundTripsThroughCanonicalToml) {
    auto d = parse(std::string(kImage) +
                   "[health]\ncommand = [\"/bin/true\"]\nreload_command = [\"nginx\", "
                   "\"-s\", \"reload\"]\n");
    ASSERT_TRUE(d) << d.error().what();
    EXPECT_FALSE(d->health.interval_us);
    EXPECT_FALSE(d->health.retries);
    auto again = parse(to_toml(*d));
    ASSERT_TRUE(again) << again.error().what() << "\n" << to_toml(*d);
    EXPECT_EQ(again->health, d->health);
    // Without [health], the canonical file has none (the golden generator trees stay as they were).
    auto plain = parse(kImage);
    ASSERT_TRUE(plain);
    EXPECT_EQ(to_toml(*plain).find("[health]"), std::string::npos);
}

TEST(HealthConfig, AnEmptyCommandDisablesTheCheck) {
    auto d = parse(std::string(kImage) + "[health]\ncommand = []\n");
    ASSERT_TRUE(d) << d.error().what();
    ASSERT_TRUE(d->health.command);
    EXPECT_TRUE(d->health.command->empty());
}

TEST(HealthConfig, ReportsBadValuesWithTheirPositions) {
    EXPECT_EQ(error_of(std::string(kImage) + "[health]\ncommand = \"curl -f localhost\"\n"),
              "web.toml:4:11: health.command is a string, expected an array of strings (the program and its "
              "arguments, [] disables)");
    EXPECT_EQ(error_of(std::string(kImage) + "[health]\ncommand = [\"/x\"]\ninterval = 0\n"),
              "web.toml:5:12: health.interval = 0 is too short, expected a duration of at least 1ms");
    EXPECT_EQ(error_of(std::string(kImage) + "[health]\ncommand = [\"/x\"]\nretries = 0\n"),
              "web.toml:5:11: health.retries = 0 is out of range, expected an integer from 1 to 1000");
    EXPECT_EQ(error_of(std::string(kImage) + "[health]\ncommand = [\"/x\"]\non_failure = \"reboot\"\n"),
              "web.toml:5:14: health.on_failure = 'reboot' is unknown, expected \"none\" or \"kill\" or "
              "\"restart\" or \"stop\"");
    EXPECT_EQ(
        error_of(std::string(kImage) + "[health]\ncommand = [\"/x\"]\nreload_signal = \"SIGNOPE\"\n"),
        "web.toml:5:17: health.reload_signal = 'SIGNOPE' is not a signal, expected a signal name such as "
        "\"SIGTERM\" or \"INT\", or a number");
    EXPECT_EQ(
        error_of(std::string(kImage) + "[health]\ncommand = [\"/x\"]\nintervall = \"5s\"\n"),
        "web.toml:5:1: unknown key 'intervall' in [health], expected a known key; did you mean 'interval'?");
}

TEST(HealthConfig, ReloadSignalAndCommandExcludeEachOther) {
    EXPECT_EQ(
        error_of(std::string(kImage) + "[health]\nreload_signal = \"HUP\"\nreload_command = "
                                       "[\"/usr/sbin/nginx\", \"-s\", \"reload\"]\n"),
        "web.toml:5:18: health.reload_command conflicts with health.reload_signal (line 4), expected one of "
        "them");
}

TEST(HealthConfig, NotifyHealthyAndTheWatchdogNeedACheck) {
    // With an image, notify = "healthy" may follow the image's HEALTHCHECK (the start fails when
    // it has none); with the image's check disabled, or a rootfs directory, nothing can.
    EXPECT_TRUE(parse(std::string(kImage) + "notify = \"healthy\"\n"));
    EXPECT_EQ(
        error_of(std::string(kImage) + "notify = \"healthy\"\n[health]\ncommand = []\n"),
        "web.toml:3:1: container.notify = \"healthy\" needs a health check, expected [health] command = "
        "[\"/program\", ...]");
    EXPECT_EQ(
        error_of("[container]\nrootfs = \"/srv/root\"\ncommand = [\"/bin/sh\"]\nnotify = \"healthy\"\n"),
        "web.toml:4:1: container.notify = \"healthy\" needs a health check, expected [health] command = "
        "[\"/program\", ...]");
    EXPECT_EQ(error_of(std::string(kImage) + "[health]\ncommand = []\nwatchdog = true\n"),
              "web.toml:5:1: health.watchdog = true needs a health check, expected [health] command = "
              "[\"/program\", ...]");
}

TEST(HealthUnit, DerivesWatchdogSecFromIntervalRetriesAndTimeout) {
    Health h;
    EXPECT_EQ(health_watchdog_usec(h), 0u);
    h.watchdog = true;
    EXPECT_EQ(health_watchdog_usec(h), 30'000'000u * 3 + 30'000'000u);  // Docker's defaults
    h.interval_us = 2'000'000;
    h.retries = 4;
    h.timeout_us = 1'000'000;
    EXPECT_EQ(health_watchdog_usec(h), 9'000'000u);
}

TEST(HealthUnit, RendersTheWatchdogOnFailureStatusesAndExecReload) {
    auto d = parse(std::string(kImage) +
                   "[health]\ncommand = [\"/x\"]\ninterval = \"2s\"\nretries = 2\n"
                   "timeout = \"1s\"\nwatchdog = true\non_failure = \"restart\"\n"
                   "reload_command = [\"/usr/sbin/nginx\", \"-s\", \"reload\"]\n");
    ASSERT_TRUE(d) << d.error().what();
    std::string unit = render_unit(*d, options());
    EXPECT_NE(unit.find("\nWatchdogSec=5s\nWatchdogSignal=SIGTERM\n"), std::string::npos) << unit;
    EXPECT_NE(unit.find("\nRestartForceExitStatus=250\n"), std::string::npos) << unit;
    EXPECT_NE(unit.find("\nExecReload=/usr/bin/berth exec --no-stdin web -- /usr/sbin/nginx -s reload\n"),
              std::string::npos)
        << unit;
    auto s = parse(std::string(kImage) +
                   "[health]\ncommand = [\"/x\"]\non_failure = \"stop\"\n"
                   "reload_signal = \"SIGUSR1\"\n");
    ASSERT_TRUE(s);
    unit = render_unit(*s, options());
    EXPECT_NE(unit.find("\nRestartPreventExitStatus=251\n"), std::string::npos) << unit;
    EXPECT_NE(unit.find("\nExecReload=/usr/bin/berth kill --signal=SIGUSR1 web\n"), std::string::npos)
        << unit;
    EXPECT_EQ(unit.find("WatchdogSec"), std::string::npos);
}
