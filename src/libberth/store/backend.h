// SnapshotBackend: the one interface every copy-on-write storage backend implements
// (btrfs subvolumes, overlayfs directories, devicemapper thin volumes).
//
// Model. A *layer* is identified by its chain ID and is immutable once committed. Layers form a
// tree through their parent. A *snapshot* is a container's writable tree on top of a layer (or
// of nothing, for a scratch container). A *volume* is a named writable tree with no parent.
//
// Building a layer is a two-step transaction so every backend can stage work safely:
//   auto w = backend.begin_layer(chain_id, parent);   // backend makes a writable staging tree
//   apply the layer's diff into w.path (whiteouts handled per w.whiteouts)
//   backend.commit_layer(w)  or  backend.abort_layer(w)
// btrfs: staging = writable snapshot of the parent subvolume, commit = set read-only + rename.
// overlay: staging = empty directory that will be an overlay lowerdir; whiteouts are stored as
//          overlay whiteouts (0:0 char devices, trusted.overlay.opaque) instead of deletions.
// dm-thin: staging = thin snapshot of the parent's thin volume, mounted in a private staging
//          directory; commit = unmount, deactivate, record as read-only.
//
// Mounting. The backend never mounts a container's tree on the host. prepare_snapshot() returns a
// MountSpec that the runtime applies inside the container's own mount namespace, so nothing is
// left on the host however the container dies. (dm-thin activates the thin device; the device
// node is what the runtime mounts.)
//
// Every method is crash-safe on its own: after a crash at any point, reconcile() brings the
// backend's state back to a set of complete layers/snapshots, reporting (and removing) orphans
// that the store's metadata does not know.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "basic/result.h"
#include "store/types.h"

namespace berth::store {

enum class WhiteoutMode {
    Apply,    // delete the whited-out path in the staging tree (btrfs, dm-thin: full trees)
    Overlay,  // record it as an overlayfs whiteout / opaque dir (overlay: diff trees)
};

struct LayerWriter {
    std::string chain_id;               // "sha256:<hex>"
    std::optional<std::string> parent;  // parent chain id
    std::string path;                   // host path of the writable staging tree
    WhiteoutMode whiteouts = WhiteoutMode::Apply;
    std::string backend_token;  // backend-private (e.g. thin device id)
};

struct SnapshotInfo {
    std::string id;                    // snapshot id or volume name (one namespace: the store
                                       // keeps them disjoint, "c-..."/"e-..." vs "v-...")
    std::optional<std::string> layer;  // chain id it was made from
    uint64_t exclusive_bytes = 0;      // best-effort space owned only by it, or kSizeUnknown
    bool is_volume = false;            // made by create_volume()
};

struct PoolUsage {
    uint64_t data_used = 0, data_total = 0;          // bytes
    uint64_t metadata_used = 0, metadata_total = 0;  // bytes (0 when not applicable)
};

// What reconcile() removed, by kind. A struct, not text: a report parsed back by prefix ("layer "
// vs dm-thin's "layer:") once lost every layer dm-thin's gc removed.
struct ReconcileReport {
    std::vector<std::string> layers;     // chain ids
    std::vector<std::string> snapshots;  // container snapshot ids, as the store gave them
    std::vector<std::string> volumes;    // volume names, as the store gave them ("v-...")
    std::vector<std::string> other;      // staging leftovers, stray devices: free text
    // What removed layers and snapshots held on disk, measured just before their removal (keyed
    // by the entry in `layers`/`snapshots`/`volumes`); a backend that cannot measure leaves it out.
    std::map<std::string, uint64_t> bytes;
    bool empty() const { return layers.empty() && snapshots.empty() && volumes.empty() && other.empty(); }
};

// What a backend can do that another cannot: the store and fsck ask this, never the name.
struct BackendCapabilities {
    // Snapshots and volumes are block devices the runtime mounts (MountSpec::Block) rather than
    // host directories.
    bool block_devices = false;
    // list_snapshots() reads state that prepare/release/remove change, so callers holding the
    // store's lock for those must list under it too (it is then cheap); otherwise listing walks
    // trees and is done outside the lock.
    bool list_under_store_lock = false;
    // list_snapshots() may report kSizeUnknown (size_note() says why).
    bool sizes_may_be_unknown = false;
    // PoolUsage::metadata_* is meaningful (a thin pool's metadata device).
    bool pool_metadata = false;
};

class SnapshotBackend {
public:
    virtual ~SnapshotBackend() = default;

