// Parsing, merging and validation of declarations: every error class with its exact line:col,
// drop-in precedence, cross-declaration checks, canonical TOML round trips.
#include "config/config.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <map>

#include "basic/fs-util.h"
#include "basic/string-util.h"
#include "config/values.h"
#include "test-util.h"

using namespace berth;
using namespace berth::config;

namespace {

Result<Declaration> parse(std::string_view text, std::string_view name = "web") {
    return parse_declaration(name, SourceText{"web.toml", std::string(text)});
}

// The error text of a declaration that must fail.
std::string error_of(std::string_view text) {
    auto d = parse(text);
    EXPECT_FALSE(d) << "expected an error for:\n" << text;
    return d ? std::string() : d.error().what();
}

constexpr std::string_view kMinimal = "[container]\nimage = \"busybox\"\n";

// Settings only: provenance (paths, regions) differs between a file and its canonical copy.
Declaration settings(Declaration d) {
    d.source_path.clear();
    d.dropin_paths.clear();
    d.regions.clear();
    for (auto& m : d.mounts) m.where = {};
    for (auto& secret : d.secrets) secret.where = {};
    for (auto& socket : d.sockets) socket.where = {};
    return d;
}

void write(const std::string& path, std::string_view text) {
    ASSERT_TRUE(mkdir_p(path.substr(0, path.rfind('/'))));
    ASSERT_TRUE(write_file(path, text));
}

}  // namespace

TEST(Values, ParsesSizesWithBinarySuffixes) {
    EXPECT_EQ(parse_size("512M", false), 512ULL << 20);
    EXPECT_EQ(parse_size("1G", false), 1ULL << 30);
    EXPECT_EQ(parse_size("64k", false), 64ULL << 10);
    EXPECT_EQ(parse_size("1024", false), 1024ULL);
    EXPECT_EQ(parse_size("2GB", false), 2ULL << 30);
    EXPECT_EQ(parse_size("infinity", true), kInfinity);
    EXPECT_FALSE(parse_size("infinity", false));
    EXPECT_FALSE(parse_size("12X", false));
    EXPECT_FALSE(parse_size("-1", false));
    EXPECT_FALSE(parse_size("M", false));
    EXPECT_FALSE(parse_size("99999999999999999999E", false));
    EXPECT_EQ(format_size(512ULL << 20), "512M");
    EXPECT_EQ(format_size(1000), "1000");
}

TEST(Values, ParsesSystemdStyleDurations) {
    EXPECT_EQ(parse_duration_us("30s", false), 30000000ULL);
    EXPECT_EQ(parse_duration_us("5min", false), 300000000ULL);
    EXPECT_EQ(parse_duration_us("1h", false), 3600000000ULL);
    EXPECT_EQ(parse_duration_us("1h 30min", false), 5400000000ULL);
    EXPECT_EQ(parse_duration_us("100ms", false), 100000ULL);
    EXPECT_EQ(parse_duration_us("10", false), 10000000ULL);
    EXPECT_EQ(parse_duration_us("infinity", true), kInfinity);
    EXPECT_FALSE(parse_duration_us("5 parsecs", false));
    EXPECT_FALSE(parse_duration_us("1h 30", false));
    EXPECT_FALSE(parse_duration_us("", false));
    EXPECT_EQ(format_duration(5400000000ULL), "1h 30min");
    EXPECT_EQ(format_duration(100000), "100ms");
    for (uint64_t us : {0ULL, 1ULL, 999ULL, 1000001ULL, 90061001001ULL})
        EXPECT_EQ(parse_duration_us(format_duration(us), false), us) << format_duration(us);
}

TEST(Values, ParsesPercentagesCapabilitiesSignalsAndPorts) {
    EXPECT_EQ(parse_percent("150%"), 150U);
    EXPECT_FALSE(parse_percent("150"));
    EXPECT_FALSE(parse_percent("0%"));
    EXPECT_EQ(normalize_capability("NET_ADMIN"), "CAP_NET_ADMIN");
    EXPECT_EQ(normalize_capability("cap_sys_admin"), "CAP_SYS_ADMIN");
    EXPECT_EQ(normalize_capability("ALL"), "ALL");
    EXPECT_FALSE(normalize_capability("CAP_BOGUS"));
    EXPECT_FALSE(normalize_capability("12"));
    EXPECT_EQ(parse_signal("SIGTERM"), 15);
    EXPECT_EQ(parse_signal("INT"), 2);
    EXPECT_EQ(parse_signal("9"), 9);
    EXPECT_EQ(parse_signal("SIGRTMIN+3"), SIGRTMIN + 3);
    EXPECT_FALSE(parse_signal("SIGBOGUS"));
    EXPECT_FALSE(parse_signal("0"));
    auto p = parse_port_mapping("127.0.0.1:8080:80/udp");
    ASSERT_TRUE(p);
    EXPECT_EQ(p->host_address, "127.0.0.1");
    EXPECT_EQ(p->host_port, 8080);
    EXPECT_EQ(p->container_port, 80);
    EXPECT_EQ(p->protocol, "udp");
    EXPECT_EQ(format_port_mapping(*parse_port_mapping("[::1]:8080:80")), "[::1]:8080:80/tcp");
    EXPECT_FALSE(parse_port_mapping("8080"));
    EXPECT_FALSE(parse_port_mapping("8080:0"));
    EXPECT_FALSE(parse_port_mapping("70000:80"));
    EXPECT_FALSE(parse_port_mapping("8080:80/sctp"));
    EXPECT_FALSE(parse_port_mapping("300.1.1.1:8080:80"));
    EXPECT_TRUE(is_valid_cpu_list("0-3,5"));
    EXPECT_FALSE(is_valid_cpu_list("3-1"));
}

TEST(Names, AcceptOnlyNamesUsableInUnitNames) {
    EXPECT_TRUE(is_valid_name("web"));
    EXPECT_TRUE(is_valid_name("web-1.prod_a"));
    EXPECT_FALSE(is_valid_name(""));
    EXPECT_FALSE(is_valid_name("-web"));
    EXPECT_FALSE(is_valid_name("my web"));
    EXPECT_FALSE(is_valid_name("a/b"));
    EXPECT_TRUE(is_valid_name("web@x"));  // a template's instance
    EXPECT_FALSE(is_valid_name("web@"));
    EXPECT_FALSE(is_valid_name("web@x@y"));
    EXPECT_FALSE(is_valid_name("web.service"));
    EXPECT_FALSE(is_valid_name(std::string(65, 'a')));
    EXPECT_TRUE(is_unit_name("network-online.target"));
    EXPECT_FALSE(is_unit_name("db"));
    EXPECT_FALSE(is_unit_name("foo@.service"));
    EXPECT_EQ(dependency_unit("db"), "berth@db.service");
    EXPECT_EQ(dependency_unit("postgresql.service"), "postgresql.service");
}

