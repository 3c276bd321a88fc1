// The runtime's seam to the store: berthd over the bus when reachable, else the embedded store.
#include "bus/storage-client.h"

#include "bus/storage.h"

namespace berth::bus {

Result<PreparedSnapshot> prepare_container_snapshot(const config::Declaration& decl) {
    auto context = fmt::format("container '{}': image '{}'", decl.name, decl.image);
    auto storage = BERTH_TRY_CTX(open_storage(), context);
    auto p = BERTH_TRY_CTX(storage->prepare_container(decl.name, decl.image, decl.ephemeral), context);
    return PreparedSnapshot{p.snapshot_id, p.rootfs, p.config};
}

Result<> release_container_snapshot(const config::Declaration& decl, const std::string&) {
    auto context = fmt::format("container '{}': release snapshot", decl.name);
    auto storage = BERTH_TRY_CTX(open_storage(), context);
    return with_context(storage->release_container(decl.name), context);
}

}  // namespace berth::bus
