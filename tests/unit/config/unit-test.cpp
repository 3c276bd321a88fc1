// render_unit(): the pure declaration -> unit text transformation, against golden files.
#include "config/unit.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include "basic/fs-util.h"
#include "config/config.h"
#include "test-util.h"

using namespace berth;
using namespace berth::config;

namespace {
std::string golden(const std::string& name) {
    auto text = read_file(test::source_root() + "/tests/data/config/units/" + name);
    EXPECT_TRUE(text) << name;
    return text ? *text : "";
}

// BERTH_UPDATE_GOLDEN=1 rewrites the golden file instead (then review the diff with git).
std::string golden(const std::string& name, const std::string& actual) {
    std::string path = test::source_root() + "/tests/data/config/units/" + name;
    if (getenv("BERTH_UPDATE_GOLDEN")) (void)write_file(path, actual);
    return golden(name);
}

Declaration from_data(const std::string& name) {
    std::string path = test::source_root() + "/tests/data/config/units/" + name + ".toml";
    auto text = read_file(path);
    EXPECT_TRUE(text);
    auto d =
        parse_declaration(name, SourceText{"/etc/berth/containers/" + name + ".toml", text ? *text : ""});
    EXPECT_TRUE(d) << d.error().what();
    return d ? *d : Declaration{};
}

UnitOptions options() {
    UnitOptions o;
    o.bindir = "/usr/bin";
    o.pinned_dir = "/run/systemd/generator/berth";
    return o;
}
}  // namespace

TEST(RenderUnit, MapsEverySettingOfAFullDeclaration) {
    std::string unit = render_unit(from_data("full"), options());
    EXPECT_EQ(unit, golden("full.service", unit));
}

TEST(RenderUnit, WritesOnlyTheFixedKeysForAMinimalDeclaration) {
    std::string unit = render_unit(from_data("minimal"), options());
    EXPECT_EQ(unit, golden("minimal.service", unit));
}

// issue #21: systemd's device program on the unit closes devices, the declared ones open.
TEST(RenderUnit, ClosesTheDevicePolicyAndAllowsTheDeclaredDevices) {
    Declaration d = from_data("minimal");
    d.security.devices = {"/dev/fuse:rw", "/dev/kvm", "example.com/gpu=all"};
    UnitOptions o = options();
    std::vector<std::string> asked;
    o.cdi_device_allow = [&](const std::vector<std::string>& names) {
        asked = names;
        return std::optional<std::vector<std::string>>({"/dev/card0 rw"});
    };
    std::string unit = render_unit(d, o);
    EXPECT_EQ(asked, std::vector<std::string>{"example.com/gpu=all"});
    EXPECT_NE(unit.find("\nDevicePolicy=closed\nDeviceAllow=/dev/tty rwm\n"), std::string::npos) << unit;
    EXPECT_NE(unit.find("\nDeviceAllow=/dev/fuse rw\nDeviceAllow=/dev/kvm rwm\nDeviceAllow=/dev/card0 rw\n"),
              std::string::npos)
        << unit;
    // CDI names that do not resolve when the unit is generated: systemd's default policy, and a
    // comment saying that the runtime's own program closes the devices.
    o.cdi_device_allow = [](const std::vector<std::string>&) {
        return std::optional<std::vector<std::string>>();
    };
    unit = render_unit(d, o);
    EXPECT_EQ(unit.find("\nDevicePolicy="), std::string::npos) << unit;
    EXPECT_NE(unit.find("# DevicePolicy= left open"), std::string::npos) << unit;
}

TEST(RenderUnit, UsesTheContainerStopTimeoutWhenTheServiceHasNone) {
    Declaration d = from_data("minimal");
    d.stop_timeout_us = 20000000;
    EXPECT_NE(render_unit(d, options()).find("\nTimeoutStopSec=20s\n"), std::string::npos);
    d.service.timeout_stop_us = 5000000;
    EXPECT_NE(render_unit(d, options()).find("\nTimeoutStopSec=5s\n"), std::string::npos);
}

TEST(RenderUnit, EscapesSpecifiersAndQuotesPathsWithSpaces) {
    Declaration d = from_data("minimal");
    UnitOptions o = options();
    o.bindir = "/opt/my tools/100%";
    std::string unit = render_unit(d, o);
    EXPECT_NE(unit.find("ExecStart=\"/opt/my tools/100%%/berth\" run --systemd"), std::string::npos) << unit;
}

