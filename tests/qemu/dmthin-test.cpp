// dm-thin backend on a real kernel: run under qemu by tests/qemu/run-dmthin-tests.sh (Debian's
// kernel, two virtio disks passed as BERTH_DMTHIN_META / BERTH_DMTHIN_DATA), or directly on a host
// whose kernel has device-mapper (sparse loopback files then). Skips where there is no
// device-mapper.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <set>

#include "basic/fs-util.h"
#include "basic/mount-util.h"
#include "store/dmthin/dm-ops.h"
#include "store/dmthin/dmthin-backend.h"
#include "store/dmthin/dmthin-metadata.h"
#include "test-util.h"

using namespace berth;
using namespace berth::store;

namespace {

const std::string kL1 = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
const std::string kL2 = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
const std::string kL3 = "sha256:3333333333333333333333333333333333333333333333333333333333333333";

std::string slurp(const std::string& path) {
    auto r = read_file(path);
    return r ? *r : std::string("<missing>");
}

void spew(const std::string& path, const std::string& content) {
    ASSERT_TRUE(write_file(path, content, O_CREAT | O_TRUNC | O_WRONLY)) << path;
}

// Writes `mib` MiB of non-zero data and syncs it, so the pool really provisions blocks.
void fill(const std::string& path, int mib) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    ASSERT_GE(fd, 0) << path;
    std::string chunk(1 << 20, '\xab');
    for (int i = 0; i < mib; i++) {
        chunk[0] = static_cast<char>(i);
        ASSERT_EQ(::write(fd, chunk.data(), chunk.size()), static_cast<ssize_t>(chunk.size()));
    }
    ASSERT_EQ(::fsync(fd), 0);
    ::close(fd);
}

// A MountSpec::Block mounted the way the runtime would (here on the host, in a temp dir).
class BlockMount {
public:
    BlockMount(const MountSpec& spec, const std::string& dir) : dir_(dir) {
        EXPECT_EQ(spec.kind, MountSpec::Kind::Block);
        (void)mkdir_p(dir);
        if (::mount(spec.source.c_str(), dir.c_str(), spec.fstype.c_str(), spec.read_only ? MS_RDONLY : 0,
                    spec.options.c_str()) == 0)
            mounted_ = true;
        else
            ADD_FAILURE() << "mount " << spec.source << " (" << spec.fstype << ", " << spec.options
                          << "): " << strerror(errno);
    }
    ~BlockMount() { unmount(); }
    void unmount() {
        if (mounted_) ::umount2(dir_.c_str(), 0);
        mounted_ = false;
    }
    bool ok() const { return mounted_; }
    std::string operator/(const std::string& rel) const { return path_join(dir_, rel); }

private:
    std::string dir_;
    bool mounted_ = false;
};

int g_pool_counter = 0;

