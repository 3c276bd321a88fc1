// `[container] pull` applied when a container starts (issue #17): `berth run` of a declaration
// that names a registry reference, against a real docker-registry on 127.0.0.1, through a private
// berthd (BERTH_STORAGE=embedded) on a tmpfs store. The busybox test image and the "layered" one
// (busybox plus /added/file) are told apart by the payload, so a moved tag is seen in what runs.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>
#include <thread>

#include "basic/fs-util.h"
#include "registry-fixture.h"

namespace berth::registry {
namespace {

using store::test::capture;
using store::test::StoreRoot;
using test::Registry;

// The berth under test: this build's, or $BERTH_TEST_BERTH (to run these tests against another
// build, e.g. the one before a change).
std::string berth_binary() {
    const char* e = std::getenv("BERTH_TEST_BERTH");
    return e && *e ? e : BERTH_BINARY;
}

// What the payload prints: which of the two test images it runs in.
constexpr const char* kWhich =
    R"(["sh", "-c", "test -e /added/file && echo ran-layered || echo ran-busybox"])";

class PullAtRun : public ::testing::Test {
protected:
    void SetUp() override {
        if (::geteuid() != 0) GTEST_SKIP() << "needs root (a container and a tmpfs store)";
        ASSERT_TRUE(reg_.ok()) << "docker-registry did not start: " << capture("cat " + reg_.log());
        ASSERT_TRUE(root_.ok()) << "no tmpfs for the store";
        images_ = store::test::test_images();
        ASSERT_FALSE(images_.empty()) << "make-test-images.sh failed";
        ASSERT_TRUE(mkdir_p(tmp_ / "reg") && mkdir_p(tmp_ / "decl") && mkdir_p(tmp_ / "run"));
        ASSERT_TRUE(
            write_file(tmp_ / "reg/registries.toml",
                       fmt::format("[[registry]]\nprefix = \"{0}\"\nlocation = \"{0}\"\ninsecure = true\n",
                                   reg_.host())));
        ref_ = reg_.host() + "/test/app:v1";
    }

    // `berth ARGS` with this test's store, run dir, declarations and registries; stdout and stderr.
    std::string berth(const std::string& args, int* status = nullptr) const {
        std::string env =
            "BERTH_STORAGE=embedded BERTH_STORE_ROOT=" + root_.root() + " BERTH_STATE_DIR=" + tmp_ / "state" +
            " BERTH_RUN_DIR=" + tmp_ / "run" + " BERTH_DAEMON_CONFIG=" + tmp_ / "berthd.toml" +
            " BERTH_REGISTRIES_PATH=" + tmp_ / "reg" + " BERTH_CONTAINERS_PATH=" + tmp_ / "decl" +
            " NO_PROXY=127.0.0.1 no_proxy=127.0.0.1 BERTH_PROGRESS=none";
        std::string out =
            capture(env + " timeout 120 " + berth_binary() + " " + args + " 2>&1; echo \"rc=$?\"");
        auto at = out.rfind("rc=");
        if (status) *status = at == std::string::npos ? -1 : std::atoi(out.c_str() + at + 3);
        return out;
    }

    // NAME.toml naming `image` with `pull` (none: the default) and `command`; returns its path.
    std::string declare(const std::string& name, const std::string& image, const std::string& pull,
                        const std::string& command = kWhich) {
        std::string text = fmt::format("[container]\nimage = \"{}\"\ncommand = {}\n", image, command);
        if (!pull.empty()) text += fmt::format("pull = \"{}\"\n", pull);
        std::string path = tmp_ / ("decl/" + name + ".toml");
        EXPECT_TRUE(write_file(path, text));
        return path;
    }

    // Runs the declaration in the foreground and expects its payload to print `expected`.
    void expect_runs(const std::string& path, const std::string& expected) {
        int status = -1;
        std::string out = berth("run " + path, &status);
        EXPECT_EQ(status, 0) << out;
        EXPECT_NE(out.find(expected + "\n"), std::string::npos) << out;
    }

    // `berth ARGS` in the background (its output in run.log), as berth() runs it; its pid.
    pid_t spawn(const std::string& args) const {
        pid_t pid = ::fork();
        if (pid == 0) {
            std::string cmd = "exec " + berth_binary() + " " + args + " >" + tmp_ / "run.log" + " 2>&1";
            ::setenv("BERTH_STORAGE", "embedded", 1);
            ::setenv("BERTH_STORE_ROOT", root_.root().c_str(), 1);
            ::setenv("BERTH_STATE_DIR", (tmp_ / "state").c_str(), 1);
            ::setenv("BERTH_RUN_DIR", (tmp_ / "run").c_str(), 1);
            ::setenv("BERTH_DAEMON_CONFIG", (tmp_ / "berthd.toml").c_str(), 1);
            ::setenv("BERTH_REGISTRIES_PATH", (tmp_ / "reg").c_str(), 1);
            ::setenv("BERTH_CONTAINERS_PATH", (tmp_ / "decl").c_str(), 1);
            ::setenv("NO_PROXY", "127.0.0.1", 1);
            ::setenv("no_proxy", "127.0.0.1", 1);
            ::execl("/bin/sh", "sh", "-c", cmd.c_str(), nullptr);
            ::_exit(127);
        }
        return pid;
    }

