// Mount hardening (security issue #13, item 6), through `berth run` and `berth exec` as a user
// runs them, with default security unless a test says otherwise:
//   - a read_only bind is read-only in the source's submounts too;
//   - a device node in the image, or one made with CAP_MKNOD in the root, in /dev or in a
//     persistent writable layer, does not open (nodev), while the host's bound nodes still work;
//   - the host reads the container's /etc/passwd and /etc/group without hanging on a FIFO,
//     without reading a device and without following a symlink out of the tree;
//   - Docker's masked and read-only /proc and /sys paths are masked and read-only inside.
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <thread>

#include "berth-harness.h"

namespace fs = std::filesystem;
using namespace berth::test;

namespace {

// A tmpfs mounted on the host for the length of a test (unmounted even when the test fails).
struct HostTmpfs {
    std::string path;
    bool mounted = false;
    explicit HostTmpfs(std::string p) : path(std::move(p)) {
        fs::create_directories(path);
        mounted = ::mount("tmpfs", path.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=0777") == 0;
    }
    ~HostTmpfs() {
        if (mounted) ::umount2(path.c_str(), MNT_DETACH);
    }
};

// `berth run` in the background (for `berth exec`); killed and reaped at the end in any case.
struct Background {
    pid_t pid = -1;
    std::string log;
    Background(const std::string& toml, std::string log_path) : log(std::move(log_path)) {
        pid = ::fork();
        if (pid == 0) {
            int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
            int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
            if (fd < 0 || devnull < 0) ::_exit(127);
            ::dup2(devnull, 0);
            ::dup2(fd, 1);
            ::dup2(fd, 2);
            ::execl(berth_exe().c_str(), "berth", "run", toml.c_str(), static_cast<char*>(nullptr));
            ::_exit(127);
        }
    }
    // SIGTERM (the payload exits on it), then SIGKILL after 20 s; the exit status or -1.
    int stop() {
        if (pid <= 0) return -1;
        ::kill(pid, SIGTERM);
        int status = 0;
        for (int i = 0; i < 2000; ++i) {
            if (::waitpid(pid, &status, WNOHANG) == pid) {
                pid = -1;
                return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        ::kill(pid, SIGKILL);
        ::waitpid(pid, &status, 0);
        pid = -1;
        return -1;
    }
    ~Background() { stop(); }
};

bool wait_for_file(const std::string& path, int seconds) {
    for (int i = 0; i < seconds * 100; ++i) {
        if (fs::exists(path)) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
}

bool contains(const std::string& haystack, const std::string& needle) {
    return haystack.find(needle) != std::string::npos;
}

class Mounts : public ::testing::Test {
protected:
    void SetUp() override {
        BERTH_REQUIRE_ROOT();
        ASSERT_FALSE(dir_.path().empty());
        ::chmod(dir_.path().c_str(), 0755);  // traversable by a user namespace's root
        rootfs_ = dir_ / "rootfs";
        ASSERT_TRUE(make_busybox_rootfs(rootfs_));
        out_ = dir_ / "out";
        fs::create_directories(out_);
        ::chmod(out_.c_str(), 0777);
        // Persistent writable layers are berth state that outlives a run by design: keep them in
        // our own directory, removed with it, not in /var/lib/berth.
        ::setenv("BERTH_STATE_DIR", (dir_ / "state").c_str(), 1);
    }

    void TearDown() override { ::unsetenv("BERTH_STATE_DIR"); }

    std::string name(const std::string& tag) const { return "mnt" + tag + std::to_string(getpid()); }

    // Writes NAME.toml running `script` with /bin/sh, /out bound to out_; returns its path.
    std::string declare(const std::string& n, const std::string& script,
                        const std::string& container_extra = "", const std::string& tables = "") {
        std::string path = dir_ / (n + ".toml");
        write_file(path, shell_declaration(rootfs_, out_, script, container_extra, tables));
        return path;
    }

    std::string out(const std::string& file) { return read_file(out_ + "/" + file); }

    TempDir dir_{"berth-mounts"};
    std::string rootfs_, out_;
};

// MS_REMOUNT|MS_BIND|MS_RDONLY changes the top mount only, so a tmpfs (or any mount) under a
// read_only bind's source stayed writable inside (Docker made read-only binds recursive in 25.0).
TEST_F(Mounts, AReadOnlyBindIsReadOnlyInTheSourcesSubmountsToo) {
    std::string src = dir_ / "bind-src";
    fs::create_directories(src);
    ::chmod(src.c_str(), 0777);  // writable for a user namespace's root too (the rw half)
    HostTmpfs sub(src + "/sub");
    ASSERT_TRUE(sub.mounted) << "mount tmpfs on " << sub.path << ": " << strerror(errno);
    write_file(src + "/sub/present", "here\n");
    // Also from inside a user namespace, where the child clones and attaches as the namespace's
    // root (the source's mounts are locked there).
    for (const std::string security : {"", "[security]\nuser_namespace = \"pick\"\n"}) {
        SCOPED_TRACE(security.empty() ? "no user namespace" : "user namespace");
        for (const char* f : {"read", "top", "top-err", "sub", "sub-err", "rw", "uid_map"})
            fs::remove(out_ + "/" + f);
        fs::remove(src + "/sub/rw-file");
        std::string toml = declare(name(security.empty() ? "r" : "ru"),
                                   "cat /ro/sub/present > /out/read; cat /proc/self/uid_map > /out/uid_map;"
                                   " touch /ro/top-file 2>/out/top-err; echo $? > /out/top;"
                                   " touch /ro/sub/file 2>/out/sub-err; echo $? > /out/sub;"
                                   " touch /rw/sub/rw-file; echo $? > /out/rw",
                                   // A persistent writable layer lives under the 0700 state
                                   // directory, which a user namespace's root cannot traverse yet
                                   // (issue #15 item 5): that variant keeps its layer on the stage.
                                   security.empty() ? "" : "ephemeral = true\n",
                                   "[[mount]]\ntype = \"bind\"\nsource = \"" + src +
                                       "\"\ntarget = \"/ro\"\nread_only = true\n"
                                       "[[mount]]\ntype = \"bind\"\nsource = \"" +
                                       src + "\"\ntarget = \"/rw\"\n" + security);
        RunResult r = berth_run(toml, 60);
        ASSERT_EQ(r.exit_code, 0) << r.out;
        EXPECT_EQ(contains(out("uid_map"), "4294967295"), security.empty()) << out("uid_map");
        EXPECT_EQ(out("read"), "here\n");
        EXPECT_NE(out("top"), "0\n");
        EXPECT_TRUE(contains(out("top-err"), "Read-only file system")) << out("top-err");
        EXPECT_NE(out("sub"), "0\n") << "the submount of a read_only bind was writable";
        EXPECT_TRUE(contains(out("sub-err"), "Read-only file system")) << out("sub-err");
        EXPECT_FALSE(fs::exists(src + "/sub/file"));
        // Without read_only the same tree stays writable (the submount included).
        EXPECT_EQ(out("rw"), "0\n");
        EXPECT_TRUE(fs::exists(src + "/sub/rw-file"));
    }
}

// An image is untrusted: a device node in it (here a copy of the null device) must not open. berth has no
// device cgroup (cgroup v2 would need a BPF program), so nodev is what stands between an image and the host's
// disks.
TEST_F(Mounts, DeviceNodesInTheImageDoNotOpenButTheBoundHostNodesWork) {
    ASSERT_EQ(::mknod((rootfs_ + "/nulldev").c_str(), S_IFCHR | 0666, makedev(1, 3)), 0) << strerror(errno);
    ASSERT_EQ(::mknod((rootfs_ + "/dev/image-null").c_str(), S_IFCHR | 0666, makedev(1, 3)), 0)
        << strerror(errno);
    std::string toml = declare(name("d"),
                               "cat /nulldev 2>/out/root-err; echo $? > /out/root;"
                               " echo x > /dev/null; echo $? > /out/devnull;"
                               " head -c 4 /dev/zero | wc -c > /out/devzero;"
                               " head -c 4 /dev/urandom | wc -c > /out/urandom;"
                               " ls /dev/image-null 2>/dev/null; echo $? > /out/dev-covered");
    RunResult r = berth_run(toml, 60);
    ASSERT_EQ(r.exit_code, 0) << r.out;
    EXPECT_NE(out("root"), "0\n") << "a device node of the image opened";
    EXPECT_TRUE(contains(out("root-err"), "Permission denied")) << out("root-err");  // EACCES: nodev
    EXPECT_EQ(out("devnull"), "0\n");
    EXPECT_EQ(out("devzero"), "4\n");
    EXPECT_EQ(out("urandom"), "4\n");
    EXPECT_NE(out("dev-covered"), "0\n");  // /dev is the runtime's tmpfs, not the image's
}

// With CAP_MKNOD added, the payload can make device nodes; none of them opens: not in the root,
// not in /dev (the runtime's tmpfs), and not in the next run of a persistent writable layer.
TEST_F(Mounts, NodesMadeWithMknodDoNotOpenInTheRootDevOrAPersistentLayer) {
    const std::string script =
        "if [ -e /made ]; then cat /made 2>/out/again-err; echo $? > /out/again; exit 0; fi;"
        " mknod /made c 1 3; echo $? > /out/mknod; cat /made 2>/out/root-err; echo $? > /out/root;"
        " mknod /dev/made c 1 3; cat /dev/made 2>/out/dev-err; echo $? > /out/dev;"
        " mknod /tmp/made c 1 3; cat /tmp/made 2>/dev/null; echo $? > /out/tmp";
    std::string toml =
        declare(name("k"), script, "ephemeral = false\n", "[security]\ncapabilities_add = [\"MKNOD\"]\n");
    RunResult r = berth_run(toml, 60);
    ASSERT_EQ(r.exit_code, 0) << r.out;
    ASSERT_EQ(out("mknod"), "0\n") << "CAP_MKNOD was not granted, nothing tested";
    EXPECT_NE(out("root"), "0\n") << "a node made in the root opened";
    EXPECT_TRUE(contains(out("root-err"), "Permission denied")) << out("root-err");
    EXPECT_NE(out("dev"), "0\n") << "a node made in /dev opened";
    EXPECT_TRUE(contains(out("dev-err"), "Permission denied")) << out("dev-err");
    EXPECT_NE(out("tmp"), "0\n");
    // The node is in the persistent layer now; the next start sees it and cannot open it either.
    r = berth_run(toml, 60);
    ASSERT_EQ(r.exit_code, 0) << r.out;
    EXPECT_NE(out("again"), "0\n") << "a node left in the persistent layer opened";
    EXPECT_TRUE(contains(out("again-err"), "Permission denied")) << out("again-err");
}

// Image roots from the store: the overlay backend hands out an overlay, the btrfs backend a
// subvolume snapshot that the child binds (with its submounts) as the root. Both are nodev.
TEST_F(Mounts, NodesMadeInAnImageRootFromTheStoreDoNotOpenWithEitherBackend) {
    const std::string tarball = dir_ / "busybox.tar";
    ASSERT_EQ(0, std::system(("tar -C " + rootfs_ + " -cf " + tarball + " .").c_str()));
    struct Env {
        ~Env() {
            for (const char* e :
                 {"BERTH_STORAGE", "BERTH_STORE_ROOT", "BERTH_STORE_BACKEND", "BERTH_DAEMON_CONFIG"})
                ::unsetenv(e);
        }
    } env;
    ::setenv("BERTH_STORAGE", "embedded", 1);
    ::setenv("BERTH_DAEMON_CONFIG", (dir_ / "no-berthd.toml").c_str(), 1);
    // The btrfs store lives on a loop-mounted image file (mount -o loop: autoclear on unmount).
    const std::string btrfs_mnt = dir_ / "btrfs";
    struct Unmount {
        std::string path;
        bool mounted = false;
        ~Unmount() {
            if (mounted) ::umount2(path.c_str(), MNT_DETACH);
        }
    } unmount{btrfs_mnt};
    bool have_btrfs = std::system("command -v mkfs.btrfs >/dev/null") == 0;
    if (have_btrfs) {
        fs::create_directories(btrfs_mnt);
        std::string img = dir_ / "btrfs.img";
        ASSERT_EQ(
            0, std::system(("truncate -s 256M " + img + " && mkfs.btrfs -q " + img + " >/dev/null").c_str()));
        ASSERT_EQ(0, std::system(("mount -o loop " + img + " " + btrfs_mnt).c_str()));
        unmount.mounted = true;
    }
    const std::string script =
        "mknod /made c 1 3; echo $? > /out/mknod; cat /made 2>/out/err; echo $? > /out/open;"
        " awk '$5 == \"/\"' /proc/self/mountinfo > /out/root";
    int runs = 0;
    for (const std::string backend : {"overlay", "btrfs"}) {
        SCOPED_TRACE(backend);
        if (backend == "btrfs" && !have_btrfs) {
            // After the overlay half ran: the host lacks btrfs-progs, not berth a feature.
            GTEST_SKIP() << "mkfs.btrfs missing (apt-get install btrfs-progs): the overlay image root was "
                            "tested, the btrfs backend's bind root was not";
        }
        std::string store = backend == "btrfs" ? btrfs_mnt + "/store" : std::string(dir_ / "store");
        ::setenv("BERTH_STORE_ROOT", store.c_str(), 1);
        ::setenv("BERTH_STORE_BACKEND", backend.c_str(), 1);
        RunResult imported =
            run_capture({berth_exe(), "image", "import", tarball, "--name", "busybox:mounts"}, 120);
        ASSERT_EQ(imported.exit_code, 0) << imported.out;
        for (const char* f : {"mknod", "err", "open", "root"}) fs::remove(out_ + "/" + f);
        std::string n = name(backend.substr(0, 1) + "i");
        std::string toml =
            declare(n, script, "ephemeral = true\n", "[security]\ncapabilities_add = [\"MKNOD\"]\n");
        // The image instead of the rootfs.
        std::string text = read_file(toml);
        text.replace(text.find("rootfs = \"" + rootfs_ + "\""), ("rootfs = \"" + rootfs_ + "\"").size(),
                     "image = \"busybox:mounts\"");
        write_file(toml, text);
        RunResult r = berth_run(toml, 60);
        ASSERT_EQ(r.exit_code, 0) << r.out;
        ++runs;
        ASSERT_EQ(out("mknod"), "0\n") << "CAP_MKNOD was not granted, nothing tested";
        EXPECT_NE(out("open"), "0\n") << "a node made in the image root opened";
        EXPECT_TRUE(contains(out("err"), "Permission denied")) << out("err");
        EXPECT_TRUE(contains(out("root"), "nodev")) << out("root");
    }
    EXPECT_EQ(runs, 2);
}

// The host resolves `user` from the container's /etc/passwd and /etc/group before the payload
// runs. A FIFO there used to block `berth run` for good; a symlink to /dev/zero read without end.
TEST_F(Mounts, AFifoOrDeviceAtEtcPasswdOrGroupFailsBerthRunAtOnceNamingTheFile) {
    struct Case {
        const char* file;
        const char* expect;
        std::function<void(const std::string&)> make;
    };
    const std::vector<Case> cases = {
        {"/etc/passwd", "is a FIFO", [](const std::string& p) { ASSERT_EQ(::mkfifo(p.c_str(), 0644), 0); }},
        {"/etc/group", "is a FIFO", [](const std::string& p) { ASSERT_EQ(::mkfifo(p.c_str(), 0644), 0); }},
        {"/etc/group", "is a character device",
         [](const std::string& p) { fs::create_symlink("/dev/zero", p); }},
        {"/etc/passwd", "is a directory", [](const std::string& p) { fs::create_directory(p); }},
    };
    int i = 0;
    for (const auto& c : cases) {
        SCOPED_TRACE(std::string(c.file) + " " + c.expect);
        std::string path = rootfs_ + c.file;
        std::string saved = read_file(path);
        fs::remove(path);
        c.make(path);
        std::string toml =
            declare(name("f" + std::to_string(i++)), "echo ran > /out/ran", "user = \"app\"\n");
        auto start = std::chrono::steady_clock::now();
        RunResult r = berth_run(toml, 20);
        auto took = std::chrono::steady_clock::now() - start;
        // Fatal: a run that hung would make the next case wait as long again.
        ASSERT_FALSE(contains(r.out, "killed after timeout")) << "berth run hung on " << c.file << ":\n"
                                                              << r.out;
        EXPECT_NE(r.exit_code, 0) << r.out;
        EXPECT_TRUE(contains(r.out, std::string("container's '") + c.file + "' " + c.expect)) << r.out;
        EXPECT_LT(took, std::chrono::seconds(10));
        EXPECT_FALSE(fs::exists(out_ + "/ran"));
        fs::remove_all(path);
        write_file(path, saved);
    }
}

// A symlink at /etc/passwd to a host file is resolved inside the container's tree: the host's
// users (here one only the host file knows) are never found.
TEST_F(Mounts, ASymlinkAtEtcPasswdNeverReadsAHostFile) {
    std::string host = dir_ / "host-passwd";
    write_file(host, "hostonly:x:4321:4321::/:/bin/sh\n");
    fs::remove(rootfs_ + "/etc/passwd");
    fs::create_symlink(host, rootfs_ + "/etc/passwd");
    std::string toml = declare(name("h"), "id -u > /out/uid", "user = \"hostonly\"\n");
    RunResult r = berth_run(toml, 30);
    EXPECT_NE(r.exit_code, 0) << r.out;
    EXPECT_TRUE(contains(r.out, "unknown user 'hostonly'")) << r.out;
    EXPECT_FALSE(fs::exists(out_ + "/uid"));
}

// `berth exec --user` reads the files of a running container, which its payload controls: a FIFO
// (or /dev/zero) put there while it runs must make `berth exec` fail at once, not hang.
TEST_F(Mounts, BerthExecUserFailsAtOnceWhenThePayloadPutsAFifoOrDeviceAtEtcPasswd) {
    std::string n = name("x");
    std::string toml =
        declare(n,
                "rm /etc/passwd && mkfifo /etc/passwd && ln -sf /dev/zero /etc/group &&"
                " echo ready > /out/ready; trap 'exit 0' TERM; while true; do sleep 0.1; done");
    Background run(toml, dir_ / "run.log");
    ASSERT_TRUE(wait_for_file(out_ + "/ready", 30)) << read_file(dir_ / "run.log");
    // The payload can write its marker before `berth run` has written the state `berth exec`
    // reads ("is not running" once in CI under load): wait until a plain exec works.
    RunResult warm;
    for (int i = 0; i < 100; ++i) {
        warm = run_capture({berth_exe(), "exec", "--no-stdin", n, "--", "/bin/true"}, 20);
        if (warm.exit_code == 0) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ASSERT_EQ(warm.exit_code, 0) << warm.out;
    auto start = std::chrono::steady_clock::now();
    RunResult r = run_capture({berth_exe(), "exec", "--no-stdin", "-u", "app", n, "--", "/bin/true"}, 20);
    auto took = std::chrono::steady_clock::now() - start;
    ASSERT_FALSE(contains(r.out, "killed after timeout")) << "berth exec -u hung:\n" << r.out;
    EXPECT_NE(r.exit_code, 0) << r.out;
    EXPECT_TRUE(contains(r.out, "container's '/etc/passwd' is a FIFO")) << r.out;
    EXPECT_LT(took, std::chrono::seconds(10));
    // Without --user nothing is read: exec still works.
    RunResult plain = run_capture({berth_exe(), "exec", "--no-stdin", n, "--", "/bin/true"}, 20);
    EXPECT_EQ(plain.exit_code, 0) << plain.out;
    EXPECT_EQ(run.stop(), 0) << read_file(dir_ / "run.log");
}

// Docker's masked paths (moby oci/defaults.go) are empty inside a default container and each is
// a mount of ours; the read-only ones are read-only mounts. Paths this kernel lacks are skipped.
TEST_F(Mounts, DockersMaskedAndReadOnlyPathsAreMaskedAndReadOnlyInside) {
    const std::vector<std::string> masked = {
        "/proc/asound",      "/proc/acpi",          "/proc/interrupts", "/proc/kcore",
        "/proc/keys",        "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
        "/proc/sched_debug", "/proc/scsi",          "/sys/firmware",    "/sys/devices/virtual/powercap"};
    const std::vector<std::string> read_only = {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                                                "/proc/sysrq-trigger"};
    std::string list;
    for (const auto& p : masked) list += " " + p;
    std::string toml =
        declare(name("m"), "for p in" + list +
                               "; do if [ -d $p ]; then echo $p $(ls -A $p | wc -l);"
                               " elif [ -e $p ]; then echo $p $(cat $p | wc -c); fi; done > /out/masks;"
                               " cut -d' ' -f5,6 /proc/self/mountinfo > /out/mounts");
    RunResult r = berth_run(toml, 60);
    ASSERT_EQ(r.exit_code, 0) << r.out;
    std::string masks = out("masks"), mounts = "\n" + out("mounts");
    int checked = 0;
    for (const auto& p : masked) {
        if (!fs::exists(p)) continue;
        ++checked;
        EXPECT_TRUE(contains(masks, p + " 0\n")) << p << " is not masked:\n" << masks;
        EXPECT_TRUE(contains(mounts, "\n" + p + " ")) << p << " is not a mount point inside";
    }
    EXPECT_TRUE(fs::exists("/proc/interrupts"));  // on every kernel: the check above ran for it
    EXPECT_GE(checked, 3);
    for (const auto& p : read_only) {
        if (!fs::exists(p)) continue;
        EXPECT_TRUE(contains(mounts, "\n" + p + " ro,") || contains(mounts, "\n" + p + " ro\n"))
            << p << " is not a read-only mount inside:\n"
            << mounts;
    }
}

}  // namespace
