// gzip layers inflated with ISA-L (Intel's Intelligent Storage Acceleration Library, Debian's
// libisal2), dlopen()ed where it is used (basic/dlopen-util.h), with libarchive's zlib as the
// fallback when the library is absent.
//
// Why: inflating is the largest CPU cost of extracting a gzip layer after the kernel's, and
// isal_inflate runs about 3x zlib's inflate on the same layers (docs/PERFORMANCE.md, "gzip
// decoders": bench/gzip-decoders.sh). libdeflate is as fast but has no streaming API: a layer
// can be GBs and berth extracts while it reads, so it does not fit.
//
// What stays the same: the decoder yields the uncompressed tar bytes to the same tar reader, and
// the caller still hashes them (diff ID), applies the size and ratio limits to every chunk, and
// hashes and tees the input as it reads it. Like libarchive's gzip filter it decodes
// concatenated gzip members and stops at the first bytes after a member that are not another
// member (trailing bytes stay the caller's to hash); a truncated or corrupt stream is an error.
// Stricter than libarchive 3.6, whose gzip filter skips the trailer unchecked: a wrong CRC-32 or
// size in a member's trailer is an error too, as in Go's compress/gzip (docker, podman).
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "basic/dlopen-util.h"
#include "basic/result.h"

struct inflate_state;

namespace berth::store {

extern DlLibrary libisal;

// True when `data` starts a gzip member (magic 1f 8b, method 8: deflate).
bool is_gzip_header(const void* data, size_t size);

// Whether gzip layers go through ISA-L: the library loads and BERTH_GZIP_DECODER is not "zlib"
// (which forces libarchive's zlib, for benchmarks and for the tests of the fallback).
bool use_isal_for_gzip();

class IsalGunzip {
public:
    // Next input bytes: sets *data and returns their count, 0 at end of input, or -1 when the
    // read failed (the reader keeps its own error).
    using ReadInput = std::function<ssize_t(const void** data)>;

    // `first`/`first_size`: input already read (the bytes that showed it is gzip), decoded first.
    // Call only after libisal.load() succeeded.
    IsalGunzip(ReadInput read, const void* first, size_t first_size);
    ~IsalGunzip();
    IsalGunzip(const IsalGunzip&) = delete;
    IsalGunzip& operator=(const IsalGunzip&) = delete;

    // Up to `size` uncompressed bytes into `out`: their count, 0 at the end of the last member,
    // -1 on an input failure (input_failed() true) or a corrupt stream (error() says what).
    ssize_t read(void* out, size_t size);
    bool input_failed() const { return input_failed_; }
    const std::string& error() const { return error_; }

private:
    bool refill();
    ssize_t fail(std::string message);

    ReadInput read_;
    std::unique_ptr<inflate_state> state_;
    bool input_eof_ = false;
    bool input_failed_ = false;
    bool done_ = false;
    std::vector<uint8_t> carry_;  // input bytes around a member boundary (read())
    std::string error_;
};

}  // namespace berth::store
