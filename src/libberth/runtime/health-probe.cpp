#include "runtime/health-probe.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "basic/io-util.h"
#include "basic/time-util.h"
#include "basic/unique.h"
#include "runtime/state.h"

namespace berth::runtime {

namespace {

constexpr int kCouldNotRun = 125;

// The child's report on the pipe: "EXIT DURATION_US\n" + output (as the supervisor's helper
// prints it, health-supervise.h).
void report(int fd, int exit_status, uint64_t duration_us, const std::string& output) {
    std::string text = fmt::format("{} {}\n", exit_status, duration_us) + output;
    (void)write_all_raw(fd, text.data(), text.size());
}

}  // namespace

Result<ProbeOutcome> run_health_probe(const std::string& name, uint64_t timeout_ms) {
    RuntimeState st = BERTH_TRY(read_state(name));
    if (!st.health) return fail(ENOENT, "container '{}' has no health check", name);
    if (timeout_ms == 0) timeout_ms = st.health->timeout_us / 1000;
    int p[2];
    if (::pipe2(p, O_CLOEXEC) < 0) return fail_errno("pipe");
    UniqueFd read_end(p[0]), write_end(p[1]);
    const uint64_t at = now_usec(CLOCK_REALTIME);
    std::fflush(nullptr);
    pid_t pid = ::fork();
    if (pid < 0) return fail_errno("fork");
    if (pid == 0) {
        // The child joins the container for good (setns); it reports and _exits, running no
        // destructor or atexit handler of the parent's.
        read_end.reset();
        auto r = probe_in_container(name, st.health->command, timeout_ms);
        if (r)
            report(write_end.get(), r->exit_status, r->duration_us, r->output);
        else
            report(write_end.get(), kCouldNotRun, 0, r.error().what());
        ::_exit(0);
    }
    write_end.reset();
    std::string text = read_all(read_end.get(), "the probe's report", 64 * 1024).value_or("");
    int wstatus = 0;
    while (::waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
    }
    ProbeOutcome out;
    char* end = nullptr;
    long status = std::strtol(text.c_str(), &end, 10);
    if (end != text.c_str() && *end == ' ') {
        out.exit_status = static_cast<int>(status);
        out.duration_us = std::strtoull(end + 1, &end, 10);
        size_t nl = text.find('\n');
        out.output = nl == std::string::npos ? "" : text.substr(nl + 1);
    } else {
        out.exit_status = kCouldNotRun;
        out.output = "the probe process ended without a report";
    }
    if (out.output.size() > kProbeOutputTail) out.output.erase(0, out.output.size() - kProbeOutputTail);
    (void)append_probe_record(name, ProbeRecord{at, out.exit_status, out.duration_us, out.output});
    return out;
}

}  // namespace berth::runtime
