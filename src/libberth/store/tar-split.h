// tar-split: an uncompressed layer blob kept as "everything but the file contents" plus
// references to the files the layer already holds, so an import writes each byte once.
//
// An OCI layer blob must come back out byte for byte (its sha256 is the layer's digest and diff
// ID), but the bytes of a tar are mostly regular-file contents, which the layer's tree already
// stores. So instead of a copy of the tar, the store keeps a split file:
//
//   "BERTHTS1"                                    magic, 8 bytes
//   records, each a type byte then its fields (varints are LEB128, unsigned):
//     'R' varint n, n bytes                       raw tar bytes, verbatim (headers, pax and GNU
//                                                 long-name blocks, padding, end-of-archive
//                                                 blocks, trailing bytes, any data we did not
//                                                 reference)
//     'F' varint size, u32le crc32c, varint len, path
//                                                 `size` bytes of content: the regular file at
//                                                 `path` (relative, '/'-separated) in the layer
//     'E' varint tar_size, varint len, digest     the end: total size and "sha256:<hex>" of the
//                                                 tar; a split without it is truncated
//
// Rebuilding streams the records in order, reading referenced files from the layer's tree
// (backend.layer_view) beneath it without following symlinks; each file must have exactly its
// recorded size and crc32c (so a damaged file is named), and the whole stream must hash to the
// recorded and expected digest. Nothing here decides *whether* a layer may be split: the
// extractor records references only for regular files it wrote itself and falls back to a full
// blob when one of them is later replaced (docs/STORAGE.md, "tar-split").
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "basic/result.h"

namespace berth::store {

// CRC-32C (Castagnoli), hardware-assisted where the CPU has it. `crc` is the running value
// (0 to start).
uint32_t crc32c(uint32_t crc, const void* data, size_t size);

// Classifies the raw tar stream as the tar reader consumes it. The caller feeds every byte in
// order (feed) and, at each entry, tells where its data starts (header) and, for a regular file
// it wrote, that the data is that file (begin_file/end_file). Bytes are held in a pending buffer
// only until they are classified, so memory stays around the reader's read-ahead; an entry
// whose unreferenced data would grow it past `max_pending` abandons the split instead.
class SplitRecorder {
public:
    explicit SplitRecorder(int out_fd, size_t max_pending = 64 << 20);

    void feed(const char* data, size_t size);
    // Everything before `data_start` not yet classified is raw.
    void header(uint64_t data_start);
    // [data_start, data_start + size) is the content of `path`; end_file records it once the
    // content is written (crc of what was written). Call header(data_start) first.
    void begin_file(uint64_t data_start, uint64_t size);
    void end_file(std::string_view path, uint64_t size, uint32_t crc);
    // Gives up the split (the caller keeps a full blob). The first reason is kept.
    void abandon(std::string reason);
    // All remaining bytes are raw; writes the end record and flushes.
    Result<> finish(uint64_t tar_size, const std::string& digest);

    bool abandoned() const { return abandoned_; }
    const std::string& reason() const { return reason_; }
    Result<> error() const;  // a write error seen while recording

private:
    enum class Kind { Raw, Skip };
    void apply(const char* data, size_t size, Kind kind);
    void classify(uint64_t end, Kind kind);
    void flush_raw();
    void flush_out(bool force);

    int out_fd_;
    size_t max_pending_;
    bool abandoned_ = false;
    std::string reason_;
    Error write_error_;
    bool write_failed_ = false;

    uint64_t fed_ = 0;         // stream bytes fed so far
    uint64_t done_ = 0;        // stream bytes classified so far
    uint64_t region_end_ = 0;  // [done_, region_end_) is already classified as region_kind_
    Kind region_kind_ = Kind::Raw;
    std::string pending_;  // bytes [done_, fed_), from pending_head_
    size_t pending_head_ = 0;
    std::string raw_;  // raw bytes not yet written as an 'R' record
    std::string out_;  // encoded records not yet written
};

// Rebuilds the tar described by the split file at `split_path` from the layer tree at
// `tree_root`, passing it to `sink` in order. Fails (EBADMSG/ENOENT, naming the layer file or the
// split) on any mismatch; `expect_digest` ("" = only the recorded one) is checked at the end, so a
// sink that must not see wrong bytes has to buffer or discard its output on failure. Returns the
// tar's size.
Result<uint64_t> rebuild_tar(const std::string& split_path, const std::string& tree_root,
                             const std::string& expect_digest,
                             const std::function<Result<>(const char*, size_t)>& sink);

}  // namespace berth::store
