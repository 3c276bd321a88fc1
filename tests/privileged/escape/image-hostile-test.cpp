// Hostile images (docs/SECURITY.md, "Summary and test gaps"): an image is untrusted input, and
// these tests feed `berth run` the shapes that broke other runtimes, then check from the host that
// nothing outside the container's tree changed. For each, berth either refuses with an error that
// names the path, or confines the effect to the container's tree:
//   - /dev a symlink out of the tree (runc CVE-2026-41579, crun CVE-2026-47766);
//   - /etc/resolv.conf, /etc/hosts, /etc/hostname symlinks to host paths (crun CVE-2025-24965);
//   - /proc or /sys a symlink out of the tree, or a file (runc CVE-2019-16884, CVE-2019-19921,
//     CVE-2023-27561): the masked and read-only paths must not be redirected;
//   - a declared mount target that is a symlink to /proc/sysrq-trigger or to a host path
//     (CVE-2023-27561, CVE-2025-52565);
//   - numeric user names and uid overflow (CVE-2016-3697, CVE-2020-13776, CVE-2024-40635): a clear
//     refusal or the exact numeric identity, never root by overflow.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <map>

#include "berth-harness.h"

namespace fs = std::filesystem;
using namespace berth::test;

namespace {

bool contains(const std::string& haystack, const std::string& needle) {
    return haystack.find(needle) != std::string::npos;
}

// Everything that can tell whether a tree changed: per entry its type, mode, inode, size, mtime,
// symlink target and (for regular files) contents.
std::map<std::string, std::string> snapshot(const std::string& dir) {
    std::map<std::string, std::string> out;
    std::error_code ec;
    auto describe = [](const std::string& p) {
        struct stat st {};
        if (::lstat(p.c_str(), &st) != 0) return std::string("missing");
        std::string d = std::to_string(st.st_mode) + " " + std::to_string(st.st_ino) + " " +
                        std::to_string(st.st_size) + " " + std::to_string(st.st_mtim.tv_sec) + "." +
                        std::to_string(st.st_mtim.tv_nsec);
        if (S_ISLNK(st.st_mode)) d += " -> " + fs::read_symlink(p).string();
        if (S_ISREG(st.st_mode)) d += " [" + read_file(p) + "]";
        return d;
    };
    out["."] = describe(dir);
    for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec))
        out[fs::relative(it->path(), dir).string()] = describe(it->path().string());
    return out;
}

// The host's own mount table names no path under `dir`.
bool host_mounts_mention(const std::string& dir) { return contains(read_file("/proc/self/mountinfo"), dir); }

class ImageHostile : public ::testing::Test {
protected:
    void SetUp() override {
        BERTH_REQUIRE_ROOT();
        ASSERT_FALSE(dir_.path().empty());
        ASSERT_FALSE(victim_.path().empty());
        ::chmod(dir_.path().c_str(), 0755);  // traversable by the payload's non-root users
        rootfs_ = dir_ / "rootfs";
        ASSERT_TRUE(make_busybox_rootfs(rootfs_));
        out_ = dir_ / "out";
        fs::create_directories(out_);
        ::chmod(out_.c_str(), 0777);
        ::setenv("BERTH_STATE_DIR", (dir_ / "state").c_str(), 1);
        // The host directory an image's symlinks point at. It holds files with some of the names
        // berth makes in /dev and /etc (a runtime that followed a link out and replaced or removed
        // them would change them) and lacks the others (fd, stdin, stdout, stderr, core, mqueue:
        // one that created them there would add entries).
        for (const char* f : {"ptmx", "pts", "shm", "null", "console", "resolv.conf", "hosts", "hostname",
                              "kcore", "timer_list"})
            write_file(victim_ / f, std::string("host ") + f + "\n");
        before_ = snapshot(victim_.path());
    }

    void TearDown() override { ::unsetenv("BERTH_STATE_DIR"); }

