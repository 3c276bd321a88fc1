// The runtime for real, as root: containers from the busybox test rootfs, asserted from inside
// (the payload writes what it sees into a bind-mounted /out), and after every test no mount,
// cgroup, state file or process of ours is left. Each container runs in a forked process so the
// test binary itself never changes namespaces or signal masks.
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "basic/cgroup-util.h"
#include "basic/fs-util.h"
#include "basic/string-util.h"
#include "bus-fixture.h"
#include "config/config.h"
#include "network/declared.h"
#include "runtime/capabilities.h"
#include "runtime/container.h"
#include "runtime/paths.h"
#include "runtime/state.h"
#include "store/loop.h"
#include "test-util.h"

namespace berth::runtime {
namespace {

using test::TempDir;

// Runs `cmd` with /bin/sh; stdout (and stderr when the command redirects it) and exit status.
std::string capture(const std::string& cmd, int* status) {
    std::string out;
    FILE* p = ::popen(cmd.c_str(), "r");
    if (!p) return out;
    char buf[512];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    int st = ::pclose(p);
    *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return out;
}

std::string rootfs_path() { return path_join(test::build_root(), "tests/busybox-rootfs"); }

// The pids a wrapper script appended to `path`, one a line.
std::vector<pid_t> read_pids_keep(const std::string& path) {
    std::vector<pid_t> out;
    std::istringstream in(read_file(path).value_or(""));
    for (pid_t p; in >> p;) out.push_back(p);
    return out;
}

struct RunResult {
    int status = -1;
    std::string error;
};

class Runtime : public ::testing::Test {
protected:
    void SetUp() override {
        BERTH_REQUIRE_ROOT();
        ASSERT_EQ(0, std::system(("bash " + test::source_root() + "/tests/lib/make-busybox-rootfs.sh " +
                                  rootfs_path())
                                     .c_str()));
        ::chmod(tmp_.path().c_str(), 0755);  // traversable by a user namespace's root
        run_ = tmp_ / "run";
        ASSERT_TRUE(mkdir_p(run_));
        ::setenv("BERTH_RUN_DIR", run_.c_str(), 1);
        ::setenv("BERTH_STATE_DIR", (tmp_ / "state").c_str(), 1);
        auto cgroup2 = cgroup2_mount_point();
        ASSERT_TRUE(cgroup2) << cgroup2.error().what();
        cgroup_parent_ = fmt::format("{}/berth-test-{}", *cgroup2, ::getpid());
        parent_existed_ = path_exists(cgroup_parent_);
        out_ = tmp_ / "out";
        ASSERT_TRUE(mkdir_p(out_));
        ::chmod(out_.c_str(), 0777);
        static int counter = 0;
        name_ = fmt::format("rt{}-{}", ::getpid(), counter++);
    }

    void TearDown() override {
        if (::geteuid() != 0) return;
        // Nothing of ours is left: cgroup, state, mounts.
        EXPECT_FALSE(path_exists(path_join(cgroup_parent_, name_))) << "leaked cgroup";
        // The runtime created the parent, so the last container out removed it again.
        if (!parent_existed_) {
            EXPECT_FALSE(path_exists(cgroup_parent_)) << "leaked empty parent cgroup";
        }
        EXPECT_FALSE(path_exists(state_file_path(name_))) << "leaked state file";
        EXPECT_FALSE(path_exists(path_join(containers_run_dir(), name_ + ".lock"))) << "leaked lock file";
        auto mounts = read_file("/proc/self/mountinfo");
        ASSERT_TRUE(mounts);
        EXPECT_EQ(mounts->find(tmp_.path()), std::string::npos) << "leaked mount under " << tmp_.path();
        EXPECT_EQ(mounts->find(rootfs_path()), std::string::npos) << "leaked mount of the rootfs";
        ::rmdir(cgroup_parent_.c_str());
        ::unsetenv("BERTH_RUN_DIR");
        ::unsetenv("BERTH_STATE_DIR");
    }

    config::Declaration decl(std::vector<std::string> command) {
        config::Declaration d;
        d.name = name_;
        d.rootfs = rootfs_path();
        d.ephemeral = true;
        d.command = std::move(command);
        config::Mount out;
        out.type = config::MountType::Bind;
        out.source = out_;
        out.target = "/out";
        d.mounts.push_back(out);
        config::Mount probe;
        probe.type = config::MountType::Bind;
        probe.source = RUNTIME_PROBE;
        probe.target = "/probe";
        probe.read_only = true;
        d.mounts.push_back(probe);
        return d;
    }

    config::Declaration shell(const std::string& script) { return decl({"/bin/sh", "-c", script}); }

    // Runs the container in a forked supervisor; `during` runs (in the test) once it is up.
    RunResult run(const config::Declaration& d, std::function<void(pid_t)> during = {},
                  std::function<void(RunOptions&)> in_supervisor = {}) {
        int pipefd[2];
        EXPECT_EQ(0, ::pipe2(pipefd, O_CLOEXEC));
        pid_t pid = ::fork();
        if (pid == 0) {
            ::close(pipefd[0]);
            RunOptions opt;
            opt.cgroup_parent = cgroup_parent_;
            opt.warn = [](const std::string&) {};
            if (handover_) {
                // As `berth run` does: supervised by the small berth-supervise, torn down by berth.
                opt.supervisor_exe = SUPERVISOR_BINARY;
                opt.teardown_exe = BERTH_BINARY;
                opt.handover_delay_ms = 0;  // even the quick payloads of these tests
            }
            if (in_supervisor) in_supervisor(opt);
            auto r = run_container(d, opt);
            if (!r) {
                std::string e = r.error().what();
                (void)!::write(pipefd[1], e.data(), e.size());
                ::_exit(125);
            }
            ::_exit(*r);
        }
        ::close(pipefd[1]);
        if (during) {
            // Up = the state file exists.
            for (int i = 0; i < 1000 && !path_exists(state_file_path(d.name)); ++i)
                std::this_thread::sleep_for(std::chrono::milliseconds(5));
            during(pid);
        }
        RunResult result;
        char buf[1024];
        ssize_t n;
        while ((n = ::read(pipefd[0], buf, sizeof buf)) > 0) result.error.append(buf, static_cast<size_t>(n));
        ::close(pipefd[0]);
        int status = 0;
        ::waitpid(pid, &status, 0);
        result.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        return result;
    }

