// The Store on the dm-thin backend (a real pool: under qemu, or directly on a host with
// device-mapper): what gc reports is what the pool lost. Store::gc once read the backend's removals
// as text and looked for "layer "; dm-thin wrote "layer:<chain>", so every layer it removed was
// reported as "other" and removed_layers stayed empty.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../privileged/store/store-test-util.h"
#include "basic/fs-util.h"
#include "store/dmthin/dmthin-backend.h"
#include "store/store.h"
#include "test-util.h"

namespace berth::store::test {
namespace {

class StoreOnDmThin : public ::testing::Test {
protected:
    void SetUp() override {
        BERTH_REQUIRE_ROOT();
        if (!dmthin_available())
            GTEST_SKIP() << "no device-mapper in this kernel (tests/qemu runs these under qemu)";
        options_.root = tmp_ / "store";
        options_.backend = "dm-thin";
        options_.dm_thin.pool = fmt::format("berth-s{}", ::getpid());
        const char* data = ::getenv("BERTH_DMTHIN_DATA");
        const char* meta = ::getenv("BERTH_DMTHIN_META");
        options_.dm_thin.data_device = data ? data : tmp_ / "data.img";
        options_.dm_thin.metadata_device = meta ? meta : tmp_ / "meta.img";
        options_.dm_thin.data_size = 1ull << 30;
        options_.dm_thin.metadata_size = 64ull << 20;
        options_.dm_thin.volume_size = 256ull << 20;
        options_.dm_thin.min_free_data_percent = 5;
        const char* fs = ::getenv("BERTH_DMTHIN_FS");
        if (fs) options_.dm_thin.fstype = fs;
        if (options_.dm_thin.fstype == "xfs") options_.dm_thin.volume_size = 320ull << 20;
        auto s = Store::open(options_);
        ASSERT_TRUE(s) << s.error().what();
        store_ = std::move(*s);
    }
    void TearDown() override {
        store_.reset();
        if (auto o = dmthin_options_from_store(options_.root + "/dm-thin", options_.dm_thin)) {
            auto r = deactivate_dmthin_pool(*o);
            EXPECT_TRUE(r) << r.error().what();
        }
    }
    ImageInfo import_rootfs(const std::string& name, const std::string& content) {
        auto tar = make_tar({{"etc", 'd', "", 0755}, {"etc/name", 'f', content}}, "gzip");
        auto r = store_->import_image(tar.get(), ImportFormat::RootfsTar, name);
        EXPECT_TRUE(r) << r.error().what();
        return r ? *r : ImageInfo{};
    }

    berth::test::TempDir tmp_{"dmthin-store"};
    StoreOptions options_;
    std::unique_ptr<Store> store_;
};

TEST_F(StoreOnDmThin, GcReportsTheLayersItRemovedByChainId) {
    auto keep = import_rootfs("keep", "keep");
    auto gone = import_rootfs("gone", "gone");
    ASSERT_FALSE(gone.top_layer.empty());
    ASSERT_NE(keep.top_layer, gone.top_layer);
    ASSERT_TRUE(store_->remove_image("gone"));
    auto r = store_->gc();
    ASSERT_TRUE(r) << r.error().what();
    EXPECT_EQ(r->removed_layers, (std::vector<std::string>{gone.top_layer}));
    for (const auto& o : r->removed_other) EXPECT_EQ(o.find(gone.top_layer), std::string::npos) << o;
    EXPECT_TRUE(r->removed_containers.empty());
    EXPECT_TRUE(r->removed_volumes.empty());
    auto again = store_->gc();
    ASSERT_TRUE(again) << again.error().what();
    EXPECT_TRUE(again->removed_layers.empty());
    ASSERT_TRUE(store_->prepare_container("still", "keep", true)) << "the kept image still works";
}

}  // namespace
}  // namespace berth::store::test
