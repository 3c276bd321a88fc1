// berthd under load, for real: a private dbus-daemon with berth's policy file, the real berthd on a
// temporary overlay store, and 50 clients at once (threads, each with its own bus connection)
// importing small images, listing, reading properties, preparing and releasing snapshots for a
// bounded time. Every call must be answered within kCallLimit (a watchdog fails the test and
// kills berthd to unblock the clients if one is not: a deadlock cannot hang the suite), berthd's
// open fds must be back to the warm-up count, its RSS growth bounded, the store fsck-clean.
//
// Why measure after a warm-up: the first round grows berthd to its working set (sd-bus buffers,
// malloc arenas for the worker threads, the store's caches); a leak shows as growth from there on.
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "bus-fixture.h"
#include "bus/bus-util.h"
#include "bus/storage.h"

using namespace berth;
using namespace berth::test;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int kClients = 50;
constexpr auto kWarmup = std::chrono::seconds(4);
constexpr auto kLoad = std::chrono::seconds(20);
// A call not answered within this is a hang: berthd answers reads on its loop and queues writes
// on worker threads, so even behind 49 queued imports of a few KiB a call takes well under this.
constexpr auto kCallLimit = std::chrono::seconds(20);
// RSS growth allowed between the warm-up and the end of the load (why: see the test).
constexpr long kRssGrowthLimitKiB = 8 * 1024;

long count_fds(pid_t pid) {
    long n = 0;
    DIR* d = ::opendir(("/proc/" + std::to_string(pid) + "/fd").c_str());
    if (!d) return -1;
    while (auto* e = ::readdir(d))
        if (e->d_name[0] != '.') ++n;
    ::closedir(d);
    return n;
}

long rss_kib(pid_t pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(f, line))
        if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
    return -1;
}

long thread_count(pid_t pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(f, line))
        if (line.rfind("Threads:", 0) == 0) return std::atol(line.c_str() + 8);
    return -1;
}

struct Stats {
    std::atomic<long> calls{0}, imports{0}, prepares{0};
    std::mutex mu;
    std::vector<std::string> failures;
    void fail(const std::string& what) {
        std::lock_guard l(mu);
        if (failures.size() < 20) failures.push_back(what);
    }
};

// One client: its own bus connections (the Storage verbs through RemoteStorage, properties
// through a raw sd-bus connection with an explicit timeout) and its own image tarball.
class Client {
public:
    Client(int id, std::string tar, Stats& stats) : id_(id), tar_(std::move(tar)), stats_(stats) {}

