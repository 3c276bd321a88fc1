// Files and directories that must not be what they should not be: reading a file that someone
// may have replaced by a FIFO or /dev/zero, keeping a directory root's alone. (Implemented in
// fs-util.cpp.)
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>

#include "basic/result.h"

namespace berth {

// Reads `path`, which must be a regular file of at most `max_size` bytes, without ever blocking
// on something that is not one (a FIFO, /dev/zero, a tty): it is opened O_NONBLOCK, checked with
// fstat() before the first read, and read only up to max_size + 1 bytes. Errors: the open's errno;
// EINVAL "'PATH' is a FIFO, not a regular file"; EFBIG when larger than max_size.
Result<std::string> read_regular_file(const std::string& path, size_t max_size);

// "a FIFO", "a directory", "a character device"...: what st_mode says a file is, for messages.
std::string_view file_kind(mode_t mode);

// A directory only its owner may use: created (parents 0755 as mkdir -p) with `mode`, and an
// existing one set to exactly `mode`, umask or not (fchmod, not mkdir's mode argument alone).
// Refuses (EPERM) a directory owned by another user than ours: someone else could swap its
// contents. Symlinks are followed (an administrator may move /var/lib/berth elsewhere).
Result<> make_private_directory(const std::string& path, mode_t mode = 0700);

}  // namespace berth