    std::string name(const std::string& tag) const { return "hst" + tag + std::to_string(getpid()); }

    // Writes NAME.toml running `script` with /bin/sh, /out bound to out_; returns its path.
    std::string declare(const std::string& n, const std::string& script,
                        const std::string& container_extra = "", const std::string& tables = "") {
        std::string path = dir_ / (n + ".toml");
        write_file(path, shell_declaration(rootfs_, out_, script, container_extra, tables));
        return path;
    }

    std::string out(const std::string& file) { return read_file(out_ + "/" + file); }
    void clear_out() {
        std::error_code ec;
        for (auto& e : fs::directory_iterator(out_, ec)) fs::remove_all(e.path(), ec);
    }

    // The host directory is exactly as it was, and nothing is mounted on it.
    void expect_victim_untouched() {
        EXPECT_EQ(snapshot(victim_.path()), before_) << "berth changed the host directory " << victim_.path();
        EXPECT_FALSE(host_mounts_mention(victim_.path())) << "a mount appeared on " << victim_.path();
    }

    // `host_path` as a relative symlink target that climbs out of any directory of the image.
    static std::string climbing(const std::string& host_path) {
        return "../../../../../../../.." + host_path;
    }

    TempDir dir_{"berth-hostile"};
    TempDir victim_{"berth-victim"};
    std::string rootfs_, out_;
    std::map<std::string, std::string> before_;
};

// /dev a symlink out of the tree. berth resolves every target inside the root (RESOLVE_IN_ROOT), so
// the link means the same path inside the image: without that directory in the image the start
// is refused, naming /dev; with it, /dev is built there, and the host directory is untouched.
TEST_F(ImageHostile, DevSymlinkOutOfTheTreeNeverTouchesTheHostDirectory) {
    const std::string in_tree = rootfs_ + victim_.path();
    for (const bool relative : {false, true}) {
        for (const bool present_in_image : {false, true}) {
            SCOPED_TRACE(std::string(relative ? "relative" : "absolute") + " link, target " +
                         (present_in_image ? "present" : "absent") + " in the image");
            clear_out();
            fs::remove_all(rootfs_ + "/dev");
            fs::create_symlink(relative ? climbing(victim_.path()) : victim_.path(), rootfs_ + "/dev");
            std::error_code ec;
            fs::remove_all(rootfs_ + "/tmp/" + fs::path(victim_.path()).filename().string(), ec);
            if (present_in_image) fs::create_directories(in_tree);
            auto in_tree_before = present_in_image ? snapshot(in_tree) : std::map<std::string, std::string>();
            RunResult r =
                berth_run(declare(name("d"),
                                  "echo x > /dev/null && echo ok > /out/devnull;"
                                  " head -c 3 /dev/zero | wc -c > /out/devzero;"
                                  " ls /dev > /out/devls 2>&1; test -e /dev/pts/ptmx && echo ok > /out/pts;"
                                  " readlink /dev/ptmx > /out/ptmx"),
                          60);
            SCOPED_TRACE(r.out);
            expect_victim_untouched();
            if (present_in_image) {
                // Confined: /dev was built in the image's own directory of that name.
                ASSERT_EQ(r.exit_code, 0);
                EXPECT_EQ(out("devnull"), "ok\n");
                EXPECT_EQ(out("devzero"), "3\n");
                EXPECT_EQ(out("pts"), "ok\n");
                EXPECT_EQ(out("ptmx"), "pts/ptmx\n");
                EXPECT_FALSE(contains(out("devls"), "timer_list")) << "the container saw the host directory";
                // The tmpfs covered the image's directory in the container only: on the host it
                // is as the image left it.
                EXPECT_EQ(snapshot(in_tree), in_tree_before);
            } else {
                EXPECT_NE(r.exit_code, 0) << "started with /dev a dangling link";
                EXPECT_TRUE(contains(r.out, "/dev")) << "the error does not name /dev";
                EXPECT_FALSE(fs::exists(in_tree)) << "berth created the link's target in the image";
            }
        }
    }
}

