// berth-systemd against a real systemd: this binary runs INSIDE the container booted by
// harness.sh (test-systemd-client.sh does that), where systemd is PID 1 and owns the system bus.
// Outside such a container it skips: it must never start units on a developer's own machine.
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <thread>

#include "basic/cgroup-util.h"
#include "basic/fs-util.h"
#include "basic/string-util.h"
#include "systemd/cgroup-tree.h"
#include "systemd/journal.h"
#include "systemd/systemd1.h"

using namespace berth;
using namespace berth::systemd;

namespace {

bool inside_test_container() {
    const char* c = getenv("BERTH_IT_INSIDE");
    return c && *c == '1' && getpid() != 1 && access("/run/systemd/private", F_OK) == 0;
}

#define REQUIRE_TEST_SYSTEMD() \
    if (!inside_test_container()) GTEST_SKIP() << "runs only inside the integration test container"

uint64_t now_realtime_us() {
    struct timespec ts {};
    clock_gettime(CLOCK_REALTIME, &ts);
    return uint64_t(ts.tv_sec) * 1000000ULL + uint64_t(ts.tv_nsec) / 1000;
}

class SystemdClient : public ::testing::Test {
protected:
    void SetUp() override {
        REQUIRE_TEST_SYSTEMD();
        tag_ = "it" + std::to_string(getpid());
        // The payload prints a line, then waits; it handles SIGTERM so stops are immediate.
        write_unit(tag_ + "-echo.service",
                   "[Service]\nExecStart=/bin/sh -c 'trap \"exit 0\" TERM; echo hello-" + tag_ +
                       "; while :; do sleep 0.2; done'\n");
        write_unit(tag_ + "-false.service", "[Service]\nExecStart=/bin/false\n");
        ASSERT_EQ(system("systemctl daemon-reload"), 0);
        auto m = Manager::open_system();
        ASSERT_TRUE(m) << m.error().what();
        manager_.emplace(std::move(*m));
    }
    void TearDown() override {
        if (tag_.empty()) return;
        for (auto& u : {tag_ + "-echo.service", tag_ + "-false.service"}) {
            std::string cmd =
                "systemctl stop " + u + " 2>/dev/null; systemctl reset-failed " + u + " 2>/dev/null";
            (void)!system(cmd.c_str());
            unlink(("/run/systemd/system/" + u).c_str());
        }
        (void)!system("systemctl daemon-reload");
    }
    static void write_unit(const std::string& name, const std::string& text) {
        ASSERT_TRUE(mkdir_p("/run/systemd/system"));
        auto r = write_file_atomic("/run/systemd/system/" + name, text);
        ASSERT_TRUE(r) << r.error().what();
    }
    std::string tag_;
    std::optional<Manager> manager_;
};

TEST_F(SystemdClient, StartedServiceReportsActiveStateMainPidCgroupAndTimestamp) {
    std::string unit = tag_ + "-echo.service";
    uint64_t before = now_realtime_us();
    auto started = manager_->start(unit);
    ASSERT_TRUE(started) << started.error().what();
    auto st = manager_->unit_state(unit);
    ASSERT_TRUE(st) << st.error().what();
    EXPECT_EQ(st->id, unit);
    EXPECT_EQ(st->load_state, "loaded");
    EXPECT_EQ(st->active_state, "active");
    EXPECT_EQ(st->sub_state, "running");
    EXPECT_TRUE(st->is_active());
    EXPECT_GT(st->main_pid, 1u);
    EXPECT_EQ(st->control_group, "/system.slice/" + unit);
    EXPECT_GE(st->active_enter_us + 1000000, before);  // realtime clocks agree within a second
    EXPECT_LE(st->active_enter_us, now_realtime_us());
    EXPECT_EQ(st->fragment_path, "/run/systemd/system/" + unit);
    // The main pid really is in the unit's cgroup.
    auto root = cgroup2_mount_point();
    ASSERT_TRUE(root) << root.error().what();
    auto procs = read_file(*root + st->control_group + "/cgroup.procs");
    ASSERT_TRUE(procs) << procs.error().what();
    EXPECT_NE(procs->find(std::to_string(st->main_pid)), std::string::npos);
}

TEST_F(SystemdClient, StopWaitsUntilTheUnitIsInactive) {
    std::string unit = tag_ + "-echo.service";
    ASSERT_TRUE(manager_->start(unit));
    auto pid = manager_->unit_state(unit)->main_pid;
    auto stopped = manager_->stop(unit);
    ASSERT_TRUE(stopped) << stopped.error().what();
    auto st = manager_->unit_state(unit);
    ASSERT_TRUE(st);
    EXPECT_EQ(st->active_state, "inactive");
    EXPECT_EQ(st->main_pid, 0u);
    EXPECT_NE(kill(pid_t(pid), 0), 0) << "the old main pid is gone";
}

TEST_F(SystemdClient, RestartGivesANewMainPid) {
    std::string unit = tag_ + "-echo.service";
    ASSERT_TRUE(manager_->start(unit));
    auto before = manager_->unit_state(unit)->main_pid;
    auto restarted = manager_->restart(unit);
    ASSERT_TRUE(restarted) << restarted.error().what();
    auto st = manager_->unit_state(unit);
    ASSERT_TRUE(st);
    EXPECT_EQ(st->active_state, "active");
    EXPECT_NE(st->main_pid, before);
}

TEST_F(SystemdClient, StartOfAFailingServiceReportsTheJobFailureAndFinalState) {
    // Type=simple /bin/false: the start job is done, the unit then fails; use oneshot semantics to
    // make the job itself fail.
    write_unit(tag_ + "-false.service", "[Service]\nType=oneshot\nExecStart=/bin/false\n");
    ASSERT_EQ(system("systemctl daemon-reload"), 0);
    auto started = manager_->start(tag_ + "-false.service");
    ASSERT_FALSE(started);
    EXPECT_NE(started.error().what().find("job failed"), std::string::npos) << started.error().what();
    EXPECT_NE(started.error().what().find("failed/failed"), std::string::npos) << started.error().what();
    auto st = manager_->unit_state(tag_ + "-false.service");
    ASSERT_TRUE(st);
    EXPECT_EQ(st->active_state, "failed");
    EXPECT_EQ(st->result, "exit-code");
    EXPECT_EQ(st->exec_main_status, 1);
}

TEST_F(SystemdClient, AUnitWithoutAFileIsReportedNotFound) {
    auto st = manager_->unit_state(tag_ + "-nonexistent.service");
    ASSERT_TRUE(st) << st.error().what();
    EXPECT_EQ(st->load_state, "not-found");
    EXPECT_EQ(st->active_state, "inactive");
    auto started = manager_->start(tag_ + "-nonexistent.service");
    ASSERT_FALSE(started);
    EXPECT_NE(started.error().what().find("not found"), std::string::npos) << started.error().what();
}

TEST_F(SystemdClient, ListUnitsMatchesGlobPatterns) {
    ASSERT_TRUE(manager_->start(tag_ + "-echo.service"));
    auto units = manager_->list_units({tag_ + "-*.service"});
    ASSERT_TRUE(units) << units.error().what();
    EXPECT_NE(std::find(units->begin(), units->end(), tag_ + "-echo.service"), units->end());
    auto none = manager_->list_units({"no-such-" + tag_ + "*"});
    ASSERT_TRUE(none);
    EXPECT_TRUE(none->empty());
}

TEST_F(SystemdClient, JournalTailShowsWhatTheServicePrinted) {
    std::string unit = tag_ + "-echo.service";
    ASSERT_TRUE(manager_->start(unit));
    // journald gets stdout through a stream socket: poll briefly for the line.
    bool found = false;
    for (int i = 0; i < 50 && !found; ++i) {
        auto j = UnitJournal::open(unit, {.lines = 50});
        ASSERT_TRUE(j) << j.error().what();
        auto entries = j->tail();
        ASSERT_TRUE(entries) << entries.error().what();
        for (auto& e : *entries) found |= e.message == "hello-" + tag_;
        if (!found) usleep(100000);
    }
    EXPECT_TRUE(found) << "journal of " << unit << " lacks the payload's output";
}

TEST_F(SystemdClient, JournalFollowSeesEntriesWrittenAfterwards) {
    std::string unit = tag_ + "-echo.service";
    auto j = UnitJournal::open(unit, {.lines = 0});
    ASSERT_TRUE(j) << j.error().what();
    ASSERT_TRUE(j->tail());
    ASSERT_TRUE(manager_->start(unit));
    bool found = false;
    auto r = j->follow([&](const JournalEntry& e) { return !(found = e.message == "hello-" + tag_); },
                       10 * 1000000ULL);
    ASSERT_TRUE(r) << r.error().what();
    EXPECT_TRUE(found);
}

TEST_F(SystemdClient, CgroupTreeListsTheMainProcess) {
    std::string unit = tag_ + "-echo.service";
    ASSERT_TRUE(manager_->start(unit));
    auto st = manager_->unit_state(unit);
    ASSERT_TRUE(st);
    auto root = cgroup2_mount_point();
    ASSERT_TRUE(root) << root.error().what();
    // A Type=simple start returns once systemd forked: until the child's exec the main pid's
    // command line is systemd's "(sh)" (a CI run read it then), so the tree is read until it shows
    // the exec'd shell, for at most 5 s.
    std::vector<std::string> lines;
    bool has_sh = false;
    for (int i = 0; i < 100 && !has_sh; ++i) {
        if (i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
        auto tree = read_cgroup_tree(*root, st->control_group);
        ASSERT_TRUE(tree) << tree.error().what();
        EXPECT_NE(std::find(tree->pids.begin(), tree->pids.end(), st->main_pid), tree->pids.end());
        lines = render_cgroup_tree(*tree);
        ASSERT_FALSE(lines.empty());
        EXPECT_EQ(lines[0], "CGroup: " + st->control_group);
        for (auto& l : lines)
            has_sh |= l.find(std::to_string(st->main_pid) + " /bin/sh -c") != std::string::npos;
    }
    EXPECT_TRUE(has_sh) << join(lines, "\n");
}

}  // namespace
