// Without systemd (issue #15 item 7): `berth list` and `berth status` show what berth's own
// runtime state says (declared containers, and those `berth run` runs, with their pids), and say
// which view that is; `berth stop` stops a run through its supervisor; `berth start` says what
// cannot be done; `berth logs` of an unknown name is an error. Before, all of them only said
// "cannot reach systemd". The system bus is pointed at a socket that does not exist.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "../escape/berth-harness.h"
#include "basic/cgroup-util.h"

using namespace berth;
using namespace berth::test;

namespace {

class WithoutSystemd : public ::testing::Test {
protected:
    void SetUp() override {
        BERTH_REQUIRE_ROOT();
        ASSERT_TRUE(make_busybox_rootfs(dir_ / "rootfs"));
        std::string pid = std::to_string(::getpid());
        name_ = "view-" + pid;
        idle_ = "idle-" + pid;
        ASSERT_TRUE(mkdir_p(dir_ / "etc"));
        auto declare = [&](const std::string& name) {
            write_file(dir_ / ("etc/" + name + ".toml"),
                       "[container]\nrootfs = \"" + (dir_ / "rootfs") +
                           "\"\ncommand = [\"/bin/sh\", \"-c\", \"trap 'exit 0' TERM; while :; do sleep "
                           "0.05; done\"]\n");
        };
        declare(name_);
        declare(idle_);
        ::setenv("BERTH_CONTAINERS_PATH", (dir_ / "etc").c_str(), 1);
        ::setenv("BERTH_RUN_DIR", (dir_ / "run").c_str(), 1);
        ::setenv("BERTH_STATE_DIR", (dir_ / "state").c_str(), 1);
        ::setenv("DBUS_SYSTEM_BUS_ADDRESS", ("unix:path=" + (dir_ / "no-bus")).c_str(), 1);
        auto cg = cgroup2_mount_point();
        ASSERT_TRUE(cg) << cg.error().what();
        cgroup_ = path_join(path_join(*cg, "berth"), name_);
    }
    void TearDown() override {
        if (run_pid_ > 0) {
            ::kill(run_pid_, SIGKILL);
            ::waitpid(run_pid_, nullptr, 0);
        }
        if (!cgroup_.empty() && path_exists(cgroup_)) {
            (void)berth::write_file(cgroup_ + "/cgroup.kill", "1");
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
            ::rmdir(cgroup_.c_str());
        }
        for (auto var :
             {"BERTH_CONTAINERS_PATH", "BERTH_RUN_DIR", "BERTH_STATE_DIR", "DBUS_SYSTEM_BUS_ADDRESS"})
            ::unsetenv(var);
    }

    // `berth run NAME` in the background, until its state record is there.
    bool start_run() {
        run_pid_ = ::fork();
        if (run_pid_ == 0) {
            int fd = ::open((dir_ / "run.log").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
            ::dup2(fd, 1);
            ::dup2(fd, 2);
            std::string exe = berth_exe();
            ::execl(exe.c_str(), "berth", "run", name_.c_str(), static_cast<char*>(nullptr));
            ::_exit(127);
        }
        for (int i = 0; i < 500; ++i) {
            if (path_exists(dir_ / ("run/containers/" + name_ + ".json"))) return true;
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        return false;
    }
    // The table row of `name` in `berth list`'s output.
    static std::string row_of(const std::string& out, const std::string& name) {
        for (auto& line : split_lines(out))
            if (line.rfind(name + " ", 0) == 0) return line;
        return "";
    }

    TempDir dir_{"berth-view"};
    std::string name_, idle_, cgroup_;
    pid_t run_pid_ = -1;
};

TEST_F(WithoutSystemd, ListStatusStopStartAndLogsWorkFromTheRuntimeState) {
    ASSERT_TRUE(start_run()) << test::read_file(dir_ / "run.log");

    RunResult list = run_capture({berth_exe(), "list"});
    EXPECT_EQ(list.exit_code, 0) << list.out;
    EXPECT_NE(list.out.find("systemd not reachable"), std::string::npos) << list.out;
    EXPECT_NE(list.out.find("showing berth's own runtime state"), std::string::npos) << list.out;
    std::string running = row_of(list.out, name_);
    EXPECT_NE(running.find("running (berth run)"), std::string::npos) << list.out;
    EXPECT_NE(running.find("rootfs:"), std::string::npos) << running;
    std::string idle = row_of(list.out, idle_);
    EXPECT_NE(idle.find("not running"), std::string::npos) << list.out;

    RunResult json = run_capture({berth_exe(), "list", "--json"});
    EXPECT_EQ(json.exit_code, 0) << json.out;
    EXPECT_NE(json.out.find("\"supervisor_pid\": " + std::to_string(run_pid_)), std::string::npos)
        << json.out;

    RunResult status = run_capture({berth_exe(), "status", name_});
    EXPECT_EQ(status.exit_code, 0) << status.out;
    EXPECT_NE(status.out.find("by `berth run` since"), std::string::npos) << status.out;
    EXPECT_NE(status.out.find("(supervisor " + std::to_string(run_pid_) + ")"), std::string::npos)
        << status.out;
    RunResult idle_status = run_capture({berth_exe(), "status", idle_});
    EXPECT_EQ(idle_status.exit_code, 3) << idle_status.out;

    RunResult start = run_capture({berth_exe(), "start", idle_});
    EXPECT_EQ(start.exit_code, 1) << start.out;
    EXPECT_NE(start.out.find("cannot start containers without systemd"), std::string::npos) << start.out;
    EXPECT_NE(start.out.find("berth run NAME"), std::string::npos) << start.out;

    RunResult stop = run_capture({berth_exe(), "stop", name_});
    EXPECT_EQ(stop.exit_code, 0) << stop.out;
    int st = 0;
    ASSERT_EQ(::waitpid(run_pid_, &st, 0), run_pid_);
    run_pid_ = -1;
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st << test::read_file(dir_ / "run.log");
    EXPECT_NE(test::read_file(dir_ / "run.log").find("SIGTERM: stopping"), std::string::npos)
        << test::read_file(dir_ / "run.log");

    list = run_capture({berth_exe(), "list"});
    EXPECT_NE(row_of(list.out, name_).find("not running"), std::string::npos) << list.out;
    EXPECT_FALSE(path_exists(cgroup_));

    RunResult logs = run_capture({berth_exe(), "logs", "nosuch-" + std::to_string(::getpid())});
    EXPECT_EQ(logs.exit_code, 4) << logs.out;
    EXPECT_NE(logs.out.find("unknown container 'nosuch-"), std::string::npos) << logs.out;
}

}  // namespace
