// basic/mount-util against real mounts (root): paths with spaces, bind mounts within one file
// system, and btrfs subvolumes (their own st_dev, but not mounts).
#include "basic/mount-util.h"

#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "basic/fs-util.h"
#include "basic/probe-util.h"

using namespace berth;

namespace {

// A temporary directory; what the test mounted below it (recorded by the test, not found with
// the code under test) is detached on destruction, even when the test fails half-way.
struct Scratch {
    std::string path;
    std::vector<std::string> mounted;
    Scratch() {
        char tmpl[] = "/tmp/berth-mount-util-XXXXXX";
        path = ::mkdtemp(tmpl);
    }
    ~Scratch() {
        for (auto it = mounted.rbegin(); it != mounted.rend(); ++it) ::umount2(it->c_str(), MNT_DETACH);
        (void)remove_tree(path);
    }
    int mount(const char* source, const std::string& target, const char* fstype, unsigned long flags,
              const char* data) {
        int r = ::mount(source, target.c_str(), fstype, flags, data);
        if (r == 0) mounted.push_back(target);
        return r;
    }
};

int run(const std::string& command) { return std::system(command.c_str()); }

}  // namespace

TEST(MountUtil, AMountPointWhosePathHasASpaceIsFoundUnescaped) {
    Scratch s;
    std::string dir = s.path + "/with space\tand tab";
    ASSERT_TRUE(mkdir_p(dir));
    ASSERT_EQ(s.mount("berth-test", dir, "tmpfs", 0, "size=1m"), 0) << strerror(errno);
    auto table = read_mount_table();
    ASSERT_TRUE(table) << table.error().what();
    auto it =
        std::find_if(table->begin(), table->end(), [&](const MountEntry& e) { return e.target == dir; });
    ASSERT_NE(it, table->end()) << "no mountinfo entry reads '" << dir << "'";
    EXPECT_EQ(it->fstype, "tmpfs");
    EXPECT_EQ(it->source, "berth-test");
    auto below = mounts_at_or_below(s.path);
    ASSERT_TRUE(below);
    EXPECT_EQ(*below, std::vector<std::string>{dir});
    EXPECT_TRUE(is_mount_point(dir));
}

TEST(MountUtil, MountsBelowAreDeepestFirstAndWholeComponentsOnly) {
    Scratch s;
    ASSERT_TRUE(mkdir_p(s.path + "/a"));
    ASSERT_TRUE(mkdir_p(s.path + "/ab"));
    ASSERT_EQ(s.mount("t", s.path + "/a", "tmpfs", 0, "size=1m"), 0);
    ASSERT_TRUE(mkdir_p(s.path + "/a/b"));
    ASSERT_EQ(s.mount("t", s.path + "/a/b", "tmpfs", 0, "size=1m"), 0);
    ASSERT_EQ(s.mount("t", s.path + "/ab", "tmpfs", 0, "size=1m"), 0);
    auto below = mounts_at_or_below(s.path + "/a/");
    ASSERT_TRUE(below);
    EXPECT_EQ(*below, (std::vector<std::string>{s.path + "/a/b", s.path + "/a"}));
}

TEST(MountUtil, ABindMountWithinOneFileSystemIsAMountPoint) {
    // Same st_dev on both sides: a st_dev comparison calls this "not a mount".
    Scratch s;
    std::string dir = s.path + "/bound";
    ASSERT_TRUE(mkdir_p(dir));
    EXPECT_FALSE(is_mount_point(dir));
    ASSERT_EQ(s.mount(dir.c_str(), dir, nullptr, MS_BIND, nullptr), 0) << strerror(errno);
    struct stat a {
    }, b{};
    ASSERT_EQ(::stat(dir.c_str(), &a), 0);
    ASSERT_EQ(::stat((dir + "/..").c_str(), &b), 0);
    ASSERT_EQ(a.st_dev, b.st_dev);
    EXPECT_TRUE(is_mount_point(dir));
    EXPECT_FALSE(is_mount_point(s.path + "/missing"));
}

TEST(MountUtil, ABtrfsSubvolumeIsNotAMountPoint) {
    if (::access("/usr/sbin/mkfs.btrfs", X_OK) != 0 && ::access("/sbin/mkfs.btrfs", X_OK) != 0)
        GTEST_SKIP() << "mkfs.btrfs is not installed on this host";
    Scratch s;
    std::string image = s.path + "/btrfs.img", mnt = s.path + "/mnt";
    ASSERT_TRUE(mkdir_p(mnt));
    ASSERT_EQ(run("truncate -s 128M '" + image + "' && mkfs.btrfs -q '" + image + "' >/dev/null"), 0);
    // -o loop sets LO_FLAGS_AUTOCLEAR: the loop device goes with the last unmount.
    if (run("mount -o loop '" + image + "' '" + mnt + "' 2>/dev/null") != 0)
        GTEST_SKIP() << "cannot mount a loop-backed btrfs here (no loop devices or no btrfs module)";
    s.mounted.push_back(mnt);
    std::string sub = mnt + "/subvolume";
    ASSERT_EQ(run("btrfs subvolume create '" + sub + "' >/dev/null"), 0);
    struct stat a {
    }, b{};
    ASSERT_EQ(::stat(sub.c_str(), &a), 0);
    ASSERT_EQ(::stat(mnt.c_str(), &b), 0);
    ASSERT_NE(a.st_dev, b.st_dev) << "btrfs gives a subvolume its own st_dev";
    EXPECT_TRUE(is_mount_point(mnt));
    EXPECT_FALSE(is_mount_point(sub));
    auto below = mounts_at_or_below(s.path);
    ASSERT_TRUE(below);
    EXPECT_EQ(*below, std::vector<std::string>{mnt});
}

TEST(ProbeUtil, TheFileSystemIsReadFromTheSuperblock) {
    Scratch s;
    std::string img = s.path + "/fs.img";
    ASSERT_EQ(run("truncate -s 128M '" + img + "'"), 0);
    auto none = probe_filesystem(img);
    ASSERT_TRUE(none) << none.error().what();
    EXPECT_EQ(*none, "");
    ASSERT_EQ(run("mkfs.ext4 -q -F '" + img + "'"), 0);
    EXPECT_EQ(probe_filesystem(img).value_or("?"), "ext4");
    if (run("mkfs.btrfs -q -f '" + img + "' >/dev/null 2>&1") == 0) {
        EXPECT_EQ(probe_filesystem(img).value_or("?"), "btrfs");
    }
    auto missing = probe_filesystem(s.path + "/missing");
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().code, ENOENT);
}
