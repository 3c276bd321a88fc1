#include "basic/names.h"

#include <fmt/format.h>

#include "basic/string-util.h"

namespace berth {

namespace {
constexpr bool is_alnum(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}
}  // namespace

std::string_view name_kind(NameKind kind) { return kind == NameKind::Container ? "container" : "volume"; }

bool is_plain_name(std::string_view name, size_t max) {
    if (name.empty() || name.size() > max || !is_alnum(name[0])) return false;
    for (char c : name)
        if (!(is_alnum(c) || c == '_' || c == '.' || c == '-')) return false;
    return true;
}

bool is_instance_name(std::string_view name, size_t max) {
    auto at = name.find('@');
    if (at == std::string_view::npos || name.size() > max) return false;
    return is_plain_name(name.substr(0, at), max) && is_plain_name(name.substr(at + 1), max);
}

bool is_valid_object_name(NameKind kind, std::string_view name) {
    return is_plain_name(name, name_max(kind)) ||
           (kind == NameKind::Container && is_instance_name(name, name_max(kind)));
}

std::string name_rule(NameKind kind) {
    return fmt::format(
        "1 to {} letters, digits, '_', '.' and '-', starting with a letter or digit{}", name_max(kind),
        kind == NameKind::Container ? " (a template's instance: BASE@INSTANCE, each part so)" : "");
}

Result<> check_object_name(NameKind kind, std::string_view name) {
    if (is_valid_object_name(kind, name)) return {};
    return fail(EINVAL, "invalid {} name {}: expected {}", name_kind(kind), quote(name), name_rule(kind));
}

Result<std::string> normalize_image_name(std::string_view name_tag) {
    // Every message starts "invalid image name '...'" and quotes at most the limit's worth.
    auto invalid = [&](std::string_view why) {
        return fail(EINVAL, "invalid image name {}: {}", quote(name_tag.substr(0, kImageNameMax + 1)), why);
    };
    if (name_tag.empty()) return fail(EINVAL, "invalid image name '': empty");
    if (name_tag.size() > kImageNameMax)
        return invalid(fmt::format("longer than {} bytes ({})", kImageNameMax, name_tag.size()));
    std::string s(name_tag);
    // Docker Hub's familiar form: "docker.io/library/busybox" is "busybox".
    for (const char* prefix : {"docker.io/library/", "index.docker.io/library/"})
        if (s.rfind(prefix, 0) == 0) s = s.substr(std::string_view(prefix).size());
    if (s.find('@') != std::string::npos) return invalid("digests are not names");
    auto slash = s.rfind('/');
    auto colon = s.rfind(':');
    std::string repo = s, tag = "latest";
    if (colon != std::string::npos && (slash == std::string::npos || colon > slash)) {
        repo = s.substr(0, colon);
        tag = s.substr(colon + 1);
    }
    if (repo.empty()) return invalid("no repository");
    if (tag.empty() || tag.size() > kImageTagMax)
        return invalid(fmt::format("the tag must be 1 to {} bytes", kImageTagMax));
    for (size_t i = 0; i < tag.size(); ++i) {
        char c = tag[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                  (i > 0 && (c == '.' || c == '-'));
        if (!ok) return invalid("the tag may hold letters, digits, '_', '.' and '-' (not first)");
    }
    for (auto& part : split(repo, '/', true)) {
        if (part.empty()) return invalid("empty path component");
        for (char c : part) {
            bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-' ||
                      c == ':';
            if (!ok)
                return invalid("the repository may hold lower case letters, digits, '.', '_', '-' and '/'");
        }
        if (part == "." || part == "..") return invalid("'.' or '..' component");
    }
    return repo + ":" + tag;
}

}  // namespace berth
