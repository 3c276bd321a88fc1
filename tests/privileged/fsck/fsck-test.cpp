// berth fsck (store/fsck.h) on a real store (overlay backend in a temporary root): a fresh import
// is clean; a flipped byte in a blob, a blob that went missing and a stray blob are each found;
// --repair removes the stray blob and nothing else; a layer kept as a tar-split is rebuilt and
// hashed, and a changed layer file is named.
#include "store/fsck.h"

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <set>

#include "../escape/berth-harness.h"
#include "store/digest.h"
#include "store/store-json.h"
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
        auto img =
            store_->import_image_path(dir_ / "rootfs.tar", store::ImportFormat::RootfsTar, "fsck-test:1");
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

    // Overwrites one byte of `rel` in a layer's tree, as a damaged disk would.
    void damage_layer_file(const std::string& chain_id, const std::string& rel, off_t at) {
        auto view = store_->backend().layer_view(chain_id);
        ASSERT_TRUE(view) << view.error().what();
        int fd = open((*view + "/" + rel).c_str(), O_WRONLY);
        ASSERT_GE(fd, 0) << rel;
        ASSERT_EQ(pwrite(fd, "x", 1, at), 1);
        close(fd);
        (void)store_->backend().release_layer_view(chain_id);
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
    ASSERT_NO_FATAL_FAILURE(damage_layer_file(layer.chain_id, "bin/busybox", 100));
    auto r = store::fsck(*store_, true);
    ASSERT_TRUE(r) << r.error().what();
    EXPECT_EQ(count(*r, FsckProblem::Kind::CorruptBlob), 1u);
    bool named = false;
    for (const auto& pr : r->problems) named |= pr.detail.find("'bin/busybox'") != std::string::npos;
    EXPECT_TRUE(named) << "the damaged file is named";
    EXPECT_TRUE(store_->get_image("fsck-test:1")) << "--repair keeps the image";
}

