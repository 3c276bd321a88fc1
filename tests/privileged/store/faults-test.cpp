// The store never lies (issue #16): a metadata write that fails leaves memory as the disk is, so
// the running store and a freshly opened one show the same images, names, containers and volumes.
// Each metadata write is made to fail in turn, with an immutable file or directory (chattr +i, on
// the ext4 under /tmp) and with a tiny tmpfs filled to several levels (ENOSPC). Also here: export
// verifies blobs, damaged refs.json / store.json are isolated, a read-only store is listed and
// checked, and a container whose snapshot cannot go is kept whole.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/statvfs.h>

#include <functional>

#include "store-fixture.h"
#include "store/digest.h"
#include "store/fsck.h"

namespace berth::store::test {
namespace {

// Sets FS_IMMUTABLE_FL on a file or directory and clears it again through the same fd, wherever
// the inode went (TempDir cannot remove an immutable file, and a failed assertion must not leave
// one behind).
bool set_immutable(int fd, bool on) {
    int flags = 0;
    if (::ioctl(fd, FS_IOC_GETFLAGS, &flags) < 0) return false;
    flags = on ? (flags | FS_IMMUTABLE_FL) : (flags & ~FS_IMMUTABLE_FL);
    return ::ioctl(fd, FS_IOC_SETFLAGS, &flags) == 0;
}

class Immutable {
public:
    explicit Immutable(const std::string& path)
        : fd_(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) {
        ok_ = fd_ && set_immutable(fd_.get(), true);
    }
    ~Immutable() {
        if (ok_) (void)set_immutable(fd_.get(), false);
    }
    bool ok() const { return ok_; }

private:
    UniqueFd fd_;
    bool ok_ = false;
};

// What clients see: every image with its names, every container and volume.
std::string view(const Store& s) {
    std::string out;
    for (const auto& i : s.list_images()) out += fmt::format("image {} [{}]\n", i.id, join(i.names, ","));
    for (const auto& c : s.list_containers())
        out += fmt::format("container {} image={} snapshot={}\n", c.name, c.image_id, c.snapshot_id);
    for (const auto& v : s.list_volumes()) out += fmt::format("volume {}\n", v.name);
    return out;
}

UniqueFd rootfs_tar(const std::string& tag, const char* filter = nullptr) {
    return make_tar({{"etc", 'd'}, {"etc/hostname", 'f', tag + "\n"}, {"bin", 'd'}, {"bin/x", 'f', tag}},
                    filter);
}

class StoreFaults : public ::testing::Test {
protected:
    void SetUp() override {
        BERTH_REQUIRE_ROOT();
        opts_.root = dir_ / "store";
        opts_.backend = "overlay";
        reopen();
        auto img = store_->import_image(rootfs_tar("base").get(), ImportFormat::RootfsTar, "base:1");
        ASSERT_TRUE(img) << img.error().what();
        base_ = img->id;
    }
    void reopen() {
        store_.reset();
        auto s = Store::open(opts_);
        ASSERT_TRUE(s) << s.error().what();
        store_ = std::move(*s);
    }
    // The running store's view, then a fresh open's: they must agree.
    void expect_memory_matches_disk(const std::string& what) {
        std::string running = view(*store_);
        reopen();
        EXPECT_EQ(running, view(*store_)) << what << ": the running store and the disk disagree";
    }
    std::string file(const std::string& rel) const { return opts_.root + "/" + rel; }

