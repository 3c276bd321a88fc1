// berth start|stop|restart NAME...: the systemd jobs for berth@NAME.service, waited for like
// `systemctl` does (unless --no-block), so a container that fails to start fails the command with
// the unit's final state. A container run by `berth run` (by hand, or where systemd cannot be
// reached) has no job to stop: `stop` asks its supervisor, as Ctrl-C would (issue #15 item 7).
#include <poll.h>

#include <cstdio>
#include <nlohmann/json.hpp>

#include "basic/process-util.h"
#include "command.h"
#include "config/config.h"
#include "runtime/state.h"
#include "systemd/systemd1.h"

namespace berth::cli {

namespace {

struct Options {
    std::vector<std::string> names;
    bool no_block = false;
    bool json = false;
    double timeout = 300;
};

// SIGTERM to the supervisor of a `berth run`: it stops the payload with its stop signal and tears
// down; waited for (up to the timeout) unless no_block.
Result<> stop_supervisor(const runtime::RuntimeState& st, const Options& o) {
    UniqueFd pidfd = BERTH_TRY_CTX(pidfd_open(st.supervisor_pid), fmt::format("supervisor of '{}'", st.name));
    if (int r = pidfd_signal_raw(pidfd.get(), SIGTERM); r < 0)
        return fail(-r, "signal the supervisor of '{}' (pid {})", st.name, st.supervisor_pid);
    if (o.no_block) return {};
    struct pollfd p = {pidfd.get(), POLLIN, 0};
    int rc = ::poll(&p, 1, static_cast<int>(o.timeout * 1000));
    if (rc == 0)
        return fail(
            ETIMEDOUT,
            "'{}' still runs after {} s (its payload ignores SIGTERM? `berth stop` it again to kill it)",
            st.name, o.timeout);
    return {};
}

int run(const char* verb, const Options& o) {
    auto manager = systemd::Manager::open_system();
    const bool stop = std::string_view(verb) == "stop";
    if (!manager && !stop)
        return report_error(verb, fmt::format("cannot {} containers without systemd ({}); run one in the "
                                              "foreground with `berth run NAME`",
                                              verb, manager.error().what()));
    if (!manager)
        std::fprintf(stderr,
                     "berth stop: systemd not reachable (%s): stopping `berth run` supervisors only\n",
                     manager.error().what().c_str());
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
        Result<> r = !manager                            ? Result<>{}
                     : std::string_view(verb) == "start" ? manager->start(unit, jo)
                     : stop                              ? manager->stop(unit, jo)
                                                         : manager->restart(unit, jo);
        nlohmann::json j{{"name", name}, {"unit", unit}};
        // What the unit's job did not stop: a `berth run` outside the unit (its state record
        // outlives a systemd stop only when the unit did not run it).
        if (stop && r) {
            if (auto running = runtime::read_state(name)) {
                j["supervisor_pid"] = running->supervisor_pid;
                r = stop_supervisor(*running, o);
            } else if (!manager) {
                std::fprintf(stderr, "berth stop: '%s' is not running\n", name.c_str());
            }
        }
        j["ok"] = bool(r);
        if (!r) {
            rc = report_error(verb, r.error().what());
            j["error"] = r.error().what();
        }
        if (!manager) {
            out.push_back(std::move(j));
            continue;
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