TEST(Parse, AcceptsAMinimalDeclarationWithDefaults) {
    auto d = parse(kMinimal);
    ASSERT_TRUE(d) << d.error().what();
    EXPECT_EQ(d->name, "web");
    EXPECT_EQ(d->image, "busybox");
    EXPECT_EQ(d->hostname, "web");
    EXPECT_EQ(d->network.mode, NetworkMode::None);
    EXPECT_TRUE(d->security.no_new_privileges);
    EXPECT_EQ(d->install.wanted_by, std::vector<std::string>{"berth.target"});
    EXPECT_EQ(d->stop_signal, 15);
}

TEST(Parse, ReadsEverySection) {
    auto d = parse(R"(
[container]
image = "nginx:1.25"
command = ["nginx", "-g", "daemon off;"]
environment = { A = "1", B = 2, C = true }
environment_files = ["/etc/web.env"]
user = "www:www"
supplementary_groups = ["adm", "100"]
workdir = "/srv/./www/"
hostname = "www"
ephemeral = true
read_only = true
stop_signal = "QUIT"
stop_timeout = "20s"
notify = "container"
init = true

[[mount]]
type = "bind"
source = "/srv/data"
target = "/data"
read_only = true

[[mount]]
type = "tmpfs"
target = "/tmp"
size = "64M"
mode = "1777"

[[mount]]
type = "volume"
source = "cache"
target = "/var/cache"

[network]
mode = "bridge"
bridge = "br0"
address = "10.0.0.2/24"
gateway = "10.0.0.1"
ports = ["8080:80", "127.0.0.1:8443:443/tcp"]

[resources]
memory_max = "512M"
memory_high = 268435456
memory_swap_max = "infinity"
cpu_weight = 200
cpu_quota = "150%"
allowed_cpus = "0-1"
tasks_max = 512
io_weight = 50
limits = { nofile = 4096, core = "infinity" }

[security]
capabilities_add = ["NET_ADMIN"]
capabilities_drop = ["ALL"]
seccomp = "/etc/berth/seccomp.json"
no_new_privileges = false
user_namespace = { uid = 524288, size = 65536 }
devices = ["/dev/fuse"]

[service]
restart = "on-failure"
restart_sec = "5s"
requires = ["db"]
wants = ["cache", "syslog.service"]
after = ["network-online.target"]
timeout_start = "1min"
timeout_stop = "infinity"

[install]
wanted_by = ["multi-user.target"]
required_by = ["berth.target"]
)");
    ASSERT_TRUE(d) << d.error().what();
    EXPECT_EQ(d->environment.at("B"), "2");
    EXPECT_EQ(d->environment.at("C"), "true");
    EXPECT_EQ(d->user.user, "www");
    EXPECT_EQ(d->user.group, "www");
    EXPECT_EQ(d->workdir, "/srv/www");
    EXPECT_EQ(d->stop_signal, 3);
    EXPECT_EQ(d->stop_timeout_us, 20000000ULL);
    EXPECT_EQ(d->notify, NotifyMode::Container);
    ASSERT_EQ(d->mounts.size(), 3U);
    EXPECT_EQ(d->mounts[1].size, 64ULL << 20);
    EXPECT_EQ(d->mounts[1].mode, 01777U);
    EXPECT_EQ(d->mounts[1].where.line, 24);
    EXPECT_EQ(d->mounts[2].type, MountType::Volume);
    EXPECT_EQ(d->network.ports.size(), 2U);
    EXPECT_EQ(d->resources.memory_high, 268435456ULL);
    EXPECT_EQ(d->resources.memory_swap_max, kInfinity);
    EXPECT_EQ(d->resources.limits.at("core"), kInfinity);
    EXPECT_EQ(d->security.capabilities_add, std::vector<std::string>{"CAP_NET_ADMIN"});
    EXPECT_EQ(d->security.seccomp, SeccompMode::Profile);
    EXPECT_EQ(d->security.user_namespace.mode, UserNamespaceMode::Fixed);
    EXPECT_EQ(d->security.user_namespace.uid, 524288U);
    EXPECT_EQ(d->service.timeout_stop_us, kInfinity);
    EXPECT_EQ(d->service.wants.size(), 2U);
    EXPECT_EQ(d->install.required_by, std::vector<std::string>{"berth.target"});

    // Canonical TOML parses back to the same settings.
    std::string canonical = to_toml(*d);
    auto again = parse(canonical);
    ASSERT_TRUE(again) << again.error().what() << "\n" << canonical;
    EXPECT_EQ(settings(*again), settings(*d)) << canonical;
    EXPECT_EQ(to_toml(*again), canonical);
}

TEST(Parse, RoundTripsAMinimalDeclarationThroughCanonicalToml) {
    auto d = parse(kMinimal);
    ASSERT_TRUE(d);
    auto again = parse(to_toml(*d));
    ASSERT_TRUE(again) << again.error().what();
    EXPECT_EQ(settings(*again), settings(*d));
}

// Each error class, with its exact position.
TEST(Validation, ReportsATomlSyntaxErrorWithItsPosition) {
    EXPECT_EQ(error_of("[container]\nimage = \"busybox\nread_only = true\n").substr(0, 16),
              "web.toml:2:17: i");
}

TEST(Validation, ReportsAnUnknownKeyWithADidYouMeanHint) {
    std::string e = error_of("[container]\nimage = \"b\"\n[resources]\nmemroy_max = \"1G\"\n");
    EXPECT_EQ(e,
              "web.toml:4:1: unknown key 'memroy_max' in [resources], expected a known key; did you mean "
              "'memory_max'?");
}

TEST(Validation, PointsAKeyInTheWrongSectionToItsSection) {
    std::string e = error_of("[container]\nimage = \"b\"\nmemory_max = \"1G\"\n");
    EXPECT_EQ(
        e,
        "web.toml:3:1: unknown key 'memory_max' in [container], expected it in [resources]; did you mean "
        "[resources] memory_max?");
}

