// What `berth list` and `berth status` show about a container: its declaration (the config
// library), its unit (systemd's D-Bus API, org.freedesktop.systemd1), its snapshot (the store,
// through berthd or embedded) and the runtime's own record of a running supervisor (the state
// files in /run/berth/containers: also `berth run` by hand, and all there is without systemd)
// joined by NAME. Each source may be missing or fail on its own; the
// view says so instead of failing as a whole, because "the declaration is invalid" or "berthd is
// not running" is exactly what a user runs `berth status` to find out.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "basic/result.h"
#include "basic/string-util.h"  // render_table
#include "basic/time-util.h"
#include "bus/storage.h"
#include "config/declaration.h"
#include "runtime/state.h"
#include "store/types.h"
#include "systemd/systemd1.h"

namespace berth::cli {

// The store's record of a container's snapshot (org.berth.Storage1 ListContainers): the bus's type.
using SnapshotView = store::ContainerSnapshot;

// The snapshots berthd knows, asked over the system bus only: the embedded store would take the
// store lock just to print a listing.
Result<std::vector<SnapshotView>> list_snapshots();

struct ContainerView {
    std::string name;
    std::string unit;                                // berth@NAME.service
    std::optional<config::Declaration> declaration;  // valid declaration
    std::string declaration_error;                   // invalid declaration: the validation error
    bool declared = false;                           // a NAME.toml exists (valid or not)
    std::optional<systemd::UnitState> unit_state;
    std::string unit_error;
    std::optional<SnapshotView> snapshot;  // the store's record of its snapshot
    // A live supervisor's state record (runtime/state.h), under systemd or by `berth run`.
    std::optional<runtime::RuntimeState> running;
    // Its health check's state, published by the supervisor; the last probes (`berth status`).
    std::optional<runtime::HealthStatus> health_status;
    std::vector<runtime::ProbeRecord> probes;

    std::string image() const;  // image reference or "rootfs:DIR"; "-" when unknown
    // The image id ("sha256:...") the container runs: what its start resolved the reference to
    // (the runtime's record), else what its snapshot was made from; "" when unknown.
    std::string image_id() const;
    // "active (running)", "failed (exit-code)", "invalid", "not-found"; from the runtime's record
    // when the unit is not active: "running (berth run)"; without either: "not running".
    std::string state() const;
    std::string address() const;  // network address, "host", or "-"
    uint64_t since_us() const;    // when the current state was entered (0 = unknown)
    pid_t main_pid() const;       // the unit's main pid, else the running payload's; 0 = none
    bool is_running() const;      // the unit is active, or a supervisor runs it
    // "healthy", "unhealthy", "starting"; "-" without a health check or when not running.
    std::string health() const;
    nlohmann::json to_json() const;
};

struct ViewSources {
    std::optional<systemd::Manager> manager;
    std::string manager_error;
    std::string storage_error;
    std::vector<SnapshotView> snapshots;    // loaded once
    std::vector<std::string> loaded_units;  // the berth@*.service units PID 1 has loaded (one ListUnits)
};

// Connects to systemd and the store; failures are kept in the *_error fields.
ViewSources open_sources(bool with_storage);
// Said once on stderr when systemd cannot be reached and the runtime's own state is shown.
std::string runtime_view_notice(const ViewSources& sources);

// Every declared container plus every loaded berth@*.service unit, sorted by name.
std::vector<ContainerView> gather_all(ViewSources& sources);
// One container (declared, with a loaded unit or running); fails when none of them.
Result<ContainerView> gather_one(ViewSources& sources, const std::string& name);

// `berth plan` / `berth status` (issue #15 item 1): when the image `decl` names now resolves (in
// the store reached through `storage`) to another image id than the one its persistent layer
// was made from, "image changed: ... the writable layer will be recreated ..." or "... is kept on
// the old image ID ..." (by decl.on_image_change); "" when nothing changed or nothing applies.
std::string image_change_note(const config::Declaration& decl, const SnapshotView& snapshot,
                              bus::Storage& storage);

}  // namespace berth::cli
