// How the runtime (berth run, the unit's ExecStart) gets a container's root filesystem from the
// store: through berthd on the system bus when it is reachable, otherwise through a private
// berthd it spawns ("embedded", bus/storage.h; a store another berthd holds is waited for, up to
// 30 s, so containers that start together do not fail each other).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "basic/result.h"
#include "bus/storage.h"
#include "config/declaration.h"
#include "store/types.h"

namespace berth::bus {

// What a run says while it pulls its declared image (`berth run --systemd`: STATUS= and
// EXTEND_TIMEOUT_USEC= to systemd, so that a long first pull does not hit TimeoutStartSec). Each
// may be empty.
struct PullHooks {
    std::function<void(const std::string& reference)> started;  // before the pull's first request
    ProgressFn progress;                                        // as the pull's job reports
    std::function<void(const std::string& message)> warn;       // "newer" fell back to the local image
    // Asked every 50 ms while the pull runs: a stop signal the run took (SIGTERM from
    // `systemctl stop`, Ctrl-C), 0 for none. A signal cancels the pull's job (Cancel): berthd
    // publishes nothing and empties its staging, and the start ends at once instead of after
    // the whole download (or TimeoutStopSec).
    std::function<int()> stop_requested;
};

// One connection to storage for all the steps of one `berth run` (snapshot, volumes, release),
// opened at the first step. In embedded mode that is one private berthd per run instead of one
// per step (each is a process start: ~20 ms on the CI machine kind, docs/PERFORMANCE.md). While
// the container runs it holds no store lock (idle()), and a run that outlives the hand-over delay
// lets go of it (close()) before berth-supervise takes over. The socket is close-on-exec and the
// private berthd dies with this process, so neither reaches the container nor outlives berth.
class StorageSession {
public:
    StorageSession() = default;
    StorageSession(const StorageSession&) = delete;
    StorageSession& operator=(const StorageSession&) = delete;

    // The connection, opened on first use; a store another private berthd holds for a moment
    // is waited for (up to 30 s), so containers that start together do not fail each other.
    Result<Storage*> get();
    // No call for a while: a private berthd closes the store (Storage::release_store).
    void idle();
    // Lets go of the connection: a private berthd exits (and is reaped). The next get() opens
    // a new one.
    void close() { storage_.reset(); }
    bool open() const { return storage_ != nullptr; }

    // How prepare_container_snapshot() reports a pull it makes for the declaration.
    PullHooks pull_hooks;

private:
    std::unique_ptr<Storage> storage_;
};

struct PreparedSnapshot {
    std::string snapshot_id;    // the container's snapshot name in the store
    store::MountSpec rootfs;    // what to mount (inside the container's mount namespace)
    store::ImageConfig config;  // image defaults (entrypoint, cmd, env, user, workdir)
    store::ImageChange image_change;
    // The image id the reference resolved to when it came from a registry (or the image
    // changed); "" for a local image name the store resolved by itself.
    std::string image_id;
};

// What the run says about an image change (`[container] on_image_change`), or "" when the image
// did not change: "image changed (ta:1 is now sha256:...): the writable layer was recreated ...".
std::string describe_image_change(const config::Declaration& decl, const store::ImageChange& change);

// `[container] pull` applied before a start: for a declaration whose image comes from a registry
// (config::pulls_from_registry), the store is asked for the qualified reference
// (registries.toml), registry::decide_pull() decides, and a pull runs in berthd (PullImage: the
// runtime never links the HTTP client). Returns what to prepare the snapshot from: the image id
// the store holds for the reference (so the container runs exactly what was resolved), or
// decl.image unchanged for a local image name. Errors name the reference.
Result<std::string> resolve_declared_image(Storage& storage, const config::Declaration& decl,
                                           const PullHooks& hooks = {});

// For a declaration with `image = ...`: the image resolved (and pulled) as resolve_declared_image()
// does, then a fresh snapshot if `ephemeral`, else the persistent one
// (created on first use; recreated or kept when the image changed, by decl.on_image_change).
Result<PreparedSnapshot> prepare_container_snapshot(StorageSession& storage, const config::Declaration& decl);
// "image 'I' is not in the store; import it first: berth image import FILE --name I".
std::string missing_image_message(const std::string& image);

// Called when the container stops: ephemeral snapshots are removed, persistent ones released.
Result<> release_container_snapshot(StorageSession& storage, const config::Declaration& decl);

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
Result<std::vector<PreparedVolume>> prepare_volumes(StorageSession& storage, const config::Declaration& decl);

// Removes the volumes prepare_volumes() created (`created`), for a container that never started:
// an empty volume made for it is not worth keeping. Volumes that existed before, and any that is
// no longer an empty directory (or is a dm-thin device), are kept. Every volume is released.
Result<> discard_new_volumes(StorageSession& storage, const std::vector<PreparedVolume>& volumes);

}  // namespace berth::bus
