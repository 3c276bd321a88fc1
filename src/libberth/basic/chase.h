// openat2() with typed resolve flags: the one place berth resolves a path under a directory fd.
//
// RESOLVE_IN_ROOT treats `dirfd` as "/" ("..", absolute symlinks stay inside: container roots);
// RESOLVE_BENEATH refuses any path that leaves `dirfd` (layer extraction, image layouts);
// RESOLVE_NO_SYMLINKS / RESOLVE_NO_MAGICLINKS refuse symlinks / /proc magic links on the way.
// openat2 returns EAGAIN when a concurrent rename or mount could have let ".." escape (the kernel
// could not prove it did not); the wrapper retries that and EINTR a bounded number of times.
#pragma once

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/types.h>

#include <cstdint>
#include <string_view>

#include "basic/result.h"
#include "basic/unique.h"

namespace berth {

enum class Resolve : uint64_t {
    None = 0,
    NoXdev = RESOLVE_NO_XDEV,
    NoMagicLinks = RESOLVE_NO_MAGICLINKS,
    NoSymlinks = RESOLVE_NO_SYMLINKS,
    Beneath = RESOLVE_BENEATH,
    InRoot = RESOLVE_IN_ROOT,
};

constexpr Resolve operator|(Resolve a, Resolve b) {
    return static_cast<Resolve>(static_cast<uint64_t>(a) | static_cast<uint64_t>(b));
}
constexpr Resolve& operator|=(Resolve& a, Resolve b) { return a = a | b; }
constexpr bool has(Resolve set, Resolve flag) {
    return (static_cast<uint64_t>(set) & static_cast<uint64_t>(flag)) == static_cast<uint64_t>(flag);
}

// Strict resolution below a directory: no "..", absolute path, symlink or magic link leads out.
inline constexpr Resolve kResolveStrictlyBeneath =
    Resolve::Beneath | Resolve::NoSymlinks | Resolve::NoMagicLinks;

// openat2(dirfd, path, {flags | O_CLOEXEC, mode, resolve}). The fd, or -1 with errno set.
// Allocates nothing: usable between clone() and exec().
int chase_raw(int dirfd, const char* path, int flags, Resolve resolve, mode_t mode = 0) noexcept;

// The same, for ordinary code; the error names `path`.
Result<UniqueFd> chase(int dirfd, const std::string& path, int flags, Resolve resolve, mode_t mode = 0);

}  // namespace berth
