// Escape attempts from inside a container started by `berth run` with the default security
// settings (issue #7). The probe (escape-probe.cpp) runs as the container's payload, tries every
// escape and prints PASS/FAIL per attempt; this test asserts that every attempt was denied, that
// the probe really ran all of them, and checks from the host that nothing outside changed.
#include <fcntl.h>
#include <linux/loop.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <time.h>
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
    "no-new-privileges",
    "seccomp-filter",
    "capabilities",
    "proc-self-exe-write",
    "proc-pid-exe-write",
    "proc-sys-write",
    "proc-sys-write-vm",
    "proc-sysrq-trigger",
    "sys-write",
    "cgroup-release-agent",
    "cgroup-outside-write",
    "mount",
    "userns-regain-caps",
    "init_module",
    "finit_module",
    "delete_module",
    "kexec_load",
    "kexec_file_load",
    "reboot",
    "ptrace-outside",
    "host-devices",
    "keyctl",
    "bpf",
    "perf_event_open",
    "host-sockets",
};

// A listening abstract unix socket in the host's network namespace.
struct AbstractListener {
    int fd = -1;
    std::string name;
    explicit AbstractListener(std::string n) : name(std::move(n)) {
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un sa{};
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
        sockaddr_un sa{};
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
            loop_config cfg{};
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

    std::string name(const std::string& tag) const { return "esc" + tag + std::to_string(getpid()); }

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
            cmd += ", \"--device\", \"" + std::to_string(major(loop.dev)) + ":" +
                   std::to_string(minor(loop.dev)) + "\"";
        if (!self_cgroup.empty() && self_cgroup != "/") cmd += ", \"--host-cgroup\", \"" + self_cgroup + "\"";
        cmd += "]";
        std::string n = name(network.substr(0, 1));
        std::string extra = "[network]\nmode = \"" + network + "\"\n";
        if (network == "veth")
            extra += "address = \"10.231." + std::to_string(getpid() % 250) +
                     ".2/30\"\nhost_address = \"10.231." + std::to_string(getpid() % 250) + ".1/30\"\n";
        RunResult r = berth_run(declare(n, cmd, extra), 120);
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

TEST_F(Escape, EveryAttemptFromInsideAContainerWithoutNetworkIsDenied) { run_probe("none"); }

TEST_F(Escape, EveryAttemptFromInsideAContainerWithAVethIsDenied) { run_probe("veth"); }

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
                                   "[[mount]]\ntype = \"bind\"\nsource = \"" + src + "\"\ntarget = \"" +
                                       target + "\"\nread_only = true\n");
        RunResult r = berth_run(toml, 60);
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
    const std::vector<std::string> sources = {"../../../../../../../.." + victim, victim, "a/../../b", "..",
                                              "x/y"};
    for (const auto& source : sources) {
        SCOPED_TRACE(source);
        std::string n = name("v");
        std::string toml =
            declare(n, "[\"/bin/true\"]",
                    "[[mount]]\ntype = \"volume\"\nsource = \"" + source + "\"\ntarget = \"/data\"\n");
        RunResult r = berth_run(toml, 60);
        SCOPED_TRACE(r.out);
        EXPECT_NE(r.exit_code, 0) << "berth accepted volume name '" << source << "'";
        EXPECT_FALSE(fs::exists(victim)) << "a volume escaped to " << victim;
        std::error_code ec;
        fs::remove_all(victim, ec);
    }
}

// ---- issue #13: leaked fds, cwd outside the root, `berth exec` ---------------------------------

// Fds the CALLER of berth holds without close-on-exec, as a careless shell or service manager
// leaves them: a pipe, /dev/null, a host directory, one at a high number. Closed again on scope exit.
struct CallerFds {
    std::vector<int> fds;
    explicit CallerFds(const std::string& host_dir) {
        int p[2];
        if (pipe(p) == 0) fds = {p[0], p[1]};
        fds.push_back(open("/dev/null", O_RDONLY));
        fds.push_back(open(host_dir.c_str(), O_RDONLY | O_DIRECTORY));
        int high = fcntl(fds.back(), F_DUPFD, 50);
        fds.push_back(high);
    }
    ~CallerFds() {
        for (int fd : fds)
            if (fd >= 0) close(fd);
    }
};

