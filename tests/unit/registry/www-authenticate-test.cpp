// WWW-Authenticate (RFC 7235) as registries send it: Docker Hub's real header, several
// challenges in one header, quoted-string escapes, token68, and junk.
#include "registry/www-authenticate.h"

#include <gtest/gtest.h>

using namespace berth::registry;

TEST(WwwAuthenticate, ParsesDockerHubsHeader) {
    auto r = parse_www_authenticate(
        R"(Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull")");
    ASSERT_TRUE(r) << r.error().what();
    ASSERT_EQ(r->size(), 1u);
    const Challenge& c = (*r)[0];
    EXPECT_EQ(c.scheme, "bearer");
    EXPECT_EQ(c.params.at("realm"), "https://auth.docker.io/token");
    EXPECT_EQ(c.params.at("service"), "registry.docker.io");
    EXPECT_EQ(c.params.at("scope"), "repository:library/nginx:pull");
    EXPECT_EQ(c.params.size(), 3u);
    EXPECT_EQ(c.token68, "");
}

TEST(WwwAuthenticate, ParsesSeveralChallengesSpacesAndCase) {
    auto r = parse_www_authenticate(
        "Basic realm=\"Registry Realm\" , BEARER  Realm = \"https://a/t\" ,service=reg.local, "
        "scope=\"repository:a/b:pull,push\",error=\"insufficient_scope\",  Negotiate");
    ASSERT_TRUE(r) << r.error().what();
    ASSERT_EQ(r->size(), 3u);
    EXPECT_EQ((*r)[0].scheme, "basic");
    EXPECT_EQ((*r)[0].params.at("realm"), "Registry Realm");
    EXPECT_EQ((*r)[1].scheme, "bearer");
    EXPECT_EQ((*r)[1].params.at("realm"), "https://a/t") << "names are case-insensitive";
    EXPECT_EQ((*r)[1].params.at("service"), "reg.local") << "a token value";
    EXPECT_EQ((*r)[1].params.at("scope"), "repository:a/b:pull,push") << "a comma inside quotes";
    EXPECT_EQ((*r)[1].params.at("error"), "insufficient_scope");
    EXPECT_EQ((*r)[2].scheme, "negotiate");
    EXPECT_TRUE((*r)[2].params.empty());
}

TEST(WwwAuthenticate, UnquotesEscapes) {
    auto r = parse_www_authenticate(R"(Basic realm="say \"hi\" \\ back\slash", charset="UTF-8")");
    ASSERT_TRUE(r) << r.error().what();
    ASSERT_EQ(r->size(), 1u);
    EXPECT_EQ((*r)[0].params.at("realm"), R"(say "hi" \ backslash)");
    EXPECT_EQ((*r)[0].params.at("charset"), "UTF-8");
}

TEST(WwwAuthenticate, KeepsAToken68) {
    auto r = parse_www_authenticate("Negotiate YIIB/abc+def==, Bearer realm=\"https://a/t\", Custom abc");
    ASSERT_TRUE(r) << r.error().what();
    ASSERT_EQ(r->size(), 3u);
    EXPECT_EQ((*r)[0].scheme, "negotiate");
    EXPECT_EQ((*r)[0].token68, "YIIB/abc+def==");
    EXPECT_TRUE((*r)[0].params.empty());
    EXPECT_EQ((*r)[1].params.at("realm"), "https://a/t");
    EXPECT_EQ((*r)[2].token68, "abc");
}

TEST(WwwAuthenticate, EmptyIsNoChallenge) {
    for (const char* h : {"", "   ", " , ,"}) {
        auto r = parse_www_authenticate(h);
        ASSERT_TRUE(r) << h;
        EXPECT_TRUE(r->empty());
    }
}

TEST(WwwAuthenticate, RefusesJunkWithAReason) {
    for (std::string_view junk :
         {"Bearer realm=\"unterminated", "=realm", "Bearer realm=\"a\" @", "Bearer realm=,x=y",
          "Bearer realm=\"a\",=b", "\"quoted\"", "Bearer realm=\"a\"\r\nX: y", "Bearer realm=a b=c=d",
          "Bearer realm=\"a\" service=\"b\""}) {
        auto r = parse_www_authenticate(junk);
        EXPECT_FALSE(r) << "'" << junk << "' parsed";
        if (!r) {
            EXPECT_NE(r.error().what().find("WWW-Authenticate"), std::string::npos) << r.error().what();
        }
    }
    auto huge = parse_www_authenticate("Bearer realm=\"" + std::string(10000, 'a') + "\"");
    ASSERT_FALSE(huge);
    EXPECT_NE(huge.error().what().find("longer than"), std::string::npos);
}