TEST(Validation, ReportsAnUnknownSection) {
    EXPECT_EQ(error_of("[container]\nimage = \"b\"\n[netwrok]\nmode = \"host\"\n"),
              "web.toml:3:2: unknown key 'netwrok' at the top level, expected a known key; did you mean "
              "'network'?");
}

TEST(Validation, ReportsAWrongType) {
    EXPECT_EQ(error_of("[container]\nimage = 42\n"),
              "web.toml:2:9: container.image is an integer, expected a string");
    EXPECT_EQ(error_of("[container]\nimage = \"b\"\nread_only = \"yes\"\n"),
              "web.toml:3:13: container.read_only is a string, expected true or false");
}

TEST(Validation, ReportsBadSizesDurationsAndPercentages) {
    EXPECT_EQ(error_of("[container]\nimage = \"b\"\n[resources]\nmemory_max = \"12X\"\n").substr(0, 60),
              "web.toml:4:14: resources.memory_max = '12X' is not a valid s");
    EXPECT_EQ(error_of("[container]\nimage = \"b\"\n[service]\nrestart_sec = \"5 parsecs\"\n").substr(0, 69),
              "web.toml:4:15: service.restart_sec = '5 parsecs' is not a valid durat");
    EXPECT_EQ(error_of("[container]\nimage = \"b\"\n[resources]\ncpu_quota = \"150\"\n").substr(0, 62),
              "web.toml:4:13: resources.cpu_quota = '150' is not a percentage");
}

TEST(Validation, ReportsUnknownCapabilitiesAndSignals) {
    EXPECT_EQ(
        error_of(
            "[container]\nimage = \"b\"\n[security]\ncapabilities_add = [\"NET_ADMIN\", \"CAP_BOGUS\"]\n")
            .substr(0, 72),
        "web.toml:4:34: security.capabilities_add[1] = 'CAP_BOGUS' is not a capab");
    EXPECT_EQ(error_of("[container]\nimage = \"b\"\nstop_signal = \"SIGFOO\"\n").substr(0, 55),
              "web.toml:3:15: container.stop_signal = 'SIGFOO' is not ");
}

// Issue #15 item 1: what a persistent container does when its image changed.
TEST(Validation, OnImageChangeIsRecreateOrKeepAndABadValueIsNamedWithItsPosition) {
    auto d = parse("[container]\nimage = \"b\"\n");
    EXPECT_EQ(d->on_image_change, OnImageChange::Recreate);
    d = parse("[container]\nimage = \"b\"\non_image_change = \"keep\"\n");
    EXPECT_EQ(d->on_image_change, OnImageChange::Keep);
    EXPECT_NE(to_toml(*d).find("on_image_change = \"keep\""), std::string::npos) << to_toml(*d);
    EXPECT_EQ(error_of("[container]\nimage = \"b\"\non_image_change = \"rebuild\"\n"),
              "web.toml:3:19: container.on_image_change = 'rebuild' is unknown, expected \"recreate\" or "
              "\"keep\"");
}

TEST(Validation, RejectsRelativePathsWhereAbsoluteAreNeeded) {
    EXPECT_EQ(
        error_of("[container]\nrootfs = \"srv/root\"\n"),
        "web.toml:2:10: container.rootfs = 'srv/root' is not an absolute path, expected an absolute path "
        "(starting with '/')");
    EXPECT_EQ(
        error_of(
            "[container]\nimage = \"b\"\n[[mount]]\ntype = \"bind\"\nsource = \"data\"\ntarget = \"/d\"\n")
            .substr(0, 46),
        "web.toml:5:10: mount[0].source = 'data' is not");
}

// issue #15: caught by validate rather than at the start.
TEST(Validation, RejectsARootfsWithoutCommandAndTheSameHostPortTwice) {
    EXPECT_EQ(
        error_of("[container]\nrootfs = \"/srv/r\"\n"),
        "web.toml:2:10: container.rootfs needs container.command, expected command = [\"/program\", ...] "
        "(a directory has no image config to take the program from)");
    EXPECT_EQ(error_of("[container]\nimage = \"b\"\n[network]\nmode = \"veth\"\nports = [\"8080:80\", "
                       "\"9090:90/udp\", \"8080:81/tcp\"]\n"),
              "web.toml:5:36: network.ports[2] = '8080:81/tcp' publishes host port 8080/tcp again "
              "(network.ports[0]), expected each host port once");
    EXPECT_EQ(
        error_of("[container]\nimage = \"b\"\n[network]\nmode = \"veth\"\nports = [\"[::1]:5353:53/udp\"]\n"),
        "web.toml:5:10: network.ports[0] = '[::1]:5353:53/udp' publishes UDP on ::1, expected "
        "\"127.0.0.1:...\" (IPv6 never routes a loopback address to a container, and berth's loopback proxy "
        "for TCP is TCP only)");
    // TCP on ::1 goes through the loopback proxy (network/loopback-proxy.h).
    EXPECT_TRUE(
        parse("[container]\nimage = \"b\"\n[network]\nmode = \"veth\"\nports = [\"[::1]:8080:80\"]\n"));
    // Another protocol or another host address is another port.
    auto d = parse(
        "[container]\nimage = \"b\"\n[network]\nmode = \"veth\"\nports = [\"8080:80\", "
        "\"8080:80/udp\", \"127.0.0.1:9090:90\", \"127.0.0.2:9090:90\"]\n");
    ASSERT_TRUE(d) << d.error().what();
    EXPECT_EQ(d->network.ports.size(), 4u);
}

TEST(Validation, RejectsImageWithRootfsAndNeither) {
    EXPECT_EQ(
        error_of("[container]\nimage = \"b\"\nrootfs = \"/srv/r\"\n"),
        "web.toml:3:10: container.rootfs conflicts with container.image (line 2), expected exactly one of "
        "image or rootfs");
    EXPECT_EQ(error_of("[container]\ncommand = [\"sh\"]\n").substr(0, 60),
              "web.toml:1:1: no container.image or container.rootfs, expect");
    EXPECT_EQ(error_of("[service]\nrestart = \"always\"\n").substr(0, 30), "web.toml:1:1: no container.ima");
}

