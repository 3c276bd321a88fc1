#include "store/store-json.h"

#include <fmt/format.h>

#include <limits>
#include <type_traits>

namespace berth::store {

using nlohmann::json;

// Readers tolerate missing keys (older metadata, other writers) and keep defaults, but not a
// value of the wrong shape: records on disk and replies on the bus may be hostile or damaged
// (issue #16). nlohmann's own get_to() throws on a string where a number belongs, but takes an
// array or a number as an "object" with no keys ('[]' became an image with an empty id, which
// std::string::compare later threw on inside a noexcept bus callback), converts booleans and
// floats to integers, and wraps negative numbers into unsigned ones. So: the container must be an
// object, and an integer field takes only an integer JSON number that fits. Errors are
// nlohmann::json::type_error, which parse_json_as() turns into EBADMSG.
template <class T>
static void get_opt(const json& j, const char* key, T& out) {
    if (!j.is_object())
        throw json::type_error::create(302, fmt::format("expected a JSON object, got {}", j.type_name()), &j);
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return;
    if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
        using L = std::numeric_limits<T>;
        bool fits = false;
        if (it->is_number_unsigned())
            fits = it->template get<uint64_t>() <= static_cast<uint64_t>(L::max());
        else if (it->is_number_integer())
            fits = std::is_signed_v<T> && it->template get<int64_t>() >= static_cast<int64_t>(L::min());
        if (!fits)
            throw json::type_error::create(302,
                                           fmt::format("'{}': expected an integer from {} to {}, got {}", key,
                                                       L::min(), L::max(), it->dump().substr(0, 64)),
                                           &j);
    }
    it->get_to(out);
}

void to_json(json& j, const ImageConfig& v) {
    j = json{{"entrypoint", v.entrypoint},
             {"cmd", v.cmd},
             {"env", v.env},
             {"user", v.user},
             {"working_dir", v.working_dir},
             {"stop_signal", v.stop_signal}};
}
void from_json(const json& j, ImageConfig& v) {
    get_opt(j, "entrypoint", v.entrypoint);
    get_opt(j, "cmd", v.cmd);
    get_opt(j, "env", v.env);
    get_opt(j, "user", v.user);
    get_opt(j, "working_dir", v.working_dir);
    get_opt(j, "stop_signal", v.stop_signal);
}

void to_json(json& j, const LayerInfo& v) {
    j = json{{"chain_id", v.chain_id},     {"diff_id", v.diff_id},     {"digest", v.digest},
             {"media_type", v.media_type}, {"blob_size", v.blob_size}, {"size", v.size}};
    if (!v.skipped_device_nodes.empty()) j["skipped_device_nodes"] = v.skipped_device_nodes;
}
void from_json(const json& j, LayerInfo& v) {
    get_opt(j, "chain_id", v.chain_id);
    get_opt(j, "diff_id", v.diff_id);
    get_opt(j, "digest", v.digest);
    get_opt(j, "media_type", v.media_type);
    get_opt(j, "blob_size", v.blob_size);
    get_opt(j, "size", v.size);
    get_opt(j, "skipped_device_nodes", v.skipped_device_nodes);
}

void to_json(json& j, const ImageInfo& v) {
    j = json{{"id", v.id},
             {"config_digest", v.config_digest},
             {"names", v.names},
             {"layers", v.layers},
             {"top_layer", v.top_layer},
             {"size", v.size},
             {"created", v.created},
             {"imported", v.imported},
             {"architecture", v.architecture},
             {"os", v.os},
             {"config", v.config}};
}
void from_json(const json& j, ImageInfo& v) {
    get_opt(j, "id", v.id);
    get_opt(j, "config_digest", v.config_digest);
    get_opt(j, "names", v.names);
    get_opt(j, "layers", v.layers);
    get_opt(j, "top_layer", v.top_layer);
    get_opt(j, "size", v.size);
    get_opt(j, "created", v.created);
    get_opt(j, "imported", v.imported);
    get_opt(j, "architecture", v.architecture);
    get_opt(j, "os", v.os);
    get_opt(j, "config", v.config);
}

static const char* kind_name(MountSpec::Kind k) {
    switch (k) {
        case MountSpec::Kind::Bind:
            return "bind";
        case MountSpec::Kind::Overlay:
            return "overlay";
        case MountSpec::Kind::Block:
            return "block";
    }
    return "bind";
}

void to_json(json& j, const MountSpec& v) {
    j = json{{"kind", kind_name(v.kind)}, {"source", v.source},      {"lowerdirs", v.lowerdirs},
             {"upperdir", v.upperdir},    {"workdir", v.workdir},    {"fstype", v.fstype},
             {"options", v.options},      {"read_only", v.read_only}};
}
void from_json(const json& j, MountSpec& v) {
    std::string kind = "bind";
    get_opt(j, "kind", kind);
    v.kind = kind == "overlay" ? MountSpec::Kind::Overlay
             : kind == "block" ? MountSpec::Kind::Block
                               : MountSpec::Kind::Bind;
    get_opt(j, "source", v.source);
    get_opt(j, "lowerdirs", v.lowerdirs);
    get_opt(j, "upperdir", v.upperdir);
    get_opt(j, "workdir", v.workdir);
    get_opt(j, "fstype", v.fstype);
    get_opt(j, "options", v.options);
    get_opt(j, "read_only", v.read_only);
}

