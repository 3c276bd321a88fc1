// libcurl transport for registry requests; see http.h for why redirects and retries are ours.
#include "registry/http.h"

#include <curl/curl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <mutex>
#include <optional>
#include <thread>

#include "basic/dlopen-util.h"
#include "basic/fs-util.h"
#include "basic/string-util.h"
#include "basic/unique.h"

// libcurl (with its TLS, HTTP/2, IDN, PSL, LDAP, SSH... closure behind it), loaded by dlopen() at
// the first registry request (basic/dlopen-util.h): a private berthd serving one `berth run`
// never maps it.
#define BERTH_LIBCURL_SYMBOLS(X) \
    X(curl_easy_getinfo)         \
    X(curl_easy_init)            \
    X(curl_easy_perform)         \
    X(curl_easy_setopt)          \
    X(curl_easy_strerror)        \
    X(curl_global_init)          \
    X(curl_slist_append)         \
    X(curl_easy_cleanup)         \
    X(curl_slist_free_all)
BERTH_LIBCURL_SYMBOLS(BERTH_DL_DECLARE)
BERTH_LIBCURL_SYMBOLS(BERTH_DL_DEFINE)
BERTH_ELF_NOTE_DLOPEN(libcurl_note, "registries", "libcurl.so.4")

namespace berth::registry {
namespace {

DlLibrary libcurl{"libcurl.so.4", {BERTH_LIBCURL_SYMBOLS(BERTH_DL_ENTRY)}};

void easy_cleanup(CURL* h) { sym_curl_easy_cleanup(h); }
void slist_free_all(curl_slist* l) { sym_curl_slist_free_all(l); }

constexpr const char* kSystemCaBundle = "/etc/ssl/certs/ca-certificates.crt";

Result<> global_init() {
    BERTH_TRY_VOID(libcurl.load());
    static std::once_flag once;
    std::call_once(once, [] { sym_curl_global_init(CURL_GLOBAL_DEFAULT); });
    return {};
}

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
    return out;
}

struct Transfer {
    const HttpRequest* request = nullptr;
    HttpResponse* response = nullptr;
    const std::atomic<bool>* cancel = nullptr;
    CURL* handle = nullptr;
    uint64_t body_bytes = 0;
    uint64_t range_from = 0;  // > 0: asked for "bytes=range_from-"
    bool body_checked = false;
    std::optional<Error> sink_error;
    uint64_t upload_offset = 0;

    // The first body byte of a resumed request: a 206 must continue where the sink stands; a 200
    // is the whole body again (Range ignored), so the sink starts over.
    Result<> check_resumed(long status) {
        body_checked = true;
        if (range_from == 0) return {};
        if (status == 200) {
            if (request->reset) request->reset();
            return {};
        }
        std::string expect = fmt::format("bytes {}-", range_from);
        if (status != 206 || response->header("content-range").rfind(expect, 0) != 0)
            return fail(EPROTO, "asked for {}... and got HTTP {} with Content-Range '{}'", expect, status,
                        response->header("content-range"));
        return {};
    }

    static size_t on_header(char* data, size_t size, size_t n, void* user) noexcept {
        auto* t = static_cast<Transfer*>(user);
        std::string_view line(data, size * n);
        if (line.rfind("HTTP/", 0) == 0) {  // a new response (after 100 Continue): start over
            t->response->headers.clear();
            t->response->www_authenticate.clear();
            return size * n;
        }
        auto colon = line.find(':');
        if (colon == std::string_view::npos) return size * n;
        try {
            std::string name = lower(trim(line.substr(0, colon)));
            std::string value(trim(line.substr(colon + 1)));
            if (name == "www-authenticate") t->response->www_authenticate.push_back(value);
            t->response->headers[name] = value;
        } catch (...) {
            return 0;
        }
        return size * n;
    }

    static size_t on_body(char* data, size_t size, size_t n, void* user) noexcept {
        auto* t = static_cast<Transfer*>(user);
        size_t len = size * n;
        t->body_bytes += len;
        try {
            const auto& rq = *t->request;
            long status = 0;
            sym_curl_easy_getinfo(t->handle, CURLINFO_RESPONSE_CODE, &status);
            if (rq.max_body && t->body_bytes > rq.max_body) {
                t->sink_error =
                    Error{EFBIG, fmt::format("the response is larger than {} bytes", rq.max_body)};
                return 0;
            }
            // Error bodies (4xx/5xx) are kept small and never reach the sink.
            if (status < 200 || status >= 300 || !rq.sink) {
                if (t->response->body.size() < (1 << 20)) t->response->body.append(data, len);
                return len;
            }
            if (!t->body_checked)
                if (auto r = t->check_resumed(status); !r) {
                    t->sink_error = r.error();
                    return 0;
                }
            if (auto r = rq.sink(std::string_view(data, len)); !r) {
                t->sink_error = r.error();
                return 0;
            }
        } catch (...) {
            t->sink_error = Error{ENOMEM, "out of memory"};
            return 0;
        }
        return len;
    }