    berth::test::TempDir dir_{"berth-faults"};
    StoreOptions opts_;
    std::unique_ptr<Store> store_;
    std::string base_;
};

struct FaultCase {
    const char* name;
    std::function<void(Store&)> setup;  // runs before the fault is armed
    std::string immutable;              // relative to the store root
    std::function<bool(Store&)> op;     // true when the operation succeeded
};

TEST_F(StoreFaults, EachFailedMetadataWriteLeavesMemoryAsTheDiskIs) {
    auto ok = [](const auto& r) { return r.has_value(); };
    std::vector<FaultCase> cases = {
        {"tag, refs.json immutable",
         {},
         "refs.json",
         [&](Store& s) { return ok(s.tag_image("base:1", "more:1")); }},
        {"untag, refs.json immutable", [](Store& s) { ASSERT_TRUE(s.tag_image("base:1", "two:1")); },
         "refs.json", [&](Store& s) { return ok(s.remove_image("two:1")); }},
        {"remove image, refs.json immutable",
         {},
         "refs.json",
         [&](Store& s) { return ok(s.remove_image(base_)); }},
        {"remove image, images/ immutable",
         {},
         "images",
         [&](Store& s) { return ok(s.remove_image(base_)); }},
        {"remove last name, images/ immutable",
         {},
         "images",
         [&](Store& s) { return ok(s.remove_image("base:1")); }},
        {"import, refs.json immutable",
         {},
         "refs.json",
         [&](Store& s) {
             return ok(s.import_image(rootfs_tar("new").get(), ImportFormat::RootfsTar, "new:1"));
         }},
        {"import, images/ immutable",
         {},
         "images",
         [&](Store& s) {
             return ok(s.import_image(rootfs_tar("new").get(), ImportFormat::RootfsTar, "new:1"));
         }},
        {"prepare container, containers/ immutable",
         {},
         "containers",
         [&](Store& s) { return ok(s.prepare_container("web", "base:1", false)); }},
        {"release container, its record immutable",
         [](Store& s) { ASSERT_TRUE(s.prepare_container("web", "base:1", false)); }, "containers/web.json",
         [&](Store& s) { return ok(s.release_container("web")); }},
        {"remove container, containers/ immutable",
         [](Store& s) {
             ASSERT_TRUE(s.prepare_container("web", "base:1", false));
             ASSERT_TRUE(s.release_container("web"));
         },
         "containers", [&](Store& s) { return ok(s.remove_container("web")); }},
        {"create volume, volumes/ immutable",
         {},
         "volumes",
         [&](Store& s) { return ok(s.create_volume("data")); }},
        {"use new volume, volumes/ immutable",
         {},
         "volumes",
         [&](Store& s) { return ok(s.use_volume("data", "web")); }},
        {"remove volume, volumes/ immutable", [](Store& s) { ASSERT_TRUE(s.create_volume("data")); },
         "volumes", [&](Store& s) { return ok(s.remove_volume("data")); }},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.name);
        // Each case on a fresh store holding only "base:1".
        store_.reset();
        ASSERT_TRUE(remove_tree(opts_.root));
        SetUp();
        if (c.setup) c.setup(*store_);
        std::string before = view(*store_);
        bool succeeded;
        {
            Immutable fault(file(c.immutable));
            ASSERT_TRUE(fault.ok()) << "chattr +i '" << file(c.immutable) << "': " << strerror(errno);
            succeeded = c.op(*store_);
        }
        EXPECT_FALSE(succeeded) << "the write was meant to fail";
        EXPECT_EQ(before, view(*store_)) << "a failed operation changed what clients see";
        expect_memory_matches_disk(c.name);
    }
}

// A tiny tmpfs filled to leave 0, 1, 2, ... pages: every write of an import, a tag, a container
// and a volume fails at some level (ENOSPC), and whatever the outcome, memory and disk agree.
TEST_F(StoreFaults, AFullFileSystemAtEveryLevelLeavesMemoryAsTheDiskIs) {
    std::string mnt = dir_ / "tiny";
    ASSERT_TRUE(mkdir_p(mnt));
    ASSERT_EQ(::mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=4m,mode=0700"), 0) << strerror(errno);
    struct Unmount {
        std::string p;
        ~Unmount() { ::umount2(p.c_str(), MNT_DETACH); }
    } unmount{mnt};
    store_.reset();
    opts_.root = mnt + "/store";
    reopen();
    ASSERT_TRUE(store_->import_image(rootfs_tar("base").get(), ImportFormat::RootfsTar, "base:1"));
    std::string filler = mnt + "/filler";
    size_t failures = 0, successes = 0;
    for (uint64_t pages = 0; pages <= 48; pages++) {
        SCOPED_TRACE(fmt::format("{} pages free", pages));
        std::vector<std::pair<std::string, std::function<bool()>>> ops = {
            {"import",
             [&] {
                 return store_
                     ->import_image(rootfs_tar(fmt::format("img{}", pages)).get(), ImportFormat::RootfsTar,
                                    fmt::format("img:{}", pages))
                     .has_value();
             }},
            {"tag", [&] { return store_->tag_image("base:1", fmt::format("tag:{}", pages)).has_value(); }},
            {"prepare",
             [&] {
                 return store_->prepare_container(fmt::format("c{}", pages), "base:1", false).has_value();
             }},
            {"use volume",
             [&] {
                 return store_->use_volume(fmt::format("v{}", pages), fmt::format("c{}", pages)).has_value();
             }},
        };
        for (auto& [name, op] : ops) {
            SCOPED_TRACE(name);
            {
                UniqueFd f(::open(filler.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
                ASSERT_TRUE(f);
                struct statvfs v {};
                ASSERT_EQ(::statvfs(mnt.c_str(), &v), 0);
                uint64_t avail = static_cast<uint64_t>(v.f_bavail) * v.f_bsize;
                uint64_t keep = pages * 4096;
                if (avail > keep) {
                    ASSERT_EQ(::fallocate(f.get(), 0, 0, static_cast<off_t>(avail - keep)), 0)
                        << strerror(errno);
                }
            }
            (op() ? successes : failures)++;
            ASSERT_EQ(::unlink(filler.c_str()), 0);
            expect_memory_matches_disk(name);
        }
    }
    // Both outcomes were exercised: the levels cover the writes.
    EXPECT_GT(failures, 0u);
    EXPECT_GT(successes, 0u);
}

// Issue #16 item 7.
TEST_F(StoreFaults, ExportFailsNamingALayerBlobDamagedInTheStore) {
    auto img = store_->import_image(rootfs_tar("gz", "gzip").get(), ImportFormat::RootfsTar, "gz:1");
    ASSERT_TRUE(img) << img.error().what();
    ASSERT_EQ(img->layers.size(), 1u);
    std::string digest = img->layers[0].digest;
    ASSERT_NE(digest, img->layers[0].diff_id) << "a compressed layer keeps its blob";
    std::string blob = file("blobs/sha256/" + std::string(digest_hex(digest)));
    {
        UniqueFd f(::open(blob.c_str(), O_WRONLY | O_CLOEXEC));
        ASSERT_TRUE(f);
        ASSERT_EQ(::pwrite(f.get(), "\xde\xad\xbe\xef", 4, 20), 4);
    }
    UniqueFd out(::memfd_create("export", MFD_CLOEXEC));
    auto r = store_->export_image("gz:1", out.get());
    ASSERT_FALSE(r) << "a damaged blob was exported";
    EXPECT_NE(r.error().message.find(digest), std::string::npos) << r.error().what();
    // The good image still exports.
    UniqueFd out2(::memfd_create("export", MFD_CLOEXEC));
    EXPECT_TRUE(store_->export_image("base:1", out2.get()));
}

// Issue #16 item 9: refs.json and store.json damaged.
TEST_F(StoreFaults, ADamagedRefsJsonIsABadRecordNotAClosedStore) {
    ASSERT_TRUE(store_->create_volume("keep"));
    store_.reset();
    ASSERT_TRUE(write_file(file("refs.json"), "{\"base:1\": 5"));
    auto s = Store::open(opts_);
    ASSERT_TRUE(s) << "a damaged refs.json closed the store: " << s.error().what();
    store_ = std::move(*s);
    ASSERT_EQ(store_->list_images().size(), 1u) << "the image is still listed, nameless";
    EXPECT_TRUE(store_->list_images()[0].names.empty());
    EXPECT_EQ(store_->list_volumes().size(), 1u);
    ASSERT_EQ(store_->bad_records().size(), 1u);
    EXPECT_EQ(store_->bad_records()[0].path, file("refs.json"));
    // Names cannot change over it (that would lose what a repair may recover).
    auto tag = store_->tag_image(base_, "x:1");
    ASSERT_FALSE(tag);
    EXPECT_NE(tag.error().message.find("refs.json"), std::string::npos) << tag.error().what();
    EXPECT_EQ(*read_file(file("refs.json")), "{\"base:1\": 5");
    // fsck names the file; --repair quarantines it, then names work again.
    auto check = fsck(*store_, false);
    ASSERT_TRUE(check);
    ASSERT_EQ(check->problems.size(), 1u);
    EXPECT_EQ(check->problems[0].object, file("refs.json"));
    auto repaired = fsck(*store_, true);
    ASSERT_TRUE(repaired) << repaired.error().what();
    EXPECT_TRUE(path_exists(file("quarantine/refs.json")));
    EXPECT_FALSE(path_exists(file("refs.json")));
    EXPECT_TRUE(store_->tag_image(base_, "x:1"));
    expect_memory_matches_disk("after repair");
    EXPECT_TRUE(store_->get_image("x:1"));
}

TEST_F(StoreFaults, ADamagedStoreJsonIsABadRecordAndIsNotWrittenOver) {
    store_.reset();
    ASSERT_TRUE(write_file(file("store.json"), "[garbage"));
    auto s = Store::open(opts_);
    ASSERT_TRUE(s) << "a damaged store.json closed the store: " << s.error().what();
    store_ = std::move(*s);
    EXPECT_EQ(store_->backend_name(), "overlay");
    EXPECT_TRUE(store_->get_image("base:1"));
    ASSERT_EQ(store_->bad_records().size(), 1u);
    EXPECT_EQ(store_->bad_records()[0].path, file("store.json"));
    EXPECT_EQ(*read_file(file("store.json")), "[garbage");
    auto repaired = fsck(*store_, true);
    ASSERT_TRUE(repaired) << repaired.error().what();
    EXPECT_TRUE(path_exists(file("quarantine/store.json")));
    reopen();
    EXPECT_TRUE(store_->bad_records().empty());
    EXPECT_NE(read_file(file("store.json"))->find("overlay"), std::string::npos);
}

// Issue #16 item 9: a read-only store (here a read-only bind mount of it) is listed and checked.
TEST_F(StoreFaults, AReadOnlyStoreIsListedAndCheckedButNotChanged) {
    // A second image of two layers: checking its upper layer mounts a view of both, which on a
    // read-only store cannot live in the store's views/ directory.
    auto c = store_->prepare_container("two", "base:1", false);
    ASSERT_TRUE(c) << c.error().what();
    ASSERT_TRUE(write_file(c->rootfs.upperdir + "/added", "second layer\n"));
    ASSERT_TRUE(store_->release_container("two"));
    auto two = store_->commit_container("two", "two:1");
    ASSERT_TRUE(two) << two.error().what();
    ASSERT_EQ(two->layers.size(), 2u);
    ASSERT_TRUE(store_->remove_container("two"));
    store_.reset();
    std::string ro = dir_ / "ro";
    ASSERT_TRUE(mkdir_p(ro));
    ASSERT_EQ(::mount(opts_.root.c_str(), ro.c_str(), nullptr, MS_BIND, nullptr), 0) << strerror(errno);
    struct Unmount {
        std::string p;
        ~Unmount() { ::umount2(p.c_str(), MNT_DETACH); }
    } unmount{ro};
    ASSERT_EQ(::mount(nullptr, ro.c_str(), nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY, nullptr), 0)
        << strerror(errno);
    StoreOptions o = opts_;
    o.root = ro;
    auto s = Store::open(o);
    ASSERT_TRUE(s) << "a read-only store did not open: " << s.error().what();
    auto images = (*s)->list_images();
    ASSERT_EQ(images.size(), 2u);
    auto check = fsck(**s, false);
    ASSERT_TRUE(check) << check.error().what();
    EXPECT_EQ(check->damage(), 0u);
    auto tag = (*s)->tag_image("base:1", "x:1");
    ASSERT_FALSE(tag);
    EXPECT_EQ(tag.error().code, EROFS);
    // A reader shares the lock: a second reader opens, a writer does not.
    o.read_only = true;
    o.root = opts_.root;
    auto reader = Store::open(o);
    EXPECT_TRUE(reader) << reader.error().what();
    auto writer = Store::open(opts_);
    ASSERT_FALSE(writer);
    EXPECT_EQ(writer.error().code, EWOULDBLOCK);
}

// Issue #16 item 10: RemoveContainer never reports failure after the container is gone.
TEST_F(StoreFaults, AContainerWhoseSnapshotCannotBeRemovedIsKeptWhole) {
    auto c = store_->prepare_container("web", "base:1", false);
    ASSERT_TRUE(c) << c.error().what();
    ASSERT_TRUE(store_->release_container("web"));
    // An immutable snapshot directory cannot be moved or removed.
    std::string snapshot = file("overlay/snapshots/c-web");
    ASSERT_TRUE(is_directory(snapshot)) << snapshot;
    bool failed;
    {
        Immutable pin(snapshot);
        ASSERT_TRUE(pin.ok());
        auto r = store_->remove_container("web");
        failed = !r;
        if (!r) {
            EXPECT_NE(r.error().message.find("web"), std::string::npos) << r.error().what();
        }
        EXPECT_EQ(failed, store_->get_container("web").has_value())
            << "the reply and the container list disagree";
    }
    EXPECT_TRUE(failed) << "an immutable snapshot was removed?";
    EXPECT_TRUE(path_exists(file("containers/web.json"))) << "the record went although the removal failed";
    expect_memory_matches_disk("failed remove_container");
    EXPECT_TRUE(store_->remove_container("web"));
    expect_memory_matches_disk("remove_container");
    EXPECT_FALSE(store_->get_container("web"));
}

}  // namespace
}  // namespace berth::store::test