// A container running in the background (`berth run` as a child of the test), stopped with
// SIGTERM (its payload traps it) and reaped on scope exit.
struct BackgroundContainer {
    pid_t pid = -1;
    std::string name;
    BackgroundContainer(const std::string& toml, std::string n, const std::string& log) : name(std::move(n)) {
        pid = fork();
        if (pid == 0) {
            int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
            dup2(fd, 1);
            dup2(fd, 2);
            int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
            dup2(devnull, 0);
            execl(berth_exe().c_str(), "berth", "run", toml.c_str(), static_cast<char*>(nullptr));
            _exit(127);
        }
    }
    // Waits until `berth exec` works in it; false after `timeout_s`.
    bool wait_running(int timeout_s = 30) const {
        for (int i = 0; i < timeout_s * 20; i++) {
            if (run_capture({berth_exe(), "exec", "--no-stdin", name, "--", "/bin/true"}, 10).exit_code == 0)
                return true;
            if (waitpid(pid, nullptr, WNOHANG) == pid) return false;
            usleep(50000);
        }
        return false;
    }
    // Waits for `berth run` to end by itself (up to timeout_s); its exit code, -1 if it was killed.
    int wait_exit(int timeout_s) {
        int status = 0;
        for (int i = 0; i < timeout_s * 20; i++) {
            if (waitpid(pid, &status, WNOHANG) == pid) {
                pid = -1;
                return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
            }
            usleep(50000);
        }
        return -1;
    }
    ~BackgroundContainer() {
        if (pid <= 0) return;
        for (int i = 0; i < 3; i++) {
            kill(pid, SIGTERM);
            for (int j = 0; j < 40; j++) {
                if (waitpid(pid, nullptr, WNOHANG) == pid) return;
                usleep(50000);
            }
        }
        kill(pid, SIGKILL);
        waitpid(pid, nullptr, 0);
    }
};

// The "FDS ..." line of `berth-escape-probe fds`, and whether any fd pointed at a host path.
std::string fds_line(const std::string& out) {
    for (const auto& line : split_lines(out))
        if (line.rfind("FDS", 0) == 0) return line;
    return "";
}

// The N of the /proc/self/fd/N sweeps below. The main pass (scripts/run-tests.sh) tries every N
// from 3 to 64: which N is open, and to what, in the process that resolves the path depends on
// the build and the moment. Under ASan (scripts/run-sanitizers.sh) each container start costs 3-4x
// and the three sweeps were two thirds of the sanitizer pass (184 of 273 s): there the sweep takes
// 3-16, where berth, the runtime and `berth exec` hold their files (store and name locks, pidfds,
// sockets, the private berthd's connection), and 32 and 64 (nothing open). The code that refuses
// the path is the same for every N, and what ASan adds is a check of that code's memory use,
// which these numbers exercise as the full range does; whether an N happens to reach the host
// is the main pass's to find.
std::vector<int> swept_fd_numbers() {
    std::vector<int> out;
#ifdef __SANITIZE_ADDRESS__
    for (int fd = 3; fd <= 16; fd++) out.push_back(fd);
    out.insert(out.end(), {32, 64});
#else
    for (int fd = 3; fd <= 64; fd++) out.push_back(fd);
#endif
    return out;
}

// Per fd number: did the run reach the host (its hostname in the output), was it refused with a
// clear message? Collected over all numbers, reported once (one line per kind, with a sample).
struct WorkdirVerdicts {
    std::string marker;  // the content of a host file the payload tries to read from its cwd
    std::string reached_host, unclear, sample;
    void check(int fd, const RunResult& r) {
        if (r.exit_code == 0 || r.out.find(marker) != std::string::npos) {
            reached_host += " " + std::to_string(fd);
            if (sample.empty()) sample = r.out;
        } else if (r.out.find("magic link") == std::string::npos) {
            unclear += " " + std::to_string(fd);
            if (sample.empty()) sample = r.out;
        }
    }
    void report() const {
        EXPECT_EQ(reached_host, "")
            << "fds whose workdir ran the payload or read the host file; first output:\n"
            << sample;
        EXPECT_EQ(unclear, "") << "fds refused without a clear message; first output:\n" << sample;
    }
};