    virtual std::string name() const = 0;  // "btrfs", "overlay", "dm-thin": for messages only
    virtual BackendCapabilities capabilities() const = 0;

    // Layers.
    virtual Result<LayerWriter> begin_layer(const std::string& chain_id,
                                            const std::optional<std::string>& parent) = 0;
    // Commits under writer.chain_id *as it is now*: the store may replace the chain id given to
    // begin_layer (a rootfs tarball's digest is known only at the end of the stream). EEXIST when
    // a layer with that id exists by then (the writer stays abortable).
    virtual Result<> commit_layer(LayerWriter& writer) = 0;
    virtual Result<> abort_layer(LayerWriter& writer) = 0;
    virtual bool has_layer(const std::string& chain_id) const = 0;
    virtual Result<> remove_layer(const std::string& chain_id) = 0;  // refused while it has children
    // Every committed layer's chain id, for gc to plan with; nullopt when the backend cannot list
    // them cheaply (gc then leaves unreferenced layers to reconcile()).
    virtual std::optional<std::vector<std::string>> list_layers() const { return std::nullopt; }
    // What removing this layer would free on disk (gc reports it); nullopt where unknown.
    virtual std::optional<uint64_t> layer_bytes(const std::string&) const { return std::nullopt; }
    // A read-only host path with the layer's full tree, for export and diffing (may mount;
    // call release_layer_view when done).
    virtual Result<std::string> layer_view(const std::string& chain_id) = 0;
    virtual Result<> release_layer_view(const std::string& chain_id) = 0;

    // Container snapshots (writable, on top of a layer or empty).
    virtual Result<MountSpec> prepare_snapshot(const std::string& id,
                                               const std::optional<std::string>& layer) = 0;
    virtual Result<MountSpec> snapshot_mount(const std::string& id) = 0;  // existing snapshot
    virtual Result<> release_snapshot(const std::string& id) = 0;         // deactivate, keep data
    virtual Result<> remove_snapshot(const std::string& id) = 0;
    virtual std::vector<SnapshotInfo> list_snapshots() const = 0;
    // Why the last list_snapshots() reported kSizeUnknown sizes ("" when it did not).
    virtual std::string size_note() const { return {}; }
    // Turn a snapshot's current content into a new committed layer on top of its base layer.
    // (The store computes new_chain_id from a diff it makes via snapshot_view() first.)
    virtual Result<> commit_snapshot(const std::string& id, const std::string& new_chain_id) = 0;
    // A read-only host path with the snapshot's current full tree, for export and commit (may
    // mount privately under the backend root; call release_snapshot_view when done). Must work
    // while the container runs (overlay: a read-only overlay with the upper dir as top lowerdir).
    virtual Result<std::string> snapshot_view(const std::string& id) = 0;
    virtual Result<> release_snapshot_view(const std::string& id) = 0;

    // Named volumes.
    virtual Result<MountSpec> create_volume(const std::string& name) = 0;
    virtual Result<> remove_volume(const std::string& name) = 0;
    // list_snapshots() includes volumes (is_volume = true).

    virtual Result<PoolUsage> usage() const = 0;

    // After a crash: finish or undo half-done work. `known_layers`/`known_snapshots` come from the
    // store's metadata (known_snapshots holds snapshot ids AND volume names); anything else the backend holds
    // is an orphan and is removed. Returns what was removed, by kind.
    virtual Result<ReconcileReport> reconcile(const std::vector<std::string>& known_layers,
                                              const std::vector<std::string>& known_snapshots) = 0;
};

}  // namespace berth::store
