#include "basic/names.h"

#include <gtest/gtest.h>

#include <string>

using namespace berth;

TEST(Names, ContainersAndVolumesShareOneGrammar) {
    for (auto kind : {NameKind::Container, NameKind::Volume}) {
        EXPECT_TRUE(is_valid_object_name(kind, "web-1.a_b"));
        EXPECT_TRUE(is_valid_object_name(kind, "9lives"));
        for (const char* bad :
             {"", ".", "..", "../x", "a/b", "-x", "_x", ".hidden", "a b", "a\nb", "a:b", "é"})
            EXPECT_FALSE(is_valid_object_name(kind, bad)) << bad;
    }
}

TEST(Names, EachKindHasTheLimitItsUsersNeed) {
    // 64: the container name is the default hostname (HOST_NAME_MAX).
    EXPECT_TRUE(is_valid_object_name(NameKind::Container, std::string(64, 'a')));
    EXPECT_FALSE(is_valid_object_name(NameKind::Container, std::string(65, 'a')));
    // 120: "v-NAME" and "c-NAME" snapshot ids stay within kSnapshotIdMax.
    EXPECT_TRUE(is_valid_object_name(NameKind::Volume, std::string(120, 'a')));
    EXPECT_FALSE(is_valid_object_name(NameKind::Volume, std::string(121, 'a')));
    static_assert(2 + kVolumeNameMax <= kSnapshotIdMax && 2 + kContainerNameMax <= kSnapshotIdMax);
    EXPECT_TRUE(is_plain_name("v-" + std::string(120, 'a'), kSnapshotIdMax));
}

TEST(Names, TheErrorSaysWhichKindAndWhatIsExpected) {
    auto r = check_object_name(NameKind::Volume, "a/b");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, EINVAL);
    EXPECT_EQ(r.error().what(),
              "invalid volume name 'a/b': expected 1 to 120 letters, digits, '_', '.' and '-', starting with "
              "a letter or digit: Invalid argument");
    auto c = check_object_name(NameKind::Container, std::string(65, 'x'));
    ASSERT_FALSE(c);
    EXPECT_NE(c.error().message.find("invalid container name"), std::string::npos);
    EXPECT_NE(c.error().message.find("1 to 64 letters"), std::string::npos);
    EXPECT_TRUE(check_object_name(NameKind::Container, "web"));
}

// Issue #16: the bus checked image names with its own, looser grammar (upper case passed and the
// job failed later); now the bus, the CLI and the store share normalize_image_name.
TEST(Names, ImageNamesHaveOneGrammarWithALowerCaseRepository) {
    EXPECT_EQ(*normalize_image_name("busybox"), "busybox:latest");
    EXPECT_EQ(*normalize_image_name("localhost:5000/team/app:V2"), "localhost:5000/team/app:V2");
    for (const char* bad : {"Busybox", "UPPER:1", "a b", "../../etc", "a//b", "x@sha256:00", "x:", ":x"}) {
        auto r = normalize_image_name(bad);
        ASSERT_FALSE(r) << bad;
        EXPECT_EQ(r.error().message.rfind("invalid image name", 0), 0u) << r.error().message;
    }
    // A long name is refused without being echoed whole.
    auto r = normalize_image_name(std::string(100000, 'a'));
    ASSERT_FALSE(r);
    EXPECT_LT(r.error().message.size(), 400u);
}
