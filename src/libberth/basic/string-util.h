// Small string helpers (no locale, no exceptions).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace berth {

std::vector<std::string> split(std::string_view text, char separator, bool keep_empty = false);
std::string join(const std::vector<std::string>& parts, std::string_view separator);
std::string_view trim(std::string_view text);

// Strict unsigned parse: digits only, no sign or spaces, overflow rejected.
std::optional<unsigned long long> parse_unsigned(std::string_view text);

// Quotes a string for shell-like display in messages and unit files ('...' with escapes).
std::string quote(std::string_view text);

// A message fit to send to a client (issue #16: error replies echoed megabytes of input and raw
// control characters): control characters and bytes that are not UTF-8 are escaped ("\n",
// "\x01"), every '...'-quoted part longer than `max_quoted` bytes is cut ("...[N more bytes]"),
// and the whole at 4 KiB. The result is valid UTF-8, as D-Bus requires of a string.
std::string sanitize_message(std::string_view text, size_t max_quoted = 256);

// Levenshtein distance, for "did you mean" hints.
size_t edit_distance(std::string_view a, std::string_view b);
// The candidate closest to `word` when it is close enough to be a likely typo (at most a third of
// the word's length in edits, 1 to 3), else "": the one "did you mean" rule of our config files.
std::string did_you_mean(std::string_view word, const std::vector<std::string_view>& candidates);

// Display width of UTF-8 text: its code points (no wide or combining characters in our tables).
size_t display_width(std::string_view text);

// A plain text table: a header row and rows, each column as wide as its widest cell (names of 64
// characters and long image tags included), two spaces apart, the last column unpadded. Columns
// whose index is in `right_aligned` (sizes, counts) are padded on the left.
std::string render_table(const std::vector<std::string>& header,
                         const std::vector<std::vector<std::string>>& rows,
                         const std::vector<size_t>& right_aligned = {});

// RFC 4648 base64 with padding (credentials in auth.json, HTTP Basic).  Decoding refuses anything
// that is not canonical base64 (std::nullopt).
std::string base64_encode(std::string_view data);
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace berth
