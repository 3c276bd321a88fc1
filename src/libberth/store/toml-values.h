// Typed reads of one berthd.toml value, shared by the store's parser (options.cpp) and the backends'
// own (dmthin/dmthin-toml.cpp): the same grammar and the same "file:line:col: 'key' must be ..."
// errors for every key. Only those two files include toml++.
#pragma once

#include <toml++/toml.h>

#include <string>
#include <string_view>

#include "basic/result.h"
#include "store/store.h"

namespace berth::store::toml_value {

inline std::string where(const toml::node& node, const std::string& source_name) {
    return fmt::format("{}:{}:{}", source_name, node.source().begin.line, node.source().begin.column);
}

inline Result<> read_string(const toml::node& node, std::string_view key, const std::string& source_name,
                            std::string& out) {
    auto v = node.value<std::string>();
    if (!v) return fail(EINVAL, "{}: '{}' must be a string", where(node, source_name), key);
    out = *v;
    return {};
}

// A size: bytes as an integer, or "10G" / "512M" / "4096".
inline Result<> read_size(const toml::node& node, std::string_view key, const std::string& source_name,
                          uint64_t& out) {
    if (auto i = node.value<int64_t>()) {
        if (*i < 0) return fail(EINVAL, "{}: '{}' must not be negative", where(node, source_name), key);
        out = static_cast<uint64_t>(*i);
        return {};
    }
    if (auto s = node.value<std::string>()) {
        auto r = parse_size(*s);
        if (!r) return fail(EINVAL, "{}: '{}': {}", where(node, source_name), key, r.error().message);
        out = *r;
        return {};
    }
    return fail(EINVAL, "{}: '{}' must be a size (\"10G\" or bytes)", where(node, source_name), key);
}

inline Result<> read_bool(const toml::node& node, std::string_view key, const std::string& source_name,
                          bool& out) {
    auto v = node.value<bool>();
    if (!v) return fail(EINVAL, "{}: '{}' must be true or false", where(node, source_name), key);
    out = *v;
    return {};
}

inline Result<> read_absolute_path(const toml::node& node, std::string_view key,
                                   const std::string& source_name, std::string& out) {
    BERTH_TRY_VOID(read_string(node, key, source_name, out));
    if (out.empty() || out[0] != '/')
        return fail(EINVAL, "{}: '{}' must be an absolute path", where(node, source_name), key);
    return {};
}

}  // namespace berth::store::toml_value
