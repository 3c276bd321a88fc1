// Crash safety: a child process imports an image and SIGKILLs itself after N progress callbacks,
// for N = 1, 2, ... until an import completes. After every crash the store must open, list only
// complete (usable) images, and gc must leave no layer, blob or staging file that no image uses.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <set>

#include "store-fixture.h"
#include "store/tree-util.h"

namespace berth::store::test {
namespace {

class CrashSafety : public ::testing::TestWithParam<std::string> {
protected:
    void SetUp() override {
        BERTH_REQUIRE_ROOT();
        images_ = test_images();
        ASSERT_FALSE(images_.empty());
        root_ = std::make_unique<StoreRoot>("overlay");
        ASSERT_TRUE(root_->ok());
    }

    // Returns true when the child finished the import before the N-th callback.
    bool crash_import_at(int n) {
        pid_t pid = ::fork();
        if (pid == 0) {
            auto s = Store::open(root_->options());
            if (!s) ::_exit(3);
            int calls = 0;
            auto r = (*s)->import_image_path(images_ + "/" + GetParam(), ImportFormat::Auto, "crashy",
                                             [&](const ImportProgress&) {
                                                 if (++calls == n) ::raise(SIGKILL);
                                             });
            ::_exit(r ? 0 : 4);
        }
        int status = 0;
        ::waitpid(pid, &status, 0);
        EXPECT_TRUE((WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) ||
                    (WIFEXITED(status) && WEXITSTATUS(status) == 0))
            << "child status " << status;
        return WIFEXITED(status);
    }

    void check_consistent(int n) {
        SCOPED_TRACE("killed at callback " + std::to_string(n));
        auto s = Store::open(root_->options());
        ASSERT_TRUE(s) << s.error().what();
        auto& store = **s;
        for (const auto& img : store.list_images()) {
            auto p = store.prepare_container("probe", img.id, true);
            ASSERT_TRUE(p) << "listed image " << img.id << " is not usable: " << p.error().what();
            ASSERT_TRUE(store.release_container("probe"));
        }
        auto gc = store.gc();
        ASSERT_TRUE(gc) << gc.error().what();
        std::set<std::string> layers, blobs;
        for (const auto& img : store.list_images()) {
            blobs.insert(std::string(img.id.substr(7)));
            blobs.insert(std::string(img.config_digest.substr(7)));
            for (const auto& l : img.layers) {
                layers.insert(l.chain_id.substr(7));
                // An uncompressed layer is kept as a tar-split (ROOT/splits/<chain>), not a blob.
                if (l.digest == l.diff_id && path_exists(root_->root() + "/splits/" + l.chain_id.substr(7)))
                    continue;
                blobs.insert(l.digest.substr(7));
            }
            // Every listed image still exports (split layers are rebuilt and verified).
            UniqueFd devnull(::open("/dev/null", O_WRONLY | O_CLOEXEC));
            auto ex = store.export_image(img.id, devnull.get());
            EXPECT_TRUE(ex) << "listed image " << img.id << " does not export: " << ex.error().what();
        }
        auto on_disk_splits = list_dir(root_->root() + "/splits");
        for (const auto& sp : on_disk_splits)
            EXPECT_TRUE(layers.count(sp)) << "tar-split of an unreferenced layer " << sp;
        auto on_disk_layers = list_dir(root_->root() + "/overlay/layers");
        EXPECT_EQ(std::set<std::string>(on_disk_layers.begin(), on_disk_layers.end()), layers);
        auto on_disk_blobs = list_dir(root_->root() + "/blobs/sha256");
        EXPECT_EQ(std::set<std::string>(on_disk_blobs.begin(), on_disk_blobs.end()), blobs);
        EXPECT_TRUE(list_dir(root_->root() + "/staging").empty());
        EXPECT_TRUE(list_dir(root_->root() + "/overlay/staging").empty());
        // Reset for the next round.
        for (const auto& img : store.list_images()) ASSERT_TRUE(store.remove_image(img.id));
        ASSERT_TRUE(store.gc());
    }

    std::string images_;
    std::unique_ptr<StoreRoot> root_;
};

TEST_P(CrashSafety, AnImportKilledAtAnyPointLeavesOldOrNewState) {
    int completed_at = 0;
    for (int n = 1; n <= 200; ++n) {
        bool finished = crash_import_at(n);
        check_consistent(n);
        if (HasFatalFailure()) return;
        if (finished) {
            completed_at = n;
            break;
        }
    }
    EXPECT_GT(completed_at, 3) << "too few kill points exercised";
    RecordProperty("kill_points", completed_at - 1);
}

TEST_P(CrashSafety, AnImportKilledMidwayIsInvisibleAndTheNextImportSucceeds) {
    crash_import_at(3);
    auto s = Store::open(root_->options());
    ASSERT_TRUE(s) << s.error().what();
    auto r = (*s)->import_image_path(images_ + "/" + GetParam(), ImportFormat::Auto, "after");
    ASSERT_TRUE(r) << r.error().what();
    EXPECT_EQ((*s)->list_images().size(), 1u);
}

INSTANTIATE_TEST_SUITE_P(Formats, CrashSafety,
                         ::testing::Values("layered-oci.tar", "layered-docker.tar", "rootfs.tar.gz",
                                           "rootfs.tar"),
                         [](const auto& image) {
                             std::string n = image.param;
                             for (auto& c : n)
                                 if (!isalnum(static_cast<unsigned char>(c))) c = '_';
                             return n;
                         });

}  // namespace
}  // namespace berth::store::test
