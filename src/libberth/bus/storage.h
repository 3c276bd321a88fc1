// Storage: the one set of verbs the CLI, the runtime and berthd use to reach the image store,
// whichever way it is reached.
//
// Two implementations exist:
//   - LocalStorage (src/berthd/local-storage.cpp): the store library in berthd's process, under
//     the store lock. Only berthd links the store and its backends.
//   - RemoteStorage (remote-storage.cpp): org.berth.Storage1, over one of two transports: berthd
//     on the system bus (or the bus named by DBUS_SYSTEM_BUS_ADDRESS), or a private berthd this
//     process spawns and talks to peer-to-peer over a socketpair ("embedded": no bus, no berthd
//     service; private-berthd.cpp).
// open_storage() picks the transport. The bus layer only translates: every rule lives in the
// store library, in berthd.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "basic/result.h"
#include "store/types.h"

namespace berth::bus {

struct ImageInfo {
    std::string id;                   // "sha256:<hex>" (manifest digest)
    std::vector<std::string> names;   // "name:tag" references
    uint64_t size = 0;                // bytes (sum of layer sizes)
    uint64_t created_usec = 0;        // CLOCK_REALTIME µs; 0 = unknown
    std::vector<std::string> layers;  // chain ids, bottom first
    store::ImageConfig config;
    // "repository@sha256:..." pulled from or pushed to (over the bus: ListRepoDigests).
    std::vector<std::string> repo_digests;
};

using ContainerInfo = store::ContainerSnapshot;  // store/types.h: shared with the CLI

struct VolumeInfo {
    std::string name;
    uint64_t size = 0;  // bytes it holds, or store::kSizeUnknown (JSON: null)
};

// A container whose runtime mounted a volume and still runs (stale users are never listed).
struct VolumeUser {
    std::string container;
    uint32_t pid = 0;  // the runtime process that holds it
};

struct VolumeDetail {
    std::string name;
    store::MountSpec mount;     // what a container bind-mounts (dm-thin: the block device)
    uint64_t created_usec = 0;  // CLOCK_REALTIME µs
    std::vector<VolumeUser> users;
};

// What use_volume() gives the runtime.
struct VolumeUse {
    store::MountSpec mount;
    bool created = false;  // the volume did not exist before this call
};

struct GcReport {
    std::vector<std::string> removed;  // what was removed (layers, blobs, leftovers)
    uint64_t bytes_freed = 0;
    // Bytes each entry of `removed` held on disk, where measured (a backend that cannot measure
    // a layer leaves it out): bytes_freed is their sum.
    std::map<std::string, uint64_t> sizes;
};

struct PoolStatus {
    std::string backend;    // "btrfs", "overlay", "dm-thin"
    std::string root;       // store root directory
    std::string pool_path;  // loopback pool image, "" when none
    uint64_t used = 0, size = 0;
    uint64_t metadata_used = 0, metadata_size = 0;  // dm-thin pool metadata; 0 for other backends
};

struct DiskUsage {
    PoolStatus pool;
    std::vector<ImageInfo> images;
    std::vector<ContainerInfo> containers;
    std::vector<VolumeInfo> volumes;
    std::string size_note;  // why some sizes are unknown ("" when all are known)
    // The file system the store lives on (pool.used/pool.size are its numbers, not the store's)
    // and the bytes the store's own content takes: image layers, blobs, containers' and
    // volumes' exclusive bytes (unknown sizes left out).
    std::string fs_type, fs_source, fs_mount;
    uint64_t store_used = 0;
};

struct PreparedContainer {
    std::string snapshot_id;
    store::MountSpec rootfs;
    store::ImageConfig config;
    store::ImageChange image_change;  // the image changed since the layer was made, and what was done
};

// Import progress: `fraction` from 0.0 to 1.0 (stays 0 while the input's size is unknown, e.g.
// while a pipe is still being read) and the bytes of input read so far; both only grow. May be
// called from a worker thread.
using ProgressFn = std::function<void(double fraction, uint64_t bytes_read)>;

// One layer of a pull as its job reports it (the job's Layers property, a(sstt)): the blob's
// digest, its state ("waiting", "downloading", "verifying", "downloaded", "extracting", "done",
// "present": registry/pull.h), the bytes downloaded and the blob's size.
struct LayerStatus {
    std::string digest, state;
    uint64_t done = 0, total = 0;
    bool operator==(const LayerStatus&) const = default;
};
// Every layer of the pull, each time the job's Layers change (at most a few times a second).
using LayersFn = std::function<void(const std::vector<LayerStatus>& layers)>;

class Storage {
public:
    virtual ~Storage() = default;

