// One repository on one registry endpoint, over the distribution API (/v2/<path>/manifests/<ref>,
// /v2/<path>/blobs/<digest>), with its authentication:
//   - anonymous first; on 401 the WWW-Authenticate challenge decides:
//   - Basic: the credentials from the auth file (none: a clear "authentication required" error);
//   - Bearer: a token from the challenge's realm (service, scope "repository:<path>:pull"), asked
//     with the Basic credentials when there are some (scope "...:pull,push" for a push); the answer's "token"
//     or "access_token" is used until "expires_in" (default 60 s) runs out, then fetched again.
// A second 401 after authenticating is an error (never an endless loop of challenges).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "basic/result.h"
#include "registry/auth-file.h"
#include "registry/http.h"
#include "registry/registries.h"

namespace berth::registry {

inline constexpr uint64_t kMaxManifestSize = 4 << 20;  // distribution's own limit is 4 MiB
inline constexpr uint64_t kMaxConfigSize = 16 << 20;

struct FetchedManifest {
    std::string bytes;       // exactly as received: its sha256 is its digest
    std::string media_type;  // Content-Type (or the document's mediaType)
    std::string digest;      // sha256 of bytes
};

class RegistryClient {
public:
    RegistryClient(Endpoint endpoint, std::optional<Credentials> credentials, HttpOptions options,
                   const std::atomic<bool>* cancel);

    // `ref`: a tag or a digest. A digest is verified against the bytes; a tag's answer is checked
    // against Docker-Content-Digest when the registry sends one.
    Result<FetchedManifest> manifest(const std::string& ref);
    // The digest a tag names now, without fetching the manifest: a HEAD request (no pull counted
    // by registries that meter pulls), its Docker-Content-Digest; a GET when the answer lacks it.
    Result<std::string> manifest_digest(const std::string& tag);
    // Streams a blob to `sink`, verifying its size and digest as it arrives. A transfer cut short
    // is resumed with Range where the sink stands (http.h); `reset` starts the sink over (a server
    // that ignores Range, a redirect). The error names the digest.
    Result<> blob(const std::string& digest, uint64_t size,
                  const std::function<Result<>(std::string_view)>& sink, const std::function<void()>& reset);
    // A small blob (the image config) into memory, verified.
    Result<std::string> small_blob(const std::string& digest, uint64_t size, uint64_t limit);

    // Push (push.h). Whether the repository has the blob (HEAD).
    Result<bool> has_blob(const std::string& digest);
    // A monolithic upload (POST blobs/uploads/, then PUT ?digest=) of `size` bytes of `fd`; the
    // registry verifies the digest.
    Result<> upload_blob(const std::string& digest, int fd, uint64_t size);
    // PUT manifests/<ref> with its media type; returns the digest the registry stored it under.
    Result<std::string> put_manifest(const std::string& ref, const std::string& media_type,
                                     const std::string& bytes);
    // The token scope's actions: "pull" (default) or "pull,push". Set before the first request.
    void set_actions(std::string actions) { actions_ = std::move(actions); }

    void set_cancel(const std::atomic<bool>* cancel) { cancel_ = cancel; }
    const Endpoint& endpoint() const { return endpoint_; }
    // Requests sent to the registry host (manifests and blobs, not token requests): for tests.
    unsigned requests() const { return requests_; }

private:
    Result<HttpResponse> get(const std::string& path, std::vector<std::string> headers,
                             const std::function<Result<>(std::string_view)>& sink,
                             const std::function<void()>& reset, uint64_t max_body,
                             const std::function<uint64_t()>& resume_offset = {}, const char* method = "GET");
    // Sends `rq` (its url relative to /v2/<path>/ unless absolute) with this client's credentials.
    Result<HttpResponse> send(HttpRequest rq);
    Result<> authenticate(const HttpResponse& challenge_response);
    std::string describe_status(const HttpResponse& r) const;
    Result<> manifest_status(const HttpResponse& r, const std::string& ref) const;

    Endpoint endpoint_;
    std::optional<Credentials> credentials_;
    HttpOptions options_;
    const std::atomic<bool>* cancel_;
    std::string authorization_;
    std::chrono::steady_clock::time_point expires_{};
    std::string bearer_realm_, bearer_service_;
    std::string actions_ = "pull";
    unsigned requests_ = 0;
};

}  // namespace berth::registry