const char* kLoopForever = "[\"/bin/sh\", \"-c\", \"trap 'exit 0' TERM; while :; do sleep 0.1; done\"]";

// CVE-2024-21626: a working directory through /proc/self/fd/N (an image's WorkingDir takes the
// same path to the same code) must never become a host directory held open by berth, whatever N.
TEST_F(Escape, AWorkdirThroughAnyFdNumberIsRefusedAndNeverReachesTheHost) {
    CallerFds leaked(dir_.path());
    WorkdirVerdicts verdicts;
    verdicts.marker =
        "HOST-"
        "MARKER-" +
        std::to_string(getpid());
    write_file(dir_ / "host-marker", verdicts.marker + "\n");
    // From a host directory, enough ".." reach the host's root, then this test's directory.
    const std::string up = "../../../../../../../../../../../../../../../..";
    const std::string payload =
        "cat " + up + "/etc/hostname; cat " + up + dir_.path() + "/host-marker; ls " + up;
    for (int fd : swept_fd_numbers()) {
        std::string n = name("w");
        std::string toml = declare(n, "[\"/bin/sh\", \"-c\", \"" + payload + "\"]",
                                   "workdir = \"/proc/self/fd/" + std::to_string(fd) + "\"\n");
        RunResult r = berth_run(toml, 60);
        verdicts.check(fd, r);
    }
    verdicts.report();
}

// The same through an image's WorkingDir (imported into a store of the test's own, embedded).
TEST_F(Escape, AnImageWorkingDirThroughAnyFdNumberIsRefused) {
    if (run_capture({"python3", "-c", "pass"}).exit_code != 0) GTEST_SKIP() << "python3 missing";
    std::vector<std::string> argv = {
        "python3", source_root() + "/tests/privileged/escape/oci-with-workdir.py", rootfs_, dir_ / "oci"};
    const std::vector<int> fds = swept_fd_numbers();
    for (int fd : fds) argv.push_back("/proc/self/fd/" + std::to_string(fd));
    RunResult made = run_capture(argv, 120);
    ASSERT_EQ(made.exit_code, 0) << made.out;
    EmbeddedStore store(dir_ / "store");
    CallerFds leaked(dir_.path());
    WorkdirVerdicts verdicts;
    verdicts.marker =
        "HOST-"
        "MARKER-" +
        std::to_string(getpid());
    write_file(dir_ / "host-marker", verdicts.marker + "\n");
    const std::string up = "../../../../../../../../../../../../../../../..";
    const std::string payload =
        "cat " + up + "/etc/hostname; cat " + up + dir_.path() + "/host-marker; ls " + up;
    for (size_t i = 0; i < fds.size(); i++) {
        const int fd = fds[i];
        std::string image = "escwd" + std::to_string(fd) + "-" + std::to_string(getpid()) + ":latest";
        RunResult imported = run_capture(
            {berth_exe(), "image", "import", dir_ / ("oci/" + std::to_string(i)), "--name", image}, 60);
        ASSERT_EQ(imported.exit_code, 0) << imported.out;
        std::string n = name("i");
        std::string path = dir_ / (n + ".toml");
        write_file(path, "[container]\nimage = \"" + image +
                             "\"\nephemeral = true\ncommand = [\"/bin/sh\", \"-c\", \"" + payload + "\"]\n");
        RunResult r = berth_run(path, 60);
        verdicts.check(fd, r);
    }
    verdicts.report();
}

// The same through `berth exec -w`, with the caller's leaked fds.
TEST_F(Escape, AnExecWorkdirThroughAnyFdNumberIsRefused) {
    std::string n = name("x");
    BackgroundContainer c(declare(n, kLoopForever, ""), n, dir_ / "run.log");
    ASSERT_TRUE(c.wait_running()) << read_file(dir_ / "run.log");
    CallerFds leaked(dir_.path());
    WorkdirVerdicts verdicts;
    verdicts.marker =
        "HOST-"
        "MARKER-" +
        std::to_string(getpid());
    write_file(dir_ / "host-marker", verdicts.marker + "\n");
    // From a host directory, enough ".." reach the host's root, then this test's directory.
    const std::string up = "../../../../../../../../../../../../../../../..";
    const std::string payload =
        "cat " + up + "/etc/hostname; cat " + up + dir_.path() + "/host-marker; ls " + up;
    for (int fd : swept_fd_numbers()) {
        RunResult r = run_capture({berth_exe(), "exec", "--no-stdin", "-w",
                                   "/proc/self/fd/" + std::to_string(fd), n, "--", "/bin/sh", "-c", payload},
                                  30);
        verdicts.check(fd, r);
    }
    verdicts.report();
}