TEST(Validation, RejectsANameThatCannotBeAUnitName) {
    auto d = parse(kMinimal, "my web");
    ASSERT_FALSE(d);
    EXPECT_EQ(d.error().what().substr(0, 48), "web.toml:1:1: container name 'my web' cannot be ");
}

TEST(Validation, ChecksPortsAndNetworkConsistency) {
    EXPECT_EQ(error_of("[container]\nimage = \"b\"\n[network]\nmode = \"veth\"\nports = [\"8080\"]\n")
                  .substr(0, 55),
              "web.toml:5:10: network.ports[0] = '8080' is not a port ");
    EXPECT_EQ(error_of("[container]\nimage = \"b\"\n[network]\nports = [\"8080:80\"]\n").substr(0, 60),
              "web.toml:4:9: network.ports needs network.mode \"veth\" or \"br");
    EXPECT_EQ(error_of("[container]\nimage = \"b\"\n[network]\nmode = \"bridge\"\n").substr(0, 60),
              "web.toml:4:8: network.mode = \"bridge\" needs a bridge, expect");
    EXPECT_EQ(
        error_of("[container]\nimage = \"b\"\n[network]\nmode = \"veth\"\nbridge = \"br0\"\n").substr(0, 50),
        "web.toml:5:10: network.bridge is set but network.m");
}

TEST(Validation, ChecksMasqueradeAndIpForward) {
    auto d = parse(
        "[container]\nimage = \"b\"\n[network]\nmode = \"veth\"\nmasquerade = false\nip_forward = true\n");
    ASSERT_TRUE(d) << d.error().what();
    EXPECT_EQ(d->network.masquerade, false);
    EXPECT_TRUE(d->network.ip_forward);
    auto unset = parse("[container]\nimage = \"b\"\n[network]\nmode = \"veth\"\n");
    ASSERT_TRUE(unset);
    EXPECT_FALSE(unset->network.masquerade.has_value()) << "unset = the mode's default";
    // Round trip through the canonical form keeps both.
    auto again = parse(to_toml(*d));
    ASSERT_TRUE(again) << again.error().what();
    EXPECT_EQ(settings(*again).network, settings(*d).network);

    EXPECT_EQ(error_of("[container]\nimage = \"b\"\n[network]\nmode = \"veth\"\nmasquerade = \"yes\"\n")
                  .substr(0, 62),
              "web.toml:5:14: network.masquerade is a string, expected true o");
    EXPECT_EQ(error_of("[container]\nimage = \"b\"\n[network]\nip_forward = 1\n").substr(0, 44),
              "web.toml:4:14: network.ip_forward is an inte");
    EXPECT_EQ(error_of("[container]\nimage = \"b\"\n[network]\nmasquerade = true\n").substr(0, 66),
              "web.toml:4:14: network.masquerade needs network.mode \"veth\" or \"br");
    EXPECT_EQ(
        error_of(
            "[container]\nimage = \"b\"\n[network]\nmode = \"bridge\"\nbridge = \"br0\"\nmasquerade = true\n")
            .substr(0, 80),
        "web.toml:6:14: network.masquerade = true in mode \"bridge\" needs the container's ");
    EXPECT_TRUE(
        parse("[container]\nimage = \"b\"\n[network]\nmode = \"bridge\"\nbridge = \"br0\"\n"
              "address = \"10.1.0.2/24\"\nmasquerade = true\n"));
}

TEST(Validation, ChecksUserNamespaceForms) {
    EXPECT_TRUE(parse("[container]\nimage = \"b\"\n[security]\nuser_namespace = \"pick\"\n"));
    EXPECT_EQ(error_of("[container]\nimage = \"b\"\n[security]\nuser_namespace = \"auto\"\n").substr(0, 60),
              "web.toml:4:18: security.user_namespace = 'auto' is unknown, ");
    EXPECT_EQ(
        error_of("[container]\nimage = \"b\"\n[security]\nuser_namespace = { size = 10 }\n").substr(0, 50),
        "web.toml:4:18: security.user_namespace has no uid,");
    EXPECT_EQ(error_of("[container]\nimage = \"b\"\n[security]\nuser_namespace = { uid = 1, sise = 10 }\n")
                  .substr(0, 40),
              "web.toml:4:29: unknown key 'sise' in [se");
}

TEST(Validation, ChecksSeccompModes) {
    EXPECT_TRUE(parse("[container]\nimage = \"b\"\n[security]\nseccomp = \"unconfined\"\n"));
    EXPECT_EQ(error_of("[container]\nimage = \"b\"\n[security]\nseccomp = \"strict\"\n").substr(0, 50),
              "web.toml:4:11: security.seccomp = 'strict' is inva");
}

TEST(Validation, ChecksMountTypes) {
    EXPECT_EQ(
        error_of(
            "[container]\nimage = \"b\"\n[[mount]]\ntype = \"tmpfs\"\nsource = \"/x\"\ntarget = \"/t\"\n")
            .substr(0, 55),
        "web.toml:5:10: mount[0].source is set for a tmpfs mount");
    EXPECT_EQ(
        error_of("[container]\nimage = \"b\"\n[[mount]]\ntype = \"tmpfs\"\ntarget = \"/t\"\nmode = 1777\n")
            .substr(0, 40),
        "web.toml:6:8: mount[0].mode is invalid, ");
    EXPECT_TRUE(
        parse("[container]\nimage = \"b\"\n[[mount]]\ntype = \"tmpfs\"\ntarget = \"/t\"\nmode = 0o1777\n"));
    EXPECT_EQ(error_of("[container]\nimage = \"b\"\n[mount]\ntype = \"tmpfs\"\n").substr(0, 50),
              "web.toml:3:1: mount is a table, expected an array ");
}

TEST(Validation, VolumeNamesAreOnePathComponentTheStoreAccepts) {
    auto volume = [](const std::string& name) {
        return "[container]\nimage = \"b\"\n[[mount]]\ntype = \"volume\"\nsource = \"" + name +
               "\"\ntarget = \"/d\"\n";
    };
    EXPECT_TRUE(parse(volume("pg-data_1.x")));
    EXPECT_TRUE(parse(volume(std::string(120, 'a'))));
    for (const std::string& bad :
         {std::string(121, 'a'), std::string("../x"), std::string("a/b"), std::string(".x")}) {
        std::string e = error_of(volume(bad));
        EXPECT_EQ(e.rfind("web.toml:5:10: mount[0].source = '" + bad + "' is not a valid volume name", 0), 0u)
            << e;
    }
}