    // Runs rounds until `stop`; `busy_since` is the start of the call in flight (0 = idle), read
    // by the watchdog.
    void run(const std::atomic<bool>& stop, std::atomic<int64_t>& busy_since) {
        auto storage = bus::open_remote_storage();
        if (!storage)
            return stats_.fail("client " + std::to_string(id_) + ": connect: " + storage.error().what());
        sd_bus* raw = nullptr;
        if (int r = sd_bus_open_system(&raw); r < 0)
            return stats_.fail("sd_bus_open_system: " + std::to_string(r));
        std::unique_ptr<sd_bus, decltype(&sd_bus_flush_close_unref)> props(raw, sd_bus_flush_close_unref);
        sd_bus_set_method_call_timeout(props.get(), std::chrono::microseconds(kCallLimit).count());
        auto mark = [&] { busy_since = Clock::now().time_since_epoch().count(); };
        auto done = [&] {
            busy_since = 0;
            ++stats_.calls;
        };
        for (int round = 0; !stop; ++round) {
            std::string name = "load" + std::to_string(id_) + ":r" + std::to_string(round % 3);
            std::string container = "load-" + std::to_string(::getpid()) + "-" + std::to_string(id_);
            // Import (a job on a berthd worker).
            UniqueFd fd(::open(tar_.c_str(), O_RDONLY | O_CLOEXEC));
            std::atomic<bool> cancel{false};
            mark();
            auto image = (*storage)->import_image(fd.get(), "rootfs", name, {}, cancel);
            done();
            fd.reset();
            if (!image) return stats_.fail(name + ": import: " + image.error().what());
            ++stats_.imports;
            // List (a read on berthd's loop).
            mark();
            auto list = (*storage)->list_images();
            done();
            if (!list) return stats_.fail(name + ": list: " + list.error().what());
            // GetImage then a property of the image object and of the manager.
            mark();
            sd_bus_error error = SD_BUS_ERROR_NULL;
            sd_bus_message* reply = nullptr;
            int r = sd_bus_call_method(props.get(), "org.berth.Storage1", bus::kManagerPath,
                                       bus::kManagerInterface, "GetImage", &error, &reply, "s", name.c_str());
            std::string path;
            if (r >= 0) {
                const char* p = nullptr;
                if (sd_bus_message_read(reply, "o", &p) >= 0 && p) path = p;
            }
            sd_bus_message_unref(reply);
            done();
            if (r < 0 || path.empty()) {
                std::string msg = error.message ? error.message : std::to_string(r);
                sd_bus_error_free(&error);
                return stats_.fail(name + ": GetImage: " + msg);
            }
            char** names = nullptr;
            mark();
            r = sd_bus_get_property_strv(props.get(), "org.berth.Storage1", path.c_str(),
                                         "org.berth.Storage1.Image", "Names", &error, &names);
            done();
            bool named = false;
            for (char** n = names; n && *n; ++n) named |= name == *n;
            for (char** n = names; n && *n; ++n) free(*n);
            free(names);
            if (r < 0) {
                std::string msg = error.message ? error.message : std::to_string(r);
                sd_bus_error_free(&error);
                return stats_.fail(path + ": Names: " + msg);
            }
            if (!named) return stats_.fail(path + ": Names lacks " + name);
            uint64_t usage = 0;
            mark();
            r = sd_bus_get_property_trivial(props.get(), "org.berth.Storage1", bus::kManagerPath,
                                            bus::kManagerInterface, "PoolUsage", &error, 't', &usage);
            done();
            if (r < 0) {
                std::string msg = error.message ? error.message : std::to_string(r);
                sd_bus_error_free(&error);
                return stats_.fail("PoolUsage: " + msg);
            }
            // Prepare a snapshot of it, read it back, release and remove it.
            mark();
            auto prepared = (*storage)->prepare_container(container, name, false);
            done();
            if (!prepared) return stats_.fail(container + ": prepare: " + prepared.error().what());
            ++stats_.prepares;
            mark();
            auto containers = (*storage)->list_containers();
            done();
            if (!containers) return stats_.fail("list containers: " + containers.error().what());
            bool listed = false;
            for (auto& c : *containers) listed |= c.name == container;
            if (!listed) return stats_.fail(container + " not listed after prepare");
            mark();
            auto released = (*storage)->release_container(container);
            done();
            if (!released) return stats_.fail(container + ": release: " + released.error().what());
            mark();
            auto removed = (*storage)->remove_container(container);
            done();
            if (!removed) return stats_.fail(container + ": remove: " + removed.error().what());
            // Every third round drops the image again, so imports keep creating and removing
            // layers rather than only re-tagging.
            if (round % 3 == 2) {
                mark();
                auto rm = (*storage)->remove_image(name);
                done();
                if (!rm) return stats_.fail(name + ": remove image: " + rm.error().what());
            }
        }
    }

private:
    int id_;
    std::string tar_;
    Stats& stats_;
};

class BerthdLoad : public BerthdFixture {
protected:
    BerthdLoad() : BerthdFixture("berth-load") {}
    void SetUp() override {
        BerthdFixture::SetUp();
        if (HasFatalFailure() || IsSkipped()) return;
        // Small, distinct images: a few files each, one of them naming the client.
        for (int i = 0; i < kClients; ++i) {
            std::string d = dir_ / ("img" + std::to_string(i));
            std::string tar = dir_ / ("img" + std::to_string(i) + ".tar");
            auto r = run_shell("mkdir -p " + d + "/etc " + d + "/bin && echo client-" + std::to_string(i) +
                               " > " + d + "/etc/hostname && head -c 4096 /dev/urandom > " + d +
                               "/bin/payload && tar -C " + d + " -cf " + tar + " .");
            ASSERT_EQ(r.status, 0) << r.err;
            tars_.push_back(tar);
        }
        start_berthd();
    }

