// berth health NAME [--json]: runs the container's health check once, now, and says whether it
// passed (exit status 0) or failed (1); the probe joins the history `berth status` shows but does
// not move the supervisor's state machine (the supervisor's own probes do).
// berth internal-health-probe --timeout-ms T NAME: the same probe for the supervisor
// (runtime/health-supervise.h), which reads its verdict from stdout. Hidden: not for people.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "command.h"
#include "runtime/health-probe.h"

namespace berth::cli {

namespace {

void register_internal_probe(CLI::App& app, CommandContext& ctx) {
    struct Args {
        uint64_t timeout_ms = 0;
        std::string name;
    };
    auto args = std::make_shared<Args>();
    auto* sub = app.add_subcommand("internal-health-probe", "");
    sub->group("");
    sub->add_option("--timeout-ms", args->timeout_ms)->required();
    sub->add_option("container", args->name)->required();
    sub->callback([args, &ctx] {
        auto r = runtime::run_health_probe(args->name, args->timeout_ms);
        if (r)
            std::printf("%d %llu\n%s", r->exit_status, static_cast<unsigned long long>(r->duration_us),
                        r->output.c_str());
        else
            std::printf("125 0\n%s", r.error().what().c_str());
        ctx.exit_code = 0;
    });
}

}  // namespace

void register_health(CLI::App& app, CommandContext& ctx) {
    struct Args {
        std::string name;
        bool json = false;
    };
    auto args = std::make_shared<Args>();
    auto* sub = app.add_subcommand("health", "Run a running container's health check now");
    sub->add_flag("--json", args->json, "print a JSON object");
    sub->add_option("container", args->name, "Container NAME")->required();
    sub->callback([args, &ctx] {
        if (!require_root(ctx, "health", "the probe enters the container's namespaces", 125)) return;
        const std::string name = container_name(args->name);
        auto r = runtime::run_health_probe(name, 0);
        if (!r) {
            ctx.exit_code = report_error("health", r.error().what());
            return;
        }
        const bool passed = r->exit_status == 0;
        if (args->json) {
            nlohmann::json j{{"name", name},
                             {"passed", passed},
                             {"exit_status", r->exit_status},
                             {"timed_out", r->exit_status < 0},
                             {"duration_us", r->duration_us},
                             {"output", r->output}};
            std::printf("%s\n", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
        } else {
            if (r->exit_status < 0)
                std::printf("%s: unhealthy: the probe did not finish within its timeout (%.1f ms)\n",
                            name.c_str(), static_cast<double>(r->duration_us) / 1000);
            else
                std::printf("%s: %s: the probe exited with status %d after %.1f ms\n", name.c_str(),
                            passed ? "healthy" : "unhealthy", r->exit_status,
                            static_cast<double>(r->duration_us) / 1000);
            if (!r->output.empty()) std::fputs(r->output.c_str(), stdout);
            if (!r->output.empty() && r->output.back() != '\n') std::fputc('\n', stdout);
        }
        ctx.exit_code = passed ? 0 : 1;
    });
    register_internal_probe(app, ctx);
}

}  // namespace berth::cli
