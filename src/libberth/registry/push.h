// Pushing an image from the store to a registry (the other half of pull.h; `berth commit` then
// `berth image push` closes the loop).
//
// What is pushed is the image exactly as the store holds it: its manifest bytes (so the image's
// id, the manifest digest, is the same on the registry and after a pull back), its config, and
// each layer's blob: the kept compressed blob, or the uncompressed tar rebuilt byte for byte from
// the layer's tar-split (a committed layer is such a tar; its digest is its diff_id). Nothing is
// recompressed, so no digest in the manifest changes.
//
//   1. The reference is qualified (registries.toml); the registry itself is used, never a mirror.
//   2. For the config and each layer: HEAD, and a blob the repository has already is skipped;
//      otherwise it is copied from the store into an unnamed O_TMPFILE under ROOT/staging (gone
//      with its last fd, even after a crash), and uploaded monolithically (POST, then PUT with
//      ?digest=), the registry verifying the digest.
//   3. The manifest is PUT under the tag (or the digest) with its media type.
// Bearer tokens are asked with the scope "repository:<path>:pull,push"; a token that grants less
// ends in a clear "access denied ... for pull,push" error before anything is uploaded.
#pragma once

#include <atomic>
#include <string>
#include <string_view>

#include "basic/result.h"
#include "registry/http.h"
#include "registry/registries.h"
#include "store/store.h"

namespace berth::registry {

struct PushOptions {
    HttpOptions http;
};

struct PushResult {
    std::string reference;    // the qualified reference pushed to
    std::string repo_digest;  // "repository@sha256:..." of the manifest
    unsigned blobs_uploaded = 0, blobs_skipped = 0;
};

Result<PushResult> push_image(store::Store& store, std::string_view image_ref, std::string_view reference,
                              const RegistriesConfig& config, const PushOptions& options,
                              const store::ProgressFn& progress, const std::atomic<bool>* cancel);

}  // namespace berth::registry