    static bool write_file(const std::string& path, const std::string& text) {
        return berth::write_file(path, text).has_value();
    }

    std::string name(const std::string& what) const { return fmt::format("{}-{}", what, ::getpid()); }

    std::string images_;
    StoreRoot root_{"overlay"};
    berth::test::TempDir tmp_{"berth-pull-at-run"};
    Registry reg_;
    std::string ref_;
};

TEST_F(PullAtRun, MissingPullsOnceAndTheNextStartDoesNotAskTheRegistry) {
    ASSERT_TRUE(reg_.push("oci:" + images_ + "/oci:busybox", "test/app:v1"));
    auto path = declare(name("missing"), ref_, "");
    expect_runs(path, "ran-busybox");
    int manifests = reg_.manifest_gets("test/app");
    EXPECT_GE(manifests, 1) << "the first start pulled";
    EXPECT_GE(reg_.blob_gets("test/app"), 1);
    expect_runs(path, "ran-busybox");
    EXPECT_EQ(reg_.manifest_gets("test/app"), manifests) << "pull = \"missing\" with the image stored";
}

TEST_F(PullAtRun, NeverRefusesClearlyWhenTheImageIsAbsentAndAsksNoRegistry) {
    ASSERT_TRUE(reg_.push("oci:" + images_ + "/oci:busybox", "test/app:v1"));
    int status = -1;
    std::string out = berth("run " + declare(name("never"), ref_, "never"), &status);
    EXPECT_EQ(status, 125) << out;
    EXPECT_NE(
        out.find("image '" + ref_ +
                 "' is not in the store and pull = \"never\": pull it with `berth image pull " + ref_ + "`"),
        std::string::npos)
        << out;
    EXPECT_EQ(reg_.manifest_gets("test/app"), 0);
    EXPECT_EQ(capture("ls -A " + root_.root() + "/staging 2>/dev/null"), "");
}

TEST_F(PullAtRun, AMovedTagIsPickedUpByNewerAndNotByMissing) {
    ASSERT_TRUE(reg_.push("oci:" + images_ + "/oci:busybox", "test/app:v1"));
    auto missing = declare(name("moved-missing"), ref_, "missing");
    auto newer = declare(name("moved-newer"), ref_, "newer");
    expect_runs(missing, "ran-busybox");
    // The tag moves to another image.
    ASSERT_TRUE(reg_.push("oci:" + images_ + "/oci:layered", "test/app:v1"));
    expect_runs(missing, "ran-busybox");
    expect_runs(newer, "ran-layered");
    // The store's tag moved with the pull: "missing" runs the new image from now on.
    expect_runs(missing, "ran-layered");
    // "newer" with the registry gone runs what the store has, and says so.
    reg_.stop();
    int status = -1;
    std::string out = berth("run " + newer, &status);
    EXPECT_EQ(status, 0) << out;
    EXPECT_NE(out.find("ran-layered\n"), std::string::npos) << out;
    EXPECT_NE(out.find("running the stored image sha256:"), std::string::npos) << out;
}

TEST_F(PullAtRun, PullDeclaredPullsEachDeclaredRegistryImageOnceAndStatusShowsTheImageId) {
    ASSERT_TRUE(reg_.push("oci:" + images_ + "/oci:busybox", "test/app:v1"));
    auto a = name("decl-a"), b = name("decl-b");
    declare(a, ref_, "never", R"(["sh", "-c", "trap 'exit 0' TERM; sleep 1000 & wait"])");
    declare(b, ref_, "");
    declare(name("decl-local"), "not-a-registry-image:1", "");  // a local name: not pulled
    int status = -1;
    std::string out = berth("image pull --declared --json", &status);
    ASSERT_EQ(status, 0) << out;
    auto json = nlohmann::json::parse(out.substr(0, out.rfind("rc=")), nullptr, false);
    ASSERT_TRUE(json.is_array() && json.size() == 1u) << out;
    EXPECT_EQ(json[0]["reference"], ref_);
    EXPECT_EQ(json[0]["containers"], (nlohmann::json{a, b}));
    std::string id = json[0]["image"].value("id", "");
    ASSERT_EQ(id.rfind("sha256:", 0), 0u) << out;

    // pull = "never" now starts; its record says which image it runs.
    pid_t runner = spawn("run " + a);
    ASSERT_GT(runner, 0);
    std::string shown, list;
    for (int i = 0; i < 300; ++i) {
        auto view = berth("status --json " + a);  // stderr too: warnings (no systemd here) come first
        auto start = view.find('{');
        auto j = start == std::string::npos
                     ? nlohmann::json()
                     : nlohmann::json::parse(view.substr(start, view.rfind("rc=") - start), nullptr, false);
        if (j.is_object() && j["running"].is_object()) {
            shown =
                j.value("image_id", nlohmann::json()).is_string() ? j["image_id"].get<std::string>() : "null";
            list = berth("list");
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ::kill(runner, SIGTERM);
    int ws = 0;
    ::waitpid(runner, &ws, 0);
    EXPECT_EQ(shown, id) << capture("cat " + tmp_ / "run.log");
    EXPECT_NE(list.find(id.substr(0, 19)), std::string::npos) << "berth list shows the image id\n" << list;
}

// A stop during the pull at start (issue #17): `berth run --systemd` gets SIGTERM from `systemctl
// stop`, `berth run` a Ctrl-C (SIGINT), while its image trickles in (trickle-registry.py: one
// 64 MiB layer at 5 KiB/s). The pull's job is cancelled and the run exits within seconds, nothing
// published, staging empty. Before, the stop signal waited (blocked) until the pull finished.
TEST_F(PullAtRun, AStopSignalDuringThePullCancelsItAndTheRunExitsAtOnce) {
    int tport = test::free_port();
    std::string tlog = tmp_ / "trickle.log";
    test::Child trickle;
    ASSERT_TRUE(trickle.start(
        {"python3", berth::test::source_root() + "/tests/privileged/registry/trickle-registry.py",
         std::to_string(tport), tlog},
        tmp_ / "trickle.out"));
    for (int i = 0; i < 1200 && !test::port_open(tport); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(25));
    ASSERT_TRUE(test::port_open(tport)) << capture("cat " + tmp_ / "trickle.out");
    std::string host = "127.0.0.1:" + std::to_string(tport);
    ASSERT_TRUE(write_file(
        tmp_ / "reg/registries.toml",
        fmt::format("[[registry]]\nprefix = \"{0}\"\nlocation = \"{0}\"\ninsecure = true\n", host)));
    for (auto [args, sig] :
         {std::pair{std::string("run --systemd "), SIGTERM}, {std::string("run "), SIGINT}}) {
        SCOPED_TRACE(args + sigabbrev_np(sig));
        (void)::unlink(tlog.c_str());
        auto path = declare(name(sig == SIGTERM ? "stop-term" : "stop-int"), host + "/slow/app:v1", "always");
        pid_t runner = spawn(args + path);
        ASSERT_GT(runner, 0);
        bool started = false;
        for (int i = 0; i < 1500 && !started; ++i) {
            started = capture("cat " + tlog + " 2>/dev/null").find("blob started") != std::string::npos;
            if (!started) std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        EXPECT_TRUE(started) << capture("cat " + tmp_ / "run.log");
        ::kill(runner, sig);
        auto t0 = std::chrono::steady_clock::now();
        int ws = 0;
        bool exited = false;
        while (!exited && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(10)) {
            exited = ::waitpid(runner, &ws, WNOHANG) == runner;
            if (!exited) std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        if (!exited) {
            ::kill(runner, SIGKILL);
            ::waitpid(runner, &ws, 0);
        }
        double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        std::string out = capture("cat " + tmp_ / "run.log");
        ASSERT_TRUE(exited) << "still pulling 10 s after the signal\n" << out;
        EXPECT_TRUE(WIFEXITED(ws) && WEXITSTATUS(ws) != 0) << out;
        EXPECT_NE(out.find(std::string("start interrupted by SIG") + sigabbrev_np(sig) + " while pulling '" +
                           host + "/slow/app:v1': the pull was cancelled, nothing was published"),
                  std::string::npos)
            << out;
        // The registry sees the connection close at its next write (0.2 s apart).
        bool aborted = false;
        for (int i = 0; i < 150 && !aborted; ++i) {
            aborted = capture("cat " + tlog).find("blob aborted by the client") != std::string::npos;
            if (!aborted) std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        EXPECT_TRUE(aborted) << "the download went on after the run exited";
        EXPECT_EQ(capture("ls -A " + root_.root() + "/staging 2>/dev/null"), "");
        std::string images = berth("image list --json");
        EXPECT_EQ(images.substr(0, images.rfind("rc=")), "[]\n") << images;
        std::printf("SIG%s: the run exited %.2f s after it\n", sigabbrev_np(sig), took);
    }
}

}  // namespace
}  // namespace berth::registry
