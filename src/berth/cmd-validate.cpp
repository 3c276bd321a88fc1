// berth validate [FILE...] [--json]: checks declarations (default: every one in the search path,
// with the cross-declaration checks), prints every error as FILE:LINE:COL: message.
// berth validate --report-error=FILE: what a generated unit for an invalid declaration runs: prints
// the pinned error to stderr (the journal) and fails.
#include <cstdio>
#include <nlohmann/json.hpp>
#include <regex>

#include "basic/fs-util.h"
#include "basic/string-util.h"
#include "bus/storage-client.h"
#include "bus/storage.h"
#include "command.h"
#include "config/config.h"
#include "runtime/container-security.h"

namespace berth::cli {

namespace {

struct Outcome {
    std::string name;
    std::string file;
    Result<config::Declaration> result;
};

nlohmann::json error_json(const std::string& line) {
    static const std::regex kLocated(R"(^(.+?):(\d+):(\d+): (.*)$)");
    std::smatch m;
    if (std::regex_match(line, m, kLocated))
        return {{"file", m[1].str()},
                {"line", std::stoi(m[2].str())},
                {"column", std::stoi(m[3].str())},
                {"message", m[4].str()}};
    return {{"message", line}};
}

// What may still change before the start, so warnings and not errors (issue #15): an image that
// berthd does not have (yet), a dependency not declared in the search path when files are checked
// one by one (all of them together check that as an error), limits this host cannot grant.
class Warnings {
public:
    std::vector<std::string> of(const config::Declaration& d, bool one_by_one) {
        std::vector<std::string> out;
        if (!d.image.empty())
            if (auto* s = store())
                if (auto image = s->get_image(d.image); !image && image.error().code == ENOENT)
                    out.push_back(
                        fmt::format("{} (berth run fails until it is)", bus::missing_image_message(d.image)));
        if (one_by_one) {
            auto check = [&](const std::vector<std::string>& list, const char* key) {
                for (const auto& entry : list) {
                    if (config::is_unit_name(entry)) continue;
                    auto target = config::load_declaration(entry, config::SearchPaths::system());
                    if (!target && target.error().code == ENOENT)
                        out.push_back(fmt::format(
                            "service.{}: container '{}' is not declared in the search path (its unit "
                            "will fail to start until it is)",
                            key, entry));
                }
            };
            check(d.service.requires_, "requires");
            check(d.service.wants, "wants");
            check(d.service.after, "after");
        }
        if (auto r = runtime::check_limits_on_host(d); !r) out.push_back(r.error().what() + " on this host");
        return out;
    }

private:
    // berthd on the system bus only, asked once: a private berthd would take the store's lock just
    // for a check.
    bus::Storage* store() {
        if (!asked_) {
            asked_ = true;
            if (auto s = bus::open_remote_storage()) store_ = std::move(*s);
        }
        return store_.get();
    }
    bool asked_ = false;
    std::unique_ptr<bus::Storage> store_;
};

int report_pinned_error(const std::string& path) {
    auto text = read_file(path);
    if (!text) return report_error("validate", fmt::format("read '{}': {}", path, text.error().what()));
    std::fputs(text->c_str(), stderr);
    if (!text->empty() && text->back() != '\n') std::fputc('\n', stderr);
    std::fprintf(stderr,
                 "berth: the container declaration is invalid; fix it, check it with 'berth validate' "
                 "and run 'systemctl daemon-reload'\n");
    return 1;
}

}  // namespace

void register_validate(CLI::App& app, CommandContext& ctx) {
    struct Options {
        std::vector<std::string> files;
        bool json = false;
        std::string report_error_file;
    };
    auto options = std::make_shared<Options>();
    auto* sub =
        app.add_subcommand("validate", "Check container declarations (default: all in the search path)");
    sub->add_option(
        "FILE", options->files,
        "declaration files (NAME.toml; drop-ins in NAME.toml.d/ are merged) or NAMEs from the search path");
    sub->add_flag("--json", options->json, "print the result as JSON");
    sub->add_option("--report-error", options->report_error_file,
                    "print a pinned validation error and fail (used by units of invalid declarations)")
        ->group("");
    sub->callback([&ctx, options] {
        if (!options->report_error_file.empty()) {
            ctx.exit_code = report_pinned_error(options->report_error_file);
            return;
        }
        std::vector<Outcome> outcomes;
        if (options->files.empty()) {
            auto set = config::load_all(config::SearchPaths::system());
            // Templates too (checked as their sample instance), not only the instances they give.
            for (auto* group : {&set.templates, &set.by_name})
                for (auto& [name, result] : *group) {
                    std::string file = result ? result->source_path : "";
                    outcomes.push_back({name, file, std::move(result)});
                }
        } else {
            // Each argument a path to NAME.toml or a NAME from the search path (as `berth cat`).
            for (const auto& arg : options->files) {
                auto result = load_container_declaration(arg);
                std::string file = is_declaration_path(arg) ? arg : result ? result->source_path : "";
                outcomes.push_back({container_name(arg), file, std::move(result)});
            }
        }
        int invalid = 0;
        nlohmann::json json = nlohmann::json::array();
        Warnings warn;
        for (const auto& o : outcomes) {
            if (!o.result) ++invalid;
            auto warnings =
                o.result ? warn.of(*o.result, !options->files.empty()) : std::vector<std::string>{};
            if (options->json) {
                nlohmann::json entry = {{"name", o.name}, {"valid", bool(o.result)}};
                entry["warnings"] = warnings;
                if (o.result) {
                    entry["file"] = o.result->source_path;
                    entry["dropins"] = o.result->dropin_paths;
                    entry["errors"] = nlohmann::json::array();
                } else {
                    if (!o.file.empty()) entry["file"] = o.file;
                    nlohmann::json errors = nlohmann::json::array();
                    for (const auto& line : split(o.result.error().what(), '\n'))
                        errors.push_back(error_json(line));
                    entry["errors"] = errors;
                }
                json.push_back(entry);
            } else if (o.result) {
                std::printf("%s: ok (%s)\n", o.name.c_str(), o.result->source_path.c_str());
                for (const auto& w : warnings)
                    std::fprintf(stderr, "%s: warning: %s\n", o.name.c_str(), w.c_str());
            } else {
                std::fprintf(stderr, "%s\n", o.result.error().what().c_str());
            }
        }
        if (options->json)
            std::printf("%s\n", json.dump(2).c_str());
        else if (outcomes.empty())
            std::fprintf(stderr, "berth validate: no declarations found\n");
        ctx.exit_code = invalid ? 1 : 0;
    });
}

}  // namespace berth::cli