// A PATH entry through /proc/self/fd/N is refused (not silently skipped, not followed), in
// `berth run` and in `berth exec`; a program named through one is refused too.
TEST_F(Escape, AProgramLookupThroughAProcMagicLinkIsRefused) {
    CallerFds leaked(dir_.path());
    for (int fd : {3, 4, 5, 6, 7, 8, 9, 10, 50, 64}) {
        SCOPED_TRACE("PATH /proc/self/fd/" + std::to_string(fd));
        std::string n = name("p");
        std::string path = "/proc/self/fd/" + std::to_string(fd) + ":/bin";
        std::string toml =
            declare(n, "[\"sh\", \"-c\", \"echo ran\"]", "environment = { PATH = \"" + path + "\" }\n");
        RunResult r = berth_run(toml, 60);
        EXPECT_NE(r.exit_code, 0) << r.out;
        EXPECT_NE(r.out.find("refuse the PATH lookup of '" + path.substr(0, path.find(':')) +
                             "/sh' (a /proc magic link"),
                  std::string::npos)
            << r.out;
        EXPECT_EQ(r.out.find("ran"), std::string::npos) << r.out;
    }
    std::string n = name("q");
    RunResult direct = berth_run(declare(n, "[\"/proc/self/exe\"]", ""), 60);
    EXPECT_NE(direct.exit_code, 0) << direct.out;
    EXPECT_NE(direct.out.find("magic link"), std::string::npos) << direct.out;

    std::string e = name("e");
    BackgroundContainer c(declare(e, kLoopForever, ""), e, dir_ / "run.log");
    ASSERT_TRUE(c.wait_running()) << read_file(dir_ / "run.log");
    for (std::string path : {"/proc/self/fd/3:/bin", "/proc/self/fd/4:/bin", "/proc/1/cwd:/bin"}) {
        SCOPED_TRACE(path);
        RunResult r = run_capture(
            {berth_exe(), "exec", "--no-stdin", "-e", "PATH=" + path, e, "--", "sh", "-c", "echo ran"}, 30);
        EXPECT_NE(r.exit_code, 0) << r.out;
        EXPECT_NE(r.out.find("refuse the PATH lookup of '" + path.substr(0, path.find(':')) +
                             "/sh' (a /proc magic link"),
                  std::string::npos)
            << r.out;
    }
    RunResult exe = run_capture({berth_exe(), "exec", "--no-stdin", e, "--", "/proc/self/exe", "--help"}, 30);
    EXPECT_NE(exe.exit_code, 0) << exe.out;
    EXPECT_NE(exe.out.find("magic link"), std::string::npos) << exe.out;
}

// The payload of `berth run` and a command of `berth exec` get stdio and nothing else, even when
// their caller leaks fds into berth; none points at a host path.
TEST_F(Escape, ThePayloadAndAnExecdCommandHoldOnlyStdio) {
    CallerFds leaked(dir_.path());
    std::string n = name("f");
    RunResult r = berth_run(declare(n, "[\"/bin/berth-escape-probe\", \"fds\"]", ""), 60);
    EXPECT_EQ(r.exit_code, 0) << r.out;
    EXPECT_EQ(fds_line(r.out), "FDS 0 1 2") << r.out;
    EXPECT_EQ(r.out.find(dir_.path()), std::string::npos) << "an fd points at a host path: " << r.out;

    std::string e = name("g");
    BackgroundContainer c(declare(e, kLoopForever, ""), e, dir_ / "run.log");
    ASSERT_TRUE(c.wait_running()) << read_file(dir_ / "run.log");
    for (bool interactive : {false, true}) {
        std::vector<std::string> argv = {berth_exe(), "exec"};
        if (!interactive) argv.push_back("--no-stdin");
        for (const char* a : {e.c_str(), "--", "/bin/berth-escape-probe", "fds"}) argv.push_back(a);
        RunResult x = run_capture(argv, 30);
        EXPECT_EQ(x.exit_code, 0) << x.out;
        EXPECT_EQ(fds_line(x.out), "FDS 0 1 2") << x.out;
        EXPECT_EQ(x.out.find(dir_.path()), std::string::npos) << "an fd points at a host path: " << x.out;
    }
}

