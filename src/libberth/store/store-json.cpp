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

// A record whose JSON keys are its member names: to_json through nlohmann's own field macro,
// from_json through get_opt above (nlohmann's *_WITH_DEFAULT reader would accept the shapes issue
// #16 rejects). The key order on disk does not change: json objects are sorted maps.
#define BERTH_JSON_GET(field) get_opt(nlohmann_json_j, #field, nlohmann_json_t.field);
// Inside a from_json(const json& nlohmann_json_j, T& nlohmann_json_t): reads these fields.
#define BERTH_JSON_GET_FIELDS(...) NLOHMANN_JSON_EXPAND(NLOHMANN_JSON_PASTE(BERTH_JSON_GET, __VA_ARGS__))
#define BERTH_JSON_RECORD(Type, ...)                                             \
    void to_json(json& nlohmann_json_j, const Type& nlohmann_json_t) {           \
        nlohmann_json_j = json::object();                                        \
        NLOHMANN_JSON_EXPAND(NLOHMANN_JSON_PASTE(NLOHMANN_JSON_TO, __VA_ARGS__)) \
    }                                                                            \
    void from_json(const json& nlohmann_json_j, Type& nlohmann_json_t) { BERTH_JSON_GET_FIELDS(__VA_ARGS__) }

BERTH_JSON_RECORD(ImageHealthcheck, test, interval_ns, timeout_ns, start_period_ns, start_interval_ns,
                  retries)
// healthcheck is absent from records written before images' HEALTHCHECK was read: get_opt leaves
// it empty, and a re-import fills it.
BERTH_JSON_RECORD(ImageConfig, entrypoint, cmd, env, user, working_dir, stop_signal, healthcheck)
BERTH_JSON_RECORD(ImageInfo, id, config_digest, names, layers, top_layer, size, created, imported,
                  architecture, os, config, repo_digests)
BERTH_JSON_RECORD(PreparedContainer, snapshot_id, rootfs, config, image_id)
BERTH_JSON_RECORD(VolumeUser, container, pid, start_time)
// Users are kept in their own file (store.cpp: save_users), not in the volume's record.
BERTH_JSON_RECORD(VolumeInfo, name, mount, created)
BERTH_JSON_RECORD(PoolUsage, data_used, data_total, metadata_used, metadata_total)
BERTH_JSON_RECORD(GcReport, removed_layers, removed_blobs, removed_containers, removed_volumes, removed_other,
                  removed_retained, sizes, bytes_freed)
BERTH_JSON_RECORD(DfEntry, name, id, size, shared_size, unique_size, containers)
// size_note stays out: it is a message for the CLI, not part of the report's JSON.
BERTH_JSON_RECORD(DfReport, backend, images, containers, volumes, blobs_size, pool)

void to_json(json& j, const LayerInfo& v) {
    j = json{{"chain_id", v.chain_id},     {"diff_id", v.diff_id},     {"digest", v.digest},
             {"media_type", v.media_type}, {"blob_size", v.blob_size}, {"size", v.size}};
    if (!v.skipped_device_nodes.empty()) j["skipped_device_nodes"] = v.skipped_device_nodes;
}
void from_json(const json& nlohmann_json_j, LayerInfo& nlohmann_json_t) {
    BERTH_JSON_GET_FIELDS(chain_id, diff_id, digest, media_type, blob_size, size, skipped_device_nodes)
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
void from_json(const json& nlohmann_json_j, MountSpec& nlohmann_json_t) {
    std::string kind = "bind";
    get_opt(nlohmann_json_j, "kind", kind);
    nlohmann_json_t.kind = kind == "overlay" ? MountSpec::Kind::Overlay
                           : kind == "block" ? MountSpec::Kind::Block
                                             : MountSpec::Kind::Bind;
    BERTH_JSON_GET_FIELDS(source, lowerdirs, upperdir, workdir, fstype, options, read_only)
}

BERTH_JSON_RECORD(RetainedLayer, snapshot_id, image_id, created, retired)

void to_json(json& j, const ContainerInfo& v) {
    j = json{{"name", v.name},           {"image_id", v.image_id}, {"snapshot_id", v.snapshot_id},
             {"ephemeral", v.ephemeral}, {"created", v.created},   {"in_use", v.in_use}};
    if (v.holder_pid > 0) {
        j["in_use_pid"] = v.holder_pid;
        j["in_use_start_time"] = v.holder_start_time;
    }
    if (!v.retained.empty()) j["retained"] = v.retained;  // absent in records from before
}
void from_json(const json& nlohmann_json_j, ContainerInfo& nlohmann_json_t) {
    BERTH_JSON_GET_FIELDS(name, image_id, snapshot_id, ephemeral, created, in_use)
    get_opt(nlohmann_json_j, "in_use_pid", nlohmann_json_t.holder_pid);
    get_opt(nlohmann_json_j, "in_use_start_time", nlohmann_json_t.holder_start_time);
    get_opt(nlohmann_json_j, "retained", nlohmann_json_t.retained);
}

void to_json(json& j, const ImportProgress& v) {
    j = json{{"phase", import_phase_name(v.phase)},
             {"layer_index", v.layer_index},
             {"layer_count", v.layer_count},
             {"bytes_done", v.bytes_done},
             {"bytes_total", v.bytes_total}};
}

}  // namespace berth::store