    // "bus" or "embedded" (for --verbose output).
    virtual std::string mode() const = 0;

    // `format`: "" (detect), "oci", "oci-archive", "docker-archive", "rootfs". `name`: "name[:tag]"
    // or "". Reads the image from `fd` (a file, a pipe or a directory fd for an OCI layout).
    virtual Result<ImageInfo> import_image(int fd, const std::string& format, const std::string& name,
                                           const ProgressFn& progress, const std::atomic<bool>& cancel) = 0;
    // Pulls `reference` (the distribution grammar: "host:5000/team/app:1", "nginx@sha256:...")
    // through the registries configured in registries.toml. `options`: "platform" ->
    // "os/arch[/variant]" (default: the host's). The image gets the qualified "repository:tag" as
    // its name (none when only a digest was given). Over the bus: PullImage, a job like import.
    // `layers`: per-layer progress (may be empty).
    virtual Result<ImageInfo> pull_image(const std::string& reference,
                                         const std::map<std::string, std::string>& options,
                                         const ProgressFn& progress, const std::atomic<bool>& cancel,
                                         const LayersFn& layers = {}) {
        (void)reference, (void)options, (void)progress, (void)cancel, (void)layers;
        return fail(ENOTSUP, "this storage cannot pull images");
    }
    // The manifest digest `reference`'s tag names on its registry now, asked with a HEAD request
    // (registry/pull.h: resolve_digest); nothing is pulled. Over the bus: ResolveImage, a job.
    virtual Result<std::string> resolve_image(const std::string& reference, const std::atomic<bool>& cancel) {
        (void)reference, (void)cancel;
        return fail(ENOTSUP, "this storage cannot ask registries");
    }
    // Pushes the stored image `image` (a name or id) to `reference` ("host:5000/team/app:1"), with
    // the credentials of the auth file; returns the repository digest ("repository@sha256:...").
    // `options`: none yet. Over the bus: PushImage, a job like pull.
    virtual Result<std::string> push_image(const std::string& image, const std::string& reference,
                                           const std::map<std::string, std::string>& options,
                                           const ProgressFn& progress, const std::atomic<bool>& cancel) {
        (void)image, (void)reference, (void)options, (void)progress, (void)cancel;
        return fail(ENOTSUP, "this storage cannot push images");
    }
    virtual Result<std::vector<ImageInfo>> list_images() = 0;
    // `ref`: "name[:tag]", a full id "sha256:<hex>" or an unambiguous id prefix.
    virtual Result<ImageInfo> get_image(const std::string& ref) = 0;
    // Docker's rmi: a name untags, the image goes with its last name (store::Store::remove_image).
    virtual Result<store::ImageRemoval> remove_image(const std::string& ref) = 0;
    virtual Result<> tag_image(const std::string& ref, const std::string& name) = 0;
    // `format`: "oci-archive" (default) or "rootfs". Writes to `fd`. Once `cancel` (may be null)
    // is set the export stops (over the bus: Job.Cancel, then its end is awaited): ECANCELED.
    virtual Result<> export_image(const std::string& ref, int fd, const std::string& format,
                                  const std::atomic<bool>* cancel = nullptr) = 0;

    // The snapshot stays in use (RemoveContainer: EBUSY) until released or until the process
    // that prepared it exits: `holder` (0 = the calling process; berthd passes its bus caller's
    // pid, and over the bus the caller is always the holder).
    // `on_change`: what a persistent container whose image changed does (store::ImageChangePolicy).
    virtual Result<PreparedContainer> prepare_container(
        const std::string& name, const std::string& image, bool ephemeral, int holder = 0,
        store::ImageChangePolicy on_change = store::ImageChangePolicy::Recreate) = 0;
    virtual Result<> release_container(const std::string& name) = 0;
    // Its layer, retained earlier layers and a `rootfs =` container's rootfs-layers/NAME (ENOENT:
    // none of them). EBUSY while in use.
    virtual Result<> remove_container(const std::string& name) = 0;
    // `berth prune`: every container not named in `keep` and not in use (store::Store::
    // prune_containers); `removed` names them.
    virtual Result<GcReport> prune_containers(const std::vector<std::string>& keep) = 0;
    virtual Result<ImageInfo> commit_container(const std::string& name, const std::string& image_name) = 0;
    virtual Result<std::vector<ContainerInfo>> list_containers() = 0;