// /etc/resolv.conf, /etc/hosts and /etc/hostname as links to host files (absolute, relative,
// dangling): the host files are never written, created or bound over.
TEST_F(ImageHostile, EtcFilesThatAreSymlinksToHostFilesNeverWriteTheHost) {
    const std::string in_tree = rootfs_ + victim_.path();
    const std::string dangling = victim_ / "absent";
    struct Case {
        std::string label, resolv, hosts, hostname;
        bool dangling = false;
        std::string network = "none";
    };
    const std::vector<Case> cases = {
        {"absolute", victim_ / "resolv.conf", victim_ / "hosts", victim_ / "hostname"},
        {"relative", climbing(victim_ / "resolv.conf"), climbing(victim_ / "hosts"),
         climbing(victim_ / "hostname")},
        {"dangling", dangling + "/resolv.conf", climbing(dangling + "/hosts"), dangling + "-hostname", true},
        {"absolute, veth", victim_ / "resolv.conf", victim_ / "hosts", victim_ / "hostname", false, "veth"},
    };
    for (const auto& c : cases) {
        for (const bool present_in_image : {false, true}) {
            if (c.dangling && present_in_image) continue;
            SCOPED_TRACE(c.label + (present_in_image ? ", target present in the image" : ", target absent"));
            clear_out();
            std::error_code ec;
            fs::remove_all(rootfs_ + "/tmp/" + fs::path(victim_.path()).filename().string(), ec);
            if (present_in_image) {
                fs::create_directories(in_tree);
                for (const char* f : {"resolv.conf", "hosts", "hostname"})
                    write_file(in_tree + "/" + f, "image\n");
            }
            for (const auto& [file, target] :
                 {std::pair{"resolv.conf", c.resolv}, {"hosts", c.hosts}, {"hostname", c.hostname}}) {
                fs::remove(rootfs_ + "/etc/" + file);
                fs::create_symlink(target, rootfs_ + "/etc/" + file);
            }
            std::string extra = "hostname = \"hostile\"\n";
            std::string tables;
            if (c.network == "veth") {
                std::string net = "10.232." + std::to_string(getpid() % 250);
                tables = "[network]\nmode = \"veth\"\naddress = \"" + net + ".2/30\"\nhost_address = \"" +
                         net + ".1/30\"\n";
            }
            RunResult r = berth_run(declare(name(c.network.substr(0, 1)),
                                            "cat /etc/hostname > /out/hostname; cat /etc/hosts > /out/hosts;"
                                            " cat /etc/resolv.conf > /out/resolv",
                                            extra, tables),
                                    60);
            SCOPED_TRACE(r.out);
            expect_victim_untouched();
            EXPECT_FALSE(fs::exists(dangling)) << "berth created the dangling link's host target";
            EXPECT_FALSE(fs::exists(dangling + "-hostname"))
                << "berth created the dangling link's host target";
            if (r.exit_code == 0) {
                // Confined: the generated files are what the container reads; nothing of the host's.
                EXPECT_EQ(out("hostname"), "hostile\n");
                EXPECT_TRUE(contains(out("hosts"), "\thostile\n")) << out("hosts");
                for (const char* f : {"host resolv.conf", "host hosts", "host hostname"})
                    EXPECT_FALSE(contains(out("hosts") + out("resolv") + out("hostname"), f))
                        << "the container read " << f;
                if (present_in_image) {  // bound over in the container only; the image's files are as they
                                         // were
                    for (const char* f : {"resolv.conf", "hosts", "hostname"})
                        EXPECT_EQ(read_file(in_tree + "/" + f), "image\n") << f;
                }
            } else {
                EXPECT_TRUE(contains(r.out, "/etc/")) << "the error does not name the file";
            }
            // A link to a file the image has is followed inside the image. One that dangles there
            // is refused: berth creates a missing target only where no link stands.
            EXPECT_EQ(r.exit_code == 0, present_in_image);
        }
    }
}

