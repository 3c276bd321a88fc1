// Escape attempts from inside a container started by `berth run` with the default security
// settings (issue #7). The probe (escape-probe.cpp) runs as the container's payload, tries every
// escape and prints PASS/FAIL per attempt; this test asserts that every attempt was denied, that
// the probe really ran all of them, and checks from the host that nothing outside changed.
#include <fcntl.h>
#include <linux/loop.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#include <filesystem>
#include <set>

#include "berth-harness.h"

namespace fs = std::filesystem;
using namespace berth::test;

namespace {

// Every attempt name the probe reports; the test fails if one is missing (so a probe that
// crashed half way, or a payload that never ran, cannot pass).
const std::set<std::string> kAttempts = {
    "no-new-privileges", "seccomp-filter", "capabilities", "proc-self-exe-write",
    "proc-pid-exe-write", "proc-sys-write", "proc-sys-write-vm", "proc-sysrq-trigger",
    "sys-write", "cgroup-release-agent", "cgroup-outside-write", "mount",
    "userns-regain-caps", "init_module", "finit_module", "delete_module", "kexec_load",
    "kexec_file_load", "reboot", "ptrace-outside", "host-devices", "keyctl", "bpf",
    "perf_event_open", "host-sockets",
};

// A listening abstract unix socket in the host's network namespace.
struct AbstractListener {
    int fd = -1;
    std::string name;
    explicit AbstractListener(std::string n) : name(std::move(n)) {
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un sa {};
        sa.sun_family = AF_UNIX;
        memcpy(sa.sun_path + 1, name.data(), name.size());
        socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
        if (bind(fd, reinterpret_cast<sockaddr*>(&sa), len) != 0 || listen(fd, 16) != 0) {
            close(fd);
            fd = -1;
        }
    }
    ~AbstractListener() {
        if (fd >= 0) close(fd);
    }
};

// A path socket in the host's filesystem (stands in for the system bus / berthd sockets).
struct PathListener {
    int fd = -1;
    std::string path;
    explicit PathListener(std::string p) : path(std::move(p)) {
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un sa {};
        sa.sun_family = AF_UNIX;
        snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path.c_str());
        if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || listen(fd, 16) != 0) {
            close(fd);
            fd = -1;
        }
    }
    ~PathListener() {
        if (fd >= 0) close(fd);
        unlink(path.c_str());
    }
};

// A loop device over a small file holding a marker: the host block device the probe tries to
// mknod and read. LO_FLAGS_AUTOCLEAR detaches it when our fd closes, even if the test crashes.
struct MarkerLoop {
    int fd = -1;
    dev_t dev = 0;
    explicit MarkerLoop(const std::string& backing) {
        std::string data(1 << 20, '\0');
        memcpy(data.data(), "BERTH-ESCAPE-MARKER", 19);
        write_file(backing, data);
        int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
        if (ctl < 0) return;
        for (int attempt = 0; attempt < 10 && fd < 0; attempt++) {
            int nr = ioctl(ctl, LOOP_CTL_GET_FREE);
            if (nr < 0) break;
            std::string dev_path = "/dev/loop" + std::to_string(nr);
            int lfd = open(dev_path.c_str(), O_RDWR | O_CLOEXEC);
            int bfd = open(backing.c_str(), O_RDWR | O_CLOEXEC);
            loop_config cfg {};
            cfg.fd = static_cast<uint32_t>(bfd);
            cfg.info.lo_flags = LO_FLAGS_AUTOCLEAR | LO_FLAGS_READ_ONLY;
            if (lfd >= 0 && bfd >= 0 && ioctl(lfd, LOOP_CONFIGURE, &cfg) == 0) {
                struct stat st {};
                fstat(lfd, &st);
                dev = st.st_rdev;
                fd = lfd;
            } else if (lfd >= 0) {
                close(lfd);  // raced with another test for that device: try the next one
            }
            if (bfd >= 0) close(bfd);
        }
        close(ctl);
    }
    ~MarkerLoop() {
        if (fd >= 0) close(fd);
    }
};

