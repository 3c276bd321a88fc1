// Soak (issue #7): start and stop many containers with `berth run` in the foreground, 200 in
// sequence and 20 at once, and check that nothing they used is left behind: mounts, cgroups,
// network namespaces, veths, nftables rules, processes, and the test's own fds. Other engineers
// run tests on this machine at the same time, so the assertions look only at what these
// containers own (names carry this test's pid): OwnCounts, resources attributable to this test
// (named with its unique prefix or the containers' veth names, or under its temp dir) must be
// equal before and after (and are shown to be non-zero while the 20 run, so the counters do see
// them); the global counts (mounts, cgroups, netns, veths, nft rules, loop and dm devices) are
// printed before/after for the record but not asserted: peers' tests change them meanwhile.
// Counts: BERTH_SOAK_SEQUENTIAL (default 200), BERTH_SOAK_PARALLEL (default 20).
#include <dirent.h>
#include <sys/wait.h>

#include <filesystem>

#include "../escape/berth-harness.h"
#include "basic/cgroup-util.h"
#include "network/network.h"

namespace fs = std::filesystem;
using namespace berth::test;

namespace {

int env_int(const char* name, int def) {
    const char* v = getenv(name);
    return v && *v ? atoi(v) : def;
}

size_t count_lines_containing(const std::string& text, const std::string& needle) {
    size_t n = 0;
    for (const auto& l : split_lines(text)) n += l.find(needle) != std::string::npos;
    return n;
}

size_t count_dir(const std::string& dir, const std::string& prefix = "") {
    size_t n = 0;
    if (DIR* d = opendir(dir.c_str())) {
        while (dirent* e = readdir(d))
            if (e->d_name[0] != '.' && std::string(e->d_name).rfind(prefix, 0) == 0) n++;
        closedir(d);
    }
    return n;
}

// Cgroup directories anywhere under the cgroup2 mount whose name contains `needle`.
size_t count_cgroups(const std::string& needle) {
    size_t n = 0;
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(berth::cgroup2_mount_point().value_or("/nonexistent"),
                                                    fs::directory_options::skip_permission_denied, ec);
         it != fs::recursive_directory_iterator(); it.increment(ec)) {
        if (ec) break;
        if (it->is_directory(ec) && it->path().filename().string().find(needle) != std::string::npos) n++;
    }
    return n;
}

size_t count_all_cgroups() {
    size_t n = 0;
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(berth::cgroup2_mount_point().value_or("/nonexistent"),
                                                    fs::directory_options::skip_permission_denied, ec);
         it != fs::recursive_directory_iterator(); it.increment(ec)) {
        if (ec) break;
        n += it->is_directory(ec);
    }
    return n;
}

size_t count_netns() {
    // Distinct network namespaces held by any process, plus bind-mounted ones.
    std::set<std::string> ns;
    if (DIR* d = opendir("/proc")) {
        while (dirent* e = readdir(d)) {
            if (!isdigit(static_cast<unsigned char>(e->d_name[0]))) continue;
            char buf[64];
            ssize_t n = readlink(("/proc/" + std::string(e->d_name) + "/ns/net").c_str(), buf, sizeof buf);
            if (n > 0) ns.insert(std::string(buf, static_cast<size_t>(n)));
        }
        closedir(d);
    }
    return ns.size() + count_dir("/run/netns");
}

size_t count_veths() {
    size_t n = 0;
    if (DIR* d = opendir("/sys/class/net")) {
        while (dirent* e = readdir(d)) {
            if (e->d_name[0] == '.') continue;
            std::string uevent = read_file(std::string("/sys/class/net/") + e->d_name + "/uevent");
            n += read_file(std::string("/sys/class/net/") + e->d_name + "/type").size() &&
                 fs::exists(std::string("/sys/class/net/") + e->d_name + "/iflink") &&
                 fs::exists(std::string("/sys/class/net/") + e->d_name + "/device") == false &&
                 std::string(e->d_name) != "lo" && uevent.find("DEVTYPE=bridge") == std::string::npos;
        }
        closedir(d);
    }
    return n;
}

size_t count_block(const std::string& prefix) { return count_dir("/sys/block", prefix); }

size_t count_fds() { return count_dir("/proc/self/fd"); }

