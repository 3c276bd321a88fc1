// Registry client: authentication and verified manifest and blob fetches (client.h).
#include "registry/client.h"

#include <nlohmann/json.hpp>

#include "basic/string-util.h"
#include "registry/www-authenticate.h"
#include "store/digest.h"

namespace berth::registry {
namespace {

constexpr const char* kManifestAccept =
    "Accept: application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json, "
    "application/vnd.docker.distribution.manifest.v2+json";

// A query-string component (RFC 3986 unreserved kept).
std::string url_escape(std::string_view s) {
    std::string out;
    for (unsigned char c : s) {
        if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~')
            out += static_cast<char>(c);
        else
            out += fmt::format("%{:02X}", c);
    }
    return out;
}

}  // namespace

RegistryClient::RegistryClient(Endpoint endpoint, std::optional<Credentials> credentials, HttpOptions options,
                               const std::atomic<bool>* cancel)
    : endpoint_(std::move(endpoint)),
      credentials_(std::move(credentials)),
      options_(options),
      cancel_(cancel) {}

std::string RegistryClient::describe_status(const HttpResponse& r) const {
    // The distribution API's error body: {"errors":[{"code":"MANIFEST_UNKNOWN","message":"..."}]}
    std::string detail;
    try {
        auto j = nlohmann::json::parse(r.body);
        if (j.is_object() && j.contains("errors") && j["errors"].is_array() && !j["errors"].empty() &&
            j["errors"][0].is_object())
            detail = fmt::format(" ({}: {})", j["errors"][0].value("code", ""),
                                 j["errors"][0].value("message", ""));
    } catch (...) {
    }
    return fmt::format("HTTP {}{}", r.status, sanitize_message(detail));
}

Result<> RegistryClient::authenticate(const HttpResponse& resp) {
    std::vector<Challenge> challenges;
    for (const auto& h : resp.www_authenticate) {
        auto parsed =
            BERTH_TRY_CTX(parse_www_authenticate(h), fmt::format("{}: WWW-Authenticate", endpoint_.host));
        challenges.insert(challenges.end(), parsed.begin(), parsed.end());
    }
    for (const auto& c : challenges) {
        if (c.scheme == "bearer") {
            auto realm = c.params.find("realm");
            if (realm == c.params.end() || realm->second.empty())
                return fail(EPROTO, "{}: Bearer challenge without a realm", endpoint_.host);
            bearer_realm_ = realm->second;
            auto service = c.params.find("service");
            bearer_service_ = service == c.params.end() ? "" : service->second;
            std::string url = bearer_realm_;
            url += url.find('?') == std::string::npos ? "?" : "&";
            if (!bearer_service_.empty()) url += "service=" + url_escape(bearer_service_) + "&";
            url += "scope=" + url_escape("repository:" + endpoint_.path + ":" + actions_);
            HttpRequest rq;
            rq.url = url;
            rq.tls = endpoint_.tls;
            rq.max_body = 1 << 20;
            if (credentials_)
                rq.authorization =
                    "Basic " + base64_encode(credentials_->username + ":" + credentials_->password);
            auto r = BERTH_TRY_CTX(http_fetch(rq, options_, cancel_), "token request");
            if (r.status == 401 || r.status == 403)
                return fail(EACCES, "{}: the token service refused {} ({})", endpoint_.host,
                            credentials_ ? "the credentials" : "anonymous access", describe_status(r));
            if (r.status != 200)
                return fail(EPROTO, "token request to '{}': {}", bearer_realm_, describe_status(r));
            std::string token;
            long expires_in = 60;
            try {
                auto j = nlohmann::json::parse(r.body);
                if (j.contains("token") && j["token"].is_string()) token = j["token"];
                if (token.empty() && j.contains("access_token") && j["access_token"].is_string())
                    token = j["access_token"];
                if (j.contains("expires_in") && j["expires_in"].is_number_integer())
                    expires_in = std::max<long>(j["expires_in"].get<long>(), 10);
            } catch (const std::exception& e) {
                return fail(EBADMSG, "token response from '{}' is not JSON: {}", bearer_realm_, e.what());
            }
            if (token.empty()) return fail(EBADMSG, "token response from '{}' has no token", bearer_realm_);
            authorization_ = "Bearer " + token;
            // Renew a little early, so that a token does not expire mid-request.
            expires_ = std::chrono::steady_clock::now() + std::chrono::seconds(expires_in - 5);
            return {};
        }
    }
    for (const auto& c : challenges)
        if (c.scheme == "basic") {
            if (!credentials_)
                return fail(EACCES, "{}: authentication required and no credentials for it in the auth file",
                            endpoint_.host);
            authorization_ = "Basic " + base64_encode(credentials_->username + ":" + credentials_->password);
            return {};
        }
    return fail(EACCES, "{}: HTTP 401 without a challenge berth supports", endpoint_.host);
}

Result<HttpResponse> RegistryClient::get(const std::string& path, std::vector<std::string> headers,
                                         const std::function<Result<>(std::string_view)>& sink,
                                         const std::function<void()>& reset, uint64_t max_body,
                                         const std::function<uint64_t()>& resume_offset, const char* method) {
    HttpRequest rq;
    rq.url = path;
    rq.method = method;
    rq.headers = std::move(headers);
    rq.sink = sink;
    rq.reset = reset;
    rq.resume_offset = resume_offset;
    rq.max_body = max_body;
    return send(std::move(rq));
}

Result<HttpResponse> RegistryClient::send(HttpRequest rq) {
    if (!bearer_realm_.empty() && std::chrono::steady_clock::now() >= expires_) {
        HttpResponse again;  // the token ran out: ask the realm again, as the challenge said
        again.www_authenticate.push_back(
            fmt::format("Bearer realm=\"{}\",service=\"{}\"", bearer_realm_, bearer_service_));
        BERTH_TRY_VOID(authenticate(again));
    }
    if (rq.url.find("://") == std::string::npos)
        rq.url = rq.url.rfind("/v2/", 0) == 0 ? endpoint_.base_url() + rq.url
                                              : endpoint_.base_url() + "/v2/" + endpoint_.path + "/" + rq.url;
    rq.tls = endpoint_.tls;
    bool authenticated = !authorization_.empty();
    for (int round = 0; round < 2; ++round) {
        rq.authorization = authorization_;
        ++requests_;
        auto r = BERTH_TRY(http_fetch(rq, options_, cancel_));
        if (r.status != 401) return r;
        if (authenticated || round > 0)
            return fail(EACCES, "{}: access denied to '{}'{} ({})", endpoint_.host, endpoint_.path,
                        actions_ == "pull" ? "" : " for " + actions_, describe_status(r));
        BERTH_TRY_VOID(authenticate(r));
        authenticated = true;
        if (rq.reset) rq.reset();
    }
    return fail(EACCES, "{}: access denied to '{}'", endpoint_.host, endpoint_.path);
}

// A manifest request's answer: 200, or the error that names the reference and what was said.
Result<> RegistryClient::manifest_status(const HttpResponse& r, const std::string& ref) const {
    if (r.status == 404)
        return fail(ENOENT, "manifest '{}' not found in '{}/{}' ({})", ref, endpoint_.host, endpoint_.path,
                    describe_status(r));
    if (r.status != 200)
        return fail(EPROTO, "manifest '{}' from '{}/{}': {}", ref, endpoint_.host, endpoint_.path,
                    describe_status(r));
    return {};
}

Result<FetchedManifest> RegistryClient::manifest(const std::string& ref) {
    std::string body;
    auto sink = [&](std::string_view chunk) -> Result<> {
        body.append(chunk);
        return {};
    };
    auto r = BERTH_TRY_CTX(
        get(
            "manifests/" + ref, {kManifestAccept}, sink, [&] { body.clear(); }, kMaxManifestSize),
        fmt::format("manifest '{}' from '{}/{}'", ref, endpoint_.host, endpoint_.path));
    BERTH_TRY_VOID(manifest_status(r, ref));
    FetchedManifest m;
    m.bytes = std::move(body);
    m.digest = store::sha256_digest(m.bytes);
    std::string ct = r.header("content-type");
    m.media_type = std::string(trim(ct.substr(0, ct.find(';'))));
    if (ref.rfind("sha256:", 0) == 0 && m.digest != ref)
        return fail(EBADMSG, "manifest '{}' from '{}': digest mismatch (content is {})", ref, endpoint_.host,
                    m.digest);
    std::string claimed = r.header("docker-content-digest");
    if (ref.rfind("sha256:", 0) != 0 && claimed.rfind("sha256:", 0) == 0 && claimed != m.digest)
        return fail(EBADMSG, "manifest '{}' from '{}': the registry says {} but the content is {}", ref,
                    endpoint_.host, claimed, m.digest);
    return m;
}

Result<std::string> RegistryClient::manifest_digest(const std::string& tag) {
    auto r = BERTH_TRY(get("manifests/" + tag, {kManifestAccept}, nullptr, nullptr, 0, {}, "HEAD"));
    BERTH_TRY_VOID(manifest_status(r, tag));
    std::string claimed = r.header("docker-content-digest");
    if (store::valid_digest(claimed)) return claimed;
    // Not every registry sends it on HEAD (the distribution spec makes it optional): the GET
    // digests what it receives.
    return BERTH_TRY(manifest(tag)).digest;
}

Result<> RegistryClient::blob(const std::string& digest, uint64_t size,
                              const std::function<Result<>(std::string_view)>& sink,
                              const std::function<void()>& reset) {
    if (!store::valid_digest(digest)) return fail(EBADMSG, "invalid blob digest '{}'", digest);
    store::Sha256 h;
    uint64_t got = 0;
    auto verify = [&](std::string_view chunk) -> Result<> {
        got += chunk.size();
        if (got > size) return fail(EBADMSG, "more bytes than the {} its descriptor says", size);
        h.update(chunk);
        return sink(chunk);
    };
    auto restart = [&] {
        h = store::Sha256();
        got = 0;
        if (reset) reset();
    };
    auto r = BERTH_TRY_CTX(get("blobs/" + digest, {}, verify, restart, 0, [&] { return got; }),
                           fmt::format("blob {}", digest));
    if (r.status == 404)
        return fail(ENOENT, "blob {} not found in '{}/{}'", digest, endpoint_.host, endpoint_.path);
    if (r.status != 200 && r.status != 206)  // 206: resumed (http.cpp checked its Content-Range)
        return fail(EPROTO, "blob {} from '{}': {}", digest, endpoint_.host, describe_status(r));
    if (got != size)
        return fail(EBADMSG, "blob {} from '{}': {} bytes, its descriptor says {}", digest, endpoint_.host,
                    got, size);
    std::string actual = h.finish();
    if (actual != digest)
        return fail(EBADMSG, "blob {} from '{}': digest mismatch (content is {})", digest, endpoint_.host,
                    actual);
    return {};
}

Result<std::string> RegistryClient::small_blob(const std::string& digest, uint64_t size, uint64_t limit) {
    if (size > limit)
        return fail(EFBIG, "blob {} is {} bytes, more than the limit of {}", digest, size, limit);
    std::string out;
    BERTH_TRY_VOID(blob(
        digest, size,
        [&](std::string_view c) -> Result<> {
            out.append(c);
            return {};
        },
        [&] { out.clear(); }));
    return out;
}

// ---- push ----

Result<bool> RegistryClient::has_blob(const std::string& digest) {
    if (!store::valid_digest(digest)) return fail(EBADMSG, "invalid blob digest '{}'", digest);
    HttpRequest rq;
    rq.url = "blobs/" + digest;
    rq.method = "HEAD";
    auto r = BERTH_TRY(send(std::move(rq)));
    if (r.status == 200) return true;
    if (r.status == 404) return false;
    return fail(EPROTO, "blob {} in '{}/{}': {}", digest, endpoint_.host, endpoint_.path, describe_status(r));
}

Result<> RegistryClient::upload_blob(const std::string& digest, int fd, uint64_t size) {
    if (!store::valid_digest(digest)) return fail(EBADMSG, "invalid blob digest '{}'", digest);
    HttpRequest start;
    start.url = "blobs/uploads/";
    start.method = "POST";
    auto r = BERTH_TRY(send(std::move(start)));
    std::string location = r.header("location");
    if (r.status != 202 || location.empty())
        return fail(EPROTO, "start upload of blob {} to '{}/{}': {}", digest, endpoint_.host, endpoint_.path,
                    describe_status(r));
    HttpRequest put;
    put.url = resolve_location(r.url, location);
    put.url +=
        (put.url.find('?') == std::string::npos ? "?" : "&") + std::string("digest=") + url_escape(digest);
    put.method = "PUT";
    put.headers = {"Content-Type: application/octet-stream"};
    put.upload_fd = fd;
    put.upload_size = size;
    // An upload URL leads to the same registry: keep the credentials (send() would not add them
    // to another host's URL anyway, http_fetch drops them across hosts).
    auto done = BERTH_TRY(send(std::move(put)));
    if (done.status != 201)
        return fail(EPROTO, "upload blob {} to '{}/{}': {}", digest, endpoint_.host, endpoint_.path,
                    describe_status(done));
    return {};
}

Result<std::string> RegistryClient::put_manifest(const std::string& ref, const std::string& media_type,
                                                 const std::string& bytes) {
    HttpRequest rq;
    rq.url = "manifests/" + ref;
    rq.method = "PUT";
    rq.headers = {"Content-Type: " + media_type};
    rq.upload = bytes;
    auto r = BERTH_TRY(send(std::move(rq)));
    if (r.status != 201)
        return fail(EPROTO, "put manifest '{}' to '{}/{}': {}", ref, endpoint_.host, endpoint_.path,
                    describe_status(r));
    std::string digest = store::sha256_digest(bytes);
    std::string claimed = r.header("docker-content-digest");
    if (claimed.rfind("sha256:", 0) == 0 && claimed != digest)
        return fail(EBADMSG, "put manifest '{}' to '{}': the registry says {} but the content is {}", ref,
                    endpoint_.host, claimed, digest);
    return digest;
}

}  // namespace berth::registry
