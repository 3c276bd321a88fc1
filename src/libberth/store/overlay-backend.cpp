// The overlayfs backend: every layer is a diff directory that becomes an overlay lowerdir; a
// container is its layers' lowerdirs plus its own upper and work directories.
//
// Layout under ROOT (normally /var/lib/berth/overlay):
//   layers/<hex>/diff      the layer's files, whiteouts stored as overlay whiteouts
//   layers/<hex>/parent    parent chain id ("" for a base layer)
//   l/<16 hex>             -> ../layers/<hex>/diff: short lowerdir paths, so that the mount
//                          option string (one page) fits ~110 layers instead of ~40
//   snapshots/<id>/{upper,work,layer}   volumes/<name>/data   views/<name> (private mounts)
//   staging/<token>/       work in progress; renamed into place to commit, removed on reconcile
// Every object appears by one rename(2) of a complete directory, so a crash leaves it either
// absent (its staging dir is swept by reconcile) or complete.
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <map>
#include <mutex>
#include <set>

#include "basic/fs-util.h"
#include "basic/string-util.h"
#include "store/backend-factory.h"
#include "store/digest.h"
#include "store/tree-util.h"

namespace berth::store {
namespace {

std::string hex_of(const std::string& chain) {
    auto h = digest_hex(chain);
    return std::string(h);
}

Result<> check_id(const std::string& id) {
    if (!valid_object_name(id)) return fail(EINVAL, "invalid snapshot/volume name '{}'", id);
    return {};
}

class OverlayBackend final : public SnapshotBackend {
public:
    explicit OverlayBackend(std::string root) : root_(std::move(root)) {}

    Result<> init() {
        for (const char* d : {"layers", "l", "snapshots", "volumes", "views", "staging"})
            BERTH_TRY_VOID(mkdir_p(path_join(root_, d), 0700));
        return {};
    }

    std::string name() const override { return "overlay"; }
    BackendCapabilities capabilities() const override { return {}; }

    Result<LayerWriter> begin_layer(const std::string& chain_id,
                                    const std::optional<std::string>& parent) override {
        if (!valid_digest(chain_id)) return fail(EINVAL, "invalid chain id '{}'", chain_id);
        if (has_layer(chain_id)) return fail(EEXIST, "layer '{}' exists", chain_id);
        if (parent && !has_layer(*parent)) return fail(ENOENT, "parent layer '{}' not found", *parent);
        std::string token = random_token();
        std::string dir = path_join(root_, "staging/" + token);
        BERTH_TRY_VOID(mkdir_p(dir + "/diff", 0755));
        LayerWriter w;
        w.chain_id = chain_id;
        w.parent = parent;
        w.path = dir + "/diff";
        w.whiteouts = WhiteoutMode::Overlay;
        w.backend_token = token;
        return w;
    }

    Result<> commit_layer(LayerWriter& w) override {
        if (!valid_digest(w.chain_id)) return fail(EINVAL, "invalid chain id '{}'", w.chain_id);
        std::string dir = path_join(root_, "staging/" + w.backend_token);
        // The layer's files reach the disk before the rename makes it visible (power loss must not
        // leave a published layer with empty files): one syncfs, not an fsync per file.
        BERTH_TRY_VOID(sync_filesystem(dir));
        return publish_layer(dir, w.chain_id, w.parent);
    }

    Result<> abort_layer(LayerWriter& w) override {
        if (w.backend_token.empty() || w.backend_token.find('/') != std::string::npos) return {};
        return remove_tree(path_join(root_, "staging/" + w.backend_token));
    }

    bool has_layer(const std::string& chain_id) const override {
        if (!valid_digest(chain_id)) return false;
        return is_directory(layer_dir(chain_id) + "/diff");
    }

    std::optional<uint64_t> layer_bytes(const std::string& chain_id) const override {
        if (!valid_digest(chain_id) || !is_directory(layer_dir(chain_id))) return std::nullopt;
        return disk_usage(layer_dir(chain_id));
    }

