// berth cat NAME: the merged declaration (main file + drop-ins) as canonical TOML.
#include <cstdio>

#include "command.h"
#include "config/config.h"

namespace berth::cli {

void register_cat(CLI::App& app, CommandContext& ctx) {
    auto name = std::make_shared<std::string>();
    auto* sub = app.add_subcommand("cat", "Print the merged declaration of a container as canonical TOML");
    sub->add_option("NAME", *name, "container NAME or path to NAME.toml")->required();
    sub->callback([&ctx, name] {
        auto d = load_container_declaration(*name);
        if (!d) {
            ctx.exit_code = report_error("cat", d.error().what());
            return;
        }
        std::fputs(config::to_toml(*d).c_str(), stdout);
        ctx.exit_code = 0;
    });
}

}  // namespace berth::cli
