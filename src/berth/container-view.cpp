#include "container-view.h"

#include <time.h>

#include <algorithm>
#include <set>

#include "basic/time-util.h"
#include "bus/storage.h"
#include "config/config.h"
#include "runtime/paths.h"

namespace berth::cli {

std::string ContainerView::image() const {
    if (!declaration) return "-";
    if (!declaration->image.empty()) return declaration->image;
    if (!declaration->rootfs.empty()) return "rootfs:" + declaration->rootfs;
    return "-";
}

std::string ContainerView::image_id() const {
    if (running && !running->image_id.empty()) return running->image_id;
    return snapshot ? snapshot->image : std::string();
}

bool ContainerView::is_running() const { return (unit_state && unit_state->is_active()) || running; }

pid_t ContainerView::main_pid() const {
    if (unit_state && unit_state->main_pid) return static_cast<pid_t>(unit_state->main_pid);
    return running ? running->pid : 0;
}

std::string ContainerView::state() const {
    const bool invalid = declared && !declaration;
    // A unit that is not active says nothing about a `berth run` by hand: the runtime's record does.
    if (running && !(unit_state && unit_state->is_active()))
        return std::string("running (berth run)") + (invalid ? ", invalid" : "");
    if (!unit_state) return invalid ? "invalid" : "not running";
    const auto& u = *unit_state;
    if (u.load_state != "loaded") return u.load_state;  // not-found: declared after the last daemon-reload
    std::string s = u.active_state;
    if (u.active_state == "failed" && !u.result.empty() && u.result != "success")
        s += " (" + u.result + ")";
    else if (!u.sub_state.empty() && u.sub_state != u.active_state && u.sub_state != "dead")
        s += " (" + u.sub_state + ")";
    if (declared && !declaration) s += ", invalid";
    return s;
}

std::string ContainerView::address() const {
    if (!declaration) return "-";
    const auto& n = declaration->network;
    switch (n.mode) {
        case config::NetworkMode::Host:
            return "host";
        case config::NetworkMode::None:
            return "-";
        default:
            return n.address.empty() ? "-" : n.address;
    }
}

uint64_t ContainerView::since_us() const {
    if (running && !(unit_state && unit_state->is_active())) return running->started_at_usec;
    if (!unit_state) return 0;
    return unit_state->state_change_us;
}

nlohmann::json ContainerView::to_json() const {
    nlohmann::json j;
    j["name"] = name;
    j["unit"] = unit;
    j["image"] = image();
    j["image_id"] = image_id().empty() ? nlohmann::json(nullptr) : nlohmann::json(image_id());
    j["state"] = state();
    j["address"] = address();
    j["declared"] = declared;
    j["valid"] = declaration.has_value();
    if (!declaration_error.empty()) j["declaration_error"] = declaration_error;
    if (declaration) {
        j["declaration_path"] = declaration->source_path;
        j["dropins"] = declaration->dropin_paths;
        j["ephemeral"] = declaration->ephemeral;
    }
    if (unit_state) {
        const auto& u = *unit_state;
        j["load_state"] = u.load_state;
        j["active_state"] = u.active_state;
        j["sub_state"] = u.sub_state;
        j["result"] = u.result;
        j["main_pid"] = u.main_pid;
        j["control_group"] = u.control_group;
        j["since_usec"] = u.state_change_us;
        j["active_enter_usec"] = u.active_enter_us;
        j["n_restarts"] = u.n_restarts;
        j["fragment_path"] = u.fragment_path;
        if (u.memory_max != UINT64_MAX)
            j["memory_max"] = u.memory_max;
        else
            j["memory_max"] = nullptr;
    } else if (!unit_error.empty()) {
        j["unit_error"] = unit_error;
    }
    if (snapshot)
        j["snapshot"] = bus::to_json(*snapshot);
    else
        j["snapshot"] = nullptr;
    if (running)
        j["running"] = {{"pid", running->pid},
                        {"supervisor_pid", running->supervisor_pid},
                        {"cgroup", running->cgroup},
                        {"started_at_usec", running->started_at_usec}};
    else
        j["running"] = nullptr;
    j["health"] = health();
    j["health_failing_streak"] =
        health_status ? nlohmann::json(health_status->failing_streak) : nlohmann::json(nullptr);
    j["health_since_usec"] =
        health_status ? nlohmann::json(health_status->changed_at_usec) : nlohmann::json(nullptr);
    j["probes"] = nlohmann::json::array();
    for (const auto& p : probes)
        j["probes"].push_back({{"at_usec", p.at_usec},
                               {"exit_status", p.exit_status},
                               {"timed_out", p.exit_status < 0},
                               {"duration_us", p.duration_us},
                               {"output", p.output}});
    return j;
}

std::string ContainerView::health() const {
    if (!running || !running->health) return "-";
    return health_status ? health_status->status : "starting";
}

ViewSources open_sources(bool with_storage) {
    ViewSources s;
    // A system bus without systemd on it (a container with its own dbus) is no systemd either:
    // asked once here, so the view says which one it shows.
    auto m = systemd::Manager::open_system();
    Result<std::vector<std::string>> asked = m ? m->list_units({"berth@*.service"}) : fail(m.error());
    if (asked) {
        s.manager.emplace(std::move(*m));
        s.loaded_units = std::move(*asked);
    } else
        s.manager_error = asked.error().what();
    if (with_storage) {
        if (auto l = list_snapshots())
            s.snapshots = std::move(*l);
        else
            s.storage_error = l.error().what();
    }
    return s;
}

std::string runtime_view_notice(const ViewSources& s) {
    if (s.manager) return "";
    return fmt::format(
        "systemd not reachable ({}): showing berth's own runtime state ({}); units and their "
        "journal are not shown",
        s.manager_error, runtime::containers_run_dir());
}

namespace {

// `unit` is the unit's state as systemd gave it (gather_all asks for every unit at once).
void fill(ViewSources& s, ContainerView& v, Result<systemd::UnitState> unit) {
    if (s.manager) {
        if (unit)
            v.unit_state = std::move(*unit);
        else
            v.unit_error = unit.error().what();
    } else {
        v.unit_error = s.manager_error;
    }
    for (auto& c : s.snapshots)
        if (c.name == v.name) v.snapshot = c;
    if (auto r = runtime::read_state(v.name)) v.running = std::move(*r);
    if (v.running && v.running->health) {
        v.health_status = runtime::read_health_status(v.name);
        v.probes = runtime::read_probe_history(v.name);
    }
}

}  // namespace

std::vector<ContainerView> gather_all(ViewSources& s) {
    std::map<std::string, ContainerView> views;
    auto set = config::load_all(config::SearchPaths::system());
    for (auto& [name, result] : set.by_name) {
        ContainerView v;
        v.name = name;
        v.declared = true;
        if (result)
            v.declaration = std::move(*result);
        else
            v.declaration_error = result.error().what();
        views.emplace(name, std::move(v));
    }
    const std::set<std::string> loaded(s.loaded_units.begin(), s.loaded_units.end());
    for (auto& u : loaded) {
        auto name = systemd::container_name_of_unit(u);
        if (!name.empty() && !views.count(name)) views.emplace(name, ContainerView{.name = name});
    }
    for (auto& name : runtime::list_running())
        if (!views.count(name)) views.emplace(name, ContainerView{.name = name});
    // Only the loaded units are asked about (systemd::unloaded_unit_state says why).
    std::vector<std::string> asked;
    for (auto& [name, v] : views)
        if (loaded.count(v.unit = systemd::container_unit(name))) asked.push_back(v.unit);
    auto states = s.manager ? s.manager->unit_states(asked) : std::vector<Result<systemd::UnitState>>{};
    std::vector<ContainerView> out;
    size_t i = 0;
    for (auto& [name, v] : views) {
        if (!s.manager)
            fill(s, v, fail(EHOSTUNREACH, "no systemd"));
        else if (loaded.count(v.unit))
            fill(s, v, std::move(states[i++]));
        else
            fill(s, v, systemd::unloaded_unit_state(v.unit));
        out.push_back(std::move(v));
    }
    return out;
}

Result<ContainerView> gather_one(ViewSources& s, const std::string& name) {
    if (!config::is_valid_name(name)) return fail(EINVAL, "invalid container name '{}'", name);
    ContainerView v;
    v.name = name;
    auto decl = config::load_declaration(name, config::SearchPaths::system());
    if (decl) {
        v.declared = true;
        v.declaration = std::move(*decl);
    } else if (decl.error().code != ENOENT) {
        v.declared = true;
        v.declaration_error = decl.error().what();
    }
    v.unit = systemd::container_unit(name);
    fill(s, v, s.manager ? s.manager->unit_state(v.unit) : fail(EHOSTUNREACH, "no systemd"));
    if (!v.declared && !v.running && (!v.unit_state || v.unit_state->load_state == "not-found"))
        return fail(ENOENT, "no container '{}': no {}.toml in the search path, no unit {} and none running",
                    name, name, v.unit);
    return v;
}

}  // namespace berth::cli
