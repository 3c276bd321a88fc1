// The types the store shares with its clients (the bus layer, the runtime, the CLI): plain data,
// header-only, so code that talks to berthd over org.berth.Storage1 can use them without linking
// the store library (only berthd does; docs/ARCHITECTURE.md).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace berth::store {

// An image's HEALTHCHECK (Docker's config.Healthcheck; OCI configs made by buildah/podman carry
// it too). Kept as the image says it, durations in nanoseconds (0 = unset): the runtime turns it
// into a probe (runtime/state.h: resolve_health) under the declaration's [health], which wins.
// `test` empty: the image has none; {"NONE"}: the image disables the one it inherited.
struct ImageHealthcheck {
    std::vector<std::string> test;  // {"CMD", prog, args...} | {"CMD-SHELL", "line"} | {"NONE"}
    uint64_t interval_ns = 0;
    uint64_t timeout_ns = 0;
    uint64_t start_period_ns = 0;
    uint64_t start_interval_ns = 0;
    uint32_t retries = 0;

    bool operator==(const ImageHealthcheck&) const = default;
};

// The parts of an OCI image config that become a container's defaults.
struct ImageConfig {
    std::vector<std::string> entrypoint;  // config.Entrypoint
    std::vector<std::string> cmd;         // config.Cmd
    std::vector<std::string> env;         // config.Env, "KEY=VALUE"
    std::string user;                     // config.User ("name", "uid", "uid:gid")
    std::string working_dir;              // config.WorkingDir
    std::string stop_signal;              // config.StopSignal
    ImageHealthcheck healthcheck;         // config.Healthcheck
};

// What the runtime must mount (inside the container's mount namespace) to get the rootfs.
struct MountSpec {
    enum class Kind { Bind, Overlay, Block } kind = Kind::Bind;
    std::string source;                  // Bind: host directory; Block: device node
    std::vector<std::string> lowerdirs;  // Overlay: topmost first
    std::string upperdir;                // Overlay
    std::string workdir;                 // Overlay
    std::string fstype;                  // Block: "ext4" / "xfs"
    std::string options;                 // extra mount options ("nouuid", ...)
    bool read_only = false;
};

// SnapshotInfo::exclusive_bytes when the backend cannot measure it (dm-thin without thin_ls).
inline constexpr uint64_t kSizeUnknown = UINT64_MAX;

// What remove_image did: the names it dropped, and the image's id when the image itself went
// ("" when it stays under its other names). Docker prints the same as "Untagged:"/"Deleted:".
struct ImageRemoval {
    std::vector<std::string> untagged;
    std::string deleted;
};

// `[container] on_image_change`: what a persistent container does when the image its declaration
// names is no longer the image (by id, not by name: a re-imported tag is a change too) its
// writable layer was made from. Recreate (the default, as Compose does): a fresh layer on the new
// image, the old one retained (not destroyed) until `berth rm` or `berth gc`, so an update can be
// rolled back to it. Keep: go on with the old layer, on the old image.
enum class ImageChangePolicy { Recreate, Keep };

// What prepare_container found and did about an image change (`changed` false: none).
struct ImageChange {
    bool changed = false;
    bool recreated = false;         // a new layer was made (Recreate); false: the old one is kept
    std::string old_image_id;       // the image the old layer was made from ("" = scratch)
    std::string new_image_id;       // the image the declaration names now
    std::string retained_snapshot;  // Recreate: the old layer's snapshot id, kept until rm/gc
};

// A container's snapshot as berthd reports it (ListContainers, DiskUsage) and the CLI shows it
// (`berth list`, `berth status`): one type for the bus and the CLI. The store's own record
// (store::ContainerInfo, with its holder) stays internal; berthd converts it, once.
struct ContainerSnapshot {
    std::string name;
    std::string image;  // image id it was made from ("" for scratch)
    std::string layer;  // chain id of its base layer
    bool ephemeral = false;
    uint64_t size = 0;  // exclusive bytes, or kSizeUnknown (JSON: null)
};

}  // namespace berth::store
