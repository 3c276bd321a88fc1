#include "basic/size-util.h"

#include <fmt/format.h>

#include <array>
#include <cctype>

#include "basic/string-util.h"

namespace berth {

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

std::string upper(std::string_view text) {
    std::string out(text);
    for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return out;
}

// a * b without overflow.
std::optional<uint64_t> checked_mul(uint64_t a, uint64_t b) {
    uint64_t out;
    if (__builtin_mul_overflow(a, b, &out)) return std::nullopt;
    return out;
}

struct Unit {
    std::string_view name;
    uint64_t factor;
};

constexpr uint64_t kUsecPerSec = 1000000;

constexpr std::array kDurationUnits = {
    Unit{"us", 1},
    Unit{"usec", 1},
    Unit{"ms", 1000},
    Unit{"msec", 1000},
    Unit{"s", kUsecPerSec},
    Unit{"sec", kUsecPerSec},
    Unit{"second", kUsecPerSec},
    Unit{"seconds", kUsecPerSec},
    Unit{"m", 60 * kUsecPerSec},
    Unit{"min", 60 * kUsecPerSec},
    Unit{"minute", 60 * kUsecPerSec},
    Unit{"minutes", 60 * kUsecPerSec},
    Unit{"h", 3600 * kUsecPerSec},
    Unit{"hr", 3600 * kUsecPerSec},
    Unit{"hour", 3600 * kUsecPerSec},
    Unit{"hours", 3600 * kUsecPerSec},
    Unit{"d", 86400 * kUsecPerSec},
    Unit{"day", 86400 * kUsecPerSec},
    Unit{"days", 86400 * kUsecPerSec},
    Unit{"w", 7 * 86400 * kUsecPerSec},
    Unit{"week", 7 * 86400 * kUsecPerSec},
    Unit{"weeks", 7 * 86400 * kUsecPerSec},
};

}  // namespace

std::optional<uint64_t> parse_size(std::string_view text, bool allow_infinity) {
    text = trim(text);
    if (text == "infinity") return allow_infinity ? std::optional<uint64_t>(kInfinity) : std::nullopt;
    size_t digits = 0;
    while (digits < text.size() && is_digit(text[digits])) ++digits;
    if (digits == 0) return std::nullopt;
    auto number = parse_unsigned(text.substr(0, digits));
    if (!number) return std::nullopt;
    std::string suffix = upper(text.substr(digits));
    if (suffix.size() == 2 && suffix[1] == 'B')
        suffix.resize(1);
    else if (suffix == "B")
        suffix.clear();
    static constexpr std::string_view kSuffixes = "KMGTPE";
    uint64_t factor = 1;
    if (!suffix.empty()) {
        if (suffix.size() != 1) return std::nullopt;
        size_t index = kSuffixes.find(suffix[0]);
        if (index == std::string_view::npos) return std::nullopt;
        factor = uint64_t{1} << (10 * (index + 1));
    }
    auto bytes = checked_mul(*number, factor);
    if (!bytes || *bytes == kInfinity) return std::nullopt;
    return bytes;
}

std::string format_size(uint64_t bytes) {
    if (bytes == kInfinity) return "infinity";
    static constexpr std::string_view kSuffixes = "KMGTPE";
    int index = -1;
    while (index + 1 < static_cast<int>(kSuffixes.size()) && bytes != 0 && bytes % 1024 == 0) {
        bytes /= 1024;
        ++index;
    }
    return index < 0 ? fmt::format("{}", bytes) : fmt::format("{}{}", bytes, kSuffixes[index]);
}

std::optional<uint64_t> parse_duration_us(std::string_view text, bool allow_infinity) {
    text = trim(text);
    if (text == "infinity") return allow_infinity ? std::optional<uint64_t>(kInfinity) : std::nullopt;
    if (text.empty()) return std::nullopt;
    // A bare number means seconds, as in systemd.
    if (auto seconds = parse_unsigned(text)) {
        auto usec = checked_mul(*seconds, kUsecPerSec);
        if (!usec || *usec == kInfinity) return std::nullopt;
        return usec;
    }
    uint64_t total = 0;
    size_t i = 0;
    while (i < text.size()) {
        while (i < text.size() && text[i] == ' ') ++i;
        if (i == text.size()) break;
        size_t start = i;
        while (i < text.size() && is_digit(text[i])) ++i;
        if (i == start) return std::nullopt;
        auto number = parse_unsigned(text.substr(start, i - start));
        if (!number) return std::nullopt;
        while (i < text.size() && text[i] == ' ') ++i;
        size_t unit_start = i;
        while (i < text.size() && std::isalpha(static_cast<unsigned char>(text[i]))) ++i;
        std::string_view unit = text.substr(unit_start, i - unit_start);
        if (unit.empty()) return std::nullopt;  // "1h 30" is ambiguous: reject
        const Unit* found = nullptr;
        for (const auto& u : kDurationUnits)
            if (u.name == unit) found = &u;
        if (!found) return std::nullopt;
        auto part = checked_mul(*number, found->factor);
        if (!part || __builtin_add_overflow(total, *part, &total)) return std::nullopt;
    }
    if (total == kInfinity) return std::nullopt;
    return total;
}

std::string format_duration(uint64_t usec) {
    if (usec == kInfinity) return "infinity";
    if (usec == 0) return "0";
    static constexpr std::array<Unit, 6> kParts = {Unit{"d", 86400 * kUsecPerSec},
                                                   Unit{"h", 3600 * kUsecPerSec},
                                                   Unit{"min", 60 * kUsecPerSec},
                                                   Unit{"s", kUsecPerSec},
                                                   Unit{"ms", 1000},
                                                   Unit{"us", 1}};
    std::string out;
    for (const auto& part : kParts) {
        if (usec < part.factor) continue;
        if (!out.empty()) out += ' ';
        out += fmt::format("{}{}", usec / part.factor, part.name);
        usec %= part.factor;
    }
    return out;
}

}  // namespace berth