class DmThin : public ::testing::Test {
protected:
    void SetUp() override {
        BERTH_REQUIRE_ROOT();
        if (!dmthin_available())
            GTEST_SKIP() << "no device-mapper in this kernel (tests/qemu runs these under qemu)";
        opts_.state_dir = tmp_ / "state";
        opts_.pool_name = fmt::format("berth-t{}-{}", ::getpid(), g_pool_counter++);
        const char* data = ::getenv("BERTH_DMTHIN_DATA");
        const char* meta = ::getenv("BERTH_DMTHIN_META");
        if (data && meta) {
            opts_.data_device = data;
            opts_.metadata_device = meta;
        } else {
            opts_.data_device = tmp_ / "data.img";
            opts_.metadata_device = tmp_ / "meta.img";
            int a = ::open(opts_.data_device.c_str(), O_CREAT | O_WRONLY, 0600);
            int b = ::open(opts_.metadata_device.c_str(), O_CREAT | O_WRONLY, 0600);
            ASSERT_EQ(::ftruncate(a, 1ll << 30), 0);
            ASSERT_EQ(::ftruncate(b, 64ll << 20), 0);
            ::close(a);
            ::close(b);
        }
        const char* fs = ::getenv("BERTH_DMTHIN_FS");
        opts_.filesystem = fs ? fs : "ext4";
        opts_.base_size = (opts_.filesystem == "xfs" ? 320ull : 256ull) << 20;
        opts_.min_free_data_percent = 5;
        reopen();
    }
    void TearDown() override {
        backend_.reset();
        if (!opts_.state_dir.empty()) {
            auto r = deactivate_dmthin_pool(opts_);
            EXPECT_TRUE(r) << r.error().what();
        }
    }
    void reopen() {
        backend_.reset();
        auto b = make_dmthin_backend(opts_);
        ASSERT_TRUE(b) << b.error().what();
        backend_ = std::move(*b);
    }
    // Builds a layer from a callback that edits the staging tree.
    template <class F>
    void build_layer(const std::string& chain, const std::optional<std::string>& parent, F edit) {
        auto w = backend_->begin_layer(chain, parent);
        ASSERT_TRUE(w) << w.error().what();
        EXPECT_EQ(w->whiteouts, WhiteoutMode::Apply);
        edit(w->path);
        auto c = backend_->commit_layer(*w);
        ASSERT_TRUE(c) << c.error().what();
    }
    uint64_t data_used() {
        auto u = backend_->usage();
        EXPECT_TRUE(u) << u.error().what();
        return u ? u->data_used : 0;
    }
    dmthin::Metadata metadata() {
        auto m = dmthin::parse_metadata(slurp(opts_.state_dir + "/dmthin.json"));
        EXPECT_TRUE(m) << m.error().what();
        return m ? *m : dmthin::Metadata{};
    }
    // A thin id is free in the pool iff create_thin of it succeeds (then we delete it again).
    bool pool_has_device(uint32_t id) {
        auto created = dmthin::dm_message(opts_.pool_name, fmt::format("create_thin {}", id));
        if (!created) return true;
        EXPECT_TRUE(dmthin::dm_message(opts_.pool_name, fmt::format("delete {}", id)));
        return false;
    }
    uint64_t pool_transaction_id() {
        auto s = dmthin::thin_pool_status(opts_.pool_name);
        EXPECT_TRUE(s);
        return s ? s->transaction_id : ~0ull;
    }

    test::TempDir tmp_{"berth-dmthin"};
    DmThinOptions opts_;
    std::unique_ptr<SnapshotBackend> backend_;
};

TEST_F(DmThin, StartsFromAnEmptyBaseFilesystem) {
    EXPECT_EQ(backend_->name(), "dm-thin");
    auto w = backend_->begin_layer(kL1, std::nullopt);
    ASSERT_TRUE(w) << w.error().what();
    EXPECT_FALSE(path_exists(w->path + "/lost+found"));
    EXPECT_TRUE(is_directory(w->path));
    ASSERT_TRUE(backend_->abort_layer(*w));
    EXPECT_FALSE(backend_->has_layer(kL1));
    auto u = backend_->usage();
    ASSERT_TRUE(u);
    EXPECT_GT(u->data_total, 0u);
    EXPECT_GT(u->metadata_total, 0u);
    EXPECT_GT(u->data_used, 0u);  // the base filesystem
}

