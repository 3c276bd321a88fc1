// Placeholder until issue 2 lands: registers the subcommands so --help lists them.
#include "command.h"

namespace berth::cli {
void register_generate(CLI::App& app, CommandContext& ctx) {
    for (const char* name : {"generate"}) {
        auto* sub = app.add_subcommand(name, std::string("(not built yet: issue #2)"));
        sub->allow_extras();
        sub->callback([&ctx, name] { ctx.exit_code = report_error(name, "not built yet"); });
    }
}
}  // namespace berth::cli