class Escape : public ::testing::Test {
protected:
    void SetUp() override {
        BERTH_REQUIRE_ROOT();
        ASSERT_FALSE(dir_.path().empty());
        rootfs_ = dir_ / "rootfs";
        ASSERT_TRUE(make_busybox_rootfs(rootfs_));
        fs::copy_file(BERTH_ESCAPE_PROBE, rootfs_ + "/bin/berth-escape-probe",
                      fs::copy_options::overwrite_existing);
        probe_bytes_ = read_file(BERTH_ESCAPE_PROBE);
        berth_bytes_ = read_file(berth_exe());
        ASSERT_FALSE(berth_bytes_.empty()) << berth_exe();
        // Persistent writable layers are berth state that outlives a run by design: keep the
        // containers' layers in our own directory, removed with it, not in /var/lib/berth.
        ::setenv("BERTH_STATE_DIR", (dir_ / "state").c_str(), 1);
    }

    void TearDown() override {
        ::unsetenv("BERTH_STATE_DIR");
        if (::geteuid() != 0) return;
        // CVE-2019-5736 class, checked from the outside: neither the runtime binary nor the
        // payload's host copy changed.
        EXPECT_EQ(read_file(berth_exe()), berth_bytes_) << "the berth binary was modified";
        EXPECT_EQ(read_file(BERTH_ESCAPE_PROBE), probe_bytes_) << "the probe's host copy was modified";
    }

    std::string name(const std::string& tag) const {
        return "esc" + tag + std::to_string(getpid());
    }

    // Writes NAME.toml running the probe; returns its path.
    std::string declare(const std::string& n, const std::string& command, const std::string& extra) {
        std::string path = dir_ / (n + ".toml");
        write_file(path, "[container]\nrootfs = \"" + rootfs_ + "\"\ncommand = " + command + "\n" + extra);
        return path;
    }

    void run_probe(const std::string& network) {
        AbstractListener abs("berth-escape-" + std::to_string(getpid()));
        ASSERT_GE(abs.fd, 0);
        PathListener bus(dir_ / "system_bus_socket");
        ASSERT_GE(bus.fd, 0);
        MarkerLoop loop(dir_ / "marker.img");
        std::string self_cgroup;
        {
            std::string cg = read_file("/proc/self/cgroup");
            auto p = cg.find("0::");
            if (p != std::string::npos) self_cgroup = cg.substr(p + 3, cg.find('\n', p) - p - 3);
        }
        std::string cmd = "[\"/bin/berth-escape-probe\", \"--outside-pid\", \"" + std::to_string(getpid()) +
                          "\", \"--outside-pid\", \"" + std::to_string(getppid()) + "\", \"--abstract\", \"" +
                          abs.name + "\", \"--unix\", \"" + bus.path + "\"";
        if (loop.fd >= 0)
            cmd += ", \"--device\", \"" + std::to_string(major(loop.dev)) + ":" + std::to_string(minor(loop.dev)) + "\"";
        if (!self_cgroup.empty() && self_cgroup != "/") cmd += ", \"--host-cgroup\", \"" + self_cgroup + "\"";
        cmd += "]";
        std::string n = name(network.substr(0, 1));
        std::string extra = "[network]\nmode = \"" + network + "\"\n";
        if (network == "veth")
            extra += "address = \"10.231." + std::to_string(getpid() % 250) + ".2/30\"\nhost_address = \"10.231." +
                     std::to_string(getpid() % 250) + ".1/30\"\n";
        RunResult r = berth_run(declare(n, cmd, extra), 120);
        BERTH_SKIP_IF_PLACEHOLDER(r);
        SCOPED_TRACE(r.out);

        std::set<std::string> seen;
        int fails = 0;
        bool done = false;
        for (const auto& line : split_lines(r.out)) {
            if (line.rfind("DONE ", 0) == 0) done = true;
            bool pass = line.rfind("PASS ", 0) == 0, fail = line.rfind("FAIL ", 0) == 0;
            if (!pass && !fail) continue;
            std::string attempt = line.substr(5, line.find(':') - 5);
            seen.insert(attempt);
            if (fail) {
                fails++;
                ADD_FAILURE() << "escape attempt succeeded (" << network << "): " << line;
            }
        }
        EXPECT_TRUE(done) << "the probe did not finish";
        for (const auto& a : kAttempts) EXPECT_TRUE(seen.count(a)) << "attempt not reported: " << a;
        EXPECT_EQ(fails, 0);
        // berth run passes the payload's exit status through: the probe exits 1 on any FAIL.
        EXPECT_EQ(r.exit_code, 0);
    }