struct Counts {
    size_t mounts, cgroups, netns, net_links, nft_lines, loops, dms, fds;
    std::string str() const {
        return "mounts=" + std::to_string(mounts) + " cgroups=" + std::to_string(cgroups) +
               " netns=" + std::to_string(netns) + " virtual-links=" + std::to_string(net_links) +
               " nft-lines=" + std::to_string(nft_lines) + " loop=" + std::to_string(loops) +
               " dm=" + std::to_string(dms) + " fds=" + std::to_string(fds);
    }
};

Counts snapshot() {
    RunResult nft = run_capture({"nft", "list", "ruleset"}, 30);
    return Counts{split_lines(read_file("/proc/self/mountinfo")).size(),
                  count_all_cgroups(),
                  count_netns(),
                  count_veths(),
                  split_lines(nft.out).size(),
                  count_block("loop"),
                  count_block("dm-"),
                  count_fds()};
}

// What this test's containers own, counted by name anywhere on the host.
struct OwnCounts {
    size_t mounts, cgroups, netns, veths, nft_lines, loops, dms, procs;
    bool operator==(const OwnCounts&) const = default;
    std::string str() const {
        return "mounts=" + std::to_string(mounts) + " cgroups=" + std::to_string(cgroups) +
               " netns=" + std::to_string(netns) + " veths=" + std::to_string(veths) +
               " nft-lines=" + std::to_string(nft_lines) + " loop=" + std::to_string(loops) +
               " dm=" + std::to_string(dms) + " processes=" + std::to_string(procs);
    }
};

// `dir`: the test's temp dir (rootfs, declarations); `prefix`: in every container name;
// `ifnames`: the containers' host veth names (hashed when the name is long, so listed).
OwnCounts own_snapshot(const std::string& dir, const std::string& prefix,
                       const std::vector<std::string>& ifnames) {
    OwnCounts c{};
    for (const auto& l : split_lines(read_file("/proc/self/mountinfo")))
        c.mounts += l.find(dir) != std::string::npos || l.find(prefix) != std::string::npos;
    c.cgroups = count_cgroups(prefix);
    // Processes of the containers (supervisors name the declaration under `dir` on their command
    // line; payloads live in cgroups named after the containers) and the network namespaces
    // they hold.
    std::set<std::string> ns;
    if (DIR* d = opendir("/proc")) {
        while (dirent* e = readdir(d)) {
            if (!isdigit(static_cast<unsigned char>(e->d_name[0]))) continue;
            std::string pid = e->d_name;
            std::string cmd = read_file("/proc/" + pid + "/cmdline");
            std::replace(cmd.begin(), cmd.end(), '\0', ' ');
            char root[PATH_MAX];
            ssize_t n = readlink(("/proc/" + pid + "/root").c_str(), root, sizeof root - 1);
            // (after the hand-over a supervisor is berth-supervise, whose command line names the
            // container instead)
            bool ours = cmd.find(dir) != std::string::npos || cmd.find(prefix) != std::string::npos ||
                        (n > 0 && std::string(root, static_cast<size_t>(n)).find(dir) != std::string::npos) ||
                        read_file("/proc/" + pid + "/cgroup").find(prefix) != std::string::npos;
            if (!ours) continue;
            c.procs++;
            char buf[64];
            ssize_t m = readlink(("/proc/" + pid + "/ns/net").c_str(), buf, sizeof buf);
            if (m > 0) ns.insert(std::string(buf, static_cast<size_t>(m)));
        }
        closedir(d);
    }
    // The supervisors' own namespace is the host's: count only namespaces other than ours.
    char self[64];
    ssize_t m = readlink("/proc/self/ns/net", self, sizeof self);
    if (m > 0) ns.erase(std::string(self, static_cast<size_t>(m)));
    c.netns = ns.size() + count_dir("/run/netns", prefix);
    std::string nft = run_capture({"nft", "list", "ruleset"}, 30).out;
    for (const auto& l : split_lines(nft)) {
        bool hit = l.find(prefix) != std::string::npos;
        for (const auto& i : ifnames) hit = hit || l.find("\"" + i + "\"") != std::string::npos;
        c.nft_lines += hit;
    }
    for (const auto& i : ifnames) c.veths += fs::exists("/sys/class/net/" + i);
    if (DIR* d = opendir("/sys/block")) {
        while (dirent* e = readdir(d)) {
            std::string b = e->d_name;
            if (b.rfind("loop", 0) == 0)
                c.loops += read_file("/sys/block/" + b + "/loop/backing_file").find(dir) != std::string::npos;
            if (b.rfind("dm-", 0) == 0)
                c.dms += read_file("/sys/block/" + b + "/dm/name").find(prefix) != std::string::npos;
        }
        closedir(d);
    }
    return c;
}

