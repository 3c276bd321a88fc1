// Store internals shared by store.cpp (metadata, containers, gc) and image-import.cpp.
#pragma once

#include <array>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>

#include "basic/unique.h"
#include "store/store.h"

namespace berth::store {

struct Store::Impl {
    StoreOptions options;
    std::string root;
    std::string pool_path;
    UniqueFd lock_fd;
    std::unique_ptr<SnapshotBackend> backend;

    // The token this open() wrote into ROOT/lock ("" when it could not: never trusted on
    // resume), whether suspend() let go of the lock, and what the records looked like then.
    std::string lock_token;
    bool suspended = false;
    std::vector<std::array<int64_t, 3>> suspended_fingerprint;

    // Opened for reading only (StoreOptions::read_only, or a read-only file system): no lock held
    // for writing, no cleanup at open, every mutation refused with EROFS.
    bool read_only = false;

    mutable std::mutex mu;
    std::condition_variable cv;
    std::set<std::string> claimed_layers;  // chain ids an in-flight import builds or reuses, or gc removes
    std::multiset<std::string> pinned;     // layers and blobs an export in flight reads (gc keeps them)
    int active_imports = 0;
    bool gc_running = false;

    std::map<std::string, ImageInfo> images;  // id -> info (names not filled)
    std::map<std::string, std::string> refs;  // name:tag -> id
    std::map<std::string, ContainerInfo> containers;
    std::map<std::string, VolumeInfo> volumes;
    std::vector<BadRecord> bad_records;  // records open() left out (see BadRecord)
    // refs.json names whose image record was left out: not resolvable, but written back with
    // refs so a record repaired by hand gets its names again.
    std::map<std::string, std::string> kept_refs;
    // Layers of removed images that only gc() removes (ROOT/gc-pending.json): open()'s
    // reconcile keeps them, so gc can report what it freed even when every command opens the
    // store anew (embedded mode); it was "565 B freed" and no layer (issue #15 item 6).
    std::set<std::string> gc_pending;
    Result<> save_gc_pending_locked();

    std::string path(std::string_view rel) const;
    std::string blob_path(const std::string& digest) const;
    // ROOT/splits/<chain hex>: the tar-split of an uncompressed layer blob (tar-split.h). It is
    // keyed by the layer, not the digest: it rebuilds from that layer's tree and goes with it.
    std::string split_path(const std::string& chain_id) const;
    // Streams a layer's blob: the blob file when stored, else rebuilt from the layer's tar-split
    // (verified against the digest). Returns the bytes passed to `sink`.
    Result<uint64_t> stream_layer_blob(const LayerInfo& layer,
                                       const std::function<Result<>(const char*, size_t)>& sink);
    ImageInfo with_names(const ImageInfo& i) const;  // caller holds mu
    Result<std::string> resolve_locked(std::string_view ref) const;
    // Writes `next` (and kept_refs) as refs.json. The caller assigns `refs = next` only when this
    // succeeded: memory never holds a name the disk does not (issue #16). Refused while refs.json
    // itself is a bad record (overwriting it would lose the names a repair could recover).
    Result<> save_refs_locked(const std::map<std::string, std::string>& next) const;
    // EROFS when the store was opened read-only.
    Result<> writable() const;
    // Publishes a staged import: blobs (stage/blobs/<hex>) into blobs/, the image, its names.
    Result<ImageInfo> publish_locked(const std::string& stage, ImageInfo info,
                                     const std::vector<std::string>& names, const ProgressFn& progress);
    // Waits until no one else claims `chain` and claims it; ECANCELED once `cancel` is set.
    Result<> claim(const std::string& chain, const std::atomic<bool>* cancel);
};

// RAII: counts an import as in flight and releases its layer claims. gc does not wait for it (a
// stalled import must not stall gc, issue #16): it keeps what the import claimed and leaves the
// staging areas alone while any import is in flight.
class ImportGuard {
public:
    explicit ImportGuard(Store::Impl& s, const std::atomic<bool>* cancel = nullptr);
    ~ImportGuard();
    Result<> claim(const std::string& chain);

private:
    Store::Impl& s_;
    const std::atomic<bool>* cancel_;
    std::vector<std::string> claimed_;
};

// RAII: pins an image's layers and blobs while an export reads them: gc keeps them even if the
// image is removed meanwhile.
class PinGuard {
public:
    PinGuard(Store::Impl& s, const ImageInfo& image);
    ~PinGuard();
    PinGuard(const PinGuard&) = delete;
    PinGuard& operator=(const PinGuard&) = delete;

private:
    Store::Impl& s_;
    std::vector<std::string> pins_;
};

// Import entry points (image-import.cpp).
Result<ImageInfo> import_from_fd(Store::Impl& s, int fd, ImportFormat format, std::string_view name_tag,
                                 const ProgressFn& progress, const std::atomic<bool>* cancel);
// `arriving` (may be null): layer blobs still downloading into the directory (blob-feed.h).
Result<ImageInfo> import_from_dir(Store::Impl& s, int dirfd, std::string_view name_tag,
                                  const ProgressFn& progress, const std::atomic<bool>* cancel,
                                  BlobFeed* arriving = nullptr);
Result<ImageInfo> commit_to_image(Store::Impl& s, const ContainerInfo& c, std::string_view name_tag);
// `cancel` (may be null) is polled between writes, also while a pipe does not take more: ECANCELED.
Result<> write_oci_archive(Store::Impl& s, const ImageInfo& info, int fd,
                           const std::atomic<bool>* cancel = nullptr);

int64_t now_seconds();
// Crash tests: the process SIGKILLs itself when BERTH_STORE_CRASH_AT names `point` (store.cpp).
void crash_point(std::string_view point);
ImageConfig parse_image_config(const nlohmann::json& config);
// config.Healthcheck of an image config's "config" object (empty when absent or malformed).
ImageHealthcheck parse_image_healthcheck(const nlohmann::json& config_config);
int64_t parse_rfc3339(const std::string& s);

}  // namespace berth::store
