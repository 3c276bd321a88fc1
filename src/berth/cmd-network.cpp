// berth network ls|inspect|up|down: declared networks (berth.network(5)). `up` and `down` are
// what the network's unit runs (berth-network@NAME.service); `berth run` of a container on a
// network brings it up itself when it is not (embedded mode).
#include <cstdio>
#include <nlohmann/json.hpp>

#include "basic/fs-util.h"
#include "basic/string-util.h"
#include "command.h"
#include "config/config.h"
#include "network/declared.h"
#include "network/ipam.h"

namespace berth::cli {

namespace {

struct NetworkOptionsCli {
    bool json = false;
    std::vector<std::string> names;
};

struct NetworkView {
    std::string name;
    Result<config::NetworkDeclaration> declaration = fail(ENOENT, "not loaded");
};

nlohmann::json to_json(const config::NetworkDeclaration& d, const network::DeclaredNetworkPlan& p) {
    nlohmann::json leases = nlohmann::json::object();
    if (auto l = network::read_leases(network::network_run_dir(d.name)))
        for (const auto& [container, address] : *l) leases[container] = format_ipv4(address);
    // Dual-stack: the bridge's IPv6 address (a container's derives from its lease, network/ipam.h).
    nlohmann::json gateway6 = p.gateway6 ? nlohmann::json(format_ipv6(p.gateway6->address)) : nullptr;
    return {{"name", d.name},
            {"bridge", p.bridge},
            {"subnets", d.subnets},
            {"gateway", format_ipv4(p.gateway.address)},
            {"gateway6", gateway6},
            {"internal", p.internal},
            {"masquerade", p.masquerade},
            {"mtu", d.mtu ? nlohmann::json(*d.mtu) : nlohmann::json(nullptr)},
            {"dns", d.dns},
            {"builtin", d.builtin},
            {"source", d.source_path},
            {"up", path_exists("/sys/class/net/" + p.bridge)},
            {"nft_table", "inet " + p.nft_table},
            {"leases", leases}};
}

Result<std::pair<config::NetworkDeclaration, network::DeclaredNetworkPlan>> load(const std::string& name) {
    auto d = config::load_network(name, config::SearchPaths::networks());
    if (!d) return fail(d.error());
    auto p = network::plan_network(*d);
    if (!p) return fail(p.error());
    return std::pair{std::move(*d), std::move(*p)};
}

int do_ls(const NetworkOptionsCli& o) {
    auto j = nlohmann::json::array();
    std::vector<std::vector<std::string>> rows;
    for (auto& [name, d] : config::load_all_networks(config::SearchPaths::networks())) {
        auto p = d ? network::plan_network(*d) : Result<network::DeclaredNetworkPlan>(fail(d.error()));
        if (!p) {
            j.push_back({{"name", name}, {"error", p.error().what()}});
            rows.push_back({name, "-", "-", "invalid"});
            continue;
        }
        auto v = to_json(*d, *p);
        j.push_back(v);
        rows.push_back({name, join(d->subnets, ","), p->bridge, v["up"].get<bool>() ? "up" : "down"});
    }
    if (o.json)
        std::printf("%s\n", j.dump(2).c_str());
    else
        std::fputs(render_table({"NAME", "SUBNETS", "BRIDGE", "STATE"}, rows).c_str(), stdout);
    return 0;
}

int do_inspect(const NetworkOptionsCli& o) {
    auto j = nlohmann::json::array();
    for (const auto& name : o.names) {
        auto loaded = load(name);
        if (!loaded) return report_error("network inspect", loaded.error().what());
        j.push_back(to_json(loaded->first, loaded->second));
    }
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
}

int do_up_down(const NetworkOptionsCli& o, bool up) {
    const char* command = up ? "network up" : "network down";
    for (const auto& name : o.names) {
        auto loaded = load(name);
        if (!loaded) return report_error(command, loaded.error().what());
        auto r = up ? network::network_up(loaded->second) : network::network_down(loaded->second);
        if (!r) return report_error(command, r.error().what());
        if (o.json)
            std::printf("%s\n", to_json(loaded->first, loaded->second).dump(2).c_str());
        else
            std::printf("%s %s (%s)\n", name.c_str(), up ? "up" : "down", loaded->second.bridge.c_str());
    }
    return 0;
}

}  // namespace

void register_network(CLI::App& app, CommandContext& ctx) {
    auto* net = app.add_subcommand("network", "Declared networks: ls, inspect, up, down");
    net->require_subcommand(1);
    auto o = std::make_shared<NetworkOptionsCli>();
    auto* ls = net->add_subcommand("ls", "List declared networks and whether each is up");
    ls->alias("list");
    ls->add_flag("--json", o->json, "Print JSON");
    ls->callback([&ctx, o] { ctx.exit_code = do_ls(*o); });
    auto* inspect = net->add_subcommand("inspect", "Show networks as JSON (with their leases)");
    inspect->add_option("name", o->names, "network names")->required();
    inspect->add_flag("--json", o->json, "Print JSON (the default)");
    inspect->callback([&ctx, o] { ctx.exit_code = do_inspect(*o); });
    for (bool up : {true, false}) {
        auto* sub = net->add_subcommand(up ? "up" : "down",
                                        up ? "Create the bridge, gateway address and nftables table"
                                           : "Remove the bridge and the nftables table");
        sub->add_option("name", o->names, "network names")->required();
        sub->add_flag("--json", o->json, "Print JSON");
        sub->callback([&ctx, o, up] {
            if (!require_root(ctx, up ? "network up" : "network down", "to change the host's links", 1))
                return;
            ctx.exit_code = do_up_down(*o, up);
        });
    }
}

}  // namespace berth::cli
