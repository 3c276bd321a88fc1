#include "store/dmthin/dmthin-backend.h"

#include <fcntl.h>
#include <linux/loop.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "basic/fs-util.h"
#include "basic/mount-util.h"
#include "basic/probe-util.h"
#include "basic/string-util.h"
#include "basic/unique.h"
#include "store/dmthin/dm-ops.h"
#include "store/dmthin/dmthin-metadata.h"
#include "store/dmthin/program.h"
#include "store/dmthin/thin-usage.h"

namespace berth::store {

using namespace dmthin;

namespace {

constexpr const char* kMetadataFile = "dmthin.json";

// Attaches a regular file to a free loop device; the kernel detaches it at the last close
// (LO_FLAGS_AUTOCLEAR), i.e. once the pool that holds it is removed.
Result<std::pair<std::string, UniqueFd>> attach_loop(const std::string& file) {
    UniqueFd backing(::open(file.c_str(), O_RDWR | O_CLOEXEC));
    if (!backing) return fail_errno("open '{}'", file);
    UniqueFd control(::open("/dev/loop-control", O_RDWR | O_CLOEXEC));
    if (!control) return fail_errno("open '/dev/loop-control'");
    for (int attempt = 0; attempt < 16; attempt++) {
        int n = ::ioctl(control.get(), LOOP_CTL_GET_FREE);
        if (n < 0) return fail_errno("LOOP_CTL_GET_FREE");
        std::string dev = fmt::format("/dev/loop{}", n);
        UniqueFd loop(::open(dev.c_str(), O_RDWR | O_CLOEXEC));
        if (!loop) return fail_errno("open '{}'", dev);
        loop_config config{};
        config.fd = static_cast<uint32_t>(backing.get());
        config.info.lo_flags = LO_FLAGS_AUTOCLEAR;
        snprintf(reinterpret_cast<char*>(config.info.lo_file_name), LO_NAME_SIZE, "%s", file.c_str());
        if (::ioctl(loop.get(), LOOP_CONFIGURE, &config) == 0) return std::pair{dev, std::move(loop)};
        if (errno != EBUSY) return fail_errno("attach '{}' to '{}'", file, dev);
    }
    return fail(EBUSY, "no free loop device for '{}'", file);
}

// Snapshot ids, volume names and chain ids become keys of dmthin.json and parts of mount paths:
// plain names only ("../x", "a/b" and control characters are refused).
Result<> check_name(std::string_view what, const std::string& name) {
    bool ok = !name.empty() && name.size() <= 255 && name != "." && name != "..";
    for (char c : name)
        if (!(isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-' || c == ':' ||
              c == '@'))
            ok = false;
    if (!ok) return fail(EINVAL, "dm-thin: invalid {} '{}'", what, name);
    return {};
}

bool is_regular_file(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

Result<> unmount_if_mounted(const std::string& path) {
    if (!is_mount_point(path)) return {};
    if (::umount2(path.c_str(), UMOUNT_NOFOLLOW) < 0) return fail_errno("unmount '{}'", path);
    return {};
}

class DmThinBackend final : public SnapshotBackend {
public:
    explicit DmThinBackend(DmThinOptions options) : opt_(std::move(options)) {}

    Result<> open();

    std::string name() const override { return "dm-thin"; }
    BackendCapabilities capabilities() const override {
        BackendCapabilities c;
        c.block_devices = true;
        c.list_under_store_lock = true;  // an in-memory map; prepare/release/remove change it
        c.sizes_may_be_unknown = true;   // without thin_ls
        c.pool_metadata = true;
        return c;
    }

    Result<LayerWriter> begin_layer(const std::string& chain_id,
                                    const std::optional<std::string>& parent) override;
    Result<> commit_layer(LayerWriter& writer) override;
    Result<> abort_layer(LayerWriter& writer) override;
    bool has_layer(const std::string& chain_id) const override {
        auto it = meta_.devices.find(record_key(DeviceKind::Layer, chain_id));
        return it != meta_.devices.end() && it->second.ready;
    }
    Result<> remove_layer(const std::string& chain_id) override;
    Result<std::string> layer_view(const std::string& chain_id) override;
    Result<> release_layer_view(const std::string& chain_id) override;

    Result<MountSpec> prepare_snapshot(const std::string& id,
                                       const std::optional<std::string>& layer) override;
    Result<MountSpec> snapshot_mount(const std::string& id) override;
    Result<> release_snapshot(const std::string& id) override;
    Result<> remove_snapshot(const std::string& id) override;
    std::vector<SnapshotInfo> list_snapshots() const override;
    std::string size_note() const override { return size_note_; }
    Result<> commit_snapshot(const std::string& id, const std::string& new_chain_id) override;
    Result<std::string> snapshot_view(const std::string& id) override;
    Result<> release_snapshot_view(const std::string& id) override;

    Result<MountSpec> create_volume(const std::string& name) override;
    Result<> remove_volume(const std::string& name) override;

    Result<PoolUsage> usage() const override;
    Result<ReconcileReport> reconcile(const std::vector<std::string>& known_layers,
                                      const std::vector<std::string>& known_snapshots) override;

private:
    std::string metadata_path() const { return path_join(opt_.state_dir, kMetadataFile); }
    std::string pool_path() const { return mapper_path(opt_.pool_name); }
    std::string device_name(uint32_t id) const { return fmt::format("{}-thin-{}", opt_.pool_name, id); }
    std::string device_path(uint32_t id) const { return mapper_path(device_name(id)); }
    std::string staging_dir(uint32_t id) const {
        return path_join(opt_.state_dir, fmt::format("mnt/{}", id));
    }
    std::string view_dir(uint32_t id) const { return path_join(opt_.state_dir, fmt::format("view/{}", id)); }

    Result<> save() { return write_file_atomic(metadata_path(), serialize_metadata(meta_), 0600); }
    Result<> fault(std::string_view point) {
        if (opt_.fault_hook) return opt_.fault_hook(point);
        return {};
    }

    Result<> ensure_pool(bool fresh);
    Result<> recover();
    Result<> ensure_base();
    Result<> check_space() const;
    Result<uint32_t> create_device(const std::string& key, DeviceRecord record,
                                   std::optional<uint32_t> origin);
    Result<> delete_device(const std::string& key);
    // A thin device create_device just made: deleted again (device and record) when the guard goes
    // out of scope, unless release()d once the operation that needed it succeeded.
    class DeviceGuard {
    public:
        DeviceGuard(DmThinBackend& backend, std::string key) : backend_(&backend), key_(std::move(key)) {}
        DeviceGuard(const DeviceGuard&) = delete;
        DeviceGuard& operator=(const DeviceGuard&) = delete;
        ~DeviceGuard() {
            if (backend_) (void)backend_->delete_device(key_);
        }
        void release() { backend_ = nullptr; }

    private:
        DmThinBackend* backend_;
        std::string key_;
    };
    Result<> set_transaction_id(uint64_t from, uint64_t to);
    Result<std::string> activate(const DeviceRecord& record, bool read_only);
    Result<> deactivate(uint32_t id, bool deferred);
    Result<> mount_device(const std::string& device, const std::string& dir, bool read_only);
    Result<> make_filesystem(const std::string& device);
    std::string fs_options(bool read_only) const;
    MountSpec block_spec(uint32_t id) const;
    const DeviceRecord* find(DeviceKind kind, const std::string& name) const {
        auto it = meta_.devices.find(record_key(kind, name));
        return it == meta_.devices.end() ? nullptr : &it->second;
    }
    Result<uint32_t> origin_for_layer(const std::optional<std::string>& layer) const;
    // A new record of `kind` made from `layer` (or base): same virtual size as its origin.
    DeviceRecord record_on(DeviceKind kind, const std::string& name,
                           const std::optional<std::string>& layer) const {
        DeviceRecord r;
        r.kind = kind;
        r.name = name;
        r.parent = layer;
        r.sectors = meta_.devices.at(layer ? record_key(DeviceKind::Layer, *layer) : "base").sectors;
        return r;
    }

    DmThinOptions opt_;
    Metadata meta_;
    std::map<std::string, int> views_;           // chain id -> open layer_view count
    std::map<std::string, int> snapshot_views_;  // snapshot id -> open snapshot_view count
    mutable std::string size_note_;              // why the last list_snapshots() has no sizes
    bool pool_zeroes_ = true;                    // the pool hands out zeroed blocks (no skip_block_zeroing)
};

std::string DmThinBackend::fs_options(bool read_only) const {
    std::vector<std::string> options;
    // Every snapshot carries its origin's filesystem UUID; XFS refuses a second mount of a UUID.
    if (opt_.filesystem == "xfs") options.push_back("nouuid");
    // A read-only view must not replay a journal onto a read-only device.
    if (read_only) options.push_back(opt_.filesystem == "xfs" ? "norecovery" : "noload");
    if (!opt_.mount_options.empty()) options.push_back(opt_.mount_options);
    return join(options, ",");
}

MountSpec DmThinBackend::block_spec(uint32_t id) const {
    MountSpec spec;
    spec.kind = MountSpec::Kind::Block;
    spec.source = device_path(id);
    spec.fstype = opt_.filesystem;
    spec.options = fs_options(false);
    spec.read_only = false;
    return spec;
}

Result<> DmThinBackend::open() {
    if (opt_.state_dir.empty()) return fail(EINVAL, "dm-thin: no state directory configured");
    if (opt_.filesystem != "ext4" && opt_.filesystem != "xfs")
        return fail(EINVAL, "dm-thin: unsupported filesystem '{}' (ext4 or xfs)", opt_.filesystem);
    if (opt_.base_size < (64ull << 20))
        return fail(EINVAL, "dm-thin: base size {} is below 64 MiB", opt_.base_size);
    if (opt_.filesystem == "xfs" && opt_.base_size < (300ull << 20))
        return fail(EINVAL, "dm-thin: base size {} is below 300 MiB, the smallest xfs", opt_.base_size);
    if (!devmapper_available())
        return fail(ENODEV, "dm-thin: device-mapper is not available in this kernel (/dev/mapper/control)");
    BERTH_TRY_VOID(mkdir_p(opt_.state_dir, 0700));
    BERTH_TRY_VOID(mkdir_p(path_join(opt_.state_dir, "mnt"), 0700));
    BERTH_TRY_VOID(mkdir_p(path_join(opt_.state_dir, "view"), 0700));

    bool fresh = !path_exists(metadata_path());
    if (!fresh) {
        auto text = BERTH_TRY(read_file(metadata_path()));
        meta_ = BERTH_TRY_CTX(parse_metadata(text), metadata_path());
        if (meta_.pool != opt_.pool_name)
            return fail(EINVAL, "dm-thin: '{}' describes pool '{}', not '{}'", metadata_path(), meta_.pool,
                        opt_.pool_name);
    }
    BERTH_TRY_VOID(ensure_pool(fresh));
    // A pool made with skip_block_zeroing (ours with zero_new_blocks off, or someone else's) may
    // hand out blocks with old data in them.
    pool_zeroes_ = BERTH_TRY(dm_table(opt_.pool_name)).find("skip_block_zeroing") == std::string::npos;
    if (fresh) {
        auto status = BERTH_TRY(thin_pool_status(opt_.pool_name));
        meta_.pool = opt_.pool_name;
        meta_.transaction_id = status.transaction_id;
        BERTH_TRY_VOID(save());
    }
    BERTH_TRY_VOID(recover());
    return ensure_base();
}

Result<> DmThinBackend::ensure_pool(bool fresh) {
    auto info = BERTH_TRY(dm_info(opt_.pool_name));
    if (!info.exists) {
        if (opt_.data_device.empty() || opt_.metadata_device.empty())
            return fail(ENOENT,
                        "dm-thin: thin pool '{}' does not exist and no data/metadata devices are configured",
                        opt_.pool_name);
        std::string data = opt_.data_device, metadata = opt_.metadata_device;
        UniqueFd data_loop, metadata_loop;  // held until the pool holds the devices itself
        if (is_regular_file(data)) std::tie(data, data_loop) = BERTH_TRY(attach_loop(data));
        if (is_regular_file(metadata)) std::tie(metadata, metadata_loop) = BERTH_TRY(attach_loop(metadata));
        if (fresh) {
            // A new pool: a zeroed superblock makes the kernel format the metadata device.
            std::string zeros(4096, '\0');
            UniqueFd fd(::open(metadata.c_str(), O_WRONLY | O_CLOEXEC));
            if (!fd) return fail_errno("open metadata device '{}'", metadata);
            if (::pwrite(fd.get(), zeros.data(), zeros.size(), 0) != 4096 || ::fsync(fd.get()) < 0)
                return fail_errno("clear metadata device '{}'", metadata);
        }
        uint64_t data_sectors = BERTH_TRY(device_sectors(data));
        uint64_t blocks = data_sectors / opt_.data_block_sectors;
        if (blocks < 16) return fail(EINVAL, "dm-thin: data device '{}' is too small", data);
        data_sectors = blocks * opt_.data_block_sectors;
        uint64_t low_water = std::max<uint64_t>(1, blocks / 100);
        BERTH_TRY_VOID_CTX(dm_create(opt_.pool_name, data_sectors, "thin-pool",
                                     thin_pool_params(metadata, data, opt_.data_block_sectors, low_water,
                                                      opt_.zero_new_blocks),
                                     false),
                           "dm-thin: create thin pool");
        meta_.data_block_sectors = opt_.data_block_sectors;
    } else if (meta_.data_block_sectors == 0) {
        // An existing pool (LVM's, say): its block size is in its table.
        meta_.data_block_sectors = opt_.data_block_sectors;
    }
    auto status = BERTH_TRY(thin_pool_status(opt_.pool_name));
    if (status.failed) return fail(EIO, "dm-thin: thin pool '{}' has failed", opt_.pool_name);
    return {};
}

Result<> DmThinBackend::set_transaction_id(uint64_t from, uint64_t to) {
    return dm_message(opt_.pool_name, fmt::format("set_transaction_id {} {}", from, to));
}

Result<> DmThinBackend::recover() {
    auto status = BERTH_TRY(thin_pool_status(opt_.pool_name));
    switch (plan_recovery(meta_, status.transaction_id)) {
        case Recovery::None:
            return {};
        case Recovery::Mismatch:
            return fail(
                EUCLEAN,
                "dm-thin: thin pool '{}' is at transaction {} but '{}' records {}{}: refusing to guess",
                opt_.pool_name, status.transaction_id, metadata_path(), meta_.transaction_id,
                meta_.pending ? fmt::format(" (pending {})", meta_.pending->transaction_id) : "");
        case Recovery::RollForward: {
            auto& p = *meta_.pending;
            if (p.op == PendingOp::Op::Create)
                meta_.devices[p.key] = p.device;
            else
                meta_.devices.erase(p.key);
            meta_.transaction_id = p.transaction_id;
            meta_.pending.reset();
            return save();
        }
        case Recovery::UndoCreate: {
            // The create message may or may not have reached the pool; ENODATA means it did not.
            auto deleted = dm_message(opt_.pool_name, fmt::format("delete {}", meta_.pending->device.id));
            if (!deleted && deleted.error().code != ENODATA)
                return fail(deleted.error().wrap("dm-thin: undo interrupted create"));
            meta_.pending.reset();
            return save();
        }
        case Recovery::RedoDelete: {
            auto& p = *meta_.pending;
            BERTH_TRY_VOID(deactivate(p.device.id, false));
            auto deleted = dm_message(opt_.pool_name, fmt::format("delete {}", p.device.id));
            if (!deleted && deleted.error().code != ENODATA)
                return fail(deleted.error().wrap("dm-thin: redo interrupted delete"));
            BERTH_TRY_VOID(set_transaction_id(meta_.transaction_id, p.transaction_id));
            meta_.devices.erase(p.key);
            meta_.transaction_id = p.transaction_id;
            meta_.pending.reset();
            return save();
        }
    }
    return {};
}

Result<> DmThinBackend::check_space() const {
    auto s = BERTH_TRY(thin_pool_status(opt_.pool_name));
    if (s.failed || s.read_only || s.out_of_data_space)
        return fail(EROFS, "thin pool '{}' is {}: refusing to create a thin device", opt_.pool_name,
                    s.failed              ? "failed"
                    : s.out_of_data_space ? "out of data space"
                                          : "read-only (needs check)");
    auto free_percent = [](uint64_t used, uint64_t total) {
        return total == 0
                   ? 100.0
                   : 100.0 * static_cast<double>(total - std::min(used, total)) / static_cast<double>(total);
    };
    double data_free = free_percent(s.data_used, s.data_total);
    if (data_free < opt_.min_free_data_percent)
        return fail(
            ENOSPC,
            "thin pool '{}' is low on data space ({} of {} blocks used, {:.1f}% free, threshold {:.1f}%): "
            "refusing to create a thin device",
            opt_.pool_name, s.data_used, s.data_total, data_free, opt_.min_free_data_percent);
    double meta_free = free_percent(s.metadata_used, s.metadata_total);
    if (meta_free < opt_.min_free_metadata_percent)
        return fail(ENOSPC,
                    "thin pool '{}' is low on metadata space ({} of {} blocks used, {:.1f}% free, threshold "
                    "{:.1f}%): "
                    "refusing to create a thin device",
                    opt_.pool_name, s.metadata_used, s.metadata_total, meta_free,
                    opt_.min_free_metadata_percent);
    return {};
}

Result<uint32_t> DmThinBackend::create_device(const std::string& key, DeviceRecord record,
                                              std::optional<uint32_t> origin) {
    BERTH_TRY_VOID(check_space());
    uint64_t tid = meta_.transaction_id;
    record.id = meta_.next_device_id;
    meta_.next_device_id++;
    meta_.pending = PendingOp{PendingOp::Op::Create, tid + 1, key, record};
    BERTH_TRY_VOID(save());
    BERTH_TRY_VOID(fault("create:before-message"));

    Result<> sent;
    if (origin) {
        // The kernel requires a live origin to be suspended (its fs frozen) while the snapshot is cut.
        std::string origin_name = device_name(*origin);
        auto info = BERTH_TRY(dm_info(origin_name));
        bool suspend = info.exists && !info.suspended;
        if (suspend) BERTH_TRY_VOID(dm_suspend(origin_name));
        sent = dm_message(opt_.pool_name, fmt::format("create_snap {} {}", record.id, *origin));
        if (suspend) {
            auto resumed = dm_resume(origin_name);
            if (sent && !resumed) sent = fail(resumed.error());
        }
    } else {
        sent = dm_message(opt_.pool_name, fmt::format("create_thin {}", record.id));
    }
    if (!sent) {
        meta_.pending.reset();
        (void)save();  // the id stays consumed; the pool may have it, recovery would delete it
        return fail(sent.error().wrap(fmt::format("thin device {} for {}", record.id, key)));
    }
    BERTH_TRY_VOID(fault("create:after-message"));
    auto committed = set_transaction_id(tid, tid + 1);
    if (!committed) {
        (void)dm_message(opt_.pool_name, fmt::format("delete {}", record.id));
        meta_.pending.reset();
        (void)save();
        return fail(committed.error());
    }
    BERTH_TRY_VOID(fault("create:after-transaction-id"));
    meta_.devices[key] = record;
    meta_.transaction_id = tid + 1;
    meta_.pending.reset();
    BERTH_TRY_VOID(save());
    return record.id;
}

Result<> DmThinBackend::delete_device(const std::string& key) {
    auto it = meta_.devices.find(key);
    if (it == meta_.devices.end()) return fail(ENOENT, "dm-thin: no device for {}", key);
    DeviceRecord record = it->second;
    BERTH_TRY_VOID(unmount_if_mounted(staging_dir(record.id)));
    BERTH_TRY_VOID(unmount_if_mounted(view_dir(record.id)));
    BERTH_TRY_VOID_CTX(deactivate(record.id, false), fmt::format("delete {}", key));
    if (opt_.discard_on_delete) {
        // Discarding through the thin device unmaps its blocks and passes the discard down to the
        // data device, so the space returns below the pool too (sparse files, SSDs, LVM).
        auto path = BERTH_TRY(activate(record, false));
        auto discarded = discard_device(path);
        BERTH_TRY_VOID(deactivate(record.id, false));
        if (!discarded && discarded.error().code != EOPNOTSUPP) return fail(discarded.error());
    }
    uint64_t tid = meta_.transaction_id;
    meta_.pending = PendingOp{PendingOp::Op::Delete, tid + 1, key, record};
    BERTH_TRY_VOID(save());
    BERTH_TRY_VOID(fault("delete:before-message"));
    auto sent = dm_message(opt_.pool_name, fmt::format("delete {}", record.id));
    if (!sent) {
        meta_.pending.reset();
        (void)save();
        return fail(sent.error().wrap(fmt::format("delete thin device {} ({})", record.id, key)));
    }
    BERTH_TRY_VOID(fault("delete:after-message"));
    BERTH_TRY_VOID(set_transaction_id(tid, tid + 1));
    BERTH_TRY_VOID(fault("delete:after-transaction-id"));
    meta_.devices.erase(key);
    meta_.transaction_id = tid + 1;
    meta_.pending.reset();
    return save();
}

Result<std::string> DmThinBackend::activate(const DeviceRecord& record, bool read_only) {
    std::string name = device_name(record.id);
    auto info = BERTH_TRY(dm_info(name));
    if (info.exists) return mapper_path(name);
    BERTH_TRY_VOID(dm_create(name, record.sectors, "thin", thin_params(pool_path(), record.id), read_only));
    return mapper_path(name);
}

Result<> DmThinBackend::deactivate(uint32_t id, bool deferred) {
    return dm_remove(device_name(id), deferred);
}

Result<> DmThinBackend::mount_device(const std::string& device, const std::string& dir, bool read_only) {
    // What the device holds, from its superblock (libblkid), rather than assumed: a device whose
    // mkfs never finished, or a pool made with another `filesystem` than berthd.toml names now,
    // fails saying so instead of with mount's EINVAL.
    auto found = BERTH_TRY_CTX(probe_filesystem(device), "dm-thin");
    if (found.empty())
        return fail(EUCLEAN, "dm-thin: '{}' holds no file system (an interrupted mkfs?)", device);
    if (found != opt_.filesystem)
        return fail(EMEDIUMTYPE, "dm-thin: '{}' holds {}, not the configured filesystem {}", device, found,
                    opt_.filesystem);
    BERTH_TRY_VOID(mkdir_p(dir, 0700));
    std::string options = fs_options(read_only);
    unsigned long flags = MS_NODEV | MS_NOSUID | (read_only ? MS_RDONLY : 0);
    if (::mount(device.c_str(), dir.c_str(), opt_.filesystem.c_str(), flags, options.c_str()) < 0)
        return fail_errno("mount '{}' ({}, '{}') on '{}'", device, opt_.filesystem, options, dir);
    return {};
}

Result<> DmThinBackend::make_filesystem(const std::string& device) {
    std::vector<std::string> argv = {"mkfs." + opt_.filesystem};
    if (opt_.filesystem == "ext4") {
        // No discard pass over a device that has nothing mapped yet, and no zeroing of inode tables
        // or journal at mkfs time. A pool that zeroes new blocks reads unwritten blocks as zeros,
        // so the tables are zero already: assume_storage_prezeroed records that in the group
        // descriptors. Without it the kernel's ext4lazyinit thread writes zeros over every inode
        // table after each mount - in every container's and volume's own thin device, mapping
        // blocks there that `berth df` rightly counts as the container's (measured under qemu: a
        // fresh container of a 256 MiB ext4 mounted idle for 8 s came to own 16.3 MiB; with this,
        // 64 KiB). Stores made before this keep the lazy init in their base filesystem.
        argv.insert(
            argv.end(),
            {"-q", "-F", "-E",
             pool_zeroes_ ? "nodiscard,lazy_itable_init=1,lazy_journal_init=1,assume_storage_prezeroed=1"
                          : "nodiscard,lazy_itable_init=1,lazy_journal_init=1"});
    } else {
        argv.insert(argv.end(), {"-q", "-f", "-K"});
    }
    argv.insert(argv.end(), opt_.mkfs_options.begin(), opt_.mkfs_options.end());
    argv.push_back(device);
    BERTH_TRY_VOID(run_program(argv));
    return {};
}

Result<> DmThinBackend::ensure_base() {
    if (auto* base = find(DeviceKind::Base, ""); base && base->ready) return {};
    if (find(DeviceKind::Base, "")) BERTH_TRY_VOID(delete_device("base"));  // a crash interrupted mkfs
    DeviceRecord record;
    record.kind = DeviceKind::Base;
    record.sectors = opt_.base_size / 512;
    uint32_t id = BERTH_TRY_CTX(create_device("base", record, std::nullopt), "dm-thin: create base volume");
    auto& stored = meta_.devices.at("base");
    auto path = BERTH_TRY(activate(stored, false));
    BERTH_TRY_VOID_CTX(make_filesystem(path), "dm-thin: base volume");
    if (opt_.filesystem == "ext4") {
        // An image's root must not start with ext4's lost+found.
        std::string dir = staging_dir(id);
        BERTH_TRY_VOID(mount_device(path, dir, false));
        std::string lost = path_join(dir, "lost+found");
        int rc = ::rmdir(lost.c_str());
        int saved = errno;
        ::syncfs(open_path(dir).value_or(UniqueFd()).get());
        BERTH_TRY_VOID(unmount_if_mounted(dir));
        if (rc < 0 && saved != ENOENT) return fail(saved, "remove '{}'", lost);
    }
    BERTH_TRY_VOID(deactivate(id, false));
    meta_.devices.at("base").ready = true;
    return save();
}

Result<uint32_t> DmThinBackend::origin_for_layer(const std::optional<std::string>& layer) const {
    if (!layer) return meta_.devices.at("base").id;
    const DeviceRecord* r = find(DeviceKind::Layer, *layer);
    if (!r || !r->ready) return fail(ENOENT, "dm-thin: no layer '{}'", *layer);
    return r->id;
}

Result<LayerWriter> DmThinBackend::begin_layer(const std::string& chain_id,
                                               const std::optional<std::string>& parent) {
    BERTH_TRY_VOID(check_name("layer id", chain_id));
    if (has_layer(chain_id)) return fail(EEXIST, "dm-thin: layer '{}' already exists", chain_id);
    std::string key = record_key(DeviceKind::Staging, chain_id);
    if (meta_.devices.count(key)) return fail(EBUSY, "dm-thin: layer '{}' is already being built", chain_id);
    uint32_t origin = BERTH_TRY(origin_for_layer(parent));
    DeviceRecord record = record_on(DeviceKind::Staging, chain_id, parent);
    std::string ctx = fmt::format("begin layer '{}'", chain_id);
    uint32_t id = BERTH_TRY_CTX(create_device(key, record, origin), ctx);
    DeviceGuard device(*this, key);
    auto path = BERTH_TRY_CTX(activate(meta_.devices.at(key), false), ctx);
    BERTH_TRY_VOID_CTX(mount_device(path, staging_dir(id), false), ctx);
    device.release();
    LayerWriter writer;
    writer.chain_id = chain_id;
    writer.parent = parent;
    writer.path = staging_dir(id);
    writer.whiteouts = WhiteoutMode::Apply;
    writer.backend_token = std::to_string(id);
    return writer;
}

// The staging record is found through the writer's token (its device id), not its chain id: the
// store may only learn the final chain id at the end of the stream and set it before committing.
static std::optional<uint32_t> token_id(const LayerWriter& writer) {
    auto id = parse_unsigned(writer.backend_token);
    if (!id || *id > UINT32_MAX) return std::nullopt;
    return static_cast<uint32_t>(*id);
}

Result<> DmThinBackend::commit_layer(LayerWriter& writer) {
    auto token = token_id(writer);
    auto it = std::find_if(meta_.devices.begin(), meta_.devices.end(), [&](auto& kv) {
        return kv.second.kind == DeviceKind::Staging && token && kv.second.id == *token;
    });
    if (it == meta_.devices.end())
        return fail(ENOENT, "dm-thin: layer '{}' is not being built", writer.chain_id);
    BERTH_TRY_VOID(check_name("layer id", writer.chain_id));
    if (has_layer(writer.chain_id))
        return fail(EEXIST, "dm-thin: layer '{}' already exists", writer.chain_id);
    uint32_t id = it->second.id;
    std::string dir = staging_dir(id);
    {
        UniqueFd dirfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        if (dirfd && ::syncfs(dirfd.get()) < 0) return fail_errno("sync '{}'", dir);
    }
    BERTH_TRY_VOID_CTX(unmount_if_mounted(dir), fmt::format("commit layer '{}'", writer.chain_id));
    BERTH_TRY_VOID_CTX(deactivate(id, false), fmt::format("commit layer '{}'", writer.chain_id));
    ::rmdir(dir.c_str());
    DeviceRecord record = it->second;
    record.kind = DeviceKind::Layer;
    record.name = writer.chain_id;
    record.ready = true;
    meta_.devices.erase(it);
    meta_.devices[record_key(DeviceKind::Layer, writer.chain_id)] = record;
    return save();
}

Result<> DmThinBackend::abort_layer(LayerWriter& writer) {
    auto token = token_id(writer);
    for (auto& [key, r] : meta_.devices)
        if (r.kind == DeviceKind::Staging && token && r.id == *token)
            return with_context(delete_device(std::string(key)),
                                fmt::format("abort layer '{}'", writer.chain_id));
    return {};
}

Result<> DmThinBackend::remove_layer(const std::string& chain_id) {
    if (!has_layer(chain_id)) return fail(ENOENT, "dm-thin: no layer '{}'", chain_id);
    for (auto& [key, r] : meta_.devices) {
        if (r.parent == chain_id && r.kind != DeviceKind::Snapshot)
            return fail(EBUSY, "dm-thin: layer '{}' has a child ('{}')", chain_id, r.name);
        if (r.parent == chain_id)
            return fail(EBUSY, "dm-thin: layer '{}' is used by snapshot '{}'", chain_id, r.name);
    }
    if (views_.count(chain_id)) return fail(EBUSY, "dm-thin: layer '{}' is being viewed", chain_id);
    return with_context(delete_device(record_key(DeviceKind::Layer, chain_id)),
                        fmt::format("remove layer '{}'", chain_id));
}

Result<std::string> DmThinBackend::layer_view(const std::string& chain_id) {
    const DeviceRecord* r = find(DeviceKind::Layer, chain_id);
    if (!r || !r->ready) return fail(ENOENT, "dm-thin: no layer '{}'", chain_id);
    std::string dir = view_dir(r->id);
    if (views_[chain_id]++ > 0 && is_mount_point(dir)) return dir;
    auto mounted = [&]() -> Result<> {
        auto path = BERTH_TRY(activate(*r, true));
        return mount_device(path, dir, true);
    }();
    if (!mounted) {
        views_.erase(chain_id);
        (void)deactivate(r->id, false);
        return fail(mounted.error().wrap(fmt::format("view layer '{}'", chain_id)));
    }
    return dir;
}

Result<> DmThinBackend::release_layer_view(const std::string& chain_id) {
    const DeviceRecord* r = find(DeviceKind::Layer, chain_id);
    if (!r) return fail(ENOENT, "dm-thin: no layer '{}'", chain_id);
    auto it = views_.find(chain_id);
    if (it == views_.end()) return {};
    if (--it->second > 0) return {};
    views_.erase(it);
    BERTH_TRY_VOID(unmount_if_mounted(view_dir(r->id)));
    ::rmdir(view_dir(r->id).c_str());
    return deactivate(r->id, true);
}

Result<MountSpec> DmThinBackend::prepare_snapshot(const std::string& id,
                                                  const std::optional<std::string>& layer) {
    std::string key = record_key(DeviceKind::Snapshot, id);
    BERTH_TRY_VOID(check_name("snapshot id", id));
    if (meta_.devices.count(key)) return fail(EEXIST, "dm-thin: snapshot '{}' already exists", id);
    uint32_t origin = BERTH_TRY(origin_for_layer(layer));
    DeviceRecord record = record_on(DeviceKind::Snapshot, id, layer);
    record.ready = true;
    std::string ctx = fmt::format("prepare snapshot '{}'", id);
    uint32_t dev = BERTH_TRY_CTX(create_device(key, record, origin), ctx);
    DeviceGuard device(*this, key);  // a snapshot that never activated is not left to block a retry
    BERTH_TRY_VOID_CTX(activate(meta_.devices.at(key), false), ctx);
    device.release();
    return block_spec(dev);
}

Result<MountSpec> DmThinBackend::snapshot_mount(const std::string& id) {
    const DeviceRecord* r = find(DeviceKind::Snapshot, id);
    if (!r) r = find(DeviceKind::Volume, id);
    if (!r || !r->ready) return fail(ENOENT, "dm-thin: no snapshot '{}'", id);
    BERTH_TRY_VOID_CTX(activate(*r, false), fmt::format("activate snapshot '{}'", id));
    return block_spec(r->id);
}

Result<> DmThinBackend::release_snapshot(const std::string& id) {
    const DeviceRecord* r = find(DeviceKind::Snapshot, id);
    if (!r) r = find(DeviceKind::Volume, id);
    if (!r) return fail(ENOENT, "dm-thin: no snapshot '{}'", id);
    // A container that is still exiting may hold the device: the kernel removes it at last close.
    return with_context(deactivate(r->id, true), fmt::format("release snapshot '{}'", id));
}

Result<> DmThinBackend::remove_snapshot(const std::string& id) {
    std::string key = record_key(DeviceKind::Snapshot, id);
    if (!meta_.devices.count(key)) return fail(ENOENT, "dm-thin: no snapshot '{}'", id);
    if (snapshot_views_.count(id)) return fail(EBUSY, "dm-thin: snapshot '{}' is being viewed", id);
    return with_context(delete_device(key), fmt::format("remove snapshot '{}'", id));
}

// Sizes are block-level (see docs/STORAGE.md, "dm-thin sizes"): a snapshot's size is the data its
// thin device alone maps - what removing it frees; a block it shares with its image, or with a
// layer committed from it, is not its own. A volume has no origin, so everything it maps is its
// own (mapped, which stays right even while a snapshot_view briefly shares its blocks). Data a
// filesystem freed without discarding it stays mapped, and counted, until discarded.
std::vector<SnapshotInfo> DmThinBackend::list_snapshots() const {
    std::vector<SnapshotInfo> out;
    bool any = false;
    for (auto& [key, r] : meta_.devices)
        any = any || r.kind == DeviceKind::Snapshot || r.kind == DeviceKind::Volume;
    std::map<uint32_t, ThinDeviceUsage> usage;
    size_note_.clear();
    if (any) {
        if (auto u = thin_pool_device_usage(opt_.pool_name))
            usage = std::move(*u);
        else
            size_note_ = u.error().what();
    }
    uint64_t block = uint64_t(meta_.data_block_sectors) * 512;
    for (auto& [key, r] : meta_.devices) {
        if (!(r.kind == DeviceKind::Snapshot || (r.kind == DeviceKind::Volume && r.ready))) continue;
        SnapshotInfo info{r.name, r.parent, kSizeUnknown, r.kind == DeviceKind::Volume};
        if (size_note_.empty()) {
            // A device thin_ls does not list maps nothing yet (a snapshot never written).
            auto it = usage.find(r.id);
            ThinDeviceUsage u = it == usage.end() ? ThinDeviceUsage{} : it->second;
            info.exclusive_bytes = (info.is_volume ? u.mapped_blocks : u.exclusive_blocks) * block;
        }
        out.push_back(std::move(info));
    }
    return out;
}

Result<> DmThinBackend::commit_snapshot(const std::string& id, const std::string& new_chain_id) {
    const DeviceRecord* snap = find(DeviceKind::Snapshot, id);
    if (!snap) return fail(ENOENT, "dm-thin: no snapshot '{}'", id);
    BERTH_TRY_VOID(check_name("layer id", new_chain_id));
    if (has_layer(new_chain_id)) return fail(EEXIST, "dm-thin: layer '{}' already exists", new_chain_id);
    DeviceRecord record;
    record.kind = DeviceKind::Layer;
    record.name = new_chain_id;
    record.parent = snap->parent;
    record.sectors = snap->sectors;
    record.ready = true;
    // O(1): the new layer is a thin snapshot of the container's device (suspended meanwhile, which
    // freezes the filesystem if the container has it mounted, so the layer is consistent).
    BERTH_TRY_VOID_CTX(create_device(record_key(DeviceKind::Layer, new_chain_id), record, snap->id),
                       fmt::format("commit snapshot '{}' as '{}'", id, new_chain_id));
    return {};
}

// A view of a (possibly running) container: a throw-away thin snapshot of its device, cut while
// the device is suspended (so the filesystem is frozen and clean), activated read-only and mounted
// without journal replay. O(1) whatever the container's size; the container is not disturbed
// beyond the suspend.
Result<std::string> DmThinBackend::snapshot_view(const std::string& id) {
    const DeviceRecord* snap = find(DeviceKind::Snapshot, id);
    if (!snap) snap = find(DeviceKind::Volume, id);
    if (!snap) return fail(ENOENT, "dm-thin: no snapshot '{}'", id);
    std::string key = record_key(DeviceKind::Staging, "view:" + id);
    if (auto* existing = find(DeviceKind::Staging, "view:" + id)) {
        if (snapshot_views_[id]++ > 0 && is_mount_point(view_dir(existing->id)))
            return view_dir(existing->id);
        snapshot_views_.erase(id);
        BERTH_TRY_VOID(delete_device(key));  // left over from a crash
    }
    DeviceRecord record;
    record.kind = DeviceKind::Staging;
    record.name = "view:" + id;
    record.parent = snap->parent;
    record.sectors = snap->sectors;
    std::string ctx = fmt::format("view snapshot '{}'", id);
    uint32_t dev = BERTH_TRY_CTX(create_device(key, record, snap->id), ctx);
    DeviceGuard device(*this, key);
    auto path = BERTH_TRY_CTX(activate(meta_.devices.at(key), true), ctx);
    BERTH_TRY_VOID_CTX(mount_device(path, view_dir(dev), true), ctx);
    device.release();
    snapshot_views_[id] = 1;
    return view_dir(dev);
}

Result<> DmThinBackend::release_snapshot_view(const std::string& id) {
    auto it = snapshot_views_.find(id);
    if (it == snapshot_views_.end()) return {};
    if (--it->second > 0) return {};
    snapshot_views_.erase(it);
    std::string key = record_key(DeviceKind::Staging, "view:" + id);
    if (!meta_.devices.count(key)) return {};
    return with_context(delete_device(key), fmt::format("release view of snapshot '{}'", id));
}

Result<MountSpec> DmThinBackend::create_volume(const std::string& name) {
    BERTH_TRY_VOID(check_name("volume name", name));
    std::string key = record_key(DeviceKind::Volume, name);
    if (find(DeviceKind::Snapshot, name))
        return fail(EEXIST, "dm-thin: '{}' is a snapshot, not a volume", name);
    if (auto* existing = find(DeviceKind::Volume, name)) {
        if (existing->ready) {
            // Volumes outlive containers and berthd: "create" of an existing one opens it.
            BERTH_TRY_VOID_CTX(activate(*existing, false), fmt::format("activate volume '{}'", name));
            return block_spec(existing->id);
        }
        BERTH_TRY_VOID(delete_device(key));  // a crash interrupted its mkfs
    }
    DeviceRecord record;
    record.kind = DeviceKind::Volume;
    record.name = name;
    record.sectors = opt_.base_size / 512;
    std::string ctx = fmt::format("create volume '{}'", name);
    uint32_t id = BERTH_TRY_CTX(create_device(key, record, std::nullopt), ctx);
    DeviceGuard device(*this, key);
    auto path = BERTH_TRY_CTX(activate(meta_.devices.at(key), false), ctx);
    BERTH_TRY_VOID_CTX(make_filesystem(path), ctx);
    device.release();
    meta_.devices.at(key).ready = true;
    BERTH_TRY_VOID(save());
    return block_spec(id);
}

Result<> DmThinBackend::remove_volume(const std::string& name) {
    std::string key = record_key(DeviceKind::Volume, name);
    if (!meta_.devices.count(key)) return fail(ENOENT, "dm-thin: no volume '{}'", name);
    return with_context(delete_device(key), fmt::format("remove volume '{}'", name));
}

Result<PoolUsage> DmThinBackend::usage() const {
    auto s = BERTH_TRY(thin_pool_status(opt_.pool_name));
    uint64_t block = uint64_t(meta_.data_block_sectors) * 512;
    PoolUsage u;
    u.data_used = s.data_used * block;
    u.data_total = s.data_total * block;
    u.metadata_used = s.metadata_used * 4096;
    u.metadata_total = s.metadata_total * 4096;
    return u;
}

Result<ReconcileReport> DmThinBackend::reconcile(const std::vector<std::string>& known_layers,
                                                 const std::vector<std::string>& known_snapshots) {
    auto plan = plan_reconcile(meta_, known_layers, known_snapshots);
    for (auto& key : plan.keys) BERTH_TRY_VOID_CTX(delete_device(key), "dm-thin: reconcile");
    ReconcileReport removed = std::move(plan.report);
    // Devices of ours that are active but unknown (a crash between activation and record) and
    // leftover staging/view mounts.
    std::set<std::string> known_names;
    for (auto& [key, r] : meta_.devices) known_names.insert(device_name(r.id));
    auto active = BERTH_TRY(dm_list(opt_.pool_name + "-thin-"));
    for (auto& n : active) {
        if (known_names.count(n)) continue;
        auto id = parse_unsigned(std::string_view(n).substr(opt_.pool_name.size() + 6));
        if (id) {
            (void)unmount_if_mounted(staging_dir(static_cast<uint32_t>(*id)));
            (void)unmount_if_mounted(view_dir(static_cast<uint32_t>(*id)));
        }
        BERTH_TRY_VOID_CTX(dm_remove(n, true), "dm-thin: reconcile");
        removed.other.push_back("device " + n);
    }
    return removed;
}

}  // namespace

bool dmthin_available() { return devmapper_available(); }

Result<std::unique_ptr<SnapshotBackend>> make_dmthin_backend(const DmThinOptions& options) {
    auto backend = std::make_unique<DmThinBackend>(options);
    BERTH_TRY_VOID(backend->open());
    return std::unique_ptr<SnapshotBackend>(std::move(backend));
}

Result<> deactivate_dmthin_pool(const DmThinOptions& options) {
    if (!devmapper_available()) return {};
    // Unmount whatever staging/view mounts of this state directory are left, deepest first
    // (libmount's reading of the table: a state directory with a space in its path too).
    for (const char* sub : {"mnt", "view"})
        if (auto targets = mounts_at_or_below(path_join(options.state_dir, sub)))
            for (auto& t : *targets) ::umount2(t.c_str(), UMOUNT_NOFOLLOW | MNT_DETACH);
    auto names = BERTH_TRY(dm_list(options.pool_name + "-thin-"));
    Result<> status;
    for (auto& n : names) {
        auto r = dm_remove(n, false);
        if (!r && status) status = r;
    }
    if (!options.data_device.empty()) {
        auto r = dm_remove(options.pool_name, false);
        if (!r && status) status = r;
    }
    return status;
}

}  // namespace berth::store