    std::optional<std::vector<std::string>> list_layers() const override {
        std::vector<std::string> out;
        for (const auto& h : list_dir(path_join(root_, "layers"))) out.push_back("sha256:" + h);
        return out;
    }

    Result<> remove_layer(const std::string& chain_id) override {
        if (!has_layer(chain_id)) return fail(ENOENT, "layer '{}' not found", chain_id);
        for (const auto& h : list_dir(path_join(root_, "layers"))) {
            auto p = read_file(path_join(root_, "layers/" + h + "/parent"));
            if (p && trim(*p) == chain_id)
                return fail(EBUSY, "layer '{}' has child layer 'sha256:{}'", chain_id, h);
        }
        for (const auto& s : list_dir(path_join(root_, "snapshots"))) {
            auto p = read_file(path_join(root_, "snapshots/" + s + "/layer"));
            if (p && trim(*p) == chain_id)
                return fail(EBUSY, "layer '{}' is used by snapshot '{}'", chain_id, s);
        }
        {
            std::lock_guard lock(views_mutex_);
            if (views_.count("l-" + hex_of(chain_id)))
                return fail(EBUSY, "layer '{}' is being viewed", chain_id);
        }
        BERTH_TRY_VOID(trash(layer_dir(chain_id)));
        ::unlink(short_link(chain_id).c_str());
        return {};
    }

    Result<std::string> layer_view(const std::string& chain_id) override {
        if (!has_layer(chain_id)) return fail(ENOENT, "layer '{}' not found", chain_id);
        auto lowers = BERTH_TRY(lowerdirs(chain_id));
        if (lowers.size() == 1) return layer_dir(chain_id) + "/diff";
        return mount_view("l-" + hex_of(chain_id), lowers);
    }

    Result<> release_layer_view(const std::string& chain_id) override {
        return release_view("l-" + hex_of(chain_id));
    }

    Result<MountSpec> prepare_snapshot(const std::string& id,
                                       const std::optional<std::string>& layer) override {
        BERTH_TRY_VOID(check_id(id));
        if (path_exists(snap_dir(id))) return fail(EEXIST, "snapshot '{}' exists", id);
        if (layer && !has_layer(*layer)) return fail(ENOENT, "layer '{}' not found", *layer);
        std::string dir = path_join(root_, "staging/" + random_token());
        BERTH_TRY_VOID(mkdir_p(dir + "/upper", 0755));
        BERTH_TRY_VOID(mkdir_p(dir + "/work", 0700));
        BERTH_TRY_VOID(write_file_atomic(dir + "/layer", layer ? *layer : ""));
        if (::rename(dir.c_str(), snap_dir(id).c_str()) < 0) {
            int e = errno;
            (void)remove_tree(dir);
            return fail(e, "publish snapshot '{}': {}", id, strerror(e));
        }
        BERTH_TRY_VOID(fsync_directory(path_join(root_, "snapshots")));
        return snapshot_mount(id);
    }

    Result<MountSpec> snapshot_mount(const std::string& id) override {
        BERTH_TRY_VOID(check_id(id));
        std::string dir = snap_dir(id);
        if (!is_directory(dir)) return fail(ENOENT, "snapshot '{}' not found", id);
        std::string layer = std::string(trim(BERTH_TRY(read_file(dir + "/layer"))));
        MountSpec m;
        if (layer.empty()) {
            m.kind = MountSpec::Kind::Bind;
            m.source = dir + "/upper";
            return m;
        }
        m.kind = MountSpec::Kind::Overlay;
        m.lowerdirs = BERTH_TRY(lowerdirs(layer));
        m.upperdir = dir + "/upper";
        m.workdir = dir + "/work";
        BERTH_TRY_VOID(check_option_length(m.lowerdirs, m.upperdir.size() + m.workdir.size() + 32));
        return m;
    }

