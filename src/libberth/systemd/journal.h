// Reading a unit's journal with sd-journal: what `journalctl -u UNIT [-n N] [-f]` shows, i.e. the
// unit's own processes (_SYSTEMD_UNIT=, which covers the container payload in the unit's delegated
// subtree) plus what systemd itself logged about the unit (UNIT= from PID 1).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "basic/result.h"

struct sd_journal;

namespace berth::systemd {

struct JournalEntry {
    uint64_t realtime_us = 0;
    std::string cursor;
    std::string message;
    std::string identifier;  // SYSLOG_IDENTIFIER (or _COMM)
    uint32_t pid = 0;
    int priority = 6;
};

struct JournalOptions {
    std::string directory;  // read this journal directory instead of the local system journal
    size_t lines = 10;      // last N entries before following (0 = none, SIZE_MAX = all)
};

class UnitJournal {
public:
    static Result<UnitJournal> open(const std::string& unit, const JournalOptions& options = {});
    UnitJournal(UnitJournal&&) noexcept;
    UnitJournal& operator=(UnitJournal&&) noexcept;
    ~UnitJournal();

    // The last `options.lines` entries, oldest first; leaves the read position after them.
    Result<std::vector<JournalEntry>> tail();
    // Calls `sink` for each entry after the read position, waiting for new ones, until sink
    // returns false or `timeout_us` has passed (UINT64_MAX = forever). Call tail() first.
    Result<> follow(const std::function<bool(const JournalEntry&)>& sink, uint64_t timeout_us = UINT64_MAX);

private:
    explicit UnitJournal(sd_journal* j, size_t lines) : j_(j), lines_(lines) {}
    Result<JournalEntry> read_current();
    sd_journal* j_ = nullptr;
    size_t lines_ = 10;
};

// "May 01 12:00:03 web[123]: message" (journalctl's short format, local time).
std::string format_short(const JournalEntry& entry, const std::string& hostname = {});

}  // namespace berth::systemd
