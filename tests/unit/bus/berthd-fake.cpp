// berthd's real bus layer (daemon core) serving a FakeStorage: `berthd-fake --bus-address ADDR`.
#include <cstdio>
#include <cstring>

#include "daemon.h"
#include "fake-storage.h"

int main(int argc, char** argv) {
    std::string address;
    for (int i = 1; i + 1 < argc; ++i)
        if (std::strcmp(argv[i], "--bus-address") == 0) address = argv[i + 1];
    berth::test::FakeStorage storage;
    berth::berthd::Daemon daemon(storage);
    if (auto r = daemon.start(address); !r) {
        std::fprintf(stderr, "berthd-fake: %s\n", r.error().what().c_str());
        return 1;
    }
    if (auto r = daemon.run(); !r) {
        std::fprintf(stderr, "berthd-fake: %s\n", r.error().what().c_str());
        return 1;
    }
    return 0;
}
