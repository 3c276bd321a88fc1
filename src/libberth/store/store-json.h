// JSON forms of the store's value types, shared by berthd (D-Bus replies carrying JSON) and the
// CLI's --json so both print the same thing. `nlohmann::json j = info;` works through ADL.
#pragma once

#include <nlohmann/json.hpp>

#include "store/backend.h"
#include "store/image-config.h"
#include "store/store.h"

namespace berth::store {

void to_json(nlohmann::json& j, const ImageConfig& v);
void from_json(const nlohmann::json& j, ImageConfig& v);
void to_json(nlohmann::json& j, const ImageHealthcheck& v);
void from_json(const nlohmann::json& j, ImageHealthcheck& v);
void to_json(nlohmann::json& j, const LayerInfo& v);
void from_json(const nlohmann::json& j, LayerInfo& v);
void to_json(nlohmann::json& j, const ImageInfo& v);
void from_json(const nlohmann::json& j, ImageInfo& v);
void to_json(nlohmann::json& j, const MountSpec& v);
void from_json(const nlohmann::json& j, MountSpec& v);
void to_json(nlohmann::json& j, const RetainedLayer& v);
void from_json(const nlohmann::json& j, RetainedLayer& v);
void to_json(nlohmann::json& j, const ContainerInfo& v);
void from_json(const nlohmann::json& j, ContainerInfo& v);
void to_json(nlohmann::json& j, const PreparedContainer& v);
void from_json(const nlohmann::json& j, PreparedContainer& v);
void to_json(nlohmann::json& j, const VolumeUser& v);
void from_json(const nlohmann::json& j, VolumeUser& v);
void to_json(nlohmann::json& j, const VolumeInfo& v);
void from_json(const nlohmann::json& j, VolumeInfo& v);
void to_json(nlohmann::json& j, const PoolUsage& v);
void from_json(const nlohmann::json& j, PoolUsage& v);
void to_json(nlohmann::json& j, const GcReport& v);
void from_json(const nlohmann::json& j, GcReport& v);
void to_json(nlohmann::json& j, const DfEntry& v);
void from_json(const nlohmann::json& j, DfEntry& v);
void to_json(nlohmann::json& j, const DfReport& v);
void from_json(const nlohmann::json& j, DfReport& v);
void to_json(nlohmann::json& j, const ImportProgress& v);

// from_json variants that never throw (for data read from disk or the bus).
template <class T>
Result<T> parse_json_as(std::string_view text, std::string_view what) {
    try {
        return nlohmann::json::parse(text).get<T>();
    } catch (const std::exception& e) {
        return fail(EBADMSG, "parse {}: {}", what, e.what());
    }
}

}  // namespace berth::store
