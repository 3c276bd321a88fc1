// The reference grammar against distribution/reference's own test table (reference_test.go,
// normalize_test.go), and qualify() with the default registry.
#include "registry/reference.h"

#include <gtest/gtest.h>

#include <string>

#include "registry/registries.h"

using namespace berth::registry;

namespace {

const std::string kHex = std::string(64, 'f');
const std::string kDigest = "sha256:" + kHex;

struct Valid {
    std::string text, domain, path, tag, digest;
};

}  // namespace

TEST(Reference, ParsesTheDistributionTableOfValidReferences) {
    const Valid table[] = {
        {"nginx", "", "nginx", "", ""},
        {"nginx:1.27", "", "nginx", "1.27", ""},
        {"library/nginx", "", "library/nginx", "", ""},
        {"docker.io/library/nginx", "docker.io", "library/nginx", "", ""},
        {"test_com", "", "test_com", "", ""},
        {"test.com:tag", "", "test.com", "tag", ""},
        {"test.com:5000", "", "test.com", "5000", ""},
        {"test.com/repo:tag", "test.com", "repo", "tag", ""},
        {"test:5000/repo", "test:5000", "repo", "", ""},
        {"test:5000/repo:tag", "test:5000", "repo", "tag", ""},
        {"test:5000/repo@" + kDigest, "test:5000", "repo", "", kDigest},
        {"test:5000/repo:tag@" + kDigest, "test:5000", "repo", "tag", kDigest},
        {"host:5000/team/app@" + kDigest, "host:5000", "team/app", "", kDigest},
        {"repo@" + kDigest, "", "repo", "", kDigest},
        {"lowercase:Uppercase", "", "lowercase", "Uppercase", ""},
        {"sub-dom1.foo.com/bar/baz/quux", "sub-dom1.foo.com", "bar/baz/quux", "", ""},
        {"sub-dom1.foo.com/bar/baz/quux:some-long-tag", "sub-dom1.foo.com", "bar/baz/quux", "some-long-tag",
         ""},
        {"b.gcr.io/test.example.com/my-app:test.example.com", "b.gcr.io", "test.example.com/my-app",
         "test.example.com", ""},
        {"xn--n3h.com/myimage:xn--n3h.com", "xn--n3h.com", "myimage", "xn--n3h.com", ""},
        {"foo_bar.com:8080", "", "foo_bar.com", "8080", ""},
        {"foo/foo_bar.com:8080", "", "foo/foo_bar.com", "8080", ""},
        {"192.168.1.1", "", "192.168.1.1", "", ""},
        {"192.168.1.1:tag", "", "192.168.1.1", "tag", ""},
        {"192.168.1.1:5000", "", "192.168.1.1", "5000", ""},
        {"192.168.1.1/repo", "192.168.1.1", "repo", "", ""},
        {"192.168.1.1:5000/repo", "192.168.1.1:5000", "repo", "", ""},
        {"192.168.1.1:5000/repo:5050", "192.168.1.1:5000", "repo", "5050", ""},
        {"[2001:db8::1]/repo", "[2001:db8::1]", "repo", "", ""},
        {"[2001:db8:1:2:3:4:5:6]/repo:tag", "[2001:db8:1:2:3:4:5:6]", "repo", "tag", ""},
        {"[2001:db8::1]:5000/repo", "[2001:db8::1]:5000", "repo", "", ""},
        {"[2001:db8::1]:5000/repo:tag", "[2001:db8::1]:5000", "repo", "tag", ""},
        {"[2001:db8::1]:5000/repo@" + kDigest, "[2001:db8::1]:5000", "repo", "", kDigest},
        {"[2001:db8::1]:5000/repo:tag@" + kDigest, "[2001:db8::1]:5000", "repo", "tag", kDigest},
        {"[2001:db8::]:5000/repo", "[2001:db8::]:5000", "repo", "", ""},
        {"[::1]:5000/repo", "[::1]:5000", "repo", "", ""},
        {"[::1]:5000/foo", "[::1]:5000", "foo", "", ""},
        {"localhost/foo", "localhost", "foo", "", ""},
        {"localhost:5000/foo/bar", "localhost:5000", "foo/bar", "", ""},
        {"Foo.Example.com/app", "Foo.Example.com", "app", "", ""},  // a domain may be upper case
        {"a/b__c/d-e--f/g.h", "", "a/b__c/d-e--f/g.h", "", ""},
        {"app:_tag", "", "app", "_tag", ""},
    };
    for (const Valid& v : table) {
        auto ref = parse_reference(v.text);
        ASSERT_TRUE(ref) << v.text << ": " << ref.error().what();
        EXPECT_EQ(ref->domain, v.domain) << v.text;
        EXPECT_EQ(ref->path, v.path) << v.text;
        EXPECT_EQ(ref->tag, v.tag) << v.text;
        EXPECT_EQ(ref->digest, v.digest) << v.text;
        EXPECT_EQ(ref->str(), v.text) << "the canonical text of a parsed reference is itself";
    }
}