TEST(Validation, ReportsEveryErrorOfAFileInOrder) {
    std::string e = error_of("[container]\nimage = 1\nread_only = 2\n[resources]\ncpu_weight = 0\n");
    auto lines = split(e, '\n');
    ASSERT_EQ(lines.size(), 3U) << e;
    EXPECT_EQ(lines[0].substr(0, 12), "web.toml:2:9");
    EXPECT_EQ(lines[1].substr(0, 13), "web.toml:3:13");
    EXPECT_EQ(lines[2],
              "web.toml:5:14: resources.cpu_weight = 0 is out of range, expected an integer from 1 to 10000");
}

TEST(Validation, RejectsADependencyOnItself) {
    EXPECT_EQ(error_of("[container]\nimage = \"b\"\n[service]\nrequires = [\"web\"]\n").substr(0, 60),
              "web.toml:4:13: service.requires[0]: container 'web' depends ");
}

TEST(Merge, DropInsMergeTablesAndReplaceScalarsAndArraysInLexicalOrder) {
    test::TempDir tmp;
    write(tmp / "etc/web.toml",
          "[container]\nimage = \"nginx\"\ncommand = [\"a\", \"b\"]\n[resources]\nmemory_max = "
          "\"1G\"\ncpu_weight = "
          "100\n");
    write(tmp / "usr/web.toml", "[container]\nimage = \"ignored\"\n");  // masked by /etc
    write(tmp / "usr/web.toml.d/20-cpu.toml", "[resources]\ncpu_weight = 300\n");
    write(tmp / "etc/web.toml.d/10-cmd.toml",
          "[container]\ncommand = [\"c\"]\n[resources]\ncpu_weight = 200\n");
    write(tmp / "usr/web.toml.d/10-cmd.toml", "[container]\ncommand = [\"masked\"]\n");
    auto d = load_declaration("web", SearchPaths{{tmp / "etc", tmp / "usr"}});
    ASSERT_TRUE(d) << d.error().what();
    EXPECT_EQ(d->source_path, tmp / "etc/web.toml");
    EXPECT_EQ(d->dropin_paths, (std::vector<std::string>{tmp / "etc/web.toml.d/10-cmd.toml",
                                                         tmp / "usr/web.toml.d/20-cpu.toml"}));
    EXPECT_EQ(d->image, "nginx");
    EXPECT_EQ(d->command, std::vector<std::string>{"c"});
    EXPECT_EQ(d->resources.memory_max, 1ULL << 30);
    EXPECT_EQ(d->resources.cpu_weight, 300U);
}

TEST(Merge, ErrorsInADropInPointAtTheDropIn) {
    test::TempDir tmp;
    write(tmp / "etc/web.toml", "[container]\nimage = \"nginx\"\n");
    write(tmp / "etc/web.toml.d/50-bad.toml", "\n[resources]\nmemory_max = \"lots\"\n");
    auto d = load_declaration("web", SearchPaths{{tmp / "etc"}});
    ASSERT_FALSE(d);
    EXPECT_EQ(d.error().what().substr(0, (tmp / "etc/web.toml.d/50-bad.toml:3:14").size()),
              tmp / "etc/web.toml.d/50-bad.toml:3:14");
}

TEST(Merge, LoadDeclarationFileKeepsTheFilesDropIns) {
    test::TempDir tmp;
    write(tmp / "db.toml", "[container]\nrootfs = \"/srv/db\"\ncommand = [\"/db\"]\n");
    write(tmp / "db.toml.d/x.toml", "[container]\nread_only = true\n");
    auto d = load_declaration_file(tmp / "db.toml");
    ASSERT_TRUE(d) << d.error().what();
    EXPECT_EQ(d->name, "db");
    EXPECT_TRUE(d->read_only);
    auto named = load_declaration_file(tmp / "db.toml", "other");
    ASSERT_TRUE(named);
    EXPECT_EQ(named->name, "other");
}

TEST(Merge, AMaskedDeclarationIsNotLoaded) {
    test::TempDir tmp;
    write(tmp / "usr/web.toml", kMinimal);
    ASSERT_TRUE(mkdir_p(tmp / "etc"));
    ASSERT_EQ(::symlink("/dev/null", (tmp / "etc/web.toml").c_str()), 0);
    auto set = load_all(SearchPaths{{tmp / "etc", tmp / "usr"}});
    EXPECT_TRUE(set.by_name.empty());
}

