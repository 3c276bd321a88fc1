// Faults (issue #7): berthd is killed with SIGKILL and restarted while containers made from
// store images run in the foreground (`berth run`, snapshots prepared through berthd on a
// private dbus-daemon with berth's policy file). The payloads must keep running (their rootfs is
// mounted in the containers' own mount namespaces, berthd holds nothing they need), the
// restarted berthd must know their snapshots (listed, and the image refused for removal because
// they use it; gc keeps them), and stopping the containers afterwards must release through the
// new berthd: the ephemeral snapshot removed, the persistent one kept, fsck clean.
#include <dirent.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <map>
#include <thread>

#include "bus-fixture.h"
#include "bus/storage.h"

using namespace berth;
using namespace berth::test;
using namespace std::chrono_literals;

namespace {

std::string slurp(const std::string& path) {
    auto r = read_file(path);
    return r ? *r : "";
}

size_t count_of(const std::string& text, const std::string& needle) {
    size_t n = 0;
    for (size_t p = text.find(needle); p != std::string::npos; p = text.find(needle, p + 1)) n++;
    return n;
}

// A `berth run` in the foreground: stopped with SIGTERM (the runtime's normal stop: payload
// stopped, snapshot released) and only then SIGKILLed, even when the test fails half-way.
struct Container {
    std::string name, toml, log;
    Child proc;
    ~Container() {
        if (proc.running() && proc.stop(SIGTERM, 20s) == -1) proc.kill_and_reap();
    }
};

class BerthdRestart : public BerthdFixture {
protected:
    BerthdRestart() : BerthdFixture("berth-fault-berthd") {}
    void SetUp() override {
        BerthdFixture::SetUp();
        if (HasFatalFailure() || IsSkipped()) return;
        env_mode_ = std::make_unique<ScopedEnv>("BERTH_STORAGE", "bus");
        std::string rootfs = dir_ / "rootfs";
        auto r = run_shell("bash " + source_root() + "/tests/lib/make-busybox-rootfs.sh " + rootfs +
                           " && tar -C " + rootfs + " -cf " + (dir_ / "rootfs.tar") + " .");
        ASSERT_EQ(r.status, 0) << r.err;
        start_berthd();
        r = run_shell(berth_exe() + " image import " + (dir_ / "rootfs.tar") + " --format rootfs --name " +
                      image_);
        ASSERT_EQ(r.status, 0) << r.out << r.err;
    }
    void TearDown() override {
        containers_.clear();  // SIGTERM first: they release through berthd while it is still up
        env_mode_.reset();
        BerthdFixture::TearDown();
    }

    // A container (exiting 0 on SIGTERM) ticking once per 100 ms into its stdout and into a file in its own
    // rootfs (so a lost snapshot shows as a failed write).
    Container& run(const std::string& suffix, bool ephemeral) {
        auto c = std::make_unique<Container>();
        c->name = "frst" + std::to_string(::getpid()) + suffix;
        c->toml = dir_ / (c->name + ".toml");
        c->log = dir_ / (c->name + ".log");
        std::string decl = "[container]\nimage = \"" + image_ +
                           "\"\nephemeral = " + (ephemeral ? "true" : "false") +
                           "\ncommand = [\"/bin/sh\", \"-c\", 'trap \"exit 0\" TERM; while :; do echo x >> "
                           "/ticks && echo tick; "
                           "sleep 0.1; done']\n";
        EXPECT_TRUE(write_file(c->toml, decl));
        // The runtime's state, lock and layer files go to our own directory, so a test that dies
        // mid-way leaves nothing in /run/berth or /var/lib/berth.
        c->proc = spawn({berth_exe(), "run", c->toml},
                        {"BERTH_RUN_DIR=" + (dir_ / "run"), "BERTH_STATE_DIR=" + (dir_ / "state")}, c->log);
        containers_.push_back(std::move(c));
        return *containers_.back();
    }
    size_t ticks(const Container& c) { return count_of(slurp(c.log), "tick\n"); }
    bool wait_ticks(const Container& c, size_t more_than, std::chrono::seconds limit) {
        auto end = std::chrono::steady_clock::now() + limit;
        while (std::chrono::steady_clock::now() < end) {
            if (ticks(c) > more_than) return true;
            std::this_thread::sleep_for(50ms);
        }
        return false;
    }
    std::unique_ptr<bus::Storage> client() {
        auto s = bus::open_remote_storage();
        EXPECT_TRUE(s) << s.error().what();
        return s ? std::move(*s) : nullptr;
    }

    std::string image_ = "fault:" + std::to_string(::getpid());
    std::unique_ptr<ScopedEnv> env_mode_;
    std::vector<std::unique_ptr<Container>> containers_;
};

}  // namespace

