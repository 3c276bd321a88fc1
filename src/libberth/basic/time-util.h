#pragma once
// Reading a clock in whole microseconds (systemd's now(CLOCK_...)): one helper instead of a copy per
// module. Async-signal-safe and allocation-free, so the supervisor and the relay may call it anywhere.
#include <cstdint>
#include <ctime>

namespace berth {

inline uint64_t now_usec(clockid_t clock) noexcept {
    struct timespec ts {};
    ::clock_gettime(clock, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000000u + static_cast<uint64_t>(ts.tv_nsec) / 1000u;
}

}  // namespace berth
