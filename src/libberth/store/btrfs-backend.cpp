// The btrfs backend (libbtrfsutil): every layer is a read-only subvolume holding the layer's full
// tree — a snapshot of its parent with the diff applied — so a container's tree is one O(1)
// writable snapshot of its top layer, whatever the image depth.
//
// Layout under ROOT (normally /var/lib/berth/btrfs, or the loopback pool mounted there):
//   layers/<hex>      read-only subvolume          parents/<hex>   parent chain id ("" = base)
//   snapshots/<id>    writable subvolume           snapinfo/<id>   the layer it was made from
//   volumes/<name>    subvolume                    staging/<token> work in progress
// As with overlay, each object appears by one rename(2) of a complete subvolume; the small
// sidecar files are written (atomically) before that rename, and reconcile() drops sidecars
// whose subvolume never appeared.
#include <btrfsutil.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>

#include <set>

#include "basic/dlopen-util.h"
#include "basic/fs-util.h"
#include "basic/string-util.h"
#include "store/backend-factory.h"
#include "store/btrfs-usage.h"
#include "store/digest.h"
#include "store/tree-util.h"

// libbtrfsutil, loaded by dlopen() when a btrfs store is opened (basic/dlopen-util.h): the
// overlay and dm-thin backends never map it.
#define BERTH_LIBBTRFSUTIL_SYMBOLS(X)     \
    X(btrfs_util_create_snapshot)         \
    X(btrfs_util_create_subvolume)        \
    X(btrfs_util_delete_subvolume)        \
    X(btrfs_util_get_subvolume_read_only) \
    X(btrfs_util_is_subvolume)            \
    X(btrfs_util_set_subvolume_read_only) \
    X(btrfs_util_strerror)
BERTH_LIBBTRFSUTIL_SYMBOLS(BERTH_DL_DECLARE)
BERTH_LIBBTRFSUTIL_SYMBOLS(BERTH_DL_DEFINE)
BERTH_ELF_NOTE_DLOPEN(libbtrfsutil_note, "btrfs backend", "libbtrfsutil.so.1")

namespace berth::store {
namespace {

Unexpected btrfs_fail(enum btrfs_util_error err, std::string_view what) {
    int e = errno ? errno : EIO;
    return fail(e, "{}: {}", what, sym_btrfs_util_strerror(err));
}

std::string hex_of(const std::string& chain) { return std::string(digest_hex(chain)); }

Result<> check_id(const std::string& id) {
    if (!valid_object_name(id)) return fail(EINVAL, "invalid snapshot/volume name '{}'", id);
    return {};
}

bool is_subvolume(const std::string& path) {
    return sym_btrfs_util_is_subvolume(path.c_str()) == BTRFS_UTIL_OK;
}

Result<> delete_subvolume_or_tree(const std::string& path) {
    if (!path_exists(path)) return {};
    if (is_subvolume(path)) {
        errno = 0;
        auto err = sym_btrfs_util_delete_subvolume(path.c_str(), BTRFS_UTIL_DELETE_SUBVOLUME_RECURSIVE);
        if (err != BTRFS_UTIL_OK) return btrfs_fail(err, fmt::format("delete subvolume '{}'", path));
        return {};
    }
    // A plain directory may still contain subvolumes (a half-made staging dir, nested subvols).
    for (const auto& n : list_dir(path)) {
        std::string p = path_join(path, n);
        if (is_subvolume(p)) BERTH_TRY_VOID(delete_subvolume_or_tree(p));
    }
    return remove_tree(path);
}

class BtrfsBackend final : public SnapshotBackend {
public:
    explicit BtrfsBackend(std::string root) : root_(std::move(root)) {}

    Result<> init() {
        BERTH_TRY_VOID(mkdir_p(root_, 0700));
        if (!is_on_btrfs(root_)) return fail(ENOTSUP, "'{}' is not on btrfs", root_);
        for (const char* d : {"layers", "parents", "snapshots", "snapinfo", "volumes", "staging"})
            BERTH_TRY_VOID(mkdir_p(path_join(root_, d), 0700));
        return {};
    }

