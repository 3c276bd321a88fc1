// Health checks run by berth's supervisor (issue #18), for real: `berth run` in the foreground (no
// systemd), a busybox rootfs, probes every 100 ms. What is asserted:
//   - a probe that passes and then fails (the test removes the file it checks) makes exactly one
//     log line per transition over more than 20 probes, and `berth list --json` follows;
//   - on_failure = "kill" and "restart" act (berth run's exit status says which);
//   - a probe that hangs is killed at its timeout, with the processes it started;
//   - a probe is no way out: its credentials, no_new_privs, seccomp mode and cgroup are the
//     payload's, and the escape probe of tests/privileged/escape passes as a health command;
//   - an image's HEALTHCHECK is the check of a declaration without one, and command = [] turns
//     it off.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "../escape/berth-harness.h"

namespace fs = std::filesystem;
using namespace berth::test;

namespace {

// `berth run` in the background, its output in a file; stopped (SIGTERM, then SIGKILL) at the end.
class Running {
public:
    Running(const std::string& toml, const std::string& log) {
        pid_ = fork();
        if (pid_ == 0) {
            int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
            int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
            if (fd < 0 || devnull < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0 || dup2(devnull, 0) < 0)
                _exit(126);
            execl(berth_exe().c_str(), "berth", "run", toml.c_str(), static_cast<char*>(nullptr));
            _exit(127);
        }
    }
    Running(const Running&) = delete;
    Running& operator=(const Running&) = delete;
    // berth run's exit status once it ends within `timeout_s`; -1 if it did not (or died of a signal).
    int wait_exit(int timeout_s) {
        for (int i = 0; i < timeout_s * 20 && pid_ > 0; i++) {
            int status = 0;
            if (waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = -1;
                return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
            }
            usleep(50000);
        }
        return -1;
    }
    ~Running() {
        if (pid_ <= 0) return;
        kill(pid_, SIGTERM);
        if (wait_exit(5) == -1 && pid_ > 0) {
            kill(pid_, SIGKILL);
            waitpid(pid_, nullptr, 0);
        }
    }

private:
    pid_t pid_ = -1;
};

// Polls `done` every 50 ms for up to `timeout_s`.
template <class F>
bool eventually(F done, int timeout_s) {
    for (int i = 0; i < timeout_s * 20; i++) {
        if (done()) return true;
        usleep(50000);
    }
    return false;
}

size_t count(const std::string& text, const std::string& what) {
    size_t n = 0;
    for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
}

class Health : public ::testing::Test {
protected:
    void SetUp() override {
        BERTH_REQUIRE_ROOT();
        rootfs_ = dir_ / "rootfs";
        out_ = dir_ / "out";
        ASSERT_TRUE(make_busybox_rootfs(rootfs_));
        fs::create_directories(out_);
        ::setenv("BERTH_STATE_DIR", (dir_ / "state").c_str(), 1);
    }
    void TearDown() override { ::unsetenv("BERTH_STATE_DIR"); }
    std::string name(const std::string& tag) const { return "hc" + tag + std::to_string(getpid()); }
    // NAME.toml: a payload that waits (init = true: SIGTERM ends it), /out bound, `health` as [health].
    std::string declare(const std::string& n, const std::string& health, const std::string& payload = "") {
        std::string script = payload.empty() ? "while :; do sleep 1; done" : payload;
        std::string path = dir_ / (n + ".toml");
        write_file(path, shell_declaration(rootfs_, out_, script, "init = true\n", "\n[health]\n" + health));
        return path;
    }
    nlohmann::json list_entry(const std::string& n) {
        RunResult r = run_capture({berth_exe(), "list", "--json"}, 30);
        // stderr comes along (a notice when systemd is not there): the array starts a line.
        size_t at = r.out.rfind("\n[", 0) == 0 || r.out.rfind("[", 0) == 0 ? 0 : r.out.find("\n[");
        if (at == std::string::npos) return nullptr;
        auto j = nlohmann::json::parse(r.out.substr(at), nullptr, false);
        if (j.is_array())
            for (auto& e : j)
                if (e.value("name", "") == n) return e;
        return nullptr;
    }
    std::string health_of(const std::string& n) {
        auto e = list_entry(n);
        return e.is_object() ? e.value("health", "") : "";
    }
    TempDir dir_{"berth-health"};
    std::string rootfs_, out_;
};

}  // namespace

