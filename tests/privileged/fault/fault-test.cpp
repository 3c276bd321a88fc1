// Faults (issue #7): the disk fills up during an import. The store lives on a small tmpfs of its
// own (overlay backend); importing a layer bigger than the space left must fail with a clear
// error, publish nothing (no image, no staging leftovers, fsck clean) and give the space back.
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <filesystem>
#include <random>

#include "../escape/berth-harness.h"
#include "store/fsck.h"
#include "store/store.h"

namespace fs = std::filesystem;
using namespace berth;
using namespace berth::test;

namespace {

uint64_t free_bytes(const std::string& path) {
    struct statvfs s {};
    if (statvfs(path.c_str(), &s) != 0) return 0;
    return static_cast<uint64_t>(s.f_bavail) * s.f_frsize;
}

class DiskFull : public ::testing::Test {
protected:
    void SetUp() override {
        BERTH_REQUIRE_ROOT();
        mnt_ = dir_ / "small";
        fs::create_directories(mnt_);
        ASSERT_EQ(mount("tmpfs", mnt_.c_str(), "tmpfs", MS_NOSUID, "size=24m,mode=0755"), 0)
            << strerror(errno);
        mounted_ = true;
        // A rootfs with 40 MiB of incompressible data: more than the store's filesystem holds.
        std::string tree = dir_ / "big";
        ASSERT_TRUE(make_busybox_rootfs(tree));
        std::mt19937_64 rng(42);
        std::string chunk(1 << 20, '\0');
        for (int f = 0; f < 40; f++) {
            for (size_t i = 0; i < chunk.size(); i += 8) {
                uint64_t v = rng();
                memcpy(chunk.data() + i, &v, 8);
            }
            write_file(tree + "/data" + std::to_string(f), chunk);
        }
        RunResult t = run_capture({"tar", "-C", tree, "-cf", dir_ / "big.tar", "."});
        ASSERT_EQ(t.exit_code, 0) << t.out;
        fs::remove_all(tree);
    }
    void TearDown() override {
        store_.reset();
        if (mounted_) umount2(mnt_.c_str(), MNT_DETACH);
    }

    TempDir dir_{"berth-fault"};
    std::string mnt_;
    bool mounted_ = false;
    std::unique_ptr<store::Store> store_;
};

TEST_F(DiskFull, AnImportThatRunsOutOfSpaceFailsCleanlyAndReturnsTheSpace) {
    store::StoreOptions o;
    o.root = mnt_ + "/store";
    o.backend = "overlay";
    auto s = store::Store::open(o);
    ASSERT_TRUE(s) << s.error().what();
    store_ = std::move(*s);
    uint64_t before = free_bytes(mnt_);

    auto img = store_->import_image_path(dir_ / "big.tar", store::ImportFormat::RootfsTar, "big:1");
    ASSERT_FALSE(img) << "the import fit in 24 MiB?";
    EXPECT_EQ(img.error().code, ENOSPC) << img.error().what();
    printf("disk-full import error: %s\n", img.error().what().c_str());

    EXPECT_TRUE(store_->list_images().empty()) << "a half-imported image was published";
    EXPECT_FALSE(store_->get_image("big:1"));
    size_t staging = 0;
    std::error_code ec;
    for (auto it = fs::directory_iterator(o.root + "/staging", ec); !ec && it != fs::directory_iterator();
         ++it)
        staging++;
    EXPECT_EQ(staging, 0u) << "staging leftovers";
    auto r = store::fsck(*store_, false);
    ASSERT_TRUE(r) << r.error().what();
    EXPECT_EQ(r->damage(), 0u);
    EXPECT_EQ(r->garbage(), 0u);
    uint64_t after = free_bytes(mnt_);
    printf("disk-full: free before %llu, after %llu bytes\n", static_cast<unsigned long long>(before),
           static_cast<unsigned long long>(after));
    // Space comes back (a little metadata may remain: allow 256 KiB).
    EXPECT_GE(after + (256u << 10), before);

    // And the store still works: a small import succeeds afterwards.
    std::string small = dir_ / "small-rootfs";
    ASSERT_TRUE(make_busybox_rootfs(small));
    ASSERT_EQ(run_capture({"tar", "-C", small, "-cf", dir_ / "small.tar", "."}).exit_code, 0);
    auto ok = store_->import_image_path(dir_ / "small.tar", store::ImportFormat::RootfsTar, "small:1");
    EXPECT_TRUE(ok) << ok.error().what();
}

}  // namespace
