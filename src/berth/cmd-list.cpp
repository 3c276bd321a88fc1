// berth list [--json]: every container — declared in the search path, with a loaded
// berth@NAME.service or running under a supervisor — with its image and image id, unit state (from systemd
// over D-Bus), since when, main pid, address and health (the supervisor's health check). Storage state (the
// snapshot) is joined in from berthd for --json. Without systemd (a container, a chroot, early boot) the
// runtime's own state files are all there is: shown, and said so, rather than failing (issue #15 item 7).
#include <cstdio>

#include "command.h"
#include "container-view.h"

namespace berth::cli {

void register_list(CLI::App& app, CommandContext& ctx) {
    auto json = std::make_shared<bool>(false);
    auto* sub = app.add_subcommand("list", "List declared containers with their unit and storage state");
    sub->add_flag("--json", *json, "print a JSON array");
    sub->callback([&ctx, json] {
        auto sources = open_sources(*json);
        if (auto notice = runtime_view_notice(sources); !notice.empty())
            std::fprintf(stderr, "berth list: %s\n", notice.c_str());
        auto views = gather_all(sources);
        if (*json) {
            nlohmann::json out = nlohmann::json::array();
            for (auto& v : views) out.push_back(v.to_json());
            std::printf("%s\n", out.dump(2).c_str());
            return;
        }
        uint64_t now = now_usec(CLOCK_REALTIME);
        std::vector<std::vector<std::string>> rows;
        for (auto& v : views) {
            rows.push_back({v.name, v.image(), v.state(), systemd::format_age(v.since_us(), now),
                            v.main_pid() ? std::to_string(v.main_pid()) : "-", v.address(), v.health(),
                            v.image_id().empty() ? "-" : v.image_id().substr(0, 19)});
        }
        std::fputs(render_table(
                       {"NAME", "IMAGE", "STATE", "SINCE", "MAIN PID", "ADDRESS", "HEALTH", "IMAGE ID"}, rows)
                       .c_str(),
                   stdout);
        if (views.empty()) std::fprintf(stderr, "No containers declared (see berth.toml(5)).\n");
    });
}

}  // namespace berth::cli
