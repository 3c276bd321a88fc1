// berth::store::Store — the content-addressed image store (issue #4).
//
// One Store object owns one store root (default /var/lib/berth) and its SnapshotBackend. It is
// used by berthd and, on hosts without a system bus, in-process by the `berth` CLI ("embedded").
// The two never corrupt each other: Store::open() takes an exclusive flock on ROOT/lock for the
// lifetime of the object (berthd holds it while running; the embedded CLI holds it per command).
// A second open() on the same root fails with EWOULDBLOCK ("store is locked by another process")
// unless StoreOptions::wait_for_lock is set.
//
// Thread-safety (what berthd may do from several threads at once):
//   - Every public method may be called concurrently from any thread.
//   - Imports run the expensive part (reading, hashing, extracting layers) WITHOUT holding the
//     store's metadata mutex: each import stages under ROOT/staging/<random>/ and publishes with
//     a short critical section at the end. Two imports of images sharing a layer are serialised on
//     that layer only (a per-chain-ID claim): the second waits and then reuses it.
//   - All other methods take the metadata mutex for their whole duration; they are short except
//     export_image/export_container/commit_container/gc (which stream data; berthd should run
//     them on a worker thread too).
//   - An import of an image never blocks list_images/get_image/df for longer than its publish
//     step.
//   - remove_image/gc never remove a layer that an in-flight import has claimed.
//
// Crash safety: see docs/STORAGE.md. In short, metadata files are replaced with
// write_file_atomic (temp + fsync + rename + fsync dir); an interrupted operation leaves the old
// or the new state; open() removes staging leftovers and asks the backend to reconcile.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "basic/result.h"
#include "store/backend.h"
#include "store/dmthin/dmthin-config.h"
#include "store/image-config.h"
#include "store/types.h"

