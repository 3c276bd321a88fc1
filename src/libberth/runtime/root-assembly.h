// The root file system of a user-namespaced container, assembled by the supervisor (host root,
// outside the namespace) as one detached mount that the child attaches (child.cpp, build_root).
//
// Why not let the child mount it, as without a user namespace: the child is then the namespace's
// root, an unprivileged host uid, and the store's directories (and the state directory holding a
// `rootfs =` container's writable layer) are 0700 and host root's: it cannot reach the layers
// (CVE-2021-21284: it must not). Opening them to host users is not an option either. So the
// supervisor opens every layer, idmaps it (mount_setattr MOUNT_ATTR_IDMAP) and builds the mount
// from file descriptors (fsopen/fsconfig "lowerdir+"/"upperdir"/"workdir"/fsmount, Linux 6.15
// for O_PATH and detached-mount layers); the child gets one fd and never sees a store path.
//
// Ownership (user-namespace.h): the store stays unshifted, host uid N on disk is uid N inside:
//   - lower layers: idmapped through the container's namespace;
//   - writable layer (overlay upper and work, or an ephemeral tmpfs): idmapped through a namespace
//     that maps the container's range the same way plus host root to kLayerBookkeepingId,
//     because overlayfs works there with its mounter's (host root's) credentials;
//   - a bind root (btrfs snapshot, a snapshot without layers): idmapped as a whole through the
//     container's namespace.
// The overlay itself is mounted in the initial namespace, so it uses trusted.overlay.* xattrs as
// the store's layers have them (opaque directories, redirects); an overlay mounted inside the
// namespace would need "userxattr" and not see them.
#pragma once

#include <sys/types.h>

#include "basic/result.h"
#include "basic/unique.h"
#include "runtime/mount-plan.h"
#include "runtime/user-namespace.h"

namespace berth::runtime {

// The detached root for `root` (plan.root.assembled), for the container whose first process is
// `pid` (its id maps written) with `range`.
Result<UniqueFd> assemble_root(const RootPlan& root, pid_t pid, const IdRange& range);

// A detached copy (open_tree, with its submounts) of the mount tree at `path`.
Result<UniqueFd> open_detached_tree(const std::string& path);

// Maps a detached tree's ids (with its submounts) through the user namespace `userns_fd`.
Result<> idmap_tree(int tree, const std::string& path, int userns_fd);

// The user namespace of process `pid`, as an fd.
Result<UniqueFd> open_user_namespace(pid_t pid);

}  // namespace berth::runtime
