// Placeholder until issue 3 lands: registers the subcommands so --help lists them.
#include "command.h"

namespace berth::cli {
void register_exec(CLI::App& app, CommandContext& ctx) {
    for (const char* name : {"exec", "shell"}) {
        auto* sub = app.add_subcommand(name, std::string("(not built yet: issue #3)"));
        sub->allow_extras();
        sub->callback([&ctx, name] { ctx.exit_code = report_error(name, "not built yet"); });
    }
}
}  // namespace berth::cli
