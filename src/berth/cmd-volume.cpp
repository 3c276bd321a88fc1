// berth volume ls|create|rm|inspect: named volumes, through berthd when it is reachable, else the
// embedded store under the store lock (storage-cli.h). A volume's users are the containers whose
// runtime mounted it and still runs; `rm` is refused (EBUSY, naming them) while there are any.
// There is no --force: deleting the tree under a running container is never safe.
#include <cstdio>

#include "basic/string-util.h"
#include "command.h"
#include "storage-cli.h"

namespace berth::cli {

namespace {

struct VolumeOptionsCli {
    bool json = false, verbose = false;
    std::vector<std::string> names;
};

void print_json(const nlohmann::json& j) { std::printf("%s\n", j.dump(2).c_str()); }

std::string users_text(const bus::VolumeDetail& v) {
    if (v.users.empty()) return "-";
    std::vector<std::string> names;
    for (auto& u : v.users) names.push_back(u.container);
    return join(names, ",");
}

// Each volume's detail (users, mount): one GetVolume per volume over the bus. A volume removed
// between the list and the get is skipped.
Result<std::vector<bus::VolumeDetail>> details(bus::Storage& storage) {
    auto list = BERTH_TRY(storage.list_volumes());
    std::vector<bus::VolumeDetail> out;
    for (auto& v : list) {
        auto d = storage.get_volume(v.name);
        if (!d && d.error().code == ENOENT) continue;
        if (!d) return fail(std::move(d.error()));
        out.push_back(std::move(*d));
    }
    return out;
}

int do_ls(VolumeOptionsCli& o) {
    auto storage = open_storage_verbose(o.verbose);
    if (!storage) return report_error("volume ls", storage.error().what());
    auto vols = details(**storage);
    if (!vols) return report_error("volume ls", vols.error().what());
    if (o.json) {
        auto j = nlohmann::json::array();
        for (auto& v : *vols) j.push_back(bus::to_json(v));
        print_json(j);
        return 0;
    }
    std::vector<std::vector<std::string>> rows;
    for (auto& v : *vols) rows.push_back({v.name, format_time_usec(v.created_usec), users_text(v)});
    std::fputs(render_table({"NAME", "CREATED", "USED BY"}, rows).c_str(), stdout);
    return 0;
}

int do_create(VolumeOptionsCli& o) {
    for (auto& n : o.names)
        if (auto v = bus::validate_object_name("volume", n); !v)
            return report_error("volume create", v.error().what());
    auto storage = open_storage_verbose(o.verbose);
    if (!storage) return report_error("volume create", storage.error().what());
    auto j = nlohmann::json::array();
    for (auto& n : o.names) {
        auto mount = (*storage)->create_volume(n);
        if (!mount)
            return report_error("volume create", fmt::format("volume '{}': {}", n, mount.error().what()));
        if (o.json) {
            auto d = (*storage)->get_volume(n);
            if (!d) return report_error("volume create", d.error().what());
            j.push_back(bus::to_json(*d));
        } else {
            std::printf("%s\n", n.c_str());
        }
    }
    if (o.json) print_json(j);
    return 0;
}

int do_rm(VolumeOptionsCli& o) {
    for (auto& n : o.names)
        if (auto v = bus::validate_object_name("volume", n); !v)
            return report_error("volume rm", v.error().what());
    auto storage = open_storage_verbose(o.verbose);
    if (!storage) return report_error("volume rm", storage.error().what());
    int rc = 0;
    auto removed = nlohmann::json::array();  // --json: {"removed": [names]}; failures go to stderr
    for (auto& n : o.names) {
        auto r = (*storage)->remove_volume(n);
        if (!r) {
            rc = report_error("volume rm", r.error().what());
            continue;
        }
        removed.push_back(n);
        if (!o.json) std::printf("%s\n", n.c_str());
    }
    if (o.json) print_json({{"removed", removed}});
    return rc;
}

int do_inspect(VolumeOptionsCli& o) {
    for (auto& n : o.names)
        if (auto v = bus::validate_object_name("volume", n); !v)
            return report_error("volume inspect", v.error().what());
    auto storage = open_storage_verbose(o.verbose);
    if (!storage) return report_error("volume inspect", storage.error().what());
    auto j = nlohmann::json::array();
    int rc = 0;
    for (auto& n : o.names) {
        auto d = (*storage)->get_volume(n);
        if (!d) {
            rc = report_error("volume inspect", d.error().what());
            continue;
        }
        if (o.json) {
            j.push_back(bus::to_json(*d));
            continue;
        }
        std::printf("Name:     %s\nCreated:  %s\nMount:    %s %s\nUsed by:  ", d->name.c_str(),
                    format_time_usec(d->created_usec).c_str(),
                    d->mount.kind == store::MountSpec::Kind::Block ? "block" : "bind",
                    d->mount.source.c_str());
        if (d->users.empty()) std::printf("-\n");
        for (size_t i = 0; i < d->users.size(); ++i)
            std::printf("%s%s (pid %u)\n", i ? "          " : "", d->users[i].container.c_str(),
                        d->users[i].pid);
    }
    if (o.json) print_json(j);
    return rc;
}

}  // namespace

void register_volume(CLI::App& app, CommandContext& ctx) {
    auto* volume = app.add_subcommand("volume", "Manage named volumes: ls, create, rm, inspect");
    volume->require_subcommand(1);
    auto o = std::make_shared<VolumeOptionsCli>();
    auto common = [o](CLI::App* sub) {
        sub->add_flag("--json", o->json, "Print JSON");
        sub->add_flag("-v,--verbose", o->verbose, "Say whether berthd or the embedded store is used");
    };
    auto* ls = volume->add_subcommand("ls", "List volumes and the containers using them");
    ls->alias("list");
    common(ls);
    ls->callback([&ctx, o] { ctx.exit_code = do_ls(*o); });

    auto* create = volume->add_subcommand("create", "Create named volumes (an existing one is kept)");
    create->add_option("name", o->names, "volume names")->required();
    common(create);
    create->callback([&ctx, o] { ctx.exit_code = do_create(*o); });

    auto* rm =
        volume->add_subcommand("rm", "Remove volumes and their data (refused while a container uses one)");
    rm->alias("remove");
    rm->add_option("name", o->names, "volume names")->required();
    common(rm);
    rm->callback([&ctx, o] { ctx.exit_code = do_rm(*o); });

    auto* inspect = volume->add_subcommand("inspect", "Show a volume's mount, creation time and users");
    inspect->add_option("name", o->names, "volume names")->required();
    common(inspect);
    inspect->callback([&ctx, o] { ctx.exit_code = do_inspect(*o); });
}

}  // namespace berth::cli