namespace berth::store {

class BlobFeed;  // blob-feed.h

// ---- configuration (/etc/berth/berthd.toml, table [store] or top level) ----

struct StoreOptions {
    std::string root = "/var/lib/berth";
    std::string backend = "auto";  // "auto" | "btrfs" | "overlay" | "dm-thin"
    // Loopback btrfs pool for hosts without btrfs: when non-empty the file is created (sparse,
    // pool_size bytes) and formatted on first use, attached to a loop device with
    // LO_FLAGS_AUTOCLEAR and mounted at ROOT/btrfs; the backend is then btrfs.
    std::string pool;
    uint64_t pool_size = 0;  // bytes; "10G" etc. in TOML
    // The dm-thin backend's keys (thin_*), read by its own parser (dmthin/dmthin-toml.h).
    DmThinConfig dm_thin;
    // Wait for the store lock instead of failing with EWOULDBLOCK.
    bool wait_for_lock = false;
    // Open for reading only: a shared lock on an existing ROOT/lock (never created), no cleanup
    // at open, every mutation fails with EROFS. A store on a read-only file system is opened
    // this way by itself. `berth fsck` without --repair opens so.
    bool read_only = false;
    // Device nodes in imported layers: false (default) skips block/char devices (recorded in the
    // layer's skipped_device_nodes), so an image can never carry a host device into a container;
    // true creates them. A char 0:0 is overlayfs's whiteout format, never a device: it is applied
    // as a whiteout either way. FIFOs are always kept.
    bool allow_device_nodes = false;
    // Limits on one layer while it is imported (0 = no limit). Checked while streaming, so a
    // decompression bomb stops early: the import fails naming the layer and the limit, and
    // nothing is published. See docs/STORAGE.md, "Import limits".
    uint64_t max_layer_size = 64ull << 30;    // uncompressed tar bytes
    uint64_t max_layer_entries = 1ull << 20;  // tar entries (headers)
    uint64_t max_layer_ratio = 100;           // uncompressed / compressed, once past 64 MiB out
    // An image read from a pipe or device (`berth image import - / /dev/zero`) is spooled to
    // staging before its format is known: at most this many bytes (0 = no limit), so an endless
    // stream ends with an error naming the limit instead of filling the disk (issue #16).
    uint64_t max_import_size = 64ull << 30;
    // Layers one pull downloads at once, each on its own connection (1 to 16; 1: one after the
    // other). berthd passes it to registry::PullOptions::parallel_layers (its default, 3).
    unsigned pull_parallel_layers = 3;
};

// Reads berthd.toml. A missing file gives the defaults; a malformed one an error with
// "path:line:col". Recognised keys (top level or under [store]): root, backend, pool,
// pool_size ("512M", "10G" or bytes), allow_device_nodes, max_layer_size, max_layer_entries,
// max_layer_ratio, max_import_size, pull_parallel_layers, and the dm-thin backend's keys (thin_*:
// dmthin/dmthin-toml.cpp parses them).
Result<StoreOptions> load_store_options(const std::string& path = "/etc/berth/berthd.toml");
Result<StoreOptions> parse_store_options(std::string_view toml_text, const std::string& source_name);

// "10G" / "512M" / "4096" -> bytes.
Result<uint64_t> parse_size(std::string_view text);

// ---- value types (JSON forms in store/store-json.h) ----

enum class ImportFormat {
    Auto,           // detect: directory with oci-layout, tar with oci-layout or manifest.json, else rootfs
    OciLayout,      // OCI image layout, directory or tar (umoci, skopeo oci:/oci-archive:, buildah)
    DockerArchive,  // `docker save` / skopeo docker-archive:
    RootfsTar,      // a plain root filesystem tarball (gzip/zstd/xz/uncompressed)
};
Result<ImportFormat> parse_import_format(std::string_view text);  // "auto","oci","docker-archive","rootfs"
std::string_view to_string(ImportFormat format);

struct LayerInfo {
    std::string chain_id;    // "sha256:..." (key in the backend)
    std::string diff_id;     // sha256 of the uncompressed tar
    std::string digest;      // sha256 of the blob as stored (compressed or not)
    std::string media_type;  // blob media type
    uint64_t blob_size = 0;
    uint64_t size = 0;  // uncompressed tar size
    // Device nodes the import left out (allow_device_nodes = false): "dev/console (char 5:1)",
    // at most kMaxSkippedRecorded of them, then one "... and N more".
    std::vector<std::string> skipped_device_nodes;
};

struct ImageInfo {
    std::string id;                  // "sha256:<manifest digest hex>"
    std::string config_digest;       // "sha256:..."
    std::vector<std::string> names;  // "name:tag" references, sorted
    std::vector<LayerInfo> layers;   // bottom first
    std::string top_layer;           // chain id of the top layer ("" for an image with no layers)
    uint64_t size = 0;               // sum of uncompressed layer sizes
    int64_t created = 0;             // image config "created" (unix seconds, 0 if absent)
    int64_t imported = 0;            // when it entered this store (unix seconds)
    std::string architecture, os;
    ImageConfig config;
    // "repository@sha256:..." it was pulled from or pushed to (the manifest or index digest the
    // registry serves it under), sorted; absent in records older than issue #17.
    std::vector<std::string> repo_digests;
};

enum class ImportPhase {
    Reading,         // reading / spooling the input
    Layer,           // extracting layer layer_index
    LayerCommitted,  // layer layer_index is in the backend
    Publishing,      // moving blobs and records into place (under the store lock)
    Done,            // the image is published: the last report of a successful import
};
// "reading", "layer", "layer committed", "publishing", "done" (JSON and messages).
std::string_view import_phase_name(ImportPhase phase);

struct ImportProgress {
    ImportPhase phase = ImportPhase::Reading;
    size_t layer_index = 0;  // 0-based, valid in phase "layer"
    size_t layer_count = 0;
    uint64_t bytes_done = 0;   // input bytes consumed so far
    uint64_t bytes_total = 0;  // input size when known (regular file), else 0
};
// Called from the importing thread, often (about every MiB); keep it cheap.
using ProgressFn = std::function<void(const ImportProgress&)>;

// A container's earlier writable layer, retained when an image change recreated the layer
// (ImageChangePolicy::Recreate): kept for a roll-back until `berth rm NAME` or gc removes it. It
// pins its image like the current layer does.
struct RetainedLayer {
    std::string snapshot_id;
    std::string image_id;  // the image it was made from
    int64_t created = 0;   // when the layer was made (unix seconds)
    int64_t retired = 0;   // when a new layer replaced it
};

struct ContainerInfo {
    std::string name;
    std::string image_id;     // "sha256:..." ("" for a scratch container)
    std::string snapshot_id;  // backend snapshot id
    bool ephemeral = false;
    int64_t created = 0;
    // Prepared and not yet released: remove_container refuses (EBUSY) while the process that
    // prepared it lives. That holder is kept as pid + start time (/proc/PID/stat field 22), so a
    // runtime that died without releasing, or a reused pid, does not pin the snapshot forever.
    // Records written before holders were kept have pid 0 and stay in use until released.
    bool in_use = false;
    int holder_pid = 0;
    uint64_t holder_start_time = 0;       // clock ticks after boot
    std::vector<RetainedLayer> retained;  // oldest first
};

// The start time of process `pid` (field 22 of /proc/PID/stat, clock ticks after boot): with the
// pid it names one process for good, since a reused pid gets a later start time.
Result<uint64_t> process_start_time(int pid);
// True when `c` is prepared and its holder still runs (see ContainerInfo::in_use).
bool container_in_use(const ContainerInfo& c);

struct PreparedContainer {
    std::string snapshot_id;
    MountSpec rootfs;
    ImageConfig config;
    std::string image_id;
    ImageChange image_change;
};

// A container that mounted a volume, kept like a container's in-use mark: the process that
// asked for the volume (the container's runtime) as pid + start time, so the mark goes stale by
// itself when that process is gone or its pid was reused.
struct VolumeUser {
    std::string container;
    int pid = 0;
    uint64_t start_time = 0;  // clock ticks after boot (/proc/PID/stat field 22)
};

struct VolumeInfo {
    std::string name;
    MountSpec mount;  // what to bind-mount
    int64_t created = 0;
    // As recorded; stale entries may be among them (volume_user_alive() tells). list_volumes()
    // and get_volume() return only the live ones.
    std::vector<VolumeUser> users;
};

// True while the process that mounted the volume for `u.container` still runs.
bool volume_user_alive(const VolumeUser& u);

struct GcReport {
    std::vector<std::string> removed_layers;      // chain ids
    std::vector<std::string> removed_blobs;       // digests
    std::vector<std::string> removed_containers;  // snapshot ids of containers the store did not know
    std::vector<std::string> removed_volumes;     // volume names the store did not know
    std::vector<std::string> removed_other;       // staging leftovers, tar-splits, stray devices
    // Retained earlier layers of containers (ContainerInfo::retained): "NAME SNAPSHOT-ID".
    std::vector<std::string> removed_retained;
    // Bytes each removed item held on disk (blobs, tar-splits, layers and snapshots where the
    // backend measured them), keyed by the entry in the lists above.
    std::map<std::string, uint64_t> sizes;
    uint64_t bytes_freed = 0;  // the sum of `sizes`
};

struct DfEntry {
    std::string name;   // image: first name or id; container/volume: its name
    std::string id;     // image id / snapshot id / volume name
    uint64_t size = 0;  // image: uncompressed size of all layers; others: exclusive bytes or kSizeUnknown
    uint64_t shared_size = 0;  // image: bytes in layers shared with other images
    uint64_t unique_size = 0;  // image: bytes only this image holds
    size_t containers = 0;     // image: containers using it
};

struct DfReport {
    std::string backend;
    std::vector<DfEntry> images, containers, volumes;
    uint64_t blobs_size = 0;  // bytes in ROOT/blobs
    // The file system the store lives on (the mount holding ROOT; for dm-thin, where its
    // metadata is): what `berth df` names beside the store's own use.
    std::string fs_type, fs_source, fs_mount;
    PoolUsage pool;
    std::string size_note;  // why some sizes are kSizeUnknown ("" when none is)
};

// ---- the store ----

// A metadata record (ROOT/images/*.json, containers/*.json, volumes/*.json, refs.json,
// store.json) that open() could not read or that failed validation. open() leaves it out and goes
// on with the rest (issue #16): one damaged file must not make the whole store unusable. `berth
// fsck` names it and `fsck --repair` moves it to ROOT/quarantine/ (never deletes it). While
// refs.json is bad no name resolves and names cannot change; while store.json is bad the backend
// is the one whose directory the store holds, and store.json is not written over.
struct BadRecord {
    std::string path;   // absolute
    std::string error;  // why, naming the file
};

class Store {
public:
    // Takes the store lock, loads metadata, cleans crash leftovers (ROOT/staging, half-written
    // temp files, backend orphans via backend.reconcile()).
    static Result<std::unique_ptr<Store>> open(const StoreOptions& options);
    ~Store();

