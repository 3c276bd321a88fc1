// User namespaces with images (issue #15 item 5), through `berth run` as a user runs it, with the
// store embedded (no berthd) in a private directory that stays 0700, as /var/lib/berth is:
//   - an image container on the overlay and the btrfs backend with user_namespace = "pick": it
//     runs, sees the image's own owners (root's files as root, uid 1000's as 1000), writes to its
//     writable layer and finds the write on the next run; uid_map is the picked range; on disk the
//     store keeps the image's ids (unshifted: container root writes host uid 0, as for volumes);
//   - a layered image keeps its whiteouts and opaque directories (the store marks them with
//     trusted.overlay.* xattrs, which an overlay mounted inside the namespace would not read);
//   - a persistent `rootfs =` container with a fixed range, its layer in a 0700 state directory;
//   - the shipped examples configs/examples/batch.toml (as shipped) and db.toml (postgres, its
//     env file and its bridge replaced by a busybox test image and no network).
// Before the fix each of these failed to start: "mount overlay root '.../overlay/l/...':
// Permission denied" (the namespace's root cannot enter the 0700 store), the btrfs snapshot's
// bind likewise, the persistent layer in the 0700 state directory likewise.
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <regex>

#include "berth-harness.h"

namespace fs = std::filesystem;
using namespace berth::test;

namespace {

mode_t mode_of(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 ? st.st_mode & 07777 : 07777;
}

std::string owner_of(const std::string& path) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) < 0) return "<missing " + path + ">";
    return std::to_string(st.st_uid) + ":" + std::to_string(st.st_gid);
}

// The one file called `name` below `dir` (the store's layout is the backend's business).
std::string find_one(const std::string& dir, const std::string& name) {
    std::vector<std::string> found;
    for (const auto& e : fs::recursive_directory_iterator(dir, fs::directory_options::skip_permission_denied))
        if (e.path().filename() == name) found.push_back(e.path());
    return found.size() == 1 ? found[0] : "<" + std::to_string(found.size()) + " files named " + name + ">";
}

class UsernsImages : public ::testing::Test {
protected:
    void SetUp() override {
        BERTH_REQUIRE_ROOT();
        ASSERT_FALSE(dir_.path().empty());
        // dir_ stays 0700 (mkdtemp): the store, the state directory and the image's rootfs are
        // reachable for host root only, never for the namespace's root. Only /out is opened up.
        ASSERT_EQ(mode_of(dir_.path()), 0700u);
        ASSERT_FALSE(out_base_.path().empty());
        ::chmod(out_base_.path().c_str(), 0755);
        out_ = out_base_ / "out";
        fs::create_directories(out_);
        ::chmod(out_.c_str(), 0777);
        rootfs_ = dir_ / "rootfs";
        ASSERT_TRUE(make_busybox_rootfs(rootfs_));
        // What the tests and the shipped examples look for: a file of uid 1000, the "users" group
        // (batch.toml), postgres' data directory owned by 999 (db.toml).
        write_file(rootfs_ + "/owned-by-1000", "mine\n");
        ASSERT_EQ(::chown((rootfs_ + "/owned-by-1000").c_str(), 1000, 1000), 0);
        write_file(rootfs_ + "/etc/motd", "motd\n");
        write_file(rootfs_ + "/etc/group", read_file(rootfs_ + "/etc/group") + "users:x:100:\n");
        fs::create_directories(rootfs_ + "/var/lib/postgresql/data");
        ASSERT_EQ(::chown((rootfs_ + "/var/lib/postgresql/data").c_str(), 999, 999), 0);
        ::chmod((rootfs_ + "/var/lib/postgresql/data").c_str(), 0700);
        tarball_ = dir_ / "busybox.tar";
        ASSERT_EQ(0, std::system(("tar --numeric-owner -C " + rootfs_ + " -cf " + tarball_ + " .").c_str()));
        state_ = dir_ / "state";
        ::setenv("BERTH_STATE_DIR", state_.c_str(), 1);
        ::setenv("BERTH_STORAGE", "embedded", 1);
        ::setenv("BERTH_DAEMON_CONFIG", (dir_ / "no-berthd.toml").c_str(), 1);
        use_store("overlay", dir_ / "store");
    }

    void TearDown() override {
        for (const char* e : {"BERTH_STORAGE", "BERTH_STORE_ROOT", "BERTH_STORE_BACKEND",
                              "BERTH_DAEMON_CONFIG", "BERTH_STATE_DIR"})
            ::unsetenv(e);
        if (btrfs_mounted_) ::umount2(btrfs_mnt_.c_str(), MNT_DETACH);
    }

