// berth: the command-line interface. Thin: parses arguments, calls the core libraries, prints.
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "basic/string-util.h"
#include "berth-config.h"
#include "command.h"
#include "config/config.h"

namespace {

// The subcommand a user of docker, podman or systemctl most likely meant, or "" when none is close.
std::string suggest_subcommand(const CLI::App& app, std::string_view word) {
    static const std::pair<std::string_view, std::string_view> synonyms[] = {
        {"ps", "list"},           {"ls", "list"},
        {"images", "image list"}, {"rmi", "image rm"},
        {"inspect", "status"},    {"show", "status"},
        {"log", "logs"},          {"journal", "logs"},
        {"kill", "stop"},         {"up", "start"},
        {"down", "stop"},         {"check", "validate"},
        {"volumes", "volume ls"}, {"import", "image import"},
        {"diff", "plan"},         {"sh", "shell"},
    };
    for (auto [from, to] : synonyms)
        if (word == from) return std::string(to);
    std::string best;
    size_t best_distance = 3;  // at most two edits
    for (const auto* sub : app.get_subcommands([](const CLI::App* s) { return !s->get_group().empty(); })) {
        size_t d = berth::edit_distance(word, sub->get_name());
        if (d < best_distance && d < sub->get_name().size()) best = sub->get_name(), best_distance = d;
    }
    return best;
}

bool is_subcommand(const CLI::App& app, std::string_view word) {
    for (const auto* sub : app.get_subcommands([](const CLI::App*) { return true; }))
        if (sub->check_name(std::string(word))) return true;
    return false;
}

// Which register_* function adds each command (command.h). `berth run` is the start path of every
// container: building CLI11's whole tree (21 register functions, ~50 commands with their options,
// validators and callbacks) cost ~300 kB of heap and ~100 page faults per start, and as much again
// to free it (docs/PERFORMANCE.md, issue #14), to parse one command. So the first word selects the
// one function that adds it; a word not listed here (help, an option, a typo, a new command not
// yet listed) gets the whole tree, as before. tests/unit/cli/commands-table.sh checks that every
// command of the whole tree is listed here with the function that adds it.
struct CommandEntry {
    std::string_view name;
    void (*add)(CLI::App&, berth::cli::CommandContext&);
};
constexpr CommandEntry kCommands[] = {
    {"validate", berth::cli::register_validate},
    {"plan", berth::cli::register_plan},
    {"cat", berth::cli::register_cat},
    {"generate", berth::cli::register_generate},
    {"cdi", berth::cli::register_cdi},
    {"run", berth::cli::register_run},
    {"internal-teardown", berth::cli::register_run},
    {"exec", berth::cli::register_exec},
    {"shell", berth::cli::register_exec},
    {"image", berth::cli::register_image},
    {"df", berth::cli::register_storage},
    {"gc", berth::cli::register_storage},
    {"commit", berth::cli::register_storage},
    {"volume", berth::cli::register_volume},
    {"fsck", berth::cli::register_fsck},
    {"rm", berth::cli::register_rm},
    {"prune", berth::cli::register_rm},
    {"network", berth::cli::register_network},
    {"list", berth::cli::register_list},
    {"status", berth::cli::register_status},
    {"start", berth::cli::register_unit_control},
    {"stop", berth::cli::register_unit_control},
    {"restart", berth::cli::register_unit_control},
    {"logs", berth::cli::register_logs},
    {"health", berth::cli::register_health},
    {"internal-health-probe", berth::cli::register_health},
    {"kill", berth::cli::register_kill},
    {"registries", berth::cli::register_registries},
    {"login", berth::cli::register_registries},
    {"logout", berth::cli::register_registries},
    {"auto-update", berth::cli::register_auto_update},
};

// Every command, in the order `berth help` lists them.
void register_all(CLI::App& app, berth::cli::CommandContext& ctx) {
    using namespace berth::cli;
    for (auto* add :
         {register_validate,     register_plan, register_cat,     register_generate, register_cdi,
          register_run,          register_exec, register_image,   register_storage,  register_volume,
          register_fsck,         register_rm,   register_network, register_list,     register_status,
          register_unit_control, register_logs, register_health,  register_kill,     register_registries,
          register_auto_update})
        add(app, ctx);
}

}  // namespace

