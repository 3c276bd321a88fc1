// berthd fsck [--repair] [--root DIR] [--config FILE] [--json] (what `berth fsck` execs: only
// berthd links the store): verifies the image store (every blob digest, every layer and snapshot
// reference; store/fsck.h) and with --repair removes what nothing references. Opens the store
// offline, so a serving berthd must not hold it (stop berthd first: the store lock makes a
// concurrent fsck fail cleanly instead of racing it).
// Exit status: 0 clean, 1 damage (corrupt/missing data, unreadable records not quarantined), 2
// unreferenced garbage left (no --repair). A store with unreadable records still opens, so fsck
// names them (kind "bad-record"); --repair moves them to ROOT/quarantine/.
#include <getopt.h>

#include <cstdio>
#include <nlohmann/json.hpp>

#include "daemon.h"
#include "local-storage.h"
#include "store/fsck.h"
#include "store/store.h"

namespace berth::berthd {

namespace {

int report_error(const char*, const std::string& message) {
    std::fprintf(stderr, "berth fsck: %s\n", message.c_str());
    return 1;
}

struct Opts {
    bool repair = false, json = false;
    std::string root, config = default_config_path();
};

struct Context {
    int exit_code = 0;
};

}  // namespace

int fsck_command(int argc, char** argv) {
    auto o = std::make_shared<Opts>();
    static const option long_options[] = {
        {"repair", no_argument, nullptr, 'R'},
        {"json", no_argument, nullptr, 'j'},
        {"root", required_argument, nullptr, 'r'},
        {"config", required_argument, nullptr, 'c'},
        {nullptr, 0, nullptr, 0},
    };
    optind = 1;
    for (int c; (c = getopt_long(argc, argv, "", long_options, nullptr)) >= 0;) {
        if (c == 'R')
            o->repair = true;
        else if (c == 'j')
            o->json = true;
        else if (c == 'r')
            o->root = optarg;
        else if (c == 'c')
            o->config = optarg;
        else
            return 1;
    }
    if (optind < argc) {
        std::fprintf(stderr, "berth fsck: unexpected argument '%s'\n", argv[optind]);
        return 1;
    }
    Context ctx;
    [&ctx, o] {
        // The same options berthd itself serves ($BERTH_STORE_ROOT, $BERTH_STORE_BACKEND): fsck
        // must check the store every other command uses, not the configured default.
        auto opts = load_storage_options(o->config);
        if (!opts) {
            ctx.exit_code = report_error("fsck", opts.error().what());
            return;
        }
        if (!o->root.empty()) opts->root = o->root;
        // Checking only reads: a read-only store (a ro mount, a ro bind) can be checked.
        opts->read_only = !o->repair;
        auto st = store::Store::open(*opts);
        if (!st) {
            ctx.exit_code = report_error("fsck", "open store '" + opts->root + "': " + st.error().what());
            return;
        }
        auto rep = store::fsck(**st, o->repair);
        if (!rep) {
            ctx.exit_code = report_error("fsck", rep.error().what());
            return;
        }
        if (o->json) {
            nlohmann::json j;
            j["blobs_checked"] = rep->blobs_checked;
            j["bytes_hashed"] = rep->bytes_hashed;
            j["images_checked"] = rep->images_checked;
            j["layers_checked"] = rep->layers_checked;
            j["containers_checked"] = rep->containers_checked;
            j["volumes_checked"] = rep->volumes_checked;
            j["problems"] = nlohmann::json::array();
            for (const auto& p : rep->problems)
                j["problems"].push_back({{"kind", std::string(store::to_string(p.kind))},
                                         {"object", p.object},
                                         {"detail", p.detail},
                                         {"repaired", p.repaired}});
            j["gc_removed"] = rep->gc_removed;
            j["damage"] = rep->damage();
            j["garbage"] = rep->garbage();
            std::printf("%s\n", j.dump(2).c_str());
        } else {
            for (const auto& p : rep->problems)
                std::printf("%-18s %s: %s%s\n", std::string(store::to_string(p.kind)).c_str(),
                            p.object.c_str(), p.detail.c_str(),
                            p.repaired && p.kind != store::FsckProblem::Kind::BadRecord ? " (removed)" : "");
            for (const auto& g : rep->gc_removed) std::printf("removed            %s\n", g.c_str());
            std::printf(
                "fsck: %zu blobs (%llu bytes) verified, %zu images, %zu layers, %zu containers, %zu volumes: "
                "%zu damaged, %zu unreferenced%s\n",
                rep->blobs_checked, static_cast<unsigned long long>(rep->bytes_hashed), rep->images_checked,
                rep->layers_checked, rep->containers_checked, rep->volumes_checked, rep->damage(),
                rep->garbage(), o->repair ? " left after repair" : "");
        }
        ctx.exit_code = rep->damage() ? 1 : rep->garbage() ? 2 : 0;
    }();
    return ctx.exit_code;
}

}  // namespace berth::berthd
