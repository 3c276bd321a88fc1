// Pulling an image from a registry into the store.
//
//   1. The reference is qualified (registries.toml) and tried on each endpoint (mirrors first).
//   2. One manifest request: an index (OCI index / Docker list) picks the platform's entry
//      (attestations skipped); if the store already holds that manifest's image, the pull ends
//      here: a pull that finds everything present costs that one request. Schema 1 is refused.
//   3. Otherwise the platform manifest and the config are fetched and verified (digest = sha256 of
//      the raw bytes, size limits), diff_ids counted against the layers, and each layer not
//      already in the store is downloaded, in parallel (kParallelLayers), with its size and digest
//      verified while it streams.
//   4. The blobs are staged as an OCI layout in ROOT/staging/pull-<token>/ (removed on every path
//      out; Store::open removes leftovers after a crash) and imported by the store's importer
//      *while they download* (store/blob-feed.h): layer i is decompressed, hashed and extracted
//      as its bytes arrive, in layer order, while later layers keep downloading; it is committed
//      only once its download verified it, and the importer checks diff_ids and publishes
//      atomically as for any import: nothing half-made is ever visible.
// Why stage and not extract from the socket: the importer's one-pass extraction, its reuse of
// stored layers and its crash safety are then the same code for `import` and `pull`; a download
// never waits for an extraction; and the staged blob is the one the store keeps (linked, not
// copied). The cost is one write and one read (from the page cache) of each new compressed blob
// (docs/PERFORMANCE.md, issue #17).
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "basic/result.h"
#include "registry/auth-file.h"
#include "registry/http.h"
#include "registry/registries.h"
#include "store/store.h"

namespace berth::registry {

inline constexpr unsigned kParallelLayers = 3;

struct Platform {
    std::string os, architecture, variant;
    std::string str() const;  // "linux/arm64/v8"
};
// "os/arch[/variant]"; "" is the host's.
Result<Platform> parse_platform(std::string_view text);
Platform host_platform();

// Where each layer of a pull stands (`berth image pull` draws one line per layer):
//   waiting -> downloading -> verifying -> downloaded -> extracting -> done, or present (the store
//   had it: not fetched). verifying: every byte is in, the digest and size are being checked.
//   Extraction overlaps the download: a layer the importer reaches while it still downloads goes
//   downloading -> extracting -> done, its `done` bytes growing while it is "extracting".
enum class LayerState { Waiting, Downloading, Verifying, Downloaded, Extracting, Done, Present };
// "waiting", "downloading", ... (the bus and the CLI's lines).
std::string_view layer_state_name(LayerState state);

struct LayerProgress {
    std::string digest;  // the compressed blob's
    LayerState state = LayerState::Waiting;
    uint64_t done = 0;   // bytes downloaded
    uint64_t total = 0;  // the descriptor's size
};
// Every layer of the image (manifest order) each time one changes state or gains bytes; called
// from the download threads one at a time (and then from the importing one). Keep it cheap.
using LayersProgressFn = std::function<void(const std::vector<LayerProgress>& layers)>;

struct PullOptions {
    std::string platform;  // "" = the host's
    HttpOptions http;
    // Layers downloaded at once (each on its own connection); 1 = one after the other.
    unsigned parallel_layers = kParallelLayers;
    LayersProgressFn layers;  // per-layer progress; may be empty
};

struct PullResult {
    store::ImageInfo image;
    std::string reference;    // the qualified reference pulled
    std::string repo_digest;  // "repository@sha256:..." of the manifest (or index) the tag named
    bool already_present = false;
    unsigned requests = 0;  // requests to the registry host (manifests and blobs)
};

// The auth file's credentials for `ref` on `ep`, the most specific key first ("host/team/app",
// "host/team", "host"); a mirror is looked up under its own host and path. Pull and push.
Result<std::optional<Credentials>> credentials_for(const RegistriesConfig& config, const Reference& ref,
                                                   const Endpoint& ep);

Result<PullResult> pull_image(store::Store& store, std::string_view reference, const RegistriesConfig& config,
                              const PullOptions& options, const store::ProgressFn& progress,
                              const std::atomic<bool>* cancel);

// The manifest digest `reference`'s tag names on its registry now (`berth auto-update`), asked
// with a HEAD request on each endpoint in turn (mirrors first), a GET where the answer lacks the
// digest. Nothing is downloaded or stored. "sha256:..." (of the index for a multi-platform tag).
Result<std::string> resolve_digest(std::string_view reference, const RegistriesConfig& config,
                                   const HttpOptions& http, const std::atomic<bool>* cancel);

}  // namespace berth::registry
