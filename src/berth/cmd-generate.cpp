// berth generate --output DIR: runs the generator logic into DIR (as berth-generator does into
// systemd's generator directory), reporting invalid declarations.
#include <cstdio>

#include "cdi/cdi.h"
#include "command.h"
#include "config/unit.h"

namespace berth::cli {

void register_generate(CLI::App& app, CommandContext& ctx) {
    struct Options {
        std::string output;
        std::string bindir;
    };
    auto options = std::make_shared<Options>();
    auto* sub = app.add_subcommand("generate", "Generate berth@NAME.service units into a directory");
    sub->add_option("--output,-o", options->output, "output directory (created if missing)")->required();
    sub->add_option("--bindir", options->bindir, "directory of the berth binary used in ExecStart=");
    sub->callback([&ctx, options] {
        config::UnitOptions unit_options;
        unit_options.bindir = options->bindir;
        unit_options.cdi_device_allow = cdi::device_allow_entries;
        auto report = config::generate(config::SearchPaths::system(), options->output, unit_options);
        if (!report) {
            ctx.exit_code = report_error("generate", report.error().what());
            return;
        }
        for (const auto& unit : report->units) std::printf("%s\n", unit.c_str());
        for (const auto& error : report->errors) std::fprintf(stderr, "%s\n", error.c_str());
        ctx.exit_code = report->invalid.empty() ? 0 : 1;
    });
}

}  // namespace berth::cli
