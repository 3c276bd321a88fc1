// berth: the command-line interface. Thin: parses arguments, calls the core libraries, prints.
#include <cstdio>

#include "berth-config.h"
#include "command.h"

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
    register_run(app, ctx);
    register_exec(app, ctx);
    register_image(app, ctx);
    register_storage(app, ctx);
    register_volume(app, ctx);
    register_fsck(app, ctx);  // after register_storage: replaces its "fsck" placeholder
    register_list(app, ctx);
    register_status(app, ctx);
    register_unit_control(app, ctx);
    register_logs(app, ctx);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    }
    return ctx.exit_code;
}

namespace berth::cli {
int report_error(std::string_view command, std::string_view message) {
    std::fprintf(stderr, "berth %.*s: %.*s\n", static_cast<int>(command.size()), command.data(),
                 static_cast<int>(message.size()), message.data());
    return 1;
}
}  // namespace berth::cli
