// Waiting for and signalling child processes: waitpid/waitid retried on EINTR, pidfd system
// calls without their syscall() casts. The *_raw functions (process-raw.h) allocate nothing and
// return 0 or -errno (or a fd), so the runtime's child and signal paths can use them.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <string_view>

#include "basic/process-raw.h"
#include "basic/result.h"
#include "basic/unique.h"

namespace berth {

// waitpid(pid, 0) until it reports, retrying EINTR. The wait status (WIFEXITED...).
Result<int> wait_for_pid(pid_t pid, std::string_view what);

Result<UniqueFd> pidfd_open(pid_t pid);

}  // namespace berth
