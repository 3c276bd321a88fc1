// How the runtime (berth run, the unit's ExecStart) gets a container's root filesystem from the
// store: through berthd on the system bus when it is reachable, otherwise with the same store
// library in-process ("embedded", under the store lock). Implemented by the storage issue (#4);
// until then the functions fail with a clear "not available" error.
#pragma once

#include <string>

#include "basic/result.h"
#include "config/declaration.h"
#include "store/backend.h"
#include "store/image-config.h"

namespace berth::bus {

struct PreparedSnapshot {
    std::string snapshot_id;     // the container's snapshot name in the store
    store::MountSpec rootfs;     // what to mount (inside the container's mount namespace)
    store::ImageConfig config;   // image defaults (entrypoint, cmd, env, user, workdir)
};

// For a declaration with `image = ...`: a fresh snapshot if `ephemeral`, else the persistent one
// (created on first use).
Result<PreparedSnapshot> prepare_container_snapshot(const config::Declaration& decl);

// Called when the container stops: ephemeral snapshots are removed, persistent ones released.
Result<> release_container_snapshot(const config::Declaration& decl, const std::string& snapshot_id);

}  // namespace berth::bus
