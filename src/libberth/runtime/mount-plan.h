// The container's mount table, planned in the parent (pure; unit-tested) and applied by the child
// inside its own mount namespace (apply_mount_plan in child.h).
//
// Layout while the child builds the tree: a private tmpfs ("stage") is mounted on a fixed empty
// directory of the host (<run dir>/.stage, it exists only to be mounted over); the root file
// system is mounted on stage/root, ephemeral overlay upper/work directories live in stage/upper
// and stage/work, generated files (/etc/hostname, /etc/hosts, /etc/resolv.conf) are written into
// the stage and bind-mounted into place. Every target is resolved inside the new root with
// openat2(RESOLVE_IN_ROOT), so a symlink in the image cannot redirect a mount onto the host. Then
// pivot_root into stage/root and detach the old root: from then on the host's tree (and the
// stage) are unreachable, and everything vanishes with the namespace, however the container dies.
#pragma once

#include <sys/mount.h>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "basic/result.h"
#include "config/declaration.h"
#include "runtime/secrets.h"
#include "store/types.h"

namespace berth::runtime {

struct MountOp {
    enum class Kind {
        Mount,      // fresh file system: fstype/source/flags/data on target
        BindHost,   // bind a host path (source) on target
        StageFile,  // write `data` into the stage file `source` (host path), bind it on target
        Symlink,    // symlink target -> source
        Mask,       // hide target: /dev/null on a file, read-only empty tmpfs on a directory
        ReadOnly,   // bind target on itself, read-only (submounts included)
        Secret,     // write `data` as the file `source` on the secrets tmpfs (mode `file_mode`);
                    // bind it read-only on `target` when that is another path (secrets.h)
    };
    Kind kind = Kind::Mount;
    std::string source;
    std::string target;  // absolute path inside the container
    std::string fstype;
    unsigned long flags = 0;
    std::string data;
    bool target_is_dir = true;  // the mount point to create
    bool recursive = false;     // BindHost: MS_REC
    // BindHost / StageFile: read-only, and for a recursive bind every submount too; set on the
    // detached copy (open_tree + mount_setattr AT_RECURSIVE) before it is attached, so the tree is
    // never writable in the container, not even for a moment.
    bool read_only = false;
    bool nodev = false;     // BindHost: nodev on the whole bound tree (set like read_only)
    bool optional = false;  // failure (e.g. path missing, fs not allowed) is not an error
    // BindHost: the supervisor opens `source` as a detached tree (open_tree) before the clone and
    // idmaps it for a user namespace; the child attaches that tree (tree_fd, inherited) instead
    // of resolving the host path, which a user namespace's root may not reach (volumes).
    bool detached = false;
    int tree_fd = -1;
    // Detached BindHost of a volume made for this start: its top takes the owner and mode of
    // the image's directory at the target, as Docker seeds a new volume (contents not copied).
    bool take_owner = false;
    // Secret: the file's mode and owner (-1: the payload's uid / gid, known only at Launch, when
    // the child sets the owners and makes the secrets tmpfs read-only).
    uint32_t file_mode = 0400;
    int64_t owner_uid = -1, owner_gid = -1;

    bool operator==(const MountOp&) const = default;
};

struct RootPlan {
    store::MountSpec spec;        // Overlay / Bind / Block
    bool upper_on_stage = false;  // Overlay: upper/work on the private tmpfs (ephemeral)
    bool read_only = false;       // remount / read-only at the end
    unsigned long flags = 0;      // MS_NODEV etc. for the root mount (a bind root: all of its tree)
    std::string overlay_options;  // Overlay: full option string (lowerdir=...), mounted by the child
    // With a user namespace the supervisor assembles the root itself, outside the namespace, as a
    // detached mount (root-assembly.h) that the child attaches: the namespace's root never walks
    // the store's 0700 directories, and the layers are idmapped so the image's own ids show.
    bool assembled = false;
    // Assembled persistent overlay: the directory that holds upperdir and workdir, idmapped as one
    // mount (overlayfs wants both on the same mount), and their names in it.
    std::string layer_dir, upper_name, work_name;
};

// MS_RDONLY/MS_NOSUID/MS_NODEV/MS_NOEXEC as mount_setattr(2)/fsmount(2) attributes (MOUNT_ATTR_*).
// Allocation-free: the child uses it too.
inline uint64_t mount_attributes(unsigned long ms_flags) {
    uint64_t attr = 0;
    if (ms_flags & MS_RDONLY) attr |= MOUNT_ATTR_RDONLY;
    if (ms_flags & MS_NOSUID) attr |= MOUNT_ATTR_NOSUID;
    if (ms_flags & MS_NODEV) attr |= MOUNT_ATTR_NODEV;
    if (ms_flags & MS_NOEXEC) attr |= MOUNT_ATTR_NOEXEC;
    return attr;
}

struct MountPlan {
    RootPlan root;
    std::vector<MountOp> ops;
};

struct MountInputs {
    const config::Declaration* decl = nullptr;
    store::MountSpec root;        // what to mount as /
    bool upper_on_stage = false;  // ephemeral overlay layer
    std::string stage_dir;        // host dir the stage tmpfs is mounted on
    bool user_namespace = false;
    bool new_network_namespace = true;
    std::string hostname_file;       // contents of /etc/hostname
    std::string hosts_file;          // contents of /etc/hosts
    std::string resolv_conf;         // contents of /etc/resolv.conf
    std::string notify_socket_host;  // host socket bound at /run/host/notify (empty = none)
    std::string timezone_file;       // host zone file bound on /etc/localtime (resolve_timezone)
    // Named volumes the store prepared (bus::prepare_volumes), by name: Bind = a host directory
    // bound on the target; Block = a device (dm-thin) mounted on the target.
    std::map<std::string, store::MountSpec> volumes;
    std::set<std::string> new_volumes;                  // the ones created for this start
    const std::vector<SecretValue>* secrets = nullptr;  // [[secret]]s with their values (may be null)
    // Tells what a host path is: true = directory, false = other file, nullopt = missing.
    std::function<std::optional<bool>(const std::string&)> probe;
    // CDI device nodes and driver mounts (devices.h); null = none.
    const struct DevicePlan* devices = nullptr;
};

Result<MountPlan> plan_mounts(const MountInputs& in);

// Docker's masked and read-only /proc and /sys paths (a read-only path: its whole tree).
const std::vector<std::string>& masked_paths();
const std::vector<std::string>& read_only_paths();

// [container] timezone -> the host's zone file to bind on /etc/localtime: "host" = what the
// host's /etc/localtime leads to, a name = /usr/share/zoneinfo/NAME, which must be a regular file
// that stays inside /usr/share/zoneinfo once its symlinks are resolved. "" -> "" (the image's).
Result<std::string> resolve_timezone(const std::string& timezone);

// Host probe for MountInputs::probe.
std::optional<bool> probe_host_path(const std::string& path);

inline constexpr const char* kNotifySocketInContainer = "/run/host/notify";

}  // namespace berth::runtime
