#include "registry/reference.h"

#include <cctype>
#include <optional>

namespace berth::registry {
namespace {

constexpr size_t kMaxNameLength = 255;
constexpr size_t kMaxTagLength = 128;

bool is_lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

// path-component := [a-z0-9]+ (separator [a-z0-9]+)*   separator := [_.] | __ | [-]+
bool valid_path_component(std::string_view c) {
    if (c.empty() || !is_lower_alnum(c.front()) || !is_lower_alnum(c.back())) return false;
    for (size_t i = 0; i < c.size();) {
        if (is_lower_alnum(c[i])) {
            ++i;
            continue;
        }
        size_t j = i;
        if (c[i] == '.') {
            j = i + 1;
        } else if (c[i] == '_') {
            j = (i + 1 < c.size() && c[i + 1] == '_') ? i + 2 : i + 1;
        } else if (c[i] == '-') {
            while (j < c.size() && c[j] == '-') ++j;
        } else {
            return false;
        }
        if (j >= c.size() || !is_lower_alnum(c[j])) return false;
        i = j;
    }
    return true;
}

bool valid_domain_label(std::string_view l) {
    if (l.empty() || !std::isalnum(static_cast<unsigned char>(l.front())) ||
        !std::isalnum(static_cast<unsigned char>(l.back())))
        return false;
    for (char c : l)
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-') return false;
    return true;
}

// domain := host [":" port]; host := label ("." label)* | "[" ipv6 "]"
bool valid_port(std::string_view port) {
    if (port.empty() || port.size() > 5) return false;
    for (char c : port)
        if (c < '0' || c > '9') return false;
    return true;
}

}  // namespace

bool valid_domain(std::string_view d) {
    if (!d.empty() && d.front() == '[') {
        auto close = d.find(']');
        if (close == std::string_view::npos || close < 3) return false;
        for (char c : d.substr(1, close - 1))
            if (!std::isxdigit(static_cast<unsigned char>(c)) && c != ':') return false;
        std::string_view after = d.substr(close + 1);
        return after.empty() || (after.front() == ':' && valid_port(after.substr(1)));
    }
    std::string_view host = d;
    if (auto colon = d.rfind(':'); colon != std::string_view::npos) {
        if (!valid_port(d.substr(colon + 1))) return false;
        host = d.substr(0, colon);
    }
    size_t start = 0;
    while (true) {
        size_t dot = host.find('.', start);
        if (!valid_domain_label(host.substr(start, dot == std::string_view::npos ? dot : dot - start)))
            return false;
        if (dot == std::string_view::npos) return true;
        start = dot + 1;
    }
}

namespace {

bool valid_tag(std::string_view t) {
    if (t.empty() || t.size() > kMaxTagLength) return false;
    auto word = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; };
    if (!word(t.front())) return false;
    for (char c : t)
        if (!word(c) && c != '.' && c != '-') return false;
    return true;
}

Result<> check_digest(std::string_view d, std::string_view text) {
    auto colon = d.find(':');
    if (colon == std::string_view::npos)
        return fail(0, "reference '{}': digest '{}' has no algorithm", text, d);
    std::string_view algorithm = d.substr(0, colon), hex = d.substr(colon + 1);
    if (algorithm != "sha256")
        return fail(0, "reference '{}': digest algorithm '{}' is not supported (sha256 only)", text,
                    algorithm);
    if (hex.size() != 64) return fail(0, "reference '{}': a sha256 digest has 64 hex digits", text);
    for (char c : hex)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return fail(0, "reference '{}': digest must be lowercase hex", text);
    return {};
}

// The first component that breaks the path grammar, or nothing.
std::optional<std::string_view> invalid_path_component(std::string_view path) {
    size_t start = 0;
    while (true) {
        size_t slash = path.find('/', start);
        std::string_view component =
            path.substr(start, slash == std::string_view::npos ? slash : slash - start);
        if (!valid_path_component(component)) return component;
        if (slash == std::string_view::npos) return std::nullopt;
        start = slash + 1;
    }
}

bool looks_like_domain(std::string_view first) {
    return first.find('.') != std::string_view::npos || first.find(':') != std::string_view::npos ||
           first == "localhost" ||
           first.find_first_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ") != std::string_view::npos;
}

}  // namespace

