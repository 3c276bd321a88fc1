// BlobFeed: blobs of an OCI layout that are still arriving while the layout is imported. A registry
// pull (registry/pull.cpp) downloads its layers into ROOT/staging/pull-*/blobs/sha256/HEX.part and
// the importer extracts each layer while its bytes come in: download -> hash -> decompress ->
// extract in one pass per layer, later layers downloading meanwhile (issue #17).
//
// Why follow the growing file rather than hand the importer the socket's bytes: a download never
// waits for an extraction (layer 3 keeps arriving while layer 1 is extracted, and a slow disk never
// stalls a connection into the registry's timeouts); the blob on disk is the one the store keeps
// (linked into the import's staging, not written a second time); and the importer still gets what
// it always takes, a file descriptor, so the extractor is unchanged. While a layer is followed, a
// thread splices the file's new bytes into a pipe whose read end the importer reads.
//
// What makes it safe:
//   - The pipe ends (EOF) only once the producer said the blob is complete: all of it written,
//     its size and digest verified, renamed to its final name. An extraction that reached the end
//     has therefore read a verified blob (and hashed it itself as well). The importer asks
//     verdict() before it commits the layer (LayerTransaction) and commits only on Verified.
//   - A transfer that starts over from byte 0 (a server that ignored Range) after bytes were
//     handed on breaks the stream: the pipe ends early, verdict() says Restarted, and the importer
//     aborts that layer and extracts it again from the complete file (Mode::Complete). Bytes from
//     two transfers are never mixed into one extraction.
//   - A failed download ends its stream and verdict() returns its error; a halt (the pull
//     cancelled or failed elsewhere) wakes every wait.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "basic/result.h"
#include "basic/unique.h"

namespace berth::store {

class BlobFeed {
public:
    // `halt`: set when the pull stops (cancelled, or failed elsewhere); every wait looks at it.
    explicit BlobFeed(const std::atomic<bool>* halt) : halt_(halt) {}
    ~BlobFeed();  // joins the followers (their pipes' readers must be closed by then)
    BlobFeed(const BlobFeed&) = delete;
    BlobFeed& operator=(const BlobFeed&) = delete;

    // ---- the producer (download threads) ----
    // `member` ("blobs/sha256/HEX", as the layout names it) will arrive: first in `part`, then
    // renamed to `final_path`. Called for every arriving blob before the import starts.
    void expect(const std::string& member, std::string part, std::string final_path);
    // `part` was created (empty): bytes may follow.
    void writing(const std::string& member);
    // `n` more bytes are in `part` (written, visible to a reader).
    void grew(const std::string& member, uint64_t n);
    // The transfer starts over from byte 0. Call before `part` is truncated.
    void restart(const std::string& member);
    // All of it is in, verified, and renamed to `final_path`.
    void complete(const std::string& member);
    // The download failed (or was stopped): readers get `why`.
    void fail(const std::string& member, const Error& why);

    // ---- the consumer (the importer) ----
    bool arriving(const std::string& member) const;
    // Follow: a pipe that yields the blob's bytes as they arrive (the file itself once complete).
    // Complete: waits for the verified blob and opens it (a regular, seekable file).
    enum class Mode { Follow, Complete };
    Result<UniqueFd> open(const std::string& member, Mode mode);
    // What became of the bytes a reader got, asked once its reading ended (EOF or an error):
    // Verified (the blob is complete and verified, and a follower handed on all of it, unmixed),
    // Restarted (the transfer started over after bytes were handed on: read it again, Complete),
    // Pending (the download goes on: the reader stopped on its own) or the download's error.
    enum class Verdict { Verified, Restarted, Pending };
    Result<Verdict> verdict(const std::string& member) const;
    // The complete blob's path (valid once verdict() says Verified or open(Complete) returned).
    std::string final_path(const std::string& member) const;

private:
    enum class Stage { Expected, Writing, Complete, Failed };
    struct Blob {
        std::string part, final_path;
        Stage stage = Stage::Expected;
        uint64_t size = 0;        // bytes [0, size) are in the file
        uint64_t generation = 0;  // transfers started over so far
        std::optional<Error> error;
        bool broken = false;                // restarted after a follower handed bytes on
        std::optional<Error> follow_error;  // the follower could not read the file
    };
    void follow(Blob& blob, UniqueFd out);
    bool halted() const { return halt_ && halt_->load(); }

    const std::atomic<bool>* halt_;
    mutable std::mutex mu_;
    std::condition_variable changed_;
    bool closing_ = false;               // the destructor runs: followers end
    std::map<std::string, Blob> blobs_;  // node-based: a follower keeps its Blob& across inserts
    std::vector<std::thread> followers_;
};

}  // namespace berth::store
