// Declarations -> systemd units: render_unit() is the pure text transformation (golden-tested);
// generate() is systemd.generator(7) logic as a library function, used by berth-generator,
// `berth generate --output DIR` and `berth plan`.
//
// Output tree for a valid declaration NAME (OUT = the generator's normal output dir):
//   OUT/berth@NAME.service                   the unit
//   OUT/berth/NAME.toml                      to_toml() of the merged declaration: what the unit runs
//   OUT/TARGET.wants/berth@NAME.service      -> ../berth@NAME.service, for each install.wanted_by
//   OUT/TARGET.requires/berth@NAME.service   -> ../berth@NAME.service, for each install.required_by
//   OUT/berth@NAME.socket                    with [[socket]]s; then the .wants/.requires links above
//                                            name the socket instead of the service
// For an invalid declaration with a usable NAME:
//   OUT/berth@NAME.service                   a unit whose ExecStart fails, printing the error
//   OUT/berth/NAME.error                     the validation error text it prints
//   OUT/berth.target.wants/berth@NAME.service
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "basic/result.h"
#include "config/config.h"

namespace berth::config {

struct UnitOptions {
    // Directory holding the `berth` binary for ExecStart=; empty = the configured bindir.
    std::string bindir;
    // Directory of the pinned NAME.toml / NAME.error as the unit will see them; empty =
    // OUTPUT_DIR/berth. `berth plan` renders into a scratch directory with this set to the real
    // generator directory so the texts compare equal.
    std::string pinned_dir;
    // CDI names -> "HOSTPATH PERMS" DeviceAllow= entries (the host's specs, read by the caller:
    // the config library does not read them); nullopt when they cannot be resolved here, and then
    // the unit keeps systemd's default device policy and only the runtime's own device program
    // (runtime/device-cgroup.h) closes the container's devices. Unset: the same.
    std::function<std::optional<std::vector<std::string>>(const std::vector<std::string>&)> cdi_device_allow;
};

std::string unit_name(std::string_view container_name);         // "berth@NAME.service"
std::string socket_unit_name(std::string_view container_name);  // "berth@NAME.socket"

// WatchdogSec= for [health] watchdog = true: interval x retries + timeout (defaults filled in).
// The supervisor sends WATCHDOG=1 after each passing probe (and each probe of the start period),
// so systemd's watchdog fires when no probe has passed for as long as it takes `retries` probes to
// fail, including one that hangs until its timeout. 0 without the watchdog.
uint64_t health_watchdog_usec(const Health& health);

// The unit for a valid declaration; `pinned_dir` must be set (generate() fills it in).
std::string render_unit(const Declaration& declaration, const UnitOptions& options);

// The socket units of a declaration with [[socket]]s: one per distinct [[socket]] name, since
// systemd gives every fd of one .socket unit its one FileDescriptorName=. In the order the names
// first appear: berth@NAME.socket, then berth@NAME:2.socket, berth@NAME:3.socket ... (':' cannot
// be in a container name, so no other container's unit has these names). The service lists them
// in Sockets= when there are several.
std::vector<std::string> socket_unit_names(const Declaration& declaration);
// What $LISTEN_FDNAMES says for each of those units: the socket name, or for unnamed sockets
// systemd's default, the unit's name. The runtime hands the fds to the payload in this order.
std::vector<std::string> listen_fd_names(const Declaration& declaration);

// Socket unit number `group` (of socket_unit_names()): one Listen*= line for each socket of that
// name and FileDescriptorName=. It carries the declaration's [install] instead of the service,
// which its first connection starts.
std::string render_socket(const Declaration& declaration, size_t group = 0);

// The unit for an invalid declaration: starting it fails and prints the error (in error_file)
// to the journal via `berth validate --report-error=FILE`; its Description carries the first line.
std::string render_failed_unit(std::string_view name, const std::string& source_path, const Error& error,
                               const UnitOptions& options);

struct GenerateReport {
    std::vector<std::string> units;    // names of the units written, valid or failing
    std::vector<std::string> invalid;  // container NAMEs whose declaration is invalid
    std::vector<std::string> errors;   // every validation error, one message per declaration
};

// Loads everything in `paths` and writes the tree above into `output_dir` (must exist or be
// creatable). Writes nothing outside output_dir. Fails only when output_dir cannot be written;
// invalid declarations are reported in the GenerateReport.
Result<GenerateReport> generate(const SearchPaths& paths, const std::string& output_dir,
                                const UnitOptions& options);

}  // namespace berth::config
