// berthd: serves the image store as org.berth.Storage1. Thin: options, open the store, run the loop.
#include <getopt.h>
#include <signal.h>
#include <systemd/sd-daemon.h>

#include <cstdio>
#include <cstdlib>

#include "berth-config.h"
#include "bus/storage.h"
#include "daemon.h"

namespace {

void usage() {
    std::printf(
        "berthd [OPTIONS]\n\n"
        "Serve berth's image store on D-Bus as org.berth.Storage1.\n\n"
        "  --config FILE        settings file (default /etc/berth/berthd.toml, $BERTH_DAEMON_CONFIG)\n"
        "  --root DIR           store root (overrides the file and $BERTH_STORE_ROOT)\n"
        "  --backend NAME       auto, btrfs, overlay or dm-thin\n"
        "  --bus-address ADDR   bus to serve on (default: the system bus, $DBUS_SYSTEM_BUS_ADDRESS)\n"
        "  --version            print the version\n");
}

}  // namespace

int main(int argc, char** argv) {
    using namespace berth;
    // Exports write into a client's pipe: a reader that goes away must fail that job with EPIPE,
    // not kill the daemon with SIGPIPE (issue #16). Nothing in berthd wants the signal.
    ::signal(SIGPIPE, SIG_IGN);
    std::string config = bus::default_config_path(), root, backend, bus_address;
    static const option long_options[] = {
        {"config", required_argument, nullptr, 'c'},
        {"root", required_argument, nullptr, 'r'},
        {"backend", required_argument, nullptr, 'b'},
        {"bus-address", required_argument, nullptr, 'a'},
        {"help", no_argument, nullptr, 'h'},
        {"version", no_argument, nullptr, 'V'},
        {nullptr, 0, nullptr, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "h", long_options, nullptr)) >= 0) {
        switch (c) {
            case 'c':
                config = optarg;
                break;
            case 'r':
                root = optarg;
                break;
            case 'b':
                backend = optarg;
                break;
            case 'a':
                bus_address = optarg;
                break;
            case 'h':
                usage();
                return 0;
            case 'V':
                std::printf("berthd %s\n", BERTH_VERSION);
                return 0;
            default:
                return 1;
        }
    }
    if (optind < argc) {
        std::fprintf(stderr, "berthd: unexpected argument '%s'\n", argv[optind]);
        return 1;
    }
    auto options = bus::load_storage_options(config);
    if (!options) {
        std::fprintf(stderr, "berthd: %s\n", options.error().what().c_str());
        return 1;
    }
    if (!root.empty()) options->root = root;
    if (!backend.empty()) options->backend = backend;

    auto storage = bus::open_local_storage(*options);
    if (!storage) {
        std::fprintf(stderr, "berthd: %s\n", storage.error().what().c_str());
        return 1;
    }
    berthd::Daemon daemon(**storage);
    if (auto r = daemon.start(bus_address); !r) {
        std::fprintf(stderr, "berthd: %s\n", r.error().what().c_str());
        return 1;
    }
    auto pool = (*storage)->pool_status();
    std::fprintf(stderr, "berthd: serving store '%s' (backend %s) as %s\n", options->root.c_str(),
                 pool ? pool->backend.c_str() : "?", bus::kService);
    if (auto r = daemon.run(); !r) {
        std::fprintf(stderr, "berthd: %s\n", r.error().what().c_str());
        return 1;
    }
    return 0;
}