    Result<> release_snapshot(const std::string& id) override {
        BERTH_TRY_VOID(check_id(id));
        if (!is_directory(snap_dir(id))) return fail(ENOENT, "snapshot '{}' not found", id);
        return {};  // nothing is mounted on the host
    }

    Result<> remove_snapshot(const std::string& id) override {
        BERTH_TRY_VOID(check_id(id));
        if (!is_directory(snap_dir(id))) return fail(ENOENT, "snapshot '{}' not found", id);
        {
            std::lock_guard lock(views_mutex_);
            if (views_.count("s-" + id)) return fail(EBUSY, "snapshot '{}' is being viewed", id);
        }
        return trash(snap_dir(id));
    }

    std::vector<SnapshotInfo> list_snapshots() const override {
        std::vector<SnapshotInfo> out;
        for (const auto& s : list_dir(path_join(root_, "snapshots"))) {
            SnapshotInfo i;
            i.id = s;
            auto l = read_file(snap_dir(s) + "/layer");
            if (l && !trim(*l).empty()) i.layer = std::string(trim(*l));
            i.exclusive_bytes = disk_usage(snap_dir(s) + "/upper");
            out.push_back(std::move(i));
        }
        for (const auto& v : list_dir(path_join(root_, "volumes"))) {
            SnapshotInfo i;
            i.id = v;
            i.is_volume = true;
            i.exclusive_bytes = disk_usage(path_join(root_, "volumes/" + v + "/data"));
            out.push_back(std::move(i));
        }
        return out;
    }

    Result<> commit_snapshot(const std::string& id, const std::string& new_chain_id) override {
        BERTH_TRY_VOID(check_id(id));
        if (!valid_digest(new_chain_id)) return fail(EINVAL, "invalid chain id '{}'", new_chain_id);
        if (has_layer(new_chain_id)) return fail(EEXIST, "layer '{}' exists", new_chain_id);
        std::string dir = snap_dir(id);
        if (!is_directory(dir)) return fail(ENOENT, "snapshot '{}' not found", id);
        std::string layer = std::string(trim(BERTH_TRY(read_file(dir + "/layer"))));
        std::string stage = path_join(root_, "staging/" + random_token());
        BERTH_TRY_VOID(mkdir_p(stage + "/diff", 0755));
        auto copied = copy_tree(dir + "/upper", stage + "/diff");
        if (!copied) {
            (void)remove_tree(stage);
            return fail(std::move(copied.error()).wrap(fmt::format("commit snapshot '{}'", id)));
        }
        std::optional<std::string> parent;
        if (!layer.empty()) parent = layer;
        return publish_layer(stage, new_chain_id, parent);
    }

    Result<std::string> snapshot_view(const std::string& id) override {
        BERTH_TRY_VOID(check_id(id));
        std::string dir = snap_dir(id);
        if (!is_directory(dir)) return fail(ENOENT, "snapshot '{}' not found", id);
        std::string layer = std::string(trim(BERTH_TRY(read_file(dir + "/layer"))));
        if (layer.empty()) return dir + "/upper";
        // The upper dir as the topmost *lower* dir: a read-only view that never competes with the
        // container's own overlay for the upper/work pair.
        std::vector<std::string> lowers{dir + "/upper"};
        for (auto& l : BERTH_TRY(lowerdirs(layer))) lowers.push_back(std::move(l));
        return mount_view("s-" + id, lowers);
    }

    Result<> release_snapshot_view(const std::string& id) override {
        BERTH_TRY_VOID(check_id(id));
        return release_view("s-" + id);
    }

