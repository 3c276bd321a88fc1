// Templates (web@.toml) and their instances (web@1): names, loading and merge order, %i
// expansion, default_instances and the generator's output; [[socket]] names.
#include <gtest/gtest.h>
#include <unistd.h>

#include "basic/fs-util.h"
#include "basic/names.h"
#include "config/config.h"
#include "config/unit.h"
#include "test-util.h"

using namespace berth;
using namespace berth::config;

namespace {

// A containers directory with the given files ("" contents for an empty instance file).
struct Dir {
    test::TempDir tmp{"berth-template"};
    SearchPaths paths;
    Dir() {
        EXPECT_TRUE(mkdir_p(tmp / "in"));
        paths.dirs = {tmp / "in"};
    }
    void add(const std::string& relative, const std::string& text) {
        std::string path = tmp / ("in/" + relative);
        EXPECT_TRUE(mkdir_p(path.substr(0, path.rfind('/'))));
        EXPECT_TRUE(write_file(path, text));
    }
    std::string in(const std::string& relative) { return tmp / ("in/" + relative); }
    std::string out(const std::string& relative) { return tmp / ("out/" + relative); }
};

std::string read_link(const std::string& path) {
    char link[256] = {};
    if (::readlink(path.c_str(), link, sizeof link - 1) <= 0) return "";
    return link;
}

UnitOptions options() {
    UnitOptions o;
    o.bindir = "/usr/bin";
    return o;
}

constexpr const char* kTemplate =
    "[container]\n"
    "image = \"busybox\"\n"
    "hostname = \"web-%i\"\n"
    "command = [\"/bin/sh\", \"-c\", \"echo %i 100%%\"]\n"
    "environment = { MODE = \"base\", WHO = \"i-%i\" }\n"
    "[[mount]]\n"
    "type = \"volume\"\n"
    "source = \"data-%i\"\n"
    "target = \"/data\"\n"
    "[resources]\n"
    "memory_max = \"64M\"\n";

}  // namespace

TEST(Templates, AContainerNameIsPlainOrOneInstanceOfATemplate) {
    for (const char* good : {"web", "web@1", "web@a.b_c-d", "9@9"}) EXPECT_TRUE(is_valid_name(good)) << good;
    for (const char* bad :
         {"web@", "@1", "web@@1", "web@1@2", "web@-1", "web@1/x", "web@.1", "web@1.service"})
        EXPECT_FALSE(is_valid_name(bad)) << bad;
    EXPECT_FALSE(is_valid_name("w@" + std::string(63, 'a')));  // 65 bytes in all
    EXPECT_TRUE(is_valid_name("w@" + std::string(62, 'a')));
    // Volumes keep the plain grammar; templates are their own form.
    EXPECT_FALSE(is_valid_object_name(NameKind::Volume, "v@1"));
    EXPECT_TRUE(is_template_name("web@"));
    EXPECT_FALSE(is_template_name("web@1"));
    EXPECT_FALSE(is_template_name("@"));
}

TEST(Templates, AnInstanceExpandsPercentIInTheChosenKeys) {
    Dir dir;
    dir.add("web@.toml", kTemplate);
    auto d = load_declaration("web@7", dir.paths);  // no file of its own: the template alone
    ASSERT_TRUE(d) << d.error().what();
    EXPECT_EQ(d->name, "web@7");
    EXPECT_EQ(d->hostname, "web-7");
    EXPECT_EQ(d->command, (std::vector<std::string>{"/bin/sh", "-c", "echo 7 100%"}));
    EXPECT_EQ(d->environment.at("WHO"), "i-7");
    ASSERT_EQ(d->mounts.size(), 1u);
    EXPECT_EQ(d->mounts[0].source, "data-7");
    EXPECT_EQ(d->source_path, dir.in("web@.toml"));
    // The pinned copy the unit runs is already expanded: parsing it back changes nothing.
    auto pinned = parse_declaration("web@7", SourceText{"/run/web@7.toml", to_toml(*d)});
    ASSERT_TRUE(pinned) << pinned.error().what();
    EXPECT_EQ(pinned->command, d->command);
    EXPECT_EQ(pinned->hostname, "web-7");
}

