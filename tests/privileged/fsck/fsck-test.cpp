// berth fsck (store/fsck.h) on a real store (overlay backend in a temporary root): a fresh import
// is clean; a flipped byte in a blob, a blob that went missing and a stray blob are each found;
// --repair removes the stray blob and nothing else; a layer kept as a tar-split is rebuilt and
// hashed, and a changed layer file is named.
#include <fcntl.h>
#include <unistd.h>

#include <filesystem>

#include "../escape/berth-harness.h"
#include "store/digest.h"
#include "store/fsck.h"
#include "store/store.h"

namespace fs = std::filesystem;
using namespace berth;
using namespace berth::test;
using berth::store::FsckProblem;

namespace {

class Fsck : public ::testing::Test {
protected:
    void SetUp() override {
        BERTH_REQUIRE_ROOT();
        ASSERT_TRUE(make_busybox_rootfs(dir_ / "rootfs"));
        RunResult t = run_capture({"tar", "-C", dir_ / "rootfs", "-cf", dir_ / "rootfs.tar", "."});
        ASSERT_EQ(t.exit_code, 0) << t.out;
        store::StoreOptions o;
        o.root = dir_ / "store";
        o.backend = "overlay";
        auto s = store::Store::open(o);
        ASSERT_TRUE(s) << s.error().what();
        store_ = std::move(*s);
        auto img = store_->import_image_path(dir_ / "rootfs.tar", store::ImportFormat::RootfsTar, "fsck-test:1");
        ASSERT_TRUE(img) << img.error().what();
        image_ = *img;
        ASSERT_FALSE(image_.layers.empty());
    }
    void TearDown() override { store_.reset(); }

    std::string blob(const std::string& digest) {
        return dir_ / ("store/blobs/sha256/" + std::string(store::digest_hex(digest)));
    }
    static size_t count(const store::FsckReport& r, FsckProblem::Kind k) {
        size_t n = 0;
        for (const auto& p : r.problems) n += p.kind == k;
        return n;
    }

    TempDir dir_{"berth-fsck"};
    std::unique_ptr<store::Store> store_;
    store::ImageInfo image_;
};

TEST_F(Fsck, AFreshlyImportedStoreIsClean) {
    auto r = store::fsck(*store_, false);
    ASSERT_TRUE(r) << r.error().what();
    EXPECT_EQ(r->damage(), 0u);
    EXPECT_EQ(r->garbage(), 0u);
    EXPECT_GE(r->blobs_checked, 2u);
    EXPECT_EQ(r->images_checked, 1u);
    EXPECT_EQ(r->layers_checked, image_.layers.size());
    EXPECT_GT(r->bytes_hashed, 0u);
}

TEST_F(Fsck, FindsABlobWhoseContentNoLongerMatchesItsDigest) {
    // (The uncompressed layer is kept as a tar-split, not a blob file: the config is a blob.)
    std::string p = blob(image_.config_digest);
    ASSERT_TRUE(fs::exists(p));
    int fd = open(p.c_str(), O_WRONLY | O_APPEND);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(write(fd, "x", 1), 1);
    close(fd);
    auto r = store::fsck(*store_, true);
    ASSERT_TRUE(r) << r.error().what();
    EXPECT_EQ(count(*r, FsckProblem::Kind::CorruptBlob), 1u);
    EXPECT_EQ(r->damage(), 1u);
    EXPECT_TRUE(fs::exists(p)) << "--repair must not delete data an image needs";
}

TEST_F(Fsck, RebuildsASplitLayerBlobAndNamesALayerFileThatChanged) {
    const auto& layer = image_.layers[0];
    ASSERT_FALSE(fs::exists(blob(layer.digest))) << "an uncompressed layer is kept as a tar-split";
    auto clean = store::fsck(*store_, false);
    ASSERT_TRUE(clean) << clean.error().what();
    EXPECT_EQ(clean->damage(), 0u);
    auto view = store_->backend().layer_view(layer.chain_id);
    ASSERT_TRUE(view) << view.error().what();
    std::string victim = *view + "/bin/busybox";
    ASSERT_TRUE(fs::exists(victim));
    int fd = open(victim.c_str(), O_WRONLY);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(pwrite(fd, "x", 1, 100), 1);
    close(fd);
    (void)store_->backend().release_layer_view(layer.chain_id);
    auto r = store::fsck(*store_, true);
    ASSERT_TRUE(r) << r.error().what();
    EXPECT_EQ(count(*r, FsckProblem::Kind::CorruptBlob), 1u);
    bool named = false;
    for (const auto& pr : r->problems) named |= pr.detail.find("'bin/busybox'") != std::string::npos;
    EXPECT_TRUE(named) << "the damaged file is named";
    EXPECT_TRUE(store_->get_image("fsck-test:1")) << "--repair keeps the image";
}

TEST_F(Fsck, FindsAMissingBlob) {
    ASSERT_EQ(unlink(blob(image_.config_digest).c_str()), 0);
    auto r = store::fsck(*store_, false);
    ASSERT_TRUE(r) << r.error().what();
    EXPECT_EQ(count(*r, FsckProblem::Kind::MissingBlob), 1u);
}

TEST_F(Fsck, RepairRemovesAnUnreferencedBlobAndKeepsTheImage) {
    std::string data = "stray blob";
    std::string digest = store::sha256_digest(data);
    write_file(blob(digest), data);
    auto r = store::fsck(*store_, false);
    ASSERT_TRUE(r) << r.error().what();
    EXPECT_EQ(count(*r, FsckProblem::Kind::UnreferencedBlob), 1u);
    EXPECT_EQ(r->garbage(), 1u);
    EXPECT_EQ(r->damage(), 0u);
    auto fixed = store::fsck(*store_, true);
    ASSERT_TRUE(fixed) << fixed.error().what();
    EXPECT_EQ(fixed->garbage(), 0u);
    EXPECT_FALSE(fs::exists(blob(digest)));
    auto again = store::fsck(*store_, false);
    ASSERT_TRUE(again);
    EXPECT_EQ(again->damage(), 0u);
    EXPECT_EQ(again->garbage(), 0u);
    EXPECT_TRUE(store_->get_image("fsck-test:1"));
}

}  // namespace
