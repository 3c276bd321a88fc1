// The conformance suite's built-in backends: overlay on a private tmpfs and btrfs on a loop
// device that the fixture formats, both torn down by the destructor.
#include <sys/mount.h>
#include <unistd.h>

#include "backend-conformance.h"
#include "store/backend-factory.h"
#include "store/loop.h"
#include "test-util.h"

namespace berth::store::test {
namespace {

class OverlayEnv : public BackendEnv {
public:
    Result<> init() {
        if (::mount("tmpfs", dir_.path().c_str(), "tmpfs", 0, "size=512m,mode=0700") < 0)
            return fail_errno("mount tmpfs");
        mounted_ = true;
        return reopen();
    }
    ~OverlayEnv() override {
        backend_.reset();
        if (mounted_) ::umount2(dir_.path().c_str(), MNT_DETACH);
    }
    SnapshotBackend& backend() override { return *backend_; }
    Result<> reopen() override {
        backend_.reset();
        backend_ = BERTH_TRY(make_overlay_backend(dir_ / "overlay"));
        return {};
    }

private:
    berth::test::TempDir dir_{"berth-ovl"};
    bool mounted_ = false;
    std::unique_ptr<SnapshotBackend> backend_;
};

class BtrfsEnv : public BackendEnv {
public:
    Result<> init() {
        image_ = dir_ / "pool.img";
        BERTH_TRY_VOID(create_sparse_file(image_, 512ull << 20));
        auto loop = BERTH_TRY(attach_loop(image_));
        BERTH_TRY_VOID(make_btrfs(loop.path, "berth-test"));
        mnt_ = dir_ / "mnt";
        BERTH_TRY_VOID(mkdir_p(mnt_));
        BERTH_TRY_VOID(mount_btrfs(loop.path, mnt_));
        mounted_ = true;  // the loop device (AUTOCLEAR) now lives as long as the mount
        return reopen();
    }
    ~BtrfsEnv() override {
        backend_.reset();
        if (mounted_) ::umount2(mnt_.c_str(), MNT_DETACH);
    }
    SnapshotBackend& backend() override { return *backend_; }
    Result<> reopen() override {
        backend_.reset();
        backend_ = BERTH_TRY(make_btrfs_backend(mnt_ + "/btrfs"));
        return {};
    }

private:
    berth::test::TempDir dir_{"berth-btrfs"};
    std::string image_, mnt_;
    bool mounted_ = false;
    std::unique_ptr<SnapshotBackend> backend_;
};

template <class Env>
Result<std::unique_ptr<BackendEnv>> make_env() {
    auto e = std::make_unique<Env>();
    BERTH_TRY_VOID(e->init());
    return std::unique_ptr<BackendEnv>(std::move(e));
}

std::string need_root() { return ::geteuid() == 0 ? "" : "needs root"; }

BERTH_REGISTER_BACKEND_FACTORY(overlay, {"overlay", need_root, make_env<OverlayEnv>});
BERTH_REGISTER_BACKEND_FACTORY(btrfs, {"btrfs",
                                       [] {
                                           if (::geteuid() != 0) return std::string("needs root");
                                           if (::access("/dev/loop-control", F_OK) != 0)
                                               return std::string("no /dev/loop-control");
                                           return std::string();
                                       },
                                       make_env<BtrfsEnv>});

}  // namespace
}  // namespace berth::store::test
