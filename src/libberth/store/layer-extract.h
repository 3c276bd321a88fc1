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
//   - block/char devices are rejected unless allowed; trusted.overlay.* xattrs are dropped;
//   - truncated or corrupt streams fail (libarchive), trailing garbage is hashed and verified.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "basic/result.h"
#include "store/backend.h"

namespace berth::store {

struct ExtractOptions {
    WhiteoutMode whiteouts = WhiteoutMode::Apply;
    bool allow_device_nodes = false;
    int tee_fd = -1;                                 // raw input is also written here (blob copy)
    // A seekable, uncompressed input is not teed: instead the layer's tar-split (tar-split.h) is
    // written here and the result says whether it holds (else the caller copies the input).
    int split_fd = -1;
    const std::atomic<bool>* cancel = nullptr;
    std::function<void(uint64_t bytes_read)> progress;  // about every MiB of input
};

struct ExtractResult {
    std::string blob_digest;  // sha256 of the input bytes
    uint64_t blob_size = 0;
    std::string diff_id;      // sha256 of the uncompressed tar
    uint64_t size = 0;        // uncompressed size
    std::string compression;  // "none", "gzip", "zstd", "xz", ...
    bool split = false;           // split_fd holds a complete tar-split of the input
    bool teed = false;            // tee_fd holds a complete copy of the input
    std::string split_fallback;   // why split_fd was not used or abandoned ("" when split)
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