TEST(Templates, TheDefaultHostnameOfAnInstanceIsBaseDashInstance) {
    Dir dir;
    dir.add("db@.toml", "[container]\nimage = \"busybox\"\n");
    auto d = load_declaration("db@x", dir.paths);
    ASSERT_TRUE(d) << d.error().what();
    EXPECT_EQ(d->hostname, "db-x");
}

TEST(Templates, MergesTemplateThenItsDropinsThenTheInstanceFileThenItsDropins) {
    Dir dir;
    dir.add("web@.toml", kTemplate);
    dir.add("web@.toml.d/10-t.toml", "[container.environment]\nMODE = \"template-dropin\"\nT = \"t\"\n");
    dir.add("web@2.toml", "[container.environment]\nMODE = \"instance-file\"\nF = \"%i\"\n");
    dir.add("web@2.toml.d/10-i.toml",
            "[container.environment]\nI = \"i\"\n[resources]\nmemory_max = \"32M\"\n");
    auto two = load_declaration("web@2", dir.paths);
    ASSERT_TRUE(two) << two.error().what();
    EXPECT_EQ(two->environment.at("MODE"), "instance-file");
    EXPECT_EQ(two->environment.at("T"), "t");
    EXPECT_EQ(two->environment.at("F"), "2");
    EXPECT_EQ(two->environment.at("I"), "i");
    EXPECT_EQ(two->resources.memory_max, 32u << 20);
    EXPECT_EQ(two->dropin_paths,
              (std::vector<std::string>{dir.in("web@.toml.d/10-t.toml"), dir.in("web@2.toml"),
                                        dir.in("web@2.toml.d/10-i.toml")}));
    // Instance 1 gets the template and its drop-ins only.
    auto one = load_declaration("web@1", dir.paths);
    ASSERT_TRUE(one) << one.error().what();
    EXPECT_EQ(one->environment.at("MODE"), "template-dropin");
    EXPECT_EQ(one->environment.count("I"), 0u);
    EXPECT_EQ(one->resources.memory_max, 64u << 20);
}

TEST(Templates, AnExpansionThatMakesAnInvalidValueNamesTheFileLineColumnAndInstance) {
    Dir dir;
    dir.add("web@.toml",
            "[container]\nimage = \"busybox\"\n[[mount]]\ntype = \"bind\"\nsource = \"%i\"\n"
            "target = \"/x\"\n");
    auto d = load_declaration("web@a", dir.paths);
    ASSERT_FALSE(d);
    EXPECT_NE(d.error().what().find(dir.in("web@.toml") + ":5:10: mount[0].source"), std::string::npos)
        << d.error().what();
    EXPECT_NE(d.error().what().find("(instance 'web@a')"), std::string::npos) << d.error().what();

    dir.add("bad@.toml", "[container]\nimage = \"busybox\"\ncommand = [\"date\", \"+%s\"]\n");
    auto b = load_declaration("bad@1", dir.paths);
    ASSERT_FALSE(b);
    EXPECT_NE(b.error().what().find(dir.in("bad@.toml") + ":3:20: container.command[1] = '+%s' has the "
                                                          "specifier '%s', expected %i (the instance) or %%"),
              std::string::npos)
        << b.error().what();
    // A plain declaration's '%' is a plain character.
    dir.add("plain.toml", "[container]\nimage = \"busybox\"\ncommand = [\"date\", \"+%s\"]\n");
    auto p = load_declaration("plain", dir.paths);
    ASSERT_TRUE(p) << p.error().what();
    EXPECT_EQ(p->command[1], "+%s");
}

TEST(Templates, ATemplateAloneIsCheckedAsItsSampleInstance) {
    auto ok = parse_declaration("web@", SourceText{"/etc/web@.toml", kTemplate});
    ASSERT_TRUE(ok) << ok.error().what();
    EXPECT_EQ(ok->hostname, "web-1");
    auto bad = parse_declaration("web@", SourceText{"/etc/web@.toml", "[container]\nimage = 1\n"});
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.error().what().find("/etc/web@.toml:2:9:"), std::string::npos) << bad.error().what();
    EXPECT_NE(bad.error().what().find("(template 'web@' checked as its instance 'web@1')"), std::string::npos)
        << bad.error().what();
}