    std::string name() const override { return "btrfs"; }
    BackendCapabilities capabilities() const override { return {}; }

    Result<LayerWriter> begin_layer(const std::string& chain_id,
                                    const std::optional<std::string>& parent) override {
        if (!valid_digest(chain_id)) return fail(EINVAL, "invalid chain id '{}'", chain_id);
        if (has_layer(chain_id)) return fail(EEXIST, "layer '{}' exists", chain_id);
        if (parent && !has_layer(*parent)) return fail(ENOENT, "parent layer '{}' not found", *parent);
        std::string token = random_token();
        std::string path = path_join(root_, "staging/" + token);
        errno = 0;
        auto err = parent ? sym_btrfs_util_create_snapshot(layer_path(*parent).c_str(), path.c_str(), 0,
                                                           nullptr, nullptr)
                          : sym_btrfs_util_create_subvolume(path.c_str(), 0, nullptr, nullptr);
        if (err != BTRFS_UTIL_OK)
            return btrfs_fail(err, fmt::format("create staging subvolume for '{}'", chain_id));
        if (!parent) ::chmod(path.c_str(), 0755);
        LayerWriter w;
        w.chain_id = chain_id;
        w.parent = parent;
        w.path = path;
        w.whiteouts = WhiteoutMode::Apply;
        w.backend_token = token;
        return w;
    }

    Result<> commit_layer(LayerWriter& w) override {
        if (!valid_digest(w.chain_id)) return fail(EINVAL, "invalid chain id '{}'", w.chain_id);
        std::string path = path_join(root_, "staging/" + w.backend_token);
        // btrfs refuses to move a read-only subvolume (EROFS), so it is renamed into place first
        // and frozen right after; reconcile() re-freezes a layer a crash left writable. Its
        // content is complete either way.
        // The layer's files reach the disk before the rename makes it visible (power loss must not
        // leave a published layer with empty files): one syncfs, not an fsync per file.
        BERTH_TRY_VOID(sync_filesystem(path));
        BERTH_TRY_VOID(publish_layer(path, w.chain_id, w.parent));
        errno = 0;
        auto err = sym_btrfs_util_set_subvolume_read_only(layer_path(w.chain_id).c_str(), true);
        if (err != BTRFS_UTIL_OK) return btrfs_fail(err, "make layer read-only");
        return {};
    }

    Result<> abort_layer(LayerWriter& w) override {
        if (w.backend_token.empty() || w.backend_token.find('/') != std::string::npos) return {};
        return delete_subvolume_or_tree(path_join(root_, "staging/" + w.backend_token));
    }

    bool has_layer(const std::string& chain_id) const override {
        if (!valid_digest(chain_id)) return false;
        return is_directory(layer_path(chain_id));
    }

    // What only this layer holds: its parent's extents are shared (issue #15 item 6).
    std::optional<uint64_t> layer_bytes(const std::string& chain_id) const override {
        if (!valid_digest(chain_id) || !is_directory(layer_path(chain_id))) return std::nullopt;
        std::optional<std::string> base;
        if (auto parent = read_file(path_join(root_, "parents/" + hex_of(chain_id)));
            parent && !trim(*parent).empty() && has_layer(std::string(trim(*parent))))
            base = layer_path(std::string(trim(*parent)));
        auto bytes = btrfs_exclusive_bytes(layer_path(chain_id), base);
        if (!bytes) return std::nullopt;
        return *bytes;
    }

    std::optional<std::vector<std::string>> list_layers() const override {
        std::vector<std::string> out;
        for (const auto& h : list_dir(path_join(root_, "layers"))) out.push_back("sha256:" + h);
        return out;
    }