// Issue #13 (8): a FIFO or a symlink to /dev/zero among the declarations or drop-ins (or a huge
// file) made the generator hang at boot. Each is now an error of its own declaration, the others
// load, masking through /dev/null still works, and it all takes milliseconds (a hang would hit the
// alarm and kill the test binary rather than the suite's timeout).
TEST(LoadAll, AFifoDevZeroAndAHugeFileAreErrorsOfTheirDeclarationNotAHang) {
    test::TempDir tmp;
    const std::string dir = tmp / "etc";
    write(dir + "/good.toml", kMinimal);
    write(dir + "/dropzero.toml", kMinimal);
    write(dir + "/dropfifo.toml", kMinimal);
    ASSERT_TRUE(mkdir_p(dir + "/dropzero.toml.d"));
    ASSERT_TRUE(mkdir_p(dir + "/dropfifo.toml.d"));
    ASSERT_TRUE(mkdir_p(dir + "/good.toml.d"));
    ASSERT_EQ(::mkfifo((dir + "/fifo.toml").c_str(), 0644), 0);
    ASSERT_EQ(::mkfifo((dir + "/dropfifo.toml.d/10-fifo.toml").c_str(), 0644), 0);
    ASSERT_EQ(::symlink("/dev/zero", (dir + "/zero.toml").c_str()), 0);
    ASSERT_EQ(::symlink("/dev/zero", (dir + "/dropzero.toml.d/10-zero.toml").c_str()), 0);
    ASSERT_EQ(::symlink("/dev/null", (dir + "/masked.toml").c_str()), 0);
    ASSERT_EQ(::symlink("/dev/null", (dir + "/good.toml.d/10-masked.toml").c_str()), 0);
    write(dir + "/huge.toml", std::string(kMinimal) + "#" + std::string((1 << 20) - kMinimal.size(), 'x'));
    write(dir + "/big.toml",
          std::string(kMinimal) + "#" + std::string((1 << 20) - kMinimal.size() - 2, 'x') + "\n");

    ::alarm(10);
    auto start = std::chrono::steady_clock::now();
    auto set = load_all(SearchPaths{{dir}});
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start)
                  .count();
    ::alarm(0);
    EXPECT_LT(ms, 2000) << "loading took " << ms << " ms";

    EXPECT_FALSE(set.by_name.count("masked")) << "a symlink to /dev/null masks";
    ASSERT_TRUE(set.by_name.at("good")) << set.by_name.at("good").error().what();
    EXPECT_TRUE(set.by_name.at("good")->dropin_paths.empty());
    ASSERT_TRUE(set.by_name.at("big"))
        << "exactly 1 MiB is allowed: " << set.by_name.at("big").error().what();
    auto error = [&](const std::string& name) {
        auto& r = set.by_name.at(name);
        return r ? std::string("<loaded>") : r.error().what();
    };
    EXPECT_EQ(error("fifo"), dir +
                                 "/fifo.toml:1:1: the file is a FIFO, expected a regular file (a symlink to "
                                 "/dev/null masks)");
    EXPECT_EQ(error("zero"), dir +
                                 "/zero.toml:1:1: the file is a character device, expected a regular file (a "
                                 "symlink to /dev/null masks)");
    EXPECT_EQ(error("dropfifo"),
              dir +
                  "/dropfifo.toml.d/10-fifo.toml:1:1: the file is a FIFO, expected a regular "
                  "file (a symlink to /dev/null masks)");
    EXPECT_EQ(error("dropzero"), dir +
                                     "/dropzero.toml.d/10-zero.toml:1:1: the file is a character device, "
                                     "expected a regular file (a symlink to /dev/null masks)");
    EXPECT_EQ(error("huge"), dir +
                                 "/huge.toml:1:1: the file is larger than 1048576 bytes (1 MiB), expected a "
                                 "declaration of at most 1 MiB");

    // One file given by name (berth validate FILE, berth run FILE) too.
    ::alarm(10);
    auto fifo = load_declaration_file(dir + "/fifo.toml");
    auto zero = load_declaration_file(dir + "/zero.toml");
    auto masked = load_declaration_file(dir + "/masked.toml");
    ::alarm(0);
    ASSERT_FALSE(fifo);
    EXPECT_NE(fifo.error().what().find("is a FIFO"), std::string::npos) << fifo.error().what();
    ASSERT_FALSE(zero);
    EXPECT_NE(zero.error().what().find("is a character device"), std::string::npos) << zero.error().what();
    ASSERT_FALSE(masked);
    EXPECT_NE(masked.error().what().find("is masked"), std::string::npos) << masked.error().what();
}

TEST(LoadAll, ReportsAnUndeclaredDependencyAndKeepsTheOthers) {
    test::TempDir tmp;
    write(tmp / "web.toml", "[container]\nimage = \"b\"\n[service]\nrequires = [\"db\", \"cache\"]\n");
    write(tmp / "db.toml", kMinimal);
    write(tmp / "broken.toml", "[container\n");
    auto set = load_all(SearchPaths{{tmp.path()}});
    ASSERT_EQ(set.by_name.size(), 3U);
    EXPECT_TRUE(set.by_name.at("db"));
    EXPECT_FALSE(set.by_name.at("broken"));
    auto& web = set.by_name.at("web");
    ASSERT_FALSE(web);
    EXPECT_EQ(web.error().what().substr(
                  0, (tmp / "web.toml:4:19: service.requires: container 'cache' is not declared").size()),
              tmp / "web.toml:4:19: service.requires: container 'cache' is not declared");
}

TEST(LoadAll, ReportsDependencyCyclesOnEveryMember) {
    test::TempDir tmp;
    write(tmp / "a.toml", "[container]\nimage = \"b\"\n[service]\nrequires = [\"b\"]\n");
    write(tmp / "b.toml", "[container]\nimage = \"b\"\n[service]\nafter = [\"c\"]\n");
    write(tmp / "c.toml", "[container]\nimage = \"b\"\n[service]\nwants = [\"a\"]\n");
    write(tmp / "d.toml", "[container]\nimage = \"b\"\n[service]\nrequires = [\"a\"]\n");
    auto set = load_all(SearchPaths{{tmp.path()}});
    ASSERT_FALSE(set.by_name.at("a"));
    EXPECT_EQ(
        set.by_name.at("a").error().what(),
        tmp /
            "a.toml:4:13: dependency cycle a -> b -> c -> a, expected requires/wants/after without cycles "
            "(each orders the units)");
    EXPECT_FALSE(set.by_name.at("b"));
    EXPECT_FALSE(set.by_name.at("c"));
    EXPECT_TRUE(set.by_name.at("d")) << "depending on a cycle is not itself a cycle";
}

TEST(SearchPaths, HonoursTheEnvironmentOverride) {
    ::setenv("BERTH_CONTAINERS_PATH", "/a:/b", 1);
    EXPECT_EQ(SearchPaths::system().dirs, (std::vector<std::string>{"/a", "/b"}));
    ::unsetenv("BERTH_CONTAINERS_PATH");
    EXPECT_EQ(SearchPaths::system().dirs.front(), "/etc/berth/containers");
}

// berth.toml(5) documents every key the parser accepts, each under its table's section: a key
// added to the schema without a word in the manual fails here.
TEST(Parse, ReadsSecretsWithTheirDefaultsAndRoundTripsThem) {
    auto d =
        parse(std::string(kMinimal) +
              "[[secret]]\nname = \"db\"\nsource = \"/etc/berth/db.cred\"\nencrypted = true\n"
              "environment = \"DB_PASSWORD\"\n"
              "[[secret]]\nname = \"tls.key\"\nsource = \"/etc/ssl/k.pem\"\ntarget = \"/etc/app/k.pem\"\n"
              "mode = \"0440\"\nuid = 101\ngid = 102\n"
              "[[secret]]\nname = \"token\"\nsource = \"credential:host.token\"\n");
    ASSERT_TRUE(d) << d.error().what();
    ASSERT_EQ(d->secrets.size(), 3u);
    EXPECT_EQ(d->secrets[0].kind, SecretSource::Encrypted);
    EXPECT_EQ(d->secrets[0].target, "/run/secrets/db");
    EXPECT_EQ(d->secrets[0].mode, 0400u);
    EXPECT_FALSE(d->secrets[0].uid);
    EXPECT_EQ(d->secrets[0].environment, "DB_PASSWORD");
    EXPECT_EQ(d->secrets[1].kind, SecretSource::File);
    EXPECT_EQ(d->secrets[1].target, "/etc/app/k.pem");
    EXPECT_EQ(d->secrets[1].mode, 0440u);
    EXPECT_EQ(d->secrets[1].uid, 101u);
    EXPECT_EQ(d->secrets[1].gid, 102u);
    EXPECT_EQ(d->secrets[2].kind, SecretSource::Credential);
    EXPECT_EQ(d->secrets[2].source, "host.token");
    auto again = parse(to_toml(*d));
    ASSERT_TRUE(again) << again.error().what();
    EXPECT_EQ(settings(*again), settings(*d));
}

