// One health probe of a running container, as the supervisor's helper (`berth
// internal-health-probe`) and `berth health NAME` run it: the `berth exec` path
// (probe_in_container, exec.h) in a child process, because joining the container's namespaces
// is for good and the record (state.h, NAME.probes.json) is written on the host's /run.
#pragma once

#include <string>

#include "basic/result.h"
#include "runtime/exec.h"

namespace berth::runtime {

// Runs NAME's health command once (timeout: `timeout_ms`, 0 = the check's own) and records it in
// its probe history. A probe that could not be started at all is a failed probe (status 125, the
// error as its output), as a failing command is. ENOENT when NAME has no health check.
Result<ProbeOutcome> run_health_probe(const std::string& name, uint64_t timeout_ms);

}  // namespace berth::runtime
