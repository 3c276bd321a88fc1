// berth run [--systemd] [--pinned=FILE] [-i] [-t] [--cgroup-parent=DIR] NAME|PATH.toml
// Runs a declared container in the foreground (the unit's ExecStart uses --systemd --pinned).
#include <cstdio>

#include "command.h"
#include "config/config.h"
#include "runtime/container.h"

namespace berth::cli {

namespace {

struct RunArgs {
    bool systemd = false;
    std::string pinned;
    bool interactive = false;
    bool tty = false;
    std::string cgroup_parent;
    std::string target;
};

Result<config::Declaration> load(const RunArgs& a) {
    if (!a.pinned.empty()) return config::load_declaration_file(a.pinned, a.target);
    if (a.target.size() > 5 && a.target.substr(a.target.size() - 5) == ".toml")
        return config::load_declaration_file(a.target);
    return config::load_declaration(a.target, config::SearchPaths::system());
}

}  // namespace

void register_run(CLI::App& app, CommandContext& ctx) {
    auto args = std::make_shared<RunArgs>();
    auto* sub = app.add_subcommand("run", "Run a declared container in the foreground");
    sub->add_flag("--systemd", args->systemd, "Run as berth@NAME.service's main process (delegated cgroup, sd_notify)");
    sub->add_option("--pinned", args->pinned, "Load the declaration from this file (written by the generator)");
    sub->add_flag("-i,--interactive", args->interactive, "Keep stdin attached");
    sub->add_flag("-t,--tty", args->tty, "Allocate a pseudo-terminal");
    sub->add_option("--cgroup-parent", args->cgroup_parent,
                    "Parent cgroup directory when not under systemd (default: <cgroup2 mount>/berth)");
    sub->add_option("container", args->target, "Container NAME or path to NAME.toml")->required();
    sub->callback([args, &ctx] {
        auto decl = load(*args);
        if (!decl) {
            ctx.exit_code = report_error("run", decl.error().what());
            return;
        }
        runtime::RunOptions opt;
        opt.systemd = args->systemd;
        opt.interactive = args->interactive || args->tty;
        opt.tty = args->tty;
        opt.cgroup_parent = args->cgroup_parent;
        std::string name = decl->name;
        opt.warn = [name](const std::string& message) {
            std::fprintf(stderr, "berth run: container '%s': %s\n", name.c_str(), message.c_str());
        };
        auto status = runtime::run_container(*decl, opt);
        if (!status) {
            // 125, as docker/podman: the container could not be run (not the payload's status).
            report_error("run", status.error().what());
            ctx.exit_code = 125;
            return;
        }
        ctx.exit_code = *status;
    });
}

}  // namespace berth::cli