TEST_F(DmThin, StacksLayersAndAppliesWhiteouts) {
    build_layer(kL1, std::nullopt, [](const std::string& root) {
        ASSERT_TRUE(mkdir_p(root + "/etc"));
        spew(root + "/etc/keep", "keep\n");
        spew(root + "/etc/gone", "gone\n");
        spew(root + "/etc/changed", "v1\n");
    });
    build_layer(kL2, kL1, [](const std::string& root) {
        // The layer's diff, applied as whiteouts in Apply mode: the path is deleted.
        EXPECT_EQ(slurp(root + "/etc/keep"), "keep\n");
        ASSERT_EQ(::unlink((root + "/etc/gone").c_str()), 0);
        spew(root + "/etc/changed", "v2\n");
        spew(root + "/new", "new\n");
    });
    EXPECT_TRUE(backend_->has_layer(kL1));
    EXPECT_TRUE(backend_->has_layer(kL2));

    auto v2 = backend_->layer_view(kL2);
    ASSERT_TRUE(v2) << v2.error().what();
    EXPECT_EQ(slurp(*v2 + "/etc/keep"), "keep\n");
    EXPECT_FALSE(path_exists(*v2 + "/etc/gone"));
    EXPECT_EQ(slurp(*v2 + "/etc/changed"), "v2\n");
    EXPECT_EQ(slurp(*v2 + "/new"), "new\n");
    // Views are read-only.
    EXPECT_FALSE(write_file(*v2 + "/etc/keep", "x", O_WRONLY | O_TRUNC));

    auto v1 = backend_->layer_view(kL1);
    ASSERT_TRUE(v1) << v1.error().what();
    EXPECT_EQ(slurp(*v1 + "/etc/gone"), "gone\n");
    EXPECT_EQ(slurp(*v1 + "/etc/changed"), "v1\n");
    EXPECT_FALSE(path_exists(*v1 + "/new"));
    ASSERT_TRUE(backend_->release_layer_view(kL1));
    ASSERT_TRUE(backend_->release_layer_view(kL2));

    auto refused = backend_->remove_layer(kL1);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, EBUSY);
    ASSERT_TRUE(backend_->remove_layer(kL2));
    ASSERT_TRUE(backend_->remove_layer(kL1));
    EXPECT_FALSE(backend_->has_layer(kL1));
}

TEST_F(DmThin, ContainerWritesAreInvisibleToTheImageAndOtherContainers) {
    build_layer(kL1, std::nullopt, [](const std::string& root) { spew(root + "/hello", "image\n"); });
    auto a = backend_->prepare_snapshot("a", kL1);
    auto b = backend_->prepare_snapshot("b", kL1);
    ASSERT_TRUE(a) << a.error().what();
    ASSERT_TRUE(b) << b.error().what();
    EXPECT_EQ(a->kind, MountSpec::Kind::Block);
    EXPECT_EQ(a->fstype, opts_.filesystem);
    EXPECT_NE(a->source, b->source);
    if (opts_.filesystem == "xfs") {
        EXPECT_NE(a->options.find("nouuid"), std::string::npos);
    }
    {
        BlockMount ma(*a, tmp_ / "ma");
        BlockMount mb(*b, tmp_ / "mb");  // both at once: same fs UUID
        ASSERT_TRUE(ma.ok() && mb.ok());
        EXPECT_EQ(slurp(ma / "hello"), "image\n");
        spew(ma / "hello", "changed by a\n");
        spew(ma / "only-a", "a\n");
        ::sync();
        EXPECT_EQ(slurp(mb / "hello"), "image\n");
        EXPECT_FALSE(path_exists(mb / "only-a"));
    }
    auto view = backend_->layer_view(kL1);
    ASSERT_TRUE(view);
    EXPECT_EQ(slurp(*view + "/hello"), "image\n");
    EXPECT_FALSE(path_exists(*view + "/only-a"));
    ASSERT_TRUE(backend_->release_layer_view(kL1));

    // The data stays across release/re-activation.
    ASSERT_TRUE(backend_->release_snapshot("a"));
    auto again = backend_->snapshot_mount("a");
    ASSERT_TRUE(again) << again.error().what();
    {
        BlockMount ma(*again, tmp_ / "ma");
        EXPECT_EQ(slurp(ma / "only-a"), "a\n");
    }
    std::set<std::string> ids;
    for (auto& s : backend_->list_snapshots()) {
        ids.insert(s.id);
        EXPECT_EQ(s.layer, kL1);
    }
    EXPECT_EQ(ids, (std::set<std::string>{"a", "b"}));
    ASSERT_TRUE(backend_->remove_snapshot("a"));
    ASSERT_TRUE(backend_->remove_snapshot("b"));
    EXPECT_TRUE(backend_->list_snapshots().empty());
}