    // A private berthd lets go of the lock while its client's payload runs and takes it again
    // for the client's next call (ReleaseContainer). Opening the store anew then would read
    // every record again and reconcile the backend: the one cost of an embedded start that grows
    // with the store. suspend() lets go of the lock and keeps what open() read; nothing but
    // resume() may be called until then (a write is refused). resume() takes the lock again and
    // returns true when no other process opened the store for writing in between: every writable
    // open() puts a new random token in ROOT/lock before it changes anything, and the records'
    // directories changed nothing either (a berth from before the token). false: someone did;
    // the lock is let go again and the caller opens the store anew (which reads what they wrote
    // and cleans up after one that crashed). EWOULDBLOCK while another process holds the lock.
    void suspend();
    Result<bool> resume();
    Store(const Store&) = delete;
    Store& operator=(const Store&) = delete;

    std::string backend_name() const;
    const StoreOptions& options() const;
    const std::string& root() const;
    // The pool image path when a loopback pool is in use, else "".
    std::string pool_path() const;

    // Images. `name_tag` may be empty ("" keeps the names found in the archive, e.g. a docker
    // archive's RepoTags or the OCI org.opencontainers.image.ref.name annotation) — a name without
    // ":" gets ":latest". `cancel` (may be null) is polled between entries; a cancelled import
    // fails with ECANCELED and leaves nothing behind.
    Result<ImageInfo> import_image(int fd, ImportFormat format, std::string_view name_tag,
                                   const ProgressFn& progress = {},
                                   const std::atomic<bool>* cancel = nullptr);
    // A path: an OCI layout directory, or any supported archive file.
    Result<ImageInfo> import_image_path(const std::string& path, ImportFormat format,
                                        std::string_view name_tag, const ProgressFn& progress = {},
                                        const std::atomic<bool>* cancel = nullptr);
    // An OCI layout directory whose layer blobs are still downloading (a registry pull): each
    // blob `arriving` lists is extracted as its bytes come and its layer committed only once
    // `arriving` says the download verified it (blob-feed.h).
    Result<ImageInfo> import_arriving_layout(const std::string& dir, BlobFeed& arriving,
                                             std::string_view name_tag, const ProgressFn& progress = {},
                                             const std::atomic<bool>* cancel = nullptr);
    std::vector<ImageInfo> list_images() const;
    // `ref`: "name:tag", "name" (= name:latest), "sha256:<hex>", or a unique hex prefix (>= 4).
    Result<ImageInfo> get_image(std::string_view ref) const;
    // Docker's `rmi`. `ref` a name ("name:tag", "name"): that name goes; the image goes with it
    // only when it was its last name and no container uses it (then EBUSY, and the name stays:
    // a container's image never loses its last name). `ref` an id or id prefix: the image and
    // all its names go, refused (EBUSY) while a container uses it. Layers and blobs are freed by
    // gc(). With `untag_only` and a name ref, only that name is dropped, even the last one.
    Result<ImageRemoval> remove_image(std::string_view ref, bool untag_only = false);
    Result<> tag_image(std::string_view ref, std::string_view name_tag);
    // Records that the image is `repo_digest` ("repository@sha256:...") on a registry (pull, push).
    Result<> add_repo_digest(std::string_view ref, std::string_view repo_digest);
    // Writes an OCI layout tar (oci-layout, index.json, blobs/sha256/...) to `fd`. `cancel` (may
    // be null) is polled between writes, also while a pipe takes no more: ECANCELED, and the
    // output is left without its end-of-archive blocks (a reader sees a truncated tar).
    Result<> export_image(std::string_view ref, int fd, const std::atomic<bool>* cancel = nullptr);
    // Writes blob `digest` of image `ref` (its manifest, its config or a layer's blob, rebuilt from
    // the layer's tar-split when only that was kept) to `fd`, verified against the digest as it
    // streams; returns its size. What a push uploads.
    Result<uint64_t> write_image_blob(std::string_view ref, std::string_view digest, int fd);

