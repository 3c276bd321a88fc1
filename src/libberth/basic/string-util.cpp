#include "basic/string-util.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cstdint>

namespace berth {

std::vector<std::string> split(std::string_view text, char separator, bool keep_empty) {
    std::vector<std::string> out;
    size_t start = 0;
    for (;;) {
        size_t end = text.find(separator, start);
        std::string_view piece = text.substr(start, end == std::string_view::npos ? end : end - start);
        if (keep_empty || !piece.empty()) out.emplace_back(piece);
        if (end == std::string_view::npos) break;
        start = end + 1;
    }
    return out;
}

std::string join(const std::vector<std::string>& parts, std::string_view separator) {
    std::string out;
    for (size_t i = 0; i < parts.size(); ++i) {
        if (i) out += separator;
        out += parts[i];
    }
    return out;
}

std::string_view trim(std::string_view text) {
    const char* ws = " \t\r\n";
    size_t b = text.find_first_not_of(ws);
    if (b == std::string_view::npos) return {};
    size_t e = text.find_last_not_of(ws);
    return text.substr(b, e - b + 1);
}

std::optional<unsigned long long> parse_unsigned(std::string_view text) {
    if (text.empty() || !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; }))
        return std::nullopt;
    unsigned long long value = 0;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || ptr != text.data() + text.size()) return std::nullopt;
    return value;
}

std::string quote(std::string_view text) {
    std::string out = "'";
    for (char c : text) {
        if (c == '\'' || c == '\\') out += '\\';
        out += c;
    }
    out += '\'';
    return out;
}

// Length of the UTF-8 sequence at text[i], or 0 when it is not one (overlong forms and
// surrogates included: D-Bus rejects those too).
static size_t utf8_length(std::string_view text, size_t i) {
    auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) return 1;
    size_t n = c >= 0xc2 && c <= 0xdf ? 2 : (c & 0xf0) == 0xe0 ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
    if (n == 0 || i + n > text.size()) return 0;
    for (size_t k = 1; k < n; ++k)
        if ((static_cast<unsigned char>(text[i + k]) & 0xc0) != 0x80) return 0;
    auto c1 = static_cast<unsigned char>(text[i + 1]);
    if ((c == 0xe0 && c1 < 0xa0) || (c == 0xed && c1 > 0x9f) || (c == 0xf0 && c1 < 0x90) ||
        (c == 0xf4 && c1 > 0x8f))
        return 0;
    return n;
}

std::string sanitize_message(std::string_view text, size_t max_quoted) {
    constexpr size_t kMaxMessage = 4096;
    std::string out;
    bool quoted = false;
    size_t run = 0, cut = 0;  // bytes of the current quoted part kept / left out
    auto end_part = [&] {
        if (cut) out += fmt::format("...[{} more bytes]", cut);
        run = cut = 0;
    };
    for (size_t i = 0; i < text.size();) {
        if (out.size() >= kMaxMessage) {
            out += fmt::format("...[{} more bytes]", text.size() - i);
            break;
        }
        char c = text[i];
        if (c == '\'' && !(quoted && i > 0 && text[i - 1] == '\\')) {
            end_part();  // a quoted part's count starts at its opening quote
            quoted = !quoted;
            out += c;
            ++i;
            continue;
        }
        size_t n = utf8_length(text, i);
        size_t step = n ? n : 1;
        if (quoted && run >= max_quoted) {
            cut += step;
            i += step;
            continue;
        }
        auto u = static_cast<unsigned char>(c);
        if (n == 0 || u < 0x20 || u == 0x7f) {
            if (c == '\n')
                out += "\\n";
            else if (c == '\t')
                out += "\\t";
            else
                out += fmt::format("\\x{:02x}", u);
        } else {
            out.append(text.substr(i, n));
        }
        run += step;
        i += step;
    }
    if (quoted) end_part();
    return out;
}

