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
    // The store's own use first; then where it lives: pool.used/size are that file system's (or
    // the thin pool's) numbers, shared with whatever else is on it.
    std::printf("Store %s (backend %s): %s used\n", p.root.c_str(), p.backend.c_str(),
                human_size(usage->store_used).c_str());
    // A thin pool (metadata numbers come only from one) on a loop image or a block device: the
    // numbers are the pool's, not a file system's.
    if (!p.pool_path.empty() || p.metadata_size)
        std::printf("Pool %s: %s used of %s\n", p.pool_path.empty() ? "(dm-thin)" : p.pool_path.c_str(),
                    human_size(p.used).c_str(), human_size(p.size).c_str());
    else
        std::printf("File system %s (%s on %s): %s used of %s\n",
                    usage->fs_mount.empty() ? "?" : usage->fs_mount.c_str(),
                    usage->fs_type.empty() ? "?" : usage->fs_type.c_str(),
                    usage->fs_source.empty() ? "?" : usage->fs_source.c_str(), human_size(p.used).c_str(),
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
    // A container's ID: its layer's snapshot id (retained earlier layers are listed too, under the
    // same name), or rootfs-layers/NAME for a `rootfs =` container.
    for (auto& c : usage->containers)
        rows.push_back({"container", c.layer.empty() ? "-" : c.layer, c.name, size(c.size)});
    for (auto& v : usage->volumes) rows.push_back({"volume", "-", v.name, size(v.size)});
    std::printf("\n%s", render_table({"TYPE", "ID", "NAME", "SIZE"}, rows, {3}).c_str());
    if (!usage->size_note.empty())
        std::printf("\nSizes shown as - are unknown: %s\n", usage->size_note.c_str());
    return 0;
}

}  // namespace

int print_removal_report(const bus::GcReport& report, bool json, const char* what, const char* items) {
    if (json) {
        print_json(bus::to_json(report));
        return 0;
    }
    for (const auto& r : report.removed) {
        auto size = report.sizes.find(r);
        std::printf("Removed %s%s%s\n", what, r.c_str(),
                    size == report.sizes.end() ? "" : (" (" + human_size(size->second) + ")").c_str());
    }
    std::printf("%zu %s removed, %s freed\n", report.removed.size(), items,
                human_size(report.bytes_freed).c_str());
    return 0;
}

namespace {

int do_gc(StorageOptionsCli& o) {
    auto storage = open_storage_verbose(o.verbose);
    if (!storage) return report_error("gc", storage.error().what());
    auto report = (*storage)->garbage_collect();
    if (!report) return report_error("gc", report.error().what());
    return print_removal_report(*report, o.json, "", "item(s)");
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
