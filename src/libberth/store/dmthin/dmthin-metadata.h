// berth's own record of a dm-thin pool: which thin device id holds which layer, snapshot or
// volume, and the pool transaction id that record corresponds to.
//
// Crash safety. The pool's metadata (in the kernel, committed on every message) and berth's file
// (write_file_atomic) cannot be updated atomically together, so every change of the pool goes
// through a two-phase protocol keyed on the pool's transaction id T:
//   1. write the file with `pending` = {op, T+1, device} (and next_device_id already advanced);
//   2. send the pool message (create_thin / create_snap / delete);
//   3. send "set_transaction_id T T+1";
//   4. write the file with the change applied, transaction_id = T+1 and no pending op.
// After a crash the pool's transaction id P tells how far we got (plan_recovery): P == T+1 means
// the pool finished (steps 2-3 done): roll the pending op forward; P == T means step 3 never
// happened: a pending create is undone (the device is deleted if step 2 ran), a pending delete is
// redone. Device ids are never reused (next_device_id is persisted before the message), so a
// device id that leaked can never alias a live one.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>

#include "basic/result.h"
#include "store/backend.h"

namespace berth::store::dmthin {

enum class DeviceKind { Base, Staging, Layer, Snapshot, Volume };

std::string_view kind_name(DeviceKind kind);

struct DeviceRecord {
    uint32_t id = 0;
    DeviceKind kind = DeviceKind::Base;
    std::string name;                   // chain id, snapshot id, volume name ("" for base)
    std::optional<std::string> parent;  // Staging/Layer: parent chain id; Snapshot: its layer
    uint64_t sectors = 0;               // virtual size
    bool ready = false;                 // filesystem complete (base, volume) / layer committed
};

// Map key of a record: "layer:<chain>", "snapshot:<id>", "volume:<name>", "staging:<chain>", "base".
std::string record_key(DeviceKind kind, const std::string& name);

struct PendingOp {
    enum class Op { Create, Delete } op = Op::Create;
    uint64_t transaction_id = 0;  // the pool transaction id once the op is complete
    std::string key;
    DeviceRecord device;
};

struct Metadata {
    std::string pool;  // dm name of the pool this file describes
    uint32_t data_block_sectors = 0;
    uint64_t transaction_id = 0;
    uint32_t next_device_id = 1;
    std::map<std::string, DeviceRecord> devices;
    std::optional<PendingOp> pending;
};

std::string serialize_metadata(const Metadata& metadata);
Result<Metadata> parse_metadata(const std::string& text);

enum class Recovery {
    None,         // consistent
    RollForward,  // pool has the change: apply it to our record
    UndoCreate,   // pool never committed the create: delete the device id if it exists
    RedoDelete,   // pool never committed the delete: delete again, then commit
    Mismatch,     // the pool was changed behind berth's back: refuse to guess
};

// Pure decision from our record and the pool's transaction id.
Recovery plan_recovery(const Metadata& metadata, uint64_t pool_transaction_id);

// What reconcile() deletes, decided from our record alone: every staging device (an unfinished
// import or a view's snapshot), layers and snapshots the store does not know, and volumes it does
// not know or that never got their filesystem. `keys` are the records to delete, in map order;
// `report` names them by kind as the store knows them (chain id, snapshot id, volume name).
struct ReconcilePlan {
    std::vector<std::string> keys;
    ReconcileReport report;
};
ReconcilePlan plan_reconcile(const Metadata& metadata, const std::vector<std::string>& known_layers,
                             const std::vector<std::string>& known_snapshots);

}  // namespace berth::store::dmthin