    // The request body: from memory or pread() from the file (never the file offset, which a
    // retry would have to rewind).
    static size_t on_read(char* buffer, size_t size, size_t n, void* user) noexcept {
        auto* t = static_cast<Transfer*>(user);
        const auto& rq = *t->request;
        uint64_t total = rq.upload_fd >= 0 ? rq.upload_size : rq.upload.size();
        size_t want = static_cast<size_t>(std::min<uint64_t>(size * n, total - t->upload_offset));
        if (want == 0) return 0;
        if (rq.upload_fd < 0) {
            std::memcpy(buffer, rq.upload.data() + t->upload_offset, want);
        } else {
            ssize_t got;
            do got = ::pread(rq.upload_fd, buffer, want, static_cast<off_t>(t->upload_offset));
            while (got < 0 && errno == EINTR);
            if (got <= 0) {
                t->sink_error = Error{got < 0 ? errno : EIO, "read the upload"};
                return CURL_READFUNC_ABORT;
            }
            want = static_cast<size_t>(got);
        }
        t->upload_offset += want;
        return want;
    }

    static int on_progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) noexcept {
        auto* t = static_cast<Transfer*>(user);
        return t->cancel && t->cancel->load() ? 1 : 0;
    }
};

bool retryable_curl(CURLcode c) {
    switch (c) {
        case CURLE_RECV_ERROR:
        case CURLE_SEND_ERROR:
        case CURLE_PARTIAL_FILE:
        case CURLE_GOT_NOTHING:
        case CURLE_HTTP2:
        case CURLE_HTTP2_STREAM:
        case CURLE_COULDNT_CONNECT:
            return true;
        default:
            return false;
    }
}

// The system bundle plus this host's extra CAs: CURLOPT_CAINFO would replace the system CAs.
Result<std::string> ca_blob(const TlsFiles& tls) {
    std::string blob;
    if (path_exists(kSystemCaBundle)) blob = BERTH_TRY(read_file(kSystemCaBundle));
    for (const auto& f : tls.ca_files) {
        blob += "\n";
        blob += BERTH_TRY_CTX(read_file(f), fmt::format("CA file '{}'", f));
    }
    return blob;
}

// One request to one URL (no redirects followed); range_from > 0 asks for the body from there.
Result<HttpResponse> fetch_once(const HttpRequest& rq, const std::string& url, bool send_auth,
                                uint64_t range_from, const HttpOptions& o, const std::atomic<bool>* cancel,
                                bool* retry) {
    *retry = false;
    CPtr<CURL, easy_cleanup> h(sym_curl_easy_init());
    if (!h) return fail(ENOMEM, "curl_easy_init failed");
    HttpResponse resp;
    resp.url = url;
    Transfer t;
    t.request = &rq;
    t.response = &resp;
    t.cancel = cancel;
    t.handle = h.get();
    t.range_from = range_from;
    CPtr<curl_slist, slist_free_all> headers;
    auto add_header = [&](const std::string& hd) {
        headers.reset(sym_curl_slist_append(headers.release(), hd.c_str()));
    };
    for (const auto& hd : rq.headers) add_header(hd);
    if (send_auth && !rq.authorization.empty()) add_header("Authorization: " + rq.authorization);
    if (range_from > 0) add_header(fmt::format("Range: bytes={}-", range_from));
    std::string cas;
    CURL* c = h.get();
    sym_curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    sym_curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    sym_curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    sym_curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    sym_curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, o.connect_timeout_s);
    sym_curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, o.low_speed_bytes);
    sym_curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, o.low_speed_time_s);
    sym_curl_easy_setopt(c, CURLOPT_USERAGENT, "berth");
    sym_curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
    sym_curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, &Transfer::on_header);
    sym_curl_easy_setopt(c, CURLOPT_HEADERDATA, &t);
    sym_curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &Transfer::on_body);
    sym_curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
    sym_curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, &Transfer::on_progress);
    sym_curl_easy_setopt(c, CURLOPT_XFERINFODATA, &t);
    sym_curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    sym_curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");  // the body as sent is what is hashed
    sym_curl_easy_setopt(c, CURLOPT_HTTP_CONTENT_DECODING, 0L);
    sym_curl_easy_setopt(c, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_2TLS);
    if (rq.method == "HEAD") sym_curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    if (rq.method == "POST" || rq.method == "PUT") {
        const auto size = static_cast<curl_off_t>(rq.upload_fd >= 0 ? rq.upload_size : rq.upload.size());
        sym_curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
        sym_curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, rq.method.c_str());
        sym_curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, size);
        sym_curl_easy_setopt(c, CURLOPT_READFUNCTION, &Transfer::on_read);
        sym_curl_easy_setopt(c, CURLOPT_READDATA, &t);
        // No "Expect: 100-continue" round trip (and its one-second wait on servers that ignore it).
        add_header("Expect:");
        sym_curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
    }
    if (url.rfind("https://", 0) == 0) {
        cas = BERTH_TRY(ca_blob(rq.tls));
        curl_blob blob{cas.data(), cas.size(), CURL_BLOB_NOCOPY};
        sym_curl_easy_setopt(c, CURLOPT_CAINFO_BLOB, &blob);
        if (!rq.tls.client_cert.empty()) {
            sym_curl_easy_setopt(c, CURLOPT_SSLCERT, rq.tls.client_cert.c_str());
            sym_curl_easy_setopt(c, CURLOPT_SSLKEY, rq.tls.client_key.c_str());
        }
    }
    CURLcode rc = sym_curl_easy_perform(c);
    sym_curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp.status);
    if (cancel && cancel->load()) return fail(ECANCELED, "{} {}: cancelled", rq.method, url);
    if (t.sink_error) return fail(*t.sink_error);
    if (rc != CURLE_OK) {
        *retry = retryable_curl(rc);
        int err = rc == CURLE_OPERATION_TIMEDOUT ? ETIMEDOUT
                  : rc == CURLE_COULDNT_CONNECT  ? ECONNREFUSED
                                                 : EIO;
        return fail(err, "{} {}: {}", rq.method, url, sym_curl_easy_strerror(rc));
    }
    if (resp.status == 429 || resp.status >= 500) *retry = true;
    return resp;
}

}  // namespace