    Result<> remove_layer(const std::string& chain_id) override {
        if (!has_layer(chain_id)) return fail(ENOENT, "layer '{}' not found", chain_id);
        for (const auto& h : list_dir(path_join(root_, "parents"))) {
            auto p = read_file(path_join(root_, "parents/" + h));
            if (p && trim(*p) == chain_id && is_directory(path_join(root_, "layers/" + h)))
                return fail(EBUSY, "layer '{}' has child layer 'sha256:{}'", chain_id, h);
        }
        for (const auto& s : list_dir(path_join(root_, "snapinfo"))) {
            auto p = read_file(path_join(root_, "snapinfo/" + s));
            if (p && trim(*p) == chain_id && is_directory(snap_path(s)))
                return fail(EBUSY, "layer '{}' is used by snapshot '{}'", chain_id, s);
        }
        // Deleting a subvolume unlinks it atomically (the cleaner frees its extents later); a
        // read-only one cannot be renamed into staging first.
        errno = 0;
        auto err = sym_btrfs_util_delete_subvolume(layer_path(chain_id).c_str(), 0);
        if (err != BTRFS_UTIL_OK) return btrfs_fail(err, fmt::format("remove layer '{}'", chain_id));
        ::unlink(path_join(root_, "parents/" + hex_of(chain_id)).c_str());
        return {};
    }

    Result<std::string> layer_view(const std::string& chain_id) override {
        if (!has_layer(chain_id)) return fail(ENOENT, "layer '{}' not found", chain_id);
        return layer_path(chain_id);
    }
    Result<> release_layer_view(const std::string&) override { return {}; }

    Result<MountSpec> prepare_snapshot(const std::string& id,
                                       const std::optional<std::string>& layer) override {
        BERTH_TRY_VOID(check_id(id));
        if (path_exists(snap_path(id))) return fail(EEXIST, "snapshot '{}' exists", id);
        if (layer && !has_layer(*layer)) return fail(ENOENT, "layer '{}' not found", *layer);
        std::string stage = path_join(root_, "staging/" + random_token());
        errno = 0;
        auto err = layer ? sym_btrfs_util_create_snapshot(layer_path(*layer).c_str(), stage.c_str(), 0,
                                                          nullptr, nullptr)
                         : sym_btrfs_util_create_subvolume(stage.c_str(), 0, nullptr, nullptr);
        if (err != BTRFS_UTIL_OK) return btrfs_fail(err, fmt::format("create snapshot '{}'", id));
        if (!layer) ::chmod(stage.c_str(), 0755);
        BERTH_TRY_VOID(write_file_atomic(path_join(root_, "snapinfo/" + id), layer ? *layer : ""));
        if (::rename(stage.c_str(), snap_path(id).c_str()) < 0) {
            int e = errno;
            (void)delete_subvolume_or_tree(stage);
            return fail(e, "publish snapshot '{}': {}", id, strerror(e));
        }
        BERTH_TRY_VOID(fsync_directory(path_join(root_, "snapshots")));
        return snapshot_mount(id);
    }

    Result<MountSpec> snapshot_mount(const std::string& id) override {
        BERTH_TRY_VOID(check_id(id));
        if (!is_directory(snap_path(id))) return fail(ENOENT, "snapshot '{}' not found", id);
        MountSpec m;
        m.kind = MountSpec::Kind::Bind;
        m.source = snap_path(id);
        return m;
    }

    Result<> release_snapshot(const std::string& id) override {
        BERTH_TRY_VOID(check_id(id));
        if (!is_directory(snap_path(id))) return fail(ENOENT, "snapshot '{}' not found", id);
        return {};
    }

    Result<> remove_snapshot(const std::string& id) override {
        BERTH_TRY_VOID(check_id(id));
        if (!is_directory(snap_path(id))) return fail(ENOENT, "snapshot '{}' not found", id);
        BERTH_TRY_VOID(trash(snap_path(id)));
        ::unlink(path_join(root_, "snapinfo/" + id).c_str());
        return {};
    }