TEST(Templates, DefaultInstancesBelongToATemplateOnly) {
    auto t = parse_declaration("web@", SourceText{"/etc/web@.toml",
                                                  "[container]\nimage = \"busybox\"\n"
                                                  "[install]\ndefault_instances = [\"1\", \"b\"]\n"});
    ASSERT_TRUE(t) << t.error().what();
    EXPECT_EQ(t->install.default_instances, (std::vector<std::string>{"1", "b"}));
    auto plain = parse_declaration("web", SourceText{"/etc/web.toml",
                                                     "[container]\nimage = \"busybox\"\n"
                                                     "[install]\ndefault_instances = [\"1\"]\n"});
    ASSERT_FALSE(plain);
    EXPECT_NE(
        plain.error().what().find("/etc/web.toml:4:1: install.default_instances is only for a template"),
        std::string::npos)
        << plain.error().what();
    auto bad = parse_declaration("web@", SourceText{"/etc/web@.toml",
                                                    "[container]\nimage = \"busybox\"\n"
                                                    "[install]\ndefault_instances = [\"a@b\"]\n"});
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.error().what().find("install.default_instances[0] = 'a@b' is not an instance name"),
              std::string::npos)
        << bad.error().what();
}

TEST(Templates, TheGeneratorWritesAUnitPerInstanceAndEnablesDefaultAndFiledOnes) {
    Dir dir;
    dir.add("web@.toml", std::string(kTemplate) + "[install]\ndefault_instances = [\"1\", \"2\", \"4\"]\n");
    dir.add("web@3.toml", "");                                           // an instance file: enabled too
    dir.add("web@5.toml", "[install]\nwanted_by = []\n");                // declared, not enabled
    ASSERT_EQ(::symlink("/dev/null", dir.in("web@4.toml").c_str()), 0);  // masked
    dir.add("lone@9.toml", "");                                          // no template
    auto report = generate(dir.paths, dir.out(""), options());
    ASSERT_TRUE(report) << report.error().what();
    for (const char* n : {"1", "2", "3", "5"}) {
        std::string unit = std::string("berth@web@") + n + ".service";
        EXPECT_TRUE(path_exists(dir.out(unit))) << unit;
        EXPECT_TRUE(path_exists(dir.out(std::string("berth/web@") + n + ".toml"))) << unit;
    }
    for (const char* n : {"1", "2", "3"})
        EXPECT_EQ(read_link(dir.out(std::string("berth.target.wants/berth@web@") + n + ".service")),
                  std::string("../berth@web@") + n + ".service");
    EXPECT_FALSE(path_exists(dir.out("berth.target.wants/berth@web@5.service")));
    EXPECT_FALSE(path_exists(dir.out("berth@web@4.service")));
    EXPECT_FALSE(path_exists(dir.out("berth@web@.service")));
    EXPECT_FALSE(path_exists(dir.out("berth@web@7.service")));
    // The unit carries the declaration's settings and runs the pinned, expanded instance.
    auto unit = read_file(dir.out("berth@web@2.service"));
    ASSERT_TRUE(unit);
    EXPECT_NE(unit->find("MemoryMax=64M\n"), std::string::npos) << *unit;
    EXPECT_NE(unit->find(" run --systemd --pinned=" + dir.out("berth/web@2.toml") + " web@2\n"),
              std::string::npos)
        << *unit;
    auto pinned = read_file(dir.out("berth/web@2.toml"));
    ASSERT_TRUE(pinned);
    EXPECT_NE(pinned->find("hostname = \"web-2\""), std::string::npos) << *pinned;
    // An instance file without a template fails with a unit that says so.
    EXPECT_TRUE(path_exists(dir.out("berth@lone@9.service")));
    // An invalid default instance (the hostname its %i makes is too long) fails, naming its template.
    Dir bad;
    bad.add("long@.toml",
            "[container]\nimage = \"busybox\"\nhostname = \"%i%i%i\"\n"
            "[install]\ndefault_instances = [\"" +
                std::string(30, 'x') + "\"]\n");
    auto bad_report = generate(bad.paths, bad.out(""), options());
    ASSERT_TRUE(bad_report) << bad_report.error().what();
    auto failing = read_file(bad.out("berth@long@" + std::string(30, 'x') + ".service"));
    ASSERT_TRUE(failing);
    EXPECT_NE(failing->find("SourcePath=" + bad.in("long@.toml") + "\n"), std::string::npos) << *failing;
    EXPECT_NE(failing->find("validate --report-error="), std::string::npos) << *failing;
    bool named = false;
    for (const auto& e : report->errors)
        named |= e.find("container 'lone@9' has no template") != std::string::npos;
    EXPECT_TRUE(named);
}

