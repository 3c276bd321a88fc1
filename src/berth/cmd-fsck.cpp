// berth fsck [--repair] [--root DIR] [--config FILE] [--json]: verifies the image store. Only
// berthd links the store, so this execs `berthd fsck` with the same options (same output, exit
// status 0 clean, 1 damage, 2 unreferenced garbage left; src/berthd/fsck-command.cpp).
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "bus/storage.h"
#include "command.h"

namespace berth::cli {

void register_fsck(CLI::App& app, CommandContext& ctx) {
    struct Opts {
        bool repair = false, json = false;
        std::string root, config;
    };
    auto o = std::make_shared<Opts>();
    auto* sub =
        app.add_subcommand("fsck", "verify the image store (blob digests, layer and snapshot references)");
    sub->add_flag("--repair", o->repair, "remove unreferenced blobs, layers and snapshots");
    sub->add_option("--root", o->root, "store root (default: from berthd.toml, /var/lib/berth)");
    sub->add_option("--config", o->config, "berthd configuration file (default /etc/berth/berthd.toml)");
    sub->add_flag("--json", o->json, "print the report as JSON");
    sub->callback([&ctx, o] {
        std::string exe = bus::find_berthd();
        std::vector<std::string> args{exe, "fsck"};
        if (o->repair) args.emplace_back("--repair");
        if (o->json) args.emplace_back("--json");
        if (!o->root.empty()) args.insert(args.end(), {"--root", o->root});
        if (!o->config.empty()) args.insert(args.end(), {"--config", o->config});
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        std::fflush(stdout);
        ::execv(exe.c_str(), argv.data());
        ctx.exit_code = report_error("fsck", fmt::format("run {}: {}", exe, std::strerror(errno)));
    });
}

}  // namespace berth::cli
