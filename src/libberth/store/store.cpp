// Placeholder bodies, replaced piece by piece (issue #4).
#include "store/store.h"

#include "store/backend-factory.h"

namespace berth::store {

struct Store::Impl {
    StoreOptions options;
};

Store::Store(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Store::~Store() = default;

Result<std::unique_ptr<Store>> Store::open(const StoreOptions&) { return fail(ENOSYS, "store: not implemented yet"); }
std::string Store::backend_name() const { return ""; }
const StoreOptions& Store::options() const { return impl_->options; }
const std::string& Store::root() const { return impl_->options.root; }
std::string Store::pool_path() const { return ""; }
Result<ImageInfo> Store::import_image(int, ImportFormat, std::string_view, const ProgressFn&, const std::atomic<bool>*) { return fail(ENOSYS, "import: not implemented yet"); }
Result<ImageInfo> Store::import_image_path(const std::string&, ImportFormat, std::string_view, const ProgressFn&, const std::atomic<bool>*) { return fail(ENOSYS, "import: not implemented yet"); }
std::vector<ImageInfo> Store::list_images() const { return {}; }
Result<ImageInfo> Store::get_image(std::string_view) const { return fail(ENOSYS, "not implemented yet"); }
Result<> Store::remove_image(std::string_view, bool) { return fail(ENOSYS, "not implemented yet"); }
Result<> Store::tag_image(std::string_view, std::string_view) { return fail(ENOSYS, "not implemented yet"); }
Result<> Store::export_image(std::string_view, int) { return fail(ENOSYS, "not implemented yet"); }
Result<PreparedContainer> Store::prepare_container(std::string_view, std::string_view, bool) { return fail(ENOSYS, "not implemented yet"); }
Result<> Store::release_container(std::string_view) { return fail(ENOSYS, "not implemented yet"); }
Result<> Store::remove_container(std::string_view) { return fail(ENOSYS, "not implemented yet"); }
std::vector<ContainerInfo> Store::list_containers() const { return {}; }
Result<ContainerInfo> Store::get_container(std::string_view) const { return fail(ENOSYS, "not implemented yet"); }
Result<ImageInfo> Store::commit_container(std::string_view, std::string_view) { return fail(ENOSYS, "not implemented yet"); }
Result<> Store::export_container(std::string_view, int) { return fail(ENOSYS, "not implemented yet"); }
Result<VolumeInfo> Store::create_volume(std::string_view) { return fail(ENOSYS, "not implemented yet"); }
std::vector<VolumeInfo> Store::list_volumes() const { return {}; }
Result<VolumeInfo> Store::get_volume(std::string_view) const { return fail(ENOSYS, "not implemented yet"); }
Result<> Store::remove_volume(std::string_view) { return fail(ENOSYS, "not implemented yet"); }
Result<GcReport> Store::gc() { return fail(ENOSYS, "not implemented yet"); }
Result<DfReport> Store::df() const { return fail(ENOSYS, "not implemented yet"); }
Result<PoolUsage> Store::pool_usage() const { return fail(ENOSYS, "not implemented yet"); }
SnapshotBackend& Store::backend() { std::abort(); }

Result<ImportFormat> parse_import_format(std::string_view text) {
    if (text == "auto") return ImportFormat::Auto;
    if (text == "oci" || text == "oci-layout" || text == "oci-archive") return ImportFormat::OciLayout;
    if (text == "docker-archive" || text == "docker") return ImportFormat::DockerArchive;
    if (text == "rootfs" || text == "tar" || text == "rootfs-tar") return ImportFormat::RootfsTar;
    return fail(EINVAL, "unknown image format '{}' (auto, oci, docker-archive, rootfs)", text);
}

std::string_view to_string(ImportFormat format) {
    switch (format) {
    case ImportFormat::Auto: return "auto";
    case ImportFormat::OciLayout: return "oci";
    case ImportFormat::DockerArchive: return "docker-archive";
    case ImportFormat::RootfsTar: return "rootfs";
    }
    return "auto";
}

Result<std::string> normalize_name_tag(std::string_view) { return fail(ENOSYS, "not implemented yet"); }
bool valid_object_name(std::string_view name) {
    if (name.empty() || name.size() > 128) return false;
    auto ok = [](char c, bool first) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               (!first && (c == '_' || c == '.' || c == '-'));
    };
    for (size_t i = 0; i < name.size(); ++i)
        if (!ok(name[i], i == 0)) return false;
    return true;
}

}  // namespace berth::store
