// The storage side of the container view: berthd's container list over the system bus.
#include "bus/storage.h"
#include "container-view.h"

namespace berth::cli {

Result<std::vector<SnapshotView>> list_snapshots() {
    // berthd on the bus, else a private one (embedded mode), as every other command.
    auto storage = BERTH_TRY_CTX(bus::open_storage(), "reach the store");
    return with_context(storage->list_containers(), "list container snapshots");
}

std::string image_change_note(const config::Declaration& decl, const SnapshotView& snapshot,
                              bus::Storage& storage) {
    if (decl.image.empty() || decl.ephemeral || snapshot.ephemeral) return {};
    auto image = storage.get_image(decl.image);
    if (!image || image->id == snapshot.image) return {};  // a missing image fails the start itself
    std::string what = fmt::format("image changed: '{}' is now {}, the writable layer was made from {}",
                                   decl.image, image->id.substr(0, 19),
                                   snapshot.image.empty() ? "scratch" : snapshot.image.substr(0, 19));
    if (decl.on_image_change == config::OnImageChange::Keep)
        return what + "; the writable layer is kept on the old image ID (on_image_change = \"keep\")";
    return what + fmt::format(
                      "; the writable layer will be recreated at the next start (the old one is retained "
                      "until 'berth rm {}' or 'berth gc')",
                      decl.name);
}

}  // namespace berth::cli
