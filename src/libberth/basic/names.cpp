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

bool is_valid_object_name(NameKind kind, std::string_view name) {
    return is_plain_name(name, name_max(kind));
}

std::string name_rule(NameKind kind) {
    return fmt::format("1 to {} letters, digits, '_', '.' and '-', starting with a letter or digit",
                       name_max(kind));
}

Result<> check_object_name(NameKind kind, std::string_view name) {
    if (is_valid_object_name(kind, name)) return {};
    return fail(EINVAL, "invalid {} name {}: expected {}", name_kind(kind), quote(name), name_rule(kind));
}

}  // namespace berth
