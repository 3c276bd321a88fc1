// Faults (issue #15 item 8): a signal at any step of `berth run`'s start. A SIGINT in the first
// milliseconds killed berth and left the lock file and a writable layer behind. Now a stop request
// before the payload runs stops the start and everything made so far goes; a SIGKILL (which
// nothing can catch) leaves what the next start cleans up. Each case is checked by starting again:
// that start succeeds and leaves no lock, no cgroup, no mount, no process and no half-made layer.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <thread>

#include "../escape/berth-harness.h"
#include "basic/cgroup-util.h"

using namespace berth;
using namespace berth::test;

namespace {

struct Spawned {
    int exit_code = -1;  // -1: killed by a signal
    int signal = 0;
    std::string out;
};

class StartInterrupt : public ::testing::Test {
protected:
    void SetUp() override {
        BERTH_REQUIRE_ROOT();
        ASSERT_TRUE(make_busybox_rootfs(dir_ / "rootfs"));
        name_ = "intr-" + std::to_string(::getpid());
        toml_ = dir_ / (name_ + ".toml");
        auto cg = cgroup2_mount_point();
        ASSERT_TRUE(cg) << cg.error().what();
        cgroup_ = path_join(path_join(*cg, "berth"), name_);
        ::setenv("BERTH_RUN_DIR", (dir_ / "run").c_str(), 1);
        ::setenv("BERTH_STATE_DIR", (dir_ / "state").c_str(), 1);
        ::unsetenv("BERTH_TEST_SIGNAL_AT");
        declare("exit 0");
    }
    void TearDown() override {
        ::unsetenv("BERTH_TEST_SIGNAL_AT");
        // A cgroup left by a failed case must not outlive the test.
        if (!cgroup_.empty() && path_exists(cgroup_)) {
            (void)berth::write_file(cgroup_ + "/cgroup.kill", "1");
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
            ::rmdir(cgroup_.c_str());
        }
    }
    void declare(const std::string& script) {
        write_file(toml_, "[container]\nrootfs = \"" + (dir_ / "rootfs") +
                              "\"\ncommand = [\"/bin/sh\", \"-c\", \"" + script + "\"]\n");
    }
    std::string lock() const { return dir_ / ("run/containers/" + name_ + ".lock"); }
    std::string layer() const { return dir_ / ("state/rootfs-layers/" + name_); }

    // `berth run` on the declaration, SIGINT sent after `delay_us` when not negative.
    Spawned spawn(long delay_us = -1) {
        Spawned s;
        std::string log = dir_ / "berth.log";
        pid_t pid = ::fork();
        if (pid == 0) {
            int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
            ::dup2(fd, 1);
            ::dup2(fd, 2);
            int null = ::open("/dev/null", O_RDONLY);
            ::dup2(null, 0);
            ::signal(SIGINT, SIG_DFL);  // as in a terminal, whatever the test runner ignores
            std::string exe = berth_exe();
            ::execl(exe.c_str(), "berth", "run", toml_.c_str(), static_cast<char*>(nullptr));
            ::_exit(127);
        }
        if (delay_us >= 0) {
            if (delay_us > 0) std::this_thread::sleep_for(std::chrono::microseconds(delay_us));
            ::kill(pid, SIGINT);
        }
        int status = 0;
        ::waitpid(pid, &status, 0);
        if (WIFEXITED(status)) s.exit_code = WEXITSTATUS(status);
        if (WIFSIGNALED(status)) s.signal = WTERMSIG(status);
        s.out = test::read_file(log);
        return s;
    }

    // What a start that is over must not leave behind.
    void expect_nothing_left(const std::string& when) {
        SCOPED_TRACE(when);
        EXPECT_FALSE(path_exists(lock())) << "leftover lock file";
        EXPECT_FALSE(path_exists(cgroup_)) << "leftover cgroup";
        EXPECT_FALSE(path_exists(layer() + "/starting")) << "leftover half-made writable layer";
        EXPECT_FALSE(path_exists(dir_ / ("run/containers/" + name_ + ".json"))) << "leftover state";
        std::string mounts = test::read_file("/proc/self/mountinfo");
        EXPECT_EQ(mounts.find(dir_.path()), std::string::npos) << "leftover mount";
    }