TEST_F(Health, APassingThenFailingProbeLogsEachTransitionOnceAndListFollows) {
    const std::string n = name("t");
    write_file(out_ + "/ok", "");
    Running run(declare(n,
                        "command = [\"/bin/sh\", \"-c\", \"echo probe >> /out/count; echo checking; test -e "
                        "/out/ok\"]\ninterval = \"100ms\"\nstart_interval = \"50ms\"\ntimeout = \"5s\"\n"
                        "retries = 2\n"),
                dir_ / "run.log");
    auto probes = [&] { return count(read_file(out_ + "/count"), "probe"); };
    ASSERT_TRUE(eventually([&] { return probes() >= 10; }, 30)) << read_file(dir_ / "run.log");
    EXPECT_EQ(health_of(n), "healthy");
    fs::remove(out_ + "/ok");
    const size_t before = probes();
    ASSERT_TRUE(eventually([&] { return probes() >= before + 12; }, 30)) << read_file(dir_ / "run.log");
    EXPECT_EQ(health_of(n), "unhealthy");
    auto entry = list_entry(n);
    ASSERT_TRUE(entry.is_object());
    EXPECT_GE(entry.value("health_failing_streak", 0), 10);
    ASSERT_FALSE(entry["probes"].empty());
    EXPECT_EQ(entry["probes"].back().value("exit_status", -2), 1);
    EXPECT_EQ(entry["probes"].back().value("output", ""), "checking\n");
    // Back to healthy.
    write_file(out_ + "/ok", "");
    ASSERT_TRUE(eventually([&] { return health_of(n) == "healthy"; }, 30));

    const std::string log = read_file(dir_ / "run.log");
    EXPECT_GE(probes(), 22u);
    EXPECT_EQ(count(log, "health: "), 3u) << log;
    EXPECT_EQ(count(log, "health: starting -> healthy\n"), 1u) << log;
    EXPECT_EQ(count(log, "health: healthy -> unhealthy: probe exited with status 1 after "), 1u) << log;
    EXPECT_NE(log.find(" ms: checking\n"), std::string::npos) << "the failing probe's output tail: " << log;
    EXPECT_EQ(count(log, "health: unhealthy -> healthy\n"), 1u) << log;
}

TEST_F(Health, OnFailureKillAndRestartAct) {
    // No /out/ok: the first probe after the (short) start period fails.
    const std::string killed = name("k");
    Running k(declare(killed,
                      "command = [\"/bin/test\", \"-e\", \"/out/ok\"]\ninterval = \"100ms\"\nretries = 2\n"
                      "on_failure = \"kill\"\n"),
              dir_ / "kill.log");
    EXPECT_EQ(k.wait_exit(30), 128 + SIGKILL) << read_file(dir_ / "kill.log");
    EXPECT_NE(read_file(dir_ / "kill.log").find("on_failure = \"kill\": killing the payload"),
              std::string::npos)
        << read_file(dir_ / "kill.log");

    // restart: the payload is stopped in order (its TERM trap runs) and berth exits 250, the status
    // the generated unit lists in RestartForceExitStatus=.
    const std::string restarted = name("r");
    Running r(declare(restarted,
                      "command = [\"/bin/test\", \"-e\", \"/out/ok\"]\ninterval = \"100ms\"\nretries = 2\n"
                      "on_failure = \"restart\"\n",
                      "trap 'echo stopped > /out/stopped; exit 0' TERM; while :; do sleep 0.1; done"),
              dir_ / "restart.log");
    EXPECT_EQ(r.wait_exit(30), 250) << read_file(dir_ / "restart.log");
    EXPECT_EQ(read_file(out_ + "/stopped"), "stopped\n") << read_file(dir_ / "restart.log");
}

TEST_F(Health, AHangingProbeIsKilledAtItsTimeoutWithWhatItStarted) {
    const std::string n = name("h");
    // The first probe hangs (and leaves a background sleep behind); the later ones pass at once.
    Running run(declare(n,
                        "command = [\"/bin/sh\", \"-c\", \"test -e /out/hung && exit 0; touch /out/hung; "
                        "sleep 600 & sleep 600\"]\ninterval = \"200ms\"\ntimeout = \"300ms\"\n"),
                dir_ / "run.log");
    ASSERT_TRUE(eventually([&] { return health_of(n) == "healthy"; }, 30)) << read_file(dir_ / "run.log");
    auto entry = list_entry(n);
    ASSERT_TRUE(entry.is_object());
    ASSERT_FALSE(entry["probes"].empty());
    auto first = entry["probes"].front();
    EXPECT_TRUE(first.value("timed_out", false)) << first.dump();
    EXPECT_GE(first.value("duration_us", 0), 300000);
    EXPECT_LT(first.value("duration_us", 0), 3000000);
    // Nothing the hung probe started is left in the payload's cgroup.
    std::string procs = read_file(entry["running"].value("cgroup", "") + "/cgroup.procs");
    ASSERT_FALSE(procs.empty());
    for (const auto& pid : split_lines(procs)) {
        std::string cmdline = read_file("/proc/" + pid + "/cmdline");
        EXPECT_NE(cmdline, std::string("sleep\0"
                                       "600\0",
                                       10))
            << "pid " << pid << " of the hung probe";
    }
}