    virtual Result<store::MountSpec> create_volume(const std::string& name) = 0;
    virtual Result<> remove_volume(const std::string& name) = 0;
    virtual Result<std::vector<VolumeInfo>> list_volumes() = 0;
    // Name, mount, creation time and live users (ENOENT when missing).
    virtual Result<VolumeDetail> get_volume(const std::string& name) = 0;
    // For the runtime: create the volume if missing and record `container` as its user until
    // release_volume() or until the holder process exits (`holder` as for prepare_container:
    // 0 = the calling process; over the bus berthd takes the caller's pid). remove_volume()
    // refuses (EBUSY) while a user lives.
    virtual Result<VolumeUse> use_volume(const std::string& name, const std::string& container,
                                         int holder = 0) = 0;
    virtual Result<> release_volume(const std::string& name, const std::string& container) = 0;

    virtual Result<GcReport> garbage_collect() = 0;
    virtual Result<DiskUsage> disk_usage() = 0;
    virtual Result<PoolStatus> pool_status() = 0;

    // The caller will not call for a while (a started container, until it stops): a private
    // berthd closes the store, so that its lock is free for other processes, and opens it again
    // at the next call; `berth run` keeps its one private berthd from the start of a container
    // to its end this way, instead of spawning one for each step. Berthd on the system bus keeps
    // its store: a no-op there. Nothing is waited for (no reply).
    virtual void release_store() {}
};

// berthd on the system bus (DBUS_SYSTEM_BUS_ADDRESS honoured). Fails with ENOENT-like errors
// when there is no bus or no berthd on it (neither running nor activatable).
Result<std::unique_ptr<Storage>> open_remote_storage();

// A private berthd (find_berthd()), spawned for this process and serving it alone over a
// socketpair until the returned object is destroyed (then it exits; it also dies with this
// process). A store it cannot open (locked: EWOULDBLOCK, bad berthd.toml, permissions) fails here
// with berthd's errno and message.
Result<std::unique_ptr<Storage>> open_private_storage();

// The berthd executable a private one is spawned from: $BERTH_BERTHD, else the build tree's
// (beside this executable's directory: ../berthd/berthd), else BERTH_LIBEXECDIR/berthd.
std::string find_berthd();

// The bus when berthd is reachable there, else a private berthd ("embedded").
// BERTH_STORAGE=bus|embedded forces one.
Result<std::unique_ptr<Storage>> open_storage();

// Input checks shared by the daemon and clients (before any authorization or work).
Result<> validate_image_ref(const std::string& ref);
Result<> validate_image_name(const std::string& name);                            // "name[:tag]"
Result<> validate_object_name(const std::string& what, const std::string& name);  // containers, volumes
Result<> validate_import_format(const std::string& format);
Result<> validate_export_format(const std::string& format);
// "recreate" / "keep" (berth.toml's [container] on_image_change, PrepareContainer's argument).
Result<store::ImageChangePolicy> parse_image_change_policy(const std::string& text);
const char* to_string(store::ImageChangePolicy policy);

// JSON shapes used by `--json` and by the D-Bus Describe() methods.
nlohmann::json to_json(const ImageInfo& image);
nlohmann::json to_json(const ContainerInfo& container);
nlohmann::json to_json(const VolumeInfo& volume);
nlohmann::json to_json(const VolumeDetail& volume);
nlohmann::json to_json(const GcReport& report);
nlohmann::json to_json(const PoolStatus& pool);
nlohmann::json to_json(const DiskUsage& usage);
nlohmann::json to_json(const store::MountSpec& spec);
nlohmann::json to_json(const store::ImageConfig& config);

}  // namespace berth::bus