std::string HttpResponse::header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? "" : it->second;
}

std::string url_origin(std::string_view url) {
    auto scheme = url.find("://");
    if (scheme == std::string_view::npos) return "";
    auto end = url.find('/', scheme + 3);
    return lower(url.substr(0, end));
}

std::string resolve_location(std::string_view base, std::string_view location) {
    if (location.find("://") != std::string_view::npos) return std::string(location);
    if (location.rfind("//", 0) == 0)
        return std::string(base.substr(0, base.find("://") + 1)) + std::string(location);
    if (!location.empty() && location[0] == '/') return url_origin(base) + std::string(location);
    auto q = base.find('?');
    std::string_view path = base.substr(0, q);
    return std::string(path.substr(0, path.rfind('/') + 1)) + std::string(location);
}

Result<HttpResponse> http_fetch(const HttpRequest& rq, const HttpOptions& o,
                                const std::atomic<bool>* cancel) {
    BERTH_TRY_VOID(global_init());
    const std::string origin = url_origin(rq.url);
    std::string url = rq.url;
    // Before another request (a retry, a redirect's next hop): resume where the sink stands, or
    // start it over.
    auto resume_or_reset = [&rq]() -> uint64_t {
        uint64_t from = rq.resume_offset ? rq.resume_offset() : 0;
        if (from == 0 && rq.reset) rq.reset();
        return from;
    };
    uint64_t range_from = 0;
    for (int hop = 0; hop <= HttpOptions::kMaxRedirects; ++hop) {
        bool same_host = url_origin(url) == origin;
        HttpResponse resp;
        for (int attempt = 0;; ++attempt) {
            bool retry = false;
            auto r = fetch_once(rq, url, same_host, range_from, o, cancel, &retry);
            if (retry && attempt < o.retries) {
                long wait_ms = o.backoff_ms << attempt;
                if (r && r->status == 429)
                    if (auto s = parse_unsigned(r->header("retry-after")))
                        wait_ms =
                            static_cast<long>(std::min<unsigned long long>(*s, o.max_retry_after_s)) * 1000;
                for (long slept = 0; slept < wait_ms; slept += 50) {
                    if (cancel && cancel->load()) return fail(ECANCELED, "{} {}: cancelled", rq.method, url);
                    std::this_thread::sleep_for(std::chrono::milliseconds(50));
                }
                range_from = resume_or_reset();
                continue;
            }
            if (!r) return r;
            resp = std::move(*r);
            break;
        }
        if (resp.status < 300 || resp.status >= 400 || resp.status == 304) return resp;
        std::string location = resp.header("location");
        if (location.empty()) return resp;
        url = resolve_location(url, location);
        if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0)
            return fail(EPROTO, "{}: redirect to '{}' is not HTTP", rq.url, url);
        range_from = resume_or_reset();
    }
    return fail(ELOOP, "{}: more than {} redirects", rq.url, HttpOptions::kMaxRedirects);
}

}  // namespace berth::registry
