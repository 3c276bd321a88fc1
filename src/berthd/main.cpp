// berthd: serves the image store as org.berth.Storage1. Thin: options, open the store, run the loop.
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "basic/string-util.h"
#include "berth-config.h"
#include "bus/storage.h"
#include "daemon.h"
#include "local-storage.h"

namespace {

void usage() {
    std::printf(
        "berthd [OPTIONS]\n\n"
        "Serve berth's image store on D-Bus as org.berth.Storage1.\n\n"
        "  --config FILE        settings file (default /etc/berth/berthd.toml, $BERTH_DAEMON_CONFIG)\n"
        "  --root DIR           store root (overrides the file and $BERTH_STORE_ROOT)\n"
        "  --backend NAME       auto, btrfs, overlay or dm-thin\n"
        "  --bus-address ADDR   bus to serve on (default: the system bus, $DBUS_SYSTEM_BUS_ADDRESS)\n"
        "  --workers N          threads for slow calls (default 8)\n"
        "  --job-workers N      imports/exports running at once (default 16; more wait)\n"
        "  --max-queued N       calls waiting for a thread, per pool (default 1024)\n"
        "  --max-calls-per-user N  slow calls in flight per user other than root (default 16)\n"
        "  --peer-fd N          serve one client on the connected socket N instead of a bus\n"
        "                       (what berth starts in embedded mode; see berthd(8))\n"
        "  --version            print the version\n\n"
        "berthd fsck [--repair] [--json] [--root DIR] [--config FILE]\n"
        "  verify the store offline (what `berth fsck` runs)\n");
}

int report(const berth::Error& error) {
    std::fprintf(stderr, "berthd: %s\n", error.what().c_str());
    return 1;
}

// A private berthd's hello (bus-util.h): READY, or the error that kept the store closed.
void peer_hello(int fd, const berth::Error* error) {
    std::string line = berth::bus::kPeerReady;
    if (error) {
        line = "ERROR " + std::to_string(error->code) + " " + error->message;  // what() adds strerror
        for (char& ch : line)
            if (ch == '\n') ch = ' ';
    }
    line += '\n';
    (void)!::write(fd, line.data(), line.size());
}

}  // namespace

int main(int argc, char** argv) {
    using namespace berth;
    // Exports write into a client's pipe: a reader that goes away must fail that job with EPIPE,
    // not kill the daemon with SIGPIPE (issue #16). Nothing in berthd wants the signal.
    ::signal(SIGPIPE, SIG_IGN);
    if (argc > 1 && std::strcmp(argv[1], "fsck") == 0) return berthd::fsck_command(argc - 1, argv + 1);
    std::string config = berthd::default_config_path(), root, backend, bus_address;
    int peer_fd = -1;
    berthd::DaemonLimits limits;
    static const option long_options[] = {
        {"workers", required_argument, nullptr, 'w'},
        {"job-workers", required_argument, nullptr, 'j'},
        {"max-queued", required_argument, nullptr, 'q'},
        {"max-calls-per-user", required_argument, nullptr, 'u'},
        {"config", required_argument, nullptr, 'c'},
        {"root", required_argument, nullptr, 'r'},
        {"backend", required_argument, nullptr, 'b'},
        {"bus-address", required_argument, nullptr, 'a'},
        {"peer-fd", required_argument, nullptr, 'p'},
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
            case 'p':
                // Embedded mode (bus/private-berthd.cpp): serve the one client on this socket.
                if (auto n = parse_unsigned(optarg); n && *n <= INT32_MAX) {
                    peer_fd = static_cast<int>(*n);
                } else {
                    std::fprintf(stderr, "berthd: invalid --peer-fd '%s'\n", optarg);
                    return 1;
                }
                break;
            case 'w':
            case 'j':
            case 'q':
            case 'u': {
                auto n = parse_unsigned(optarg);
                if (!n || *n == 0 || *n > 65536) {
                    std::fprintf(stderr, "berthd: invalid number '%s' (1 to 65536)\n", optarg);
                    return 1;
                }
                unsigned v = static_cast<unsigned>(*n);
                (c == 'w'   ? limits.workers
                 : c == 'j' ? limits.job_workers
                 : c == 'q' ? limits.max_queued
                            : limits.max_calls_per_user) = v;
                break;
            }
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
    auto options = berthd::load_storage_options(config);
    if (options) {
        if (!root.empty()) options->root = root;
        if (!backend.empty()) options->backend = backend;
    }
    Result<std::unique_ptr<bus::Storage>> storage =
        options ? berthd::open_local_storage(*options)
                : Result<std::unique_ptr<bus::Storage>>(fail(options.error()));
    if (peer_fd >= 0) {
        (void)::fcntl(peer_fd, F_SETFD, FD_CLOEXEC);  // nothing berthd runs inherits the socket
        // Quiet: the client reports what fails; it reads the hello before any D-Bus byte.
        peer_hello(peer_fd, storage ? nullptr : &storage.error());
        if (!storage) return 1;
        berthd::Daemon daemon(**storage, limits);
        if (auto r = daemon.start_peer(peer_fd); !r) return report(r.error());
        auto r = daemon.run();
        return r ? 0 : report(r.error());
    }
    if (!storage) return report(storage.error());
    berthd::Daemon daemon(**storage, limits);
    if (auto r = daemon.start(bus_address); !r) return report(r.error());
    auto pool = (*storage)->pool_status();
    std::fprintf(stderr, "berthd: serving store '%s' (backend %s) as %s\n", options->root.c_str(),
                 pool ? pool->backend.c_str() : "?", bus::kService);
    auto r = daemon.run();
    return r ? 0 : report(r.error());
}
