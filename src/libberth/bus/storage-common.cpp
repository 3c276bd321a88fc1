// Input validation and JSON shapes shared by berthd and its clients.
#include "basic/names.h"
#include "basic/string-util.h"
#include "bus/storage.h"

namespace berth::bus {

namespace {

bool is_hex(std::string_view s) {
    for (char c : s)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    return !s.empty();
}

}  // namespace

Result<> validate_image_name(const std::string& name) {
    // The store's own grammar (basic/names.h): a name that passes here never fails in the job.
    BERTH_TRY_VOID(normalize_image_name(name));
    return {};
}

Result<> validate_image_ref(const std::string& ref) {
    if (ref.rfind("sha256:", 0) == 0) {
        if (ref.size() > 7 + 64 || !is_hex(std::string_view(ref).substr(7)))
            return fail(EINVAL, "invalid image id {}", quote(ref));
        return {};
    }
    if (ref.size() <= 64 && is_hex(ref)) return {};  // id prefix
    return validate_image_name(ref);
}

Result<> validate_object_name(const std::string& what, const std::string& name) {
    return check_object_name(what == "volume" ? NameKind::Volume : NameKind::Container, name);
}

Result<> validate_import_format(const std::string& format) {
    for (const char* f : {"", "oci", "oci-archive", "docker-archive", "rootfs"})
        if (format == f) return {};
    return fail(EINVAL, "unknown image format {} (expected oci, oci-archive, docker-archive or rootfs)",
                quote(format));
}

Result<> validate_export_format(const std::string& format) {
    if (format.empty() || format == "oci-archive") return {};
    return fail(EINVAL, "unknown export format {} (expected oci-archive)", quote(format));
}

Result<store::ImageChangePolicy> parse_image_change_policy(const std::string& text) {
    if (text.empty() || text == "recreate") return store::ImageChangePolicy::Recreate;
    if (text == "keep") return store::ImageChangePolicy::Keep;
    return fail(EINVAL, "unknown image change policy {} (expected \"recreate\" or \"keep\")", quote(text));
}

const char* to_string(store::ImageChangePolicy policy) {
    return policy == store::ImageChangePolicy::Keep ? "keep" : "recreate";
}

nlohmann::json to_json(const store::ImageConfig& c) {
    return {{"entrypoint", c.entrypoint},
            {"cmd", c.cmd},
            {"env", c.env},
            {"user", c.user},
            {"working_dir", c.working_dir},
            {"stop_signal", c.stop_signal},
            {"healthcheck", c.healthcheck.test.empty()
                                ? nlohmann::json(nullptr)
                                : nlohmann::json{{"test", c.healthcheck.test},
                                                 {"interval_ns", c.healthcheck.interval_ns},
                                                 {"timeout_ns", c.healthcheck.timeout_ns},
                                                 {"start_period_ns", c.healthcheck.start_period_ns},
                                                 {"start_interval_ns", c.healthcheck.start_interval_ns},
                                                 {"retries", c.healthcheck.retries}}}};
}

nlohmann::json to_json(const ImageInfo& i) {
    return {{"id", i.id},
            {"names", i.names},
            {"size", i.size},
            {"created_usec", i.created_usec},
            {"layers", i.layers},
            {"config", to_json(i.config)},
            {"repo_digests", i.repo_digests}};
}

namespace {
nlohmann::json size_json(uint64_t size) {
    return size == store::kSizeUnknown ? nlohmann::json(nullptr) : nlohmann::json(size);
}
}  // namespace

nlohmann::json to_json(const ContainerInfo& c) {
    return {{"name", c.name},
            {"image", c.image},
            {"layer", c.layer},
            {"ephemeral", c.ephemeral},
            {"size", size_json(c.size)}};
}

nlohmann::json to_json(const VolumeInfo& v) { return {{"name", v.name}, {"size", size_json(v.size)}}; }

nlohmann::json to_json(const VolumeDetail& v) {
    auto users = nlohmann::json::array();
    for (auto& u : v.users) users.push_back({{"container", u.container}, {"pid", u.pid}});
    return {
        {"name", v.name}, {"mount", to_json(v.mount)}, {"created_usec", v.created_usec}, {"users", users}};
}

nlohmann::json to_json(const GcReport& r) {
    // Each removed item with what it held on disk (null: not measured).
    auto items = nlohmann::json::array();
    for (const auto& what : r.removed) {
        auto size = r.sizes.find(what);
        items.push_back({{"name", what},
                         {"size", size == r.sizes.end() ? nlohmann::json() : nlohmann::json(size->second)}});
    }
    return {{"removed", r.removed}, {"items", items}, {"bytes_freed", r.bytes_freed}};
}

nlohmann::json to_json(const PoolStatus& p) {
    return {{"backend", p.backend},
            {"root", p.root},
            {"pool_path", p.pool_path},
            {"used", p.used},
            {"size", p.size},
            {"metadata_used", p.metadata_used},
            {"metadata_size", p.metadata_size}};
}

nlohmann::json to_json(const DiskUsage& u) {
    auto images = nlohmann::json::array(), containers = nlohmann::json::array(),
         volumes = nlohmann::json::array();
    for (auto& i : u.images) images.push_back(to_json(i));
    for (auto& c : u.containers) containers.push_back(to_json(c));
    for (auto& v : u.volumes) volumes.push_back(to_json(v));
    return {{"pool", to_json(u.pool)},
            {"filesystem", {{"type", u.fs_type}, {"source", u.fs_source}, {"mount", u.fs_mount}}},
            {"store_used", u.store_used},
            {"images", images},
            {"containers", containers},
            {"volumes", volumes},
            {"size_note", u.size_note}};
}

nlohmann::json to_json(const store::MountSpec& s) {
    const char* kind = s.kind == store::MountSpec::Kind::Overlay ? "overlay"
                       : s.kind == store::MountSpec::Kind::Block ? "block"
                                                                 : "bind";
    return {{"kind", kind},           {"source", s.source},      {"lowerdirs", s.lowerdirs},
            {"upperdir", s.upperdir}, {"workdir", s.workdir},    {"fstype", s.fstype},
            {"options", s.options},   {"read_only", s.read_only}};
}

}  // namespace berth::bus
