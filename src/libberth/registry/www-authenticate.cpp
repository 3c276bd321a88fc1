#include "registry/www-authenticate.h"

#include <cctype>

namespace berth::registry {
namespace {

std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

bool token_char(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) ||
           std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

void skip_space(std::string_view s, size_t& i) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
}

std::string_view read_token(std::string_view s, size_t& i) {
    size_t start = i;
    while (i < s.size() && token_char(s[i])) ++i;
    return s.substr(start, i - start);
}

}  // namespace

Result<std::vector<Challenge>> parse_www_authenticate(std::string_view header) {
    constexpr size_t kMaxHeader = 8192;
    if (header.size() > kMaxHeader)
        return fail(EINVAL, "WWW-Authenticate header longer than {} bytes", kMaxHeader);
    std::vector<Challenge> out;
    size_t i = 0;
    while (true) {
        skip_space(header, i);
        while (i < header.size() && header[i] == ',') {
            ++i;
            skip_space(header, i);
        }
        if (i >= header.size()) break;
        std::string_view scheme = read_token(header, i);
        if (scheme.empty()) return fail(EINVAL, "WWW-Authenticate: expected a scheme at offset {}", i);
        Challenge ch{lower(scheme), {}};
        // auth-params: name = (token | quoted-string), separated by commas; a token without '=' that
        // follows starts the next challenge.
        while (true) {
            skip_space(header, i);
            size_t save = i;
            std::string_view name = read_token(header, i);
            skip_space(header, i);
            if (name.empty() || i >= header.size() || header[i] != '=') {
                i = save;
                break;
            }
            ++i;
            skip_space(header, i);
            std::string value;
            if (i < header.size() && header[i] == '"') {
                ++i;
                bool closed = false;
                while (i < header.size()) {
                    char c = header[i++];
                    if (c == '\\' && i < header.size()) {
                        value += header[i++];
                    } else if (c == '"') {
                        closed = true;
                        break;
                    } else {
                        value += c;
                    }
                }
                if (!closed) return fail(EINVAL, "WWW-Authenticate: unterminated quoted value of '{}'", name);
            } else {
                value = std::string(read_token(header, i));
            }
            ch.params[lower(name)] = std::move(value);
            skip_space(header, i);
            if (i < header.size() && header[i] == ',') ++i;
        }
        out.push_back(std::move(ch));
        if (i < header.size() && !token_char(header[i]) && header[i] != ',' && header[i] != ' ')
            return fail(EINVAL, "WWW-Authenticate: unexpected '{}' at offset {}", header[i], i);
    }
    return out;
}

}  // namespace berth::registry
