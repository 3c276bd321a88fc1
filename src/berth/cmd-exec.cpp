// berth exec [-t] [-i] [-u USER] [-e K=V] [-w DIR] NAME -- CMD...   and   berth shell NAME
#include <unistd.h>

#include "command.h"
#include "runtime/exec.h"

namespace berth::cli {

namespace {

struct ExecArgs {
    std::string name;
    std::vector<std::string> command;
    bool tty = false;
    bool no_stdin = false;
    bool interactive_flag = true;
    std::string user;
    std::vector<std::string> env;
    std::string workdir;
};

void run_exec(const ExecArgs& a, CommandContext& ctx, const char* verb) {
    if (!require_root(ctx, verb, "it enters a running container's namespaces", 126)) return;
    runtime::ExecOptions opt;
    opt.command = a.command;
    opt.tty = a.tty;
    opt.interactive = !a.no_stdin;
    opt.user = a.user;
    opt.env = a.env;
    opt.workdir = a.workdir;
    set_exit_status(ctx, verb, runtime::exec_in_container(container_name(a.name), opt), 126);
}

}  // namespace

void register_exec(CLI::App& app, CommandContext& ctx) {
    auto args = std::make_shared<ExecArgs>();
    auto* exec = app.add_subcommand("exec", "Run a command inside a running container");
    exec->add_flag("-t,--tty", args->tty, "Allocate a pseudo-terminal");
    exec->add_flag("--no-stdin", args->no_stdin, "Give the command /dev/null as stdin");
    exec->add_flag("-i,--interactive", args->interactive_flag, "Keep stdin attached (the default)");
    exec->add_option("-u,--user", args->user, "Run as this user of the container (name|uid[:group])");
    exec->add_option("-e,--env", args->env, "Extra environment variable K=V (repeatable)")
        ->allow_extra_args(false)
        ->take_all();
    exec->add_option("-w,--workdir", args->workdir, "Working directory inside the container");
    exec->add_option("container", args->name, "Container NAME or path to NAME.toml")->required();
    exec->add_option("command", args->command, "Command and arguments (after --)")->required();
    exec->callback([args, &ctx] { run_exec(*args, ctx, "exec"); });

    auto shell_args = std::make_shared<ExecArgs>();
    auto* shell = app.add_subcommand("shell", "Interactive shell inside a running container");
    shell->add_option("-u,--user", shell_args->user, "Run as this user of the container");
    shell->add_option("container", shell_args->name, "Container NAME or path to NAME.toml")->required();
    shell->callback([shell_args, &ctx] {
        shell_args->command = {"/bin/sh", "-l"};
        shell_args->tty = ::isatty(0);
        run_exec(*shell_args, ctx, "shell");
    });
}

}  // namespace berth::cli