    // Runs all clients for `duration`; false (with failures recorded) when a call hung.
    bool run_clients(std::chrono::seconds duration, Stats& stats) {
        std::atomic<bool> stop{false};
        std::vector<std::atomic<int64_t>> busy(kClients);
        std::vector<std::thread> threads;
        for (int i = 0; i < kClients; ++i)
            threads.emplace_back([&, i] { Client(i, tars_[i], stats).run(stop, busy[i]); });
        auto end = Clock::now() + duration;
        bool hung = false;
        // The watchdog: runs until every client is back, including after `stop`.
        for (;;) {
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
            auto now = Clock::now();
            if (now >= end) stop = true;
            bool all_idle = stop.load();
            for (int i = 0; i < kClients; ++i) {
                int64_t since = busy[i].load();
                if (since == 0) continue;
                all_idle = false;
                if (now - Clock::time_point(Clock::duration(since)) > kCallLimit && !hung) {
                    hung = true;
                    stats.fail("client " + std::to_string(i) + ": a call was not answered within " +
                               std::to_string(std::chrono::seconds(kCallLimit).count()) +
                               " s (threads in berthd: " + std::to_string(thread_count(daemon_.pid())) + ")");
                    stop = true;
                    // Unblock every client: they fail their call once berthd leaves the bus.
                    daemon_.kill_and_reap();
                }
            }
            if (stop && all_idle) {
                // Idle now, but a client may be between two calls: join settles it.
                break;
            }
        }
        for (auto& t : threads) t.join();
        return !hung;
    }

    std::vector<std::string> tars_;
};

}  // namespace

TEST_F(BerthdLoad, FiftyClientsAtOnceAreAllAnsweredAndBerthdNeitherLeaksFdsNorGrows) {
    pid_t pid = daemon_.pid();
    long fds_start = count_fds(pid), rss_start = rss_kib(pid);

    Stats warm;
    ASSERT_TRUE(run_clients(kWarmup, warm)) << ::testing::PrintToString(warm.failures) << log();
    ASSERT_TRUE(warm.failures.empty()) << ::testing::PrintToString(warm.failures) << log();
    // Workers finish after their reply is sent; give them a moment to be joined.
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    long fds_warm = count_fds(pid), rss_warm = rss_kib(pid);

    Stats load;
    auto t0 = Clock::now();
    bool answered = run_clients(kLoad, load);
    double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    ASSERT_GE(secs, std::chrono::duration<double>(kLoad).count() - 1) << "the load ended early";
    ASSERT_TRUE(answered) << ::testing::PrintToString(load.failures) << log();
    EXPECT_TRUE(load.failures.empty()) << ::testing::PrintToString(load.failures) << log();
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    ASSERT_FALSE(daemon_.exited()) << "berthd died under load: " << log();
    long fds_end = count_fds(pid), rss_end = rss_kib(pid), threads_end = thread_count(pid);

    long growth = rss_end - rss_warm;
    std::printf(
        "load: %d clients, %.1f s: %ld calls (%.0f/s), %ld imports, %ld snapshots prepared and released\n",
        kClients, secs, load.calls.load(), load.calls.load() / secs, load.imports.load(),
        load.prepares.load());
    std::printf("load: berthd fds start %ld, after warm-up %ld, after load %ld; threads after load %ld\n",
                fds_start, fds_warm, fds_end, threads_end);
    std::printf(
        "load: berthd VmRSS start %ld KiB, after warm-up %ld KiB, after load %ld KiB (growth %ld KiB, %.1f "
        "bytes/call)\n",
        rss_start, rss_warm, rss_end, growth, load.calls.load() ? growth * 1024.0 / load.calls.load() : 0.0);
    std::fflush(stdout);

    EXPECT_GT(load.calls.load(), kClients * 10L) << "the load did not get going";
    EXPECT_EQ(fds_end, fds_warm) << "berthd leaks file descriptors";
    // The bound: 8 MiB absolute leaves room for malloc arenas of worker threads that only first
    // appear under the heavier load (glibc keeps up to 8 x cores arenas, each holding its freed
    // chunks). RSS is not a per-call leak detector: identical runs of this test measured -0.9 MiB
    // and +5.9 MiB of growth after warm-up (-38 and +275 bytes per call), so a per-call bound below
    // that noise only flagged noise. The printed bytes/call stays for the reader; unreachable leaks
    // are LeakSanitizer's (the berthd suite runs under ASan in CI), and a leak that keeps memory
    // reachable at a steady rate shows here once it passes the absolute bound.
    EXPECT_LE(growth, kRssGrowthLimitKiB) << "berthd's RSS grew by " << growth << " KiB";

    // Removed images leave their layers and blobs to gc (by design); after a gc the store must
    // be exactly consistent: no damage and no garbage.
    {
        auto storage = bus::open_remote_storage();
        ASSERT_TRUE(storage) << storage.error().what();
        auto gc = (*storage)->garbage_collect();
        ASSERT_TRUE(gc) << gc.error().what();
        std::printf("load: gc removed %zu items\n", gc->removed.size());
    }
    // berthd shuts down cleanly (no worker stuck), then the store is consistent.
    int status = daemon_.stop(SIGTERM, std::chrono::seconds(30));
    ASSERT_NE(status, -1) << "berthd did not exit on SIGTERM after the load: " << log();
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status << log();
    auto r = run_shell("BERTH_STORE_BACKEND=overlay " + berth_exe() + " fsck --root " + store() +
                       " --config /nonexistent");
    std::printf("load: berth fsck: exit %d\n%s", r.status, r.out.c_str());
    EXPECT_EQ(r.status, 0) << r.out << r.err;
}