TEST_F(BerthdRestart, ContainersSurviveAKilledBerthdAndTheRestartedOneKnowsAndReleasesThem) {
    Container& keep = run("keep", false);
    Container& fresh = run("fresh", true);
    for (Container* c : {&keep, &fresh})
        ASSERT_TRUE(wait_ticks(*c, 2, 60s)) << c->name << " never ran: " << slurp(c->log) << log();

    // SIGKILL berthd while both run.
    pid_t old = daemon_.pid();
    ASSERT_EQ(::kill(old, SIGKILL), 0);
    daemon_.kill_and_reap();
    size_t keep0 = ticks(keep), fresh0 = ticks(fresh);
    std::this_thread::sleep_for(1500ms);
    for (Container* c : {&keep, &fresh}) {
        EXPECT_FALSE(c->proc.exited()) << c->name << " exited when berthd died: " << slurp(c->log);
    }
    EXPECT_GT(ticks(keep), keep0 + 3) << "payload stalled while berthd was gone: " << slurp(keep.log);
    EXPECT_GT(ticks(fresh), fresh0 + 3) << "payload stalled while berthd was gone: " << slurp(fresh.log);

    // A new berthd on the same store: it knows both snapshots and that the image is in use.
    start_berthd();
    ASSERT_NE(daemon_.pid(), old);
    auto storage = client();
    ASSERT_TRUE(storage);
    auto list = storage->list_containers();
    ASSERT_TRUE(list) << list.error().what();
    std::map<std::string, bus::ContainerInfo> known;
    for (auto& c : *list) known[c.name] = c;
    ASSERT_TRUE(known.count(keep.name)) << "restarted berthd lost " << keep.name << log();
    ASSERT_TRUE(known.count(fresh.name)) << "restarted berthd lost " << fresh.name << log();
    EXPECT_FALSE(known[keep.name].ephemeral);
    EXPECT_TRUE(known[fresh.name].ephemeral);
    auto rm = storage->remove_image(image_);
    ASSERT_FALSE(rm) << "the image was removed while two running containers use it";
    EXPECT_EQ(rm.error().code, EBUSY) << rm.error().what();
    EXPECT_NE(std::string(rm.error().what()).find(keep.name), std::string::npos) << rm.error().what();
    auto gc = storage->garbage_collect();
    ASSERT_TRUE(gc) << gc.error().what();
    list = storage->list_containers();
    ASSERT_TRUE(list);
    EXPECT_EQ(list->size(), 2u) << "gc after the restart dropped a running container's snapshot";
    // Still running, still writing to their own rootfs, after the restart and the gc.
    size_t keep1 = ticks(keep), fresh1 = ticks(fresh);
    EXPECT_TRUE(wait_ticks(keep, keep1 + 3, 10s)) << slurp(keep.log);
    EXPECT_TRUE(wait_ticks(fresh, fresh1 + 3, 10s)) << slurp(fresh.log);
    std::printf("fault berthd-restart: ticks while berthd was dead %zu/%zu; after restart+gc %zu/%zu\n",
                keep1 - keep0, fresh1 - fresh0, ticks(keep) - keep1, ticks(fresh) - fresh1);

    // Stopping releases through the new berthd.
    for (Container* c : {&keep, &fresh}) {
        int status = c->proc.stop(SIGTERM, 30s);
        ASSERT_NE(status, -1) << c->name << " did not stop: " << slurp(c->log);
        // The payload traps SIGTERM (sh as PID 1 would ignore it) and exits 0.
        EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
            << c->name << ": " << status << slurp(c->log);
        EXPECT_EQ(slurp(c->log).find("release"), std::string::npos) << c->name << ": " << slurp(c->log);
    }
    list = storage->list_containers();
    ASSERT_TRUE(list);
    known.clear();
    for (auto& c : *list) known[c.name] = c;
    EXPECT_TRUE(known.count(keep.name)) << "the persistent snapshot must stay after stop";
    EXPECT_FALSE(known.count(fresh.name))
        << "the ephemeral snapshot must be removed at stop: " << slurp(fresh.log);
    // Nothing of the containers is mounted on the host; the store is consistent.
    std::string mi = slurp("/proc/self/mountinfo");
    EXPECT_EQ(mi.find(dir_.path()), std::string::npos) << mi;
    EXPECT_TRUE(storage->remove_container(keep.name)) << "persistent snapshot not removable after release";
    EXPECT_TRUE(storage->remove_image(image_));
    EXPECT_TRUE(storage->garbage_collect());  // image blobs stay until gc: fsck calls them garbage
    storage.reset();
    int status = daemon_.stop(SIGTERM, 30s);
    ASSERT_NE(status, -1) << log();
    auto r = run_shell("BERTH_STORE_BACKEND=overlay " + berth_exe() + " fsck --root " + store() +
                       " --config /nonexistent");
    std::printf("fault berthd-restart: berth fsck exit %d: %s", r.status, r.out.c_str());
    EXPECT_EQ(r.status, 0) << r.out << r.err;
}
