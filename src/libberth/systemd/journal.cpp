#include "systemd/journal.h"

#include <systemd/sd-journal.h>
#include <time.h>

#include <climits>
#include <utility>

#include "basic/time-util.h"

namespace berth::systemd {
namespace {

Result<> add_match(sd_journal* j, const std::string& field) {
    int r = sd_journal_add_match(j, field.data(), field.size());
    if (r < 0) return fail(-r, "add journal match '{}'", field);
    return {};
}

std::string field(sd_journal* j, const char* name) {
    const void* data = nullptr;
    size_t len = 0;
    if (sd_journal_get_data(j, name, &data, &len) < 0) return {};
    std::string_view v(static_cast<const char*>(data), len);
    size_t eq = v.find('=');
    return eq == std::string_view::npos ? std::string() : std::string(v.substr(eq + 1));
}

}  // namespace

Result<UnitJournal> UnitJournal::open(const std::string& unit, const JournalOptions& options) {
    sd_journal* j = nullptr;
    int r = options.directory.empty() ? sd_journal_open(&j, SD_JOURNAL_LOCAL_ONLY)
                                      : sd_journal_open_directory(&j, options.directory.c_str(), 0);
    if (r < 0) return fail(-r, "open the journal");
    UnitJournal journal(j, options.lines);
    auto ctx = fmt::format("journal of '{}'", unit);
    // (_SYSTEMD_UNIT=unit) OR (_PID=1 AND UNIT=unit) OR (_UID=0 AND OBJECT_SYSTEMD_UNIT=unit)
    BERTH_TRY_VOID_CTX(add_match(j, "_SYSTEMD_UNIT=" + unit), ctx);
    if ((r = sd_journal_add_disjunction(j)) < 0) return fail(-r, "{}", ctx);
    BERTH_TRY_VOID_CTX(add_match(j, "_PID=1"), ctx);
    BERTH_TRY_VOID_CTX(add_match(j, "UNIT=" + unit), ctx);
    if ((r = sd_journal_add_disjunction(j)) < 0) return fail(-r, "{}", ctx);
    BERTH_TRY_VOID_CTX(add_match(j, "_UID=0"), ctx);
    BERTH_TRY_VOID_CTX(add_match(j, "OBJECT_SYSTEMD_UNIT=" + unit), ctx);
    return journal;
}

UnitJournal::UnitJournal(UnitJournal&& o) noexcept : j_(std::exchange(o.j_, nullptr)), lines_(o.lines_) {}
UnitJournal& UnitJournal::operator=(UnitJournal&& o) noexcept {
    if (this != &o) {
        if (j_) sd_journal_close(j_);
        j_ = std::exchange(o.j_, nullptr);
        lines_ = o.lines_;
    }
    return *this;
}
UnitJournal::~UnitJournal() {
    if (j_) sd_journal_close(j_);
}

Result<JournalEntry> UnitJournal::read_current() {
    JournalEntry e;
    int r = sd_journal_get_realtime_usec(j_, &e.realtime_us);
    if (r < 0) return fail(-r, "read journal entry time");
    char* cursor = nullptr;
    if (sd_journal_get_cursor(j_, &cursor) >= 0) {
        e.cursor = cursor;
        free(cursor);
    }
    e.message = field(j_, "MESSAGE");
    e.identifier = field(j_, "SYSLOG_IDENTIFIER");
    if (e.identifier.empty()) e.identifier = field(j_, "_COMM");
    auto pid = field(j_, "_PID");
    if (!pid.empty()) e.pid = uint32_t(std::strtoul(pid.c_str(), nullptr, 10));
    auto prio = field(j_, "PRIORITY");
    if (!prio.empty()) e.priority = std::atoi(prio.c_str());
    return e;
}

Result<std::vector<JournalEntry>> UnitJournal::tail() {
    std::vector<JournalEntry> out;
    int r = sd_journal_seek_tail(j_);
    if (r < 0) return fail(-r, "seek journal tail");
    if (lines_ == 0) {
        // Position after the last entry so follow() only sees new ones.
        if ((r = sd_journal_previous(j_)) < 0) return fail(-r, "read journal");
        return out;
    }
    size_t n = 0;
    // sd_journal_previous_skip() stops at the head; it refuses counts above INT_MAX (ERANGE).
    r = sd_journal_previous_skip(j_, lines_ > size_t(INT_MAX) ? uint64_t(INT_MAX) : uint64_t(lines_));
    if (r < 0) return fail(-r, "read journal");
    n = size_t(r);
    if (n == 0) return out;
    for (size_t i = 0; i < n; ++i) {
        out.push_back(BERTH_TRY(read_current()));
        if (i + 1 < n) {
            r = sd_journal_next(j_);
            if (r < 0) return fail(-r, "read journal");
            if (r == 0) break;
        }
    }
    return out;
}

Result<> UnitJournal::follow(const std::function<bool(const JournalEntry&)>& sink, uint64_t timeout_us) {
    uint64_t deadline = timeout_us == UINT64_MAX ? UINT64_MAX : now_usec(CLOCK_MONOTONIC) + timeout_us;
    for (;;) {
        int r = sd_journal_next(j_);
        if (r < 0) return fail(-r, "read journal");
        if (r > 0) {
            auto e = BERTH_TRY(read_current());
            if (!sink(e)) return {};
            continue;
        }
        uint64_t now = now_usec(CLOCK_MONOTONIC);
        if (now >= deadline) return {};
        uint64_t wait = deadline == UINT64_MAX ? uint64_t(-1) : deadline - now;
        r = sd_journal_wait(j_, wait);
        if (r < 0) return fail(-r, "wait for journal");
    }
}

std::string format_short(const JournalEntry& e, const std::string& hostname) {
    time_t t = time_t(e.realtime_us / 1000000ULL);
    struct tm tm {};
    localtime_r(&t, &tm);
    char buf[32];
    strftime(buf, sizeof buf, "%b %d %H:%M:%S", &tm);
    std::string out = buf;
    if (!hostname.empty()) out += " " + hostname;
    out += " " + (e.identifier.empty() ? std::string("?") : e.identifier);
    if (e.pid) out += fmt::format("[{}]", e.pid);
    out += ": " + e.message;
    return out;
}

}  // namespace berth::systemd
