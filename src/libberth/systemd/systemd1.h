// A small client of systemd's manager API (org.freedesktop.systemd1) over sd-bus: what `berth
// list|status|start|stop|restart` need and nothing more. Every call is synchronous; the job calls
// (start/stop/restart) wait for systemd's JobRemoved signal, the way `systemctl` does without
// --no-block, so their result says whether the unit actually reached its target state.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "basic/result.h"

struct sd_bus;

namespace berth::systemd {

// berth@NAME.service, the unit the generator writes for container NAME.
std::string container_unit(std::string_view container_name);
// The NAME of berth@NAME.service, or empty when `unit` is not a berth container unit.
std::string container_name_of_unit(std::string_view unit);

struct UnitState {
    std::string id;  // "berth@web.service"
    std::string description;
    std::string load_state;        // loaded | not-found | bad-setting | error | masked
    std::string active_state;      // active | reloading | inactive | failed | activating | deactivating
    std::string sub_state;         // running | dead | failed | auto-restart | start | stop-sigterm ...
    std::string result;            // Service.Result: success | exit-code | signal | timeout ...
    std::string fragment_path;     // the unit file (generator output dir for berth units)
    std::string source_path;       // SourcePath=, the TOML declaration
    std::string control_group;     // "/berth.slice/berth@web.service" (relative to the cgroup2 root)
    uint64_t active_enter_us = 0;  // CLOCK_REALTIME usec of the last change to "active"; 0 = never
    uint64_t state_change_us = 0;  // CLOCK_REALTIME usec of the last state change
    uint32_t main_pid = 0;
    uint32_t n_restarts = 0;
    uint64_t memory_max = UINT64_MAX;  // Service.MemoryMax (UINT64_MAX = infinity)
    int exec_main_status = 0;

    bool is_active() const { return active_state == "active" || active_state == "reloading"; }
};

// The state of a system unit that is not loaded in PID 1, read from the unit search path instead of
// asking systemd: systemd keeps an inactive unit that nothing references only until its next garbage
// collection, and asking for the properties of an unloaded unit makes PID 1 load it from disk and
// collect it again (20 ms of PID 1's CPU per unit at 100 units, minutes at 1000: bench/fleet-scale.sh).
// Unloaded means inactive (dead); load_state is "masked" (a link to /dev/null in /etc or /run),
// "loaded" (a file or a template file for it, fragment_path says which) or "not-found" (e.g. declared
// after the last daemon-reload, before the generator wrote its unit). `root` prefixes every path (tests).
UnitState unloaded_unit_state(const std::string& unit, const std::string& root = "");

enum class JobMode { Replace, Fail };

struct JobOptions {
    JobMode mode = JobMode::Replace;
    bool wait = true;  // wait for JobRemoved (like systemctl without --no-block)
    uint64_t timeout_us = 5 * 60 * 1000000ULL;
};

class Manager {
public:
    // The system bus (DBUS_SYSTEM_BUS_ADDRESS honoured, as sd-bus does).
    static Result<Manager> open_system();
    // systemd's private socket (/run/systemd/private): works before dbus is up, root only.
    static Result<Manager> open_private();
    // A caller-provided address (tests).
    static Result<Manager> open_address(const std::string& address);

    Manager(Manager&&) noexcept;
    Manager& operator=(Manager&&) noexcept;
    ~Manager();

    // Loads the unit if needed (a unit with no file reports load_state "not-found").
    Result<UnitState> unit_state(const std::string& unit);
    // unit_state() of many units with every request queued before replies are read (a window of
    // kUnitStatesInFlight, under dbus-daemon's limit on a connection's pending replies): `berth
    // list` of 1000 containers waits for ~30 round trips to PID 1, not 14000. One result per unit.
    std::vector<Result<UnitState>> unit_states(const std::vector<std::string>& units);
    static constexpr size_t kUnitStatesInFlight = 64;
    // Names of the loaded units matching the glob patterns (ListUnitsByPatterns).
    Result<std::vector<std::string>> list_units(const std::vector<std::string>& patterns);

    // Start/Stop/RestartUnit. With wait, fails unless the job's result is "done" and names the
    // unit's final state in the error (e.g. "start 'berth@x.service': job failed (unit failed)").
    Result<> start(const std::string& unit, const JobOptions& options = {});
    Result<> stop(const std::string& unit, const JobOptions& options = {});
    Result<> restart(const std::string& unit, const JobOptions& options = {});

    sd_bus* bus() const { return bus_; }

private:
    explicit Manager(sd_bus* bus) : bus_(bus) {}
    Result<> run_job(const char* method, const std::string& unit, const JobOptions& options);
    sd_bus* bus_ = nullptr;
};

// Human form of a realtime timestamp, in the local time zone: "2024-05-01 12:00:03 UTC".
std::string format_timestamp(uint64_t realtime_us);
// "3s ago", "5min ago", "2h 3min ago", "4 days ago"; "-" for 0.
std::string format_age(uint64_t realtime_us, uint64_t now_us);

}  // namespace berth::systemd
