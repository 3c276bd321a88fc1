// The cgroup2-root finder against mountinfo fixtures (tests/data/mountinfo: a hybrid host like
// this CI machine, a pure cgroup v2 host like Debian 12's default, a cgroup2 hidden under a tmpfs,
// none at all) and against this machine's own mounts.
#include "basic/cgroup-util.h"

#include <gtest/gtest.h>
#include <linux/magic.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <utility>

#include "berth-config.h"

namespace berth {
namespace {

std::string fixture(const std::string& name) {
    return std::string(BERTH_SOURCE_ROOT) + "/tests/data/mountinfo/" + name;
}

// hybrid: v1 controllers under a tmpfs at /sys/fs/cgroup, cgroup2 at /sys/fs/cgroup/unified;
// unified: Debian 12's default; hidden: a tmpfs mounted over a cgroup2 at /sys/fs/cgroup hides it,
// and the only visible one is at a path with a space (written "\040" in mountinfo).
TEST(Cgroup2Mount, IsTheVisibleCgroup2MountOfEachKindOfHost) {
    const std::pair<const char*, const char*> cases[] = {
        {"hybrid", "/sys/fs/cgroup/unified"},
        {"unified", "/sys/fs/cgroup"},
        {"hidden", "/run/my cgroups"},
    };
    for (const auto& [name, expected] : cases) {
        auto m = find_cgroup2_mount(fixture(name));
        ASSERT_TRUE(m) << name << ": " << m.error().what();
        EXPECT_EQ(*m, expected) << name;
    }
}

TEST(Cgroup2Mount, WithoutCgroup2IsAnErrorThatNamesTheFile) {
    auto m = find_cgroup2_mount(fixture("none"));
    ASSERT_FALSE(m);
    EXPECT_EQ(m.error().code, ENOENT);
    EXPECT_NE(std::string(m.error().what()).find(fixture("none")), std::string::npos) << m.error().what();
}

TEST(Cgroup2Mount, AMissingMountinfoIsAnError) { EXPECT_FALSE(find_cgroup2_mount(fixture("no-such-file"))); }

TEST(Cgroup2Mount, OnThisMachineIsACgroup2FileSystem) {
    auto m = cgroup2_mount_point();
    if (!m && m.error().code == ENOENT)
        GTEST_SKIP() << "this machine has no cgroup2 mount: " << m.error().what();
    ASSERT_TRUE(m) << m.error().what();
    struct statfs fs {};
    ASSERT_EQ(statfs(m->c_str(), &fs), 0) << *m;
    EXPECT_EQ(fs.f_type, CGROUP2_SUPER_MAGIC) << *m;
}

// Debian 12's layout for real: in a private mount namespace, cgroup2 mounted over /sys/fs/cgroup
// (hiding a hybrid host's v1 tmpfs and its unified/ directory): the finder must read it there. (The
// forked child asks find_cgroup2_mount directly: cgroup2_mount_point() remembers its answer, and
// the child inherits what an earlier test in this process found.)
TEST(Cgroup2Mount, InAPureCgroupV2MountNamespaceIsSysFsCgroup) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (a private mount namespace with cgroup2 mounted)";
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        if (::unshare(CLONE_NEWNS) != 0 ||
            ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
            ::mount("cgroup2", "/sys/fs/cgroup", "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0)
            ::_exit(2);
        auto m = find_cgroup2_mount("/proc/self/mountinfo");
        ::_exit(m && *m == "/sys/fs/cgroup" ? 0 : 1);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
    ASSERT_NE(WEXITSTATUS(status), 2) << "could not set up the namespace";
    EXPECT_EQ(WEXITSTATUS(status), 0) << "cgroup2_mount_point() is not /sys/fs/cgroup there";
}

}  // namespace
}  // namespace berth
