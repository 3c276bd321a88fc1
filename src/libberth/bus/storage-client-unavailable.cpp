// Placeholder until the storage issue (#4) lands the real client (storage-client.cpp).
#include "bus/storage-client.h"

namespace berth::bus {

Result<PreparedSnapshot> prepare_container_snapshot(const config::Declaration& decl) {
    return fail(ENOSYS, "container '{}': image '{}': the image store is not built yet (issue #4)", decl.name,
                decl.image);
}

Result<> release_container_snapshot(const config::Declaration&, const std::string&) { return {}; }

}  // namespace berth::bus
