// The storage side of the container view: berthd's container list over the system bus.
#include "container-view.h"

#if __has_include("bus/storage.h")
#include "bus/storage.h"
#define BERTH_HAVE_STORAGE_CLIENT 1
#endif

namespace berth::cli {

nlohmann::json SnapshotView::to_json() const {
    return {{"name", name}, {"image", image}, {"layer", layer}, {"ephemeral", ephemeral}, {"size", size}};
}

Result<std::vector<SnapshotView>> list_snapshots() {
#ifdef BERTH_HAVE_STORAGE_CLIENT
    auto storage = BERTH_TRY_CTX(bus::open_remote_storage(), "reach berthd");
    auto list = BERTH_TRY_CTX(storage->list_containers(), "list container snapshots");
    std::vector<SnapshotView> out;
    for (auto& c : list) out.push_back({c.name, c.image, c.layer, c.ephemeral, c.size});
    return out;
#else
    return fail(ENOSYS, "this build has no storage client (berthd, issue 4)");
#endif
}

}  // namespace berth::cli
