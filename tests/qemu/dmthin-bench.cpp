// dmthin-bench: snapshot creation time, dm-thin vs btrfs, on the same disk of the same VM.
// Run by bench/dmthin-snapshot-bench.sh inside Debian's kernel under qemu (never in CI).
//   dmthin-bench META_DEV DATA_DEV [SIZES_MIB...]
// For each image size: an image layer holding one file of that size; then the time of what a
// container start costs on each backend, median of several runs:
//   dm-thin  SnapshotBackend::prepare_snapshot (create_snap message + device activation)
//   btrfs    btrfs_util_create_snapshot of the image subvolume (what the btrfs backend does)
// Prints "@@ BENCH size_mib=N dmthin_ms=X btrfs_ms=Y ratio=X/Y" lines for the script to collect.
#include <btrfsutil.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "basic/fs-util.h"
#include "store/dmthin/dmthin-backend.h"

using namespace berth;
using namespace berth::store;

namespace {

constexpr int kRuns = 7;

double now_ms() {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

bool fill(const std::string& path, int mib) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return false;
    std::string chunk(1 << 20, '\x5a');
    for (int i = 0; i < mib; i++) {
        chunk[0] = static_cast<char>(i);
        if (::write(fd, chunk.data(), chunk.size()) != static_cast<ssize_t>(chunk.size())) return false;
    }
    bool ok = ::fsync(fd) == 0;
    ::close(fd);
    return ok;
}

int die(const std::string& what) {
    std::fprintf(stderr, "dmthin-bench: %s\n", what.c_str());
    return 1;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 3) return die("usage: dmthin-bench META_DEV DATA_DEV [SIZES_MIB...]");
    std::vector<int> sizes;
    for (int i = 3; i < argc; i++) sizes.push_back(std::atoi(argv[i]));
    if (sizes.empty()) sizes = {1, 100, 1024};

    std::vector<double> dm_ms(sizes.size()), btrfs_ms(sizes.size());
    // ---- dm-thin
    {
        DmThinOptions o;
        o.state_dir = "/tmp/bench-dmthin";
        o.pool_name = "bench-pool";
        o.metadata_device = argv[1];
        o.data_device = argv[2];
        o.base_size = 2ull << 30;
        o.min_free_data_percent = 1;
        auto backend = make_dmthin_backend(o);
        if (!backend) return die(backend.error().what());
        for (size_t i = 0; i < sizes.size(); i++) {
            std::string chain = fmt::format("sha256:{:064x}", i + 1);
            auto w = (*backend)->begin_layer(chain, std::nullopt);
            if (!w) return die(w.error().what());
            if (!fill(w->path + "/blob", sizes[i])) return die("fill dm-thin layer");
            if (auto c = (*backend)->commit_layer(*w); !c) return die(c.error().what());
            std::vector<double> runs;
            for (int r = 0; r < kRuns; r++) {
                std::string id = fmt::format("c{}-{}", i, r);
                double t0 = now_ms();
                auto s = (*backend)->prepare_snapshot(id, chain);
                double t1 = now_ms();
                if (!s) return die(s.error().what());
                runs.push_back(t1 - t0);
            }
            for (int r = 0; r < kRuns; r++) (void)(*backend)->remove_snapshot(fmt::format("c{}-{}", i, r));
            dm_ms[i] = median(runs);
            std::printf("@@ dm-thin %d MiB: median %.2f ms over %d runs\n", sizes[i], dm_ms[i], kRuns);
            std::fflush(stdout);
        }
        backend->reset();
        if (auto r = deactivate_dmthin_pool(o); !r) return die(r.error().what());
    }
    // ---- btrfs on the same data disk
    {
        std::string dev = argv[2];
        std::string cmd = "mkfs.btrfs -q -f " + dev;
        if (std::system(cmd.c_str()) != 0) return die("mkfs.btrfs failed");
        (void)mkdir_p("/tmp/bench-btrfs");
        if (::mount(dev.c_str(), "/tmp/bench-btrfs", "btrfs", 0, "") < 0) return die("mount btrfs");
        for (size_t i = 0; i < sizes.size(); i++) {
            std::string image = fmt::format("/tmp/bench-btrfs/image{}", i);
            if (btrfs_util_create_subvolume(image.c_str(), 0, nullptr, nullptr) != BTRFS_UTIL_OK)
                return die("create subvolume");
            if (!fill(image + "/blob", sizes[i])) return die("fill btrfs image");
            if (btrfs_util_set_subvolume_read_only(image.c_str(), true) != BTRFS_UTIL_OK)
                return die("set ro");
            std::vector<double> runs;
            for (int r = 0; r < kRuns; r++) {
                std::string snap = fmt::format("/tmp/bench-btrfs/c{}-{}", i, r);
                double t0 = now_ms();
                auto err = btrfs_util_create_snapshot(image.c_str(), snap.c_str(), 0, nullptr, nullptr);
                double t1 = now_ms();
                if (err != BTRFS_UTIL_OK) return die(btrfs_util_strerror(err));
                runs.push_back(t1 - t0);
            }
            btrfs_ms[i] = median(runs);
            std::printf("@@ btrfs %d MiB: median %.2f ms over %d runs\n", sizes[i], btrfs_ms[i], kRuns);
            std::fflush(stdout);
        }
        ::umount2("/tmp/bench-btrfs", 0);
    }
    for (size_t i = 0; i < sizes.size(); i++)
        std::printf("@@ BENCH size_mib=%d dmthin_ms=%.2f btrfs_ms=%.2f ratio=%.2f\n", sizes[i], dm_ms[i],
                    btrfs_ms[i], dm_ms[i] / btrfs_ms[i]);
    return 0;
}
