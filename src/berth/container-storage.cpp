// The storage side of the container view: berthd's container list over the system bus.
#include "bus/storage.h"
#include "container-view.h"

namespace berth::cli {

Result<std::vector<SnapshotView>> list_snapshots() {
    auto storage = BERTH_TRY_CTX(bus::open_remote_storage(), "reach berthd");
    return with_context(storage->list_containers(), "list container snapshots");
}

}  // namespace berth::cli