std::string Reference::repository() const {
    if (domain.empty()) return path;
    return path.empty() ? domain : domain + "/" + path;
}

std::string Reference::str() const {
    std::string s = repository();
    if (!tag.empty()) s += ":" + tag;
    if (!digest.empty()) s += "@" + digest;
    return s;
}

Result<Reference> parse_reference(std::string_view text) {
    if (text.empty()) return fail(0, "empty image reference");
    // Messages quote the text: a megabyte of it is refused before anything repeats it.
    if (text.size() > 1024)
        return fail(0, "image reference of {} bytes (a name has at most {}, a tag {})", text.size(),
                    kMaxNameLength, kMaxTagLength);
    Reference ref;
    std::string_view rest = text;
    if (auto at = rest.find('@'); at != std::string_view::npos) {
        BERTH_TRY_VOID(check_digest(rest.substr(at + 1), text));
        ref.digest = std::string(rest.substr(at + 1));
        rest = rest.substr(0, at);
    }
    auto last_slash = rest.rfind('/');
    auto colon = rest.rfind(':');
    if (colon != std::string_view::npos && (last_slash == std::string_view::npos || colon > last_slash)) {
        std::string_view tag = rest.substr(colon + 1);
        if (!valid_tag(tag))
            return fail(0, "reference '{}': invalid tag '{}' (letters, digits, '_', '.', '-'; at most 128)",
                        text, tag);
        ref.tag = std::string(tag);
        rest = rest.substr(0, colon);
    }
    if (rest.empty()) return fail(0, "reference '{}': no repository name", text);
    if (rest.size() > kMaxNameLength)
        return fail(0, "reference '{}': repository name longer than {} characters", text, kMaxNameLength);
    std::string_view path = rest;
    if (auto slash = rest.find('/');
        slash != std::string_view::npos && looks_like_domain(rest.substr(0, slash))) {
        std::string_view domain = rest.substr(0, slash);
        if (!valid_domain(domain))
            return fail(0, "reference '{}': invalid registry domain '{}'", text, domain);
        ref.domain = std::string(domain);
        path = rest.substr(slash + 1);
    }
    if (auto bad = invalid_path_component(path)) {
        if (bad->find_first_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ") != std::string_view::npos)
            return fail(0, "reference '{}': repository name must be lowercase", text);
        return fail(0, "reference '{}': invalid repository path component '{}'", text, *bad);
    }
    ref.path = std::string(path);
    return ref;
}

bool valid_repository_path(std::string_view path) { return !invalid_path_component(path); }

Result<Reference> parse_registry_prefix(std::string_view text) {
    auto slash = text.find('/');
    std::string_view domain = text.substr(0, slash);
    auto invalid = [&] {
        return fail(0, "'{}' is not a registry[/repository] (e.g. \"quay.io\", \"localhost:5000/team\")",
                    text);
    };
    if (!looks_like_domain(domain) || !valid_domain(domain)) return invalid();
    Reference ref;
    ref.domain = std::string(domain);
    if (ref.domain == "index.docker.io" || ref.domain == "registry-1.docker.io") ref.domain = "docker.io";
    if (slash != std::string_view::npos) {
        ref.path = std::string(text.substr(slash + 1));
        if (!valid_repository_path(ref.path)) return invalid();
    }
    if (ref.repository().size() > kMaxNameLength) return invalid();
    return ref;
}

bool names_a_registry(std::string_view text) {
    auto ref = parse_reference(text);
    return ref && !ref->domain.empty();
}

}  // namespace berth::registry