namespace {
// Each (declaration tail, start of its first error) pair: the message and its exact position.
void expect_errors(const std::string& head, const std::vector<std::pair<std::string, std::string>>& cases) {
    for (const auto& [tail, expected] : cases)
        EXPECT_EQ(error_of(head + tail).substr(0, expected.size()), expected) << tail;
}
}  // namespace

TEST(Validation, ChecksSecrets) {
    expect_errors(std::string(kMinimal) + "[[secret]]\n",
                  {
                      {"name = \"a/b\"\nsource = \"/x\"\n",
                       "web.toml:4:8: secret[0].name = 'a/b' is not a credential name"},
                      {"name = \"a\"\n", "web.toml:3:1: secret[0] has no source, expected"},
                      {"source = \"/x\"\n", "web.toml:3:1: secret[0] has no name, expected"},
                      {"name = \"a\"\nsource = \"x\"\n",
                       "web.toml:5:10: secret[0].source = 'x' is not an absolute path"},
                      {"name = \"a\"\nsource = \"credential:a/b\"\n",
                       "web.toml:5:10: secret[0].source = 'credential:a/b' is not a credential name"},
                      {"name = \"a\"\nsource = \"credential:h\"\nencrypted = true\n",
                       "web.toml:6:13: secret[0].encrypted applies to a file"},
                      {"name = \"a\"\nsource = \"/x\"\nmode = 400\n",
                       "web.toml:6:8: secret[0].mode is invalid, expected"},
                      {"name = \"a\"\nsource = \"/x\"\nenvironment = \"1X\"\n",
                       "web.toml:6:15: secret[0].environment = '1X' is invalid"},
                      {"name = \"a\"\nsource = \"/x\"\ntarget = \"/run/secrets\"\n",
                       "web.toml:6:10: secret[0].target = '/run/secrets' is a directory berth owns"},
                      {"name = \"a\"\nsource = \"/x\"\nvalue = \"s3cret\"\n",
                       "web.toml:6:1: unknown key 'value' in [[secret]]"},
                      {"name = \"a\"\nsource = \"/x\"\n[[secret]]\nname = \"a\"\nsource = \"/y\"\n",
                       "web.toml:6:1: secret[1]: secret 'a' is declared twice (line 3)"},
                  });
}

TEST(Parse, ReadsSocketsAndRefusesAcceptAndBadAddresses) {
    auto d = parse(std::string(kMinimal) +
                   "[[socket]]\nlisten = \"127.0.0.1:8080\"\n[[socket]]\nlisten = \"[::]:8443\"\n"
                   "[[socket]]\nlisten = \"/run/web.sock\"\ntype = \"datagram\"\naccept = false\n");
    ASSERT_TRUE(d) << d.error().what();
    ASSERT_EQ(d->sockets.size(), 3u);
    EXPECT_EQ(d->sockets[1].listen, "[::]:8443");
    EXPECT_EQ(d->sockets[2].type, SocketType::Datagram);
    auto again = parse(to_toml(*d));
    ASSERT_TRUE(again) << again.error().what();
    EXPECT_EQ(settings(*again), settings(*d));

    expect_errors(
        std::string(kMinimal) + "[[socket]]\n",
        {
            {"listen = \"8080\"\n", "web.toml:4:10: socket[0].listen = '8080' is invalid"},
            {"listen = \"1.2.3.4:0\"\n", "web.toml:4:10: socket[0].listen = '1.2.3.4:0' is invalid"},
            {"listen = \"[::1:80\"\n", "web.toml:4:10: socket[0].listen = '[::1:80' is invalid"},
            {"listen = \"1.2.3.4:80\"\naccept = true\n",
             "web.toml:5:10: socket[0].accept = true is not supported"},
            {"listen = \"1.2.3.4:80\"\ntype = \"seqpacket\"\n",
             "web.toml:5:8: socket[0].type = 'seqpacket' is unknown"},
            {"type = \"stream\"\n", "web.toml:3:1: socket[0] has no listen, expected"},
        });
}

TEST(Documentation, BerthTomlManualDocumentsEveryKeyOfTheSchema) {
    auto man = read_file(berth::test::source_root() + "/man/berth.toml.5");
    ASSERT_TRUE(man) << man.error().what();
    // Section text by header: .SH "[container]" ... up to the next .SH.
    std::map<std::string, std::string> section_text;
    std::string current;
    for (const auto& line : split(*man, '\n')) {
        if (line.rfind(".SH ", 0) == 0) {
            current = line.substr(4);
            current.erase(std::remove(current.begin(), current.end(), '"'), current.end());
            continue;
        }
        section_text[current] += line + "\n";
    }
    auto schema = declaration_schema();
    ASSERT_GE(schema.size(), 7u);
    for (const auto& s : schema) {
        bool array = s.name == "mount" || s.name == "secret" || s.name == "socket";
        std::string header = array ? "[[" + s.name + "]]" : "[" + s.name + "]";
        ASSERT_TRUE(section_text.count(header)) << "berth.toml(5) has no section " << header;
        const std::string& text = section_text[header];
        for (const auto& key : s.keys) {
            bool documented = text.find("\n.BR " + key + " ") != std::string::npos ||
                              text.find("\n.B " + key + "\n") != std::string::npos ||
                              text.rfind(".BR " + key + " ", 0) == 0;
            EXPECT_TRUE(documented) << "berth.toml(5) section " << header << " does not document '" << key
                                    << "'";
        }
    }
}

