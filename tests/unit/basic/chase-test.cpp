#include "basic/chase.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "basic/fs-util.h"

using namespace berth;

namespace {

struct Tree {
    std::string path;
    UniqueFd fd;
    Tree() {
        char tmpl[] = "/tmp/berth-chase-test-XXXXXX";
        path = ::mkdtemp(tmpl);
        (void)mkdir_p(path + "/root/etc");
        (void)write_file(path + "/root/etc/hostname", "inside\n");
        (void)write_file(path + "/hostname", "outside\n");
        (void)write_file(path + "/root/hostname", "root level\n");
        // An absolute symlink and a ".." walk that would leave root/ on the host.
        (void)::symlink("/etc/hostname", (path + "/root/abs").c_str());
        (void)::symlink("../../hostname", (path + "/root/etc/up").c_str());
        fd.reset(::open((path + "/root").c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    }
    ~Tree() { (void)remove_tree(path); }
};

std::string content(const Result<UniqueFd>& fd) {
    if (!fd) return "error: " + fd.error().what();
    auto text = read_file(fd_path(fd->get()));
    return text ? *text : "error: " + text.error().what();
}

}  // namespace

TEST(Chase, InRootKeepsAbsoluteSymlinksAndDotDotInsideTheRoot) {
    Tree t;
    ASSERT_TRUE(t.fd);
    EXPECT_EQ(content(chase(t.fd.get(), "abs", O_RDONLY, Resolve::InRoot)), "inside\n");
    // "../../hostname" from etc/ stops at the root: root/hostname, never the host's one above.
    EXPECT_EQ(content(chase(t.fd.get(), "etc/up", O_RDONLY, Resolve::InRoot)), "root level\n");
    EXPECT_EQ(content(chase(t.fd.get(), "/../../etc/hostname", O_RDONLY, Resolve::InRoot)), "inside\n");
}

TEST(Chase, BeneathRefusesEveryWayOut) {
    Tree t;
    auto up = chase(t.fd.get(), "../hostname", O_RDONLY, Resolve::Beneath);
    ASSERT_FALSE(up);
    EXPECT_EQ(up.error().code, EXDEV);
    EXPECT_EQ(up.error().what(), "open '../hostname': Invalid cross-device link");
    auto link = chase(t.fd.get(), "etc/up", O_RDONLY, Resolve::Beneath);
    ASSERT_FALSE(link);
    EXPECT_EQ(link.error().code, EXDEV);
}

TEST(Chase, NoSymlinksRefusesASymlinkEvenOneThatStaysInside) {
    Tree t;
    ::symlink("hostname", (t.path + "/root/etc/alias").c_str());
    auto r = chase(t.fd.get(), "etc/alias", O_RDONLY, kResolveStrictlyBeneath);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, ELOOP);
    EXPECT_EQ(content(chase(t.fd.get(), "etc/hostname", O_RDONLY, kResolveStrictlyBeneath)), "inside\n");
}

TEST(Chase, NoMagicLinksRefusesProcFdLinks) {
    Tree t;
    UniqueFd proc(::open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC));
    ASSERT_TRUE(proc);
    std::string self_fd = "self/fd/" + std::to_string(t.fd.get());
    EXPECT_TRUE(chase(proc.get(), self_fd, O_PATH, Resolve::None));
    auto r = chase(proc.get(), self_fd, O_PATH, Resolve::NoMagicLinks);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, ELOOP);
}

TEST(Chase, CreatesWithTheModeAndAlwaysSetsCloexec) {
    Tree t;
    auto fd = chase(t.fd.get(), "etc/new", O_WRONLY | O_CREAT | O_EXCL, kResolveStrictlyBeneath, 0600);
    ASSERT_TRUE(fd) << fd.error().what();
    struct stat st {};
    ASSERT_EQ(::fstat(fd->get(), &st), 0);
    EXPECT_EQ(
        st.st_mode & 07777, 0600u & ~[] {
            mode_t m = ::umask(0);
            ::umask(m);
            return m;
        }());
    EXPECT_TRUE(::fcntl(fd->get(), F_GETFD) & FD_CLOEXEC);
    EXPECT_EQ(chase_raw(t.fd.get(), "missing", O_RDONLY, Resolve::InRoot), -1);
    EXPECT_EQ(errno, ENOENT);
}

TEST(Chase, ResolveFlagsCombineAsASet) {
    constexpr Resolve r = Resolve::InRoot | Resolve::NoMagicLinks;
    static_assert(has(r, Resolve::InRoot) && has(r, Resolve::NoMagicLinks) && !has(r, Resolve::Beneath));
    static_assert(static_cast<uint64_t>(kResolveStrictlyBeneath) ==
                  (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS));
    SUCCEED();
}
