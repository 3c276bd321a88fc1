// The HTTP transport of registry pulls (libcurl easy interface, one handle per request).
//
// Why redirects are followed here and not by curl: a registry commonly answers a blob GET with a
// redirect to a CDN or object store on another host; the Authorization header (a registry token or
// Basic credentials) must not travel there. So each hop is a new request, and the header is kept
// only while the host (scheme://host:port) stays the same. A redirect loop ends after kMaxRedirects.
//
// Retries: 429, 5xx and connection resets are retried with exponential backoff (Retry-After is
// honoured up to a cap). A body sink is told to start over (reset) before a retry, so a half-read
// blob is never appended to, unless the request can resume: then the retry asks for the rest
// ("Range: bytes=N-", N = what the sink holds). A 206 whose Content-Range starts at N continues the
// sink; a 200 (the server ignores Range, as it may) resets the sink first and sends it all again;
// anything else is an error. The caller's digest covers the whole blob either way.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "basic/result.h"
#include "registry/registries.h"

namespace berth::registry {

struct HttpOptions {
    long connect_timeout_s = 30;
    // A transfer slower than low_speed_bytes per second for low_speed_time_s seconds is aborted.
    long low_speed_bytes = 1024;
    long low_speed_time_s = 30;
    int retries = 3;        // extra attempts after the first on 429/5xx/resets
    long backoff_ms = 250;  // first backoff; doubled each retry
    long max_retry_after_s = 10;
    static constexpr int kMaxRedirects = 10;
};

struct HttpRequest {
    std::string url;
    std::string method = "GET";        // "GET", "HEAD", "POST" or "PUT"
    std::vector<std::string> headers;  // "Name: value"
    std::string authorization;         // "Bearer ..." / "Basic ..."; dropped across hosts
    TlsFiles tls;                      // extra CAs and a client certificate for this host
    // Where the body goes; "" for no body kept. A sink returning an error aborts the transfer.
    std::function<Result<>(std::string_view chunk)> sink;
    std::function<void()> reset;  // the sink starts over (before a retry)
    // Bytes the sink holds (it can resume there); unset: a retry always resets.
    std::function<uint64_t()> resume_offset;
    uint64_t max_body = 0;  // 0 = no limit (a sink usually enforces its own)
    // The request body of a POST or PUT (pushes): `upload` in memory, or `upload_size` bytes of
    // `upload_fd` from offset 0 (read with pread, so a retry or a redirect sends it again whole).
    std::string upload;
    int upload_fd = -1;
    uint64_t upload_size = 0;
};

struct HttpResponse {
    long status = 0;
    std::string url;                                          // the last hop's URL
    std::map<std::string, std::string> headers;               // lower-cased names, last value wins
    std::vector<std::string> www_authenticate;                // every WWW-Authenticate header
    std::string body;                                         // only when the request had no sink
    std::string header(const std::string& lower_name) const;  // "" when absent
};

// Performs `request`, following redirects and retrying as described above. Any HTTP status is a
// result (the caller decides what a 404 means); transport failures are errors naming the URL.
Result<HttpResponse> http_fetch(const HttpRequest& request, const HttpOptions& options,
                                const std::atomic<bool>* cancel);

// "scheme://host[:port]" of an absolute URL ("" when it is not one).
std::string url_origin(std::string_view url);
// Resolves a Location header against the URL it came from.
std::string resolve_location(std::string_view base, std::string_view location);

}  // namespace berth::registry