TEST(RenderUnit, AnInvalidDeclarationGetsAUnitThatFailsWithTheError) {
    auto d =
        parse_declaration("bad", SourceText{"/etc/berth/containers/bad.toml", "[container]\nimage = 5\n"});
    ASSERT_FALSE(d);
    std::string unit = render_failed_unit("bad", "/etc/berth/containers/bad.toml", d.error(), options());
    EXPECT_EQ(unit, golden("invalid.service", unit));
}

TEST(RenderUnit, LoadsEachSecretAsACredentialNamingOnlyItsSource) {
    auto d = parse_declaration(
        "web", SourceText{"/etc/berth/containers/web.toml",
                          "[container]\nimage = \"busybox\"\n"
                          "[[secret]]\nname = \"db\"\nsource = \"/etc/berth/db.cred\"\nencrypted = true\n"
                          "[[secret]]\nname = \"plain\"\nsource = \"/etc/berth/100%.txt\"\n"
                          "[[secret]]\nname = \"tok\"\nsource = \"credential:host.tok\"\n"});
    ASSERT_TRUE(d) << d.error().what();
    std::string unit = render_unit(*d, options());
    EXPECT_NE(unit.find("\nLoadCredentialEncrypted=db:/etc/berth/db.cred\n"), std::string::npos) << unit;
    EXPECT_NE(unit.find("\nLoadCredential=plain:/etc/berth/100%%.txt\n"), std::string::npos) << unit;
    EXPECT_NE(unit.find("\nLoadCredential=tok:host.tok\n"), std::string::npos) << unit;
}

TEST(RenderUnit, ASocketUnitListensOnEachSocketAndCarriesTheInstall) {
    auto d =
        parse_declaration("web", SourceText{"/etc/berth/containers/web.toml",
                                            "[container]\nimage = \"busybox\"\n"
                                            "[[socket]]\nlisten = \"127.0.0.1:8080\"\n"
                                            "[[socket]]\nlisten = \"/run/web.sock\"\ntype = \"datagram\"\n"});
    ASSERT_TRUE(d) << d.error().what();
    EXPECT_EQ(render_socket(*d),
              "# Generated by berth-generator(8) from /etc/berth/containers/web.toml.\n"
              "[Unit]\n"
              "Description=berth container web (sockets)\n"
              "Documentation=man:berth.toml(5) man:berth(1)\n"
              "SourcePath=/etc/berth/containers/web.toml\n"
              "\n[Socket]\n"
              "ListenStream=127.0.0.1:8080\n"
              "ListenDatagram=/run/web.sock\n"
              "Service=berth@web.service\n");

    test::TempDir dir("berth-unit-socket");
    ASSERT_TRUE(mkdir_p(dir / "in"));
    ASSERT_TRUE(write_file(dir / "in/web.toml",
                           "[container]\nimage = \"busybox\"\n[[socket]]\nlisten = \"127.0.0.1:8080\"\n"));
    SearchPaths paths;
    paths.dirs = {dir / "in"};
    auto report = generate(paths, dir / "out", options());
    ASSERT_TRUE(report) << report.error().what();
    EXPECT_TRUE(path_exists(dir / "out/berth@web.socket"));
    EXPECT_TRUE(path_exists(dir / "out/berth@web.service"));
    char link[256] = {};
    ASSERT_GT(::readlink((dir / "out/berth.target.wants/berth@web.socket").c_str(), link, sizeof link - 1),
              0);
    EXPECT_STREQ(link, "../berth@web.socket");
    EXPECT_FALSE(path_exists(dir / "out/berth.target.wants/berth@web.service"));
}

// Issue #20: a container on declared networks requires and orders after each network's unit
// (stopping berth-network@NAME.service stops it); mode "network" alone means the default one.
TEST(RenderUnit, AContainerOnNetworksRequiresAndFollowsTheirUnits) {
    Declaration d = from_data("minimal");
    d.network.mode = NetworkMode::Network;
    d.network.networks = {{"app", "", {}}, {"db", "10.89.2.5", {}}};
    std::string unit = render_unit(d, options());
    EXPECT_NE(unit.find("\nRequires=berth-network@app.service berth-network@db.service\n"), std::string::npos)
        << unit;
    EXPECT_NE(unit.find("\nAfter=berth-network@app.service berth-network@db.service\n"), std::string::npos)
        << unit;
    d.network.networks.clear();
    EXPECT_NE(render_unit(d, options()).find("\nRequires=berth-network@default.service\n"),
              std::string::npos);
}
