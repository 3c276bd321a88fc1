// berth df, gc, commit: store-wide commands (fsck: cmd-fsck.cpp).
#include <cstdio>

#include "basic/string-util.h"
#include "command.h"
#include "storage-cli.h"

namespace berth::cli {

namespace {

struct StorageOptionsCli {
    bool json = false, verbose = false;
    std::string name, image;
};

void print_json(const nlohmann::json& j) { std::printf("%s\n", j.dump(2).c_str()); }

int do_df(StorageOptionsCli& o) {
    auto storage = open_storage_verbose(o.verbose);
    if (!storage) return report_error("df", storage.error().what());
    auto usage = (*storage)->disk_usage();
    if (!usage) return report_error("df", usage.error().what());
    if (o.json) {
        print_json(bus::to_json(*usage));
        return 0;
    }
    auto& p = usage->pool;
    std::printf("Store %s (backend %s%s%s): %s used of %s\n", p.root.c_str(), p.backend.c_str(),
                p.pool_path.empty() ? "" : ", pool ", p.pool_path.c_str(), human_size(p.used).c_str(),
                human_size(p.size).c_str());
    if (p.metadata_size)
        std::printf("Pool metadata: %s used of %s\n", human_size(p.metadata_used).c_str(),
                    human_size(p.metadata_size).c_str());
    std::vector<std::vector<std::string>> rows;
    for (auto& i : usage->images)
        rows.push_back(
            {"image", short_id(i.id), i.names.empty() ? "<none>" : join(i.names, ","), human_size(i.size)});
    // What each container/volume holds alone; "-" when the backend could not measure it (dm-thin
    // without thin_ls), with the reason below the table.
    auto size = [](uint64_t bytes) {
        return bytes == store::kSizeUnknown ? std::string("-") : human_size(bytes);
    };
    for (auto& c : usage->containers) rows.push_back({"container", "-", c.name, size(c.size)});
    for (auto& v : usage->volumes) rows.push_back({"volume", "-", v.name, size(v.size)});
    std::printf("\n%s", render_table({"TYPE", "ID", "NAME", "SIZE"}, rows, {3}).c_str());
    if (!usage->size_note.empty())
        std::printf("\nSizes shown as - are unknown: %s\n", usage->size_note.c_str());
    return 0;
}

int do_gc(StorageOptionsCli& o) {
    auto storage = open_storage_verbose(o.verbose);
    if (!storage) return report_error("gc", storage.error().what());
    auto report = (*storage)->garbage_collect();
    if (!report) return report_error("gc", report.error().what());
    if (o.json) {
        print_json(bus::to_json(*report));
        return 0;
    }
    for (auto& r : report->removed) std::printf("Removed %s\n", r.c_str());
    std::printf("%zu item(s) removed, %s freed\n", report->removed.size(),
                human_size(report->bytes_freed).c_str());
    return 0;
}

int do_commit(StorageOptionsCli& o) {
    o.name = container_name(o.name);
    if (auto v = bus::validate_object_name("container", o.name); !v)
        return report_error("commit", v.error().what());
    if (auto v = bus::validate_image_name(o.image); !v) return report_error("commit", v.error().what());
    auto storage = open_storage_verbose(o.verbose);
    if (!storage) return report_error("commit", storage.error().what());
    auto image = (*storage)->commit_container(o.name, o.image);
    if (!image)
        return report_error("commit", fmt::format("container '{}': {}", o.name, image.error().what()));
    if (o.json)
        print_json(bus::to_json(*image));
    else
        std::printf("Committed container %s as %s (%s)\n", o.name.c_str(), o.image.c_str(),
                    image->id.c_str());
    return 0;
}

}  // namespace

void register_storage(CLI::App& app, CommandContext& ctx) {
    auto o = std::make_shared<StorageOptionsCli>();
    auto common = [o](CLI::App* sub) {
        sub->add_flag("--json", o->json, "Print JSON");
        sub->add_flag("-v,--verbose", o->verbose, "Say whether berthd or the embedded store is used");
    };
    auto* df = app.add_subcommand("df", "Show the store's space use per image, container and volume");
    common(df);
    df->callback([&ctx, o] { ctx.exit_code = do_df(*o); });

    auto* gc = app.add_subcommand("gc", "Remove unreferenced layers and blobs and crash leftovers");
    common(gc);
    gc->callback([&ctx, o] { ctx.exit_code = do_gc(*o); });

    auto* commit = app.add_subcommand("commit", "Turn a container's writable layer into a new image");
    commit->add_option("name", o->name, "container NAME or path to NAME.toml")->required();
    commit->add_option("image", o->image, "new image NAME[:TAG]")->required();
    common(commit);
    commit->callback([&ctx, o] { ctx.exit_code = do_commit(*o); });
}

}  // namespace berth::cli
