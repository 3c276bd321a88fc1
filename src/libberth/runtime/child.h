// The container's first process, between clone() and exec(). It runs in the new namespaces, on
// memory prepared by the parent (this struct and everything it points to), allocates nothing,
// throws nothing, and reports failure as one Message{Error} on the sync socket before _exit().
//
// Protocol on the sync socket (a SOCK_STREAM socketpair; fds travel as SCM_RIGHTS):
//   parent -> child  Go       (after uid/gid maps, cgroup and network are in place; with a user
//                              namespace it carries the root file system as a detached mount,
//                              root-assembly.h)
//   child  -> parent Mounted  (root file system built, pivot_root done; may carry the pty master)
//   parent -> child  Launch   (identity, argv, envp, workdir, resolved from the container's own
//                              /etc/passwd through /proc/PID/root)
//   child  -> parent Error    (any time), or nothing: the socket is close-on-exec, so EOF after
//                              Launch means execve() succeeded.
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

#include <cstdint>
#include <vector>

#include "runtime/capabilities.h"
#include "runtime/mount-plan.h"

namespace berth::runtime {

enum class MessageType : uint32_t { Go = 1, Mounted = 2, Launch = 3, Error = 9 };

struct MessageHeader {
    MessageType type;
    uint32_t length;  // payload bytes after the header
};

struct GoPayload {
    uint32_t assembled_root = 0;  // the root's detached mount fd is attached
};

struct MountedPayload {
    uint32_t has_pty = 0;  // the pty master fd is attached
};

struct ErrorPayload {
    int32_t code = 0;  // positive errno
    char message[480] = {};
};

// Launch payload layout: LaunchHeader, then gid_t groups[ngroups], then NUL-terminated strings:
// argv[argc], envp[envc], workdir, search PATH.
struct LaunchHeader {
    uint32_t uid = 0, gid = 0;
    uint32_t ngroups = 0, argc = 0, envc = 0;
    uint64_t effective = 0, permitted = 0;
};

struct ChildRlimit {
    int resource;
    struct rlimit limit;
};

// [container] sysctl: written by the child in its own network and IPC namespaces, after the
// parent has attached the network (per-interface keys find their interface) and before the root
// is built (the host's /proc, whose /proc/sys/net and kernel.shm* show the writer's namespaces).
struct ChildSysctl {
    const char* path;  // "/proc/sys/net/core/somaxconn"
    const char* value;
};

struct ChildConfig {
    int sync_fd = -1;
    int stdin_fd = -1;  // dup'ed onto 0 unless -1 (e.g. /dev/null without -i)
    const MountPlan* plan = nullptr;
    const char* stage_dir = nullptr;
    const char* root_dir = nullptr;  // stage/root
    const char* hostname = nullptr;
    bool user_namespace = false;  // become uid/gid 0 of the new namespace once mapped
    bool loopback_up = false;
    bool tty = false;
    bool init = false;
    bool no_new_privileges = true;
    uint64_t bounding = 0;
    int last_cap = 40;
    const unsigned char* seccomp = nullptr;  // BPF, nullptr = unconfined
    size_t seccomp_size = 0;
    const ChildRlimit* rlimits = nullptr;
    size_t nrlimits = 0;
    const ChildSysctl* sysctls = nullptr;
    size_t nsysctls = 0;
    mode_t umask_value = 022;
    // Socket activation: the listening fds (close-on-exec in the parent) become 3, 4, ... in the
    // payload, in this order; nothing else but stdio stays open.
    const int* listen_fds = nullptr;
    size_t nlisten = 0;
    // Scratch space the parent sized before clone (the child writes into its private copy).
    char* launch_buffer = nullptr;
    size_t launch_capacity = 0;
    char** pointer_buffer = nullptr;  // argv + envp + NULLs
    size_t pointer_capacity = 0;
};

// Never returns.
[[noreturn]] void child_main(const ChildConfig& cfg);

// Helpers shared with `berth exec`'s child (async-signal-safe).
int send_message(int fd, MessageType type, const void* payload, uint32_t length, int pass_fd = -1);
// Receives a header and the fd sent with it, if any (*received_fd, close-on-exec; -1 if none).
// Returns 1, 0 on EOF before any byte, -1 with errno (EPIPE: EOF mid-header).
int recv_message_header(int fd, MessageHeader* header, int* received_fd);
// Reports "WHAT 'PATH' (NOTE)" (each part only when given) and the errno `code`, then _exit()s.
[[noreturn]] void child_fail(int sync_fd, int code, const char* what, const char* path,
                             const char* note = nullptr);

// Closes every fd but stdio and `keep` (the sync socket, close-on-exec): whatever else the
// runtime or the caller of berth held (cgroup and volume fds, a caller's pipe or directory
// without O_CLOEXEC) must not be open while the child resolves a path on the container's behalf
// (a /proc/self/fd/N there would lead out of the root: CVE-2024-21626) nor reach the payload.
// Returns 0 or -1 with errno.
int close_inherited_fds(int keep);

// Why a path was refused: it (or the missing part of it) is on /proc, where magic links lead out of
// the root; openat2 cannot tell a magic link from a symlink loop, both are ELOOP.
inline constexpr const char* kMagicLinkNote = "a /proc magic link, or a symlink loop";

// Opens `path` (O_CLOEXEC added) inside the process's root, after pivot_root or setns, with /proc
// magic links refused (openat2 RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS for an absolute path).
// Returns the fd or -1 with errno (ELOOP: through a magic link).
int open_in_container(const char* path, int flags);

// Enters `workdir` inside the process's root (after pivot_root or setns): openat2(RESOLVE_IN_ROOT
// | RESOLVE_NO_MAGICLINKS) + fchdir, then checks that the new cwd is reachable from the root.
// Returns 0, or a positive errno with *what (the step) and *note (why it was refused, or nullptr).
int enter_workdir(const char* workdir, const char** what, const char** note);

// What exec_search_path() reports when it fails: the step, the path, and why it was refused.
struct ExecFailure {
    const char* what = "execute";
    const char* note = nullptr;
    char path[4096] = {};
};

// Finds argv[0] (through `search_path` when it has no '/'), resolving each candidate inside the
// root with magic links refused, and executes it by name from its directory held open (execveat),
// so the process keeps the name ps shows for a plain execve(). Returns a positive errno (and
// fills *failure) when nothing could be executed.
int exec_search_path(char* const argv[], char* const envp[], const char* search_path, ExecFailure* failure);
// The last step of a payload's process: every signal unblocked, then exec_search_path(); a
// failure is reported on `sync_fd` (child_fail).
[[noreturn]] void exec_payload(int sync_fd, char* const argv[], char* const envp[], const char* search_path);
int setup_controlling_tty(int slave_fd);
int apply_identity_and_privileges(const LaunchHeader& h, const gid_t* groups, uint64_t bounding, int last_cap,
                                  bool no_new_privileges, const unsigned char* seccomp, size_t seccomp_size,
                                  const char** failed_step);

}  // namespace berth::runtime
