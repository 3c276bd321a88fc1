// Declarations and registries (issue #17): image accepts remote references and digest pins
// (validated with the reference grammar, errors at file:line:col), [container] pull, the unit's
// network-online.target for a remote image, and what `berth plan` says about a changed reference.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "config/config.h"
#include "config/unit.h"

using namespace berth;
using namespace berth::config;

namespace {

const std::string kDigest = "sha256:" + std::string(64, 'c');

Result<Declaration> parse(const std::string& container_lines) {
    return parse_declaration("web", SourceText{"web.toml", "[container]\n" + container_lines});
}

std::string error_of(const std::string& container_lines) {
    auto d = parse(container_lines);
    return d ? "(valid)" : d.error().what();
}

std::string unit_of(const std::string& container_lines) {
    auto d = parse(container_lines);
    EXPECT_TRUE(d) << d.error().what();
    UnitOptions o;
    o.bindir = "/usr/bin";
    o.pinned_dir = "/run/systemd/generator/berth";
    return d ? render_unit(*d, o) : "";
}

}  // namespace

TEST(ImageReference, AcceptsLocalNamesRemoteReferencesDigestPinsAndIds) {
    for (const std::string& image : std::vector<std::string>{
             "busybox", "web:v1", "team/app:1.0", "docker.io/library/nginx:1.27", "127.0.0.1:5000/team/app",
             "[::1]:5000/app:v2", "quay.io/team/app@" + kDigest, "localhost/app:v1@" + kDigest, kDigest}) {
        auto d = parse("image = \"" + image + "\"\n");
        ASSERT_TRUE(d) << image << ": " << d.error().what();
        EXPECT_EQ(d->image, image);
        EXPECT_EQ(d->pull, registry::PullPolicy::Missing);
    }
}

TEST(ImageReference, ABadReferenceIsAnErrorAtItsPosition) {
    EXPECT_EQ(
        error_of("image = \"Docker.io/Library/nginx\"\n"),
        "web.toml:2:9: container.image = 'Docker.io/Library/nginx' is not a valid image reference "
        "(reference 'Docker.io/Library/nginx': repository name must be lowercase), expected NAME[:TAG], "
        "REGISTRY/NAME[:TAG][@sha256:DIGEST] or sha256:ID");
    for (const std::string& bad : std::vector<std::string>{
             "a//b", "app/", "app:", "app:-x", "host:5000/app@sha256:abc", "app@md5:" + std::string(32, 'a'),
             "-app", "app name", "app:" + std::string(129, 'a'), std::string(256, 'a')}) {
        std::string e = error_of("image = \"" + bad + "\"\n");
        EXPECT_EQ(e.rfind("web.toml:2:9: container.image = ", 0), 0u) << bad << ": " << e;
        EXPECT_NE(e.find("is not a valid image reference"), std::string::npos) << bad << ": " << e;
    }
    EXPECT_NE(error_of("image = \"sha256:abc\"\n").find("is not a valid image id"), std::string::npos);
}

TEST(ImageReference, PullIsOneOfFourWordsAndRoundTrips) {
    for (auto [word, policy] : {std::pair{"missing", registry::PullPolicy::Missing},
                                {"always", registry::PullPolicy::Always},
                                {"never", registry::PullPolicy::Never},
                                {"newer", registry::PullPolicy::Newer}}) {
        auto d = parse(std::string("image = \"quay.io/a/b\"\npull = \"") + word + "\"\n");
        ASSERT_TRUE(d) << d.error().what();
        EXPECT_EQ(d->pull, policy);
        auto again = parse_declaration("web", SourceText{"canonical.toml", to_toml(*d)});
        ASSERT_TRUE(again) << again.error().what();
        EXPECT_EQ(again->pull, policy) << to_toml(*d);
    }
    EXPECT_EQ(
        error_of("image = \"b\"\npull = \"if-not-present\"\n"),
        "web.toml:3:8: container.pull = 'if-not-present' is unknown, expected \"missing\" or \"always\" or "
        "\"never\" or \"newer\"");
    EXPECT_EQ(error_of("image = \"b\"\npull = true\n").substr(0, 38),
              "web.toml:3:8: container.pull is a bool");
    EXPECT_NE(error_of("image = \"b\"\npul = \"never\"\n").find("did you mean 'pull'?"), std::string::npos);
    EXPECT_EQ(to_toml(*parse("image = \"b\"\n")).find("pull"), std::string::npos)
        << "the default is not written: canonical files stay as they were";
}