    std::vector<SnapshotInfo> list_snapshots() const override {
        std::vector<SnapshotInfo> out;
        for (const auto& s : list_dir(path_join(root_, "snapshots"))) {
            SnapshotInfo i;
            i.id = s;
            auto l = read_file(path_join(root_, "snapinfo/" + s));
            if (l && !trim(*l).empty()) i.layer = std::string(trim(*l));
            // Without quota groups (see btrfs-usage.cpp): extents not shared with the base layer.
            std::optional<std::string> base;
            if (i.layer && has_layer(*i.layer)) base = layer_path(*i.layer);
            i.exclusive_bytes = btrfs_exclusive_bytes(snap_path(s), base).value_or(0);
            out.push_back(std::move(i));
        }
        for (const auto& v : list_dir(path_join(root_, "volumes"))) {
            SnapshotInfo i;
            i.id = v;
            i.is_volume = true;
            i.exclusive_bytes =
                btrfs_exclusive_bytes(path_join(root_, "volumes/" + v), std::nullopt).value_or(0);
            out.push_back(std::move(i));
        }
        return out;
    }

    Result<> commit_snapshot(const std::string& id, const std::string& new_chain_id) override {
        BERTH_TRY_VOID(check_id(id));
        if (!valid_digest(new_chain_id)) return fail(EINVAL, "invalid chain id '{}'", new_chain_id);
        if (has_layer(new_chain_id)) return fail(EEXIST, "layer '{}' exists", new_chain_id);
        if (!is_directory(snap_path(id))) return fail(ENOENT, "snapshot '{}' not found", id);
        std::string layer = std::string(trim(BERTH_TRY(read_file(path_join(root_, "snapinfo/" + id)))));
        // A read-only snapshot appears atomically, so it is made in place (sidecar first).
        BERTH_TRY_VOID(write_file_atomic(path_join(root_, "parents/" + hex_of(new_chain_id)), layer));
        errno = 0;
        auto err = sym_btrfs_util_create_snapshot(snap_path(id).c_str(), layer_path(new_chain_id).c_str(),
                                                  BTRFS_UTIL_CREATE_SNAPSHOT_READ_ONLY, nullptr, nullptr);
        if (err != BTRFS_UTIL_OK) return btrfs_fail(err, fmt::format("commit snapshot '{}'", id));
        BERTH_TRY_VOID(fsync_directory(path_join(root_, "layers")));
        return {};
    }

    Result<std::string> snapshot_view(const std::string& id) override {
        BERTH_TRY_VOID(check_id(id));
        if (!is_directory(snap_path(id))) return fail(ENOENT, "snapshot '{}' not found", id);
        return snap_path(id);
    }
    Result<> release_snapshot_view(const std::string&) override { return {}; }

    Result<MountSpec> create_volume(const std::string& name) override {
        BERTH_TRY_VOID(check_id(name));
        std::string path = path_join(root_, "volumes/" + name);
        if (!is_directory(path)) {
            std::string stage = path_join(root_, "staging/" + random_token());
            errno = 0;
            auto err = sym_btrfs_util_create_subvolume(stage.c_str(), 0, nullptr, nullptr);
            if (err != BTRFS_UTIL_OK) return btrfs_fail(err, fmt::format("create volume '{}'", name));
            ::chmod(stage.c_str(), 0755);
            if (::rename(stage.c_str(), path.c_str()) < 0) {
                int e = errno;
                (void)delete_subvolume_or_tree(stage);
                if (e != EEXIST && e != ENOTEMPTY)
                    return fail(e, "create volume '{}': {}", name, strerror(e));
            }
            BERTH_TRY_VOID(fsync_directory(path_join(root_, "volumes")));
        }
        MountSpec m;
        m.kind = MountSpec::Kind::Bind;
        m.source = path;
        return m;
    }

    Result<> remove_volume(const std::string& name) override {
        BERTH_TRY_VOID(check_id(name));
        std::string path = path_join(root_, "volumes/" + name);
        if (!is_directory(path)) return fail(ENOENT, "volume '{}' not found", name);
        return trash(path);
    }

    Result<PoolUsage> usage() const override { return filesystem_usage(root_); }

