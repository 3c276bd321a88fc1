#include "store/dmthin/dmthin-metadata.h"

#include <nlohmann/json.hpp>

namespace berth::store::dmthin {

namespace {

using nlohmann::json;

constexpr std::pair<DeviceKind, std::string_view> kKinds[] = {
    {DeviceKind::Base, "base"},         {DeviceKind::Staging, "staging"}, {DeviceKind::Layer, "layer"},
    {DeviceKind::Snapshot, "snapshot"}, {DeviceKind::Volume, "volume"},
};

std::optional<DeviceKind> kind_from_name(std::string_view name) {
    for (auto& [kind, text] : kKinds)
        if (text == name) return kind;
    return std::nullopt;
}

json record_to_json(const DeviceRecord& r) {
    json j = {{"id", r.id},
              {"kind", kind_name(r.kind)},
              {"name", r.name},
              {"sectors", r.sectors},
              {"ready", r.ready}};
    if (r.parent) j["parent"] = *r.parent;
    return j;
}

DeviceRecord record_from_json(const json& j) {
    DeviceRecord r;
    r.id = j.at("id").get<uint32_t>();
    auto kind = kind_from_name(j.at("kind").get<std::string>());
    if (!kind) throw std::runtime_error("unknown device kind " + j.at("kind").dump());
    r.kind = *kind;
    r.name = j.at("name").get<std::string>();
    if (j.contains("parent")) r.parent = j.at("parent").get<std::string>();
    r.sectors = j.at("sectors").get<uint64_t>();
    r.ready = j.at("ready").get<bool>();
    return r;
}

}  // namespace

std::string_view kind_name(DeviceKind kind) {
    for (auto& [k, text] : kKinds)
        if (k == kind) return text;
    return "?";
}

std::string record_key(DeviceKind kind, const std::string& name) {
    if (kind == DeviceKind::Base) return "base";
    return fmt::format("{}:{}", kind_name(kind), name);
}

std::string serialize_metadata(const Metadata& m) {
    json devices = json::object();
    for (auto& [key, record] : m.devices) devices[key] = record_to_json(record);
    json j = {{"version", 1},
              {"pool", m.pool},
              {"data_block_sectors", m.data_block_sectors},
              {"transaction_id", m.transaction_id},
              {"next_device_id", m.next_device_id},
              {"devices", devices}};
    if (m.pending) {
        j["pending"] = {{"op", m.pending->op == PendingOp::Op::Create ? "create" : "delete"},
                        {"transaction_id", m.pending->transaction_id},
                        {"key", m.pending->key},
                        {"device", record_to_json(m.pending->device)}};
    }
    return j.dump(2) + "\n";
}

Result<Metadata> parse_metadata(const std::string& text) {
    try {
        json j = json::parse(text);
        if (j.at("version").get<int>() != 1)
            return fail(EINVAL, "unsupported dm-thin metadata version {}", j.at("version").dump());
        Metadata m;
        m.pool = j.at("pool").get<std::string>();
        m.data_block_sectors = j.at("data_block_sectors").get<uint32_t>();
        m.transaction_id = j.at("transaction_id").get<uint64_t>();
        m.next_device_id = j.at("next_device_id").get<uint32_t>();
        for (auto& [key, value] : j.at("devices").items()) m.devices[key] = record_from_json(value);
        if (j.contains("pending")) {
            auto& p = j.at("pending");
            PendingOp op;
            auto name = p.at("op").get<std::string>();
            if (name != "create" && name != "delete")
                return fail(EINVAL, "unknown pending operation '{}'", name);
            op.op = name == "create" ? PendingOp::Op::Create : PendingOp::Op::Delete;
            op.transaction_id = p.at("transaction_id").get<uint64_t>();
            op.key = p.at("key").get<std::string>();
            op.device = record_from_json(p.at("device"));
            m.pending = std::move(op);
        }
        return m;
    } catch (const std::exception& e) {
        return fail(EINVAL, "corrupt dm-thin metadata: {}", e.what());
    }
}

Recovery plan_recovery(const Metadata& m, uint64_t pool_tid) {
    if (!m.pending) return pool_tid == m.transaction_id ? Recovery::None : Recovery::Mismatch;
    if (m.pending->transaction_id != m.transaction_id + 1) return Recovery::Mismatch;
    if (pool_tid == m.pending->transaction_id) return Recovery::RollForward;
    if (pool_tid != m.transaction_id) return Recovery::Mismatch;
    return m.pending->op == PendingOp::Op::Create ? Recovery::UndoCreate : Recovery::RedoDelete;
}

ReconcilePlan plan_reconcile(const Metadata& metadata, const std::vector<std::string>& known_layers,
                             const std::vector<std::string>& known_snapshots) {
    std::set<std::string> layers(known_layers.begin(), known_layers.end());
    std::set<std::string> snapshots(known_snapshots.begin(), known_snapshots.end());
    ReconcilePlan plan;
    for (const auto& [key, r] : metadata.devices) {
        std::vector<std::string>* list = nullptr;
        switch (r.kind) {
            case DeviceKind::Base:
                break;
            case DeviceKind::Staging:
                plan.report.other.push_back("staging " + r.name);
                plan.keys.push_back(key);
                break;
            case DeviceKind::Layer:
                if (!layers.count(r.name)) list = &plan.report.layers;
                break;
            case DeviceKind::Snapshot:
                if (!snapshots.count(r.name)) list = &plan.report.snapshots;
                break;
            case DeviceKind::Volume:
                if (!r.ready || !snapshots.count(r.name)) list = &plan.report.volumes;
                break;
        }
        if (!list) continue;
        list->push_back(r.name);
        plan.keys.push_back(key);
    }
    return plan;
}

}  // namespace berth::store::dmthin