TEST(Sockets, EachSocketNameGetsItsOwnSocketUnitWithFileDescriptorName) {
    auto d = parse_declaration("web", SourceText{"/etc/berth/containers/web.toml",
                                                 "[container]\nimage = \"busybox\"\n"
                                                 "[[socket]]\nlisten = \"127.0.0.1:8080\"\nname = \"a\"\n"
                                                 "[[socket]]\nlisten = \"127.0.0.1:8081\"\nname = \"b\"\n"
                                                 "[[socket]]\nlisten = \"[::1]:8080\"\nname = \"a\"\n"});
    ASSERT_TRUE(d) << d.error().what();
    EXPECT_EQ(socket_unit_names(*d), (std::vector<std::string>{"berth@web.socket", "berth@web:2.socket"}));
    EXPECT_EQ(listen_fd_names(*d), (std::vector<std::string>{"a", "b"}));
    std::string a = render_socket(*d, 0), b = render_socket(*d, 1);
    EXPECT_NE(a.find("ListenStream=127.0.0.1:8080\nListenStream=[::1]:8080\nFileDescriptorName=a\n"
                     "Service=berth@web.service\n"),
              std::string::npos)
        << a;
    EXPECT_NE(b.find("ListenStream=127.0.0.1:8081\nFileDescriptorName=b\nService=berth@web.service\n"),
              std::string::npos)
        << b;
    UnitOptions o = options();
    o.pinned_dir = "/run/x";
    EXPECT_NE(render_unit(*d, o).find("Sockets=berth@web.socket berth@web:2.socket\n"), std::string::npos);
    // Round trip through the pinned copy.
    auto back = parse_declaration("web", SourceText{"/run/x/web.toml", to_toml(*d)});
    ASSERT_TRUE(back) << back.error().what();
    ASSERT_EQ(back->sockets.size(), 3u);
    for (size_t i = 0; i < 3; ++i) {
        EXPECT_EQ(back->sockets[i].name, d->sockets[i].name);
        EXPECT_EQ(back->sockets[i].listen, d->sockets[i].listen);
    }

    // Unnamed sockets keep systemd's default name, the unit's.
    auto plain = parse_declaration("web", SourceText{"/etc/web.toml",
                                                     "[container]\nimage = \"busybox\"\n"
                                                     "[[socket]]\nlisten = \"127.0.0.1:8080\"\n"});
    ASSERT_TRUE(plain);
    EXPECT_EQ(listen_fd_names(*plain), (std::vector<std::string>{"berth@web.socket"}));
    EXPECT_EQ(render_socket(*plain).find("FileDescriptorName"), std::string::npos);
    EXPECT_EQ(render_unit(*plain, o).find("Sockets="), std::string::npos);
}

TEST(Sockets, ASocketNameIsValidatedLikeFileDescriptorName) {
    // As written in TOML: a ':' (the $LISTEN_FDNAMES separator), empty, too long, a control character.
    for (const std::string& bad : std::vector<std::string>{"a:b", "", std::string(256, 'x'), "tab\\there"}) {
        auto d = parse_declaration("web", SourceText{"/etc/web.toml",
                                                     "[container]\nimage = \"busybox\"\n"
                                                     "[[socket]]\nlisten = \"127.0.0.1:1\"\n"
                                                     "name = \"" +
                                                         bad + "\"\n"});
        ASSERT_FALSE(d) << bad;
        EXPECT_NE(d.error().what().find("/etc/web.toml:5:8: socket[0].name = "), std::string::npos)
            << d.error().what();
        EXPECT_NE(d.error().what().find("is not a file descriptor name"), std::string::npos)
            << d.error().what();
    }
    EXPECT_TRUE(parse_declaration("web", SourceText{"/etc/web.toml",
                                                    "[container]\nimage = \"busybox\"\n"
                                                    "[[socket]]\nlisten = \"127.0.0.1:1\"\n"
                                                    "name = \"" +
                                                        std::string(255, 'x') + "\"\n"}));
}
