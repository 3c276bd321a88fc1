// The tar-split recorder and rebuilder without a tar reader: a synthetic stream of "headers"
// and file contents, fed in awkward chunk sizes, must rebuild byte for byte from a tree holding
// the files, and every way the tree or the split can be wrong must fail, naming what is wrong.
#include "store/tar-split.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include "basic/fs-util.h"
#include "basic/unique.h"
#include "store/digest.h"
#include "test-util.h"

using namespace berth::store;

namespace {

struct Piece {
    std::string bytes;
    std::string file;  // non-empty: these bytes are this file's content
};

// Records `pieces` (fed in chunks of `chunk` bytes, the way a reader's read-ahead runs past an
// entry) into `split`, writing the referenced files under `tree`. Returns the stream.
std::string record(const std::vector<Piece>& pieces, const std::string& split, const std::string& tree,
                   size_t chunk) {
    std::string stream;
    for (const auto& p : pieces) stream += p.bytes;
    berth::UniqueFd out(::open(split.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    SplitRecorder rec(out.get());
    size_t fed = 0;
    auto feed_to = [&](size_t end) {  // the reader has read at least up to `end`
        while (fed < end || (fed < stream.size() && fed % chunk)) {
            size_t n = std::min(chunk - fed % chunk, stream.size() - fed);
            rec.feed(stream.data() + fed, n);
            fed += n;
        }
    };
    size_t pos = 0;
    for (const auto& p : pieces) {
        if (!p.file.empty()) {
            feed_to(pos);
            rec.header(pos);
            rec.begin_file(pos, p.bytes.size());
            EXPECT_TRUE(berth::write_file(tree + "/" + p.file, p.bytes));
            feed_to(pos + p.bytes.size());
            rec.end_file(p.file, p.bytes.size(), crc32c(0, p.bytes.data(), p.bytes.size()));
        }
        pos += p.bytes.size();
    }
    feed_to(stream.size());
    EXPECT_TRUE(rec.finish(stream.size(), sha256_digest(stream)));
    EXPECT_FALSE(rec.abandoned()) << rec.reason();
    return stream;
}

berth::Result<uint64_t> rebuild(const std::string& split, const std::string& tree, std::string* out,
                                const std::string& expect = "") {
    return rebuild_tar(split, tree, expect, [&](const char* p, size_t n) -> berth::Result<> {
        out->append(p, n);
        return {};
    });
}

std::vector<Piece> sample() {
    return {{std::string(1536, 'H'), ""},     {std::string(5000, 'a'), "a"},    {std::string(120, '\0'), ""},
            {std::string(512, 'h'), ""},      {std::string(512, 'b'), "dir/b"}, {std::string(1024, 'h'), ""},
            {std::string(1 << 20, 'c'), "c"}, {std::string(1024, '\0'), ""}};
}

}  // namespace

TEST(TarSplit, Crc32cMatchesTheKnownVector) {
    EXPECT_EQ(crc32c(0, "123456789", 9), 0xE3069283u);
    uint32_t c = crc32c(0, "1234", 4);
    EXPECT_EQ(crc32c(c, "56789", 5), 0xE3069283u) << "streaming";
}

TEST(TarSplit, ARecordedStreamRebuildsByteForByteWhateverTheChunkSize) {
    for (size_t chunk : {size_t(1), size_t(7), size_t(512), size_t(4096), size_t(1) << 20}) {
        SCOPED_TRACE(chunk);
        berth::test::TempDir dir;
        ASSERT_TRUE(berth::mkdir_p(dir / "tree/dir", 0755));
        std::string stream = record(sample(), dir / "split", dir / "tree", chunk);
        std::string out;
        auto n = rebuild(dir / "split", dir / "tree", &out, sha256_digest(stream));
        ASSERT_TRUE(n) << n.error().what();
        EXPECT_EQ(*n, stream.size());
        EXPECT_TRUE(out == stream);
        EXPECT_LT(berth::read_file(dir / "split")->size(), 6000u) << "file contents are not in the split";
    }
}

TEST(TarSplit, AChangedMissingOrResizedFileIsNamed) {
    berth::test::TempDir dir;
    ASSERT_TRUE(berth::mkdir_p(dir / "tree/dir", 0755));
    std::string stream = record(sample(), dir / "split", dir / "tree", 4096);
    std::string out;
    ASSERT_TRUE(berth::write_file(dir / "tree/dir/b", std::string(511, 'b') + "X"));
    auto r = rebuild(dir / "split", dir / "tree", &out);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().what().find("'dir/b'"), std::string::npos) << r.error().what();
    ASSERT_TRUE(berth::write_file(dir / "tree/dir/b", std::string(511, 'b')));
    r = rebuild(dir / "split", dir / "tree", &out);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().what().find("'dir/b' has 511 bytes"), std::string::npos) << r.error().what();
    ASSERT_EQ(::unlink((dir / "tree/dir/b").c_str()), 0);
    ASSERT_EQ(::symlink("../c", (dir / "tree/dir/b").c_str()), 0);
    r = rebuild(dir / "split", dir / "tree", &out);
    ASSERT_FALSE(r) << "a symlink is never followed";
    EXPECT_NE(r.error().what().find("'dir/b'"), std::string::npos) << r.error().what();
}

TEST(TarSplit, ATruncatedSplitOrAWrongDigestFails) {
    berth::test::TempDir dir;
    ASSERT_TRUE(berth::mkdir_p(dir / "tree/dir", 0755));
    std::string stream = record(sample(), dir / "split", dir / "tree", 512);
    std::string out;
    auto wrong = rebuild(dir / "split", dir / "tree", &out, sha256_digest("something else"));
    ASSERT_FALSE(wrong);
    EXPECT_EQ(wrong.error().code, EBADMSG);
    auto text = *berth::read_file(dir / "split");
    ASSERT_TRUE(berth::write_file(dir / "cut", text.substr(0, text.size() - 20)));
    auto cut = rebuild(dir / "cut", dir / "tree", &out);
    ASSERT_FALSE(cut);
    EXPECT_NE(cut.error().what().find("truncated"), std::string::npos) << cut.error().what();
}

TEST(TarSplit, UnreferencedDataBeyondTheBufferAbandonsTheSplit) {
    berth::test::TempDir dir;
    berth::UniqueFd out(::open((dir / "split").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
    SplitRecorder rec(out.get(), 4096);
    std::string big(10000, 'x');
    rec.feed(big.data(), big.size());
    EXPECT_TRUE(rec.abandoned());
    EXPECT_FALSE(rec.reason().empty());
}
