// berth start|stop|restart NAME...: the systemd jobs for berth@NAME.service, waited for like
// `systemctl` does (unless --no-block), so a container that fails to start fails the command with
// the unit's final state.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "command.h"
#include "config/config.h"
#include "systemd/systemd1.h"

namespace berth::cli {

namespace {

struct Options {
    std::vector<std::string> names;
    bool no_block = false;
    bool json = false;
    double timeout = 300;
};

int run(const char* verb, const Options& o) {
    auto manager = systemd::Manager::open_system();
    if (!manager) return report_error(verb, "cannot reach systemd: " + manager.error().what());
    systemd::JobOptions jo;
    jo.wait = !o.no_block;
    jo.timeout_us = uint64_t(o.timeout * 1e6);
    int rc = 0;
    nlohmann::json out = nlohmann::json::array();
    for (auto& arg : o.names) {
        std::string name = container_name(arg);
        if (!config::is_valid_name(name)) {
            rc = report_error(verb, fmt::format("invalid container name '{}'", name));
            continue;
        }
        auto unit = systemd::container_unit(name);
        Result<> r = std::string_view(verb) == "start"  ? manager->start(unit, jo)
                     : std::string_view(verb) == "stop" ? manager->stop(unit, jo)
                                                        : manager->restart(unit, jo);
        nlohmann::json j{{"name", name}, {"unit", unit}, {"ok", bool(r)}};
        if (!r) {
            rc = report_error(verb, r.error().what());
            j["error"] = r.error().what();
        }
        if (auto st = manager->unit_state(unit)) {
            j["active_state"] = st->active_state;
            j["sub_state"] = st->sub_state;
            j["main_pid"] = st->main_pid;
        }
        out.push_back(std::move(j));
    }
    if (o.json) std::printf("%s\n", out.dump(2).c_str());
    return rc;
}

}  // namespace

void register_unit_control(CLI::App& app, CommandContext& ctx) {
    struct Verb {
        const char* name;
        const char* help;
    };
    for (Verb v : {Verb{"start", "Start containers (systemctl start berth@NAME)"},
                   Verb{"stop", "Stop containers (systemctl stop berth@NAME)"},
                   Verb{"restart", "Restart containers (systemctl restart berth@NAME)"}}) {
        auto o = std::make_shared<Options>();
        auto* sub = app.add_subcommand(v.name, v.help);
        sub->add_option("NAME", o->names, "container NAMEs or paths to NAME.toml")->required();
        sub->add_flag("--no-block", o->no_block, "do not wait for the job to finish");
        sub->add_option("--timeout", o->timeout, "seconds to wait for the job (default 300)");
        sub->add_flag("--json", o->json, "print the outcome as JSON");
        const char* verb = v.name;
        sub->callback([&ctx, o, verb] { ctx.exit_code = run(verb, *o); });
    }
}

}  // namespace berth::cli
