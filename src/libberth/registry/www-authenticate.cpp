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

bool token68_char(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) ||
           std::string_view("-._~+/").find(c) != std::string_view::npos;
}

void skip_space(std::string_view s, size_t& i) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
}

std::string_view read_token(std::string_view s, size_t& i) {
    size_t start = i;
    while (i < s.size() && token_char(s[i])) ++i;
    return s.substr(start, i - start);
}

// token68 = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=", and it is the whole
// challenge: only the end or a ',' may follow.  Returns its length, 0 when there is none.
size_t token68_length(std::string_view s, size_t i) {
    size_t j = i;
    while (j < s.size() && token68_char(s[j])) ++j;
    if (j == i) return 0;
    while (j < s.size() && s[j] == '=') ++j;
    size_t k = j;
    skip_space(s, k);
    return (k == s.size() || s[k] == ',') ? j - i : 0;
}

Result<std::string> read_quoted(std::string_view s, size_t& i, std::string_view name) {
    std::string value;
    ++i;  // the opening quote
    while (i < s.size()) {
        char c = s[i++];
        if (c == '\\' && i < s.size())
            c = s[i++];
        else if (c == '"')
            return value;
        if ((static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7f)
            return fail(0, "WWW-Authenticate: a control character in the value of '{}'", name);
        value += c;
    }
    return fail(0, "WWW-Authenticate: unterminated quoted value of '{}'", name);
}

// auth-param *( "," auth-param ): name = (token | quoted-string).  A token without '=' after a
// comma starts the next challenge and is left for the caller.
Result<> read_params(std::string_view s, size_t& i, Challenge& ch) {
    while (true) {
        skip_space(s, i);
        size_t save = i;
        std::string_view name = read_token(s, i);
        skip_space(s, i);
        if (name.empty() || i >= s.size() || s[i] != '=') {
            i = save;
            return {};
        }
        ++i;
        skip_space(s, i);
        std::string value;
        if (i < s.size() && s[i] == '"') {
            value = BERTH_TRY(read_quoted(s, i, name));
        } else {
            value = std::string(read_token(s, i));
            if (value.empty()) return fail(0, "WWW-Authenticate: '{}' has no value at offset {}", name, i);
        }
        ch.params[lower(name)] = std::move(value);
        skip_space(s, i);
        if (i >= s.size()) return {};
        if (s[i] != ',') return fail(0, "WWW-Authenticate: expected ',' after '{}' at offset {}", name, i);
        ++i;
    }
}

}  // namespace

Result<std::vector<Challenge>> parse_www_authenticate(std::string_view header) {
    constexpr size_t kMaxHeader = 8192;
    if (header.size() > kMaxHeader)
        return fail(0, "WWW-Authenticate header longer than {} bytes", kMaxHeader);
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
        if (scheme.empty()) return fail(0, "WWW-Authenticate: expected a scheme at offset {}", i);
        Challenge ch{lower(scheme), {}, {}};
        skip_space(header, i);
        if (size_t n = token68_length(header, i)) {
            ch.token68 = std::string(header.substr(i, n));
            i += n;
        } else {
            BERTH_TRY_VOID(read_params(header, i, ch));
        }
        out.push_back(std::move(ch));
        skip_space(header, i);
        if (i < header.size() && !token_char(header[i]) && header[i] != ',')
            return fail(0, "WWW-Authenticate: unexpected '{}' at offset {}", header[i], i);
    }
    return out;
}

}  // namespace berth::registry
