// berth registries [REFERENCE...]: check registries.toml (and its drop-ins) and show where images
// come from.  berth login / logout: maintain the auth file (containers-auth.json format, 0600).
//
// berth must not link libcurl or libcrypto (it is the runtime's start path, see meson.build), so
// `berth login` stores credentials without asking the registry: they are checked at the next pull.
// Hook for later: when berthd offers a CheckCredentials(registry) method next to PullImage, call it
// here behind a --verify flag (the store step stays first, so a failed check can say which file
// holds what was typed).
#include <termios.h>
#include <unistd.h>

#include <cstdio>

#include "basic/io-util.h"
#include "basic/string-util.h"
#include "command.h"
#include "registry/auth-file.h"
#include "registry/registries.h"

namespace berth::cli {
namespace {

using namespace berth::registry;

Result<RegistriesConfig> load_config() { return load_registries(RegistriesSearchPath::system()); }

std::string describe(const Endpoint& e) {
    std::string s = fmt::format("{}/{}", e.base_url(), e.path);
    if (e.mirror) s += " (mirror)";
    if (!e.tls.ca_files.empty()) s += fmt::format(" ca: {}", join(e.tls.ca_files, ","));
    if (!e.tls.client_cert.empty()) s += fmt::format(" client: {}", e.tls.client_cert);
    return s;
}

Result<std::pair<Reference, std::vector<Endpoint>>> resolve(const std::string& text,
                                                            const RegistriesConfig& config) {
    Reference ref = BERTH_TRY(parse_reference(text));
    Reference qualified = BERTH_TRY(qualify(ref, config));
    return std::pair{qualified, BERTH_TRY(endpoints_for(qualified, config))};
}

int show_registries(const std::vector<std::string>& references) {
    auto config = load_config();
    if (!config) return report_error("registries", config.error().what());
    if (references.empty()) {
        std::printf("default registry: %s\nauth file: %s\ncerts.d: %s\n",
                    config->default_domain.empty() ? "(none: short names are refused)"
                                                   : config->default_domain.c_str(),
                    config->auth_file.c_str(), config->certs_dir.c_str());
        std::vector<std::vector<std::string>> rows;
        for (const RegistryEntry& e : config->registries) {
            std::vector<std::string> mirrors;
            for (const Mirror& m : e.mirrors) mirrors.push_back(m.location + (m.insecure ? " (http)" : ""));
            rows.push_back({e.prefix, e.blocked ? "blocked" : e.location, e.insecure ? "http" : "https",
                            mirrors.empty() ? "-" : join(mirrors, ", ")});
        }
        if (!rows.empty())
            std::fputs(render_table({"PREFIX", "LOCATION", "SCHEME", "MIRRORS"}, rows).c_str(), stdout);
        return 0;
    }
    int status = 0;
    for (const std::string& text : references) {
        auto resolved = resolve(text, *config);
        if (!resolved) {
            status = report_error("registries", resolved.error().what());
            continue;
        }
        std::printf("%s\n", resolved->first.str().c_str());
        for (const Endpoint& e : resolved->second) std::printf("  %s\n", describe(e).c_str());
    }
    return status;
}

// A line from the terminal, echo off for a password.
Result<std::string> prompt(const char* what, bool secret) {
    std::fprintf(stderr, "%s: ", what);
    std::fflush(stderr);
    termios saved{};
    bool restore = secret && tcgetattr(STDIN_FILENO, &saved) == 0;
    if (restore) {
        termios quiet = saved;
        quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
        (void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    }
    std::string line;
    int c;
    while ((c = std::getchar()) != EOF && c != '\n') line += static_cast<char>(c);
    if (restore) {
        (void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
        std::fputc('\n', stderr);
    }
    if (c == EOF && line.empty()) return fail(EINVAL, "no {} given", what);
    return line;
}

Result<std::string> auth_file_path(const std::string& option) {
    if (!option.empty()) return option;
    auto config = load_config();
    if (!config) return tl::unexpected(config.error());
    return config->auth_file;
}

struct LoginOptions {
    std::string registry, username, authfile;
    bool password_stdin = false;
};

int login(const LoginOptions& o) {
    auto key = parse_registry_prefix(o.registry);
    if (!key) return report_error("login", key.error().what());
    auto file = auth_file_path(o.authfile);
    if (!file) return report_error("login", file.error().what());
    bool tty = isatty(STDIN_FILENO);
    std::string username = o.username;
    if (username.empty()) {
        if (!tty || o.password_stdin)
            return report_error("login", "--username is needed when the password comes from stdin");
        auto typed = prompt("Username", false);
        if (!typed) return report_error("login", typed.error().what());
        username = *typed;
    }
    std::string password;
    if (o.password_stdin) {
        auto all = read_all(STDIN_FILENO, "stdin", 64 * 1024);
        if (!all) return report_error("login", all.error().what());
        password = *all;
        while (!password.empty() && (password.back() == '\n' || password.back() == '\r')) password.pop_back();
    } else if (tty) {
        auto typed = prompt("Password", true);
        if (!typed) return report_error("login", typed.error().what());
        password = *typed;
    } else {
        return report_error("login", "stdin is not a terminal: pass the password with --password-stdin");
    }
    if (password.empty()) return report_error("login", "an empty password");
    if (auto r = store_credentials(*file, key->repository(), Credentials{username, password}); !r)
        return report_error("login", r.error().what());
    std::printf("Credentials for '%s' stored in %s (checked at the next pull).\n", key->repository().c_str(),
                file->c_str());
    return 0;
}

int logout(const std::string& registry, bool all, const std::string& authfile) {
    if (all == !registry.empty()) return report_error("logout", "give a REGISTRY or --all (not both)");
    auto file = auth_file_path(authfile);
    if (!file) return report_error("logout", file.error().what());
    if (all) {
        auto n = remove_all_credentials(*file);
        if (!n) return report_error("logout", n.error().what());
        std::printf("Removed the credentials of %zu registr%s from %s.\n", *n, *n == 1 ? "y" : "ies",
                    file->c_str());
        return 0;
    }
    auto key = parse_registry_prefix(registry);
    if (!key) return report_error("logout", key.error().what());
    auto removed = remove_credentials(*file, key->repository());
    if (!removed) return report_error("logout", removed.error().what());
    if (!*removed)
        return report_error("logout",
                            fmt::format("not logged in to '{}' (nothing in {})", key->repository(), *file));
    std::printf("Removed the credentials for '%s' from %s.\n", key->repository().c_str(), file->c_str());
    return 0;
}

}  // namespace

void register_registries(CLI::App& app, CommandContext& ctx) {
    auto refs = std::make_shared<std::vector<std::string>>();
    auto* sub = app.add_subcommand("registries",
                                   "Check registries.toml and its drop-ins; with REFERENCEs, show each one "
                                   "qualified and where it is pulled from");
    sub->add_option("REFERENCE", *refs, "image references to resolve (nginx, quay.io/team/app:v1, ...)");
    sub->callback([&ctx, refs] { ctx.exit_code = show_registries(*refs); });

    auto lo = std::make_shared<LoginOptions>();
    auto* login_cmd = app.add_subcommand(
        "login", "Store credentials for a registry in the auth file (stored only; checked at the next pull)");
    login_cmd
        ->add_option("REGISTRY", lo->registry, "registry[/repository], e.g. quay.io or localhost:5000/team")
        ->required();
    login_cmd->add_option("-u,--username", lo->username, "user name (asked on a terminal when not given)");
    login_cmd->add_flag("--password-stdin", lo->password_stdin, "read the password from stdin (one line)");
    login_cmd->add_option("--authfile", lo->authfile, "auth file (default: auth_file of registries.toml)");
    login_cmd->callback([&ctx, lo] { ctx.exit_code = login(*lo); });

    struct LogoutOptions {
        std::string registry, authfile;
        bool all = false;
    };
    auto out = std::make_shared<LogoutOptions>();
    auto* logout_cmd = app.add_subcommand("logout", "Remove a registry's credentials from the auth file");
    logout_cmd->add_option("REGISTRY", out->registry, "registry[/repository]");
    logout_cmd->add_flag("-a,--all", out->all, "remove every registry's credentials");
    logout_cmd->add_option("--authfile", out->authfile, "auth file (default: auth_file of registries.toml)");
    logout_cmd->callback([&ctx, out] { ctx.exit_code = logout(out->registry, out->all, out->authfile); });
}

}  // namespace berth::cli
