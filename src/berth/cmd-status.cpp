// berth status NAME [--json] [-n LINES]: one container in full — unit state from systemd, the
// supervisor/payload cgroup tree, its snapshot in the store, the merged declaration and the last
// journal lines. Exit status as `systemctl status`: 0 active, 3 not active, 1 error, 4 no such
// container.
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdio>

#include "auto-update-pins.h"
#include "basic/cgroup-util.h"
#include "basic/string-util.h"
#include "command.h"
#include "config/config.h"
#include "container-view.h"
#include "systemd/cgroup-tree.h"
#include "systemd/journal.h"

namespace berth::cli {

namespace {

std::string human_bytes(uint64_t b) {
    const char* units[] = {"B", "K", "M", "G", "T"};
    double v = double(b);
    int i = 0;
    while (v >= 1024 && i < 4) v /= 1024, ++i;
    return i == 0 ? fmt::format("{}B", b) : fmt::format("{:.1f}{}", v, units[i]);
}

}  // namespace

void register_status(CLI::App& app, CommandContext& ctx) {
    struct Options {
        std::string name;
        bool json = false;
        size_t lines = 10;
    };
    auto o = std::make_shared<Options>();
    auto* sub = app.add_subcommand(
        "status", "Show a container's state, cgroup tree, snapshot, declaration and recent logs");
    sub->add_option("NAME", o->name, "container NAME or path to NAME.toml")->required();
    sub->add_flag("--json", o->json, "print a JSON object");
    sub->add_option("-n,--lines", o->lines, "journal lines to show (default 10)");
    sub->callback([&ctx, o] {
        auto sources = open_sources(true);
        if (auto notice = runtime_view_notice(sources); !notice.empty())
            std::fprintf(stderr, "berth status: %s\n", notice.c_str());
        auto view = gather_one(sources, container_name(o->name));
        if (!view) {
            report_error("status", view.error().what());
            ctx.exit_code = 4;
            return;
        }
        const auto& v = *view;
        std::vector<std::string> tree;
        nlohmann::json tree_json = nullptr;
        auto cgroup_root = cgroup2_mount_point();
        if (v.unit_state && !v.unit_state->control_group.empty() && cgroup_root) {
            if (auto t = systemd::read_cgroup_tree(*cgroup_root, v.unit_state->control_group)) {
                tree = systemd::render_cgroup_tree(*t);
                std::function<nlohmann::json(const systemd::CgroupNode&)> to_j =
                    [&](const systemd::CgroupNode& n) {
                        nlohmann::json j{{"path", n.path}, {"pids", n.pids}, {"commands", n.commands}};
                        j["children"] = nlohmann::json::array();
                        for (auto& c : n.children) j["children"].push_back(to_j(c));
                        return j;
                    };
                tree_json = to_j(*t);
            }
        }
        std::vector<systemd::JournalEntry> log;
        if (o->lines > 0)
            if (auto j = systemd::UnitJournal::open(v.unit, {.lines = o->lines}))
                if (auto e = j->tail()) log = std::move(*e);
        std::string toml = v.declaration ? config::to_toml(*v.declaration) : "";

        bool active = v.is_running();
        ctx.exit_code = active ? 0 : 3;
        if (o->json) {
            auto j = v.to_json();
            if (v.declaration && v.snapshot)
                if (auto storage = bus::open_storage()) {
                    if (auto note = image_change_note(*v.declaration, *v.snapshot, **storage); !note.empty())
                        j["image_change"] = note;
                    if (v.declaration->auto_update != registry::AutoUpdateMode::Off)
                        j["auto_update"] = {
                            {"mode", registry::auto_update_mode_name(v.declaration->auto_update)},
                            {"running", v.snapshot->image},
                            {"previous", auto_update_previous(**storage, v.name)}};
                }
            j["cgroup"] = tree_json;
            j["declaration"] = v.declaration ? nlohmann::json(toml) : nlohmann::json(nullptr);
            if (!sources.storage_error.empty()) j["storage_error"] = sources.storage_error;
            j["log"] = nlohmann::json::array();
            for (auto& e : log)
                j["log"].push_back({{"realtime_usec", e.realtime_us},
                                    {"message", e.message},
                                    {"identifier", e.identifier},
                                    {"pid", e.pid}});
            std::printf("%s\n", j.dump(2).c_str());
            return;
        }
        uint64_t now = now_usec(CLOCK_REALTIME);
        std::printf("%s %s - %s\n", active ? "●" : (v.state().rfind("failed", 0) == 0 ? "×" : "○"),
                    v.name.c_str(),
                    v.unit_state && !v.unit_state->description.empty() ? v.unit_state->description.c_str()
                                                                       : v.unit.c_str());
        auto row = [](const char* key, const std::string& value) {
            std::printf("%12s: %s\n", key, value.c_str());
        };
        if (v.declaration) {
            std::string decl = v.declaration->source_path;
            if (!v.declaration->dropin_paths.empty())
                decl += fmt::format(" (+{} drop-in{})", v.declaration->dropin_paths.size(),
                                    v.declaration->dropin_paths.size() == 1 ? "" : "s");
            row("Declaration", decl);
        } else if (!v.declaration_error.empty()) {
            row("Declaration", "INVALID");
            for (auto& line : split(v.declaration_error, '\n')) std::printf("%14s%s\n", "", line.c_str());
        } else {
            row("Declaration", "none (the unit outlives a removed declaration until daemon-reload)");
        }
        row("Image", v.image());
        if (auto id = v.image_id(); !id.empty()) row("Image ID", id);
        if (v.unit_state) {
            const auto& u = *v.unit_state;
            row("Unit", v.unit + (u.fragment_path.empty() ? "" : " (" + u.fragment_path + ")"));
            row("State",
                fmt::format("{} since {}; {}", v.state(), systemd::format_timestamp(u.state_change_us),
                            systemd::format_age(u.state_change_us, now)));
            if (u.main_pid) row("Main PID", std::to_string(u.main_pid));
            if (u.n_restarts) row("Restarts", std::to_string(u.n_restarts));
            if (u.memory_max != UINT64_MAX) row("MemoryMax", human_bytes(u.memory_max));
        } else {
            row("Unit", v.unit + ": " + v.unit_error);
            row("State", v.state());
        }
        if (v.running && !(v.unit_state && v.unit_state->is_active())) {
            row("Running", fmt::format("by `berth run` since {}; {}",
                                       systemd::format_timestamp(v.running->started_at_usec),
                                       systemd::format_age(v.running->started_at_usec, now)));
            row("Main PID", fmt::format("{} (supervisor {})", v.running->pid, v.running->supervisor_pid));
            row("Cgroup", v.running->cgroup);
        }
        row("Address", v.address());
        if (v.health() != "-") {
            std::string since = v.health_status && v.health_status->changed_at_usec
                                    ? "since " + systemd::format_timestamp(v.health_status->changed_at_usec)
                                    : "";
            row("Health",
                v.health() + (since.empty() ? "" : " " + since) +
                    (v.health_status && v.health_status->failing_streak
                         ? fmt::format(", {} failing probe(s) in a row", v.health_status->failing_streak)
                         : ""));
            for (auto it = v.probes.rbegin(); it != v.probes.rend(); ++it) {
                std::string out = it->output;
                std::replace(out.begin(), out.end(), '\n', ' ');
                if (out.size() > 60) out = "..." + out.substr(out.size() - 57);
                std::printf(
                    "%14s%s  %s  %.1f ms  %s\n", "", systemd::format_timestamp(it->at_usec).c_str(),
                    it->exit_status < 0 ? "timed out" : fmt::format("exit {}", it->exit_status).c_str(),
                    static_cast<double>(it->duration_us) / 1000, out.c_str());
            }
        }
        if (v.snapshot) {
            const auto& s = *v.snapshot;
            row("Snapshot",
                fmt::format("{} ({}), from image {}{}", s.name, s.ephemeral ? "ephemeral" : "persistent",
                            s.image.empty() ? "-" : s.image.substr(0, 19),
                            s.size ? ", " + human_bytes(s.size) + " written" : ""));
            if (v.declaration)
                if (auto storage = bus::open_storage()) {
                    if (auto note = image_change_note(*v.declaration, s, **storage); !note.empty())
                        row("Image change", note);
                    if (v.declaration->auto_update != registry::AutoUpdateMode::Off) {
                        auto previous = auto_update_previous(**storage, v.name);
                        row("Auto-update",
                            fmt::format("{}; runs {}; previous {}",
                                        registry::auto_update_mode_name(v.declaration->auto_update),
                                        s.image.empty() ? "-" : s.image,
                                        previous.empty() ? "none" : join(previous, ", ")));
                    }
                }
        } else if (!sources.storage_error.empty()) {
            row("Snapshot", "unknown (store unreachable: " + sources.storage_error + ")");
        } else {
            row("Snapshot",
                v.declaration && !v.declaration->rootfs.empty() ? "none (rootfs declaration)" : "none yet");
        }
        for (auto& l : tree) std::printf("%6s%s\n", "", l.c_str());
        if (!toml.empty()) {
            std::printf("\nMerged declaration:\n");
            for (auto& l : split(toml, '\n')) std::printf("    %s\n", l.c_str());
        }
        if (!log.empty()) {
            char host[HOST_NAME_MAX + 1] = "";
            gethostname(host, sizeof host);
            std::printf("\n");
            for (auto& e : log) std::printf("%s\n", systemd::format_short(e, host).c_str());
        }
    });
}

}  // namespace berth::cli
