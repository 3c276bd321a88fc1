// libFuzzer target: the layer importer (store/layer-extract.h) on hostile tar streams (tar
// entries, whiteouts, paths, links, compression). Oracles beyond "no crash / no sanitizer report":
//   - nothing is ever written outside the destination tree (its parent holds only "dest"; the
//     whole process runs in a read-only mount namespace, see fuzz-sandbox.h);
//   - a successful extraction reports a well-formed digest for the blob and the diff ID, and the
//     blob digest equals sha256 of the input (digests verified while streaming);
//   - both whiteout modes (Apply for btrfs/dm-thin, Overlay for overlayfs) are exercised.
// Seeds: tests/fuzz/corpus/archive/.
#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "basic/fs-util.h"
#include "fuzz-sandbox.h"
#include "store/digest.h"
#include "store/layer-extract.h"

namespace {
std::string g_sandbox;

size_t count_entries(const std::string& dir) {
    size_t n = 0;
    if (DIR* d = opendir(dir.c_str())) {
        while (dirent* e = readdir(d))
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
        closedir(d);
    }
    return n;
}
}  // namespace

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
    (void)berth::store::sha256_digest("warm up OpenSSL before / turns read-only");
    g_sandbox = berth::fuzz::enter_sandbox(*argc, *argv);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace berth::store;
    if (size > (4u << 20)) return -1;
    int fd = memfd_create("layer", MFD_CLOEXEC);
    if (fd < 0) abort();
    if (size && write(fd, data, size) != static_cast<ssize_t>(size)) abort();
    lseek(fd, 0, SEEK_SET);

    std::string run = g_sandbox + "/run";
    std::string dest = run + "/dest";
    (void)berth::remove_tree(run);
    if (mkdir(run.c_str(), 0755) != 0 || mkdir(dest.c_str(), 0755) != 0) abort();

    ExtractOptions opts;
    opts.whiteouts = (size && (data[size - 1] & 1)) ? WhiteoutMode::Overlay : WhiteoutMode::Apply;
    opts.allow_device_nodes = size > 1 && (data[size - 2] & 1);
    auto r = extract_layer(fd, dest, opts);
    close(fd);

    if (count_entries(run) != 1 || count_entries(g_sandbox) != 1) {
        fprintf(stderr, "fuzz-archive: the extractor wrote outside its destination\n");
        abort();
    }
    if (r) {
        std::string expect = sha256_digest(std::string_view(reinterpret_cast<const char*>(data), size));
        if (!valid_digest(r->diff_id) || r->blob_digest != expect || r->blob_size != size) {
            fprintf(stderr, "fuzz-archive: bad digests %s %s (want %s)\n", r->blob_digest.c_str(),
                    r->diff_id.c_str(), expect.c_str());
            abort();
        }
    }
    (void)berth::remove_tree(run);
    return 0;
}