    // Containers. prepare_container creates the snapshot on first use (persistent) or a fresh one
    // each time (ephemeral, replacing any previous one). image_ref "" = scratch (empty tree).
    // `holder`: the process using the snapshot until release (0 = this process); berthd passes
    // its caller's pid from the bus credentials.
    // A persistent container whose image (by id) changed since its layer was made: see
    // ImageChangePolicy; PreparedContainer::image_change says what happened. Recreate is refused
    // (EBUSY) while another live process holds the old layer.
    Result<PreparedContainer> prepare_container(std::string_view name, std::string_view image_ref,
                                                bool ephemeral, int holder = 0,
                                                ImageChangePolicy on_change = ImageChangePolicy::Recreate);
    // At container stop: ephemeral snapshots are removed, persistent ones kept (deactivated).
    Result<> release_container(std::string_view name);
    // The container's record, its layer and every retained earlier layer, and the writable layer
    // of a `rootfs =` container of that name (ROOT/rootfs-layers/NAME, made by the runtime, not
    // recorded). ENOENT when there is neither. Refused (EBUSY) while the layer is in use.
    Result<> remove_container(std::string_view name);
    // `berth prune`: removes every container not in `keep` (the declared ones) that is not in
    // use, as remove_container does, with its rootfs-layers/NAME. Reports what went, with sizes
    // (removed_containers: names).
    Result<GcReport> prune_containers(const std::vector<std::string>& keep);
    std::vector<ContainerInfo> list_containers() const;
    Result<ContainerInfo> get_container(std::string_view name) const;
    // The container's changes relative to its image become a new top layer; the new image gets
    // `name_tag`. Returns the new image.
    Result<ImageInfo> commit_container(std::string_view name, std::string_view name_tag);
    // Writes the container's current tree as a plain tar to `fd`.
    Result<> export_container(std::string_view name, int fd);

