// berth network ls|inspect|up|down|create|rm: declared networks (berth.network(5)). `up` and
// `down` are what the network's unit runs (berth-network@NAME.service); `berth run` of a
// container on a network brings it up itself when it is not (embedded mode). `create` writes a
// declaration into the first directory of the search path (validated by the same parser as a
// hand-written one before anything is written); `rm` removes only such a file.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "basic/fs-util.h"
#include "basic/names.h"
#include "basic/string-util.h"
#include "command.h"
#include "config/config.h"
#include "network/declared.h"
#include "network/dns.h"
#include "network/ipam.h"

namespace berth::cli {

namespace {

struct NetworkOptionsCli {
    bool json = false;
    std::vector<std::string> names;
    // create
    std::vector<std::string> subnets;
    std::string gateway;
    bool internal = false;
    std::vector<std::string> dns;
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
            {"leases", leases},
            {"registered", network::registered_containers(d.name)}};  // running, resolvable by name
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

// Addresses go into the TOML text between quotes: only the characters addresses are made of, so
// that no value can close the string and add keys of its own.
bool address_text(const std::string& v) {
    return !v.empty() && v.find_first_not_of("0123456789abcdefABCDEF.:/%") == std::string::npos;
}

// The first 10.89.N.0/24 (N = 1..254) that overlaps no declared network's subnet.
Result<std::string> free_subnet() {
    std::vector<Ipv4Cidr> taken;
    for (auto& [name, d] : config::load_all_networks(config::SearchPaths::networks()))
        if (d)
            for (const auto& s : d->subnets)
                if (auto c = parse_ipv4_cidr(s, 32)) taken.push_back(*c);
    for (uint32_t n = 1; n < 255; ++n) {
        Ipv4Cidr candidate{Ipv4{(10u << 24) | (89u << 16) | (n << 8)}, 24};
        if (std::none_of(taken.begin(), taken.end(), [&](auto& t) { return subnets_overlap(t, candidate); }))
            return format_ipv4_cidr(candidate);
    }
    return fail(ENOSPC, "no free subnet in 10.89.0.0/16; give one with --subnet");
}

std::string quoted_list(const std::vector<std::string>& values) {
    std::string out;
    for (const auto& v : values) out += (out.empty() ? "\"" : ", \"") + v + "\"";
    return "[" + out + "]";
}

Result<std::pair<std::string, config::NetworkDeclaration>> create(const NetworkOptionsCli& o,
                                                                  const std::string& name) {
    BERTH_TRY_VOID(check_object_name(NameKind::Container, name));
    const auto paths = config::SearchPaths::networks();
    if (paths.dirs.empty()) return fail(EINVAL, "no network search path");
    if (auto existing = config::load_network(name, paths); existing && !existing->builtin)
        return fail(EEXIST, "network {} is already declared in '{}'", quote(name), existing->source_path);
    else if (!existing && existing.error().code != ENOENT)
        return fail(existing.error().wrap(fmt::format("network {}", quote(name))));
    for (const auto* values : {&o.subnets, &o.dns})
        for (const auto& v : *values)
            if (!address_text(v)) return fail(EINVAL, "{} is not an address", quote(v));
    if (!o.gateway.empty() && !address_text(o.gateway))
        return fail(EINVAL, "{} is not an address", quote(o.gateway));
    auto subnets = o.subnets;
    if (subnets.empty()) subnets.push_back(BERTH_TRY(free_subnet()));

    std::string text = "# Written by `berth network create` (berth.network(5)).\n[network]\n";
    text += "subnets = " + quoted_list(subnets) + "\n";
    if (!o.gateway.empty()) text += "gateway = \"" + o.gateway + "\"\n";
    if (o.internal) text += "internal = true\n";
    if (!o.dns.empty()) text += "dns = " + quoted_list(o.dns) + "\n";
    const std::string path = path_join(paths.dirs.front(), name + ".toml");
    // The parser's checks (file:line:col) and the plan's, before anything is written.
    auto decl = config::parse_network_declaration(name, {path, text});
    if (!decl) return fail(decl.error());
    BERTH_TRY_VOID(network::plan_network(*decl));
    for (auto& [other, d] : config::load_all_networks(paths)) {
        if (!d || other == name) continue;
        for (const auto& mine : decl->subnets)
            for (const auto& theirs : d->subnets) {
                auto a = parse_ipv4_cidr(mine, 32), b = parse_ipv4_cidr(theirs, 32);
                if (a && b && subnets_overlap(*a, *b))
                    return fail(EADDRINUSE, "subnet {} overlaps network {}'s {}", quote(mine), quote(other),
                                theirs);
            }
    }
    BERTH_TRY_VOID(mkdir_p(paths.dirs.front()));
    BERTH_TRY_VOID(write_file_atomic(path, text, 0644));
    decl->source_path = path;
    return std::pair{path, std::move(*decl)};
}

int do_create(const NetworkOptionsCli& o) {
    for (const auto& name : o.names) {
        auto created = create(o, name);
        if (!created) return report_error("network create", created.error().what());
        auto plan = network::plan_network(created->second);
        if (o.json && plan)
            std::printf("%s\n", to_json(created->second, *plan).dump(2).c_str());
        else
            std::printf("%s created (%s)\n", name.c_str(), created->first.c_str());
    }
    return 0;
}

Result<std::string> remove(const std::string& name) {
    const auto paths = config::SearchPaths::networks();
    auto loaded = load(name);
    if (!loaded) return fail(loaded.error());
    const auto& [decl, plan] = *loaded;
    if (decl.builtin) return fail(EPERM, "network {} is built in; nothing to remove", quote(name));
    const std::string mine = path_join(paths.dirs.front(), name + ".toml");
    if (decl.source_path != mine)
        return fail(EPERM, "network {} is declared in '{}', not by `berth network create` ('{}')",
                    quote(name), decl.source_path, mine);
    if (auto users = network::registered_containers(name); !users.empty())
        return fail(EBUSY, "network {} is used by running containers: {}", quote(name), join(users, ", "));
    BERTH_TRY_VOID(network::network_down(plan));
    if (::unlink(mine.c_str()) < 0) return fail_errno("remove '{}'", mine);
    // Its leases and names: nobody is on it any more.
    BERTH_TRY_VOID(remove_tree(network::network_run_dir(name)));
    return mine;
}

int do_rm(const NetworkOptionsCli& o) {
    auto removed = nlohmann::json::array();
    for (const auto& name : o.names) {
        auto path = remove(name);
        if (!path) return report_error("network rm", path.error().what());
        if (!o.json) std::printf("%s removed (%s)\n", name.c_str(), path->c_str());
        removed.push_back({{"name", name}, {"source", *path}});
    }
    if (o.json) std::printf("%s\n", removed.dump(2).c_str());
    return 0;
}

}  // namespace

void register_network(CLI::App& app, CommandContext& ctx) {
    auto* net = app.add_subcommand("network", "Declared networks: ls, inspect, up, down, create, rm");
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
    auto* create = net->add_subcommand("create", "Declare a network (writes NAME.toml, validated)");
    create->add_option("name", o->names, "network name")->required()->expected(1);
    create->add_option("--subnet", o->subnets, "subnet (default: a free 10.89.N.0/24); repeatable");
    create->add_option("--gateway", o->gateway, "the bridge's address (default: the subnet's first host)");
    create->add_flag("--internal", o->internal, "no route beyond the network");
    create->add_option("--dns", o->dns, "upstream DNS server (default: the host's); repeatable");
    create->add_flag("--json", o->json, "Print JSON");
    create->callback([&ctx, o] {
        if (!require_root(ctx, "network create", "to write the declaration", 1)) return;
        ctx.exit_code = do_create(*o);
    });
    auto* rm = net->add_subcommand("rm", "Bring a created network down and remove its declaration");
    rm->alias("remove");
    rm->add_option("name", o->names, "network names")->required();
    rm->add_flag("--json", o->json, "Print JSON");
    rm->callback([&ctx, o] {
        if (!require_root(ctx, "network rm", "to change the host's links", 1)) return;
        ctx.exit_code = do_rm(*o);
    });
}

}  // namespace berth::cli
