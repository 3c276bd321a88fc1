// The storage side of the container view: berthd's container list over the system bus.
#include "bus/storage.h"
#include "container-view.h"

namespace berth::cli {

nlohmann::json SnapshotView::to_json() const {
    return {{"name", name}, {"image", image}, {"layer", layer}, {"ephemeral", ephemeral}, {"size", size}};
}

Result<std::vector<SnapshotView>> list_snapshots() {
    auto storage = BERTH_TRY_CTX(bus::open_remote_storage(), "reach berthd");
    auto list = BERTH_TRY_CTX(storage->list_containers(), "list container snapshots");
    std::vector<SnapshotView> out;
    for (auto& c : list) out.push_back({c.name, c.image, c.layer, c.ephemeral, c.size});
    return out;
}

}  // namespace berth::cli