    // Named volumes.
    Result<VolumeInfo> create_volume(std::string_view name);  // existing -> returns it
    std::vector<VolumeInfo> list_volumes() const;
    Result<VolumeInfo> get_volume(std::string_view name) const;
    // Refused with EBUSY, naming the containers, while a live process uses the volume
    // (use_volume); a user whose process is gone does not count.
    Result<> remove_volume(std::string_view name);
    // What a container's runtime calls for each volume it mounts: creates the volume if missing
    // (`created` tells) and records `container` as a user held by `holder` (0 = this process;
    // berthd passes its bus caller's pid). A later use by the same container replaces its entry;
    // stale entries are dropped on the way.
    struct VolumeUse {
        VolumeInfo volume;
        bool created = false;
    };
    Result<VolumeUse> use_volume(std::string_view name, std::string_view container, int holder = 0);
    // The container stopped: drops its entry (none is fine). ENOENT when the volume is gone.
    Result<> release_volume(std::string_view name, std::string_view container);

    // Removes layers no image references, blobs no image references, and leftovers. Refused
    // (EUCLEAN) while bad records are known: what they referenced cannot be told from garbage.
    Result<GcReport> gc();

    // Records open() left out (empty when all were read).
    std::vector<BadRecord> bad_records() const;
    // Moves a bad record to ROOT/quarantine/<dir>/<file> (a numeric suffix when that exists) and
    // forgets it; returns the new path. Only a path listed by bad_records() is accepted.
    Result<std::string> quarantine_record(const std::string& path);
    Result<DfReport> df() const;
    Result<PoolUsage> pool_usage() const;

    // For tests and tools: the backend this store drives.
    SnapshotBackend& backend();

    struct Impl;

private:
    explicit Store(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

// Name/ref helpers (pure, unit-tested).
// "busybox" -> "busybox:latest"; validates the charset (docker reference rules, lower case repo).
Result<std::string> normalize_name_tag(std::string_view name_tag);
// Snapshot ids ("c-NAME", "v-NAME"): basic/names.h's grammar, at most kSnapshotIdMax bytes.
bool valid_object_name(std::string_view name);

}  // namespace berth::store