TEST(ImageReference, ARemoteImageWaitsForTheNetwork) {
    std::string remote = unit_of("image = \"docker.io/library/nginx:1.27\"\n");
    EXPECT_NE(remote.find("\nWants=network-online.target\n"), std::string::npos) << remote;
    EXPECT_NE(remote.find("\nAfter=network-online.target\n"), std::string::npos) << remote;
    std::string pinned = unit_of("image = \"127.0.0.1:5000/app@" + kDigest + "\"\n");
    EXPECT_NE(pinned.find("After=network-online.target"), std::string::npos);
    std::string newer = unit_of("image = \"nginx\"\npull = \"newer\"\n");
    EXPECT_NE(newer.find("After=network-online.target"), std::string::npos)
        << "a short name asked of a registry";
    for (const std::string& local :
         std::vector<std::string>{"image = \"busybox\"\n", "image = \"nginx:1.27\"\npull = \"never\"\n",
                                  "image = \"" + kDigest + "\"\npull = \"always\"\n"}) {
        std::string unit = unit_of(local);
        EXPECT_EQ(unit.find("network-online"), std::string::npos) << local << unit;
    }
    // With the container's own dependencies, once each.
    auto d = parse_declaration("web", SourceText{"web.toml",
                                                 "[container]\nimage = \"quay.io/a/b\"\n[service]\n"
                                                 "wants = [\"network-online.target\"]\nafter = [\"db\"]\n"});
    ASSERT_TRUE(d) << d.error().what();
    UnitOptions o;
    o.bindir = "/usr/bin";
    o.pinned_dir = "/run";
    std::string unit = render_unit(*d, o);
    EXPECT_NE(unit.find("\nWants=network-online.target\n"), std::string::npos) << unit;
    EXPECT_NE(unit.find("\nAfter=network-online.target berth@db.service\n"), std::string::npos) << unit;
}

TEST(ImageReference, PlanDescribesAChangedReference) {
    auto a = parse("image = \"nginx:1.25\"\n"), b = parse("image = \"nginx:1.27\"\npull = \"newer\"\n");
    ASSERT_TRUE(a && b);
    EXPECT_EQ(describe_image_change(*a, *a), "");
    EXPECT_EQ(describe_image_change(*a, *b),
              "image 'nginx:1.25' -> 'nginx:1.27'; pull \"missing\" -> \"newer\"");
    auto c = parse("image = \"nginx:1.25@" + kDigest + "\"\n");
    ASSERT_TRUE(c);
    EXPECT_EQ(describe_image_change(*a, *c), "image 'nginx:1.25' -> 'nginx:1.25@" + kDigest + "'");
}

TEST(ImageReference, AutoUpdateIsOneOfThreeWordsFollowsANameAndRoundTrips) {
    for (auto [word, mode] : {std::pair{"registry", registry::AutoUpdateMode::Registry},
                              {"local", registry::AutoUpdateMode::Local},
                              {"off", registry::AutoUpdateMode::Off}}) {
        auto d =
            parse(std::string("image = \"127.0.0.1:5000/web:latest\"\nauto_update = \"") + word + "\"\n");
        ASSERT_TRUE(d) << d.error().what();
        EXPECT_EQ(d->auto_update, mode);
        auto again = parse_declaration("web", SourceText{"canonical.toml", to_toml(*d)});
        ASSERT_TRUE(again) << again.error().what();
        EXPECT_EQ(again->auto_update, mode) << to_toml(*d);
    }
    EXPECT_EQ(to_toml(*parse("image = \"b\"\n")).find("auto_update"), std::string::npos)
        << "the default is not written: canonical files stay as they were";
    EXPECT_EQ(
        error_of("image = \"b\"\nauto_update = \"always\"\n"),
        "web.toml:3:15: container.auto_update = 'always' is unknown, expected \"registry\" or \"local\" or "
        "\"off\"");
    EXPECT_EQ(error_of("image = \"b\"\nauto_update = true\n")
                  .rfind("web.toml:3:15: container.auto_update is a bool", 0),
              0u);
    EXPECT_EQ(error_of("rootfs = \"/srv/web\"\ncommand = [\"/bin/sh\"]\nauto_update = \"local\"\n"),
              "web.toml:4:1: container.auto_update = \"local\" needs container.image, expected an image name "
              "to follow (a rootfs directory has none)");
    EXPECT_EQ(error_of("image = \"127.0.0.1:5000/app@" + kDigest + "\"\nauto_update = \"registry\"\n"),
              "web.toml:3:1: container.auto_update = \"registry\" cannot follow the digest pin "
              "'127.0.0.1:5000/app@" +
                  kDigest + "', expected an image name with a tag (\"NAME:TAG\")");
    EXPECT_EQ(error_of("image = \"" + kDigest + "\"\nauto_update = \"local\"\n"),
              "web.toml:3:1: container.auto_update = \"local\" cannot follow the digest pin '" + kDigest +
                  "', expected an image name with a tag (\"NAME:TAG\")");
}