TEST(Reference, RefusesTheDistributionTableOfInvalidReferences) {
    const std::pair<std::string, std::string> table[] = {
        {"", "empty"},
        {":justtag", "no repository"},
        {"@" + kDigest, "no repository"},
        {"repo@sha256:" + std::string(63, 'f'), "64 hex"},
        {"repo@sha256:" + std::string(64, 'F'), "lowercase hex"},
        {"repo@sha256:" + std::string(64, 'g'), "lowercase hex"},
        {"validname@invaliddigest:" + kHex, "not supported"},
        {"validname@" + kHex, "no algorithm"},
        {"Uppercase:tag", "lowercase"},
        {"test:5000/Uppercase/lowercase:tag", "lowercase"},
        {"aa/asdf$$^/aa", "invalid repository path component"},
        {"a^a", "invalid repository path component"},
        {"a//b", "invalid repository path component"},
        {"foo/", "invalid repository path component"},
        {"/foo", "invalid repository path component"},
        {"docker.io/", "invalid repository path component"},
        {"-foo", "invalid repository path component"},
        {"foo-", "invalid repository path component"},
        {"foo..bar", "invalid repository path component"},
        {"foo___bar", "invalid repository path component"},
        {"foo.-bar", "invalid repository path component"},
        {"repo:", "invalid tag"},
        {"repo:-tag", "invalid tag"},
        {"repo:.tag", "invalid tag"},
        {"repo:t@g", "digest"},
        {"repo:" + std::string(129, 'a'), "invalid tag"},
        {"repo:ta/g", "invalid"},
        {"[2001:db8::1]", "invalid"},
        {"[2001:db8::1]:5000", "invalid"},
        {"[2001:db8::1]:tag", "invalid"},
        {"[fe80::1%eth0]:5000/repo", "invalid registry domain"},
        {"[fe80::1%@invalidzone]:5000/repo", "invalid"},
        {"test.com:/repo", "invalid registry domain"},
        {"test.com:50a0/repo", "invalid registry domain"},
        {"-test.com/repo", "invalid registry domain"},
        {"test..com/repo", "invalid registry domain"},
        {"[]/repo", "invalid"},
        {"re po", "invalid"},
        {std::string("re\0po", 5), "invalid"},
        {"repo@" + kDigest + "@" + kDigest, "digest"},
    };
    for (const auto& [text, why] : table) {
        auto ref = parse_reference(text);
        ASSERT_FALSE(ref) << "'" << text << "' parsed as " << ref->str();
        EXPECT_NE(ref.error().what().find(why), std::string::npos) << text << ": " << ref.error().what();
    }
}

TEST(Reference, LimitsTheNameTo255Characters) {
    std::string name;
    for (int i = 0; i < 127; ++i) name += "a/";
    name += "a";  // 255 characters
    auto ok = parse_reference(name + ":tag-puts-this-over-max");
    ASSERT_TRUE(ok) << ok.error().what();
    auto too_long = parse_reference("a/" + name + ":tag");
    ASSERT_FALSE(too_long);
    EXPECT_NE(too_long.error().what().find("longer than 255"), std::string::npos) << too_long.error().what();
    // The domain counts: "host.com/" + 250 characters is over.
    EXPECT_FALSE(parse_reference("host.com/" + std::string(250, 'a')));
    EXPECT_TRUE(parse_reference("app:" + std::string(128, 'a')));
}

