// Registers the dm-thin backend with the shared SnapshotBackend conformance suite
// (tests/privileged/store/backend-conformance.h), so `backend-conformance-dmthin --backend=dm-thin`
// runs the very cases btrfs and overlay pass. Under qemu the pool lives on the two virtio disks
// (BERTH_DMTHIN_META / BERTH_DMTHIN_DATA); on a host with device-mapper, on sparse loopback files.
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "backend-conformance.h"
#include "basic/fs-util.h"
#include "store/dmthin/dmthin-backend.h"

namespace {

using namespace berth;
using namespace berth::store;

int g_env_counter = 0;

class DmThinEnv : public test::BackendEnv {
public:
    ~DmThinEnv() override {
        backend_.reset();
        (void)deactivate_dmthin_pool(options_);
        if (!dir_.empty()) (void)remove_tree(dir_);
    }

    Result<> init() {
        char tmpl[] = "/tmp/berth-dmthin-conf-XXXXXX";
        if (!::mkdtemp(tmpl)) return fail_errno("mkdtemp");
        dir_ = tmpl;
        options_.state_dir = path_join(dir_, "state");
        options_.pool_name = fmt::format("berth-conf{}-{}", ::getpid(), g_env_counter++);
        const char* fs = ::getenv("BERTH_DMTHIN_FS");
        options_.filesystem = fs ? fs : "ext4";
        options_.base_size = (options_.filesystem == "xfs" ? 320ull : 256ull) << 20;
        options_.min_free_data_percent = 5;
        const char* data = ::getenv("BERTH_DMTHIN_DATA");
        const char* meta = ::getenv("BERTH_DMTHIN_META");
        if (data && meta) {
            options_.data_device = data;
            options_.metadata_device = meta;
        } else {
            options_.data_device = path_join(dir_, "data.img");
            options_.metadata_device = path_join(dir_, "meta.img");
            for (auto [path, size] : {std::pair{options_.data_device, 1ll << 30},
                                      std::pair{options_.metadata_device, 64ll << 20}}) {
                UniqueFd fd(::open(path.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600));
                if (!fd || ::ftruncate(fd.get(), size) < 0) return fail_errno("create '{}'", path);
            }
        }
        backend_ = BERTH_TRY(make_dmthin_backend(options_));
        return {};
    }

    SnapshotBackend& backend() override { return *backend_; }

    Result<> reopen() override {
        backend_.reset();
        backend_ = BERTH_TRY(make_dmthin_backend(options_));
        return {};
    }

private:
    std::string dir_;
    DmThinOptions options_;
    std::unique_ptr<SnapshotBackend> backend_;
};

BERTH_REGISTER_BACKEND_FACTORY(
    dm_thin, {
                 "dm-thin",
                 []() -> std::string {
                     if (::geteuid() != 0) return "needs root";
                     if (!dmthin_available())
                         return "no device-mapper in this kernel (tests/qemu runs it under qemu)";
                     return "";
                 },
                 []() -> Result<std::unique_ptr<test::BackendEnv>> {
                     auto env = std::make_unique<DmThinEnv>();
                     BERTH_TRY_VOID(env->init());
                     return std::unique_ptr<test::BackendEnv>(std::move(env));
                 },
             });

}  // namespace
