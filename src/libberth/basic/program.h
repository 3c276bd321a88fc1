// Running a helper program and reading what it prints: making a file system is mkfs's job,
// reading thin-pool metadata thin_ls's, decrypting a credential systemd-creds'.
#pragma once

#include <string>
#include <vector>

#include "basic/result.h"

namespace berth {

// Runs argv[0], searched in /usr/sbin, /sbin, /usr/bin, /bin (ENOENT naming it when absent), with
// stdin from /dev/null, and waits. Returns its standard output; on a non-zero exit the error holds
// the status and the start of its stderr and stdout.
Result<std::string> run_program(const std::vector<std::string>& argv);

// The absolute path run_program would execute, or "" when there is none.
std::string find_program(const std::string& name);

}  // namespace berth
