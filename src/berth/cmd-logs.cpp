// berth logs NAME [-f] [-n N] [--json]: the journal of berth@NAME.service read with sd-journal —
// the payload's stdout/stderr and what systemd said about the unit.
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "command.h"
#include "config/config.h"
#include "container-view.h"
#include "systemd/journal.h"
#include "systemd/systemd1.h"

namespace berth::cli {

namespace {

nlohmann::json entry_json(const systemd::JournalEntry& e) {
    return {{"realtime_usec", e.realtime_us}, {"message", e.message},
            {"identifier", e.identifier},     {"pid", e.pid},
            {"priority", e.priority},         {"cursor", e.cursor}};
}

}  // namespace

void register_logs(CLI::App& app, CommandContext& ctx) {
    struct Options {
        std::string name;
        bool follow = false;
        long lines = -1;
        bool json = false;
        std::string directory;
    };
    auto o = std::make_shared<Options>();
    auto* sub = app.add_subcommand("logs", "Show a container's journal (its output and its unit's messages)");
    sub->add_option("NAME", o->name, "container NAME or path to NAME.toml")->required();
    sub->add_flag("-f,--follow", o->follow, "keep printing new entries");
    sub->add_option("-n,--lines", o->lines, "show the last N entries (default: all; 10 with --follow)");
    sub->add_flag("--json", o->json, "one JSON object per entry");
    sub->add_option("-D,--directory", o->directory, "read this journal directory")->group("");
    sub->callback([&ctx, o] {
        o->name = container_name(o->name);
        if (!config::is_valid_name(o->name)) {
            ctx.exit_code = report_error("logs", fmt::format("invalid container name '{}'", o->name));
            return;
        }
        systemd::JournalOptions jo;
        jo.directory = o->directory;
        jo.lines = o->lines >= 0 ? size_t(o->lines) : (o->follow ? 10 : SIZE_MAX);
        auto unit = systemd::container_unit(o->name);
        auto journal = systemd::UnitJournal::open(unit, jo);
        if (!journal) {
            ctx.exit_code = report_error("logs", journal.error().what());
            return;
        }
        char host[HOST_NAME_MAX + 1] = "";
        gethostname(host, sizeof host);
        auto print = [&](const systemd::JournalEntry& e) {
            if (o->json)
                std::printf("%s\n", entry_json(e).dump().c_str());
            else
                std::printf("%s\n", systemd::format_short(e, host).c_str());
            std::fflush(stdout);
            return !ferror(stdout);
        };
        auto entries = journal->tail();
        if (!entries) {
            ctx.exit_code = report_error("logs", entries.error().what());
            return;
        }
        // No entry and nothing of that name (no declaration, unit or run): a typo, not an empty
        // journal (issue #15 item 7). A removed container's journal is still shown.
        if (entries->empty() && o->directory.empty()) {
            auto sources = open_sources(false);
            if (auto v = gather_one(sources, o->name); !v && v.error().code == ENOENT) {
                report_error("logs", fmt::format("unknown container '{}': not declared, no unit, not running "
                                                 "and nothing in the journal",
                                                 o->name));
                ctx.exit_code = 4;
                return;
            }
        }
        for (auto& e : *entries) print(e);
        if (o->follow) {
            auto r = journal->follow(print);
            if (!r) ctx.exit_code = report_error("logs", r.error().what());
        }
    });
}

}  // namespace berth::cli