void to_json(json& j, const ContainerInfo& v) {
    j = json{{"name", v.name},           {"image_id", v.image_id}, {"snapshot_id", v.snapshot_id},
             {"ephemeral", v.ephemeral}, {"created", v.created},   {"in_use", v.in_use}};
    if (v.holder_pid > 0) {
        j["in_use_pid"] = v.holder_pid;
        j["in_use_start_time"] = v.holder_start_time;
    }
}
void from_json(const json& j, ContainerInfo& v) {
    get_opt(j, "name", v.name);
    get_opt(j, "image_id", v.image_id);
    get_opt(j, "snapshot_id", v.snapshot_id);
    get_opt(j, "ephemeral", v.ephemeral);
    get_opt(j, "created", v.created);
    get_opt(j, "in_use", v.in_use);
    get_opt(j, "in_use_pid", v.holder_pid);
    get_opt(j, "in_use_start_time", v.holder_start_time);
}

void to_json(json& j, const PreparedContainer& v) {
    j = json{
        {"snapshot_id", v.snapshot_id}, {"rootfs", v.rootfs}, {"config", v.config}, {"image_id", v.image_id}};
}
void from_json(const json& j, PreparedContainer& v) {
    get_opt(j, "snapshot_id", v.snapshot_id);
    get_opt(j, "rootfs", v.rootfs);
    get_opt(j, "config", v.config);
    get_opt(j, "image_id", v.image_id);
}

void to_json(json& j, const VolumeUser& v) {
    j = json{{"container", v.container}, {"pid", v.pid}, {"start_time", v.start_time}};
}
void from_json(const json& j, VolumeUser& v) {
    get_opt(j, "container", v.container);
    get_opt(j, "pid", v.pid);
    get_opt(j, "start_time", v.start_time);
}

void to_json(json& j, const VolumeInfo& v) {
    // Users are kept in their own file (store.cpp: save_users), not in the volume's record.
    j = json{{"name", v.name}, {"mount", v.mount}, {"created", v.created}};
}
void from_json(const json& j, VolumeInfo& v) {
    get_opt(j, "name", v.name);
    get_opt(j, "mount", v.mount);
    get_opt(j, "created", v.created);
}

void to_json(json& j, const PoolUsage& v) {
    j = json{{"data_used", v.data_used},
             {"data_total", v.data_total},
             {"metadata_used", v.metadata_used},
             {"metadata_total", v.metadata_total}};
}
void from_json(const json& j, PoolUsage& v) {
    get_opt(j, "data_used", v.data_used);
    get_opt(j, "data_total", v.data_total);
    get_opt(j, "metadata_used", v.metadata_used);
    get_opt(j, "metadata_total", v.metadata_total);
}

void to_json(json& j, const GcReport& v) {
    j = json{{"removed_layers", v.removed_layers},
             {"removed_blobs", v.removed_blobs},
             {"removed_other", v.removed_other},
             {"bytes_freed", v.bytes_freed}};
}
void from_json(const json& j, GcReport& v) {
    get_opt(j, "removed_layers", v.removed_layers);
    get_opt(j, "removed_blobs", v.removed_blobs);
    get_opt(j, "removed_other", v.removed_other);
    get_opt(j, "bytes_freed", v.bytes_freed);
}

void to_json(json& j, const DfEntry& v) {
    j = json{{"name", v.name},
             {"id", v.id},
             {"size", v.size},
             {"shared_size", v.shared_size},
             {"unique_size", v.unique_size},
             {"containers", v.containers}};
}
void from_json(const json& j, DfEntry& v) {
    get_opt(j, "name", v.name);
    get_opt(j, "id", v.id);
    get_opt(j, "size", v.size);
    get_opt(j, "shared_size", v.shared_size);
    get_opt(j, "unique_size", v.unique_size);
    get_opt(j, "containers", v.containers);
}

void to_json(json& j, const DfReport& v) {
    j = json{{"backend", v.backend}, {"images", v.images},         {"containers", v.containers},
             {"volumes", v.volumes}, {"blobs_size", v.blobs_size}, {"pool", v.pool}};
}
void from_json(const json& j, DfReport& v) {
    get_opt(j, "backend", v.backend);
    get_opt(j, "images", v.images);
    get_opt(j, "containers", v.containers);
    get_opt(j, "volumes", v.volumes);
    get_opt(j, "blobs_size", v.blobs_size);
    get_opt(j, "pool", v.pool);
}

void to_json(json& j, const ImportProgress& v) {
    j = json{{"phase", v.phase},
             {"layer_index", v.layer_index},
             {"layer_count", v.layer_count},
             {"bytes_done", v.bytes_done},
             {"bytes_total", v.bytes_total}};
}

}  // namespace berth::store