    void use_store(const std::string& backend, const std::string& root) {
        store_ = root;
        ::setenv("BERTH_STORE_ROOT", root.c_str(), 1);
        ::setenv("BERTH_STORE_BACKEND", backend.c_str(), 1);
    }

    // A btrfs file system on a loop file in dir_ (mount -o loop: the device goes with the mount).
    bool mount_btrfs() {
        if (std::system("command -v mkfs.btrfs >/dev/null") != 0) return false;
        btrfs_mnt_ = dir_ / "btrfs";
        fs::create_directories(btrfs_mnt_);
        std::string img = dir_ / "btrfs.img";
        EXPECT_EQ(
            0, std::system(("truncate -s 256M " + img + " && mkfs.btrfs -q " + img + " >/dev/null").c_str()));
        EXPECT_EQ(0, std::system(("mount -o loop " + img + " " + btrfs_mnt_).c_str()));
        btrfs_mounted_ = true;
        return true;
    }

    void import(const std::string& archive, const std::string& name) {
        RunResult r = run_capture({berth_exe(), "image", "import", archive, "--name", name}, 120);
        ASSERT_EQ(r.exit_code, 0) << r.out;
    }

    std::string name(const std::string& tag) const { return "uns" + tag + std::to_string(::getpid()); }

    // NAME.toml with [container] `container` (the command and more) and /out bound.
    std::string declare(const std::string& n, const std::string& container, const std::string& tables) {
        std::string path = dir_ / (n + ".toml");
        write_file(path, "[container]\n" + container + "\n[[mount]]\ntype = \"bind\"\nsource = \"" + out_ +
                             "\"\ntarget = \"/out\"\n" + tables);
        return path;
    }

    static std::string command(const std::string& script) {
        std::string quoted;
        for (char c : script) {
            if (c == '"' || c == '\\') quoted += '\\';
            quoted += c;
        }
        return "command = [\"/bin/sh\", \"-c\", \"" + quoted + "\"]\n";
    }

    std::string out(const std::string& file) { return read_file(out_ + "/" + file); }

    // The range `berth run` picked for container `n` and remembered, as uid_map shows it.
    std::string picked_map(const std::string& n) {
        std::string record = read_file(state_ + "/userns/" + n);
        std::smatch m;
        if (!std::regex_match(record, m, std::regex("([0-9]+) ([0-9]+)\n")))
            return "<record '" + record + ">";
        return "0 " + m[1].str() + " " + m[2].str();
    }

    static std::string squeeze(const std::string& s) {
        return std::regex_replace(s, std::regex("[ \t]+"), " ");
    }

    // Runs the persistent container `n` (`root`: its image or rootfs line) twice under `userns`
    // and checks what it sees and what it leaves in `on_disk` (the store, or the state directory),
    // which stays host root's alone. `map`: the expected uid_map; empty for the picked range.
    void run_persistent_twice(const std::string& n, const std::string& root, const std::string& userns,
                              const std::string& on_disk, std::string map = "") {
        const std::string script =
            "cat /proc/self/uid_map > /out/uid_map; cat /proc/self/gid_map > /out/gid_map;"
            " stat -c %u:%g /etc/passwd /home/app /owned-by-1000 > /out/owners;"
            " if [ -e /written ]; then stat -c %u:%g /written /written-1000 > /out/again; cat /written >> "
            "/out/again; exit 0; fi;"
            " echo hello > /written && touch /written-1000 && chown 1000:1000 /written-1000 &&"
            " echo more >> /etc/motd && cat /owned-by-1000 > /out/read-1000 &&"
            " stat -c %u:%g /written /written-1000 /etc/motd > /out/new-owners";
        std::string toml = declare(n, root + "\nuser = \"root\"\n" + command(script),
                                   "[security]\nuser_namespace = " + userns + "\n");
        RunResult r = berth_run(toml, 60);
        ASSERT_EQ(r.exit_code, 0) << r.out;
        if (map.empty()) map = picked_map(n);
        EXPECT_EQ(squeeze(out("uid_map")), " " + map + "\n");
        EXPECT_EQ(out("gid_map"), out("uid_map"));
        EXPECT_EQ(out("owners"), "0:0\n1000:1000\n1000:1000\n") << "the image's own owners inside";
        EXPECT_EQ(out("read-1000"), "mine\n");
        EXPECT_EQ(out("new-owners"), "0:0\n1000:1000\n0:0\n") << "writes in the writable layer";
        EXPECT_EQ(out("again"), "");
        // The next run finds the writes, with the same owners.
        r = berth_run(toml, 60);
        ASSERT_EQ(r.exit_code, 0) << r.out;
        EXPECT_EQ(out("again"), "0:0\n1000:1000\nhello\n");
        EXPECT_EQ(squeeze(out("uid_map")), " " + map + "\n") << "the range is kept";
        // On disk the writable layer holds the image's ids, unshifted, where only host root goes.
        EXPECT_EQ(owner_of(find_one(on_disk, "written")), "0:0");
        EXPECT_EQ(owner_of(find_one(on_disk, "written-1000")), "1000:1000");
        EXPECT_EQ(mode_of(on_disk), 0700u) << on_disk;
        for (const auto& e : fs::directory_iterator(on_disk)) {
            if (e.is_directory()) {
                EXPECT_EQ(mode_of(e.path()) & 0077, 0u) << e.path();
            }
        }
        EXPECT_FALSE(fs::exists(rootfs_ + "/written"));
    }