TEST_F(DmThin, CommitsAContainerAsANewLayer) {
    build_layer(kL1, std::nullopt, [](const std::string& root) { spew(root + "/base", "base\n"); });
    auto s = backend_->prepare_snapshot("c", kL1);
    ASSERT_TRUE(s);
    {
        BlockMount m(*s, tmp_ / "m");
        ASSERT_TRUE(m.ok());
        spew(m / "added", "by container\n");
        // A view of the running container (what the store diffs to compute the new layer).
        auto view = backend_->snapshot_view("c");
        ASSERT_TRUE(view) << view.error().what();
        EXPECT_EQ(slurp(*view + "/added"), "by container\n");
        EXPECT_EQ(slurp(*view + "/base"), "base\n");
        EXPECT_FALSE(write_file(*view + "/added", "x", O_WRONLY | O_TRUNC));
        ASSERT_TRUE(backend_->release_snapshot_view("c"));
        EXPECT_FALSE(path_exists(*view + "/added"));
        spew(m / "still-writable", "yes\n");
        ::sync();
        // Committed while mounted: the origin is suspended (fs frozen) around create_snap.
        auto c = backend_->commit_snapshot("c", kL3);
        ASSERT_TRUE(c) << c.error().what();
        spew(m / "after", "after commit\n");
    }
    EXPECT_TRUE(backend_->has_layer(kL3));
    auto v = backend_->layer_view(kL3);
    ASSERT_TRUE(v) << v.error().what();
    EXPECT_EQ(slurp(*v + "/base"), "base\n");
    EXPECT_EQ(slurp(*v + "/added"), "by container\n");
    EXPECT_FALSE(path_exists(*v + "/after"));
    ASSERT_TRUE(backend_->release_layer_view(kL3));
    // The new layer is a child of the container's layer.
    auto refused = backend_->remove_layer(kL1);
    EXPECT_FALSE(refused);
    // And a container can start from it.
    auto s2 = backend_->prepare_snapshot("c2", kL3);
    ASSERT_TRUE(s2) << s2.error().what();
    BlockMount m2(*s2, tmp_ / "m2");
    EXPECT_EQ(slurp(m2 / "added"), "by container\n");
}

TEST_F(DmThin, RemovingSnapshotsAndLayersReturnsSpaceToThePool) {
    build_layer(kL1, std::nullopt, [](const std::string& root) { fill(root + "/blob", 24); });
    uint64_t with_layer = data_used();
    auto s = backend_->prepare_snapshot("gc", kL1);
    ASSERT_TRUE(s);
    {
        BlockMount m(*s, tmp_ / "m");
        ASSERT_TRUE(m.ok());
        fill(m / "written", 32);
    }
    uint64_t with_snapshot = data_used();
    EXPECT_GE(with_snapshot, with_layer + (30ull << 20));
    ASSERT_TRUE(backend_->remove_snapshot("gc"));
    uint64_t after_snapshot = data_used();
    EXPECT_LE(after_snapshot, with_layer + (2ull << 20));
    ASSERT_TRUE(backend_->remove_layer(kL1));
    EXPECT_LE(data_used(), after_snapshot - (20ull << 20));
}

