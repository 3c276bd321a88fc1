// Running the few external programs the dm-thin backend relies on (mkfs.<fs>, thin_ls): making a
// filesystem is mkfs's job and reading thin-pool metadata is thin-provisioning-tools' job.
#pragma once

#include <string>
#include <vector>

#include "basic/result.h"

namespace berth::store::dmthin {

// Runs argv[0], searched in /usr/sbin, /sbin, /usr/bin, /bin (ENOENT naming it when absent), with
// stdin from /dev/null, and waits. Returns its standard output; on a non-zero exit the error holds
// the status and the start of its stderr and stdout.
Result<std::string> run_program(const std::vector<std::string>& argv);

// The absolute path run_program would execute, or "" when there is none.
std::string find_program(const std::string& name);

}  // namespace berth::store::dmthin