    TempDir dir_{"berth-userns"};
    TempDir out_base_{"berth-userns-out"};
    std::string out_, rootfs_, tarball_, state_, store_, btrfs_mnt_;
    bool btrfs_mounted_ = false;
};

TEST_F(UsernsImages, AnImageOnTheOverlayBackendRunsWithItsOwnIdsAndKeepsItsWrites) {
    import(tarball_, "ns:1");
    run_persistent_twice(name("o"), "image = \"ns:1\"", "\"pick\"", store_);
}

TEST_F(UsernsImages, AnImageOnTheBtrfsBackendRunsWithItsOwnIdsAndKeepsItsWrites) {
    if (!mount_btrfs()) GTEST_SKIP() << "mkfs.btrfs missing (apt-get install btrfs-progs)";
    use_store("btrfs", btrfs_mnt_ + "/store");
    import(tarball_, "ns:1");
    run_persistent_twice(name("b"), "image = \"ns:1\"", "\"pick\"", store_);
}

// test-images' "layered": a second layer whites out /etc/motd and makes /data opaque (a, b of the
// base layer hidden, c new). Ephemeral: the writable layer is a tmpfs of the container's own.
TEST_F(UsernsImages, ALayeredImageKeepsItsWhiteoutsAndOpaqueDirectoriesOnEitherBackend) {
    const std::string images = build_root() + "/test-images/store";
    RunResult made = run_capture({"bash", source_root() + "/tests/lib/make-test-images.sh", images}, 300);
    ASSERT_EQ(made.exit_code, 0) << made.out;
    const std::string script =
        "ls /data > /out/data; ls /etc/motd 2>/dev/null; echo $? > /out/motd; cat /added/file > /out/added;"
        " stat -c %u:%g /home/app > /out/home; id -u > /out/uid;"
        " touch /home/app/x && stat -c %u /home/app/x > /out/made;"
        " awk '$5 == \"/\"' /proc/self/mountinfo > /out/root";
    bool have_btrfs = mount_btrfs();
    for (const std::string backend : {"overlay", "btrfs"}) {
        SCOPED_TRACE(backend);
        if (backend == "btrfs" && !have_btrfs)
            GTEST_SKIP() << "mkfs.btrfs missing (apt-get install btrfs-progs): the overlay half ran";
        use_store(backend, backend == "btrfs" ? btrfs_mnt_ + "/store" : std::string(dir_ / "store"));
        import(images + "/layered-oci.tar", "layered:1");
        for (const char* f : {"data", "motd", "added", "home", "uid", "made", "root", "ro"})
            fs::remove(out_ + "/" + f);
        std::string toml = declare(name("l" + backend.substr(0, 1)),
                                   "image = \"layered:1\"\nephemeral = true\n" + command(script),
                                   "[security]\nuser_namespace = \"pick\"\n");
        RunResult r = berth_run(toml, 60);
        ASSERT_EQ(r.exit_code, 0) << r.out;
        EXPECT_EQ(out("data"), "c\n") << "the opaque directory hides the base layer's files";
        EXPECT_EQ(out("motd"), "1\n") << "the whited-out file is gone";
        EXPECT_EQ(out("added"), "added\n");
        EXPECT_EQ(out("uid"), "1000\n");  // the image's User = app
        EXPECT_EQ(out("home"), "1000:1000\n");
        EXPECT_EQ(out("made"), "1000\n");
        EXPECT_NE(out("root").find("nodev"), std::string::npos) << out("root");
        // read_only: the assembled root is remounted read-only inside.
        toml = declare(name("l" + backend.substr(0, 1)),
                       "image = \"layered:1\"\nephemeral = true\nread_only = true\n" +
                           command("touch /home/app/y 2>/dev/null; echo $? > /out/ro"),
                       "[security]\nuser_namespace = \"pick\"\n");
        r = berth_run(toml, 60);
        ASSERT_EQ(r.exit_code, 0) << r.out;
        EXPECT_EQ(out("ro"), "1\n");
    }
}

