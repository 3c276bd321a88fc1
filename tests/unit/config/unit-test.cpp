// render_unit(): the pure declaration -> unit text transformation, against golden files.
#include "config/unit.h"

#include <gtest/gtest.h>

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