// /proc and /sys as links out of the tree, or as files: the fresh proc and sysfs mounts, and the
// masks and read-only copies on them, follow the link inside the root, so every masked path is
// masked where the payload finds it; nothing reaches the host directory.
TEST_F(ImageHostile, ProcAndSysThatAreSymlinksOrFilesCannotRedirectTheMasks) {
    const std::string in_tree = rootfs_ + victim_.path();
    for (const char* which : {"proc", "sys"}) {
        for (const char* shape : {"absolute", "relative", "file"}) {
            for (const bool present_in_image : {false, true}) {
                if (std::string(shape) == "file" && present_in_image) continue;
                SCOPED_TRACE(std::string("/") + which + " " + shape +
                             (present_in_image ? ", target present in the image" : ""));
                clear_out();
                std::error_code ec;
                fs::remove_all(rootfs_ + "/tmp/" + fs::path(victim_.path()).filename().string(), ec);
                for (const char* d : {"/proc", "/sys"}) {
                    fs::remove_all(rootfs_ + d);
                    fs::create_directory(rootfs_ + d);
                }
                std::string link = rootfs_ + "/" + which;
                fs::remove_all(link);
                if (std::string(shape) == "file")
                    write_file(link, "not a directory\n");
                else
                    fs::create_symlink(
                        std::string(shape) == "absolute" ? victim_.path() : climbing(victim_.path()), link);
                if (present_in_image) fs::create_directories(in_tree);
                RunResult r = berth_run(
                    declare(name("p"),
                            "wc -c < /proc/timer_list > /out/timer_list 2>&1; wc -c < /proc/interrupts > "
                            "/out/interrupts 2>&1;"
                            " { printf '' > /proc/sysrq-trigger; } 2> /out/sysrq-err; echo $? > /out/sysrq;"
                            " { echo 1 > /proc/sys/kernel/printk_ratelimit; } 2> /out/sysctl-err; echo $? > "
                            "/out/sysctl;"
                            " ls /sys/firmware > /out/firmware 2>&1; echo $? > /out/firmware-rc;"
                            " echo done > /out/done"),
                    60);
                SCOPED_TRACE(r.out);
                expect_victim_untouched();
                if (!present_in_image) {
                    EXPECT_NE(r.exit_code, 0) << "started with /" << which << " " << shape;
                    EXPECT_TRUE(contains(r.out, std::string("/") + which))
                        << "the error does not name /" << which;
                    EXPECT_FALSE(fs::exists(in_tree)) << "berth created the link's target in the image";
                    continue;
                }
                ASSERT_EQ(r.exit_code, 0);
                ASSERT_EQ(out("done"), "done\n");
                EXPECT_EQ(out("timer_list"), "0\n") << "/proc/timer_list is not masked";
                EXPECT_EQ(out("interrupts"), "0\n") << "/proc/interrupts is not masked";
                if (fs::exists("/proc/sysrq-trigger")) {  // not on every kernel (CONFIG_MAGIC_SYSRQ)
                    EXPECT_NE(out("sysrq"), "0\n") << "/proc/sysrq-trigger is writable";
                    EXPECT_TRUE(contains(out("sysrq-err"), "Read-only file system")) << out("sysrq-err");
                }
                EXPECT_NE(out("sysctl"), "0\n") << "/proc/sys is writable";
                EXPECT_TRUE(contains(out("sysctl-err"), "Read-only file system")) << out("sysctl-err");
                EXPECT_EQ(out("firmware"), "") << "/sys/firmware is not masked";
                EXPECT_EQ(out("firmware-rc"), "0\n") << out("firmware");
            }
        }
    }
}