int main(int argc, char** argv) {
    using namespace berth::cli;
    CLI::App app{"berth - declarative containers under systemd", "berth"};
    app.set_version_flag("--version", std::string("berth ") + BERTH_VERSION);
    app.require_subcommand(1);
    app.fallthrough();
    CommandContext ctx;
    // BERTH_CLI_ALL_COMMANDS=1 (tests): the whole tree, whatever the first word.
    const CommandEntry* only = nullptr;
    if (argc >= 2 && !std::getenv("BERTH_CLI_ALL_COMMANDS"))
        for (const auto& entry : kCommands)
            if (entry.name == argv[1]) only = &entry;
    if (only)
        only->add(app, ctx);
    else
        register_all(app, ctx);
    // The first word picks the subcommand; CLI11 alone would answer a missing or unknown one
    // with "A subcommand is required" and its own exit code (106), so it is checked here, and
    // every usage error exits 1 as berth(1) says. `berth help [COMMAND...]` is `--help`.
    if (argc < 2) {
        std::fputs(app.help().c_str(), stderr);
        std::fputs("berth: a command is required\n", stderr);
        return 1;
    }
    std::string_view first = argv[1];
    if (first == "help") {
        std::vector<char*> args{argv[0]};
        for (int i = 2; i < argc; ++i) args.push_back(argv[i]);
        args.push_back(const_cast<char*>("--help"));
        argc = static_cast<int>(args.size());
        args.push_back(nullptr);
        try {
            app.parse(argc, args.data());
        } catch (const CLI::CallForHelp& e) {
            return app.exit(e);
        } catch (const CLI::ParseError& e) {
            app.exit(e);
            return 1;
        }
        return 0;
    }
    if (!first.empty() && first[0] != '-' && !is_subcommand(app, first)) {
        std::string hint = suggest_subcommand(app, first);
        std::fprintf(stderr,
                     "berth: unknown command '%.*s'%s%s%s\nRun 'berth help' for the list of commands.\n",
                     static_cast<int>(first.size()), first.data(),
                     hint.empty() ? "" : "; did you mean 'berth ", hint.c_str(), hint.empty() ? "" : "'?");
        return 1;
    }
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        int code = app.exit(e);
        return code == 0 ? 0 : 1;  // --help, --version: 0; any usage error: 1 (berth(1))
    }
    return ctx.exit_code;
}

namespace berth::cli {
bool is_declaration_path(std::string_view arg) {
    return arg.find('/') != std::string_view::npos ||
           (arg.size() > 5 && arg.substr(arg.size() - 5) == ".toml");
}

std::string container_name(std::string_view arg) {
    if (!is_declaration_path(arg)) return std::string(arg);
    auto slash = arg.rfind('/');
    std::string_view base = slash == std::string_view::npos ? arg : arg.substr(slash + 1);
    if (base.size() > 5 && base.substr(base.size() - 5) == ".toml") base.remove_suffix(5);
    return std::string(base);
}

Result<config::Declaration> load_container_declaration(const std::string& arg) {
    if (is_declaration_path(arg)) return config::load_declaration_file(arg);
    return config::load_declaration(arg, config::SearchPaths::system());
}

bool require_root(CommandContext& ctx, std::string_view command, std::string_view why, int failed) {
    if (::geteuid() == 0) return true;
    std::fputs(fmt::format("berth {} needs root: {} (running as uid {}); run it as root, e.g. with sudo{}\n",
                           command, why, ::geteuid(),
                           command == "run" ? ", or let systemd run it: berth start NAME" : "")
                   .c_str(),
               stderr);
    ctx.exit_code = failed;
    return false;
}

int report_error(std::string_view command, std::string_view message) {
    std::fprintf(stderr, "berth %.*s: %.*s\n", static_cast<int>(command.size()), command.data(),
                 static_cast<int>(message.size()), message.data());
    return 1;
}

void set_exit_status(CommandContext& ctx, std::string_view command, const Result<int>& status, int failed) {
    if (status) {
        ctx.exit_code = *status;
        return;
    }
    report_error(command, status.error().what());
    ctx.exit_code = failed;
}
}  // namespace berth::cli