size_t edit_distance(std::string_view a, std::string_view b) {
    std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
    for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
    for (size_t i = 1; i <= a.size(); ++i) {
        cur[0] = i;
        for (size_t j = 1; j <= b.size(); ++j) {
            size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost});
        }
        std::swap(prev, cur);
    }
    return prev[b.size()];
}

size_t display_width(std::string_view text) {
    size_t n = 0;
    for (unsigned char c : text) n += (c & 0xC0) != 0x80;
    return n;
}

std::string render_table(const std::vector<std::string>& header,
                         const std::vector<std::vector<std::string>>& rows,
                         const std::vector<size_t>& right_aligned) {
    std::vector<size_t> width(header.size());
    for (size_t i = 0; i < header.size(); ++i) width[i] = display_width(header[i]);
    for (const auto& r : rows)
        for (size_t i = 0; i < r.size() && i < width.size(); ++i)
            width[i] = std::max(width[i], display_width(r[i]));
    std::string out;
    auto line = [&](const std::vector<std::string>& r) {
        std::string l;
        for (size_t i = 0; i < r.size(); ++i) {
            const bool last = i + 1 == r.size();
            size_t pad = i < width.size() ? width[i] - std::min(width[i], display_width(r[i])) : 0;
            bool right = std::find(right_aligned.begin(), right_aligned.end(), i) != right_aligned.end();
            if (right) l.append(pad, ' ');
            l += r[i];
            if (!right && !last) l.append(pad, ' ');
            if (!last) l += "  ";
        }
        out += l + "\n";
    };
    line(header);
    for (const auto& r : rows) line(r);
    return out;
}

namespace {
constexpr std::string_view kBase64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
}

std::string base64_encode(std::string_view data) {
    std::string out;
    out.reserve((data.size() + 2) / 3 * 4);
    for (size_t i = 0; i < data.size(); i += 3) {
        uint32_t n = static_cast<uint8_t>(data[i]) << 16;
        if (i + 1 < data.size()) n |= static_cast<uint8_t>(data[i + 1]) << 8;
        if (i + 2 < data.size()) n |= static_cast<uint8_t>(data[i + 2]);
        out += kBase64[(n >> 18) & 63];
        out += kBase64[(n >> 12) & 63];
        out += i + 1 < data.size() ? kBase64[(n >> 6) & 63] : '=';
        out += i + 2 < data.size() ? kBase64[n & 63] : '=';
    }
    return out;
}

std::string did_you_mean(std::string_view word, const std::vector<std::string_view>& candidates) {
    std::string_view best;
    size_t best_distance = SIZE_MAX;
    for (std::string_view candidate : candidates)
        if (size_t d = edit_distance(word, candidate); d < best_distance) best = candidate, best_distance = d;
    size_t threshold = std::max<size_t>(1, std::min<size_t>(3, word.size() / 3));
    return best_distance <= threshold ? std::string(best) : std::string();
}

std::optional<std::string> base64_decode(std::string_view text) {
    if (text.size() % 4 != 0) return std::nullopt;
    std::string out;
    out.reserve(text.size() / 4 * 3);
    for (size_t i = 0; i < text.size(); i += 4) {
        uint32_t n = 0;
        int pad = 0;
        for (size_t j = 0; j < 4; ++j) {
            char c = text[i + j];
            if (c == '=' && i + 4 == text.size() && j >= 2) {
                ++pad;
                n <<= 6;
                continue;
            }
            auto v = kBase64.find(c);
            if (v == std::string_view::npos || pad) return std::nullopt;
            n = (n << 6) | static_cast<uint32_t>(v);
        }
        // Canonical: the bits the padding leaves over are zero ("Zg==", never "Zh==").
        if ((pad == 2 && (n & 0xffff)) || (pad == 1 && (n & 0xff))) return std::nullopt;
        out += static_cast<char>((n >> 16) & 0xff);
        if (pad < 2) out += static_cast<char>((n >> 8) & 0xff);
        if (pad < 1) out += static_cast<char>(n & 0xff);
    }
    return out;
}

}  // namespace berth