// A declared mount whose target is an image symlink to /proc/sysrq-trigger, /proc/sys or a host
// path: the mount lands inside the container's tree, and Docker's read-only paths stay read-only
// (they are applied last, on whatever the path is then).
TEST_F(ImageHostile, MountTargetsThatAreSymlinksCannotUncoverOrReachTheHost) {
    std::string src_file = dir_ / "src-file";
    write_file(src_file, "declared\n");
    std::string src_dir = dir_ / "src-dir";
    fs::create_directories(src_dir);
    write_file(src_dir + "/marker", "declared dir\n");
    const auto src_before = snapshot(src_dir);
    fs::create_directories(rootfs_ + "/mnt");
    // /proc/sysrq-trigger where the kernel has it, else another file of Docker's read-only paths.
    const std::string trigger =
        fs::exists("/proc/sysrq-trigger") ? "/proc/sysrq-trigger" : "/proc/sys/kernel/hostname";
    fs::create_symlink(trigger, rootfs_ + "/mnt/trigger");
    fs::create_symlink("../../proc/sys/vm", rootfs_ + "/mnt/vm");
    fs::create_symlink(victim_.path(), rootfs_ + "/mnt/host-abs");
    fs::create_symlink(climbing(victim_.path()), rootfs_ + "/mnt/host-rel");
    fs::create_directories(rootfs_ + victim_.path());
    auto in_tree_before = snapshot(rootfs_ + victim_.path());
    std::string tables = "[[mount]]\ntype = \"bind\"\nsource = \"" + src_file +
                         "\"\ntarget = \"/mnt/trigger\"\n"
                         "[[mount]]\ntype = \"tmpfs\"\ntarget = \"/mnt/vm\"\n"
                         "[[mount]]\ntype = \"tmpfs\"\ntarget = \"/mnt/host-abs\"\n"
                         "[[mount]]\ntype = \"bind\"\nsource = \"" +
                         src_dir + "\"\ntarget = \"/mnt/host-rel/sub\"\nread_only = true\n";
    RunResult r = berth_run(declare(name("m"),
                                    "cat " + trigger +
                                        " > /out/trigger-read 2>&1;"
                                        " { printf '' > " +
                                        trigger +
                                        "; } 2> /out/sysrq-err; echo $? > /out/sysrq;"
                                        " touch /proc/sys/vm/x 2> /out/kernel-err; echo $? > /out/kernel;"
                                        " touch " +
                                        victim_.path() +
                                        "/made-in-tmpfs; echo $? > /out/tmpfs;"
                                        " cat " +
                                        victim_.path() +
                                        "/sub/marker > /out/bound 2>&1;"
                                        " touch " +
                                        victim_.path() + "/sub/x 2>/out/ro-err; echo $? > /out/ro",
                                    "", tables),
                            60);
    SCOPED_TRACE(r.out);
    expect_victim_untouched();
    EXPECT_EQ(snapshot(src_dir), src_before);
    EXPECT_EQ(read_file(src_file), "declared\n");
    EXPECT_EQ(snapshot(rootfs_ + victim_.path()), in_tree_before);
    ASSERT_EQ(r.exit_code, 0);
    // The bind went on the container's own file in /proc, which is still read-only.
    EXPECT_EQ(out("trigger-read"), "declared\n");
    EXPECT_NE(out("sysrq"), "0\n");
    EXPECT_TRUE(contains(out("sysrq-err"), "Read-only file system")) << out("sysrq-err");
    // A tmpfs on /proc/sys/vm: the read-only copy of /proc/sys covers it too.
    EXPECT_NE(out("kernel"), "0\n") << "a tmpfs under /proc/sys made it writable";
    // The links to host paths meant the image's own directory of that name.
    EXPECT_EQ(out("tmpfs"), "0\n");
    EXPECT_EQ(out("bound"), "declared dir\n");
    EXPECT_NE(out("ro"), "0\n");
    EXPECT_TRUE(contains(out("ro-err"), "Read-only file system")) << out("ro-err");
}