    Result<MountSpec> create_volume(const std::string& name) override {
        BERTH_TRY_VOID(check_id(name));
        std::string dir = path_join(root_, "volumes/" + name);
        if (!is_directory(dir)) {
            std::string stage = path_join(root_, "staging/" + random_token());
            BERTH_TRY_VOID(mkdir_p(stage + "/data", 0755));
            if (::rename(stage.c_str(), dir.c_str()) < 0) {
                int e = errno;
                (void)remove_tree(stage);
                if (e != EEXIST && e != ENOTEMPTY)
                    return fail(e, "create volume '{}': {}", name, strerror(e));
            }
            BERTH_TRY_VOID(fsync_directory(path_join(root_, "volumes")));
        }
        MountSpec m;
        m.kind = MountSpec::Kind::Bind;
        m.source = dir + "/data";
        return m;
    }

    Result<> remove_volume(const std::string& name) override {
        BERTH_TRY_VOID(check_id(name));
        std::string dir = path_join(root_, "volumes/" + name);
        if (!is_directory(dir)) return fail(ENOENT, "volume '{}' not found", name);
        return trash(dir);
    }

    Result<PoolUsage> usage() const override { return filesystem_usage(root_); }

    Result<ReconcileReport> reconcile(const std::vector<std::string>& known_layers,
                                      const std::vector<std::string>& known_snapshots) override {
        ReconcileReport removed;
        for (const auto& v : list_dir(path_join(root_, "views"))) {
            std::string p = path_join(root_, "views/" + v);
            BERTH_TRY_VOID(unmount_if_mounted(p));
            ::rmdir(p.c_str());
        }
        {
            std::lock_guard lock(views_mutex_);
            views_.clear();
        }
        for (const auto& s : list_dir(path_join(root_, "staging"))) {
            BERTH_TRY_VOID(remove_tree(path_join(root_, "staging/" + s)));
            removed.other.push_back("staging " + s);
        }
        std::set<std::string> layers;
        for (const auto& l : known_layers) layers.insert(hex_of(l));
        std::set<std::string> snaps(known_snapshots.begin(), known_snapshots.end());
        // Each tree is measured before it goes: gc reports what it freed (issue #15 item 6).
        std::string prefix;
        auto remove = [&](const std::string& path) {
            removed.bytes[prefix + path.substr(path.rfind('/') + 1)] = disk_usage(path);
            return remove_tree(path);
        };
        prefix = "sha256:";
        BERTH_TRY_VOID(remove_unknown_entries(path_join(root_, "layers"), layers, remove, removed.layers));
        for (auto& l : removed.layers) l = "sha256:" + l;
        prefix.clear();
        BERTH_TRY_VOID(
            remove_unknown_entries(path_join(root_, "snapshots"), snaps, remove, removed.snapshots));
        BERTH_TRY_VOID(remove_unknown_entries(path_join(root_, "volumes"), snaps, remove, removed.volumes));
        for (const auto& l : list_dir(path_join(root_, "l"))) {
            std::string p = path_join(root_, "l/" + l);
            struct stat st {};
            if (::stat(p.c_str(), &st) < 0) ::unlink(p.c_str());  // dangling
        }
        return removed;
    }

private:
    std::string layer_dir(const std::string& chain) const {
        return path_join(root_, "layers/" + hex_of(chain));
    }
    std::string snap_dir(const std::string& id) const { return path_join(root_, "snapshots/" + id); }
    std::string short_link(const std::string& chain) const {
        return path_join(root_, "l/" + hex_of(chain).substr(0, 16));
    }

    Result<> publish_layer(const std::string& stage, const std::string& chain,
                           const std::optional<std::string>& parent) {
        BERTH_TRY_VOID(write_file_atomic(stage + "/parent", parent ? *parent : ""));
        std::string link = short_link(chain);
        std::string want = "../layers/" + hex_of(chain) + "/diff";
        if (::symlink(want.c_str(), link.c_str()) < 0) {
            if (errno != EEXIST) return fail_errno("create short link for '{}'", chain);
            char buf[256];
            ssize_t n = ::readlink(link.c_str(), buf, sizeof buf - 1);
            if (n < 0 || std::string(buf, static_cast<size_t>(n)) != want)
                return fail(EEXIST, "short link collision for layer '{}'", chain);
        }
        if (::rename(stage.c_str(), layer_dir(chain).c_str()) < 0) {
            int e = errno;
            if (e == EEXIST || e == ENOTEMPTY) return fail(EEXIST, "layer '{}' exists", chain);
            return fail(e, "commit layer '{}': {}", chain, strerror(e));
        }
        BERTH_TRY_VOID(fsync_directory(path_join(root_, "layers")));
        return {};
    }