class Soak : public ::testing::Test {
protected:
    void SetUp() override {
        BERTH_REQUIRE_ROOT();
        auto cgroup2 = berth::cgroup2_mount_point();  // the cgroup counts below look there
        ASSERT_TRUE(cgroup2) << cgroup2.error().what();
        ASSERT_TRUE(make_busybox_rootfs(dir_ / "rootfs"));
        prefix_ = "soak" + std::to_string(getpid()) + "x";
        // The containers' persistent writable layers (and any picked id ranges) are berth state that
        // outlives a run by design: keep them in our own directory, removed with it, not in
        // /var/lib/berth (220 layer directories per run were left there).
        ::setenv("BERTH_STATE_DIR", (dir_ / "state").c_str(), 1);
    }

    void TearDown() override { ::unsetenv("BERTH_STATE_DIR"); }

    std::string declare(const std::string& name, const std::string& command, const std::string& extra = "") {
        std::string path = dir_ / (name + ".toml");
        write_file(
            path, "[container]\nrootfs = \"" + (dir_ / "rootfs") + "\"\ncommand = " + command + "\n" + extra);
        return path;
    }

    OwnCounts own(const std::vector<std::string>& names) {
        std::vector<std::string> ifnames;
        for (const auto& n : names) ifnames.push_back(berth::network::host_interface_name(n));
        return own_snapshot(dir_.path(), prefix_, ifnames);
    }
    void expect_own_equal(const char* what, const OwnCounts& before, const OwnCounts& after) {
        printf("soak %s: own before %s\n", what, before.str().c_str());
        printf("soak %s: own after  %s\n", what, after.str().c_str());
        EXPECT_EQ(after.mounts, before.mounts) << "mounts of the containers left";
        EXPECT_EQ(after.cgroups, before.cgroups) << "cgroups of the containers left";
        EXPECT_EQ(after.netns, before.netns) << "network namespaces of the containers left";
        EXPECT_EQ(after.veths, before.veths) << "veths of the containers left";
        EXPECT_EQ(after.nft_lines, before.nft_lines) << "nftables lines of the containers left";
        EXPECT_EQ(after.loops, before.loops) << "loop devices backed by the test's files left";
        EXPECT_EQ(after.dms, before.dms) << "dm devices named after the containers left";
        EXPECT_EQ(after.procs, before.procs) << "processes of the containers left";
        EXPECT_TRUE(after == before) << before.str() << " -> " << after.str();
    }

    // What these containers own, anywhere on the host: must be zero after they stopped.
    void expect_nothing_left(const std::vector<std::string>& names) {
        std::string mi = read_file("/proc/self/mountinfo");
        EXPECT_EQ(count_lines_containing(mi, dir_.path()), 0u) << "mounts under the test dir left";
        EXPECT_EQ(count_lines_containing(mi, prefix_), 0u) << "mounts named after the containers left";
        EXPECT_EQ(count_cgroups(prefix_), 0u) << "cgroups of the containers left";
        RunResult nft = run_capture({"nft", "list", "ruleset"}, 30);
        EXPECT_EQ(count_lines_containing(nft.out, prefix_), 0u) << "nftables rules of the containers left";
        for (const auto& n : names) {
            std::string veth = berth::network::host_interface_name(n);
            EXPECT_FALSE(fs::exists("/sys/class/net/" + veth)) << "veth " << veth << " left";
        }
        // No process started from our declarations survives (supervisors or payloads).
        size_t procs = 0;
        if (DIR* d = opendir("/proc")) {
            while (dirent* e = readdir(d)) {
                if (!isdigit(static_cast<unsigned char>(e->d_name[0]))) continue;
                std::string cmd = read_file("/proc/" + std::string(e->d_name) + "/cmdline");
                std::replace(cmd.begin(), cmd.end(), '\0', ' ');
                procs += cmd.find(dir_.path()) != std::string::npos || cmd.find(prefix_) != std::string::npos;
                char root[PATH_MAX];
                ssize_t n =
                    readlink(("/proc/" + std::string(e->d_name) + "/root").c_str(), root, sizeof root - 1);
                if (n > 0 && std::string(root, static_cast<size_t>(n)).find(dir_.path()) != std::string::npos)
                    procs++;
            }
            closedir(d);
        }
        EXPECT_EQ(procs, 0u) << "processes of the containers left";
    }

