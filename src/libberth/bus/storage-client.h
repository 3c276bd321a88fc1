// How the runtime (berth run, the unit's ExecStart) gets a container's root filesystem from the
// store: through berthd on the system bus when it is reachable, otherwise through a private
// berthd it spawns ("embedded", bus/storage.h; a store another berthd holds is waited for, up to
// 30 s, so containers that start together do not fail each other).
#pragma once

#include <string>
#include <vector>

#include "basic/result.h"
#include "config/declaration.h"
#include "store/types.h"

namespace berth::bus {

struct PreparedSnapshot {
    std::string snapshot_id;    // the container's snapshot name in the store
    store::MountSpec rootfs;    // what to mount (inside the container's mount namespace)
    store::ImageConfig config;  // image defaults (entrypoint, cmd, env, user, workdir)
};

// For a declaration with `image = ...`: a fresh snapshot if `ephemeral`, else the persistent one
// (created on first use).
Result<PreparedSnapshot> prepare_container_snapshot(const config::Declaration& decl);
// "image 'I' is not in the store; import it first: berth image import FILE --name I".
std::string missing_image_message(const std::string& image);

// Called when the container stops: ephemeral snapshots are removed, persistent ones released.
Result<> release_container_snapshot(const config::Declaration& decl, const std::string& snapshot_id);

// One `[[mount]] type = "volume"` resolved by the store.
struct PreparedVolume {
    std::string name;
    std::string container;   // the container it was prepared for (its user entry in the store)
    store::MountSpec mount;  // Bind: host directory; Block: device node (dm-thin)
    bool created = false;    // made by this call (did not exist before)
};

// For every volume mount of `decl` (in declaration order, each name once): the named volume,
// created in the store on first use, as Docker does. Every name is checked before the store is
// touched, and if any volume cannot be made, the ones this call created are removed again, so a
// failure leaves the store as it was. Errors read "volume 'NAME': cause". Each volume records the
// container as its user, held by this process, until it exits or the volume is released: the
// store refuses to remove a volume in use (EBUSY).
Result<std::vector<PreparedVolume>> prepare_volumes(const config::Declaration& decl);

// Removes the volumes prepare_volumes() created (`created`), for a container that never started:
// an empty volume made for it is not worth keeping. Volumes that existed before, and any that is
// no longer an empty directory (or is a dm-thin device), are kept. Every volume is released.
Result<> discard_new_volumes(const std::vector<PreparedVolume>& volumes);

}  // namespace berth::bus
