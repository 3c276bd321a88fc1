// Streaming layer extraction: one pass over the input computes the blob digest (as read), the
// diff ID (the uncompressed tar) and applies the tar to a tree, treating the archive as hostile.
//
// Why two libarchive readers: the diff ID is the sha256 of the *uncompressed tar bytes*, which a
// tar reader never exposes. So a "raw" reader decompresses (gzip/zstd/xz/none, all libarchive
// filters) and a tar reader parses what it yields, while each hashes the bytes passing by.
//
// Safety rules (each violation fails naming the entry; the caller then discards the tree):
//   - no absolute paths, no "..", no path longer than PATH_MAX or component over NAME_MAX;
//   - parents are opened with openat2(RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS): a path through a
//     symlink is rejected, never followed; the final component is replaced, never followed;
//   - hardlink targets obey the same rules and must already exist inside the tree;
//   - block/char devices are skipped (and reported) unless allowed; a char 0:0 is overlayfs's
//     whiteout format and is applied as a whiteout; FIFOs are kept; trusted.overlay.* xattrs are
//     dropped;
//   - truncated or corrupt streams fail (libarchive), trailing garbage is hashed and verified;
//   - limits (LayerLimits) stop a decompression bomb while it streams, before the disk fills.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "basic/result.h"
#include "store/backend.h"

namespace berth::store {

// Per-layer limits, 0 = none (StoreOptions' max_layer_* from berthd.toml). The ratio is the
// uncompressed bytes over the input bytes read so far, looked at once the output passed
// kRatioGrace: below that a small, very compressible layer (a tar of empty files) is no danger.
struct LayerLimits {
    static constexpr uint64_t kRatioGrace = 64ull << 20;
    uint64_t max_size = 0;
    uint64_t max_entries = 0;
    uint64_t max_ratio = 0;
};

// How many skipped device nodes one layer records by name (the rest are counted).
inline constexpr size_t kMaxSkippedRecorded = 64;

struct ExtractOptions {
    WhiteoutMode whiteouts = WhiteoutMode::Apply;
    bool allow_device_nodes = false;
    LayerLimits limits;
    int tee_fd = -1;  // raw input is also written here (blob copy)
    // A seekable, uncompressed input is not teed: instead the layer's tar-split (tar-split.h) is
    // written here and the result says whether it holds (else the caller copies the input).
    int split_fd = -1;
    const std::atomic<bool>* cancel = nullptr;
    std::function<void(uint64_t bytes_read)> progress;  // about every MiB of input
};

struct ExtractResult {
    std::string blob_digest;  // sha256 of the input bytes
    uint64_t blob_size = 0;
    std::string diff_id;         // sha256 of the uncompressed tar
    uint64_t size = 0;           // uncompressed size
    std::string compression;     // "none", "gzip", "zstd", "xz", ...
    bool split = false;          // split_fd holds a complete tar-split of the input
    bool teed = false;           // tee_fd holds a complete copy of the input
    std::string split_fallback;  // why split_fd was not used or abandoned ("" when split)
    // Device nodes left out (allow_device_nodes = false), as LayerInfo::skipped_device_nodes.
    std::vector<std::string> skipped_device_nodes;
};

// Applies the layer tar read from `fd` to the tree at `dest` (a directory). With an empty `dest`
// nothing is extracted: the input is only decompressed and hashed (verifying a blob whose layer
// is already stored).
Result<ExtractResult> extract_layer(int fd, const std::string& dest, const ExtractOptions& options);

// read(2) for import input that may be a pipe whose writer stalls (`berth image import -`): with
// a `cancel` flag it waits in poll() and looks at the flag every 100 ms, so a cancelled import
// never hangs in a blocking read. Returns the bytes read, 0 at end of input, or -1 with errno set
// (ECANCELED once `cancel` is set). EINTR is retried.
ssize_t read_input(int fd, void* buf, size_t size, const std::atomic<bool>* cancel);

}  // namespace berth::store
