// File and path helpers shared by every component. All return Result and never log.
#pragma once

#include <fcntl.h>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "basic/result.h"
#include "basic/unique.h"

namespace berth {

Result<std::string> read_file(const std::string& path);

// Crash-safe replace: write "<path>.tmp-XXXXXX" in the same directory, fsync it, rename over
// `path`, fsync the directory. Readers see the old or the new content, never a mix.
Result<> write_file_atomic(const std::string& path, std::string_view content, mode_t mode = 0644);

// Plain (non-atomic) write, for kernel files (cgroupfs, procfs) and scratch files.
Result<> write_file(const std::string& path, std::string_view content, int flags = 0, mode_t mode = 0644);

Result<> fsync_directory(const std::string& path);

// mkdir -p; existing directories are fine.
Result<> mkdir_p(const std::string& path, mode_t mode = 0755);

// rm -rf that never crosses into another mount and never follows symlinks. Missing path is fine.
Result<> remove_tree(const std::string& path);

// Lexically normalised absolute path ("/a/./b//c/../d" -> "/a/b/d"); empty if `path` is not
// absolute. Does not touch the filesystem.
std::string normalize_absolute_path(std::string_view path);

// Joins "a" and "b" with exactly one '/' between them.
std::string path_join(std::string_view a, std::string_view b);

// An absolute path's parent and last component, lexically normalised: "/a/b/" -> {"/a", "b"},
// "/a" -> {"/", "a"}; {"", ""} for "/" or a relative path.
std::pair<std::string, std::string> split_parent(std::string_view path);

bool path_exists(const std::string& path);
bool is_directory(const std::string& path);

// Opens `path` with O_PATH|O_CLOEXEC (plus extra flags).
Result<UniqueFd> open_path(const std::string& path, int extra_flags = 0);

// Resolves `path` (relative to `root`) inside `root` with openat2(RESOLVE_IN_ROOT), so symlinks
// cannot lead out of `root`. Returns an O_PATH fd (plus extra flags).
Result<UniqueFd> open_in_root(int root_fd, const std::string& path, int flags = O_PATH, mode_t mode = 0);

// The /proc/self/fd/N path for an fd, for APIs that need a path.
std::string fd_path(int fd);

// A helper executable: `path` if executable, else "" (for lookups like $ENV, then beside this
// executable, then libexecdir).
std::string executable_or_empty(const std::string& path);
// The directory of this process's executable (/proc/self/exe), with a trailing '/'; "" if unknown.
std::string self_executable_dir();

}  // namespace berth