TEST_F(Health, AProbeHasThePayloadsPrivilegesAndNoMore) {
    const std::string n = name("p");
    fs::copy_file(BERTH_ESCAPE_PROBE, rootfs_ + "/bin/berth-escape-probe",
                  fs::copy_options::overwrite_existing);
    const std::string status_lines =
        "grep -E '^(Uid|Gid|Groups|CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):' "
        "/proc/self/status; "
        "cat /proc/self/cgroup";
    Running run(declare(n,
                        "command = [\"/bin/sh\", \"-c\", \"" + status_lines +
                            "\"]\ninterval = \"1h\"\n"
                            "start_interval = \"1h\"\n",
                        "(" + status_lines + ") > /out/payload; while :; do sleep 1; done"),
                dir_ / "run.log");
    ASSERT_TRUE(eventually([&] { return !read_file(out_ + "/payload").empty(); }, 30))
        << read_file(dir_ / "run.log");
    RunResult h = run_capture({berth_exe(), "health", "--json", n}, 30);
    ASSERT_EQ(h.exit_code, 0) << h.out;
    auto j = nlohmann::json::parse(h.out, nullptr, false);
    ASSERT_TRUE(j.is_object()) << h.out;
    EXPECT_EQ(j.value("output", ""), read_file(out_ + "/payload"));
    EXPECT_NE(j.value("output", "").find("NoNewPrivs:\t1"), std::string::npos) << h.out;
    EXPECT_NE(j.value("output", "").find("Seccomp:\t2"), std::string::npos) << h.out;

    // The escape probe's attempts, run as a health probe: every one denied (it exits 1 on any).
    const std::string e = name("e");
    Running escape(declare(e, "command = [\"/bin/berth-escape-probe\", \"--outside-pid\", \"" +
                                  std::to_string(getpid()) +
                                  "\"]\ninterval = \"1h\"\nstart_interval = \"1h\"\n"
                                  "timeout = \"60s\"\n"),
                   dir_ / "escape.log");
    ASSERT_TRUE(
        eventually([&] { return !list_entry(e).is_null() && list_entry(e)["running"].is_object(); }, 30));
    RunResult x = run_capture({berth_exe(), "health", "--json", e}, 90);
    auto xj = nlohmann::json::parse(x.out, nullptr, false);
    ASSERT_TRUE(xj.is_object()) << x.out;
    EXPECT_EQ(xj.value("exit_status", -2), 0) << x.out;
    EXPECT_NE(xj.value("output", "").find(" attempts, 0 failed"), std::string::npos) << x.out;
}

// An image's HEALTHCHECK (config.Healthcheck, CMD-SHELL form, Docker's nanoseconds) is the check
// of a declaration without [health]; `[health] command = []` disables it. The image lives in a
// store of the test's own (embedded berthd).
TEST_F(Health, AnImagesHealthcheckRunsUnlessTheDeclarationDisablesIt) {
    if (run_capture({"python3", "-c", "pass"}).exit_code != 0) GTEST_SKIP() << "python3 missing";
    const std::string healthcheck =
        R"({"Test": ["CMD-SHELL", "echo probe >> /out/count; test -e /out/ok"], "Interval": 100000000, )"
        R"("StartInterval": 50000000, "Timeout": 5000000000, "Retries": 2})";
    RunResult made =
        run_capture({"python3", source_root() + "/tests/privileged/health/oci-with-healthcheck.py", rootfs_,
                     dir_ / "oci", healthcheck},
                    120);
    ASSERT_EQ(made.exit_code, 0) << made.out;
    EmbeddedStore store(dir_ / "store");
    const std::string image = "hcimage" + std::to_string(getpid()) + ":v1";
    RunResult imported = run_capture({berth_exe(), "image", "import", dir_ / "oci", "--name", image}, 60);
    ASSERT_EQ(imported.exit_code, 0) << imported.out;
    RunResult inspected = run_capture({berth_exe(), "image", "inspect", image}, 30);
    EXPECT_NE(inspected.out.find("CMD-SHELL"), std::string::npos) << "the store keeps it: " << inspected.out;
    auto declare_image = [&](const std::string& n, const std::string& health) {
        std::string path = dir_ / (n + ".toml");
        write_file(path, "[container]\nimage = \"" + image + "\"\nephemeral = true\ninit = true\n" +
                             "\n[[mount]]\ntype = \"bind\"\nsource = \"" + out_ + "\"\ntarget = \"/out\"\n" +
                             health);
        return path;
    };

    const std::string n = name("i");
    write_file(out_ + "/ok", "");
    {
        Running run(declare_image(n, ""), dir_ / "run.log");
        ASSERT_TRUE(eventually([&] { return health_of(n) == "healthy"; }, 30)) << read_file(dir_ / "run.log");
        fs::remove(out_ + "/ok");
        ASSERT_TRUE(eventually([&] { return health_of(n) == "unhealthy"; }, 30))
            << read_file(dir_ / "run.log");
        EXPECT_GE(count(read_file(out_ + "/count"), "probe"), 3u);
    }
    // Disabled: the container runs, with no check (and no probe ever writes /out/count).
    fs::remove(out_ + "/count");
    const std::string off = name("o");
    Running run(declare_image(off, "\n[health]\ncommand = []\n"), dir_ / "off.log");
    auto running = [&] {
        auto e = list_entry(off);
        return e.is_object() && e.contains("running") && e["running"].is_object();
    };
    ASSERT_TRUE(eventually(running, 30)) << read_file(dir_ / "off.log");
    EXPECT_EQ(health_of(off), "-");
    EXPECT_FALSE(fs::exists(out_ + "/count"));
}
