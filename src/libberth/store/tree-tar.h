// Writing trees as tar streams: a container's rootfs export, and the diff of a container against
// its image (for commit), with sha256 computed while writing.
#pragma once

#include <cstdint>
#include <string>

#include "basic/result.h"

namespace berth::store {

struct TarResult {
    std::string digest;  // sha256 of the bytes written
    uint64_t size = 0;
};

// The whole tree at `dir` (sorted, deterministic apart from the files' own metadata).
Result<TarResult> write_tree_tar(const std::string& dir, int fd);

// An OCI layer with what changed from `base` to `dir`: new or changed entries (type, mode, owner,
// size, mtime or ctime differ), and ".wh.NAME" whiteouts for what `dir` no longer has.
Result<TarResult> write_diff_tar(const std::string& dir, const std::string& base, int fd);

}  // namespace berth::store