    Result<ReconcileReport> reconcile(const std::vector<std::string>& known_layers,
                                      const std::vector<std::string>& known_snapshots) override {
        ReconcileReport removed;
        for (const auto& s : list_dir(path_join(root_, "staging"))) {
            BERTH_TRY_VOID(delete_subvolume_or_tree(path_join(root_, "staging/" + s)));
            removed.other.push_back("staging " + s);
        }
        std::set<std::string> layers;
        for (const auto& l : known_layers) layers.insert(hex_of(l));
        std::set<std::string> snaps(known_snapshots.begin(), known_snapshots.end());
        for (const auto& h : list_dir(path_join(root_, "layers"))) {
            if (layers.count(h)) {
                bool ro = false;
                std::string p = path_join(root_, "layers/" + h);
                if (sym_btrfs_util_get_subvolume_read_only(p.c_str(), &ro) == BTRFS_UTIL_OK && !ro)
                    (void)sym_btrfs_util_set_subvolume_read_only(p.c_str(), true);
                continue;
            }
            // What only this layer holds (its parent's extents are shared), measured before it
            // goes: gc reports what it freed (issue #15 item 6).
            std::optional<std::string> base;
            if (auto parent = read_file(path_join(root_, "parents/" + h)); parent && !trim(*parent).empty())
                base = path_join(root_, "layers/" + hex_of(std::string(trim(*parent))));
            if (auto bytes = btrfs_exclusive_bytes(path_join(root_, "layers/" + h), base))
                removed.bytes["sha256:" + h] = *bytes;
            BERTH_TRY_VOID(delete_subvolume_or_tree(path_join(root_, "layers/" + h)));
            removed.layers.push_back("sha256:" + h);
        }
        for (const auto& h : list_dir(path_join(root_, "parents")))
            if (!is_directory(path_join(root_, "layers/" + h)))
                ::unlink(path_join(root_, "parents/" + h).c_str());
        auto remove = [](const std::string& path) { return delete_subvolume_or_tree(path); };
        BERTH_TRY_VOID(
            remove_unknown_entries(path_join(root_, "snapshots"), snaps, remove, removed.snapshots));
        for (const auto& s : list_dir(path_join(root_, "snapinfo")))
            if (!is_directory(snap_path(s))) ::unlink(path_join(root_, "snapinfo/" + s).c_str());
        BERTH_TRY_VOID(remove_unknown_entries(path_join(root_, "volumes"), snaps, remove, removed.volumes));
        return removed;
    }

private:
    std::string layer_path(const std::string& chain) const {
        return path_join(root_, "layers/" + hex_of(chain));
    }
    std::string snap_path(const std::string& id) const { return path_join(root_, "snapshots/" + id); }

    Result<> publish_layer(const std::string& stage, const std::string& chain,
                           const std::optional<std::string>& parent) {
        BERTH_TRY_VOID(
            write_file_atomic(path_join(root_, "parents/" + hex_of(chain)), parent ? *parent : ""));
        if (::rename(stage.c_str(), layer_path(chain).c_str()) < 0) {
            int e = errno;
            if (e == EEXIST || e == ENOTEMPTY) return fail(EEXIST, "layer '{}' exists", chain);
            return fail(e, "commit layer '{}': {}", chain, strerror(e));
        }
        BERTH_TRY_VOID(fsync_directory(path_join(root_, "layers")));
        return {};
    }

    Result<> trash(const std::string& path) {
        std::string t = path_join(root_, "staging/rm-" + random_token());
        if (::rename(path.c_str(), t.c_str()) < 0) return fail_errno("remove '{}'", path);
        return delete_subvolume_or_tree(t);
    }

    std::string root_;
};

}  // namespace

bool is_on_btrfs(const std::string& path) {
    struct statfs sf {};
    if (::statfs(path.c_str(), &sf) < 0) return false;
    return sf.f_type == BTRFS_SUPER_MAGIC;
}

Result<std::unique_ptr<SnapshotBackend>> make_btrfs_backend(const std::string& root) {
    static DlLibrary libbtrfsutil{"libbtrfsutil.so.1", {BERTH_LIBBTRFSUTIL_SYMBOLS(BERTH_DL_ENTRY)}};
    BERTH_TRY_VOID(libbtrfsutil.load());
    auto b = std::make_unique<BtrfsBackend>(root);
    BERTH_TRY_VOID(b->init());
    return std::unique_ptr<SnapshotBackend>(std::move(b));
}

}  // namespace berth::store
