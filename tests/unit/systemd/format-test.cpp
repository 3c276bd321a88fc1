#include <gtest/gtest.h>
#include <unistd.h>

#include "basic/fs-util.h"
#include "systemd/cgroup-tree.h"
#include "systemd/systemd1.h"
#include "test-util.h"

using namespace berth;
using namespace berth::systemd;

TEST(ContainerUnit, NamesTheTemplateInstanceAndParsesItBack) {
    EXPECT_EQ(container_unit("web"), "berth@web.service");
    EXPECT_EQ(container_name_of_unit("berth@web.service"), "web");
    EXPECT_EQ(container_name_of_unit("berth@a.b-c.service"), "a.b-c");
    EXPECT_EQ(container_name_of_unit("berth@.service"), "");
    EXPECT_EQ(container_name_of_unit("berthd.service"), "");
    EXPECT_EQ(container_name_of_unit("berth@web.socket"), "");
}

TEST(FormatAge, ReadsLikeSystemctl) {
    const uint64_t s = 1000000ULL, now = 1700000000ULL * s;
    EXPECT_EQ(format_age(0, now), "-");
    EXPECT_EQ(format_age(now - 3 * s, now), "3s ago");
    EXPECT_EQ(format_age(now - 300 * s, now), "5min ago");
    EXPECT_EQ(format_age(now - 7200 * s, now), "2h ago");
    EXPECT_EQ(format_age(now - 7380 * s, now), "2h 3min ago");
    EXPECT_EQ(format_age(now - 86400 * s, now), "1 day ago");
    EXPECT_EQ(format_age(now - 4 * 86400 * s, now), "4 days ago");
    EXPECT_EQ(format_age(now + 5 * s, now), "0s ago");  // clock skew never goes negative
}

TEST(CgroupTree, ReadsProcessesOfEverySubgroupInNameOrder) {
    test::TempDir cg("berth-cgtree"), proc("berth-proc");
    auto svc = cg / "berth.slice/berth@web.service";
    ASSERT_TRUE(mkdir_p(svc + "/supervisor"));
    ASSERT_TRUE(mkdir_p(svc + "/payload"));
    ASSERT_TRUE(write_file(svc + "/cgroup.procs", ""));
    ASSERT_TRUE(write_file(svc + "/supervisor/cgroup.procs", "12\n"));
    ASSERT_TRUE(write_file(svc + "/payload/cgroup.procs", "13\n14\n"));
    ASSERT_TRUE(mkdir_p(proc / "12"));
    ASSERT_TRUE(mkdir_p(proc / "13"));
    ASSERT_TRUE(write_file(proc / "12/cmdline", std::string("berth\0run\0web\0", 14)));
    ASSERT_TRUE(write_file(proc / "13/cmdline", std::string("httpd\0-f\0", 9)));
    auto tree = read_cgroup_tree(cg.path(), "/berth.slice/berth@web.service", proc.path());
    ASSERT_TRUE(tree) << tree.error().what();
    EXPECT_TRUE(tree->pids.empty());
    ASSERT_EQ(tree->children.size(), 2u);
    EXPECT_EQ(tree->children[0].path, "/berth.slice/berth@web.service/payload");
    EXPECT_EQ(tree->children[0].pids, (std::vector<uint32_t>{13, 14}));
    EXPECT_EQ(tree->children[1].commands, (std::vector<std::string>{"berth run web"}));
    auto lines = render_cgroup_tree(*tree);
    std::vector<std::string> expected{
        "CGroup: /berth.slice/berth@web.service",
        "  ├─payload",
        "  │ ├─13 httpd -f",
        "  │ └─14 (gone)",
        "  └─supervisor",
        "    └─12 berth run web",
    };
    EXPECT_EQ(lines, expected);
}

TEST(CgroupTree, RefusesARelativeControlGroupAndReportsAMissingOne) {
    test::TempDir cg("berth-cgtree");
    EXPECT_FALSE(read_cgroup_tree(cg.path(), "relative"));
    auto missing = read_cgroup_tree(cg.path(), "/nope.service");
    ASSERT_FALSE(missing);
    EXPECT_NE(missing.error().what().find("/nope.service"), std::string::npos);
}

// `berth list` describes units PID 1 has not loaded from the unit search path (asking would make
// PID 1 load each one and collect it again): the same answer systemd would give after loading it.
TEST(UnloadedUnitState, ReadsTheSearchPathAsSystemdWould) {
    test::TempDir root("berth-unloaded");
    auto make = [&](const std::string& dir, const std::string& name) {
        ASSERT_EQ(::system(("mkdir -p '" + root.path() + dir + "'").c_str()), 0);
        ASSERT_TRUE(write_file(root.path() + dir + "/" + name, "[Service]\n"));
    };
    auto mask = [&](const std::string& dir, const std::string& name) {
        ASSERT_EQ(::system(("mkdir -p '" + root.path() + dir + "'").c_str()), 0);
        ASSERT_EQ(::symlink("/dev/null", (root.path() + dir + "/" + name).c_str()), 0);
    };
    // Declared after the last daemon-reload: the generator has not written its unit yet.
    auto none = unloaded_unit_state("berth@new.service", root.path());
    EXPECT_EQ(none.load_state, "not-found");
    EXPECT_EQ(none.active_state, "inactive");
    EXPECT_EQ(none.sub_state, "dead");
    EXPECT_EQ(none.id, "berth@new.service");
    // Written by the generator.
    make("/run/systemd/generator", "berth@web.service");
    auto web = unloaded_unit_state("berth@web.service", root.path());
    EXPECT_EQ(web.load_state, "loaded");
    EXPECT_EQ(web.fragment_path, "/run/systemd/generator/berth@web.service");
    // An admin's copy in /etc wins over the generator's.
    make("/etc/systemd/system", "berth@web.service");
    EXPECT_EQ(unloaded_unit_state("berth@web.service", root.path()).fragment_path,
              "/etc/systemd/system/berth@web.service");
    // Masked in /etc, even though the generator wrote it.
    make("/run/systemd/generator", "berth@db.service");
    mask("/etc/systemd/system", "berth@db.service");
    EXPECT_EQ(unloaded_unit_state("berth@db.service", root.path()).load_state, "masked");
    // An instance with no file of its own comes from the template.
    make("/usr/lib/systemd/system", "berth@.service");
    auto inst = unloaded_unit_state("berth@other.service", root.path());
    EXPECT_EQ(inst.load_state, "loaded");
    EXPECT_EQ(inst.fragment_path, "/usr/lib/systemd/system/berth@.service");
}