    // Until the payload has written "ready" to /out/ready (at most 5 s).
    void wait_for_ready() {
        for (int i = 0; i < 500 && out("ready") != "ready\n"; ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }

    std::string out(const std::string& file) {
        return read_file(path_join(out_, file)).value_or("<missing>");
    }

    static std::string field(const std::string& status, const std::string& key) {
        for (const auto& line : split(status, '\n'))
            if (line.rfind(key + ":", 0) == 0) return std::string(trim(line.substr(key.size() + 1)));
        return "<none>";
    }

    TempDir tmp_{"berth-rt"};
    std::string run_, out_, cgroup_parent_, name_;
    bool parent_existed_ = false;
    bool handover_ = true;  // false: supervise in the process that called run_container()
};

TEST_F(Runtime, PayloadIsPidOneSeesOnlyItsOwnProcessesAndHostname) {
    auto d = shell(
        "echo $$ > /out/pid; ls /proc | grep -c '^[0-9]' > /out/nprocs; hostname > /out/hostname;"
        " ls /sys/class/net > /out/links; cat /etc/hostname > /out/etc-hostname");
    d.hostname = "box";
    auto r = run(d);
    ASSERT_EQ(r.status, 0) << r.error;
    EXPECT_EQ(out("pid"), "1\n");
    // sh, plus at most the ls/grep of the pipeline.
    EXPECT_LE(std::stoi(out("nprocs")), 3);
    EXPECT_EQ(out("hostname"), "box\n");
    EXPECT_EQ(out("etc-hostname"), "box\n");
    EXPECT_EQ(out("links"), "lo\n");
}

TEST_F(Runtime, DefaultSecurityMatchesDocker) {
    auto r = run(
        shell("cat /proc/self/status > /out/status;"
              " /probe mount unshare-user kexec_load init_module clone3 write-proc-sys chroot > /out/probe;"
              " for p in /proc/kcore /proc/keys /proc/timer_list /proc/sched_debug /proc/acpi /proc/scsi"
              " /proc/latency_stats /sys/firmware; do if [ -d $p ]; then echo $p $(ls -A $p | wc -l);"
              " elif [ -e $p ]; then echo $p $(cat $p | wc -c); fi; done > /out/masks;"
              " cut -d' ' -f5 /proc/self/mountinfo > /out/mountpoints; touch /sys/x 2>/dev/null; echo $? > "
              "/out/sys-write;"
              " ip link set lo down 2>/dev/null; echo $? > /out/netadmin"));
    ASSERT_EQ(r.status, 0) << r.error;
    std::string status = out("status");
    std::string docker = capability_mask_hex(default_capabilities());
    EXPECT_EQ(field(status, "CapBnd"), docker);
    EXPECT_EQ(field(status, "CapEff"), docker);
    EXPECT_EQ(field(status, "CapPrm"), docker);
    EXPECT_EQ(field(status, "CapInh"), "0000000000000000");
    EXPECT_EQ(field(status, "CapAmb"), "0000000000000000");
    EXPECT_EQ(field(status, "Seccomp"), "2");
    EXPECT_EQ(field(status, "NoNewPrivs"), "1");
    std::string probe = out("probe");
    EXPECT_NE(probe.find("mount=EPERM"), std::string::npos) << probe;
    EXPECT_NE(probe.find("unshare-user=EPERM"), std::string::npos) << probe;
    EXPECT_NE(probe.find("kexec_load=EPERM"), std::string::npos) << probe;
    EXPECT_NE(probe.find("init_module=EPERM"), std::string::npos) << probe;
    EXPECT_NE(probe.find("clone3=ENOSYS"), std::string::npos) << probe;
    EXPECT_NE(probe.find("write-proc-sys=EROFS"), std::string::npos) << probe;
    EXPECT_NE(probe.find("chroot=OK"), std::string::npos) << probe;  // CAP_SYS_CHROOT is in the default set
    // Every masked path that exists on this kernel is empty inside, and is a mount of ours.
    std::string masks = out("masks"), mountpoints = out("mountpoints");
    int checked = 0;
    for (const char* p : {"/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug", "/proc/acpi",
                          "/proc/scsi", "/proc/latency_stats", "/sys/firmware"}) {
        if (!path_exists(p)) continue;
        ++checked;
        EXPECT_NE(masks.find(std::string(p) + " 0\n"), std::string::npos) << p << " not masked:\n" << masks;
        EXPECT_NE(mountpoints.find(std::string(p) + "\n"), std::string::npos) << p;
    }
    EXPECT_GE(checked, 2);
    EXPECT_NE(out("sys-write"), "0\n");
    EXPECT_NE(out("netadmin"), "0\n");  // no CAP_NET_ADMIN
}

TEST_F(Runtime, UnconfinedAndAddedCapabilitiesAreHonoured) {
    auto d = shell("cat /proc/self/status > /out/status; /probe sethostname > /out/probe");
    d.security.seccomp = config::SeccompMode::Unconfined;
    d.security.capabilities_add = {"CAP_SYS_ADMIN"};
    d.security.capabilities_drop = {"CAP_NET_RAW"};
    auto r = run(d);
    ASSERT_EQ(r.status, 0) << r.error;
    std::string status = out("status");
    uint64_t expected = (default_capabilities() | (1ULL << 21)) & ~(1ULL << 13);
    EXPECT_EQ(field(status, "CapBnd"), capability_mask_hex(expected));
    EXPECT_EQ(field(status, "Seccomp"), "0");
    EXPECT_EQ(out("probe"), "sethostname=OK\n");
}

TEST_F(Runtime, NonRootUserHasNoEffectiveCapabilitiesAndItsGroups) {
    auto d = shell(
        "id -u > /out/uid; id -G > /out/groups; cat /proc/self/status > /out/status; pwd > /out/pwd;"
        " echo \"$GREETING $HOME\" > /out/env");
    d.user.user = "app";
    d.workdir = "/home/app";
    d.environment["GREETING"] = "hello";
    auto r = run(d);
    ASSERT_EQ(r.status, 0) << r.error;
    EXPECT_EQ(out("uid"), "1000\n");
    EXPECT_EQ(out("groups"), "1000 1001\n");
    EXPECT_EQ(field(out("status"), "CapEff"), "0000000000000000");
    EXPECT_EQ(field(out("status"), "CapBnd"), capability_mask_hex(default_capabilities()));
    EXPECT_EQ(out("pwd"), "/home/app\n");
    EXPECT_EQ(out("env"), "hello /home/app\n");
}

TEST_F(Runtime, UserNamespacePicksARangeAndMapsIds) {
    auto d = shell(
        "cat /proc/self/uid_map > /out/uid_map; cat /proc/self/gid_map > /out/gid_map;"
        " stat -c %u /bin/busybox > /out/owner; touch /new && stat -c %u /new > /out/new-owner");
    d.security.user_namespace.mode = config::UserNamespaceMode::Pick;
    auto r = run(d);
    ASSERT_EQ(r.status, 0) << r.error;
    auto fields = split(std::string(trim(out("uid_map"))), ' ');
    ASSERT_EQ(fields.size(), 3u) << out("uid_map");
    EXPECT_EQ(fields[0], "0");
    EXPECT_GE(std::stoul(fields[1]), 0x80000ul);
    EXPECT_EQ(std::stoul(fields[1]) % 65536, 0ul);
    EXPECT_EQ(fields[2], "65536");
    EXPECT_EQ(out("gid_map"), out("uid_map"));
    EXPECT_EQ(out("owner"), "0\n");  // idmapped base layer: host root shows as container root
    EXPECT_EQ(out("new-owner"), "0\n");
    // Remembered per container.
    auto remembered = read_file(tmp_ / "state/userns/" + name_);
    ASSERT_TRUE(remembered);
    EXPECT_EQ(split(std::string(trim(*remembered)), ' ')[0], fields[1]);
}

TEST_F(Runtime, BindsTmpfsAndReadOnlyWork) {
    TempDir data("berth-rt-data");
    ASSERT_TRUE(write_file(data / "in", "from host\n"));
    auto d = shell(
        "cat /data-ro/in > /out/read; echo x > /data-ro/y 2>/dev/null; echo $? > /out/ro-write;"
        " grep ' /scratch ' /proc/mounts > /out/scratch; touch /rootfile 2>/dev/null; echo $? > "
        "/out/root-write;"
        " echo hi > /scratch/f && cat /scratch/f > /out/scratch-rw");
    config::Mount ro;
    ro.source = data.path();
    ro.target = "/data-ro";
    ro.read_only = true;
    d.mounts.push_back(ro);
    config::Mount tmp;
    tmp.type = config::MountType::Tmpfs;
    tmp.target = "/scratch";
    tmp.size = 1 << 20;
    d.mounts.push_back(tmp);
    d.read_only = true;
    auto r = run(d);
    ASSERT_EQ(r.status, 0) << r.error;
    EXPECT_EQ(out("read"), "from host\n");
    EXPECT_NE(out("ro-write"), "0\n");
    EXPECT_NE(out("scratch").find("tmpfs"), std::string::npos);
    EXPECT_NE(out("root-write"), "0\n");
    EXPECT_EQ(out("scratch-rw"), "hi\n");
    EXPECT_FALSE(path_exists(data / "y"));
}

TEST_F(Runtime, EphemeralChangesVanishPersistentChangesStay) {
    auto d = shell("cat /marker > /out/before 2>/dev/null; echo kept > /marker");
    ASSERT_EQ(run(d).status, 0);
    ASSERT_EQ(run(d).status, 0);
    EXPECT_EQ(out("before"), "");  // ephemeral: the second run did not see the first's file
    EXPECT_FALSE(path_exists(path_join(rootfs_path(), "marker")));
    d.ephemeral = false;
    ASSERT_EQ(run(d).status, 0);
    ASSERT_EQ(run(d).status, 0);
    EXPECT_EQ(out("before"), "kept\n");
    EXPECT_TRUE(path_exists(tmp_ / "state/rootfs-layers/" + name_ + "/upper/marker"));
    EXPECT_FALSE(path_exists(path_join(rootfs_path(), "marker")));
    // overlayfs' scratch directory, moved aside at each start to be removed off the critical
    // path, is gone afterwards; the layer holds exactly its upper and work directories.
    std::vector<std::string> entries;
    for (const auto& e : std::filesystem::directory_iterator(path_join(tmp_ / "state/rootfs-layers", name_)))
        entries.push_back(e.path().filename());
    std::sort(entries.begin(), entries.end());
    EXPECT_EQ(entries, (std::vector<std::string>{"upper", "work"}));
}

TEST_F(Runtime, RemovesTheParentCgroupItCreatedButKeepsAPreexistingOne) {
    ASSERT_FALSE(parent_existed_);
    EXPECT_EQ(run(shell("true")).status, 0);
    EXPECT_FALSE(path_exists(cgroup_parent_)) << "empty parent cgroup left behind";
    // An administrator's --cgroup-parent that existed before is theirs: kept.
    ASSERT_EQ(0, ::mkdir(cgroup_parent_.c_str(), 0755));
    ScopeExit cleanup([&] { ::rmdir(cgroup_parent_.c_str()); });
    EXPECT_EQ(run(shell("true")).status, 0);
    EXPECT_TRUE(path_exists(cgroup_parent_));
}

// `berth run -t` through a real pty (util-linux script): the payload's stdin is a terminal on
// /dev/pts/N of its own devpts, typed input reaches it and its exit status comes back. Without
// -t, -i passes piped stdin and stdout straight through; without -i stdin is /dev/null.
TEST_F(Runtime, RunWithTtyGivesAPtyAndPassesInputAndStatus) {
    if (std::system("command -v script >/dev/null") != 0) GTEST_SKIP() << "util-linux script missing";
    std::string toml = tmp_ / (name_ + ".toml");
    ASSERT_TRUE(write_file(toml,
                           fmt::format("[container]\nrootfs = \"{}\"\ncommand = [\"/bin/sh\", \"-c\", "
                                       "\"if test -t 0; then echo STDIN-TTY; else echo STDIN-NOTTY; fi; tty; "
                                       "read l; echo GOT:$l; exit 5\"]\n",
                                       rootfs_path()),
                           O_WRONLY | O_CREAT | O_TRUNC));
    auto capture = [](const std::string& cmd, int* status) {
        std::string out;
        FILE* p = ::popen(cmd.c_str(), "r");
        if (!p) return out;
        char buf[512];
        size_t n;
        while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
        int st = ::pclose(p);
        *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        return out;
    };
    std::string berth = std::string(BERTH_BINARY) + " run ";
    int status = -1;
    std::string out =
        capture("(sleep 1; echo typed-in) | timeout 30 script -qec '" + berth + "-t " + toml + "' /dev/null",
                &status);
    EXPECT_EQ(status, 5) << out;
    EXPECT_NE(out.find("STDIN-TTY"), std::string::npos) << out;
    EXPECT_NE(out.find("/dev/pts/0"), std::string::npos) << out;
    EXPECT_NE(out.find("GOT:typed-in"), std::string::npos) << out;

    out = capture("bash -c 'set -o pipefail; echo piped-in | timeout 30 " + berth + "-i " + toml + " | cat'",
                  &status);
    EXPECT_EQ(status, 5) << out;
    EXPECT_NE(out.find("STDIN-NOTTY"), std::string::npos) << out;
    EXPECT_NE(out.find("GOT:piped-in"), std::string::npos) << out;

    out = capture("echo piped-in | timeout 30 " + berth + toml + "; echo rc=$?", &status);
    EXPECT_NE(out.find("GOT:\n"), std::string::npos) << out;  // no -i: stdin is /dev/null
    EXPECT_NE(out.find("rc=5"), std::string::npos) << out;
}

// `berth exec -t` into a running container through a real pty, and piped stdin/stdout without -t.
TEST_F(Runtime, ExecWithTtyGivesAPtyAndPassesInputAndStatus) {
    if (std::system("command -v script >/dev/null") != 0) GTEST_SKIP() << "util-linux script missing";
    auto d = shell("touch /out/up; while [ ! -e /out/stop ]; do sleep 0.05; done");
    std::string tty_out, pipe_out;
    int tty_status = -1, pipe_status = -1;
    auto r = run(d, [&](pid_t) {
        for (int i = 0; i < 400 && !path_exists(path_join(out_, "up")); ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        auto capture = [](const std::string& cmd, int* status) {
            std::string o;
            FILE* p = ::popen(cmd.c_str(), "r");
            if (!p) return o;
            char buf[512];
            size_t n;
            while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) o.append(buf, n);
            int st = ::pclose(p);
            *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
            return o;
        };
        std::string exec = std::string(BERTH_BINARY) + " exec ";
        tty_out =
            capture("(sleep 1; echo typed-in) | timeout 30 script -qec \"" + exec + "-t " + name_ +
                        " -- /bin/sh -c 'test -t 0 && echo STDIN-TTY; tty; read l; echo GOT:\\$l; exit 4'\""
                        " /dev/null",
                    &tty_status);
        pipe_out = capture("bash -c \"set -o pipefail; echo piped-in | timeout 30 " + exec + name_ +
                               " -- /bin/sh -c 'cat; exit 2' | cat\"",
                           &pipe_status);
        (void)write_file(path_join(out_, "stop"), "", O_WRONLY | O_CREAT);
    });
    EXPECT_EQ(r.status, 0) << r.error;
    EXPECT_EQ(tty_status, 4) << tty_out;
    EXPECT_NE(tty_out.find("STDIN-TTY"), std::string::npos) << tty_out;
    EXPECT_NE(tty_out.find("/dev/pts/"), std::string::npos) << tty_out;
    EXPECT_NE(tty_out.find("GOT:typed-in"), std::string::npos) << tty_out;
    EXPECT_EQ(pipe_status, 2) << pipe_out;
    EXPECT_EQ(pipe_out, "piped-in\n");
}

TEST_F(Runtime, ExitCodesAndSignalsPropagate) {
    EXPECT_EQ(run(shell("exit 7")).status, 7);
    auto d = shell("kill -KILL $$");
    d.init = true;  // the payload is not PID 1, so it can die of a signal
    EXPECT_EQ(run(d).status, 128 + SIGKILL);
}

TEST_F(Runtime, InitReapsZombiesAndForwardsSignals) {
    auto d = shell(
        "(sleep 0.1 &) ; sleep 0.3; echo $$ > /out/pid; ps -o stat,comm | grep -c '^Z' > /out/zombies;"
        " trap 'echo term > /out/term; exit 3' TERM; echo ready > /out/ready; while :; do sleep 0.05; done");
    d.init = true;
    auto r = run(d, [&](pid_t supervisor) {
        wait_for_ready();
        ::kill(supervisor, SIGTERM);
    });
    EXPECT_EQ(r.status, 3) << r.error;
    EXPECT_EQ(out("pid"), "2\n");
    EXPECT_EQ(out("zombies"), "0\n");
    EXPECT_EQ(out("term"), "term\n");
}

TEST_F(Runtime, StopSignalIsHonoured) {
    auto d = decl({"/probe", "ignore-term"});
    d.stop_signal = SIGUSR1;
    auto r = run(d, [&](pid_t supervisor) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        ::kill(supervisor, SIGTERM);
    });
    EXPECT_EQ(r.status, 42) << r.error;
}

TEST_F(Runtime, ExecEntersTheContainersNamespaces) {
    auto d = shell("echo ready > /out/ready; exec sleep 30");
    d.hostname = "execbox";
    d.stop_signal = SIGKILL;  // sleep as PID 1 has no SIGTERM handler, so the kernel ignores SIGTERM
    std::string exec_out, exec_status_out;
    int exec_status = -1, false_status = -1;
    auto r = run(d, [&](pid_t supervisor) {
        wait_for_ready();
        std::string cmd = std::string(BERTH_BINARY) + " exec " + name_ +
                          " -- /bin/sh -c 'hostname; cat /proc/1/comm; echo $$; grep -c ^ /proc/self/uid_map;"
                          " grep Seccomp: /proc/self/status' 2>&1";
        FILE* p = ::popen(cmd.c_str(), "r");
        char buf[4096];
        size_t n;
        while (p && (n = std::fread(buf, 1, sizeof buf, p)) > 0) exec_out.append(buf, n);
        exec_status = p ? WEXITSTATUS(::pclose(p)) : -1;
        false_status = WEXITSTATUS(
            std::system((std::string(BERTH_BINARY) + " exec " + name_ + " -- /bin/sh -c 'exit 5'").c_str()));
        ::kill(supervisor, SIGTERM);
    });
    EXPECT_EQ(r.status, 128 + SIGKILL) << r.error;
    EXPECT_EQ(exec_status, 0) << exec_out;
    auto lines = split(exec_out, '\n');
    ASSERT_GE(lines.size(), 5u) << exec_out;
    EXPECT_EQ(lines[0], "execbox");
    EXPECT_EQ(lines[1], "sleep");
    EXPECT_GT(std::stoi(lines[2]), 1);  // a process of the container's pid namespace
    EXPECT_LT(std::stoi(lines[2]), 100);
    EXPECT_EQ(lines[4], "Seccomp:\t2");
    EXPECT_EQ(false_status, 5);
}

// The state `berth exec` reads is on disk before the payload runs: a payload that says it is up
// can be entered at once. The supervisor is stopped (SIGSTOP) right after the launch, the point
// at which it used to write the state: before, `berth exec` answered "is not running" there (an
// escape test that waited for the payload's ready file met it under load).
TEST_F(Runtime, APayloadThatIsUpCanBeEnteredBeforeItsSupervisorGoesOn) {
    auto d = shell("echo ready > /out/ready; exec sleep 30");
    d.stop_signal = SIGKILL;
    ::setenv("BERTH_TEST_SIGNAL_AT", fmt::format("launched:{}", SIGSTOP).c_str(), 1);
    std::string exec_out;
    int exec_status = -1;
    bool stopped = false;
    auto r = run(d, [&](pid_t supervisor) {
        wait_for_ready();
        for (int i = 0; i < 500 && !stopped; ++i) {
            auto stat = read_file(fmt::format("/proc/{}/stat", supervisor)).value_or("");
            auto paren = stat.rfind(')');
            stopped = paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] == 'T';
            if (!stopped) std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        exec_out = capture(std::string(BERTH_BINARY) + " exec " + name_ + " -- /bin/cat /out/ready 2>&1",
                           &exec_status);
        ::kill(supervisor, SIGCONT);
        ::kill(supervisor, SIGTERM);
    });
    ::unsetenv("BERTH_TEST_SIGNAL_AT");
    EXPECT_TRUE(stopped) << "the supervisor never stopped at 'launched'";
    EXPECT_EQ(exec_status, 0) << exec_out;
    EXPECT_EQ(exec_out, "ready\n");
    EXPECT_EQ(r.status, 128 + SIGKILL) << r.error;
}

// `berth exec -u app` killed with SIGKILL takes its command along (the parent-death signal is
// armed again after the switch to the user, which clears it).
TEST_F(Runtime, AKilledExecTakesItsCommandAlongAlsoAsAnotherUser) {
    auto d = shell("echo ready > /out/ready; exec sleep 30");
    d.stop_signal = SIGKILL;
    int procs_during = -1, procs_after = -1;
    auto count_procs = [&] {
        auto procs = read_file(path_join(path_join(cgroup_parent_, name_), "cgroup.procs"));
        return procs ? static_cast<int>(split(*procs, '\n').size()) : -1;
    };
    auto r = run(d, [&](pid_t supervisor) {
        wait_for_ready();
        pid_t exec = ::fork();
        if (exec == 0) {
            ::execl(BERTH_BINARY, "berth", "exec", "--no-stdin", "-u", "app", name_.c_str(), "--", "/bin/sh",
                    "-c", "echo started > /out/exec; exec sleep 60", static_cast<char*>(nullptr));
            ::_exit(127);
        }
        for (int i = 0; i < 400 && out("exec") != "started\n"; ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        procs_during = count_procs();
        ::kill(exec, SIGKILL);
        ::waitpid(exec, nullptr, 0);
        for (int i = 0; i < 300 && (procs_after = count_procs()) > 1; ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        ::kill(supervisor, SIGTERM);
    });
    EXPECT_EQ(r.status, 128 + SIGKILL) << r.error;
    // The payload, the exec'd command (and `berth exec` itself, which joins the cgroup).
    EXPECT_GE(procs_during, 2);
    EXPECT_EQ(procs_after, 1) << "the exec'd command outlived `berth exec`";
}

TEST_F(Runtime, MissingRootfsIsAClearErrorAndLeavesNothing) {
    auto d = shell("true");
    d.rootfs = tmp_ / "no-such-rootfs";
    auto r = run(d);
    EXPECT_EQ(r.status, 125);
    EXPECT_NE(r.error.find("container '" + name_ + "'"), std::string::npos) << r.error;
    EXPECT_NE(r.error.find("no-such-rootfs"), std::string::npos) << r.error;
}

TEST_F(Runtime, UnknownUserIsAClearErrorAndLeavesNothing) {
    auto d = shell("true");
    d.user.user = "nosuchuser";
    auto r = run(d);
    EXPECT_EQ(r.status, 125);
    EXPECT_NE(r.error.find("container '" + name_ + "'"), std::string::npos) << r.error;
    EXPECT_NE(r.error.find("unknown user 'nosuchuser'"), std::string::npos) << r.error;
}

TEST_F(Runtime, BadBindSourceIsAClearErrorAndLeavesNothing) {
    auto d = shell("true");
    config::Mount m;
    m.source = tmp_ / "missing-source";
    m.target = "/x";
    d.mounts.push_back(m);
    auto r = run(d);
    EXPECT_EQ(r.status, 125);
    EXPECT_NE(r.error.find("bind source '" + (tmp_ / "missing-source") + "' does not exist"),
              std::string::npos)
        << r.error;
}

TEST_F(Runtime, UnparsableSeccompProfileIsAClearErrorAndLeavesNothing) {
    ASSERT_TRUE(write_file(tmp_ / "bad.json", "{ \"defaultAction\": "));
    auto d = shell("true");
    d.security.seccomp = config::SeccompMode::Profile;
    d.security.seccomp_profile = tmp_ / "bad.json";
    auto r = run(d);
    EXPECT_EQ(r.status, 125);
    EXPECT_NE(r.error.find("container '" + name_ + "'"), std::string::npos) << r.error;
    EXPECT_NE(r.error.find("bad.json"), std::string::npos) << r.error;
}

TEST_F(Runtime, MissingCommandInsideTheContainerIsAClearError) {
    auto r = run(decl({"/no/such/program"}));
    EXPECT_EQ(r.status, 125);
    EXPECT_NE(r.error.find("execute '/no/such/program'"), std::string::npos) << r.error;
}

TEST_F(Runtime, JsonSeccompProfileIsEnforced) {
    ASSERT_TRUE(write_file(tmp_ / "profile.json", R"({
      "defaultAction": "SCMP_ACT_ALLOW",
      "syscalls": [ { "names": ["chroot"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13 } ] })"));
    auto d = decl({"/bin/sh", "-c", "/probe chroot > /out/probe"});
    d.security.seccomp = config::SeccompMode::Profile;
    d.security.seccomp_profile = tmp_ / "profile.json";
    auto r = run(d);
    ASSERT_EQ(r.status, 0) << r.error;
    EXPECT_EQ(out("probe"), "chroot=EACCES\n");
}

// A datagram socket standing in for systemd's notify socket (what sd_notify writes to).
class NotifySocket {
public:
    explicit NotifySocket(const std::string& path) : path_(path) {
        fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        struct sockaddr_un sa {};
        sa.sun_family = AF_UNIX;
        std::strncpy(sa.sun_path, path.c_str(), sizeof sa.sun_path - 1);
        EXPECT_EQ(0, ::bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa));
    }
    ~NotifySocket() {
        ::close(fd_);
        ::unlink(path_.c_str());
    }
    // Everything received until `needle` shows up (or 5 s pass).
    std::string wait_for(const std::string& needle) {
        for (int i = 0; i < 500 && all_.find(needle) == std::string::npos; ++i) {
            struct pollfd p = {fd_, POLLIN, 0};
            if (::poll(&p, 1, 10) > 0) {
                char buf[4096];
                ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
                if (n > 0) all_.append(buf, static_cast<size_t>(n)).append("\n");
            }
        }
        return all_;
    }

private:
    std::string path_, all_;
    int fd_ = -1;
};

TEST_F(Runtime, SystemdModeSplitsTheDelegatedCgroupAndNotifiesReadiness) {
    std::string unit = fmt::format("{}-unit", cgroup_parent_);
    ASSERT_EQ(0, ::mkdir(unit.c_str(), 0755));
    NotifySocket notify(tmp_ / "notify");
    auto d = shell("cat /proc/self/cgroup > /out/cgroup; echo ready > /out/ready; sleep 0.3");
    bool payload_seen = false, supervisor_seen = false;
    auto r = run(
        d,
        [&](pid_t supervisor) {
            std::string got = notify.wait_for("READY=1");
            EXPECT_NE(got.find("READY=1"), std::string::npos) << got;
            EXPECT_NE(got.find(fmt::format("MAINPID={}", supervisor)), std::string::npos) << got;
            payload_seen = path_exists(unit + "/payload");
            auto sup = read_file(unit + "/supervisor/cgroup.procs");
            supervisor_seen = sup && sup->find(std::to_string(supervisor)) != std::string::npos;
        },
        [&](RunOptions& opt) {
            // Stand in for systemd's Delegate=yes: we are the only process of the unit's cgroup.
            (void)write_file(unit + "/cgroup.procs", "0", O_WRONLY);
            ::setenv("NOTIFY_SOCKET", (tmp_ / "notify").c_str(), 1);
            opt.systemd = true;
        });
    ASSERT_EQ(r.status, 0) << r.error;
    std::string stopping = notify.wait_for("STOPPING=1");  // from berth-supervise, after the hand-over
    EXPECT_NE(stopping.find("STOPPING=1\nSTATUS=Container " + name_ + " exited with status 0"),
              std::string::npos)
        << stopping;
    EXPECT_TRUE(payload_seen);
    EXPECT_TRUE(supervisor_seen);
    EXPECT_NE(out("cgroup").find("\n0::/\n"), std::string::npos)
        << out("cgroup");  // cgroupns rooted at payload/
    EXPECT_FALSE(path_exists(unit + "/payload"));
    ::rmdir((unit + "/supervisor").c_str());
    EXPECT_EQ(0, ::rmdir(unit.c_str()));
}

TEST_F(Runtime, NotifyContainerRelaysThePayloadsReadiness) {
    // Both supervisors relay: berth-supervise (handed over at once) and berth itself.
    for (bool handover : {true, false}) {
        SCOPED_TRACE(handover ? "berth-supervise" : "in-process");
        handover_ = handover;
        std::string socket = tmp_ / fmt::format("notify-{}", handover);
        NotifySocket notify(socket);
        auto d = shell("sleep 0.2; /probe notify > /out/probe; sleep 0.2");
        d.notify = config::NotifyMode::Container;
        std::string got;
        auto r = run(
            d, [&](pid_t) { got = notify.wait_for("READY=1"); },
            [&](RunOptions&) { ::setenv("NOTIFY_SOCKET", socket.c_str(), 1); });
        ASSERT_EQ(r.status, 0) << r.error;
        EXPECT_EQ(out("probe"), "notify=OK\n");
        EXPECT_NE(got.find("STATUS=payload ready"), std::string::npos) << got;
        EXPECT_NE(got.find("READY=1"), std::string::npos) << got;
        for (const auto& line : split(got, '\n'))
            EXPECT_NE(line, "MAINPID=1") << got;  // the payload cannot move MAINPID
        EXPECT_FALSE(path_exists(path_join(containers_run_dir(), name_ + ".notify")));
    }
}

// Runs `fn` in a forked child as uid/gid 65534 with no groups (a host user with no business in
// berth's files); its return value (an errno, 0 for success) comes back, -1 when it died.
int as_nobody(const std::function<int()>& fn) {
    pid_t pid = ::fork();
    if (pid == 0) {
        if (::setgroups(0, nullptr) < 0 || ::setresgid(65534, 65534, 65534) < 0 ||
            ::setresuid(65534, 65534, 65534) < 0)
            ::_exit(120);
        ::_exit(fn());
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int errno_of(int rc) { return rc < 0 ? errno : 0; }

// Issue #13 (4): the state file holds the payload's environment, secrets from environment_files
// included; it and the lock are root's alone, whatever the umask, and the directory cannot be
// listed. `berth exec` (which reads the state) still works for root.
TEST_F(Runtime, TheStateFileAndTheRunDirectoryAreRootsAlone) {
    // A directory left wider by an older berth (or tmpfiles' old 0755) is tightened.
    ASSERT_EQ(0, ::mkdir(containers_run_dir().c_str(), 0777));
    ::chmod(containers_run_dir().c_str(), 0777);
    auto d = shell("echo ready > /out/ready; sleep 1");
    d.environment["SECRET_TOKEN"] = "hunter2";
    struct stat state {
    }, lock{}, dir{};
    int read_state = -1, list_dir = -1, open_lock = -1, exec_status = -1;
    std::string exec_out;
    auto r = run(
        d,
        [&](pid_t) {
            ::stat(state_file_path(name_).c_str(), &state);
            ::stat(path_join(containers_run_dir(), name_ + ".lock").c_str(), &lock);
            ::stat(containers_run_dir().c_str(), &dir);
            read_state =
                as_nobody([&] { return errno_of(::open(state_file_path(name_).c_str(), O_RDONLY)); });
            list_dir = as_nobody([&] {
                DIR* dd = ::opendir(containers_run_dir().c_str());
                return dd ? (::closedir(dd), 0) : errno;
            });
            open_lock = as_nobody([&] {
                return errno_of(::open(path_join(containers_run_dir(), name_ + ".lock").c_str(), O_RDONLY));
            });
            exec_out =
                capture(fmt::format("BERTH_RUN_DIR={} {} exec {} -- /bin/sh -c 'echo $SECRET_TOKEN' 2>&1",
                                    run_, BERTH_BINARY, name_),
                        &exec_status);
        },
        [](RunOptions&) { ::umask(0); });
    ASSERT_EQ(r.status, 0) << r.error;
    EXPECT_EQ(state.st_mode & 07777, 0600u);
    EXPECT_EQ(lock.st_mode & 07777, 0600u);
    EXPECT_EQ(dir.st_mode & 07777, 0711u);
    EXPECT_EQ(read_state, EACCES);
    EXPECT_EQ(list_dir, EACCES);
    EXPECT_EQ(open_lock, EACCES);
    EXPECT_EQ(exec_status, 0) << exec_out;
    EXPECT_EQ(exec_out, "hunter2\n");
}

// Issue #13 (4): the notify relay socket is reachable by path (0711 directory, 0666 socket, so
// that a user namespace's root and any payload uid reach it), so the relay judges each datagram
// by the sender's kernel credentials: another host user's READY=1/STATUS= is dropped; the
// payload's own, as root or as another uid inside the container, still reaches systemd.
TEST_F(Runtime, TheNotifyRelayIgnoresDatagramsFromOtherHostUsers) {
    for (bool handover : {true, false}) {
        SCOPED_TRACE(handover ? "berth-supervise" : "in-process");
        handover_ = handover;
        std::string socket = tmp_ / fmt::format("notify-spoof-{}", handover);
        NotifySocket notify(socket);
        // PID 1 (root) waits until the spoof was sent, then a process of another uid (app, 1000)
        // notifies from inside the container.
        auto d = shell(
            "while [ ! -e /out/spoofed ]; do sleep 0.05; done; su -s /bin/sh app -c '/probe notify linger' > "
            "/out/probe 2>&1; sleep 0.3");
        d.notify = config::NotifyMode::Container;
        std::string got;
        int sent = -1;
        auto r = run(
            d,
            [&](pid_t) {
                std::string relay = path_join(containers_run_dir(), name_ + ".notify");
                for (int i = 0; i < 500 && !path_exists(relay); ++i)
                    std::this_thread::sleep_for(std::chrono::milliseconds(10));
                sent = as_nobody([&] {
                    int fd = ::socket(AF_UNIX, SOCK_DGRAM, 0);
                    struct sockaddr_un sa {};
                    sa.sun_family = AF_UNIX;
                    std::strncpy(sa.sun_path, relay.c_str(), sizeof sa.sun_path - 1);
                    const char msg[] = "READY=1\nSTATUS=spoofed by uid 65534\nSTOPPING=1";
                    return errno_of(static_cast<int>(
                        ::sendto(fd, msg, sizeof msg - 1, 0, reinterpret_cast<sockaddr*>(&sa), sizeof sa)));
                });
                (void)write_file(out_ + "/spoofed", "");
                got = notify.wait_for("STATUS=payload ready");
            },
            [&](RunOptions&) { ::setenv("NOTIFY_SOCKET", socket.c_str(), 1); });
        ASSERT_EQ(r.status, 0) << r.error;
        EXPECT_EQ(sent, 0) << "the spoofing datagram was not even sent: " << std::strerror(sent);
        EXPECT_EQ(out("probe"), "notify=OK\n");
        EXPECT_EQ(got.find("spoofed"), std::string::npos) << got;
        EXPECT_EQ(got.find("STOPPING=1"), std::string::npos) << got;
        EXPECT_NE(got.find("STATUS=payload ready"), std::string::npos) << got;
        EXPECT_NE(got.find("READY=1"), std::string::npos) << got;
        ::unlink((out_ + "/spoofed").c_str());
    }
}

TEST_F(Runtime, VethContainerReachesTheHostAndPublishesAPort) {
    int net = 100 + ::getpid() % 100;
    auto d = shell(fmt::format(
        "ip -4 -o addr show host0 > /out/addr; ping -c1 -W2 172.31.{}.1 > /dev/null; echo $? > /out/ping;"
        " echo ready > /out/ready; nc -l -p 8080 -e echo published",
        net));
    d.network.mode = config::NetworkMode::Veth;
    d.network.address = fmt::format("172.31.{}.2/24", net);
    d.network.host_address = fmt::format("172.31.{}.1/24", net);
    config::PortMapping port;
    port.host_address = "127.0.0.1";
    port.host_port = static_cast<uint16_t>(20000 + ::getpid() % 20000);
    port.container_port = 8080;
    d.network.ports.push_back(port);
    std::string reply;
    std::string link = "ve-" + name_;
    bool link_seen = false;
    auto r = run(d, [&](pid_t) {
        wait_for_ready();
        link_seen = path_exists("/sys/class/net/" + link);
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        FILE* p =
            ::popen(fmt::format("busybox nc -w 3 127.0.0.1 {} </dev/null", port.host_port).c_str(), "r");
        char buf[256];
        size_t n;
        while (p && (n = std::fread(buf, 1, sizeof buf, p)) > 0) reply.append(buf, n);
        if (p) ::pclose(p);
    });
    EXPECT_EQ(r.status, 0) << r.error;
    EXPECT_NE(out("addr").find(fmt::format("172.31.{}.2/24", net)), std::string::npos) << out("addr");
    EXPECT_EQ(out("ping"), "0\n");
    EXPECT_TRUE(link_seen);
    EXPECT_EQ(reply, "published\n");
    EXPECT_FALSE(path_exists("/sys/class/net/" + link)) << "leaked veth";
}

// ---- the small supervisor (berth-supervise) -----------------------------------------------

std::string exe_of(pid_t pid) {
    char buf[4096];
    ssize_t n = ::readlink(fmt::format("/proc/{}/exe", pid).c_str(), buf, sizeof buf - 1);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

std::string real_path(const char* path) {
    char buf[PATH_MAX];
    return ::realpath(path, buf) ? std::string(buf) : std::string(path);
}

// Waits until `pid` runs berth-supervise (the hand-over follows the state file by a moment).
bool wait_for_exe(pid_t pid, const std::string& exe) {
    for (int i = 0; i < 500; ++i) {
        if (exe_of(pid) == exe) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return false;
}

long status_kb(pid_t pid, const std::string& key) {
    auto text = read_file(fmt::format("/proc/{}/status", pid));
    if (!text) return -1;
    for (const auto& line : split(*text, '\n'))
        if (line.rfind(key + ":", 0) == 0) return std::atol(line.c_str() + key.size() + 1);
    return -1;
}

// Issue #3's target: the process that stays while the payload runs is the small supervisor,
// under the same PID (MAINPID, the state file's supervisor_pid), well under 2 MiB resident.
// [security] devices with CDI names (issue #21): a fake vendor whose nodes are made here with the
// numbers of /dev/null and /dev/zero under other names, a "driver" directory bound in, env, and a
// createContainer hook; the same spec once as JSON, once as YAML.
class CdiDevices : public Runtime {
protected:
    void SetUp() override {
        Runtime::SetUp();
        if (HasFatalFailure()) return;
        ASSERT_TRUE(mkdir_p(tmp_ / "nodes") && mkdir_p(tmp_ / "driver") && mkdir_p(tmp_ / "specs"));
        ASSERT_EQ(0, ::mknod((tmp_ / "nodes/fake0").c_str(), S_IFCHR | 0640, ::makedev(1, 3)));
        ASSERT_EQ(0, ::chmod((tmp_ / "nodes/fake0").c_str(), 0640));
        ASSERT_EQ(0, ::mknod((tmp_ / "nodes/fake1").c_str(), S_IFCHR | 0604, ::makedev(1, 5)));
        ASSERT_EQ(0, ::chmod((tmp_ / "nodes/fake1").c_str(), 0604));
        ASSERT_TRUE(write_file(tmp_ / "driver/libfake.so.1", "fake driver\n"));
        ASSERT_TRUE(
            write_file(tmp_ / "hook.sh",
                       fmt::format("#!/bin/sh\ncat > {}/hook-state\necho \"$HOOK_ENV $1\" > {}/hook-args\n",
                                   out_, out_)));
        ::chmod((tmp_ / "hook.sh").c_str(), 0755);
        ::setenv("BERTH_CDI_SPEC_DIRS", (tmp_ / "specs").c_str(), 1);
    }
    void TearDown() override {
        ::unsetenv("BERTH_CDI_SPEC_DIRS");
        Runtime::TearDown();
    }
    std::string json_spec(const std::string& kind) {
        return fmt::format(R"({{"cdiVersion": "0.6.0", "kind": "{0}",
  "containerEdits": {{"env": ["FAKE_DRIVER=/usr/lib/fake"],
     "mounts": [{{"hostPath": "{1}/driver", "containerPath": "/usr/lib/fake", "options": ["ro", "rbind"]}}],
     "hooks": [{{"hookName": "createContainer", "path": "{1}/hook.sh", "args": ["hook.sh", "arg1"], "env": ["HOOK_ENV=set"]}}]}},
  "devices": [{{"name": "fake0", "containerEdits": {{"deviceNodes": [{{"path": "/dev/fake0", "hostPath": "{1}/nodes/fake0",
                  "type": "c", "fileMode": 416}}]}}}},
              {{"name": "fake1", "containerEdits": {{"deviceNodes": [{{"path": "/dev/fake1", "hostPath": "{1}/nodes/fake1"}}],
                  "env": ["FAKE1=yes"]}}}}]}})",
                           kind, tmp_.path());
    }
    std::string yaml_spec(const std::string& kind) {
        return fmt::format(R"(cdiVersion: "0.6.0"
kind: {0}
containerEdits:
  env: [FAKE_DRIVER=/usr/lib/fake]
  mounts:
  - {{hostPath: {1}/driver, containerPath: /usr/lib/fake, options: [ro, rbind]}}
  hooks:
  - {{hookName: createContainer, path: {1}/hook.sh, args: [hook.sh, arg1], env: [HOOK_ENV=set]}}
devices:
- name: fake0
  containerEdits:
    deviceNodes:
    - {{path: /dev/fake0, hostPath: {1}/nodes/fake0, type: c, fileMode: 0640}}
- name: fake1
  containerEdits:
    deviceNodes:
    - {{path: /dev/fake1, hostPath: {1}/nodes/fake1}}
    env: [FAKE1=yes]
)",
                           kind, tmp_.path());
    }
    void expect_devices_in_container(const std::string& kind) {
        auto d = shell(
            "stat -c '%F %t:%T %a' /dev/fake0 /dev/fake1 > /out/nodes; cat /usr/lib/fake/libfake.so.1 > "
            "/out/lib;"
            " echo \"$FAKE_DRIVER $FAKE1\" > /out/env; head -c 3 /dev/fake1 | od -An -tx1 > /out/zero;"
            " echo x > /usr/lib/fake/new 2>/dev/null; echo $? > /out/ro");
        d.security.devices = {kind + "=all"};
        auto r = run(d);
        ASSERT_EQ(r.status, 0) << r.error;
        EXPECT_EQ(out("nodes"), "character special file 1:3 640\ncharacter special file 1:5 604\n");
        EXPECT_EQ(out("lib"), "fake driver\n");
        EXPECT_EQ(out("env"), "/usr/lib/fake yes\n");
        EXPECT_EQ(out("zero"), " 00 00 00\n");
        EXPECT_NE(out("ro"), "0\n");
        EXPECT_EQ(out("hook-args"), "set arg1\n");
        auto state = nlohmann::json::parse(out("hook-state"), nullptr, false);
        ASSERT_TRUE(state.is_object()) << out("hook-state");
        EXPECT_EQ(state["id"], name_);
        EXPECT_EQ(state["status"], "created");
        EXPECT_GT(state["pid"].get<int>(), 1);
    }
};

TEST_F(CdiDevices, AJsonSpecGivesTheNodesTheDriverMountTheEnvAndRunsTheHookWithTheState) {
    ASSERT_TRUE(write_file(tmp_ / "specs/fake.json", json_spec("fake.berth.test/json")));
    expect_devices_in_container("fake.berth.test/json");
}

TEST_F(CdiDevices, TheSameSpecInYamlGivesTheSame) {
    ASSERT_TRUE(write_file(tmp_ / "specs/fake.yaml", yaml_spec("fake.berth.test/yaml")));
    expect_devices_in_container("fake.berth.test/yaml");
}

TEST_F(CdiDevices, AnUnknownNameOrAMissingNodeFailsTheStartNamingIt) {
    ASSERT_TRUE(write_file(tmp_ / "specs/fake.json", json_spec("fake.berth.test/json")));
    auto d = shell("true");
    d.security.devices = {"fake.berth.test/json=fake9"};
    auto r = run(d);
    EXPECT_NE(r.status, 0);
    EXPECT_NE(
        r.error.find("unknown CDI device 'fake.berth.test/json=fake9'; known: fake.berth.test/json=fake0, "
                     "fake.berth.test/json=fake1"),
        std::string::npos)
        << r.error;
    ASSERT_EQ(0, ::unlink((tmp_ / "nodes/fake1").c_str()));
    d.security.devices = {"fake.berth.test/json=fake1"};
    r = run(d);
    EXPECT_NE(r.status, 0);
    EXPECT_NE(r.error.find("CDI device node '/dev/fake1': host node '" + tmp_.path() +
                           "/nodes/fake1' is not on this host"),
              std::string::npos)
        << r.error;
}

// cgroup v2 has no device list: before the device program, a payload given CAP_MKNOD made any
// node (here /dev/mem's 1:1 and loop0's b 7:0) and, on a file system without nodev, opened it.
// Now mknod itself is refused for anything but the standard nodes and the declared devices.
TEST_F(Runtime, WithMknodAndNoDeclaredDeviceTheDeviceCgroupRefusesOtherNodes) {
    auto d = shell(
        "mknod /tmp/mem c 1 1 2>/out/mem-err; echo $? > /out/mem; mknod /tmp/loop b 7 0 2>/dev/null; echo $? "
        "> /out/loop;"
        " mknod /tmp/null c 1 3; echo $? > /out/null; head -c 1 /dev/fuse 2>/dev/null; echo $? > /out/fuse;"
        " echo hi > /dev/null; echo $? > /out/devnull");
    d.security.capabilities_add = {"CAP_MKNOD"};
    d.mounts.push_back({});
    d.mounts.back().type = config::MountType::Tmpfs;
    d.mounts.back().target = "/tmp";
    auto r = run(d);
    ASSERT_EQ(r.status, 0) << r.error;
    EXPECT_EQ(out("mem"), "1\n") << out("mem-err");
    EXPECT_NE(out("mem-err").find("Operation not permitted"), std::string::npos) << out("mem-err");
    EXPECT_EQ(out("loop"), "1\n");
    EXPECT_EQ(out("null"), "0\n");  // a standard node may be made
    EXPECT_EQ(out("devnull"), "0\n");
}

TEST_F(Runtime, ADeclaredHostDeviceOpensWithItsPermissionsOnly) {
    if (!path_exists("/dev/fuse")) GTEST_SKIP() << "this host has no /dev/fuse";
    auto d = shell(
        "(exec 3<> /dev/fuse) 2>/out/open-err; echo $? > /out/open; mknod /dev/shm/f c 10 229 2>/dev/null; "
        "echo $? > "
        "/out/mknod");
    d.security.capabilities_add = {"CAP_MKNOD"};
    d.security.devices = {"/dev/fuse:rw"};
    auto r = run(d);
    ASSERT_EQ(r.status, 0) << r.error;
    EXPECT_EQ(out("open"), "0\n") << out("open-err");
    EXPECT_EQ(out("mknod"), "1\n");  // "rw" without "m"
}

TEST_F(Runtime, WhileThePayloadRunsTheSupervisorIsTheSmallExecutableUnderTwoMebibytes) {
    auto d = shell("echo ready > /out/ready; exec sleep 30");
    d.stop_signal = SIGKILL;
    std::string exe;
    long rss = -1, anon = -1;
    pid_t recorded = 0;
    auto r = run(d, [&](pid_t supervisor) {
        const std::string small = real_path(SUPERVISOR_BINARY);
        EXPECT_TRUE(wait_for_exe(supervisor, small)) << exe_of(supervisor);
        exe = exe_of(supervisor);
        rss = status_kb(supervisor, "VmRSS");
        anon = status_kb(supervisor, "RssAnon");
        auto st = read_state(name_);
        if (st) recorded = st->supervisor_pid;
        ::kill(supervisor, SIGTERM);
    });
    EXPECT_EQ(r.status, 128 + SIGKILL) << r.error;
    EXPECT_EQ(exe, real_path(SUPERVISOR_BINARY));
    EXPECT_GT(rss, 0);
    EXPECT_LT(rss, 2048) << "VmRSS of the supervisor in kB";
    RecordProperty("supervisor_vmrss_kb", static_cast<int>(rss));
    RecordProperty("supervisor_rssanon_kb", static_cast<int>(anon));
    std::printf("supervisor while the payload sleeps: VmRSS %ld kB, RssAnon %ld kB\n", rss, anon);
    EXPECT_NE(recorded, 0);
}

// Without a supervisor to hand over to (a broken install), berth supervises the container itself
// and says so; signals, exit status and teardown work the same.
TEST_F(Runtime, AFailedHandOverFallsBackToSupervisingInProcess) {
    auto d = shell("trap 'exit 9' TERM; echo ready > /out/ready; while :; do sleep 0.05; done");
    d.init = true;
    std::string exe;
    auto r = run(
        d,
        [&](pid_t supervisor) {
            wait_for_ready();
            exe = exe_of(supervisor);
            ::kill(supervisor, SIGTERM);
        },
        [&](RunOptions& opt) {
            opt.supervisor_exe = tmp_ / "no-such-supervisor";
            opt.warn = [this](const std::string& w) {
                (void)write_file(tmp_ / "warning", w, O_WRONLY | O_CREAT | O_TRUNC);
            };
        });
    EXPECT_EQ(r.status, 9) << r.error;
    EXPECT_NE(exe, real_path(SUPERVISOR_BINARY));
    auto warning = read_file(tmp_ / "warning").value_or("");
    EXPECT_NE(warning.find("no-such-supervisor"), std::string::npos) << warning;

    // An executable that does not speak this build's protocol (a stale install) is never started:
    // it would misread the fds and lose the container.
    std::string foreign = tmp_ / "foreign-supervisor";
    ASSERT_EQ(0, std::system(("cp /bin/true " + foreign).c_str()));
    ::unlink((out_ + "/ready").c_str());
    r = run(
        d,
        [&](pid_t supervisor) {
            wait_for_ready();
            exe = exe_of(supervisor);
            ::kill(supervisor, SIGTERM);
        },
        [&](RunOptions& opt) {
            opt.supervisor_exe = foreign;
            opt.warn = [this](const std::string& w) {
                (void)write_file(tmp_ / "warning", w, O_WRONLY | O_CREAT | O_TRUNC);
            };
        });
    EXPECT_EQ(r.status, 9) << r.error;
    EXPECT_NE(exe, foreign);
    warning = read_file(tmp_ / "warning").value_or("");
    EXPECT_NE(warning.find("does not speak berth-supervise/"), std::string::npos) << warning;
}

TEST_F(Runtime, InProcessSupervisionStillPropagatesExitCodesAndSignals) {
    handover_ = false;
    EXPECT_EQ(run(shell("exit 7")).status, 7);
    auto d = shell("trap 'exit 3' TERM; echo ready > /out/ready; while :; do sleep 0.05; done");
    d.init = true;
    auto r = run(d, [&](pid_t supervisor) {
        wait_for_ready();
        ::kill(supervisor, SIGTERM);
    });
    EXPECT_EQ(r.status, 3) << r.error;
}

// The teardown after berth-supervise: the payload's cgroup, the veth and the published port's
// nftables rules, the state and lock files all go, whether the payload exits by itself or the
// supervisor is told to stop (SIGTERM forwarded, ignored by the payload; the second kills).
TEST_F(Runtime, TeardownAfterTheSmallSupervisorLeavesNoCgroupVethNftRuleOrState) {
    int net = 100 + (::getpid() + 37) % 100;
    auto nft_mentions = [&] {
        FILE* p =
            ::popen("nft list table ip berth 2>/dev/null; nft list table netdev berth 2>/dev/null", "r");
        std::string text;
        char buf[4096];
        size_t n;
        while (p && (n = std::fread(buf, 1, sizeof buf, p)) > 0) text.append(buf, n);
        if (p) ::pclose(p);
        return text.find("c-" + name_ + "-") != std::string::npos;
    };
    const std::string link = "ve-" + name_;
    for (bool stop_by_signal : {false, true}) {
        SCOPED_TRACE(stop_by_signal ? "stopped by SIGTERM" : "payload exits");
        auto d =
            shell(stop_by_signal
                      ? "(sleep 60 &); trap '' TERM; echo ready > /out/ready; while :; do sleep 0.05; done"
                      : "(sleep 60 &); echo ready > /out/ready; sleep 0.5; exit 4");
        d.init = true;
        d.network.mode = config::NetworkMode::Veth;
        d.network.address = fmt::format("172.30.{}.2/24", net);
        d.network.host_address = fmt::format("172.30.{}.1/24", net);
        config::PortMapping port;
        port.host_port = static_cast<uint16_t>(20000 + (::getpid() + 7) % 20000);
        port.container_port = 8080;
        d.network.ports.push_back(port);
        bool small = false, link_seen = false, rules_seen = false;
        ::unlink((out_ + "/ready").c_str());
        auto r = run(d, [&](pid_t supervisor) {
            small = wait_for_exe(supervisor, real_path(SUPERVISOR_BINARY));
            wait_for_ready();
            link_seen = path_exists("/sys/class/net/" + link);
            rules_seen = nft_mentions();
            if (stop_by_signal) {
                // The payload ignores TERM: the first is forwarded, the second is a SIGKILL.
                for (int i = 0; i < 2; ++i) {
                    ::kill(supervisor, SIGTERM);
                    std::this_thread::sleep_for(std::chrono::milliseconds(100));
                }
            }
        });
        EXPECT_EQ(r.status, stop_by_signal ? 128 + SIGKILL : 4) << r.error;
        EXPECT_TRUE(small);
        EXPECT_TRUE(link_seen);
        EXPECT_TRUE(rules_seen);
        EXPECT_FALSE(path_exists("/sys/class/net/" + link)) << "leaked veth";
        EXPECT_FALSE(nft_mentions()) << "leaked nftables rules";
        EXPECT_FALSE(path_exists(path_join(cgroup_parent_, name_))) << "leaked cgroup";
        EXPECT_FALSE(path_exists(state_file_path(name_))) << "leaked state file";
        EXPECT_FALSE(path_exists(path_join(containers_run_dir(), name_ + ".lock"))) << "leaked lock";
    }
}

// A stop request that comes before the payload set its trap (sh as PID 1, a moment after the
// start): the kernel drops a signal to an init without a handler, so berth sends it again once
// the payload has one; before, the stop waited for a second request (`berth run`) or systemd's
// TimeoutStopSec (90 s), and a test that stopped a container just after its start hung (CI).
// Both supervisors: berth-supervise, and berth itself during the hand-over delay.
TEST_F(Runtime, AStopBeforeThePayloadSetItsTrapIsSentAgainOnceItHasOne) {
    for (bool in_berth : {false, true}) {
        SCOPED_TRACE(in_berth ? "supervised by berth (hand-over delay)" : "supervised by berth-supervise");
        auto d = shell(
            "echo ready > /out/ready; sleep 1; trap 'echo trapped > /out/trapped; exit 0' TERM;"
            " while :; do sleep 0.05; done");
        ::unlink((out_ + "/ready").c_str());
        ::unlink((out_ + "/trapped").c_str());
        bool asked_again = false;
        auto r = run(
            d,
            [&](pid_t supervisor) {
                wait_for_ready();
                ::kill(supervisor, SIGTERM);  // during `sleep 1`: no handler yet
                siginfo_t info{};
                auto exited = [&] {
                    info = siginfo_t{};
                    return ::waitid(P_PID, static_cast<id_t>(supervisor), &info,
                                    WEXITED | WNOHANG | WNOWAIT) == 0 &&
                           info.si_pid == supervisor;
                };
                for (int i = 0; i < 1000 && !exited(); ++i)
                    std::this_thread::sleep_for(std::chrono::milliseconds(10));
                if (!exited()) {
                    asked_again = true;  // it would wait forever: the second request kills
                    ::kill(supervisor, SIGTERM);
                }
            },
            [&](RunOptions& opt) { opt.handover_delay_ms = in_berth ? 5000 : 0; });
        EXPECT_FALSE(asked_again) << "the stop was lost: still running 10 s after SIGTERM";
        EXPECT_EQ(r.status, 0) << r.error;
        EXPECT_EQ(out("trapped"), "trapped\n");
    }
}

// The default: berth supervises for the first handover_delay_ms itself (a quick payload never pays
// for the execs), then hands over; stop requests counted before the hand-over still count after
// it (one ignored SIGTERM before, the second one after is a SIGKILL).
TEST_F(Runtime, TheHandOverWaitsForTheDelayAndKeepsCountingStopRequests) {
    auto quick = shell("exit 7");
    auto r = run(quick, {}, [](RunOptions& opt) { opt.handover_delay_ms = 300; });
    EXPECT_EQ(r.status, 7) << r.error;

    auto d = shell("trap '' TERM; echo ready > /out/ready; while :; do sleep 0.05; done");
    d.init = true;
    std::string exe_before, exe_after;
    r = run(
        d,
        [&](pid_t supervisor) {
            wait_for_ready();
            exe_before = exe_of(supervisor);
            ::kill(supervisor, SIGTERM);
            EXPECT_TRUE(wait_for_exe(supervisor, real_path(SUPERVISOR_BINARY)));
            exe_after = exe_of(supervisor);
            ::kill(supervisor, SIGTERM);
        },
        [](RunOptions& opt) { opt.handover_delay_ms = 1500; });
    EXPECT_EQ(r.status, 128 + SIGKILL) << r.error;
    EXPECT_NE(exe_before, real_path(SUPERVISOR_BINARY));
    EXPECT_EQ(exe_after, real_path(SUPERVISOR_BINARY));
}

// `berth internal-teardown` is berth-supervise's: with a live supervisor holding the lock, a
// person running it changes nothing.
TEST_F(Runtime, TheInternalTeardownRefusesWhileTheSupervisorHoldsTheLock) {
    auto d = shell("echo ready > /out/ready; exec sleep 30");
    d.stop_signal = SIGKILL;
    int teardown_status = -1;
    bool still_running = false;
    auto r = run(d, [&](pid_t supervisor) {
        EXPECT_TRUE(wait_for_exe(supervisor, real_path(SUPERVISOR_BINARY)));
        std::string lock = path_join(containers_run_dir(), name_ + ".lock");
        int st = std::system(fmt::format("{} internal-teardown --status 0 --lock-fd 3 {} 3<{} 2>/dev/null",
                                         BERTH_BINARY, name_, lock)
                                 .c_str());
        teardown_status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        still_running = read_state(name_).has_value() && path_exists(path_join(cgroup_parent_, name_));
        ::kill(supervisor, SIGTERM);
    });
    EXPECT_EQ(r.status, 128 + SIGKILL) << r.error;
    EXPECT_EQ(teardown_status, 125);
    EXPECT_TRUE(still_running);
}

// ---- when the teardown cannot run --------------------------------------------------------

// What a container of this test left in the berth nftables table (its chains and port claims).
bool nft_mentions(const std::string& name) {
    FILE* p = ::popen("nft list table ip berth 2>/dev/null", "r");
    std::string text;
    char buf[4096];
    size_t n;
    while (p && (n = std::fread(buf, 1, sizeof buf, p)) > 0) text.append(buf, n);
    if (p) ::pclose(p);
    return text.find("c-" + name + "-") != std::string::npos ||
           text.find("\"" + name + "\"") != std::string::npos;
}

// A veth container with a published port and outbound NAT: every kind of host state a container
// has (cgroup, veth, nftables chains and a port claim, state file, lock).
config::Declaration networked(config::Declaration d, int salt) {
    int net = 100 + (::getpid() + salt) % 100;
    d.network.mode = config::NetworkMode::Veth;
    d.network.address = fmt::format("172.29.{}.2/24", net);
    d.network.host_address = fmt::format("172.29.{}.1/24", net);
    config::PortMapping port;
    port.host_port = static_cast<uint16_t>(20000 + (::getpid() + salt) % 20000);
    port.container_port = 8080;
    d.network.ports.push_back(port);
    return d;
}

// berth-supervise execs the full berth for the teardown through an fd opened before the hand-over,
// so a binary replaced or removed meanwhile still runs. What it cannot survive is the file changed
// in place: made non-executable (EACCES) or truncated (ENOEXEC), real faults injected here into a
// private copy of berth. The payload's status still comes out, with a message naming the
// container and the cause; everything is left behind, and the next start of the same container
// removes it and runs normally.
TEST_F(Runtime, ATeardownThatCannotBeExecutedStillGivesThePayloadsStatusAndTheNextStartCleansUp) {
    const std::string copy = tmp_ / "berth-copy";
    const std::string errors = tmp_ / "supervise.err";
    const std::string link = "ve-" + name_;
    for (const char* fault : {"chmod", "truncate"}) {
        SCOPED_TRACE(fault);
        ASSERT_EQ(0, std::system(fmt::format("cp {} {}", BERTH_BINARY, copy).c_str()));
        ::unlink((out_ + "/go").c_str());
        ::unlink((out_ + "/ready").c_str());
        auto d = networked(
            shell("echo ready > /out/ready; while [ ! -e /out/go ]; do sleep 0.05; done; exit 5"), 11);
        bool small = false;
        auto r = run(
            d,
            [&](pid_t supervisor) {
                small = wait_for_exe(supervisor, real_path(SUPERVISOR_BINARY));
                wait_for_ready();
                if (std::string(fault) == "chmod")
                    EXPECT_EQ(0, ::chmod(copy.c_str(), 0644));
                else
                    EXPECT_EQ(0, ::truncate(copy.c_str(), 0));
                (void)write_file(out_ + "/go", "");
            },
            [&](RunOptions& opt) {
                opt.teardown_exe = copy;
                int fd = ::open(errors.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
                ::dup2(fd, STDERR_FILENO);  // the journal, under systemd
            });
        EXPECT_TRUE(small);
        EXPECT_EQ(r.status, 5) << r.error;
        auto message = read_file(errors).value_or("");
        EXPECT_NE(
            message.find(fmt::format("container '{}': cannot execute berth for the teardown ({})", name_,
                                     std::strerror(std::string(fault) == "chmod" ? EACCES : ENOEXEC))),
            std::string::npos)
            << message;
        // Nothing was torn down: proof that the next start has something to clean.
        EXPECT_TRUE(path_exists(state_file_path(name_))) << "the teardown ran after all";
        EXPECT_TRUE(path_exists(path_join(cgroup_parent_, name_)));
        EXPECT_TRUE(nft_mentions(name_));

        // The test's parent cgroup was created by the run that could not tear down; the next run
        // finds it and (rightly) leaves a parent it did not create. TearDown removes it.
        parent_existed_ = true;
        // The next start of the same container (right away: its old veth may still be on its way
        // out with the old network namespace).
        ::unlink(copy.c_str());
        auto again = networked(shell("ip -4 -o addr show host0 > /out/addr; exit 0"), 11);
        bool link_seen = false;
        r = run(again, [&](pid_t) { link_seen = path_exists("/sys/class/net/" + link); });
        EXPECT_EQ(r.status, 0) << r.error;
        EXPECT_NE(out("addr").find("172.29."), std::string::npos) << out("addr");
        EXPECT_FALSE(path_exists("/sys/class/net/" + link)) << "leaked veth";
        EXPECT_FALSE(nft_mentions(name_)) << "leaked nftables rules";
        EXPECT_FALSE(path_exists(path_join(cgroup_parent_, name_))) << "leaked cgroup";
        EXPECT_FALSE(path_exists(state_file_path(name_))) << "leaked state file";
        EXPECT_FALSE(path_exists(path_join(containers_run_dir(), name_ + ".lock"))) << "leaked lock";
    }
}

// The upgrade case: the berth binary is replaced (a new file renamed over it) and then removed
// while the container runs. The teardown still runs the binary that started the container and
// removes everything; nothing is reported.
TEST_F(Runtime, ATeardownRunsEvenWhenTheBerthBinaryWasReplacedAndRemovedMeanwhile) {
    const std::string copy = tmp_ / "berth-copy";
    const std::string errors = tmp_ / "supervise.err";
    ASSERT_EQ(0, std::system(fmt::format("cp {} {}", BERTH_BINARY, copy).c_str()));
    auto d =
        networked(shell("echo ready > /out/ready; while [ ! -e /out/go ]; do sleep 0.05; done; exit 6"), 17);
    auto r = run(
        d,
        [&](pid_t supervisor) {
            EXPECT_TRUE(wait_for_exe(supervisor, real_path(SUPERVISOR_BINARY)));
            wait_for_ready();
            EXPECT_EQ(0, std::system(
                             fmt::format("cp /bin/true {0}.new && mv {0}.new {0} && rm {0}", copy).c_str()));
            (void)write_file(out_ + "/go", "");
        },
        [&](RunOptions& opt) {
            opt.teardown_exe = copy;
            int fd = ::open(errors.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
            ::dup2(fd, STDERR_FILENO);
        });
    EXPECT_EQ(r.status, 6) << r.error;
    EXPECT_EQ(read_file(errors).value_or("?"), "");
    EXPECT_FALSE(path_exists(copy));
    EXPECT_FALSE(path_exists("/sys/class/net/ve-" + name_)) << "leaked veth";
    EXPECT_FALSE(nft_mentions(name_)) << "leaked nftables rules";
}

bool cgroup_populated(const std::string& dir) {
    auto events = read_file(path_join(dir, "cgroup.events"));
    return events && events->find("populated 1") != std::string::npos;
}

// kill -9 of the supervisor while the payload sleeps: the payload dies with it (a parent-death
// SIGKILL, armed again after the switch to the payload's user, which clears it; as PID 1 of its
// namespace it takes everything in it along), and the next start removes what was left and runs.
// Both as root and as an unprivileged user, where the kernel would have dropped the signal.
TEST_F(Runtime, AKilledSupervisorTakesThePayloadAlongAndTheNextStartCleansUp) {
    for (const char* user : {"", "app"}) {
        SCOPED_TRACE(*user ? "payload as 'app'" : "payload as root");
        ::unlink((out_ + "/ready").c_str());
        auto d = networked(shell("(sleep 60 &); echo ready > /out/ready; exec sleep 60"), 13);
        d.user.user = user;
        bool small = false, payload_died = false;
        auto r = run(d, [&](pid_t supervisor) {
            small = wait_for_exe(supervisor, real_path(SUPERVISOR_BINARY));
            wait_for_ready();
            ::kill(supervisor, SIGKILL);
            const std::string cg = path_join(cgroup_parent_, name_);
            for (int i = 0; i < 500 && !payload_died; ++i) {
                payload_died = !cgroup_populated(cg);
                if (!payload_died) std::this_thread::sleep_for(std::chrono::milliseconds(10));
            }
            if (!payload_died) (void)write_file(path_join(cg, "cgroup.kill"), "1");  // the test's own cleanup
        });
        EXPECT_EQ(r.status, 128 + SIGKILL) << r.error;
        EXPECT_TRUE(small);
        EXPECT_TRUE(payload_died) << "the payload outlived its supervisor";
        EXPECT_TRUE(path_exists(state_file_path(name_)));

        // The test's parent cgroup was created by the run that could not tear down; the next run
        // finds it and (rightly) leaves a parent it did not create. TearDown removes it.
        parent_existed_ = true;
        auto again = networked(shell("exit 3"), 13);
        r = run(again);
        EXPECT_EQ(r.status, 3) << r.error;
        EXPECT_FALSE(path_exists("/sys/class/net/ve-" + name_)) << "leaked veth";
        EXPECT_FALSE(nft_mentions(name_)) << "leaked nftables rules";
        EXPECT_FALSE(path_exists(state_file_path(name_))) << "leaked state file";
    }
}

// `berth run -t -i` from a real terminal (a pty slave we keep open, so its termios can be read
// afterwards): raw mode while the payload runs, the caller's mode restored when it exits.
TEST_F(Runtime, TtyRunGivesThePayloadATerminalPassesInputAndRestoresTheMode) {
    int master = -1, slave = -1;
    ASSERT_EQ(0, ::openpty(&master, &slave, nullptr, nullptr, nullptr));
    ScopeExit close_pty([&] {
        ::close(master);
        ::close(slave);
    });
    struct termios before {};
    ASSERT_EQ(0, ::tcgetattr(slave, &before));
    auto d = shell("test -t 0 && echo stdin-is-a-tty; tty; read x; echo got:$x; exit 3");
    std::string seen;
    auto r = run(
        d,
        [&](pid_t) {
            EXPECT_EQ(4, ::write(master, "hey\r", 4));
            for (int i = 0; i < 500 && seen.find("got:hey") == std::string::npos; ++i) {
                struct pollfd p {
                    master, POLLIN, 0
                };
                if (::poll(&p, 1, 10) > 0) {
                    char buf[512];
                    ssize_t n = ::read(master, buf, sizeof buf);
                    if (n > 0) seen.append(buf, static_cast<size_t>(n));
                }
            }
        },
        [&](RunOptions& opt) {
            opt.tty = true;
            opt.interactive = true;
            ::setsid();
            ::ioctl(slave, TIOCSCTTY, 0);
            ::dup2(slave, 0);
            ::dup2(slave, 1);
        });
    EXPECT_EQ(r.status, 3) << r.error << seen;
    EXPECT_NE(seen.find("stdin-is-a-tty"), std::string::npos) << seen;
    EXPECT_NE(seen.find("/dev/pts/0"), std::string::npos) << seen;  // the container's own devpts
    EXPECT_NE(seen.find("got:hey"), std::string::npos) << seen;
    struct termios after {};
    ASSERT_EQ(0, ::tcgetattr(slave, &after));
    EXPECT_EQ(before.c_lflag, after.c_lflag) << "terminal left in raw mode";
    EXPECT_EQ(before.c_iflag, after.c_iflag);
    EXPECT_EQ(before.c_oflag, after.c_oflag);
}

// `berth shell NAME`: an interactive login shell in a running container, through a real pty
// (util-linux script), whose exit status comes back; a clear error when nothing runs.
TEST_F(Runtime, ShellStartsAnInteractiveShellInARunningContainer) {
    if (std::system("command -v script >/dev/null") != 0) GTEST_SKIP() << "util-linux script missing";
    auto d = shell("touch /out/up; while [ ! -e /out/stop ]; do sleep 0.05; done");
    d.hostname = "shellbox";
    std::string shell_out, user_out;
    int shell_status = -1, user_status = -1;
    auto r = run(d, [&](pid_t) {
        for (int i = 0; i < 400 && !path_exists(path_join(out_, "up")); ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        shell_out = capture(
            "(sleep 1; echo 'test -t 0 && echo IS-A-TTY; hostname; echo $((6*7)); exit 3') | "
            "timeout 30 script -qec '" +
                std::string(BERTH_BINARY) + " shell " + name_ + "' /dev/null",
            &shell_status);
        user_out = capture("(sleep 1; echo 'echo uid=$(id -u)') | timeout 30 script -qec '" +
                               std::string(BERTH_BINARY) + " shell -u app " + name_ + "' /dev/null",
                           &user_status);
        (void)write_file(path_join(out_, "stop"), "", O_WRONLY | O_CREAT);
    });
    EXPECT_EQ(r.status, 0) << r.error;
    EXPECT_EQ(shell_status, 3) << shell_out;
    // The terminal echoes the typed line ("$((6*7))"); only the shell prints 42.
    EXPECT_NE(shell_out.find("42"), std::string::npos) << shell_out;
    EXPECT_NE(shell_out.find("IS-A-TTY"), std::string::npos) << shell_out;
    EXPECT_NE(shell_out.find("shellbox"), std::string::npos) << shell_out;
    // -u: the container's own user; end of input ends the shell with the last status.
    EXPECT_EQ(user_status, 0) << user_out;
    EXPECT_NE(user_out.find("uid=1000"), std::string::npos) << user_out;
}

TEST_F(Runtime, ShellIntoAContainerThatIsNotRunningIsAClearError) {
    int status = -1;
    std::string out = capture(
        "echo 'echo SHOULD-NOT-RUN' | timeout 30 " + std::string(BERTH_BINARY) + " shell " + name_ + " 2>&1",
        &status);
    EXPECT_EQ(status, 126) << out;
    EXPECT_NE(out.find("container '" + name_ + "' is not running"), std::string::npos) << out;
    EXPECT_EQ(out.find("SHOULD-NOT-RUN"), std::string::npos) << out;
}

// Named volumes ([[mount]] type = "volume") from a private store in the test's temp directory
// (overlay backend: a volume is a directory), reached through a private berthd ("embedded"), as
// `berth run` does when no berthd is reachable. A subclass below runs the same through berthd on
// a private bus.
class RuntimeVolumes : public Runtime {
protected:
    void SetUp() override {
        Runtime::SetUp();
        if (::geteuid() != 0) return;
        store_ = tmp_ / "store";
        ::setenv("BERTH_STORAGE", "embedded", 1);
        ::setenv("BERTH_STORE_ROOT", store_.c_str(), 1);
        ::setenv("BERTH_STORE_BACKEND", "overlay", 1);
        ::setenv("BERTH_DAEMON_CONFIG", (tmp_ / "no-berthd.toml").c_str(), 1);
        ::setenv("BERTH_BERTHD", BERTHD_BINARY, 1);  // this test binary is not beside berthd
        volume_ = "vol-" + name_;
    }
    void TearDown() override {
        for (const char* e : {"BERTH_STORAGE", "BERTH_STORE_ROOT", "BERTH_STORE_BACKEND",
                              "BERTH_DAEMON_CONFIG", "BERTH_BERTHD"})
            ::unsetenv(e);
        Runtime::TearDown();
    }

    static void add_volume(config::Declaration& d, const std::string& name, const std::string& target,
                           bool read_only = false) {
        config::Mount m;
        m.type = config::MountType::Volume;
        m.source = name;
        m.target = target;
        m.read_only = read_only;
        d.mounts.push_back(m);
    }

    // The test rootfs as image busybox:<test name> in the embedded store.
    void import_busybox() {
        const std::string tarball = tmp_ / "busybox.tar";
        ASSERT_EQ(0, std::system(fmt::format("tar -C {} -cf {} .", rootfs_path(), tarball).c_str()));
        int status = -1;
        std::string text = capture(
            fmt::format("{} image import {} --name busybox:{} 2>&1", BERTH_BINARY, tarball, name_), &status);
        ASSERT_EQ(status, 0) << text;
    }

    // The volumes `berth df --json` lists (the store as users see it).
    std::vector<std::string> listed_volumes() {
        int status = -1;
        std::string out = capture(std::string(BERTH_BINARY) + " df --json", &status);
        EXPECT_EQ(status, 0) << out;
        std::vector<std::string> names;
        auto j = nlohmann::json::parse(out, nullptr, false);
        if (j.is_discarded() || !j.contains("volumes")) {
            ADD_FAILURE() << "df --json: " << out;
            return names;
        }
        for (auto& v : j["volumes"]) names.push_back(v["name"].get<std::string>());
        return names;
    }
    bool listed(const std::string& volume) {
        auto names = listed_volumes();
        return std::find(names.begin(), names.end(), volume) != names.end();
    }

    std::string store_, volume_;
};

TEST_F(RuntimeVolumes, AVolumeIsCreatedOnFirstUseAndKeepsDataForTheNextRunAndOtherContainers) {
    auto d = shell(
        "ls -A /data | wc -l > /out/entries; echo hello > /data/f; grep ' /data ' /proc/mounts > /out/mnt");
    add_volume(d, volume_, "/data");
    auto r = run(d);
    ASSERT_EQ(r.status, 0) << r.error;
    EXPECT_EQ(trim(out("entries")), "0");  // fresh and empty
    EXPECT_NE(out("mnt").find(" rw,"), std::string::npos) << out("mnt");
    EXPECT_TRUE(listed(volume_));

    // The same container again: the data is there.
    d = shell("cat /data/f > /out/again");
    add_volume(d, volume_, "/data");
    r = run(d);
    ASSERT_EQ(r.status, 0) << r.error;
    EXPECT_EQ(out("again"), "hello\n");

    // Another container, mounting it elsewhere, while the first one runs and writes more.
    auto holder = shell("echo more > /data/g; touch /out/up; while [ ! -e /out/stop ]; do sleep 0.05; done");
    add_volume(holder, volume_, "/data");
    std::string other_name = name_ + "-b";
    RunResult other;
    r = run(holder, [&](pid_t) {
        for (int i = 0; i < 400 && !path_exists(path_join(out_, "up")); ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        auto d2 = shell("cat /srv/shared/f /srv/shared/g > /out/other");
        d2.name = other_name;
        add_volume(d2, volume_, "/srv/shared");
        other = run(d2);
        (void)write_file(path_join(out_, "stop"), "", O_WRONLY | O_CREAT);
    });
    EXPECT_EQ(r.status, 0) << r.error;
    EXPECT_EQ(other.status, 0) << other.error;
    EXPECT_EQ(out("other"), "hello\nmore\n");
    EXPECT_FALSE(path_exists(path_join(cgroup_parent_, other_name))) << "leaked cgroup";
    EXPECT_FALSE(path_exists(state_file_path(other_name))) << "leaked state file";
    auto names = listed_volumes();
    EXPECT_EQ(std::count(names.begin(), names.end(), volume_), 1);
}

// As in Docker, a new volume takes the owner and mode of the image's directory it is mounted on,
// so a non-root payload can use its own data directory; an existing volume keeps its owner.
TEST_F(RuntimeVolumes, ANewVolumeTakesTheOwnerAndModeOfTheImagesDirectory) {
    auto d = shell(
        "stat -c %u:%g:%a /home/app > /out/owner; echo mine > /home/app/f && cat /home/app/f > /out/wrote");
    d.user.user = "app";  // uid 1000, owner of /home/app in the test rootfs
    add_volume(d, volume_, "/home/app");
    auto r = run(d);
    ASSERT_EQ(r.status, 0) << r.error;
    EXPECT_EQ(out("owner"), "1000:1000:755\n");
    EXPECT_EQ(out("wrote"), "mine\n");
    // The existing volume on root's sticky /tmp keeps its owner; a new one takes 0:0 1777.
    d = shell("stat -c %u:%g:%a /tmp > /out/kept; stat -c %u:%g:%a /scratch > /out/new");
    add_volume(d, volume_, "/tmp");
    add_volume(d, volume_ + "-t", "/scratch");  // absent in the image: created as 755
    r = run(d);
    ASSERT_EQ(r.status, 0) << r.error;
    EXPECT_EQ(out("kept"), "1000:1000:755\n");
    EXPECT_EQ(out("new"), "0:0:755\n");
    d = shell("stat -c %u:%g:%a /tmp > /out/sticky");
    add_volume(d, volume_ + "-s", "/tmp");
    r = run(d);
    ASSERT_EQ(r.status, 0) << r.error;
    EXPECT_EQ(out("sticky"), "0:0:1777\n");
}

// The usual hardening: a read-only root file system with the data in a writable volume.
// Issue #13 (4): what `berth run` creates in embedded mode, the store root with its volumes and
// the state directory with the writable layers of rootfs containers, is root's alone (0700, as
// tmpfiles makes /var/lib/berth) under any umask, and a store root left wider is tightened: a
// host user must not reach a setuid-root file the payload leaves in its layer or volume.
TEST_F(RuntimeVolumes, TheStoreRootAndTheWritableLayersAreRootsAloneWhoeverCreatesThem) {
    ASSERT_EQ(0, ::mkdir(store_.c_str(), 0755));
    std::string state = tmp_ / "state";  // not there yet: this run creates it
    ASSERT_FALSE(path_exists(state));
    auto d = shell(
        "cp /bin/busybox /data/suid && chmod 4755 /data/suid && cp /bin/busybox /suid && chmod 4755 /suid");
    d.ephemeral = false;
    add_volume(d, volume_, "/data");
    auto r = run(d, {}, [](RunOptions&) { ::umask(0); });
    ASSERT_EQ(r.status, 0) << r.error;
    auto mode = [](const std::string& p) {
        struct stat st {};
        return ::stat(p.c_str(), &st) == 0 ? st.st_mode & 07777 : 07777u;
    };
    EXPECT_EQ(mode(store_), 0700u);
    EXPECT_EQ(mode(store_ + "/volumes"), 0700u);
    EXPECT_EQ(mode(state), 0700u);
    EXPECT_EQ(mode(state + "/rootfs-layers"), 0700u);
    std::string layer_suid = state + "/rootfs-layers/" + name_ + "/upper/suid";
    ASSERT_EQ(mode(layer_suid), 04755u);  // the payload's setuid file is there, for root
    std::vector<std::string> volume_files;
    for (const auto& e : std::filesystem::recursive_directory_iterator(store_))
        if (e.path().filename() == "suid") volume_files.push_back(e.path());
    ASSERT_EQ(volume_files.size(), 1u);
    for (const auto& p : {layer_suid, volume_files[0]})
        EXPECT_EQ(as_nobody([&] { return errno_of(::access(p.c_str(), X_OK)); }), EACCES) << p;
    // The persistent layer is removed with the test's temp dir; the volume too.
}

TEST_F(RuntimeVolumes, AVolumeStaysWritableUnderAReadOnlyRoot) {
    auto d = shell(
        "echo data > /data/f && cat /data/f > /out/volume; (touch /rootfile) 2>/dev/null; echo $? > "
        "/out/root");
    d.read_only = true;
    add_volume(d, volume_, "/data");
    auto r = run(d);
    ASSERT_EQ(r.status, 0) << r.error;
    EXPECT_EQ(out("volume"), "data\n");
    EXPECT_NE(out("root"), "0\n");
}

TEST_F(RuntimeVolumes, AReadOnlyVolumeRefusesWrites) {
    auto d = shell("echo seed > /data/f");
    add_volume(d, volume_, "/data");
    ASSERT_EQ(run(d).status, 0);
    d = shell(
        "cat /data/f > /out/read; (echo x > /data/g) 2>/dev/null; echo $? > /out/write;"
        " (rm /data/f) 2>/dev/null; echo $? > /out/rm; grep ' /data ' /proc/mounts > /out/mnt");
    add_volume(d, volume_, "/data", true);
    auto r = run(d);
    ASSERT_EQ(r.status, 0) << r.error;
    EXPECT_EQ(out("read"), "seed\n");
    EXPECT_NE(out("write"), "0\n");
    EXPECT_NE(out("rm"), "0\n");
    EXPECT_NE(out("mnt").find(" ro,"), std::string::npos) << out("mnt");
    // Still intact for a writer.
    d = shell("cat /data/f > /out/after; ls /data > /out/ls");
    add_volume(d, volume_, "/data");
    ASSERT_EQ(run(d).status, 0);
    EXPECT_EQ(out("after"), "seed\n");
    EXPECT_EQ(out("ls"), "f\n");
}

TEST_F(RuntimeVolumes, ABadVolumeNameIsAClearErrorAndLeavesNothing) {
    for (const std::string& bad :
         std::vector<std::string>{"../../etc", "a/b", ".hidden", std::string(121, 'a')}) {
        auto d = shell("echo ran > /out/ran");
        add_volume(d, volume_, "/good");  // valid, would be created first
        add_volume(d, bad, "/bad");
        auto r = run(d);
        EXPECT_EQ(r.status, 125) << bad;
        EXPECT_NE(r.error.find("container '" + name_ + "'"), std::string::npos) << r.error;
        EXPECT_NE(r.error.find("volume '" + bad + "'"), std::string::npos) << r.error;
        EXPECT_NE(r.error.find("invalid volume name"), std::string::npos) << r.error;
        EXPECT_EQ(out("ran"), "<missing>");
    }
    // Nothing was created (not even the valid one), and nothing outside the store.
    EXPECT_EQ(listed_volumes(), std::vector<std::string>{});
    EXPECT_FALSE(path_exists(tmp_ / "etc"));
    EXPECT_FALSE(path_exists(store_ + "/etc"));
}

TEST_F(RuntimeVolumes, AVolumeOnAFileOfTheImageIsAClearErrorAndLeavesNothing) {
    auto d = shell("echo ran > /out/ran");
    add_volume(d, volume_, "/etc/passwd");
    auto r = run(d);
    EXPECT_EQ(r.status, 125);
    EXPECT_NE(r.error.find("container '" + name_ + "'"), std::string::npos) << r.error;
    EXPECT_NE(r.error.find("'/etc/passwd'"), std::string::npos) << r.error;
    EXPECT_NE(r.error.find("Not a directory"), std::string::npos) << r.error;
    EXPECT_EQ(out("ran"), "<missing>");
    EXPECT_FALSE(listed(volume_));  // made for this start, still empty: removed again
}

TEST_F(RuntimeVolumes, AContainerThatFailsToStartRemovesOnlyTheVolumesItCreated) {
    auto d = shell("echo keep > /data/f");
    add_volume(d, volume_, "/data");
    ASSERT_EQ(run(d).status, 0);
    std::string fresh = volume_ + "-new";
    d = shell("true");
    add_volume(d, volume_, "/data");
    add_volume(d, fresh, "/fresh");
    d.user.user = "nosuchuser";
    auto r = run(d);
    EXPECT_EQ(r.status, 125);
    EXPECT_NE(r.error.find("unknown user 'nosuchuser'"), std::string::npos) << r.error;
    EXPECT_TRUE(listed(volume_));
    EXPECT_FALSE(listed(fresh));
    d = shell("cat /data/f > /out/kept");
    add_volume(d, volume_, "/data");
    ASSERT_EQ(run(d).status, 0);
    EXPECT_EQ(out("kept"), "keep\n");
}

TEST_F(RuntimeVolumes, AUserNamespaceContainersRootOwnsTheVolumeThroughAnIdmappedMount) {
    auto d = shell("stat -c %u:%g /data > /out/owner; echo mine > /data/f && cat /data/f > /out/wrote");
    d.security.user_namespace.mode = config::UserNamespaceMode::Pick;
    add_volume(d, volume_, "/data");
    auto r = run(d);
    ASSERT_EQ(r.status, 0) << r.error;
    EXPECT_EQ(out("owner"), "0:0\n");
    EXPECT_EQ(out("wrote"), "mine\n");
    // Idmapped, not chowned: on disk the file belongs to host root, so a container without a user
    // namespace (or with another range) shares the volume as the same owner.
    d = shell("stat -c %u:%g /data/f > /out/plain-owner; cat /data/f > /out/plain-read");
    add_volume(d, volume_, "/data");
    r = run(d);
    ASSERT_EQ(r.status, 0) << r.error;
    EXPECT_EQ(out("plain-owner"), "0:0\n");
    EXPECT_EQ(out("plain-read"), "mine\n");
}

// The btrfs backend hands out a subvolume per volume: the same bind, from a real btrfs store on a
// loop device (detached again when the test unmounts it).
TEST_F(RuntimeVolumes, AVolumeFromABtrfsStoreIsASubvolumeBoundIntoTheContainer) {
    if (std::system("command -v mkfs.btrfs >/dev/null") != 0) GTEST_SKIP() << "mkfs.btrfs missing";
    TempDir pool("berth-rt-btrfs");
    ASSERT_TRUE(store::create_sparse_file(pool / "pool.img", 256ull << 20));
    auto loop = store::attach_loop(pool / "pool.img");
    ASSERT_TRUE(loop) << loop.error().what();
    ASSERT_TRUE(store::make_btrfs(loop->path, "berth-rt"));
    ASSERT_TRUE(mkdir_p(pool / "mnt"));
    ASSERT_TRUE(store::mount_btrfs(loop->path, pool / "mnt"));
    ScopeExit unmount([&] { ::umount2((pool / "mnt").c_str(), MNT_DETACH); });
    loop->fd.reset();  // autoclear: the mount is now the device's only user
    const std::string root = pool / "mnt/store";
    ::setenv("BERTH_STORE_ROOT", root.c_str(), 1);
    ::setenv("BERTH_STORE_BACKEND", "btrfs", 1);
    auto d = shell("echo on-btrfs > /data/f");
    add_volume(d, volume_, "/data");
    auto r = run(d);
    ASSERT_EQ(r.status, 0) << r.error;
    d = shell("cat /data/f > /out/read; grep ' /data ' /proc/mounts > /out/mnt");
    add_volume(d, volume_, "/data", true);
    r = run(d);
    ASSERT_EQ(r.status, 0) << r.error;
    EXPECT_EQ(out("read"), "on-btrfs\n");
    EXPECT_NE(out("mnt").find(" btrfs ro,"), std::string::npos) << out("mnt");
    EXPECT_TRUE(listed(volume_));
    int status = -1;
    std::string subvolumes = capture("btrfs subvolume list " + (pool / "mnt") + " 2>&1", &status);
    EXPECT_NE(subvolumes.find("v-" + volume_), std::string::npos) << subvolumes;
}

// Containers that start together (systemd at boot) without berthd take turns at the embedded
// store's lock instead of failing each other.
TEST_F(RuntimeVolumes, AStartWaitsForTheStoreLockThatAnotherProcessHoldsForAMoment) {
    ASSERT_TRUE(mkdir_p(store_, 0700));
    auto d = shell("echo ran > /out/ran");
    add_volume(d, volume_, "/data");
    // Another process holds the lock for 700 ms and reports whether the container ran meanwhile.
    // A process, not a thread: run() forks, and a fork while another thread runs can inherit a
    // lock that thread held (ASan's allocator did exactly that: the forked supervisor hung).
    const std::string lock_path = store_ + "/lock", ran_path = path_join(out_, "ran");
    int ready[2];
    ASSERT_EQ(0, ::pipe2(ready, O_CLOEXEC));
    pid_t holder = ::fork();
    ASSERT_GE(holder, 0);
    if (holder == 0) {
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0 || ::flock(fd, LOCK_EX) < 0) ::_exit(2);
        (void)!::write(ready[1], "x", 1);
        ::usleep(700 * 1000);
        ::_exit(::access(ran_path.c_str(), F_OK) == 0 ? 1 : 0);  // the lock goes with the process
    }
    ::close(ready[1]);
    char c = 0;
    bool held = ::read(ready[0], &c, 1) == 1;
    ::close(ready[0]);
    if (!held) ::kill(holder, SIGKILL);
    int holder_status = -1;
    if (!held) {
        ::waitpid(holder, &holder_status, 0);
        FAIL() << "the lock holder could not take the store lock";
    }
    auto r = run(d);
    ASSERT_EQ(::waitpid(holder, &holder_status, 0), holder);
    EXPECT_EQ(r.status, 0) << r.error;
    EXPECT_TRUE(WIFEXITED(holder_status) && WEXITSTATUS(holder_status) == 0)
        << "the container ran while another process held the store lock (status " << holder_status << ")";
    EXPECT_EQ(out("ran"), "ran\n");
    EXPECT_TRUE(listed(volume_));
}

// A running container is its volume's user: `berth volume ls/inspect` name it with the runtime's
// pid, and `berth volume rm` is refused (EBUSY) until the container has stopped. The runtime hands
// supervision to berth-supervise with an exec, so the recorded pid and start time stay valid.
TEST_F(RuntimeVolumes, AVolumeUnderARunningContainerCannotBeRemovedAndListsTheContainer) {
    auto d = shell("echo ready > /out/ready; trap 'exit 0' TERM; while :; do sleep 0.05; done");
    add_volume(d, volume_, "/data");
    const std::string berth = std::string(BERTH_BINARY) + " volume ";
    int ls_status = -1, rm_status = -1, inspect_status = -1;
    std::string ls, rm, inspect;
    auto r = run(d, [&](pid_t supervisor) {
        wait_for_ready();
        ls = capture(berth + "ls --json", &ls_status);
        inspect = capture(berth + "inspect " + volume_, &inspect_status);
        rm = capture(berth + "rm " + volume_ + " 2>&1", &rm_status);
        inspect += "\nsupervisor " + std::to_string(supervisor);
        ::kill(supervisor, SIGTERM);
    });
    ASSERT_EQ(r.status, 0) << r.error;
    ASSERT_EQ(ls_status, 0) << ls;
    auto j = nlohmann::json::parse(ls, nullptr, false);
    ASSERT_TRUE(j.is_array() && j.size() == 1) << ls;
    EXPECT_EQ(j[0]["name"], volume_);
    ASSERT_EQ(j[0]["users"].size(), 1u) << ls;
    EXPECT_EQ(j[0]["users"][0]["container"], d.name);
    EXPECT_EQ(inspect_status, 0) << inspect;
    auto sup = inspect.substr(inspect.rfind(' ') + 1);
    EXPECT_NE(inspect.find(d.name + " (pid " + sup + ")"), std::string::npos) << inspect;
    EXPECT_EQ(rm_status, 1) << rm;
    EXPECT_NE(rm.find("volume '" + volume_ + "' is in use by container '" + d.name + "'"), std::string::npos)
        << rm;
    EXPECT_TRUE(listed(volume_));
    // Stopped: no user left, and the volume goes.
    ls = capture(berth + "ls --json", &ls_status);
    j = nlohmann::json::parse(ls, nullptr, false);
    ASSERT_TRUE(j.is_array() && j.size() == 1) << ls;
    EXPECT_TRUE(j[0]["users"].empty()) << ls;
    rm = capture(berth + "rm " + volume_ + " 2>&1", &rm_status);
    EXPECT_EQ(rm_status, 0) << rm;
    EXPECT_FALSE(listed(volume_));
}

// The same seam through berthd: a private dbus-daemon with berth's policy and a berthd owning the
// store; the runtime asks it over the bus. Afterwards, with berthd gone, the embedded store sees
// the same volume and data.
TEST_F(RuntimeVolumes, VolumesWorkThroughBerthdAndTheEmbeddedStoreSeesTheSameData) {
    test::PrivateBus bus;
    ASSERT_TRUE(bus.ok()) << bus.log();
    ASSERT_TRUE(mkdir_p(store_));
    std::string log = tmp_ / "berthd.log";
    auto daemon = test::spawn(
        {BERTHD_BINARY, "--root", store_, "--backend", "overlay", "--bus-address", bus.address()}, {}, log);
    ASSERT_TRUE(test::wait_for_name(bus.address(), "org.berth.Storage1", 30000, &daemon))
        << read_file(log).value_or("");
    {
        test::ScopedEnv mode("BERTH_STORAGE", "bus");
        test::ScopedEnv address("DBUS_SYSTEM_BUS_ADDRESS", bus.address());
        auto d = shell("echo via-bus > /data/f");
        add_volume(d, volume_, "/data");
        auto r = run(d);
        ASSERT_EQ(r.status, 0) << r.error << read_file(log).value_or("");
        EXPECT_TRUE(listed(volume_));  // `berth df` through berthd
        // Bad names are refused before the bus is asked to make anything.
        d = shell("true");
        add_volume(d, "../x", "/x");
        r = run(d);
        EXPECT_EQ(r.status, 125);
        EXPECT_NE(r.error.find("volume '../x'"), std::string::npos) << r.error;
    }
    {
        // A container running through berthd is its volume's user (berthd took the runtime's pid
        // from the bus): `berth volume rm` over the bus is refused until it stops.
        test::ScopedEnv mode("BERTH_STORAGE", "bus");
        test::ScopedEnv address("DBUS_SYSTEM_BUS_ADDRESS", bus.address());
        auto d = shell("echo ready > /out/ready; trap 'exit 0' TERM; while :; do sleep 0.05; done");
        add_volume(d, volume_, "/data");
        int rm_status = -1;
        std::string rm;
        auto r = run(d, [&](pid_t supervisor) {
            wait_for_ready();
            rm = capture(std::string(BERTH_BINARY) + " volume rm " + volume_ + " 2>&1", &rm_status);
            rm += " [runtime " + std::to_string(supervisor) + "]";
            ::kill(supervisor, SIGTERM);
        });
        ASSERT_EQ(r.status, 0) << r.error;
        EXPECT_EQ(rm_status, 1) << rm;
        EXPECT_NE(rm.find("is in use by container '" + d.name + "' (process "), std::string::npos) << rm;
        EXPECT_TRUE(listed(volume_));
    }
    EXPECT_NE(daemon.stop(SIGTERM), -1);
    auto d = shell("cat /data/f > /out/embedded");
    add_volume(d, volume_, "/data");
    auto r = run(d);
    ASSERT_EQ(r.status, 0) << r.error;
    EXPECT_EQ(out("embedded"), "via-bus\n");
}

}  // namespace
// The store's side of a teardown that could not run: the container's snapshot (of an image, in
// the embedded store) stays marked in use by a supervisor that is gone. The next start of the
// same container takes it over (ephemeral: a fresh tree) and its teardown releases it.
TEST_F(RuntimeVolumes, AFailedTeardownLeavesASnapshotThatTheNextStartReplacesAndReleases) {
    ASSERT_NO_FATAL_FAILURE(import_busybox());
    const std::string copy = tmp_ / "berth-copy";
    ASSERT_EQ(0, std::system(fmt::format("cp {} {}", BERTH_BINARY, copy).c_str()));
    const std::string record = path_join(store_, "containers/" + name_ + ".json");

    auto d = shell(
        "echo ready > /out/ready; while [ ! -e /out/go ]; do sleep 0.05; done; echo leftover > /tmp/mark; "
        "exit 5");
    d.rootfs.clear();
    d.image = "busybox:" + name_;
    bool snapshot_while_running = false;
    auto r = run(
        d,
        [&](pid_t supervisor) {
            EXPECT_TRUE(wait_for_exe(supervisor, real_path(SUPERVISOR_BINARY)));
            wait_for_ready();
            snapshot_while_running = path_exists(record);
            EXPECT_EQ(0, ::chmod(copy.c_str(), 0644));
            (void)write_file(out_ + "/go", "");
        },
        [&](RunOptions& opt) {
            opt.teardown_exe = copy;
            int fd = ::open((tmp_ / "supervise.err").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
            ::dup2(fd, STDERR_FILENO);
        });
    EXPECT_EQ(r.status, 5) << r.error;
    EXPECT_TRUE(snapshot_while_running) << record;
    EXPECT_TRUE(path_exists(record)) << "the snapshot was released although the teardown did not run";
    parent_existed_ = true;  // the test's parent cgroup, from the run that could not tear down

    auto again = shell("test -e /tmp/mark && echo stale > /out/second || echo fresh > /out/second; exit 0");
    again.rootfs.clear();
    again.image = "busybox:" + name_;
    r = run(again);
    EXPECT_EQ(r.status, 0) << r.error;
    EXPECT_EQ(out("second"), "fresh\n") << "an ephemeral container got the old tree back";
    EXPECT_FALSE(path_exists(record)) << "the snapshot was not released";
}

// Issue #14: in embedded mode one private berthd serves a whole `berth run` (snapshot, volumes,
// release) instead of one per step, each a process start (docs/PERFORMANCE.md). It holds no store
// lock while the container runs (another process's embedded command gets the store), a run that
// outlives the hand-over delay lets go of it, and none outlives the run.
TEST_F(RuntimeVolumes, AnImageRunUsesOnePrivateBerthdThatHoldsNoStoreLockWhileTheContainerRuns) {
    ASSERT_NO_FATAL_FAILURE(import_busybox());
    // A berthd that writes its pid first (exec keeps it), for this process's runs only.
    const std::string pids = tmp_ / "berthd.pids", wrapper = tmp_ / "berthd-wrapper";
    ASSERT_TRUE(write_file(wrapper,
                           fmt::format("#!/bin/sh\necho $$ >> {}\nexec {} \"$@\"\n", pids, BERTHD_BINARY),
                           O_WRONLY | O_CREAT | O_TRUNC, 0755));
    ::setenv("BERTH_BERTHD", wrapper.c_str(), 1);
    auto spawned = [&] {
        auto out = read_pids_keep(pids);
        (void)::unlink(pids.c_str());
        return out;
    };
    auto gone = [](pid_t p) { return ::kill(p, 0) < 0 && errno == ESRCH; };
    // Another process's embedded command, with a berthd of its own: fails at once (EWOULDBLOCK)
    // while a private berthd holds the store.
    auto store_is_free = [&] {
        int st = -1;
        std::string o =
            capture(fmt::format("BERTH_BERTHD={} {} image list 2>&1", BERTHD_BINARY, BERTH_BINARY), &st);
        return st == 0 ? std::string() : o;
    };
    auto image_run = [&](const std::string& script) {
        auto d = shell(script);
        d.rootfs.clear();
        d.image = "busybox:" + name_;
        add_volume(d, volume_, "/data");
        return d;
    };

    // A payload done within the hand-over delay (long here: the machine may be loaded):
    // snapshot, volume and release through one private berthd.
    auto r = run(image_run("echo hi > /data/f; cat /data/f > /out/quick"), {},
                 [](RunOptions& opt) { opt.handover_delay_ms = 30000; });
    ASSERT_EQ(r.status, 0) << r.error;
    EXPECT_EQ(out("quick"), "hi\n");
    auto p = spawned();
    EXPECT_EQ(p.size(), 1u) << "one private berthd per run, not one per storage step";
    for (pid_t pid : p) EXPECT_TRUE(gone(pid)) << "private berthd " << pid << " outlived the run";

    // Within the hand-over delay the run keeps its private berthd, but not the store's lock.
    std::string held;
    bool alive = false;
    r = run(
        image_run("echo up > /out/up; while [ ! -e /out/stop ]; do sleep 0.05; done"),
        [&](pid_t) {
            for (int i = 0; i < 400 && !path_exists(path_join(out_, "up")); ++i)
                std::this_thread::sleep_for(std::chrono::milliseconds(10));
            auto now = read_pids_keep(pids);
            alive = now.size() == 1 && !gone(now[0]);
            held = store_is_free();
            (void)write_file(path_join(out_, "stop"), "", O_WRONLY | O_CREAT);
        },
        [](RunOptions& opt) { opt.handover_delay_ms = 30000; });
    EXPECT_EQ(r.status, 0) << r.error;
    EXPECT_TRUE(alive) << "the run's private berthd is not held while the payload runs";
    EXPECT_EQ(held, "") << "the store is locked while the container runs";
    p = spawned();
    EXPECT_EQ(p.size(), 1u);
    for (pid_t pid : p) EXPECT_TRUE(gone(pid)) << "private berthd " << pid << " outlived the run";

    // Past the delay the run lets go of it; the release at the end starts another.
    std::vector<pid_t> first;
    bool let_go = false;
    r = run(image_run("echo up > /out/up; while [ ! -e /out/stop ]; do sleep 0.05; done"), [&](pid_t) {
        for (int i = 0; i < 400 && !path_exists(path_join(out_, "up")); ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        first = read_pids_keep(pids);
        for (int i = 0; i < 300 && !let_go; ++i) {
            let_go = first.size() == 1 && gone(first[0]);
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        (void)write_file(path_join(out_, "stop"), "", O_WRONLY | O_CREAT);
    });
    EXPECT_EQ(r.status, 0) << r.error;
    EXPECT_TRUE(let_go) << "a long run keeps its private berthd";
    p = spawned();
    EXPECT_EQ(p.size(), 2u);
    for (pid_t pid : p) EXPECT_TRUE(gone(pid)) << "private berthd " << pid << " outlived the run";
}

// configs/examples/rootfs-readonly.toml's pattern: drop ALL, add NET_BIND_SERVICE. The payload (root)
// holds exactly that capability, in its effective, permitted and bounding sets.
TEST_F(Runtime, DroppingAllAndAddingOneCapabilityKeepsThatOne) {
    auto d = shell("cat /proc/self/status > /out/status");
    d.security.capabilities_drop = {"ALL"};
    d.security.capabilities_add = {"NET_BIND_SERVICE"};
    auto r = run(d);
    ASSERT_EQ(r.status, 0) << r.error;
    std::string status = out("status");
    std::string one = capability_mask_hex(1ULL << 10);  // CAP_NET_BIND_SERVICE
    EXPECT_EQ(field(status, "CapBnd"), one);
    EXPECT_EQ(field(status, "CapEff"), one);
    EXPECT_EQ(field(status, "CapPrm"), one);
    EXPECT_EQ(field(status, "CapInh"), "0000000000000000");
    EXPECT_EQ(field(status, "CapAmb"), "0000000000000000");
}

// --- The supervise loop (runtime/relay.h), shared by `berth run` in-process, berth-supervise
// and `berth exec`: each entry point below runs through it. ---

// -t with a stdout whose reader went away (`berth run -t ... | head -1`): the output is dropped
// and the payload keeps its supervisor, which tears down and passes on its status; before, the
// write killed the supervisor with SIGPIPE (status 141, state and cgroup left behind).
TEST_F(Runtime, ATtyRunWhoseStdoutReaderIsGoneStillSupervisesAndTearsDown) {
    for (bool handover : {false, true}) {
        SCOPED_TRACE(handover ? "berth-supervise" : "in-process");
        handover_ = handover;
        std::filesystem::remove(path_join(out_, "done"));
        auto r = run(shell("echo one; sleep 0.3; echo two; echo three; echo done > /out/done; exit 6"), {},
                     [&](RunOptions& opt) {
                         opt.tty = true;
                         opt.interactive = false;
                         int p[2];
                         if (::pipe(p) == 0) {
                             ::dup2(p[1], STDOUT_FILENO);
                             ::close(p[0]);  // nobody reads
                             ::close(p[1]);
                         }
                     });
        EXPECT_EQ(r.status, 6) << r.error;
        EXPECT_EQ(out("done"), "done\n");
    }
}

// Signals reach the payload through whichever loop supervises it: the stop signal for SIGTERM,
// anything else (SIGUSR1 here) as it is.
TEST_F(Runtime, SignalsAreForwardedByBothSupervisors) {
    for (bool handover : {false, true}) {
        SCOPED_TRACE(handover ? "berth-supervise" : "in-process");
        handover_ = handover;
        std::filesystem::remove(path_join(out_, "ready"));
        auto d = shell(
            "trap 'echo usr1 > /out/usr1; exit 9' USR1; echo ready > /out/ready; while :; do sleep 0.05; "
            "done");
        auto r = run(d, [&](pid_t supervisor) {
            wait_for_ready();
            ::kill(supervisor, SIGUSR1);
        });
        EXPECT_EQ(r.status, 9) << r.error;
        EXPECT_EQ(out("usr1"), "usr1\n");
    }
}

// `berth exec -t` through the same loop: a reader of its stdout that went away does not kill it
// (it died of SIGPIPE: status 141), and SIGTERM reaches the command as SIGTERM (exec has no stop
// signal of its own).
TEST_F(Runtime, ExecWithTtySurvivesAGoneReaderAndForwardsSigtermAsItIs) {
    auto d = shell("touch /out/up; while [ ! -e /out/stop ]; do sleep 0.05; done");
    int gone_status = -1, term_status = -1;
    std::string gone_out, term_out;
    auto r = run(d, [&](pid_t) {
        for (int i = 0; i < 400 && !path_exists(path_join(out_, "up")); ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        std::string exec = std::string(BERTH_BINARY) + " exec -t " + name_ + " -- /bin/sh -c ";
        gone_out = capture("bash -c \"timeout 30 " + exec +
                               "'echo a; sleep 0.3; echo b; echo c; exit 5' </dev/null 2>/dev/null | true;"
                               " echo rc=\\${PIPESTATUS[0]}\"",
                           &gone_status);
        term_out = capture("bash -c \"timeout 30 " + exec +
                               "'trap \\\"exit 8\\\" TERM; touch /tmp/armed; while :; do sleep 0.05; done' "
                               "</dev/null >/dev/null 2>&1 & e=\\$!; for i in \\$(seq 100); do " +
                               std::string(BERTH_BINARY) + " exec " + name_ +
                               " -- test -e /tmp/armed && break; sleep 0.05; done; "
                               "kill -TERM \\$e; wait \\$e; echo rc=\\$?\"",
                           &term_status);
        (void)write_file(path_join(out_, "stop"), "", O_WRONLY | O_CREAT);
    });
    EXPECT_EQ(r.status, 0) << r.error;
    EXPECT_NE(gone_out.find("rc=5"), std::string::npos) << gone_out;
    EXPECT_NE(term_out.find("rc=8"), std::string::npos) << term_out;
}

// Issue #15 items 1 and 2, as a user meets them: a persistent container declared with image
// "ta:1" is run, its declaration changed to "tb:1", and run again. The payload must see image B
// (before, it silently kept image A), the run says so, `berth plan` says so beforehand, the old
// layer is kept (pinning image A) until `berth rm`, after which `berth image rm` of A succeeds.
class RuntimeImages : public RuntimeVolumes {
protected:
    // busybox + /marker = `marker`, imported as `ref`.
    void import(const std::string& ref, const std::string& marker) {
        const std::string dir = tmp_ / ("img-" + marker), tarball = tmp_ / ("img-" + marker + ".tar");
        ASSERT_TRUE(mkdir_p(dir));
        ASSERT_TRUE(write_file(dir + "/marker", marker + "\n"));
        ASSERT_EQ(
            0,
            std::system(fmt::format("tar -C {} -cf {} . -C {} marker", rootfs_path(), tarball, dir).c_str()));
        int status = -1;
        auto text =
            capture(fmt::format("{} image import {} --name {} 2>&1", BERTH_BINARY, tarball, ref), &status);
        ASSERT_EQ(status, 0) << text;
    }
    config::Declaration from_image(const std::string& ref) {
        auto d = shell("cat /marker > /out/marker; echo data > /kept-here");
        d.rootfs.clear();
        d.image = ref;
        d.ephemeral = false;
        return d;
    }
    // Runs `d`, collecting what the run logs (RunOptions::warn) in `log`.
    RunResult run_logged(const config::Declaration& d, std::string& log) {
        const std::string path = tmp_ / "run.log";
        ::unlink(path.c_str());
        auto r = run(d, {}, [path](RunOptions& opt) {
            opt.warn = [path](const std::string& m) {
                (void)write_file(path, m + "\n", O_WRONLY | O_CREAT | O_APPEND);
            };
        });
        log = read_file(path).value_or("");
        return r;
    }
    std::string berth(const std::string& args, int* status) {
        return capture(std::string(BERTH_BINARY) + " " + args + " 2>&1", status);
    }
    size_t listed_layers(const std::string& name) {
        int status = -1;
        auto j = nlohmann::json::parse(berth("df --json", &status), nullptr, false);
        size_t n = 0;
        if (j.is_discarded()) return 0;
        for (auto& c : j["containers"]) n += c["name"] == name;
        return n;
    }
};

TEST_F(RuntimeImages, AChangedImageIsRunFromAFreshLayerSaidAloudAndTheOldLayerIsKeptUntilRm) {
    import("ta:1", "A");
    import("tb:1", "B");
    std::string log;
    auto r = run_logged(from_image("ta:1"), log);
    ASSERT_EQ(r.status, 0) << r.error;
    EXPECT_EQ(out("marker"), "A\n");
    EXPECT_EQ(log.find("image changed"), std::string::npos) << log;

    // The declaration now says tb:1: `berth plan` tells before the start does it.
    const std::string decls = tmp_ / "decls";
    ASSERT_TRUE(mkdir_p(decls));
    ASSERT_TRUE(write_file(decls + "/" + name_ + ".toml",
                           "[container]\nimage = \"tb:1\"\ncommand = [\"/bin/true\"]\n"));
    int status = -1;
    auto plan = capture(fmt::format("BERTH_CONTAINERS_PATH={} {} plan --output {} 2>&1", decls, BERTH_BINARY,
                                    std::string(tmp_ / "gen")),
                        &status);
    EXPECT_EQ(status, 2) << plan;
    EXPECT_NE(plan.find("container " + name_ + ": image changed: 'tb:1' is now sha256:"), std::string::npos)
        << plan;
    EXPECT_NE(plan.find("the writable layer will be recreated"), std::string::npos) << plan;
    // `berth status` says it too (systemd unreachable here: berth's own view of the container).
    auto status_text = capture(
        fmt::format("BERTH_CONTAINERS_PATH={} {} status {} 2>&1", decls, BERTH_BINARY, name_), &status);
    EXPECT_NE(status_text.find("Image change"), std::string::npos) << status_text;
    EXPECT_NE(status_text.find("the writable layer will be recreated"), std::string::npos) << status_text;

    r = run_logged(from_image("tb:1"), log);
    ASSERT_EQ(r.status, 0) << r.error;
    EXPECT_EQ(out("marker"), "B\n") << "the payload still sees the old image";
    EXPECT_NE(log.find("image changed: 'tb:1' is now sha256:"), std::string::npos) << log;
    EXPECT_NE(log.find("the writable layer was recreated"), std::string::npos) << log;
    EXPECT_EQ(listed_layers(name_), 2u) << "the old layer is retained and shown by df";

    // The retained layer pins image A until `berth rm`; then it can go.
    auto rmi = berth("image rm ta:1", &status);
    EXPECT_NE(status, 0) << rmi;
    EXPECT_NE(rmi.find("retained earlier layer"), std::string::npos) << rmi;
    auto rm = berth("rm --json " + name_, &status);
    ASSERT_EQ(status, 0) << rm;
    auto j = nlohmann::json::parse(rm, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << rm;
    EXPECT_EQ(j["name"], name_);
    EXPECT_EQ(j["removed"], true);
    EXPECT_EQ(listed_layers(name_), 0u);
    rmi = berth("image rm ta:1", &status);
    EXPECT_EQ(status, 0) << rmi;
    rmi = berth("image rm tb:1", &status);
    EXPECT_EQ(status, 0) << rmi;
    rm = berth("rm " + name_, &status);
    EXPECT_EQ(status, 1) << rm;
    EXPECT_NE(rm.find("has no state in the store"), std::string::npos) << rm;
}

TEST_F(RuntimeImages, OnImageChangeKeepStaysOnTheOldImageAndSaysSo) {
    import("ta:1", "A");
    std::string log;
    auto d = from_image("ta:1");
    d.on_image_change = config::OnImageChange::Keep;
    auto r = run_logged(d, log);
    ASSERT_EQ(r.status, 0) << r.error;
    import("ta:1", "A2");  // the same tag, re-imported onto another image
    r = run_logged(d, log);
    ASSERT_EQ(r.status, 0) << r.error;
    EXPECT_EQ(out("marker"), "A\n");
    EXPECT_NE(log.find("is kept on the old image ID"), std::string::npos) << log;
    d.on_image_change = config::OnImageChange::Recreate;
    r = run_logged(d, log);
    ASSERT_EQ(r.status, 0) << r.error;
    EXPECT_EQ(out("marker"), "A2\n") << "a re-imported tag is an image change";
    int status = -1;
    auto rm = berth("rm " + name_, &status);
    EXPECT_EQ(status, 0) << rm;
}

// `berth rm` is refused while a run of the container is active; --force stops it first.
TEST_F(RuntimeImages, RmIsRefusedWhileTheContainerRunsAndForceStopsItFirst) {
    import("ta:1", "A");
    auto d = from_image("ta:1");
    d.command = {"/bin/sh", "-c",
                 "echo ready > /out/ready; trap 'exit 0' TERM; while :; do sleep 0.05; done"};
    int refused_status = -1, forced_status = -1;
    std::string refused, forced;
    auto r = run(d, [&](pid_t) {
        wait_for_ready();
        refused = berth("rm " + name_, &refused_status);
        forced = berth("rm --force " + name_, &forced_status);
    });
    EXPECT_EQ(r.status, 0) << r.error;
    EXPECT_EQ(refused_status, 1) << refused;
    EXPECT_NE(refused.find("is running"), std::string::npos) << refused;
    EXPECT_EQ(forced_status, 0) << forced;
    EXPECT_NE(forced.find("Removed container " + name_), std::string::npos) << forced;
    EXPECT_EQ(listed_layers(name_), 0u);
}

// Issue #15 item 2: a first start that fails before its payload runs leaves no writable layer
// (it blocked `berth image rm` until `berth rm`); a later failed start keeps the data of the runs
// before it.
TEST_F(RuntimeImages, AFailedFirstStartLeavesNoLayerAndALaterFailedStartKeepsIt) {
    import("ta:1", "A");
    auto broken = from_image("ta:1");
    broken.command = {"/no/such/program"};
    auto r = run(broken);
    EXPECT_NE(r.status, 0) << "a missing program started";
    EXPECT_EQ(listed_layers(name_), 0u) << "a failed first start kept its writable layer";
    int status = -1;
    auto rm = berth("image rm ta:1", &status);
    EXPECT_EQ(status, 0) << rm;

    import("ta:1", "A");
    r = run(from_image("ta:1"));
    ASSERT_EQ(r.status, 0) << r.error;
    ASSERT_EQ(listed_layers(name_), 1u);
    r = run(broken);
    EXPECT_NE(r.status, 0);
    EXPECT_EQ(listed_layers(name_), 1u) << "a failed later start removed the container's data";
}

// `berth prune` removes the state of containers without a declaration (image and rootfs ones)
// and keeps declared ones.
TEST_F(RuntimeImages, PruneRemovesUndeclaredContainersAndListsThem) {
    import("ta:1", "A");
    ::setenv("BERTH_STATE_DIR", store_.c_str(), 1);  // rootfs-layers/ in the store root, as by default
    auto img = from_image("ta:1");
    auto r = run(img);
    ASSERT_EQ(r.status, 0) << r.error;
    auto rootfs = shell("echo x > /written");
    rootfs.name = name_ + "-rf";
    rootfs.ephemeral = false;
    r = run(rootfs);
    ASSERT_EQ(r.status, 0) << r.error;
    ASSERT_TRUE(path_exists(store_ + "/rootfs-layers/" + rootfs.name));
    EXPECT_EQ(listed_layers(rootfs.name), 1u) << "df shows a rootfs container's layer";
    const std::string decls = tmp_ / "decls";
    ASSERT_TRUE(mkdir_p(decls));
    int status = -1;
    auto pruned =
        capture(fmt::format("BERTH_CONTAINERS_PATH={} {} prune --json 2>&1", decls, BERTH_BINARY), &status);
    ASSERT_EQ(status, 0) << pruned;
    auto j = nlohmann::json::parse(pruned, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << pruned;
    auto removed = j["removed"].get<std::vector<std::string>>();
    std::sort(removed.begin(), removed.end());
    std::vector<std::string> expected{name_, "rootfs-layers/" + rootfs.name};
    std::sort(expected.begin(), expected.end());
    EXPECT_EQ(removed, expected) << pruned;
    EXPECT_FALSE(path_exists(store_ + "/rootfs-layers/" + rootfs.name));
    EXPECT_EQ(listed_layers(name_), 0u);
    int rmi_status = -1;
    auto rmi = berth("image rm ta:1", &rmi_status);
    EXPECT_EQ(rmi_status, 0) << rmi;
}

// --- [[secret]] and [[socket]] (issue #19) ---

// Whether any file under `dir` holds `needle` (grep -r: contents, whatever the file), but in the
// test's /out (where payloads write what they read on purpose).
bool tree_contains(const std::string& dir, const std::string& needle) {
    return std::system(fmt::format("grep -rqsF --exclude-dir=out -- '{}' '{}'", needle, dir).c_str()) == 0;
}

config::Secret secret_from(const std::string& name, const std::string& source) {
    config::Secret s;
    s.name = name;
    s.source = source;
    s.target = "/run/secrets/" + name;
    return s;
}

// Embedded mode (`berth run` without systemd) reads a plain file itself.
TEST_F(Runtime, ASecretIsAReadOnlyFileOfThePayloadsUserAndAVariableOnlyWhenAskedAndNowhereElse) {
    TempDir host("berth-rt-secret");
    const std::string value = fmt::format("s3cret-{}-value", ::getpid());
    const std::string other = fmt::format("other-{}-value", ::getpid());
    ASSERT_TRUE(write_file(host / "db", value, O_WRONLY | O_CREAT | O_TRUNC, 0600));
    ASSERT_TRUE(write_file(host / "key", other, O_WRONLY | O_CREAT | O_TRUNC, 0600));
    auto d = shell(
        "stat -c '%u %g %a' /run/secrets/db > /out/db-stat; cat /run/secrets/db > /out/db;"
        " echo \"$DB_PASSWORD\" > /out/env; echo \"$CREDENTIALS_DIRECTORY\" > /out/creddir;"
        " env | grep -c s3cret > /out/env-count; cat /etc/app/key > /out/key;"
        " stat -c '%u %g %a' /etc/app/key > /out/key-stat;"
        " (echo x > /run/secrets/db) 2>/dev/null; echo $? > /out/write;"
        " (touch /run/secrets/new) 2>/dev/null; echo $? > /out/create;"
        " echo ready > /out/ready; sleep 1");
    d.ephemeral = false;  // the writable layer is under the state directory: grepped below
    d.user.user = "app";
    auto db = secret_from("db", host / "db");
    db.environment = "DB_PASSWORD";
    d.secrets.push_back(db);
    auto key = secret_from("key", host / "key");
    key.target = "/etc/app/key";
    key.mode = 0440;
    key.uid = 0;
    key.gid = 1001;
    d.secrets.push_back(key);
    bool checked = false;
    auto r = run(d, [&](pid_t supervisor) {
        wait_for_ready();
        // While it runs: not in the run directory (state file), the state directory (the writable
        // layer), nor the supervisor's environment; the payload's own environment has it.
        EXPECT_FALSE(tree_contains(tmp_.path(), value));
        EXPECT_FALSE(tree_contains(tmp_.path(), other));
        EXPECT_EQ(read_file(fmt::format("/proc/{}/environ", supervisor)).value_or("").find(value),
                  std::string::npos);
        auto state = read_file(state_file_path(name_));
        ASSERT_TRUE(state);
        EXPECT_EQ(state->find(value), std::string::npos);
        checked = true;
    });
    ASSERT_EQ(r.status, 0) << r.error;
    EXPECT_TRUE(checked);
    EXPECT_EQ(out("db"), value);
    EXPECT_EQ(out("db-stat"), "1000 1000 400\n");
    EXPECT_EQ(out("env"), value + "\n");
    EXPECT_EQ(out("env-count"), "1\n");  // DB_PASSWORD only
    EXPECT_EQ(out("creddir"), "/run/secrets\n");
    EXPECT_EQ(out("key"), other);
    EXPECT_EQ(out("key-stat"), "0 1001 440\n");
    EXPECT_NE(out("write"), "0\n");
    EXPECT_NE(out("create"), "0\n");
    // After it: the writable layer (kept, persistent) has no copy either.
    EXPECT_FALSE(tree_contains(tmp_.path(), value));
    EXPECT_FALSE(tree_contains(tmp_.path(), other));
}

TEST_F(Runtime, ASecretBelongsToThePayloadsUserInsideAUserNamespace) {
    TempDir host("berth-rt-secret");
    ASSERT_TRUE(write_file(host / "db", "v", O_WRONLY | O_CREAT | O_TRUNC, 0600));
    auto d = shell("echo \"$(stat -c '%u %g %a' /run/secrets/db) $(cat /run/secrets/db)\" > /out/seen");
    d.user.user = "app";
    d.security.user_namespace.mode = config::UserNamespaceMode::Pick;
    d.secrets.push_back(secret_from("db", host / "db"));
    EXPECT_EQ(run(d).status, 0);
    EXPECT_EQ(out("seen"), "1000 1000 400 v\n");  // the ids inside the namespace
}

TEST_F(Runtime, AnUnreadableSecretFailsTheStartNamingItAndLeavesNothing) {
    auto d = shell("echo started > /out/started");
    d.secrets.push_back(secret_from("db", "/nonexistent/berth-secret"));
    auto r = run(d);
    EXPECT_EQ(r.status, 125);
    EXPECT_NE(r.error.find("secret 'db'"), std::string::npos) << r.error;
    EXPECT_NE(r.error.find("/nonexistent/berth-secret"), std::string::npos) << r.error;
    EXPECT_EQ(out("started"), "<missing>");

    // An encrypted one that does not decrypt (not `systemd-creds encrypt` output).
    TempDir host("berth-rt-secret");
    ASSERT_TRUE(write_file(host / "bad.cred", "not a credential", O_WRONLY | O_CREAT | O_TRUNC, 0600));
    d.secrets[0] = secret_from("db", host / "bad.cred");
    d.secrets[0].kind = config::SecretSource::Encrypted;
    r = run(d);
    EXPECT_EQ(r.status, 125);
    EXPECT_NE(r.error.find("secret 'db': decrypt '" + (host / "bad.cred") + "'"), std::string::npos)
        << r.error;
    EXPECT_EQ(out("started"), "<missing>");
}

// `berth run` under systemd-socket-activate (embedded mode): the caller's listening sockets reach
// the payload as fds 3 and 4 with the sd_listen_fds(3) variables, and nothing else is open there.
TEST_F(Runtime, TheCallersListeningSocketsReachThePayloadAsItsOnlyFdsFromThree) {
    const int port = 20000 + ::getpid() % 20000;
    const std::string sock = tmp_ / "ctl.sock";
    std::string toml = tmp_ / (name_ + ".toml");
    ASSERT_TRUE(
        write_file(toml,
                   fmt::format("[container]\nrootfs = \"{}\"\nephemeral = true\ncommand = [\"/probe\", "
                               "\"serve-listen\"]\n[[mount]]\ntype = \"bind\"\nsource = \"{}\"\n"
                               "target = \"/probe\"\nread_only = true\n",
                               rootfs_path(), RUNTIME_PROBE),
                   O_WRONLY | O_CREAT | O_TRUNC));
    const std::string log = tmp_ / "activate.log", pid_file = tmp_ / "activate.pid";
    ASSERT_EQ(0, std::system(fmt::format("timeout 30 systemd-socket-activate -l 127.0.0.1:{} -l {} "
                                         "--fdname=web:ctl {} run {} > {} 2>&1 & echo $! > {}",
                                         port, sock, BERTH_BINARY, toml, log, pid_file)
                                 .c_str()));
    std::string answer;
    for (int i = 0; i < 200 && answer.empty(); ++i) {
        UniqueFd c(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        sockaddr_in sa{};
        sa.sin_family = AF_INET;
        sa.sin_port = htons(static_cast<uint16_t>(port));
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::connect(c.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0) {
            char buf[64];
            ssize_t n;
            while ((n = ::read(c.get(), buf, sizeof buf)) > 0) answer.append(buf, static_cast<size_t>(n));
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    EXPECT_EQ(answer, "served\n");
    pid_t pid = std::stoi(read_file(pid_file).value_or("0"));
    for (int i = 0; i < 400 && pid > 0 && ::kill(pid, 0) == 0; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(25));
    std::string said = read_file(log).value_or("");
    EXPECT_NE(said.find("fds=0,1,2,3,4\n"), std::string::npos) << said;
    EXPECT_NE(said.find("LISTEN_FDS=2\n"), std::string::npos) << said;
    EXPECT_NE(said.find("LISTEN_PID=1\n"), std::string::npos) << said;  // the pid the payload sees
    EXPECT_NE(said.find("getpid=1\n"), std::string::npos) << said;
    EXPECT_NE(said.find("LISTEN_FDNAMES=web:ctl\n"), std::string::npos) << said;
    EXPECT_NE(said.find("accept=OK"), std::string::npos) << said;
}

// Issue #20: a container on a declared network (declared in a temporary search path) gets an
// address from the network's subnet on eth0, the network's gateway as its default route and its
// address in /etc/hosts; the start brings the network up (embedded mode); the next start keeps
// the address; berth rm's release forgets the lease.
TEST_F(Runtime, AContainerOnADeclaredNetworkGetsAStableAddressFromItsSubnet) {
    const int k = 100 + ::getpid() % 100;
    const std::string network = fmt::format("rn{}", ::getpid() % 100000);
    ASSERT_TRUE(mkdir_p(tmp_ / "networks"));
    ASSERT_TRUE(write_file(tmp_ / ("networks/" + network + ".toml"),
                           fmt::format("[network]\nsubnets = [\"172.27.{}.0/24\"]\n", k)));
    ::setenv("BERTH_NETWORKS_PATH", (tmp_ / "networks").c_str(), 1);
    auto declared = config::load_network(network, config::SearchPaths::networks());
    ASSERT_TRUE(declared) << declared.error().what();
    auto plan = network::plan_network(*declared);
    ASSERT_TRUE(plan);
    struct Down {
        network::DeclaredNetworkPlan plan;
        ~Down() {
            (void)network::network_down(plan);
            ::unsetenv("BERTH_NETWORKS_PATH");
        }
    } down{*plan};

    auto d = shell("ip -4 -o addr show eth0 > /out/addr; ip route > /out/route; cat /etc/hosts > /out/hosts");
    d.network.mode = config::NetworkMode::Network;
    d.network.networks = {{network, "", {}}};
    auto r = run(d);
    ASSERT_EQ(r.status, 0) << r.error;
    std::string addr = out("addr");
    auto at = addr.find(fmt::format("172.27.{}.", k));
    ASSERT_NE(at, std::string::npos) << addr;
    std::string address = addr.substr(at, addr.find('/', at) - at);
    EXPECT_NE(out("route").find(fmt::format("default via 172.27.{}.1", k)), std::string::npos)
        << out("route");
    EXPECT_NE(out("hosts").find(address + "\t" + name_), std::string::npos) << out("hosts");
    EXPECT_TRUE(path_exists("/sys/class/net/" + plan->bridge));
    EXPECT_TRUE(path_exists(run_ + "/networks/" + network + "/leases/" + name_));

    r = run(d);
    ASSERT_EQ(r.status, 0) << r.error;
    EXPECT_EQ(out("addr").substr(out("addr").find("172.27.")).substr(0, address.size()), address);

    ASSERT_TRUE(network::release_all_addresses(name_));
    EXPECT_FALSE(path_exists(run_ + "/networks/" + network + "/leases/" + name_));
}

// [container] sysctl / read_only_tmpfs / shm_size / timezone, [network] add_hosts / dns*,
// [security] mask / unmask: each seen from inside a real container, with and without a user
// namespace (the sysctls are written by the namespace's root then).
class OperatorKeys : public Runtime, public ::testing::WithParamInterface<bool> {};

TEST_P(OperatorKeys, ShowInsideTheContainerAndLeaveTheHostAlone) {
    const std::string zone = "/usr/share/zoneinfo/Europe/Paris";
    if (!path_exists(zone)) GTEST_SKIP() << "the host has no tzdata (" << zone << ")";
    std::string host_somaxconn = read_file("/proc/sys/net/core/somaxconn").value_or("?");
    std::string host_rmid = read_file("/proc/sys/kernel/shm_rmid_forced").value_or("?");
    auto d = shell(
        "cat /proc/sys/net/core/somaxconn > /out/somaxconn; cat /proc/sys/kernel/shm_rmid_forced > /out/rmid;"
        " grep -E ' /(tmp|var/tmp|run) tmpfs ' /proc/mounts | cut -d' ' -f2 | sort > /out/tmpfs;"
        " touch /tmp/x /var/tmp/x /run/x && echo ok > /out/scratch; touch /etc/x 2>/dev/null; echo $? > "
        "/out/etc;"
        " grep ' /dev/shm ' /proc/mounts > /out/shm; cat /etc/localtime > /out/localtime;"
        " cat /etc/hosts > /out/hosts; cat /etc/resolv.conf > /out/resolv; wc -c < /probe > /out/masked;"
        " grep -c ' /proc/kcore ' /proc/mounts > /out/kcore; grep -c ' /proc/keys ' /proc/mounts > "
        "/out/keys");
    d.read_only = true;
    d.shm_size = 8u << 20;
    d.timezone = "Europe/Paris";
    d.sysctl = {{"net.core.somaxconn", "1234"}, {"kernel.shm_rmid_forced", host_rmid == "1\n" ? "0" : "1"}};
    d.network.add_hosts = {{"db", "10.9.8.7"}};
    d.network.dns = {"192.0.2.53"};
    d.network.dns_search = {"example.com"};
    d.security.mask = {"/probe"};
    d.security.unmask = {"/proc/kcore"};
    if (GetParam()) d.security.user_namespace.mode = config::UserNamespaceMode::Pick;
    auto r = run(d);
    ASSERT_EQ(r.status, 0) << r.error;
    EXPECT_EQ(out("somaxconn"), "1234\n");
    EXPECT_EQ(out("rmid"), host_rmid == "1\n" ? "0\n" : "1\n");
    EXPECT_EQ(read_file("/proc/sys/net/core/somaxconn").value_or("?"), host_somaxconn)
        << "the host's changed";
    EXPECT_EQ(read_file("/proc/sys/kernel/shm_rmid_forced").value_or("?"), host_rmid) << "the host's changed";
    EXPECT_EQ(out("tmpfs"), "/run\n/tmp\n/var/tmp\n");
    EXPECT_EQ(out("scratch"), "ok\n");
    EXPECT_NE(out("etc"), "0\n") << "the root stays read-only";
    EXPECT_NE(out("shm").find("size=8192k"), std::string::npos) << out("shm");
    EXPECT_TRUE(out("localtime") == read_file(zone).value_or("?")) << "/etc/localtime is not " << zone;
    EXPECT_NE(out("hosts").find("10.9.8.7\tdb\n"), std::string::npos) << out("hosts");
    EXPECT_NE(out("resolv").find("nameserver 192.0.2.53\n"), std::string::npos) << out("resolv");
    EXPECT_NE(out("resolv").find("search example.com\n"), std::string::npos) << out("resolv");
    EXPECT_EQ(out("masked"), "0\n") << "masked: /dev/null over it";
    EXPECT_EQ(out("kcore"), "0\n") << "unmasked";
    EXPECT_EQ(out("keys"), "1\n") << "still masked";
}

INSTANTIATE_TEST_SUITE_P(Runtime, OperatorKeys, ::testing::Bool(),
                         [](const auto& p) { return p.param ? "UserNamespace" : "HostIds"; });

// A declaration that did not go through validation (built in code, as here) still cannot write the
// host's tunables: the runtime refuses a sysctl outside the container's own namespaces.
TEST_F(Runtime, AHostWideSysctlIsRefusedAtStartEvenWithoutValidation) {
    std::string host_somaxconn = read_file("/proc/sys/net/core/somaxconn").value_or("?");
    std::string host_panic = read_file("/proc/sys/kernel/panic").value_or("?");
    auto d = shell("true");
    d.network.mode = config::NetworkMode::Host;
    d.sysctl = {{"net.core.somaxconn", "1234"}};
    auto r = run(d);
    EXPECT_NE(r.status, 0);
    EXPECT_NE(r.error.find("per network namespace"), std::string::npos) << r.error;
    d.network.mode = config::NetworkMode::None;
    d.sysctl = {{"kernel.panic", "17"}};
    r = run(d);
    EXPECT_NE(r.status, 0);
    EXPECT_NE(r.error.find("is not namespaced"), std::string::npos) << r.error;
    EXPECT_EQ(read_file("/proc/sys/net/core/somaxconn").value_or("?"), host_somaxconn);
    EXPECT_EQ(read_file("/proc/sys/kernel/panic").value_or("?"), host_panic);
}

TEST_F(Runtime, ASysctlTheKernelRefusesFailsTheStartNamingIt) {
    auto d = shell("true");
    d.sysctl = {{"net.core.no_such_knob", "1"}};
    auto r = run(d);
    EXPECT_NE(r.status, 0);
    EXPECT_NE(r.error.find("/proc/sys/net/core/no_such_knob"), std::string::npos) << r.error;
}

}  // namespace berth::runtime
