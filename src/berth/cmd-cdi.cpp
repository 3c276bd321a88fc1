// berth cdi list [--json]: the CDI devices [security] devices can name on this host (cdi/cdi.h),
// and the spec files that could not be read, with why.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "basic/string-util.h"
#include "cdi/cdi.h"
#include "command.h"

namespace berth::cli {

void register_cdi(CLI::App& app, CommandContext& ctx) {
    auto* cdi_cmd = app.add_subcommand("cdi", "Container Device Interface devices");
    cdi_cmd->require_subcommand(1);
    auto json = std::make_shared<bool>(false);
    auto* list = cdi_cmd->add_subcommand("list", "List the CDI device names of this host's specs");
    list->add_flag("--json", *json, "print JSON");
    list->callback([&ctx, json] {
        auto dirs = cdi::spec_dirs();
        auto reg = cdi::load_registry(dirs);
        if (*json) {
            nlohmann::json out = {
                {"directories", dirs}, {"devices", reg.device_names()}, {"errors", nlohmann::json::array()}};
            for (const auto& s : reg.specs)
                out["specs"].push_back({{"file", s.file}, {"kind", s.kind}, {"cdiVersion", s.version}});
            for (const auto& e : reg.errors) out["errors"].push_back(e.what());
            std::printf("%s\n", out.dump(2).c_str());
        } else {
            for (const auto& n : reg.device_names()) std::printf("%s\n", n.c_str());
            for (const auto& e : reg.errors) std::fprintf(stderr, "berth: %s\n", e.what().c_str());
        }
        ctx.exit_code = reg.errors.empty() ? 0 : 1;
    });
}

}  // namespace berth::cli