// ---- issue #16 item 1: an unprivileged flood of DiskUsage while root imports ----
//
// Every DiskUsage once started a thread in berthd (a walk of the store); uid 65534 calling it in
// a loop took berthd to 559 threads and 1023/1024 fds and held a root import's reply back 35 s.
// Now slow calls run on bounded pools, one walk answers every DiskUsage caller waiting for it and
// an unprivileged uid has a bounded number of calls in flight (beyond: EBUSY at once).

namespace {

constexpr int kFlooders = 250;  // connections of uid 65534 (the system bus allows 256 per uid)
constexpr auto kFlood = std::chrono::seconds(10);  // how long they flood
// berthd's pools (8 call workers + 16 job workers by default) plus the loop thread and what
// libraries start: far below the hundreds one thread per call reached.
constexpr long kThreadBound = 30;
constexpr long kFdGrowthBound = 32;

// A child process of uid 65534 with kFlooders connections calling DiskUsage in a loop for kFlood,
// then printing "answered busy failed first-other-error" on `out`.
Child start_flood(int out) {
    const pid_t parent = ::getpid();
    pid_t pid = ::fork();
    if (pid != 0) return Child(pid);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    if (::setgroups(0, nullptr) < 0 || ::setresgid(65534, 65534, 65534) < 0 ||
        ::setresuid(65534, 65534, 65534) < 0)
        ::_exit(126);
    std::atomic<long> answered{0}, busy{0}, failed{0};
    std::mutex mu;
    std::string other;
    auto end = Clock::now() + kFlood;
    std::vector<std::thread> threads;
    for (int i = 0; i < kFlooders; ++i)
        threads.emplace_back([&] {
            sd_bus* raw = nullptr;
            if (sd_bus_open_system(&raw) < 0) {
                ++failed;
                return;
            }
            std::unique_ptr<sd_bus, decltype(&sd_bus_flush_close_unref)> b(raw, sd_bus_flush_close_unref);
            sd_bus_set_method_call_timeout(b.get(), 60ull * 1000 * 1000);
            while (Clock::now() < end) {
                sd_bus_error error = SD_BUS_ERROR_NULL;
                sd_bus_message* reply = nullptr;
                int r = sd_bus_call_method(b.get(), "org.berth.Storage1", bus::kManagerPath,
                                           bus::kManagerInterface, "DiskUsage", &error, &reply, "");
                sd_bus_message_unref(reply);
                if (r >= 0) {
                    ++answered;
                } else if (r == -EBUSY) {
                    ++busy;
                    std::this_thread::sleep_for(std::chrono::milliseconds(50));
                } else {
                    ++failed;
                    {
                        std::lock_guard l(mu);
                        if (other.empty())
                            other = std::string(error.name ? error.name : "?") + ": " +
                                    (error.message ? error.message : std::to_string(r));
                    }
                    std::this_thread::sleep_for(std::chrono::milliseconds(50));
                }
                sd_bus_error_free(&error);
            }
        });
    for (auto& t : threads) t.join();
    std::string line = std::to_string(answered.load()) + " " + std::to_string(busy.load()) + " " +
                       std::to_string(failed.load()) + " " + other + "\n";
    (void)!::write(out, line.data(), line.size());
    ::_exit(0);
}

class BerthdFlood : public BerthdFixture {
protected:
    BerthdFlood() : BerthdFixture("berth-flood") {}
    void SetUp() override {
        BerthdFixture::SetUp();
        if (HasFatalFailure() || IsSkipped()) return;
        // A small image to import, and a volume of many small files so that each DiskUsage walk
        // takes a while (overlay walks volumes and snapshots for their sizes).
        tar_ = dir_ / "img.tar";
        auto r = run_shell("mkdir -p " + dir_ / "img/etc" + " && head -c 65536 /dev/urandom > " +
                           dir_ / "img/etc/payload && tar -C " + dir_ / "img" + " -cf " + tar_ + " .");
        ASSERT_EQ(r.status, 0) << r.err;
        start_berthd();
        auto storage = bus::open_remote_storage();
        ASSERT_TRUE(storage) << storage.error().what();
        auto volume = (*storage)->create_volume("flood");
        ASSERT_TRUE(volume) << volume.error().what();
        r = run_shell("cd " + volume->source + " && seq 1 20000 | xargs touch");
        ASSERT_EQ(r.status, 0) << r.err;
    }