    TempDir dir_{"berth-escape"};
    std::string rootfs_;
    std::string probe_bytes_, berth_bytes_;
};

TEST_F(Escape, EveryAttemptFromInsideAContainerWithoutNetworkIsDenied) {
    run_probe("none");
}

TEST_F(Escape, EveryAttemptFromInsideAContainerWithAVethIsDenied) {
    run_probe("veth");
}

// A bind-mount target that goes through a symlink inside the image must be resolved inside the
// container's tree: whatever berth does (refuse, or mount inside), the host path the symlink
// names is never touched.
TEST_F(Escape, BindMountTargetsThroughSymlinksNeverLeaveTheContainerTree) {
    std::string host_victim = dir_ / "host-victim";
    fs::create_directories(host_victim);
    std::string src = dir_ / "bind-src";
    fs::create_directories(src);
    write_file(src + "/marker", "inside");
    // Absolute and relative symlinks, as an image could ship them.
    fs::create_directory_symlink(host_victim, rootfs_ + "/evil-abs");
    std::string rel = "..";
    for (int i = 0; i < 12; i++) rel += "/..";
    fs::create_directory_symlink(rel + host_victim, rootfs_ + "/evil-rel");

    for (const char* target : {"/evil-abs", "/evil-rel", "/evil-abs/sub", "/evil-rel/sub/deeper"}) {
        SCOPED_TRACE(target);
        std::string n = name("s");
        std::string toml = declare(n, "[\"/bin/sh\", \"-c\", \"cat " + std::string(target) + "/marker\"]",
                                   "[[mount]]\ntype = \"bind\"\nsource = \"" + src + "\"\ntarget = \"" + target +
                                       "\"\nread_only = true\n");
        RunResult r = berth_run(toml, 60);
        BERTH_SKIP_IF_PLACEHOLDER(r);
        SCOPED_TRACE(r.out);
        // The host path must be untouched: still an empty, unmounted directory.
        EXPECT_TRUE(fs::is_empty(host_victim)) << "berth created something under the host path";
        std::string mi = read_file("/proc/self/mountinfo");
        EXPECT_EQ(mi.find(host_victim), std::string::npos) << "a mount appeared on the host path";
        // If berth accepted the declaration, the mount landed inside the container's tree.
        if (r.exit_code == 0) {
            EXPECT_NE(r.out.find("inside"), std::string::npos);
        }
    }
}

// A volume name is a name, not a path: "../" in it must be refused before anything is created.
TEST_F(Escape, VolumeNamesThatAreReallyPathsAreRefused) {
    std::string victim = "/tmp/berth-escape-volume-" + std::to_string(getpid());
    const std::vector<std::string> sources = {"../../../../../../../.." + victim, victim, "a/../../b", "..", "x/y"};
    for (const auto& source : sources) {
        SCOPED_TRACE(source);
        std::string n = name("v");
        std::string toml = declare(n, "[\"/bin/true\"]",
                                   "[[mount]]\ntype = \"volume\"\nsource = \"" + source + "\"\ntarget = \"/data\"\n");
        RunResult r = berth_run(toml, 60);
        BERTH_SKIP_IF_PLACEHOLDER(r);
        SCOPED_TRACE(r.out);
        EXPECT_NE(r.exit_code, 0) << "berth accepted volume name '" << source << "'";
        EXPECT_FALSE(fs::exists(victim)) << "a volume escaped to " << victim;
        std::error_code ec;
        fs::remove_all(victim, ec);
    }
}

}  // namespace
