// gzip layers decoded by ISA-L (store/gzip-isal.h) give what libarchive's zlib gives: the same
// diff ID, size and blob digest for one member, several members, a member that ends where the
// peek for the next one straddles two input buffers, and trailing bytes; and an error, never a
// layer, for a corrupt or truncated stream (and, stricter than libarchive, a wrong trailer).
// extract_layer with no destination only decompresses and hashes, so no root is needed.
// Skipped where libisal2 is not installed.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>

#include "basic/io-util.h"
#include "basic/unique.h"
#include "store/digest.h"
#include "store/gzip-isal.h"
#include "store/layer-extract.h"

namespace berth::store {
namespace {

// A gzip member of `data` at `level` (0: stored blocks, whose size is exact to plan).
std::string gzip(const std::string& data, int level) {
    z_stream z{};
    EXPECT_EQ(deflateInit2(&z, level, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
    std::string out(deflateBound(&z, data.size()) + 64, '\0');
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
    z.avail_in = static_cast<uInt>(data.size());
    z.next_out = reinterpret_cast<Bytef*>(out.data());
    z.avail_out = static_cast<uInt>(out.size());
    EXPECT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
    out.resize(z.total_out);
    deflateEnd(&z);
    return out;
}

// Text and random bytes (a layer's mix), `size` of them.
std::string payload(size_t size, unsigned seed) {
    std::mt19937 rng(seed);
    std::string s;
    s.reserve(size);
    while (s.size() < size) {
        if (rng() % 2) {
            s += "usr/lib/x86_64-linux-gnu/libexample.so." + std::to_string(rng() % 100) + "\n";
        } else {
            for (int i = 0; i < 64; ++i) s += static_cast<char>(rng());
        }
    }
    s.resize(size);
    return s;
}

struct Decoded {
    bool ok = false;
    std::string error;
    ExtractResult result;
};

// extract_layer (hash only) of `blob` with ISA-L, or with libarchive's zlib (`zlib`).
Decoded decode(const std::string& blob, bool zlib) {
    if (zlib)
        ::setenv("BERTH_GZIP_DECODER", "zlib", 1);
    else
        ::unsetenv("BERTH_GZIP_DECODER");
    UniqueFd fd(::memfd_create("layer", MFD_CLOEXEC));
    EXPECT_TRUE(fd.valid());
    EXPECT_TRUE(write_all(fd.get(), blob, "layer"));
    EXPECT_EQ(::lseek(fd.get(), 0, SEEK_SET), 0);
    ExtractOptions options;
    auto r = extract_layer(fd.get(), "", options);
    ::unsetenv("BERTH_GZIP_DECODER");
    Decoded d;
    d.ok = r.has_value();
    if (r)
        d.result = *r;
    else
        d.error = r.error().what();
    return d;
}

class GzipDecoder : public ::testing::Test {
protected:
    void SetUp() override {
        if (!use_isal_for_gzip()) GTEST_SKIP() << "libisal.so.2 is not installed (Debian: libisal2)";
    }

    // Both decoders accept `blob` and agree; the uncompressed bytes are `plain`.
    static void expect_same(const std::string& blob, const std::string& plain) {
        Decoded isal = decode(blob, false), zlib = decode(blob, true);
        ASSERT_TRUE(zlib.ok) << zlib.error;
        ASSERT_TRUE(isal.ok) << isal.error;
        EXPECT_EQ(isal.result.compression, "gzip");
        EXPECT_EQ(zlib.result.compression, "gzip");
        EXPECT_EQ(isal.result.diff_id, sha256_digest(plain));
        EXPECT_EQ(isal.result.diff_id, zlib.result.diff_id);
        EXPECT_EQ(isal.result.size, plain.size());
        EXPECT_EQ(isal.result.size, zlib.result.size);
        EXPECT_EQ(isal.result.blob_digest, sha256_digest(blob));
        EXPECT_EQ(isal.result.blob_size, blob.size());
    }

    // Both decoders refuse `blob`; returns ISA-L's error.
    static std::string expect_refused(const std::string& blob) {
        Decoded isal = decode(blob, false), zlib = decode(blob, true);
        EXPECT_FALSE(zlib.ok) << "zlib accepted it";
        EXPECT_FALSE(isal.ok) << "ISA-L accepted it";
        return isal.error;
    }
};

TEST_F(GzipDecoder, OneMemberAcrossManyInputBuffersGivesZlibsDiffId) {
    std::string plain = payload(5 << 20, 1);
    expect_same(gzip(plain, 6), plain);
    expect_same(gzip(plain, 1), plain);
    expect_same(gzip(plain, 9), plain);
}

TEST_F(GzipDecoder, ConcatenatedMembersAreOneStream) {
    std::string a = payload(3 << 20, 2), b = payload(100000, 3), c = payload(1 << 20, 4);
    expect_same(gzip(a, 6) + gzip(b, 6) + gzip(c, 1), a + b + c);
    expect_same(gzip(a, 6) + gzip("", 6), a);  // an empty last member
}

TEST_F(GzipDecoder, AMemberEndingWhereThePeekForTheNextStraddlesTwoReadsStillFindsIt) {
    // Stored blocks: the member's size is exact, so it can end 2 bytes before the first 1 MiB
    // read does; the next member's header then starts in one read and ends in the next.
    const size_t target = (1 << 20) - 2;
    std::string a = payload(target - 200, 5);
    while (gzip(a, 0).size() < target) a += 'x';
    while (gzip(a, 0).size() > target) a.pop_back();
    ASSERT_EQ(gzip(a, 0).size(), target);
    std::string b = payload(300000, 6);
    expect_same(gzip(a, 0) + gzip(b, 6), a + b);
    // And a member that ends exactly at the end of the first read.
    a += "xx";
    ASSERT_EQ(gzip(a, 0).size(), size_t{1} << 20);
    expect_same(gzip(a, 0) + gzip(b, 6), a + b);
}

TEST_F(GzipDecoder, TrailingBytesAfterTheLastMemberAreInTheBlobDigestOnly) {
    std::string plain = payload(2 << 20, 7);
    expect_same(gzip(plain, 6) + std::string(1000, '\0'), plain);
    expect_same(gzip(plain, 6) + "garbage after the stream", plain);
    expect_same(gzip(plain, 6) + "\x1f", plain);  // too short to be a header
}

TEST_F(GzipDecoder, CorruptOrTruncatedStreamsAreRefused) {
    std::string plain = payload(2 << 20, 8);
    std::string good = gzip(plain, 6);
    {
        SCOPED_TRACE("corrupt deflate data");
        std::string corrupt = good;
        for (size_t i = 1000; i < 1100; ++i) corrupt[i] = static_cast<char>(~corrupt[i]);
        EXPECT_NE(expect_refused(corrupt).find("gzip decompression failed"), std::string::npos);
    }
    {
        SCOPED_TRACE("cut in the middle");
        EXPECT_NE(expect_refused(good.substr(0, good.size() / 2)).find("truncated gzip input"),
                  std::string::npos);
    }
    {
        SCOPED_TRACE("cut inside the trailer");
        expect_refused(good.substr(0, good.size() - 3));
    }
    {
        SCOPED_TRACE("a second member cut short (its header is valid: not trailing bytes)");
        std::string second = gzip(plain, 6);
        second.resize(second.size() / 2);
        expect_refused(good + second);
    }
}

// Stricter than libarchive 3.6's gzip filter, which skips the trailer unchecked: ISA-L checks
// each member's CRC-32 and size, as Go's compress/gzip (docker, podman, containerd) does. Content
// that decompresses cleanly but mismatches its trailer is damaged somewhere; the diff ID check
// would catch changed content, this catches it earlier and says what is wrong.
TEST_F(GzipDecoder, AWrongCrcOrSizeInTheTrailerIsRefused) {
    std::string plain = payload(2 << 20, 9);
    std::string good = gzip(plain, 6);
    for (size_t from_end : {size_t{8}, size_t{4}}) {  // CRC-32, then ISIZE
        SCOPED_TRACE(from_end == 8 ? "CRC-32" : "ISIZE");
        std::string bad = good;
        bad[bad.size() - from_end] = static_cast<char>(bad[bad.size() - from_end] ^ 1);
        Decoded isal = decode(bad, false);
        ASSERT_FALSE(isal.ok) << "ISA-L accepted a wrong trailer";
        EXPECT_NE(isal.error.find("CRC-32 or size in the gzip trailer does not match"), std::string::npos)
            << isal.error;
    }
}

// Damaged streams (a few random bytes changed, fixed seeds): whenever both decoders accept one,
// they give the same layer; ISA-L accepts nothing zlib refuses (the digests would catch a
// different layer, but a decoder that disagrees silently is a bug of its own).
TEST_F(GzipDecoder, RandomlyDamagedStreamsNeverDecodeDifferently) {
    std::string plain = payload(300000, 10);
    std::string good = gzip(plain, 6);
    std::mt19937 rng(17);
    int both = 0, neither = 0, only_zlib = 0;
    for (int i = 0; i < 300; ++i) {
        std::string bad = good;
        int changes = 1 + static_cast<int>(rng() % 3);
        for (int c = 0; c < changes; ++c) bad[rng() % bad.size()] = static_cast<char>(rng());
        Decoded isal = decode(bad, false), zlib = decode(bad, true);
        EXPECT_FALSE(isal.ok && !zlib.ok)
            << "case " << i << ": ISA-L accepted what zlib refuses: " << zlib.error;
        if (isal.ok && zlib.ok) {
            ++both;
            EXPECT_EQ(isal.result.diff_id, zlib.result.diff_id) << "case " << i;
            EXPECT_EQ(isal.result.size, zlib.result.size) << "case " << i;
        } else if (!isal.ok && !zlib.ok) {
            ++neither;
        } else if (zlib.ok) {
            // What libarchive accepts here is another layer (it skips the trailer's CRC-32):
            // ISA-L refuses it for the trailer, naming it.
            ++only_zlib;
            EXPECT_NE(zlib.result.diff_id, sha256_digest(plain)) << "case " << i << ": " << isal.error;
            EXPECT_NE(isal.error.find("gzip trailer does not match"), std::string::npos) << "case " << i;
        }
    }
    std::fprintf(stderr, "damaged streams: %d accepted by both, %d by neither, %d by zlib only\n", both,
                 neither, only_zlib);
}

TEST_F(GzipDecoder, AGzipBombStopsAtTheRatioLimitWithEitherDecoder) {
    std::string zeros = gzip(std::string(size_t{200} << 20, '\0'), 9);
    for (bool zlib : {false, true}) {
        SCOPED_TRACE(zlib ? "zlib" : "isal");
        if (zlib) ::setenv("BERTH_GZIP_DECODER", "zlib", 1);
        UniqueFd fd(::memfd_create("bomb", MFD_CLOEXEC));
        ASSERT_TRUE(write_all(fd.get(), zeros, "bomb"));
        ASSERT_EQ(::lseek(fd.get(), 0, SEEK_SET), 0);
        ExtractOptions options;
        options.limits.max_ratio = 100;
        auto r = extract_layer(fd.get(), "", options);
        ::unsetenv("BERTH_GZIP_DECODER");
        ASSERT_FALSE(r) << "a 200 MiB bomb of " << zeros.size() << " bytes passed";
        EXPECT_EQ(r.error().code, EFBIG);
        EXPECT_NE(r.error().message.find("max_layer_ratio"), std::string::npos) << r.error().what();
    }
}

}  // namespace
}  // namespace berth::store