// Resolving the program inside the root changes nothing a payload sees: a busybox applet found
// through PATH keeps its name (ps, pidof, killall read it), a script runs with its path as $0.
TEST_F(Escape, ProgramsFoundInsideTheRootKeepTheirNamesAndScriptsRun) {
    write_file(rootfs_ + "/bin/hello.sh", "#!/bin/sh\necho script-ran \"$0\"\n");
    ASSERT_EQ(chmod((rootfs_ + "/bin/hello.sh").c_str(), 0755), 0);
    RunResult comm = berth_run(declare(name("c"), "[\"cat\", \"/proc/self/comm\"]", ""), 60);
    EXPECT_EQ(comm.exit_code, 0) << comm.out;
    EXPECT_EQ(comm.out, "cat\n");
    RunResult script = berth_run(declare(name("s"), "[\"hello.sh\"]", ""), 60);
    EXPECT_EQ(script.exit_code, 0) << script.out;
    EXPECT_EQ(script.out, "script-ran /bin/hello.sh\n");

    std::string e = name("k");
    BackgroundContainer c(declare(e, kLoopForever, ""), e, dir_ / "run.log");
    ASSERT_TRUE(c.wait_running()) << read_file(dir_ / "run.log");
    RunResult xcomm = run_capture({berth_exe(), "exec", "--no-stdin", e, "--", "cat", "/proc/self/comm"}, 30);
    EXPECT_EQ(xcomm.out, "cat\n");
    RunResult xscript = run_capture({berth_exe(), "exec", "--no-stdin", e, "--", "/bin/hello.sh"}, 30);
    EXPECT_EQ(xscript.out, "script-ran /bin/hello.sh\n");
}

// CVE-2016-9962 / CVE-2019-5736 through `berth exec`: a process of the container spins on the
// pid the next exec child gets while the host runs `berth exec` in a loop (at most 1000 tries,
// about 4 seconds; half of them name a program that does not exist, so the child stays the berth
// binary until it exits). It must never open the child's exe, fds, mem or environ; the host
// berth binary is unchanged (TearDown).
TEST_F(Escape, AContainerProcessRacingBerthExecNeverOpensTheExecChild) {
    std::string n = name("r");
    BackgroundContainer c(declare(n, "[\"/bin/berth-escape-probe\", \"race-exec\", \"7000\"]", ""), n,
                          dir_ / "run.log");
    ASSERT_TRUE(c.wait_running()) << read_file(dir_ / "run.log");
    struct timespec start {
    }, now{};
    clock_gettime(CLOCK_MONOTONIC, &start);
    int tries = 0;
    for (; tries < 1000; tries++) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - start.tv_sec >= 4) break;
        const char* program = tries % 2 ? "/bin/true" : "no-such-program";
        run_capture({berth_exe(), "exec", "--no-stdin", n, "--", program}, 10);
    }
    int rc = c.wait_exit(30);
    std::string out = read_file(dir_ / "run.log");
    SCOPED_TRACE(out);
    EXPECT_EQ(rc, 0);
    std::string race;
    for (const auto& line : split_lines(out))
        if (line.rfind("RACE ", 0) == 0) race = line;
    ASSERT_FALSE(race.empty()) << "the racer did not report";
    fprintf(stderr, "%d berth exec runs; racer: %s\n", tries, race.c_str());
    EXPECT_EQ(out.find("OPENED"), std::string::npos);
    long denied = -1, opened = -1;
    sscanf(race.c_str() + race.find("denied="), "denied=%ld opened=%ld", &denied, &opened);
    EXPECT_EQ(opened, 0);
    // The race was run: the racer caught exec children before their execve (and was refused).
    EXPECT_GT(denied, 0) << "the racer never caught a berth exec child in " << tries << " tries";
}

