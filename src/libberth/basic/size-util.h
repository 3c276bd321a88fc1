// Sizes and durations, as berth.toml and berthd.toml write them: one grammar for both files.
//
// Size:     DIGITS [ K | M | G | T | P | E ] [ B ]   (case-insensitive; powers of 1024;
//           "1024", "64K", "512M", "1GB", "2t"), or "infinity" where the caller allows it.
//           Surrounding spaces are ignored; a value that overflows 64 bits (or equals the
//           "infinity" sentinel UINT64_MAX) is refused.
// Duration: systemd's time spans in microseconds: "30s", "5min", "1h 30min", "100ms", "2d",
//           a bare number of seconds, or "infinity" where allowed.
// Parsers return nullopt on bad input; the caller names the key and its file:line:col.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace berth {

// The value "infinity" parses to.
inline constexpr uint64_t kInfinity = UINT64_MAX;

std::optional<uint64_t> parse_size(std::string_view text, bool allow_infinity);
// Canonical form: the largest exact unit ("512M"), or "infinity".
std::string format_size(uint64_t bytes);

std::optional<uint64_t> parse_duration_us(std::string_view text, bool allow_infinity);
// Canonical form: "1h 30min", "100ms", "0", "infinity".
std::string format_duration(uint64_t usec);

}  // namespace berth