    // The next start runs and leaves nothing but its kept layer.
    void expect_next_start_succeeds(const std::string& when) {
        ::unsetenv("BERTH_TEST_SIGNAL_AT");
        Spawned s = spawn();
        EXPECT_EQ(s.exit_code, 0) << when << ": " << s.out;
        expect_nothing_left(when + ", then a start");
        EXPECT_TRUE(path_exists(layer() + "/upper")) << when << ": the layer of a run is kept";
        (void)remove_tree(layer());  // the next case starts as a first start again
    }

    TempDir dir_{"berth-intr"};
    std::string name_, toml_, cgroup_;
};

const char* const kSteps[] = {"begin", "lock", "rootfs", "security", "volumes", "cgroup", "notify"};

TEST_F(StartInterrupt, ASigintAtEveryStepOfTheStartStopsItAndLeavesNothing) {
    for (const char* step : kSteps) {
        ::setenv("BERTH_TEST_SIGNAL_AT", step, 1);
        Spawned s = spawn();
        EXPECT_EQ(s.exit_code, 125) << step << ": " << s.out;
        EXPECT_NE(s.out.find("start interrupted by SIGINT (after step '" + std::string(step) + "')"),
                  std::string::npos)
            << s.out;
        expect_nothing_left(std::string("SIGINT at ") + step);
        EXPECT_FALSE(path_exists(layer())) << step << ": the layer this start made is still there";
        expect_next_start_succeeds(std::string("SIGINT at ") + step);
    }
}

TEST_F(StartInterrupt, AfterASigkillAtEveryStepTheNextStartCleansUp) {
    for (const char* step : kSteps) {
        ::setenv("BERTH_TEST_SIGNAL_AT", (std::string(step) + ":9").c_str(), 1);
        Spawned s = spawn();
        EXPECT_EQ(s.signal, SIGKILL) << step << ": " << s.out;
        if (std::string_view(step) == "rootfs") {
            EXPECT_TRUE(path_exists(layer() + "/starting")) << "the half-made layer is marked";
        }
        expect_next_start_succeeds(std::string("SIGKILL at ") + step);
    }
}

// Once the payload runs, the same SIGINT is a stop request: forwarded as the stop signal, said.
TEST_F(StartInterrupt, ASigintJustAfterTheLaunchStopsThePayloadAndSaysSo) {
    declare("trap 'exit 3' TERM; while :; do sleep 0.05; done");
    // berth's init forwards the SIGTERM to the shell, which is then not PID 1: a SIGTERM that lands
    // before the shell's trap is set ends it too (as PID 1 it would be ignored, and the test would
    // wait for the second Ctrl-C that the next test covers).
    std::ofstream(toml_, std::ios::app) << "init = true\n";
    ::setenv("BERTH_TEST_SIGNAL_AT", "launched", 1);
    Spawned s = spawn();
    EXPECT_TRUE(s.exit_code == 3 || s.exit_code == 128 + SIGTERM) << s.exit_code << ": " << s.out;
    EXPECT_NE(s.out.find("SIGINT: stopping, SIGTERM sent to the payload; Ctrl-C (SIGINT) again kills it"),
              std::string::npos)
        << s.out;
    expect_nothing_left("SIGINT after the launch");
}

// Real Ctrl-Cs at 40 moments spread over a whole start (measured first: on a loaded machine a
// start takes hundreds of milliseconds), wherever they land: never a leftover, and the next start
// always works.
TEST_F(StartInterrupt, ASigintAtAnyMomentOfTheStartLeavesNothingBehind) {
    auto t0 = std::chrono::steady_clock::now();
    expect_next_start_succeeds("a start without a signal");
    long whole_us = static_cast<long>(
        std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0).count());
    for (long delay_us = 0; delay_us <= whole_us; delay_us += whole_us / 40 + 1) {
        std::string when = "SIGINT after " + std::to_string(delay_us) + " us";
        Spawned s = spawn(delay_us);
        // Done (0), stopped during the start (125), or killed before berth reached run_container()
        // (SIGINT's default action: nothing was made yet).
        EXPECT_TRUE(s.exit_code == 0 || s.exit_code == 125 || s.signal == SIGINT)
            << when << ": " << s.exit_code << "/" << s.signal << " " << s.out;
        expect_nothing_left(when);
        expect_next_start_succeeds(when);
    }
}

}  // namespace