TEST_F(DmThin, RefusesNewSnapshotsBeforeThePoolFills) {
    build_layer(kL1, std::nullopt, [](const std::string&) {});
    auto u = backend_->usage();
    ASSERT_TRUE(u);
    double free_now = 100.0 * double(u->data_total - u->data_used) / double(u->data_total);
    // Threshold just below the current free space; 3% of the pool written puts us under it.
    opts_.min_free_data_percent = free_now - 2.0;
    reopen();
    auto s = backend_->prepare_snapshot("filler", kL1);
    ASSERT_TRUE(s) << s.error().what();
    int mib = static_cast<int>(u->data_total * 3 / 100 >> 20) + 4;
    {
        BlockMount m(*s, tmp_ / "m");
        ASSERT_TRUE(m.ok());
        fill(m / "big", mib);
    }
    auto refused = backend_->prepare_snapshot("refused", kL1);
    ASSERT_FALSE(refused) << "free before: " << free_now << "%";
    EXPECT_EQ(refused.error().code, ENOSPC);
    EXPECT_NE(refused.error().what().find(opts_.pool_name), std::string::npos) << refused.error().what();
    EXPECT_NE(refused.error().what().find("low on data space"), std::string::npos) << refused.error().what();
    auto vol = backend_->create_volume("refused-vol");
    EXPECT_FALSE(vol);
    // Nothing half-made was left behind.
    EXPECT_EQ(backend_->list_snapshots().size(), 1u);
    EXPECT_FALSE(metadata().pending);
    // Freeing space makes room again.
    ASSERT_TRUE(backend_->remove_snapshot("filler"));
    auto ok = backend_->prepare_snapshot("fits", kL1);
    EXPECT_TRUE(ok) << ok.error().what();
}

// The mount table is read with libmount (basic/mount-util.h): a staging or view mount left under
// a state directory whose path has a space ("\040" in /proc/self/mountinfo) is unmounted too;
// splitting the table on spaces by hand never matched it.
TEST_F(DmThin, DeactivationUnmountsLeftoverMountsOfAStateDirectoryWithASpace) {
    backend_.reset();
    ASSERT_TRUE(deactivate_dmthin_pool(opts_));
    opts_.state_dir = tmp_ / "state dir";
    reopen();
    const std::string view = path_join(opts_.state_dir, "view/leftover");
    ASSERT_TRUE(mkdir_p(view, 0700));
    ASSERT_EQ(::mount("tmpfs", view.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, "size=1m"), 0) << strerror(errno);
    backend_.reset();
    auto r = deactivate_dmthin_pool(opts_);
    EXPECT_TRUE(r) << r.error().what();
    const bool left = is_mount_point(view);
    if (left) ::umount2(view.c_str(), MNT_DETACH);
    EXPECT_FALSE(left) << "'" << view << "' is still mounted after deactivate_dmthin_pool";
}

TEST_F(DmThin, AVolumeSurvivesARestartOfTheBackendAndThePool) {
    auto v = backend_->create_volume("data");
    ASSERT_TRUE(v) << v.error().what();
    {
        BlockMount m(*v, tmp_ / "v");
        ASSERT_TRUE(m.ok());
        spew(m / "state", "persisted\n");
    }
    // berthd stops and the machine "reboots": every device and the pool itself go away.
    backend_.reset();
    ASSERT_TRUE(deactivate_dmthin_pool(opts_));
    ASSERT_FALSE(dmthin::dm_info(opts_.pool_name)->exists);
    reopen();
    auto again = backend_->create_volume("data");  // opens the existing volume
    ASSERT_TRUE(again) << again.error().what();
    EXPECT_EQ(again->source, v->source);
    BlockMount m(*again, tmp_ / "v");
    EXPECT_EQ(slurp(m / "state"), "persisted\n");
    m.unmount();
    ASSERT_TRUE(backend_->remove_volume("data"));
}