// Numeric users and ids at the edges of uid_t. Each declaration is refused with an error that names
// the id, or runs with exactly that id; none may run as root by overflow (uid_t(-1) is "leave
// unchanged" to setresuid, and 2^32 truncates to 0).
TEST_F(ImageHostile, NumericUsersAndIdOverflowNeverGiveRoot) {
    write_file(rootfs_ + "/etc/passwd",
               "root:x:0:0:root:/root:/bin/sh\n"
               "10:x:0:0:named with digits:/root:/bin/sh\n"
               "0x0:x:1000:1000:named like hex:/home/app:/bin/sh\n"
               "minus:x:4294967295:4294967295:uid -1:/:/bin/sh\n"
               "wrap:x:4294967296:4294967296:uid 2^32:/:/bin/sh\n"
               "wrapgid:x:1000:4294967296:gid 2^32:/:/bin/sh\n"
               "app:x:1000:1000:app:/home/app:/bin/sh\n");
    write_file(rootfs_ + "/etc/group",
               "root:x:0:\n"
               "app:x:1000:\n"
               "wrapgroup:x:4294967296:app\n"
               "minusgroup:x:4294967295:app\n");
    struct Case {
        std::string user;
        std::string uid, gid;  // expected; empty: refused
        std::string refusal;   // a word the refusal names
    };
    const std::vector<Case> cases = {
        {"4294967295", "", "", "4294967295"},
        {"4294967296", "", "", "4294967296"},
        {"18446744073709551616", "", "", "18446744073709551616"},
        {"1000000000000", "", "", "1000000000000"},
        {"-1", "", "", "-1"},
        {"0x10", "", "", "0x10"},
        {"1000:4294967295", "", "", "4294967295"},
        {"minus", "", "", "minus"},
        {"wrap", "", "", "wrap"},
        {"wrapgid", "", "", "wrapgid"},
        {"app:wrapgroup", "", "", "wrapgroup"},
        {"app:minusgroup", "", "", "minusgroup"},
        {"65536:65536", "65536", "65536", ""},
        {"2147483648", "2147483648", "0", ""},
        {"4294967294:4294967294", "4294967294", "4294967294", ""},
        {"10", "10", "0", ""},        // a number is a uid even when an entry is named so (CVE-2016-3697)
        {"0x0", "", "", "0x0"},       // not a valid account name in a declaration (CVE-2020-13776)
        {"app", "1000", "1000", ""},  // the groups with overflowing gids are not joined
    };
    for (const auto& c : cases) {
        SCOPED_TRACE("user = " + c.user);
        clear_out();
        RunResult r = berth_run(declare(name("u"),
                                        "grep -E '^(Uid|Gid|Groups):' /proc/self/status > /out/status;"
                                        " id > /out/id 2>&1",
                                        "user = \"" + c.user + "\"\n"),
                                60);
        SCOPED_TRACE(r.out);
        std::string status = out("status");
        if (c.uid.empty()) {
            EXPECT_NE(r.exit_code, 0) << "accepted; inside: " << status;
            EXPECT_EQ(status, "") << "the payload ran";
            EXPECT_TRUE(contains(r.out, c.refusal)) << "the refusal does not name '" << c.refusal << "'";
            continue;
        }
        ASSERT_EQ(r.exit_code, 0);
        const std::string& u = c.uid;
        const std::string& g = c.gid;
        EXPECT_TRUE(contains(status, "Uid:\t" + u + "\t" + u + "\t" + u + "\t" + u + "\n")) << status;
        EXPECT_TRUE(contains(status, "Gid:\t" + g + "\t" + g + "\t" + g + "\t" + g + "\n")) << status;
        EXPECT_FALSE(contains(status, "Groups:\t0")) << status;
        EXPECT_FALSE(contains(status, "4294967295")) << status;
    }
}

}  // namespace