// Issue #16: a compressed layer keeps its blob (no tar-split), and fsck hashed only that blob:
// a changed file extracted from it went unnoticed. Now each file is compared with the blob.
TEST_F(Fsck, NamesAChangedFileOfACompressedLayer) {
    std::string src = dir_ / "gz-src";
    ASSERT_TRUE(fs::create_directories(src + "/etc"));
    ASSERT_TRUE(berth::write_file(src + "/etc/motd", std::string(5000, 'm')));
    ASSERT_TRUE(berth::write_file(src + "/etc/issue", "berth\n"));
    RunResult t = run_capture({"tar", "-C", src, "-czf", dir_ / "layer.tar.gz", "."});
    ASSERT_EQ(t.exit_code, 0) << t.out;
    auto img = store_->import_image_path(dir_ / "layer.tar.gz", store::ImportFormat::RootfsTar, "gz:1");
    ASSERT_TRUE(img) << img.error().what();
    const auto& layer = img->layers.at(0);
    ASSERT_NE(layer.digest, layer.diff_id) << "a compressed layer";
    ASSERT_TRUE(fs::exists(blob(layer.digest)));
    auto clean = store::fsck(*store_, false);
    ASSERT_TRUE(clean) << clean.error().what();
    EXPECT_EQ(clean->damage(), 0u) << (clean->problems.empty() ? "" : clean->problems[0].detail);
    ASSERT_NO_FATAL_FAILURE(damage_layer_file(layer.chain_id, "etc/motd", 4000));
    auto r = store::fsck(*store_, false);
    ASSERT_TRUE(r) << r.error().what();
    EXPECT_EQ(r->damage(), 1u);
    bool named = false;
    for (const auto& pr : r->problems) named |= pr.detail.find("'etc/motd'") != std::string::npos;
    EXPECT_TRUE(named) << "the changed file is named";
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

// Issue #16: one unreadable record (an image's, a container's, a volume's) no longer stops the
// store from opening. open() leaves it out and lists it in bad_records() naming the file; the rest
// stays usable; nothing it referenced is removed (no reconcile, gc refused); fsck names it and
// --repair moves it to ROOT/quarantine/, never deletes it. Before the fix, reopening failed
// ('{"id": 5}') or loaded an image with an empty id that crashed lookups ('[]').
TEST_F(Fsck, AnUnreadableRecordIsLeftOutAtOpenNamedByFsckAndQuarantinedByRepair) {
    auto c = store_->prepare_container("fsck-c1", "fsck-test:1", false);
    ASSERT_TRUE(c) << c.error().what();
    ASSERT_TRUE(store_->prepare_container("fsck-c2", "fsck-test:1", false));
    ASSERT_TRUE(store_->release_container("fsck-c2"));
    ASSERT_TRUE(store_->create_volume("fsck-v1"));
    ASSERT_TRUE(store_->release_container("fsck-c1"));
    store_.reset();
    std::string root = dir_ / "store";
    std::string hex(store::digest_hex(image_.id));
    const std::string bad_image = root + "/images/" + std::string(64, 'b') + ".json";
    const std::string bad_container = root + "/containers/fsck-c1.json";
    const std::string bad_volume = root + "/volumes/fsck-v1.json";
    const std::string stolen = root + "/containers/fsck-c2.json";
    ASSERT_TRUE(berth::write_file(bad_image, "[]"));
    ASSERT_TRUE(berth::write_file(bad_container, "{\"name\": \"fsck-c1\", \"snapshot_id\": 7"));  // truncated
    ASSERT_TRUE(berth::write_file(bad_volume, "{\"name\": [\"fsck-v1\"]}"));
    // A record that parses but points elsewhere: its snapshot id is another's, or a path.
    ASSERT_TRUE(berth::write_file(stolen, "{\"name\": \"fsck-c2\", \"snapshot_id\": \"../../etc\"}"));

    store::StoreOptions o;
    o.root = root;
    o.backend = "overlay";
    auto s = store::Store::open(o);
    ASSERT_TRUE(s) << "one bad record must not stop open: " << s.error().what();
    store_ = std::move(*s);
    auto bad = store_->bad_records();
    ASSERT_EQ(bad.size(), 4u);
    std::set<std::string> named;
    for (const auto& b : bad) {
        named.insert(b.path);
        EXPECT_NE(b.error.find(b.path), std::string::npos) << "the error names the file: " << b.error;
    }
    EXPECT_EQ(named, (std::set<std::string>{bad_image, bad_container, bad_volume, stolen}));
    EXPECT_EQ(store_->list_images().size(), 1u);
    EXPECT_TRUE(store_->get_image("fsck-test:1"));
    EXPECT_FALSE(store_->get_image("sha256:" + std::string(64, 'b')));
    EXPECT_TRUE(store_->list_containers().empty());
    EXPECT_TRUE(store_->list_volumes().empty());
    // Nothing the left-out records use was reconciled away, and gc is refused.
    std::set<std::string> snaps;
    for (const auto& sn : store_->backend().list_snapshots()) snaps.insert(sn.id);
    EXPECT_TRUE(snaps.count("c-fsck-c1") && snaps.count("c-fsck-c2") && snaps.count("v-fsck-v1"));
    auto gc = store_->gc();
    ASSERT_FALSE(gc);
    EXPECT_EQ(gc.error().code, EUCLEAN) << gc.error().what();

    auto r = store::fsck(*store_, false);
    ASSERT_TRUE(r) << r.error().what();
    EXPECT_EQ(count(*r, FsckProblem::Kind::BadRecord), 4u);
    EXPECT_EQ(r->damage(), 4u);
    for (const auto& p : r->problems)
        if (p.kind == FsckProblem::Kind::BadRecord) {
            EXPECT_TRUE(named.count(p.object)) << p.object;
        }

    auto fixed = store::fsck(*store_, true);
    ASSERT_TRUE(fixed) << fixed.error().what();
    EXPECT_EQ(count(*fixed, FsckProblem::Kind::BadRecord), 4u);
    EXPECT_EQ(fixed->damage(), 0u);
    EXPECT_TRUE(fixed->gc_removed.empty()) << "a run that quarantines removes no garbage";
    EXPECT_TRUE(store_->bad_records().empty());
    for (const auto& p : named) {
        EXPECT_FALSE(fs::exists(p)) << p;
        std::string q = root + "/quarantine/" + p.substr(root.size() + 1);
        EXPECT_TRUE(fs::exists(q)) << "quarantined to " << q;
    }
    auto kept = berth::read_file(root + "/quarantine/images/" + std::string(64, 'b') + ".json");
    ASSERT_TRUE(kept);
    EXPECT_EQ(*kept, "[]");
    // The same name damaged again: the earlier quarantined copy is kept too.
    store_.reset();
    ASSERT_TRUE(berth::write_file(bad_image, "{}"));
    s = store::Store::open(o);
    ASSERT_TRUE(s) << s.error().what();
    store_ = std::move(*s);
    ASSERT_TRUE(store::fsck(*store_, true));
    EXPECT_TRUE(fs::exists(root + "/quarantine/images/" + std::string(64, 'b') + ".json.1"));
    EXPECT_TRUE(store_->get_image("fsck-test:1"));
    EXPECT_TRUE(store_->gc()) << "gc runs again once the records are quarantined";
}

// The JSON readers are strict about shape (store-json.cpp): each of these is EBADMSG, never an
// exception out of parse_json_as and never a record with silently wrapped numbers.
TEST_F(Fsck, RecordsOfTheWrongShapeAreRejectedWhenParsed) {
    std::string id = image_.id;
    for (std::string text :
         {std::string("[]"), std::string("5"), std::string("\"x\""), std::string("{\"id\": 5}"),
          "{\"id\": \"" + id + "\", \"size\": -1}", "{\"id\": \"" + id + "\", \"size\": 1.5}",
          "{\"id\": \"" + id + "\", \"size\": 1e400}", "{\"id\": \"" + id + "\", \"size\": true}",
          "{\"id\": \"" + id + "\", \"size\": 99999999999999999999999}",
          "{\"id\": \"" + id + "\", \"layers\": {}}", "{\"id\": \"" + id + "\", \"layers\": [[]]}",
          "{\"id\": \"" + id + "\", \"names\": [1]}", std::string("{\"id\": \"sha"),
          std::string("\xff\xfe\x00garbage", 10)}) {
        auto v = store::parse_json_as<store::ImageInfo>(text, "test record");
        EXPECT_FALSE(v) << text;
        if (!v) {
            EXPECT_EQ(v.error().code, EBADMSG) << text;
        }
    }
    auto ok = store::parse_json_as<store::ImageInfo>(
        "{\"id\": \"" + id + "\", \"size\": 12, \"created\": -5}", "ok");
    ASSERT_TRUE(ok) << ok.error().what();
    EXPECT_EQ(ok->size, 12u);
    EXPECT_EQ(ok->created, -5);
}

}  // namespace