    TempDir dir_{"berth-soak"};
    std::string prefix_;
};

TEST_F(Soak, TwoHundredContainersInSequenceLeaveNothingBehind) {
    int count = env_int("BERTH_SOAK_SEQUENTIAL", 200);
    std::vector<std::string> names;
    for (int i = 0; i < count; i++) names.push_back(prefix_ + std::to_string(i));
    Counts before = snapshot();
    OwnCounts own_before = own(names);
    for (int i = 0; i < count; i++) {
        const std::string& n = names[i];
        // Every 10th container has a veth, so network namespaces, veths and nft state churn too.
        std::string extra;
        if (i % 10 == 0)
            extra = "[network]\nmode = \"veth\"\naddress = \"10.232." + std::to_string(i / 10) +
                    ".2/30\"\n"
                    "host_address = \"10.232." +
                    std::to_string(i / 10) + ".1/30\"\n";
        RunResult r = berth_run(declare(n, "[\"/bin/true\"]", extra), 60);
        ASSERT_EQ(r.exit_code, 0) << "container " << i << ": " << r.out;
    }
    Counts after = snapshot();
    printf("soak sequential x%d: before %s\n", count, before.str().c_str());
    printf("soak sequential x%d: after  %s\n", count, after.str().c_str());
    RecordProperty("before", before.str());
    RecordProperty("after", after.str());
    EXPECT_EQ(after.fds, before.fds) << "the test process gained fds";
    expect_own_equal("sequential", own_before, own(names));
    expect_nothing_left(names);
}

TEST_F(Soak, TwentyContainersAtOnceLeaveNothingBehind) {
    int count = env_int("BERTH_SOAK_PARALLEL", 20);
    std::vector<std::string> names;
    for (int i = 0; i < count; i++) names.push_back(prefix_ + "p" + std::to_string(i));
    Counts before = snapshot();
    OwnCounts own_before = own(names);
    std::vector<pid_t> pids;
    for (int i = 0; i < count; i++) {
        const std::string& n = names[i];
        std::string extra;
        if (i % 2 == 0)
            extra = "[network]\nmode = \"veth\"\naddress = \"10.233." + std::to_string(i) +
                    ".2/30\"\n"
                    "host_address = \"10.233." +
                    std::to_string(i) + ".1/30\"\n";
        std::string toml = declare(n, "[\"/bin/sleep\", \"2\"]", extra);
        pid_t p = fork();
        if (p == 0) {
            int devnull = open("/dev/null", O_RDWR);
            dup2(devnull, 0);
            dup2(devnull, 1);
            execl(berth_exe().c_str(), "berth", "run", toml.c_str(), nullptr);
            _exit(127);
        }
        pids.push_back(p);
    }
    // While they run: each has its own cgroup.
    sleep(1);
    size_t running = count_cgroups(prefix_);
    OwnCounts own_running = own(names);
    int ok = 0;
    for (pid_t p : pids) {
        int st = 0;
        waitpid(p, &st, 0);
        ok += WIFEXITED(st) && WEXITSTATUS(st) == 0;
    }
    Counts after = snapshot();
    printf("soak parallel x%d: %zu container cgroups seen while running\n", count, running);
    printf("soak parallel x%d: before %s\n", count, before.str().c_str());
    printf("soak parallel x%d: after  %s\n", count, after.str().c_str());
    RecordProperty("before", before.str());
    RecordProperty("after", after.str());
    EXPECT_EQ(ok, count) << "containers that failed";
    EXPECT_GE(running, static_cast<size_t>(count)) << "not every container had its own cgroup while running";
    EXPECT_EQ(after.fds, before.fds);
    // The counters see the containers' resources while they run (so equal before/after means
    // released, not unseen): a cgroup and processes each, a veth for every second one.
    printf("soak parallel x%d: own while running %s\n", count, own_running.str().c_str());
    EXPECT_GE(own_running.cgroups, static_cast<size_t>(count));
    EXPECT_GE(own_running.procs, static_cast<size_t>(count));
    EXPECT_EQ(own_running.veths, static_cast<size_t>((count + 1) / 2));
    EXPECT_GE(own_running.netns, static_cast<size_t>((count + 1) / 2));
    expect_own_equal("parallel", own_before, own(names));
    expect_nothing_left(names);
}

}  // namespace