TEST_F(DmThin, ABusyDeviceIsNamedAndReleasedLater) {
    build_layer(kL1, std::nullopt, [](const std::string&) {});
    auto s = backend_->prepare_snapshot("busy", kL1);
    ASSERT_TRUE(s);
    BlockMount m(*s, tmp_ / "m");
    ASSERT_TRUE(m.ok());
    auto refused = backend_->remove_snapshot("busy");
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, EBUSY);
    std::string dev = s->source.substr(std::string("/dev/mapper/").size());
    EXPECT_NE(refused.error().what().find(dev), std::string::npos) << refused.error().what();
    // release: deferred removal, the device goes away at the last close.
    ASSERT_TRUE(backend_->release_snapshot("busy"));
    EXPECT_TRUE(dmthin::dm_info(dev)->exists);
    m.unmount();
    // The kernel runs deferred removals from a work queue, shortly after the last close.
    for (int i = 0; i < 50 && dmthin::dm_info(dev)->exists; i++) ::usleep(100 * 1000);
    EXPECT_FALSE(dmthin::dm_info(dev)->exists);
    EXPECT_TRUE(backend_->remove_snapshot("busy"));
}

TEST_F(DmThin, ReconcileRemovesOrphansAndUnfinishedLayers) {
    build_layer(kL1, std::nullopt, [](const std::string&) {});
    build_layer(kL2, kL1, [](const std::string&) {});
    ASSERT_TRUE(backend_->prepare_snapshot("known", kL1));
    ASSERT_TRUE(backend_->prepare_snapshot("orphan", kL1));
    auto w = backend_->begin_layer(kL3, kL1);  // an import that "crashes"
    ASSERT_TRUE(w);
    backend_.reset();
    reopen();
    auto removed = backend_->reconcile({kL1}, {"known"});
    ASSERT_TRUE(removed) << removed.error().what();
    // By kind and by the store's names (chain id, snapshot id), not dm-thin's record keys: Store::gc
    // once parsed text for "layer " and so reported none of dm-thin's removed layers.
    EXPECT_EQ(removed->layers, (std::vector<std::string>{kL2}));
    EXPECT_EQ(removed->snapshots, (std::vector<std::string>{"orphan"}));
    EXPECT_TRUE(removed->volumes.empty());
    EXPECT_EQ(removed->other, (std::vector<std::string>{"staging " + kL3}));
    EXPECT_TRUE(backend_->has_layer(kL1));
    EXPECT_FALSE(backend_->has_layer(kL2));
    ASSERT_EQ(backend_->list_snapshots().size(), 1u);
    EXPECT_EQ(backend_->list_snapshots()[0].id, "known");
    auto again = backend_->reconcile({kL1}, {"known"});
    ASSERT_TRUE(again);
    EXPECT_TRUE(again->empty());
}

// Crash injection: the operation stops dead at `point` (no cleanup, like a crash), the backend
// is dropped and reopened; recovery plus reconcile must agree with the pool.
class DmThinCrash : public DmThin, public ::testing::WithParamInterface<const char*> {};

TEST_P(DmThinCrash, ReconcilesAfterACrashAtAnyPointOfACreate) {
    build_layer(kL1, std::nullopt, [](const std::string&) {});
    std::string point = GetParam();
    opts_.fault_hook = [point](std::string_view at) -> Result<> {
        if (at == point) return fail(EINTR, "simulated crash at {}", at);
        return {};
    };
    reopen();
    auto crashed = backend_->prepare_snapshot("crash", kL1);
    ASSERT_FALSE(crashed);
    auto m = metadata();
    ASSERT_TRUE(m.pending) << "crash must leave the transaction open";
    uint32_t id = m.pending->device.id;
    opts_.fault_hook = nullptr;
    reopen();
    m = metadata();
    EXPECT_FALSE(m.pending);
    EXPECT_EQ(m.transaction_id, pool_transaction_id());
    bool committed = point == "create:after-transaction-id";
    EXPECT_EQ(m.devices.count("snapshot:crash"), committed ? 1u : 0u);
    // The store never recorded the container: reconcile removes whatever the backend kept.
    auto removed = backend_->reconcile({kL1}, {});
    ASSERT_TRUE(removed) << removed.error().what();
    EXPECT_FALSE(pool_has_device(id)) << "thin device " << id << " leaked in the pool";
    EXPECT_TRUE(backend_->list_snapshots().empty());
    auto retry = backend_->prepare_snapshot("crash", kL1);
    EXPECT_TRUE(retry) << retry.error().what();
}