// CVE-2019-5736 class with init = true: PID 1 stays the berth binary for the container's life; the
// payload (same uid, same capabilities) must not get a handle on its exe, fds, memory or
// environment (the runc exploit opens the exe O_PATH and reopens it for writing once it is free).
TEST_F(Escape, ThePayloadCannotOpenTheExeOrFdsOfBerthsInit) {
    std::string n = name("n");
    RunResult r =
        berth_run(declare(n, "[\"/bin/berth-escape-probe\", \"open-pid\", \"1\"]", "init = true\n"), 60);
    EXPECT_EQ(r.exit_code, 0) << r.out;
    EXPECT_NE(r.out.find("OPEN-PID denied=6 opened=0"), std::string::npos) << r.out;
}

// TIOCSTI (CVE-2016-9962's neighbour, the "push input into the caller's terminal" class): a
// command run by `berth exec` without -t, under a terminal, cannot type into that terminal, with
// the default seccomp filter and without one (its own session: not its controlling tty).
TEST_F(Escape, ACommandOfBerthExecWithoutATtyCannotTypeIntoTheCallersTerminal) {
    if (run_capture({"sh", "-c", "command -v script"}).exit_code != 0)
        GTEST_SKIP() << "util-linux script missing";
    for (const char* seccomp : {"default", "unconfined"}) {
        SCOPED_TRACE(seccomp);
        std::string n = name(seccomp[0] == 'd' ? "t" : "u");
        BackgroundContainer c(
            declare(n, kLoopForever, std::string("[security]\nseccomp = \"") + seccomp + "\"\n"), n,
            dir_ / "run.log");
        ASSERT_TRUE(c.wait_running()) << read_file(dir_ / "run.log");
        std::string marker =
            "INJ"
            "ECTED-" +
            std::to_string(getpid());
        std::string script = dir_ / "tiocsti.sh";
        write_file(script,
                   "'" + berth_exe() + "' exec " + n + " -- /bin/berth-escape-probe tiocsti 'echo " + marker +
                       "\n'\nif read -t 2 line; then echo \"GOT=[$line]\"; else echo GOT-NOTHING; fi\n");
        RunResult r = run_capture({"script", "-qec", "bash " + script, "/dev/null"}, 30);
        EXPECT_NE(r.out.find("TIOCSTI fd=0 pushed=0"), std::string::npos) << r.out;
        EXPECT_NE(r.out.find("GOT-NOTHING"), std::string::npos) << r.out;
        EXPECT_EQ(r.out.find(marker), std::string::npos) << "input was injected: " << r.out;
    }
}

// `berth exec --no-stdin` used to open /dev/null after joining the container's mount namespace:
// the payload (root inside, /dev is its tmpfs) can replace it with a FIFO, and the open then
// blocked berth exec forever. It is opened on the host, before setns(). (The payload needs
// CAP_SYS_ADMIN, or a user namespace, to unmount the bound /dev/null: granted here.)
TEST_F(Escape, BerthExecNoStdinIsNotHeldByAFifoThePayloadPutsAtDevNull) {
    std::string n = name("n");
    BackgroundContainer c(declare(n, kLoopForever, "[security]\ncapabilities_add = [\"SYS_ADMIN\"]\n"), n,
                          dir_ / "run.log");
    ASSERT_TRUE(c.wait_running()) << read_file(dir_ / "run.log");
    RunResult swap =
        run_capture({berth_exe(), "exec", "--no-stdin", n, "--", "/bin/sh", "-c",
                     "umount -l /dev/null && rm -f /dev/null && mkfifo /dev/null && ls -l /dev/null"},
                    30);
    ASSERT_EQ(swap.exit_code, 0) << swap.out;
    ASSERT_EQ(swap.out.rfind("p", 0), 0u) << "not a FIFO: " << swap.out;
    RunResult r = run_capture({berth_exe(), "exec", "--no-stdin", n, "--", "/bin/echo", "exec-ran"}, 20);
    EXPECT_EQ(r.exit_code, 0) << r.out;
    EXPECT_NE(r.out.find("exec-ran"), std::string::npos)
        << "berth exec hung or failed on the payload's FIFO: " << r.out;
}

}  // namespace
