// Every `berth` subcommand lives in its own cmd-NAME.cpp and registers itself with CLI11 through
// one register_* function listed here. A subcommand's callback stores its exit status in
// CommandContext::exit_code; errors are printed once, by the subcommand, as
// "berth NAME: <error.what()>".
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "basic/result.h"
#include "config/declaration.h"

namespace berth::cli {

struct CommandContext {
    int exit_code = 0;
};

// Prints "berth: <message>" to stderr and returns 1 (for `return ctx.exit_code = fail_with(...)`).
int report_error(std::string_view command, std::string_view message);
// For a command that runs a payload (run, exec, the teardown): its status, or, when it could not
// be run, the error reported and `failed` (125 or 126, as docker and podman).
void set_exit_status(CommandContext& ctx, std::string_view command, const Result<int>& status, int failed);

// run and exec make namespaces, cgroups and mounts, which only root may: as another user, says
// so (rather than the first EACCES deep in the start, issue #15) and returns false with
// ctx.exit_code = failed.
bool require_root(CommandContext& ctx, std::string_view command, std::string_view why, int failed);

// A container argument is a NAME (looked up in the search path) or a path to a NAME.toml: an
// argument with a '/' or ending in ".toml" is a path, as for `berth run` (a NAME has neither).
bool is_declaration_path(std::string_view arg);
// The container's NAME: the argument itself, or the stem of the NAME.toml it points to.
std::string container_name(std::string_view arg);
// The declaration: from the search path for a NAME, from the file (and its .d/ drop-ins) for a path.
Result<config::Declaration> load_container_declaration(const std::string& arg);

void register_validate(CLI::App& app, CommandContext& ctx);
void register_plan(CLI::App& app, CommandContext& ctx);
void register_cat(CLI::App& app, CommandContext& ctx);
void register_generate(CLI::App& app, CommandContext& ctx);
void register_cdi(CLI::App& app, CommandContext& ctx);  // cdi list [--json]
void register_run(CLI::App& app, CommandContext& ctx);
void register_exec(CLI::App& app, CommandContext& ctx);     // exec and shell
void register_image(CLI::App& app, CommandContext& ctx);    // image import|list|inspect|rm|tag|export
void register_storage(CLI::App& app, CommandContext& ctx);  // df, gc, commit
void register_volume(CLI::App& app, CommandContext& ctx);   // volume ls|create|rm|inspect
void register_list(CLI::App& app, CommandContext& ctx);
void register_status(CLI::App& app, CommandContext& ctx);
void register_unit_control(CLI::App& app, CommandContext& ctx);  // start, stop, restart
void register_logs(CLI::App& app, CommandContext& ctx);
void register_fsck(CLI::App& app, CommandContext& ctx);  // fsck [--repair]: execs `berthd fsck`
void register_rm(CLI::App& app, CommandContext& ctx);    // rm NAME, prune
void register_health(CLI::App& app, CommandContext& ctx);
void register_kill(CLI::App& app, CommandContext& ctx);        // health NAME (+ the supervisor's probe)
void register_registries(CLI::App& app, CommandContext& ctx);  // registries, login, logout
void register_network(CLI::App& app, CommandContext& ctx);     // network ls|inspect|up|down
void register_auto_update(CLI::App& app, CommandContext& ctx);

}  // namespace berth::cli
