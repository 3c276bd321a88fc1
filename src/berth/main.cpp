// berth: the command-line interface. Thin: parses arguments, calls the core libraries, prints.
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
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

}  // namespace

int main(int argc, char** argv) {
    using namespace berth::cli;
    CLI::App app{"berth - declarative containers under systemd", "berth"};
    app.set_version_flag("--version", std::string("berth ") + BERTH_VERSION);
    app.require_subcommand(1);
    app.fallthrough();
    CommandContext ctx;
    register_validate(app, ctx);
    register_plan(app, ctx);
    register_cat(app, ctx);
    register_generate(app, ctx);
    register_cdi(app, ctx);
    register_run(app, ctx);
    register_exec(app, ctx);
    register_image(app, ctx);
    register_storage(app, ctx);
    register_volume(app, ctx);
    register_fsck(app, ctx);
    register_rm(app, ctx);
    register_network(app, ctx);
    register_list(app, ctx);
    register_status(app, ctx);
    register_unit_control(app, ctx);
    register_logs(app, ctx);
    register_health(app, ctx);
    register_kill(app, ctx);
    register_registries(app, ctx);
    register_auto_update(app, ctx);
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
