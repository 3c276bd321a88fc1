#include "basic/size-util.h"

#include <gtest/gtest.h>

using namespace berth;

TEST(SizeUtil, SizesAreDigitsWithAnOptionalBinaryUnitAndB) {
    EXPECT_EQ(parse_size("1024", false), 1024u);
    EXPECT_EQ(parse_size("64K", false), 64ull << 10);
    EXPECT_EQ(parse_size("64k", false), 64ull << 10);
    EXPECT_EQ(parse_size("512MB", false), 512ull << 20);
    EXPECT_EQ(parse_size("1gb", false), 1ull << 30);
    EXPECT_EQ(parse_size("2T", false), 2ull << 40);
    EXPECT_EQ(parse_size("3P", false), 3ull << 50);
    EXPECT_EQ(parse_size("7E", false), 7ull << 60);
    EXPECT_EQ(parse_size("10B", false), 10u);
    EXPECT_EQ(parse_size(" 10G ", false), 10ull << 30);
    for (const char* bad :
         {"", "G", "B", "-1", "1.5G", "10 G", "12X", "1GiB", "0x10", "16E", "99999999999999999999"})
        EXPECT_FALSE(parse_size(bad, false)) << bad;
}

TEST(SizeUtil, InfinityOnlyWhereTheCallerAllowsIt) {
    EXPECT_EQ(parse_size("infinity", true), kInfinity);
    EXPECT_FALSE(parse_size("infinity", false));
    // UINT64_MAX itself would read back as "infinity": refused as a number.
    EXPECT_FALSE(parse_size("18446744073709551615", true));
}

TEST(SizeUtil, FormatPicksTheLargestExactUnitAndRoundTrips) {
    EXPECT_EQ(format_size(512ull << 20), "512M");
    EXPECT_EQ(format_size(1536), "1536");
    EXPECT_EQ(format_size(kInfinity), "infinity");
    for (uint64_t v : {0ull, 1ull, 4096ull, 3ull << 50, 7ull << 60})
        EXPECT_EQ(parse_size(format_size(v), false), v) << v;
}

TEST(SizeUtil, DurationsFollowSystemdTimeSpans) {
    EXPECT_EQ(parse_duration_us("30", false), 30'000'000u);
    EXPECT_EQ(parse_duration_us("1h 30min", false), 5'400'000'000u);
    EXPECT_EQ(parse_duration_us("100ms", false), 100'000u);
    EXPECT_EQ(parse_duration_us("infinity", true), kInfinity);
    EXPECT_FALSE(parse_duration_us("infinity", false));
    EXPECT_FALSE(parse_duration_us("1h 30", false));
    EXPECT_FALSE(parse_duration_us("5 fortnights", false));
    EXPECT_EQ(format_duration(5'400'000'000u), "1h 30min");
}