    // Imports tar_ as `name` as root and returns the seconds it took (< 0: failed, with `error`).
    double timed_import(const std::string& name, std::string& error) {
        auto storage = bus::open_remote_storage();
        if (!storage) {
            error = storage.error().what();
            return -1;
        }
        UniqueFd fd(::open(tar_.c_str(), O_RDONLY | O_CLOEXEC));
        std::atomic<bool> cancel{false};
        auto t0 = Clock::now();
        auto image = (*storage)->import_image(fd.get(), "rootfs", name, {}, cancel);
        if (!image) {
            error = image.error().what();
            return -1;
        }
        return std::chrono::duration<double>(Clock::now() - t0).count();
    }

    std::string tar_;
};

}  // namespace

TEST_F(BerthdFlood, UnprivilegedDiskUsageFloodLeavesThreadsAndFdsBoundedAndRootImportsGoOn) {
    pid_t pid = daemon_.pid();
    std::string error;
    double alone = timed_import("alone:1", error);
    ASSERT_GE(alone, 0) << error << log();
    long fds_before = count_fds(pid);

    int out[2];
    ASSERT_EQ(::pipe2(out, O_CLOEXEC), 0);
    UniqueFd read_end(out[0]), write_end(out[1]);
    Child flood = start_flood(out[1]);
    write_end.reset();

    // Sample berthd's threads and fds while the flood runs.
    std::atomic<bool> stop{false};
    long max_threads = 0, max_fds = 0;
    std::thread sampler([&] {
        while (!stop) {
            max_threads = std::max(max_threads, thread_count(pid));
            max_fds = std::max(max_fds, count_fds(pid));
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
    });
    std::this_thread::sleep_for(std::chrono::seconds(2));  // the flood is under way
    double busy_import = timed_import("flooded:1", error);
    std::string flood_result;
    char buf[512];
    ssize_t n;
    while ((n = ::read(read_end.get(), buf, sizeof buf)) > 0)
        flood_result.append(buf, static_cast<size_t>(n));
    int status = flood.stop(SIGKILL, std::chrono::seconds(30));
    stop = true;
    sampler.join();

    std::printf("flood: %d clients of uid 65534 for %lld s: answered/busy/failed: %s", kFlooders,
                static_cast<long long>(std::chrono::seconds(kFlood).count()), flood_result.c_str());
    std::printf("flood: root import alone %.3f s, during the flood %.3f s\n", alone, busy_import);
    std::printf("flood: berthd threads at most %ld, fds before %ld, at most %ld\n", max_threads, fds_before,
                max_fds);
    std::fflush(stdout);
    ASSERT_FALSE(daemon_.exited()) << "berthd died under the flood: " << log();
    EXPECT_NE(status, -1);
    ASSERT_GE(busy_import, 0) << "the root import failed during the flood: " << error << log();
    // Not a speed assertion: starvation (the issue measured 35 s). Generous for a loaded CI host.
    EXPECT_LT(busy_import, std::max(10 * alone, 3.0)) << "the root import starved";
    EXPECT_LT(busy_import, 30.0);
    EXPECT_LE(max_threads, kThreadBound) << "berthd's threads are not bounded";
    EXPECT_LE(max_fds, fds_before + kFdGrowthBound) << "berthd's fds grew under the flood";
    long answered = std::atol(flood_result.c_str());
    EXPECT_GT(answered, 0) << "no DiskUsage call of the flood was answered: " << flood_result;
    // Every call either answered or refused as busy: nothing else went wrong.
    std::istringstream fields(flood_result);
    long a = 0, b = 0, f = -1;
    fields >> a >> b >> f;
    EXPECT_EQ(f, 0) << flood_result;
}

// ---- issue #16 items 4 and 5: gc does not freeze readers; stalled jobs stall nothing else ----

namespace {

class BerthdGc : public BerthdFixture {
protected:
    BerthdGc() : BerthdFixture("berth-gc") {}
    void SetUp() override {
        BerthdFixture::SetUp();
        if (HasFatalFailure() || IsSkipped()) return;
        start_berthd();
    }
    // A rootfs tarball with `files` empty files (in 100 directories) and `payload` random bytes.
    std::string make_tar(const std::string& name, int files, int payload) {
        std::string d = dir_ / name, tar = dir_ / (name + ".tar");
        std::string cmd =
            "mkdir -p " + d + " && head -c " + std::to_string(payload) + " /dev/urandom >" + d + "/payload";
        if (files > 0)
            cmd += " && cd " + d + " && seq 0 99 | xargs mkdir && seq 1 " + std::to_string(files) +
                   " | awk '{print $1 % 100 \"/f\" $1}' | xargs touch";
        auto r = run_shell(cmd + " && tar -C " + d + " -cf " + tar + " . && rm -rf " + d);
        EXPECT_EQ(r.status, 0) << r.err;
        return tar;
    }
    Result<bus::ImageInfo> import(const std::string& tar, const std::string& name) {
        auto storage = BERTH_TRY(bus::open_remote_storage());
        UniqueFd fd(::open(tar.c_str(), O_RDONLY | O_CLOEXEC));
        std::atomic<bool> cancel{false};
        return storage->import_image(fd.get(), "rootfs", name, {}, cancel);
    }
};

double seconds_since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

}  // namespace

// gc after removing an image of 100k files: it held the store mutex for its whole run and every
// caller waited, even Peer.Ping (8-9 s in the issue). Reads are answered during gc now.
TEST_F(BerthdGc, ReadsAreAnsweredWhileGcRemovesALayerOf100kFiles) {
    auto small = import(make_tar("small", 0, 4096), "small:1");
    ASSERT_TRUE(small) << small.error().what();
    auto t0 = Clock::now();
    auto big = import(make_tar("big", 100000, 0), "big:1");
    ASSERT_TRUE(big) << big.error().what() << log();
    std::printf("gc: imported 100k files in %.1f s\n", seconds_since(t0));
    auto storage = bus::open_remote_storage();
    ASSERT_TRUE(storage) << storage.error().what();
    ASSERT_TRUE((*storage)->remove_image("big:1"));

    std::atomic<bool> gc_done{false};
    Result<bus::GcReport> gc = fail(EINPROGRESS, "gc did not run");
    double gc_secs = 0;
    std::thread gc_thread([&] {
        auto s = bus::open_remote_storage();
        auto g0 = Clock::now();
        if (s) gc = (*s)->garbage_collect();
        gc_secs = seconds_since(g0);
        gc_done = true;
    });
    sd_bus* raw = nullptr;
    ASSERT_GE(sd_bus_open_system(&raw), 0);
    std::unique_ptr<sd_bus, decltype(&sd_bus_flush_close_unref)> b(raw, sd_bus_flush_close_unref);
    sd_bus_set_method_call_timeout(b.get(), 30ull * 1000 * 1000);
    double worst = 0;
    long probes = 0;
    std::string failure;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // gc is under way
    while (!gc_done) {
        // Peer.Ping, ListImages and GetImage: the loop thread and the store's metadata.
        for (const char* method : {"Ping", "ListImages", "GetImage"}) {
            sd_bus_error error = SD_BUS_ERROR_NULL;
            sd_bus_message* reply = nullptr;
            auto p0 = Clock::now();
            int r =
                std::string_view(method) == "Ping"
                    ? sd_bus_call_method(b.get(), "org.berth.Storage1", bus::kManagerPath,
                                         "org.freedesktop.DBus.Peer", "Ping", &error, &reply, "")
                : std::string_view(method) == "ListImages"
                    ? sd_bus_call_method(b.get(), "org.berth.Storage1", bus::kManagerPath,
                                         bus::kManagerInterface, "ListImages", &error, &reply, "")
                    : sd_bus_call_method(b.get(), "org.berth.Storage1", bus::kManagerPath,
                                         bus::kManagerInterface, "GetImage", &error, &reply, "s", "small:1");
            double took = seconds_since(p0);
            sd_bus_message_unref(reply);
            if (r < 0 && failure.empty())
                failure = std::string(method) + ": " + (error.message ? error.message : "?");
            sd_bus_error_free(&error);
            if (!gc_done) {
                worst = std::max(worst, took);
                ++probes;
            }
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    gc_thread.join();
    std::printf("gc: %.2f s; %ld reads answered during it, the slowest in %.1f ms\n", gc_secs, probes,
                worst * 1000);
    std::fflush(stdout);
    ASSERT_TRUE(gc) << gc.error().what() << log();
    EXPECT_FALSE(gc->removed.empty());
    EXPECT_TRUE(failure.empty()) << failure;
    EXPECT_GT(probes, 0) << "gc ended before a read could be timed";
    // The goal is < 100 ms; 1 s leaves room for a loaded CI host and still catches a gc that holds
    // the store for its whole run (seconds for 100k files).
    EXPECT_LT(worst, 1.0) << "a read waited for gc";
}

// An import from a pipe that never delivers and an export into a pipe nobody reads: gc used to wait
// for them, and every import/export after that gc waited for gc; Cancel was ignored on the
// waiting ones. Now gc and a later import complete while both stall, and both cancel.
TEST_F(BerthdGc, AStalledImportAndAStalledExportBlockNeitherGcNorImportsAndBothCancel) {
    auto payload = import(make_tar("payload", 0, 4 << 20), "payload:1");
    ASSERT_TRUE(payload) << payload.error().what();
    int in[2], out[2];
    ASSERT_EQ(::pipe2(in, O_CLOEXEC), 0);
    ASSERT_EQ(::pipe2(out, O_CLOEXEC), 0);
    UniqueFd in_read(in[0]), in_write(in[1]), out_read(out[0]), out_write(out[1]);
    std::atomic<bool> cancel_import{false}, cancel_export{false};
    Result<bus::ImageInfo> stalled_import = fail(EINPROGRESS, "running");
    Result<> stalled_export = fail(EINPROGRESS, "running");
    std::thread importer([&] {
        auto s = bus::open_remote_storage();
        if (s) stalled_import = (*s)->import_image(in_read.get(), "", "stalled:1", {}, cancel_import);
    });
    std::thread exporter([&] {
        auto s = bus::open_remote_storage();
        if (s)
            stalled_export = (*s)->export_image("payload:1", out_write.get(), "oci-archive", &cancel_export);
    });
    auto stop_all = [&] {
        cancel_import = cancel_export = true;
        in_write.reset();
        out_read.reset();
    };
    std::this_thread::sleep_for(std::chrono::seconds(1));  // both jobs run and stall

    auto t0 = Clock::now();
    auto r =
        run_shell("busctl --timeout=15 --address=" + bus_->address() +
                  " call org.berth.Storage1 /org/berth/Storage1 org.berth.Storage1.Manager GarbageCollect");
    double gc_secs = seconds_since(t0);
    t0 = Clock::now();
    auto other = r.status == 0 ? import(make_tar("other", 0, 4096), "other:1")
                               : Result<bus::ImageInfo>(fail(ETIMEDOUT, "skipped: gc hung"));
    double import_secs = seconds_since(t0);
    std::printf("stall: gc %.2f s (exit %d), an import %.2f s, while an import and an export stall\n",
                gc_secs, r.status, import_secs);
    if (r.status != 0 || !other) {
        stop_all();
        importer.join();
        exporter.join();
    }
    ASSERT_EQ(r.status, 0) << "gc did not complete while jobs stalled: " << r.err << log();
    ASSERT_TRUE(other) << other.error().what();

    // Cancel both: each ends as cancelled, soon.
    t0 = Clock::now();
    cancel_import = true;
    cancel_export = true;
    importer.join();
    exporter.join();
    double cancel_secs = seconds_since(t0);
    std::printf("stall: both cancelled in %.2f s\n", cancel_secs);
    ASSERT_FALSE(stalled_import);
    EXPECT_EQ(stalled_import.error().code, ECANCELED) << stalled_import.error().what();
    ASSERT_FALSE(stalled_export);
    EXPECT_EQ(stalled_export.error().code, ECANCELED) << stalled_export.error().what();
    EXPECT_LT(cancel_secs, 10.0);
    ASSERT_FALSE(daemon_.exited()) << log();
}
