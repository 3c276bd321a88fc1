// berth run [--systemd] [--pinned=FILE] [-i] [-t] [--cgroup-parent=DIR] NAME|PATH.toml
// Runs a declared container in the foreground (the unit's ExecStart uses --systemd --pinned).
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "basic/fs-util.h"
#include "berth-config.h"
#include "command.h"
#include "config/config.h"
#include "runtime/container.h"
#include "runtime/handover.h"
#include "runtime/supervise-protocol.h"

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
    return load_container_declaration(a.target);
}

// The small supervisor to hand the running payload to (runtime/supervise-protocol.h):
// $BERTH_SUPERVISOR if set (empty: supervise in berth itself), else berth-supervise beside this
// executable (a build tree), else the installed one in libexecdir. "" when there is none.
std::string find_supervisor() {
    if (const char* env = std::getenv("BERTH_SUPERVISOR")) return env;
    if (auto dir = self_executable_dir(); !dir.empty())
        if (auto beside = executable_or_empty(dir + "berth-supervise"); !beside.empty()) return beside;
    return executable_or_empty(std::string(BERTH_LIBEXECDIR) + "/berth/berth-supervise");
}

// berth internal-teardown --status S --lock-fd L NAME: the last step of `berth run` after a
// hand-over, exec'd by berth-supervise in the same process. Hidden: not for people.
void register_teardown(CLI::App& app, CommandContext& ctx) {
    struct Args {
        int status = 0;
        int lock_fd = -1;
        std::string name;
    };
    auto args = std::make_shared<Args>();
    auto* sub = app.add_subcommand(runtime::kTeardownCommand, "");
    sub->group("");
    sub->add_option("--status", args->status)->required();
    sub->add_option("--lock-fd", args->lock_fd)->required();
    sub->add_option("container", args->name)->required();
    sub->callback([args, &ctx] {
        set_exit_status(ctx, "run", runtime::teardown_handed_over(args->name, args->status, args->lock_fd),
                        125);
    });
}

}  // namespace

void register_run(CLI::App& app, CommandContext& ctx) {
    auto args = std::make_shared<RunArgs>();
    auto* sub = app.add_subcommand("run", "Run a declared container in the foreground");
    sub->add_flag("--systemd", args->systemd,
                  "Run as berth@NAME.service's main process (delegated cgroup, sd_notify)");
    sub->add_option("--pinned", args->pinned,
                    "Load the declaration from this file (written by the generator)");
    sub->add_flag("-i,--interactive", args->interactive, "Keep stdin attached");
    sub->add_flag("-t,--tty", args->tty, "Allocate a pseudo-terminal");
    sub->add_option("--cgroup-parent", args->cgroup_parent,
                    "Parent cgroup directory when not under systemd (default: <cgroup2 mount>/berth)");
    sub->add_option("container", args->target, "Container NAME or path to NAME.toml")->required();
    sub->callback([args, &ctx] {
        if (!require_root(ctx, "run", "a container is made of namespaces, cgroups and mounts", 125)) return;
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
        opt.supervisor_exe = find_supervisor();
        if (!opt.supervisor_exe.empty()) opt.teardown_exe = "/proc/self/exe";
        std::string name = decl->name;
        opt.warn = [name](const std::string& message) {
            std::fprintf(stderr, "berth run: container '%s': %s\n", name.c_str(), message.c_str());
        };
        // 125, as docker/podman: the container could not be run (not the payload's status).
        set_exit_status(ctx, "run", runtime::run_container(*decl, opt), 125);
    });
    register_teardown(app, ctx);
}

}  // namespace berth::cli
