// berth fsck: verifies a store's content and references (issue #7).
//
// Checks, in order:
//   1. every blob under ROOT/blobs/sha256 hashes to its name (sha256 streamed over the file);
//   2. every image's manifest blob (its id), config blob and layer blobs exist;
//   3. every image's layer chain IDs follow from its diff IDs (chainID rule) and every layer is
//      present in the backend; a layer's files match its blob: rebuilt from its tar-split
//      (uncompressed layers), or compared entry by entry with the kept compressed blob (each
//      regular file's size and content; kind corrupt-layer, naming the file);
//   4. every container's image exists and its snapshot is present in the backend; every volume's
//      backend object ("v-NAME") exists;
//   5. what nothing references: blobs no image names, backend snapshots no container or volume
//      owns.
//   0. metadata records the store could not read or validate (Store::bad_records(): a truncated
//      or hand-edited images/, containers/ or volumes/ file, refs.json, store.json). With `repair` each is
//      moved to ROOT/quarantine/ (never deleted) and that run removes no garbage: what the record referenced
//      would look unreferenced. A later `fsck --repair` collects it.
// Problems of kind 1-4 are damage (exit status 1; fsck never "repairs" by deleting data that an
// image needs: re-import the image). Kind 5 is garbage: with `repair` it is removed (through
// Store::gc() for blobs/layers/leftovers, and remove_snapshot for orphan snapshots).
#pragma once

#include <string>
#include <vector>

#include "basic/result.h"
#include "store/store.h"

namespace berth::store {

struct FsckProblem {
    enum class Kind {
        BadRecord,
        CorruptBlob,
        MissingBlob,
        BadChain,
        MissingLayer,
        CorruptLayer,
        MissingImage,
        MissingSnapshot,
        UnreferencedBlob,
        OrphanSnapshot
    };
    Kind kind;
    std::string object;  // digest, chain id, container or snapshot name, a bad record's path
    std::string detail;  // human-readable, names the owner
    bool repaired = false;
};

struct FsckReport {
    size_t blobs_checked = 0;
    uint64_t bytes_hashed = 0;
    size_t images_checked = 0;
    size_t layers_checked = 0;
    size_t containers_checked = 0;
    size_t volumes_checked = 0;
    std::vector<FsckProblem> problems;
    std::vector<std::string> gc_removed;  // what --repair's gc removed (layers, blobs, leftovers)

    // Damage: corrupt/missing blobs, broken chains, missing layers/snapshots, bad records not
    // quarantined.
    size_t damage() const;
    // Unreferenced things still present (not repaired).
    size_t garbage() const;
};

std::string_view to_string(FsckProblem::Kind kind);

// Runs the checks on an open store. `repair` removes unreferenced blobs, layers and snapshots.
Result<FsckReport> fsck(Store& store, bool repair);

}  // namespace berth::store
