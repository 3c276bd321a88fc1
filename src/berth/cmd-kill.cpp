// berth kill [--signal SIG] NAME: sends a signal to a running container's payload (its PID 1),
// as `docker kill --signal`. [health] reload_signal becomes `ExecReload=berth kill --signal=SIG
// NAME`, so `systemctl reload` reaches the payload whatever the signal (the supervisor forwards
// only a few itself).
#include <cstdio>
#include <cstring>

#include "basic/process-raw.h"
#include "basic/process-util.h"
#include "basic/string-util.h"
#include "command.h"
#include "config/values.h"
#include "runtime/state.h"

namespace berth::cli {

void register_kill(CLI::App& app, CommandContext& ctx) {
    struct Args {
        std::string signal = "SIGKILL";
        std::string name;
    };
    auto args = std::make_shared<Args>();
    auto* sub = app.add_subcommand("kill", "Send a signal to a running container's payload");
    sub->add_option("-s,--signal", args->signal, "signal name or number (default SIGKILL)");
    sub->add_option("container", args->name, "Container NAME")->required();
    sub->callback([args, &ctx] {
        const std::string& signal = args->signal;
        if (!require_root(ctx, "kill", "only root may signal a container's payload", 1)) return;
        auto sig = config::parse_signal(signal);
        if (!sig) {
            ctx.exit_code = report_error(
                "kill", fmt::format("{} is not a signal, expected a name such as \"SIGHUP\" or a number",
                                    quote(signal)));
            return;
        }
        const std::string name = container_name(args->name);
        auto st = runtime::read_state(name);
        if (!st) {
            ctx.exit_code = report_error("kill", st.error().what());
            return;
        }
        auto pidfd = pidfd_open(st->pid);
        if (!pidfd) {
            ctx.exit_code =
                report_error("kill", fmt::format("container '{}': {}", name, pidfd.error().what()));
            return;
        }
        if (int rc = pidfd_signal_raw(pidfd->get(), *sig); rc < 0) {
            ctx.exit_code =
                report_error("kill", fmt::format("container '{}': send {}: {}", name, signal, strerror(-rc)));
            return;
        }
        ctx.exit_code = 0;
    });
}

}  // namespace berth::cli
