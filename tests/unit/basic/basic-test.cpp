#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "basic/fs-util.h"
#include "basic/result.h"
#include "basic/string-util.h"

using namespace berth;

namespace {
Result<int> fails_with_eperm() { return fail(EPERM, "mount '{}'", "/proc"); }
Result<int> wraps() { return BERTH_TRY_CTX(fails_with_eperm(), "start 'web'"); }

struct TempDir {
    std::string path;
    TempDir() {
        char tmpl[] = "/tmp/berth-basic-test-XXXXXX";
        path = ::mkdtemp(tmpl);
    }
    ~TempDir() { (void)remove_tree(path); }
};
}  // namespace

TEST(Result, ErrorsReadOuterToInnerWithErrnoTextLast) {
    auto r = wraps();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, EPERM);
    EXPECT_EQ(r.error().what(), "start 'web': mount '/proc': Operation not permitted");
}

TEST(Result, NonSystemErrorsHaveNoErrnoSuffix) {
    Error e{0, "bad key"};
    EXPECT_EQ(e.what(), "bad key");
}

TEST(FsUtil, AtomicWriteReplacesContentAndLeavesNoTemporaryFiles) {
    TempDir dir;
    std::string file = dir.path + "/meta.json";
    ASSERT_TRUE(write_file_atomic(file, "old"));
    ASSERT_TRUE(write_file_atomic(file, "new", 0600));
    EXPECT_EQ(*read_file(file), "new");
    struct stat st {};
    ASSERT_EQ(::stat(file.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    int entries = 0;
    DIR* d = opendir(dir.path.c_str());
    while (auto* ent = readdir(d)) entries += ent->d_name[0] != '.';
    closedir(d);
    EXPECT_EQ(entries, 1);
}

TEST(FsUtil, RemoveTreeDeletesNestedContentButNotThroughSymlinks) {
    TempDir outside, dir;
    ASSERT_TRUE(write_file(outside.path + "/keep", "x"));
    ASSERT_TRUE(mkdir_p(dir.path + "/a/b/c"));
    ASSERT_TRUE(write_file(dir.path + "/a/b/c/f", "y"));
    ASSERT_EQ(::symlink(outside.path.c_str(), (dir.path + "/a/link").c_str()), 0);
    ASSERT_TRUE(remove_tree(dir.path + "/a"));
    EXPECT_FALSE(path_exists(dir.path + "/a"));
    EXPECT_TRUE(path_exists(outside.path + "/keep"));
}

TEST(FsUtil, MkdirPMakesEveryMissingComponentAndRefusesAFileInTheWay) {
    TempDir dir;
    ASSERT_TRUE(mkdir_p(dir.path + "/x/y/z/", 0700));  // trailing slash, three missing levels
    EXPECT_TRUE(is_directory(dir.path + "/x/y/z"));
    struct stat st {};
    ASSERT_EQ(::stat((dir.path + "/x/y").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0700u);       // the mode applies to the parents it made too
    EXPECT_TRUE(mkdir_p(dir.path + "/x/y/z"));  // already there: fine
    ASSERT_TRUE(write_file(dir.path + "/file", "x"));
    auto over_file = mkdir_p(dir.path + "/file");
    ASSERT_FALSE(over_file);
    EXPECT_EQ(over_file.error().code, ENOTDIR);
    auto under_file = mkdir_p(dir.path + "/file/sub");
    ASSERT_FALSE(under_file);
    EXPECT_EQ(under_file.error().code, ENOTDIR);
    EXPECT_FALSE(mkdir_p(""));
}

TEST(FsUtil, NormalizeAbsolutePathNeverClimbsAboveRoot) {
    EXPECT_EQ(normalize_absolute_path("/a/./b//c/../d"), "/a/b/d");
    EXPECT_EQ(normalize_absolute_path("/../../etc"), "/etc");
    EXPECT_EQ(normalize_absolute_path("relative/x"), "");
    EXPECT_EQ(normalize_absolute_path("/"), "/");
}

TEST(FsUtil, SplitParentGivesTheNormalisedParentAndLastComponent) {
    EXPECT_EQ(split_parent("/a/b/upper/"), std::make_pair(std::string("/a/b"), std::string("upper")));
    EXPECT_EQ(split_parent("/a//./b"), std::make_pair(std::string("/a"), std::string("b")));
    EXPECT_EQ(split_parent("/a"), std::make_pair(std::string("/"), std::string("a")));
    EXPECT_EQ(split_parent("/"), std::make_pair(std::string(), std::string()));
    EXPECT_EQ(split_parent("rel/x"), std::make_pair(std::string(), std::string()));
}

TEST(FsUtil, OpenInRootKeepsSymlinksInsideTheRoot) {
    TempDir root;
    ASSERT_TRUE(mkdir_p(root.path + "/etc"));
    ASSERT_TRUE(write_file(root.path + "/etc/passwd", "inside"));
    ASSERT_EQ(::symlink("/../../../../etc", (root.path + "/escape").c_str()), 0);
    auto rootfd = open_path(root.path, O_DIRECTORY);
    ASSERT_TRUE(rootfd);
    auto fd = open_in_root(rootfd->get(), "escape/passwd", O_RDONLY);
    ASSERT_TRUE(fd) << fd.error().what();
    char buf[16] = {};
    ASSERT_GT(::read(fd->get(), buf, sizeof buf - 1), 0);
    EXPECT_STREQ(buf, "inside");
}

// Issue #16: error replies echoed megabytes of client input and raw control characters.
TEST(StringUtil, SanitizeMessageCutsLongQuotedPartsAndEscapesControlsAndBadUtf8) {
    EXPECT_EQ(sanitize_message("image 'busybox:1' not found"), "image 'busybox:1' not found");
    EXPECT_EQ(sanitize_message("name 'a\nb\x1b[31m' bad"), "name 'a\\nb\\x1b[31m' bad");
    EXPECT_EQ(sanitize_message("caf\xc3\xa9 \xff\xc3"), "caf\xc3\xa9 \\xff\\xc3");
    std::string cut = sanitize_message("image '" + std::string(10000, 'x') + "' not found", 256);
    EXPECT_EQ(cut, "image '" + std::string(256, 'x') + "...[9744 more bytes]' not found");
    EXPECT_LE(sanitize_message(std::string(100000, 'y')).size(), 4200u);
}

TEST(StringUtil, SplitJoinTrimAndStrictNumbers) {
    EXPECT_EQ(split("a,,b", ','), (std::vector<std::string>{"a", "b"}));
    EXPECT_EQ(split("a,,b", ',', true), (std::vector<std::string>{"a", "", "b"}));
    EXPECT_EQ(join({"x", "y"}, ", "), "x, y");
    EXPECT_EQ(trim("  hi \n"), "hi");
    EXPECT_EQ(parse_unsigned("42"), 42u);
    EXPECT_FALSE(parse_unsigned("-1"));
    EXPECT_FALSE(parse_unsigned("99999999999999999999999"));
    EXPECT_EQ(edit_distance("memory_max", "memroy_max"), 2u);
}

// issue #15: tables had fixed widths (NAME 30 or 40 characters) and broke on long names.
TEST(StringUtil, TablesSizeEachColumnToItsWidestCellWithA64CharacterNameAndALongTag) {
    const std::string name(64, 'n');
    const std::string tag = "registry.example.com/team/some-service-with-a-long-name:2024.12.05-build.1234";
    std::string t =
        render_table({"NAME", "IMAGE", "SIZE", "STATE"},
                     {{name, tag, "1.5M", "running"}, {"db", "pg:16", "812.3M", "inactive"}}, {2});
    auto lines = split(t, '\n');
    ASSERT_EQ(lines.size(), 3u);
    EXPECT_EQ(lines[0], "NAME" + std::string(62, ' ') + "IMAGE" + std::string(tag.size() - 5 + 2, ' ') +
                            "  SIZE  STATE");
    EXPECT_EQ(lines[1], name + "  " + tag + "    1.5M  running");
    EXPECT_EQ(lines[2], "db" + std::string(64, ' ') + "pg:16" + std::string(tag.size() - 5 + 2, ' ') +
                            "812.3M  inactive");
    EXPECT_EQ(display_width("caf\xc3\xa9"), 4u);
}