TEST(Parse, ReadsTheOperatorKeysAndRoundTripsThem) {
    auto d = parse(
        "[container]\nimage = \"b\"\nread_only = true\nread_only_tmpfs = false\nshm_size = \"128M\"\n"
        "timezone = \"Europe/Paris\"\n[container.sysctl]\n\"net.core.somaxconn\" = 1024\n"
        "\"kernel.shmmax\" = \"68719476736\"\n\"fs.mqueue.msg_max\" = \"64\"\n"
        "[network]\nmode = \"veth\"\nadd_hosts = [\"db:10.0.0.5\", \"v6:fd00::5\"]\n"
        "dns = [\"192.0.2.53\", \"2001:db8::53\"]\ndns_search = [\"example.com\"]\n"
        "dns_options = [\"ndots:2\", \"edns0\"]\n"
        "[security]\nmask = [\"/proc/cpuinfo\", \"/srv//secret/\"]\nunmask = [\"/proc/kcore\"]\n");
    ASSERT_TRUE(d) << d.error().what();
    EXPECT_EQ(d->read_only_tmpfs, false);
    EXPECT_EQ(d->shm_size, 128u << 20);
    EXPECT_EQ(d->timezone, "Europe/Paris");
    EXPECT_EQ(d->sysctl, (std::map<std::string, std::string>{{"fs.mqueue.msg_max", "64"},
                                                             {"kernel.shmmax", "68719476736"},
                                                             {"net.core.somaxconn", "1024"}}));
    ASSERT_EQ(d->network.add_hosts.size(), 2u);
    EXPECT_EQ(d->network.add_hosts[1], (HostEntry{"v6", "fd00::5"}));
    EXPECT_EQ(d->network.dns, (std::vector<std::string>{"192.0.2.53", "2001:db8::53"}));
    EXPECT_EQ(d->security.mask, (std::vector<std::string>{"/proc/cpuinfo", "/srv/secret"}));
    EXPECT_EQ(d->security.unmask, (std::vector<std::string>{"/proc/kcore"}));
    auto again = parse(to_toml(*d));
    ASSERT_TRUE(again) << again.error().what();
    EXPECT_EQ(settings(*again), settings(*d));
    EXPECT_EQ(config::sysctl_path("net.ipv4.conf.all.forwarding"), "/proc/sys/net/ipv4/conf/all/forwarding");
}

TEST(Validation, ChecksTheOperatorKeys) {
    expect_errors(
        std::string(kMinimal),
        {
            {"[container.sysctl]\n\"kernel.panic\" = 1\n",
             "web.toml:4:1: container.sysctl.'kernel.panic' is not namespaced: it is the host's"},
            {"[container.sysctl]\n\"vm.swappiness\" = 1\n",
             "web.toml:4:1: container.sysctl.'vm.swappiness' is not namespaced"},
            {"[container.sysctl]\n\"net/../kernel/panic\" = 1\n",
             "web.toml:4:1: container.sysctl.'net/../kernel/panic' is not a sysctl name"},
            {"[container.sysctl]\n\"net..core\" = 1\n",
             "web.toml:4:1: container.sysctl.'net..core' is not a sysctl name"},
            {"[container.sysctl]\n\"net.core.somaxconn\" = \"1\\n2\"\n",
             "web.toml:4:24: container.sysctl.'net.core.somaxconn' is "},
            {"[container.sysctl]\n\"net.core.somaxconn\" = 1024\n[network]\nmode = \"host\"\n",
             "web.toml:4:1: container.sysctl.'net.core.somaxconn' is per network namespace, and with "
             "[network] mode = \"host\""},
            {"sysctl = 1\n", "web.toml:3:10: container.sysctl is an integer, expected a table"},
            {"timezone = \"../../etc/shadow\"\n",
             "web.toml:3:12: container.timezone = '../../etc/shadow' is not a time zone name"},
            {"timezone = \"/etc/localtime\"\n",
             "web.toml:3:12: container.timezone = '/etc/localtime' is not a time zone name"},
            {"read_only_tmpfs = true\n",
             "web.toml:3:1: container.read_only_tmpfs = true needs container.read_only = true"},
            {"shm_size = \"1\"\n", "web.toml:3:12: container.shm_size = 1 is too small"},
            {"shm_size = \"infinity\"\n",
             "web.toml:3:12: container.shm_size = 'infinity' is not a valid size"},
            {"[network]\nadd_hosts = [\"db\"]\n",
             "web.toml:4:14: network.add_hosts[0] = 'db' is not a host entry, expected \"NAME:ADDRESS\""},
            {"[network]\nadd_hosts = [\"d b:10.0.0.1\"]\n",
             "web.toml:4:14: network.add_hosts[0] = 'd b:10.0.0.1' is not a host entry"},
            {"[network]\nadd_hosts = [\"db:10.0.0.300\"]\n",
             "web.toml:4:14: network.add_hosts[0] = 'db:10.0.0.300' is not a host entry"},
            {"[network]\ndns = [\"8.8.8.8\", \"dns.google\"]\n",
             "web.toml:4:19: network.dns[1] = 'dns.google' is not an IP address"},
            {"[network]\ndns_search = [\"a b\"]\n",
             "web.toml:4:15: network.dns_search[0] = 'a b' is not a domain"},
            {"[network]\ndns_options = [\"ndots:2\\nnameserver 1.2.3.4\"]\n",
             "web.toml:4:16: network.dns_options[0] = 'ndots:2"},
            {"[security]\nmask = [\"proc/x\"]\n",
             "web.toml:4:9: security.mask[0] = 'proc/x' is not an absolute"},
            {"[security]\nmask = [\"/\"]\n",
             "web.toml:4:8: security.mask has \"/\", which would hide the whole"},
            {"[security]\nunmask = [\"/etc/shadow\"]\n",
             "web.toml:4:11: security.unmask[0] = '/etc/shadow' is not a default masked or read-only path, "
             "expected \"ALL\" or one of /proc/asound"},
        });
    EXPECT_TRUE(parse(std::string(kMinimal) + "read_only = true\nread_only_tmpfs = true\n"));
    EXPECT_TRUE(parse(std::string(kMinimal) + "timezone = \"host\"\n[security]\nunmask = [\"ALL\"]\n"));
    EXPECT_TRUE(parse(std::string(kMinimal) +
                      "timezone = \"Etc/GMT+5\"\n[container.sysctl]\n\"kernel.sem\" = "
                      "\"250 32000 32 128\"\n\"kernel.msgmax\" = 8192\n"));
}