    // Moves `dir` into staging first, so a crash mid-removal leaves nothing half-visible.
    // Once renamed into staging the object is gone (nothing finds it there): a tree that cannot
    // be removed completely is a leftover that open() and gc() remove, not a failed removal, which
    // would make the store report as present what it no longer has (issue #16).
    Result<> trash(const std::string& dir) {
        std::string t = path_join(root_, "staging/rm-" + random_token());
        if (::rename(dir.c_str(), t.c_str()) < 0) return fail_errno("remove '{}'", dir);
        (void)remove_tree(t);
        return {};
    }

    Result<std::vector<std::string>> lowerdirs(const std::string& top) const {
        std::vector<std::string> out;
        std::string cur = top;
        while (!cur.empty()) {
            if (!has_layer(cur)) return fail(ENOENT, "layer '{}' not found", cur);
            if (out.size() > 500) return fail(ELOOP, "layer chain of '{}' too deep", top);
            out.push_back(short_link(cur));
            cur = std::string(trim(BERTH_TRY(read_file(layer_dir(cur) + "/parent"))));
        }
        return out;
    }

    Result<> check_option_length(const std::vector<std::string>& lowers, size_t extra) const {
        size_t len = extra + 10;
        for (const auto& l : lowers) len += l.size() + 1;
        if (len >= 4096)
            return fail(E2BIG,
                        "image has {} layers: overlay mount options ({} bytes) exceed one page; "
                        "use the btrfs backend or squash the image",
                        lowers.size(), len);
        if (lowers.size() > 500)
            return fail(E2BIG, "image has {} layers; overlayfs stacks at most 500", lowers.size());
        return {};
    }

    Result<std::string> mount_view(const std::string& key, const std::vector<std::string>& lowers) {
        std::lock_guard lock(views_mutex_);
        std::string target = path_join(root_, "views/" + key);
        auto it = views_.find(key);
        if (it != views_.end()) {
            ++it->second;
            return target;
        }
        BERTH_TRY_VOID(check_option_length(lowers, 0));
        BERTH_TRY_VOID(mkdir_p(target, 0700));
        std::string opts = "lowerdir=" + join(lowers, ":");
        if (::mount("overlay", target.c_str(), "overlay", MS_RDONLY | MS_NODEV | MS_NOSUID, opts.c_str()) <
            0) {
            int e = errno;
            ::rmdir(target.c_str());
            return fail(e, "mount overlay view at '{}': {}", target, strerror(e));
        }
        views_[key] = 1;
        return target;
    }

    Result<> release_view(const std::string& key) {
        std::lock_guard lock(views_mutex_);
        auto it = views_.find(key);
        if (it == views_.end()) return {};
        if (--it->second > 0) return {};
        views_.erase(it);
        std::string target = path_join(root_, "views/" + key);
        if (::umount2(target.c_str(), MNT_DETACH) < 0) return fail_errno("unmount '{}'", target);
        ::rmdir(target.c_str());
        return {};
    }

    std::string root_;
    mutable std::mutex views_mutex_;
    std::map<std::string, int> views_;
};

}  // namespace

Result<std::unique_ptr<SnapshotBackend>> make_overlay_backend(const std::string& root) {
    auto b = std::make_unique<OverlayBackend>(root);
    BERTH_TRY_VOID(b->init());
    return std::unique_ptr<SnapshotBackend>(std::move(b));
}

}  // namespace berth::store
