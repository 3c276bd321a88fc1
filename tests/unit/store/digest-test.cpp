#include "store/digest.h"

#include <gtest/gtest.h>

using namespace berth::store;

TEST(Digest, Sha256MatchesKnownVectors) {
    EXPECT_EQ(sha256_digest(""), "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    Sha256 h;
    h.update("ab");
    h.update("c");
    EXPECT_EQ(h.finish(), "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Digest, ChainIdsFollowTheOciDefinition) {
    std::string a = sha256_digest("a"), b = sha256_digest("b"), c = sha256_digest("c");
    auto chains = chain_ids({a, b, c});
    ASSERT_EQ(chains.size(), 3u);
    EXPECT_EQ(chains[0], a) << "chainID(0) = diffID(0)";
    EXPECT_EQ(chains[1], sha256_digest(a + " " + b));
    EXPECT_EQ(chains[2], sha256_digest(chains[1] + " " + c));
    EXPECT_EQ(chain_id_next("", a), a);
}

TEST(Digest, ValidatesDigestStrings) {
    EXPECT_TRUE(valid_digest(sha256_digest("x")));
    EXPECT_FALSE(valid_digest("sha256:ABC"));
    EXPECT_FALSE(valid_digest("sha512:" + std::string(64, 'a')));
    EXPECT_FALSE(valid_digest("sha256:" + std::string(63, 'a')));
    EXPECT_EQ(digest_hex("bogus"), "");
}