TEST_P(DmThinCrash, ReconcilesAfterACrashAtAnyPointOfADelete) {
    build_layer(kL1, std::nullopt, [](const std::string&) {});
    ASSERT_TRUE(backend_->prepare_snapshot("victim", kL1));
    std::string point = std::string(GetParam());
    point.replace(0, 6, "delete");
    opts_.fault_hook = [point](std::string_view at) -> Result<> {
        if (at == point) return fail(EINTR, "simulated crash at {}", at);
        return {};
    };
    reopen();
    uint32_t id = metadata().devices.at("snapshot:victim").id;
    ASSERT_FALSE(backend_->remove_snapshot("victim"));
    opts_.fault_hook = nullptr;
    reopen();
    auto m = metadata();
    EXPECT_FALSE(m.pending);
    EXPECT_EQ(m.transaction_id, pool_transaction_id());
    // A delete that was started is always finished.
    EXPECT_EQ(m.devices.count("snapshot:victim"), 0u);
    EXPECT_FALSE(pool_has_device(id));
    auto removed = backend_->reconcile({kL1}, {});
    ASSERT_TRUE(removed);
    EXPECT_TRUE(removed->empty());
}

INSTANTIATE_TEST_SUITE_P(Points, DmThinCrash,
                         ::testing::Values("create:before-message", "create:after-message",
                                           "create:after-transaction-id"),
                         [](const auto& p) {
                             std::string n = p.param;
                             for (auto& c : n)
                                 if (!isalnum(static_cast<unsigned char>(c))) c = '_';
                             return n;
                         });

TEST(DmThinLoopback, CreatesItsPoolFromSparseFiles) {
    BERTH_REQUIRE_ROOT();
    if (!dmthin_available()) GTEST_SKIP() << "no device-mapper in this kernel";
    if (::access("/dev/loop-control", F_OK) != 0) GTEST_SKIP() << "no loop devices";
    test::TempDir tmp("berth-dmthin-loop");
    DmThinOptions o;
    o.state_dir = tmp / "state";
    o.pool_name = fmt::format("berth-loop{}", ::getpid());
    o.data_device = tmp / "data";
    o.metadata_device = tmp / "meta";
    o.base_size = 128ull << 20;
    for (auto& [p, size] :
         {std::pair{o.data_device, 512ll << 20}, std::pair{o.metadata_device, 16ll << 20}}) {
        int fd = ::open(p.c_str(), O_CREAT | O_WRONLY, 0600);
        ASSERT_EQ(::ftruncate(fd, size), 0);
        ::close(fd);
    }
    {
        auto b = make_dmthin_backend(o);
        ASSERT_TRUE(b) << b.error().what();
        auto s = (*b)->prepare_snapshot("x", std::nullopt);
        ASSERT_TRUE(s) << s.error().what();
        BlockMount m(*s, tmp / "m");
        EXPECT_TRUE(m.ok());
    }
    ASSERT_TRUE(deactivate_dmthin_pool(o));
    EXPECT_FALSE(dmthin::dm_info(o.pool_name)->exists);
}

TEST(DmThinErrors, ReportsAMissingPoolByName) {
    BERTH_REQUIRE_ROOT();
    if (!dmthin_available()) GTEST_SKIP() << "no device-mapper in this kernel";
    test::TempDir tmp("berth-dmthin-err");
    DmThinOptions o;
    o.state_dir = tmp / "state";
    o.pool_name = "berth-no-such-pool";
    auto b = make_dmthin_backend(o);
    ASSERT_FALSE(b);
    EXPECT_NE(b.error().what().find("berth-no-such-pool"), std::string::npos) << b.error().what();
}

}  // namespace
