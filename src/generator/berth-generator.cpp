// berth-generator: systemd.generator(7). Called by systemd at boot and at every daemon-reload as
//   berth-generator NORMAL_DIR [EARLY_DIR LATE_DIR]
// Writes berth@NAME.service units (and the pinned declarations they run) into NORMAL_DIR only.
// It must never break boot: invalid declarations become units that fail with their error, the
// error is logged to the kernel log (journal) and stderr, and the exit status is 0 unless the
// output directory itself cannot be written.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "basic/string-util.h"
#include "basic/unique.h"
#include "cdi/cdi.h"
#include "config/config.h"
#include "config/unit.h"

namespace {

// One kmsg record per line: "<3>berth-generator[PID]: ..." (priority 3 = error). Early at boot
// the journal is not running yet; journald imports kmsg later, so this is where the error lands.
// BERTH_GENERATOR_KMSG=0 keeps test runs out of the host's kernel log.
void log_error(const std::string& message) {
    std::fprintf(stderr, "berth-generator: %s\n", message.c_str());
    if (const char* kmsg_env = std::getenv("BERTH_GENERATOR_KMSG"); kmsg_env && std::string(kmsg_env) == "0")
        return;
    berth::UniqueFd kmsg(::open("/dev/kmsg", O_WRONLY | O_CLOEXEC | O_NOCTTY));
    if (!kmsg) return;
    for (const auto& line : berth::split(message, '\n')) {
        std::string record = "<3>berth-generator[" + std::to_string(::getpid()) + "]: " + line + "\n";
        ssize_t ignored = ::write(kmsg.get(), record.data(), record.size());
        (void)ignored;
    }
}

}  // namespace

int main(int argc, char** argv) {
    // systemd passes three absolute directories (one in old versions). Anything else, "--help"
    // included, is a person at a shell: a usage line and a failure, and nothing is written (a
    // unit tree under "./--help" helps nobody).
    bool usage_ok = argc == 2 || argc == 4;
    for (int i = 1; usage_ok && i < argc; ++i) usage_ok = argv[i][0] == '/';
    if (!usage_ok) {
        std::fprintf(stderr,
                     "usage: berth-generator NORMAL_DIR [EARLY_DIR LATE_DIR] (absolute directories; see "
                     "systemd.generator(7))\n");
        return 1;
    }
    berth::config::UnitOptions options;
    options.cdi_device_allow = berth::cdi::device_allow_entries;
    auto report = berth::config::generate(berth::config::SearchPaths::system(), argv[1], options);
    if (!report) {
        log_error(report.error().what());
        return 1;
    }
    for (const auto& error : report->errors) log_error(error);
    return 0;
}