TEST(Reference, NamesARegistryOnlyForQualifiedNames) {
    EXPECT_FALSE(names_a_registry("web"));
    EXPECT_FALSE(names_a_registry("web:v1"));
    EXPECT_FALSE(names_a_registry("team/web"));
    EXPECT_FALSE(names_a_registry("sha256:" + kHex));
    EXPECT_TRUE(names_a_registry("docker.io/library/nginx:1.27"));
    EXPECT_TRUE(names_a_registry("localhost/foo"));
    EXPECT_TRUE(names_a_registry("127.0.0.1:5000/app@" + kDigest));
    EXPECT_FALSE(names_a_registry("docker.io/Bad"));
}

TEST(Qualify, AddsTheDefaultRegistryLibraryAndLatestToShortNames) {
    RegistriesConfig config;
    auto q = [&](const std::string& text) {
        auto ref = parse_reference(text);
        EXPECT_TRUE(ref) << text;
        auto out = qualify(*ref, config);
        return out ? out->str() : "error: " + out.error().what();
    };
    EXPECT_EQ(q("nginx"), "docker.io/library/nginx:latest");
    EXPECT_EQ(q("nginx:1.27"), "docker.io/library/nginx:1.27");
    EXPECT_EQ(q("library/nginx"), "docker.io/library/nginx:latest");
    EXPECT_EQ(q("team/app"), "docker.io/team/app:latest");
    EXPECT_EQ(q("docker.io/nginx"), "docker.io/library/nginx:latest");
    EXPECT_EQ(q("index.docker.io/nginx"), "docker.io/library/nginx:latest");
    EXPECT_EQ(q("index.docker.io/team/app:v1"), "docker.io/team/app:v1");
    EXPECT_EQ(q("registry-1.docker.io/library/nginx"), "docker.io/library/nginx:latest");
    EXPECT_EQ(q("nginx@" + kDigest), "docker.io/library/nginx@" + kDigest) << "a digest needs no tag";
    EXPECT_EQ(q("quay.io/team/app"), "quay.io/team/app:latest");
    EXPECT_EQ(q("localhost/foo:1"), "localhost/foo:1");
    EXPECT_EQ(q("quay.io/app"), "quay.io/app:latest") << "library/ is Docker Hub's alone";

    config.default_domain = "registry.example.com:5000";
    EXPECT_EQ(q("nginx"), "registry.example.com:5000/nginx:latest");
    config.default_domain = "";
    EXPECT_NE(q("nginx").find("short name"), std::string::npos) << q("nginx");
    EXPECT_NE(q("nginx").find("docker.io/nginx"), std::string::npos) << "says what to write instead";
    EXPECT_EQ(q("docker.io/nginx"), "docker.io/library/nginx:latest") << "qualified names still work";
}

TEST(Reference, RefusesAHugeTextWithoutQuotingIt) {
    auto ref = parse_reference(std::string(1 << 20, 'a'));
    ASSERT_FALSE(ref);
    EXPECT_LT(ref.error().what().size(), 200u) << "the message does not carry the megabyte";
    EXPECT_NE(ref.error().what().find("1048576 bytes"), std::string::npos) << ref.error().what();
}

TEST(Qualify, KeepsTheLengthLimitForTheQualifiedName) {
    RegistriesConfig config;
    std::string name(250, 'a');
    auto ref = parse_reference(name);
    ASSERT_TRUE(ref);
    auto q = qualify(*ref, config);
    ASSERT_FALSE(q) << q->str() << ": docker.io/library/ + 250 characters is over 255";
    EXPECT_NE(q.error().what().find("longer than 255"), std::string::npos) << q.error().what();
    EXPECT_TRUE(qualify(*parse_reference(std::string(237, 'a')), config)) << "docker.io/library/ + 237 = 255";
}