// A `rootfs =` container keeps its writable layer in the state directory (0700, as tmpfiles makes
// /var/lib/berth), under a fixed range.
TEST_F(UsernsImages, APersistentRootfsContainerWithAFixedRangeRunsFromTheClosedStateDirectory) {
    const std::string n = name("r");
    run_persistent_twice(n, "rootfs = \"" + rootfs_ + "\"", "{ uid = 589824, size = 65536 }", state_,
                         "0 589824 65536");
    EXPECT_EQ(owner_of(state_ + "/rootfs-layers/" + n + "/upper/written"), "0:0");
}

// configs/examples/batch.toml as shipped: busybox:latest, ephemeral, user nobody with group users,
// resource limits, user_namespace = "pick".
TEST_F(UsernsImages, TheShippedBatchExampleRuns) {
    import(tarball_, "busybox:latest");
    const std::string toml = dir_ / (name("batch") + ".toml");
    fs::copy_file(source_root() + "/configs/examples/batch.toml", toml);
    RunResult r = berth_run(toml, 60);
    ASSERT_EQ(r.exit_code, 0) << r.out;
    EXPECT_NE(r.out.find("batch done"), std::string::npos) << r.out;
}

// configs/examples/db.toml with what this host lacks replaced: busybox for postgres:15 (the test
// image has postgres' data directory owned by 999), no environment file, no bridge br0. The rest as
// shipped: user 999:999, the named volume, the tmpfs with mode 2775, the fixed range.
TEST_F(UsernsImages, TheShippedDbExampleRunsWithABusyboxImageForPostgres) {
    import(tarball_, "busybox:latest");
    std::string text = read_file(source_root() + "/configs/examples/db.toml");
    auto replace = [&](const std::string& from, const std::string& to) {
        auto at = text.find(from);
        ASSERT_NE(at, std::string::npos) << from;
        text.replace(at, from.size(), to);
    };
    const std::string script =
        "id -u > /out/db-uid; cat /proc/self/uid_map > /out/db-map; stat -c %a /run/postgresql > "
        "/out/db-tmpfs;"
        " echo row > /var/lib/postgresql/data/row && stat -c %u:%g /var/lib/postgresql/data/row > "
        "/out/db-row";
    replace("image = \"postgres:15\"\n", "image = \"busybox:latest\"\n" + command(script));
    replace("environment_files = [\"/etc/berth/db.env\"]\n", "");
    // nofile = 65536 raises the hard limit where it is lower, which takes CAP_SYS_RESOURCE; a CI
    // sandbox without it (hard limit 20000 here) gets its own hard limit instead.
    struct rlimit nofile {};
    ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &nofile), 0);
    if (nofile.rlim_max < 65536) replace("nofile = 65536", "nofile = " + std::to_string(nofile.rlim_max));
    replace(text.substr(text.find("[network]"), text.find("[resources]") - text.find("[network]")),
            "[network]\nmode = \"none\"\n\n");
    replace("[[mount]]\ntype = \"volume\"", "[[mount]]\ntype = \"bind\"\nsource = \"" + out_ +
                                                "\"\ntarget = \"/out\"\n\n[[mount]]\ntype = \"volume\"");
    const std::string toml = dir_ / (name("db") + ".toml");
    write_file(toml, text);
    RunResult r = berth_run(toml, 60);
    ASSERT_EQ(r.exit_code, 0) << r.out << "\n" << text;
    EXPECT_EQ(out("db-uid"), "999\n");
    EXPECT_EQ(squeeze(out("db-map")), " 0 524288 65536\n");
    EXPECT_EQ(out("db-tmpfs"), "2775\n");
    EXPECT_EQ(out("db-row"), "999:999\n");
    EXPECT_EQ(owner_of(find_one(store_, "row")), "999:999");  // the volume is idmapped, not chowned
    EXPECT_EQ(mode_of(store_), 0700u);
}

}  // namespace
