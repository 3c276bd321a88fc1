// Child side of the container start. Rules: no allocation, no exceptions, no stdio; everything it
// reads was prepared by the parent before clone(). Each failure names the step and the path.
#include "runtime/child.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>

#include "basic/chase.h"
#include "basic/io-util.h"
#include "config/values.h"
#include "runtime/child-fd.h"
#include "runtime/seccomp-compile.h"

#ifndef MOVE_MOUNT_F_EMPTY_PATH
#define MOVE_MOUNT_F_EMPTY_PATH 0x00000004
#endif

namespace berth::runtime {

namespace {

size_t str_copy(char* dst, size_t cap, const char* src) {
    size_t n = 0;
    if (cap == 0) return 0;
    while (src && src[n] && n + 1 < cap) {
        dst[n] = src[n];
        ++n;
    }
    dst[n] = '\0';
    return n;
}

size_t str_append(char* dst, size_t cap, const char* src) {
    size_t len = std::strlen(dst);
    return len + str_copy(dst + len, cap - len, src);
}

void fd_path(char* buf, size_t cap, int fd) {
    char digits[16];
    int n = 0;
    unsigned v = static_cast<unsigned>(fd);
    do {
        digits[n++] = static_cast<char>('0' + v % 10);
        v /= 10;
    } while (v);
    str_copy(buf, cap, "/proc/self/fd/");
    size_t len = std::strlen(buf);
    while (n > 0 && len + 1 < cap) buf[len++] = digits[--n];
    buf[len] = '\0';
}

// basic/io-util's allocation-free loops, as the child's true/false (errno set) convention.
bool write_full(int fd, const void* data, size_t size) { return write_all_raw(fd, data, size) == 0; }

bool read_full(int fd, void* data, size_t size) {
    ssize_t n = read_all_raw(fd, data, size);
    if (n >= 0 && static_cast<size_t>(n) < size) errno = EPIPE;  // the other end closed early
    return n >= 0 && static_cast<size_t>(n) == size;
}

int open_in_root(int root_fd, const char* path, int flags) {
    return chase_raw(root_fd, path, flags, Resolve::InRoot);
}

// Opens `path` inside the root, creating it (and missing parents) as a directory or an empty
// file. Returns an O_PATH fd or -1 with errno.
int ensure_in_root(int root_fd, const char* path, bool is_dir, int depth = 0) {
    int fd = open_in_root(root_fd, path, O_PATH);
    if (fd >= 0 || errno != ENOENT || depth > 64) return fd;
    char parent[PATH_MAX];
    str_copy(parent, sizeof parent, path);
    char* slash = std::strrchr(parent, '/');
    if (!slash) {
        errno = EINVAL;
        return -1;
    }
    const char* name = path + (slash - parent) + 1;
    if (slash == parent)
        slash[1] = '\0';
    else
        *slash = '\0';
    ChildFd pfd(ensure_in_root(root_fd, parent, true, depth + 1));
    if (!pfd) return -1;
    int rc;
    if (is_dir) {
        rc = ::mkdirat(pfd.get(), name, 0755);
        if (rc < 0 && errno == EEXIST) rc = 0;
    } else {
        ChildFd f(::openat(pfd.get(), name, O_CREAT | O_WRONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0644));
        rc = f ? 0 : -1;
    }
    if (rc < 0) return -1;
    return open_in_root(root_fd, path, O_PATH);
}

unsigned long preserved_flags(const char* path) {
    struct statvfs sv {};
    if (::statvfs(path, &sv) < 0) return 0;
    unsigned long f = 0;
    if (sv.f_flag & ST_NOSUID) f |= MS_NOSUID;
    if (sv.f_flag & ST_NODEV) f |= MS_NODEV;
    if (sv.f_flag & ST_NOEXEC) f |= MS_NOEXEC;
    if (sv.f_flag & ST_NOATIME) f |= MS_NOATIME;
    if (sv.f_flag & ST_NODIRATIME) f |= MS_NODIRATIME;
    if (sv.f_flag & ST_RELATIME) f |= MS_RELATIME;
    return f;
}

// Sets `attr` on the mount at `tree` (the root of a mount, attached or detached) and, when
// `recursive`, on every mount below it: a read-only bind whose source has a submount is
// read-only in the submount too, which MS_REMOUNT|MS_BIND|MS_RDONLY (the top mount only) is not.
int set_tree_attributes(int tree, uint64_t attr, bool recursive) {
    struct mount_attr ma {};
    ma.attr_set = attr;
    return static_cast<int>(::syscall(SYS_mount_setattr, tree, "",
                                      AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0), &ma, sizeof ma));
}

// Binds `dirfd`/`path` on `target_fd` with `attr` set: the copy is made detached (open_tree),
// takes its attributes there, and only then is attached, so it is never visible without them.
int attach_copy(int dirfd, const char* path, unsigned int at_flags, bool recursive, uint64_t attr,
                int target_fd) {
    ChildFd tree(static_cast<int>(
        ::syscall(SYS_open_tree, dirfd, path,
                  OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | at_flags | (recursive ? AT_RECURSIVE : 0))));
    if (!tree) return -1;
    int rc = attr ? set_tree_attributes(tree.get(), attr, recursive) : 0;
    if (rc == 0)
        rc = static_cast<int>(::syscall(SYS_move_mount, tree.get(), "", target_fd, "",
                                        MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH));
    return rc;
}

struct StepError {
    const char* what = nullptr;
    const char* path = nullptr;
};

int apply_op(int root_fd, const MountOp& op, StepError* err) {
    char p[64];
    err->path = op.target.c_str();
    switch (op.kind) {
        case MountOp::Kind::Mount: {
            err->what = "mount";
            ChildFd fd(ensure_in_root(root_fd, op.target.c_str(), true));
            if (!fd) return -1;
            fd_path(p, sizeof p, fd.get());
            return ::mount(op.source.c_str(), p, op.fstype.c_str(), op.flags,
                           op.data.empty() ? nullptr : op.data.c_str());
        }
        case MountOp::Kind::StageFile: {
            err->what = "write";
            err->path = op.source.c_str();
            ChildFd f(::open(op.source.c_str(), O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0644));
            if (!f || !write_full(f.get(), op.data.data(), op.data.size())) return -1;
            [[fallthrough]];
        }
        case MountOp::Kind::BindHost: {
            err->what = "bind mount";
            err->path = op.target.c_str();
            const uint64_t attr = (op.read_only ? MOUNT_ATTR_RDONLY : 0) | (op.nodev ? MOUNT_ATTR_NODEV : 0);
            ChildFd target(ensure_in_root(root_fd, op.target.c_str(), op.target_is_dir));
            if (!target) return -1;
            const int fd = target.get();
            fd_path(p, sizeof p, fd);
            int rc;
            if (op.tree_fd >= 0) {
                // A volume (a directory tree) goes on a directory only.
                struct stat st {};
                rc = ::fstat(fd, &st);
                if (rc == 0 && !S_ISDIR(st.st_mode)) {
                    err->what = "mount a volume on the non-directory";
                    errno = ENOTDIR;
                    rc = -1;
                } else if (rc == 0 && op.take_owner) {
                    // Inside the container's user namespace (if any): ids as the image shows them.
                    // Before the attributes: a read-only tree could not take them.
                    err->what = "give the new volume the owner and mode of";
                    char tree[64];
                    fd_path(tree, sizeof tree, op.tree_fd);
                    if (::fchownat(op.tree_fd, "", st.st_uid, st.st_gid, AT_EMPTY_PATH) < 0 ||
                        ::chmod(tree, st.st_mode & 07777) < 0)
                        rc = -1;
                }
                if (rc == 0 && attr) {
                    err->what = op.read_only ? "bind mount read-only" : "bind mount";
                    rc = set_tree_attributes(op.tree_fd, attr, op.recursive);
                }
                if (rc == 0) {
                    err->what = "bind mount";
                    rc = static_cast<int>(::syscall(SYS_move_mount, op.tree_fd, "", fd, "",
                                                    MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH));
                }
            } else if (attr) {
                err->what = op.read_only ? "bind mount read-only" : "bind mount";
                rc = attach_copy(AT_FDCWD, op.source.c_str(), 0, op.recursive, attr, fd);
            } else {
                rc = ::mount(op.source.c_str(), p, nullptr, MS_BIND | (op.recursive ? MS_REC : 0), nullptr);
            }
            return rc;
        }
        case MountOp::Kind::Secret: {
            // Straight onto the secrets tmpfs mounted by an op before this one: never on a disk,
            // never in the writable layer. Mode now, owner at Launch (finish_secrets).
            err->what = "write secret";
            err->path = op.source.c_str();
            const char* slash = std::strrchr(op.source.c_str(), '/');
            if (!slash || slash == op.source.c_str()) {
                errno = EINVAL;
                return -1;
            }
            char dir_path[PATH_MAX];
            str_copy(dir_path, sizeof dir_path, op.source.c_str());
            dir_path[slash - op.source.c_str()] = '\0';
            ChildFd dir(open_in_root(root_fd, dir_path, O_PATH | O_DIRECTORY));
            if (!dir) return -1;
            ChildFd f(
                ::openat(dir.get(), slash + 1, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0600));
            if (!f || !write_full(f.get(), op.data.data(), op.data.size())) return -1;
            if (::fchmod(f.get(), op.file_mode) < 0) return -1;
            if (op.target == op.source) return 0;
            err->what = "bind secret read-only on";
            err->path = op.target.c_str();
            ChildFd target(ensure_in_root(root_fd, op.target.c_str(), false));
            if (!target) return -1;
            return attach_copy(dir.get(), slash + 1, 0, false,
                               MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC,
                               target.get());
        }
        case MountOp::Kind::Symlink: {
            err->what = "symlink";
            char parent[PATH_MAX];
            str_copy(parent, sizeof parent, op.target.c_str());
            char* slash = std::strrchr(parent, '/');
            if (!slash) {
                errno = EINVAL;
                return -1;
            }
            const char* name = op.target.c_str() + (slash - parent) + 1;
            if (slash == parent)
                slash[1] = '\0';
            else
                *slash = '\0';
            ChildFd pfd(ensure_in_root(root_fd, parent, true));
            if (!pfd) return -1;
            int rc = ::symlinkat(op.source.c_str(), pfd.get(), name);
            return rc < 0 && errno == EEXIST ? 0 : rc;
        }
        case MountOp::Kind::Mask: {
            err->what = "mask";
            ChildFd fd(open_in_root(root_fd, op.target.c_str(), O_PATH));
            if (!fd) return errno == ENOENT ? 0 : -1;
            struct stat st {};
            ::fstat(fd.get(), &st);
            fd_path(p, sizeof p, fd.get());
            return S_ISDIR(st.st_mode)
                       ? ::mount("tmpfs", p, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=0")
                       : ::mount("/dev/null", p, nullptr, MS_BIND, nullptr);
        }
        case MountOp::Kind::ReadOnly: {
            err->what = "make read-only";
            ChildFd fd(open_in_root(root_fd, op.target.c_str(), O_PATH));
            if (!fd) return errno == ENOENT ? 0 : -1;
            // A read-only copy of the tree at the target, stacked on it.
            return attach_copy(fd.get(), "", AT_EMPTY_PATH, true, MOUNT_ATTR_RDONLY, fd.get());
        }
    }
    errno = EINVAL;
    return -1;
}

void join_path(char* buf, size_t cap, const char* a, const char* b) {
    str_copy(buf, cap, a);
    str_append(buf, cap, "/");
    str_append(buf, cap, b);
}

// Mounts the root on stage/root from the plan (no user namespace). Returns 0 or -1 with errno.
int mount_root(const ChildConfig& cfg, StepError* err) {
    const RootPlan& root = cfg.plan->root;
    char buf[PATH_MAX];
    if (root.upper_on_stage) {
        join_path(buf, sizeof buf, cfg.stage_dir, "upper");
        if (::mkdir(buf, 0755) < 0) return -1;
        join_path(buf, sizeof buf, cfg.stage_dir, "work");
        if (::mkdir(buf, 0755) < 0) return -1;
    }
    err->path = root.spec.source.c_str();
    switch (root.spec.kind) {
        case store::MountSpec::Kind::Overlay: {
            err->what = "mount overlay root";
            err->path = root.spec.lowerdirs[0].c_str();
            if (::mount("overlay", cfg.root_dir, "overlay", root.flags, root.overlay_options.c_str()) < 0)
                return -1;
            break;
        }
        case store::MountSpec::Kind::Bind: {
            // The flags (nodev) hold for the whole tree: a bind would copy the source's own.
            err->what = "bind root";
            ChildFd target(::open(cfg.root_dir, O_PATH | O_DIRECTORY | O_CLOEXEC));
            if (!target) return -1;
            if (attach_copy(AT_FDCWD, root.spec.source.c_str(), 0, true, mount_attributes(root.flags),
                            target.get()) < 0)
                return -1;
            break;
        }
        case store::MountSpec::Kind::Block:
            err->what = "mount root device";
            if (::mount(root.spec.source.c_str(), cfg.root_dir, root.spec.fstype.c_str(), root.flags,
                        root.spec.options.empty() ? nullptr : root.spec.options.c_str()) < 0)
                return -1;
            break;
    }
    return 0;
}

// Builds the root under stage/root and pivots into it. Returns 0 or -1 with err/errno set.
int build_root(const ChildConfig& cfg, int assembled_fd, StepError* err) {
    const RootPlan& root = cfg.plan->root;
    err->what = "make mounts private";
    err->path = "/";
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) < 0) return -1;
    err->what = "mount stage tmpfs";
    err->path = cfg.stage_dir;
    if (::mount("tmpfs", cfg.stage_dir, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") < 0) return -1;
    err->what = "mkdir";
    err->path = cfg.root_dir;
    if (::mkdir(cfg.root_dir, 0755) < 0) return -1;
    if (assembled_fd >= 0) {
        // Built outside by the supervisor (user namespace, root-assembly.h): attach it.
        err->what = "attach the root file system";
        if (::syscall(SYS_move_mount, assembled_fd, "", AT_FDCWD, cfg.root_dir, MOVE_MOUNT_F_EMPTY_PATH) < 0)
            return -1;
    } else if (mount_root(cfg, err) < 0) {
        return -1;
    }
    {
        ChildFd root_fd(::open(cfg.root_dir, O_PATH | O_DIRECTORY | O_CLOEXEC));
        if (!root_fd) return -1;
        for (const MountOp& op : cfg.plan->ops)
            if (apply_op(root_fd.get(), op, err) < 0 && !op.optional) return -1;
        err->what = "pivot_root";
        err->path = cfg.root_dir;
        if (::fchdir(root_fd.get()) < 0) return -1;
    }
    if (::syscall(SYS_pivot_root, ".", ".") < 0) return -1;
    if (::umount2(".", MNT_DETACH) < 0) return -1;
    if (::chdir("/") < 0) return -1;
    if (root.read_only) {
        err->what = "make root read-only";
        err->path = "/";
        if (::mount(nullptr, "/", nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY | preserved_flags("/"), nullptr) <
            0)
            return -1;
    }
    return 0;
}

int loopback_up() {
    ChildFd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!s) return -1;
    struct ifreq ifr {};
    str_copy(ifr.ifr_name, sizeof ifr.ifr_name, "lo");
    int rc = ::ioctl(s.get(), SIOCGIFFLAGS, &ifr);
    if (rc == 0 && !(ifr.ifr_flags & IFF_UP)) {
        ifr.ifr_flags |= IFF_UP;
        rc = ::ioctl(s.get(), SIOCSIFFLAGS, &ifr);
    }
    return rc;
}

// Opens a pty on the container's devpts, makes it the controlling terminal and stdio, binds it on
// /dev/console. Returns the master fd.
int open_pty(StepError* err) {
    err->what = "open pty";
    err->path = "/dev/ptmx";
    int master = open_in_container("/dev/ptmx", O_RDWR | O_NOCTTY);
    if (master < 0) return -1;
    int unlock = 0;
    unsigned number = 0;
    if (::ioctl(master, TIOCSPTLCK, &unlock) < 0 || ::ioctl(master, TIOCGPTN, &number) < 0) return -1;
    int slave = ::ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY);
    if (slave < 0) return -1;
    char path[64];
    str_copy(path, sizeof path, "/dev/pts/");
    char digits[16];
    int n = 0;
    do {
        digits[n++] = static_cast<char>('0' + number % 10);
        number /= 10;
    } while (number);
    size_t len = std::strlen(path);
    while (n > 0) path[len++] = digits[--n];
    path[len] = '\0';
    err->what = "bind pty on /dev/console";
    err->path = path;
    if (::mount(path, "/dev/console", nullptr, MS_BIND, nullptr) < 0) return -1;
    err->what = "make pty the controlling terminal";
    if (setup_controlling_tty(slave) < 0) return -1;
    return master;
}

// The payload's secrets (MountOp::Secret) take their owner, now that it is known, and the secrets
// tmpfs becomes read-only: the payload can read them, nobody in the container can change them.
// Runs after pivot_root with the container's ids. Returns 0 or a positive errno with *what.
int finish_secrets(const MountPlan& plan, uid_t uid, gid_t gid, const char** what, const char** path) {
    const char* dir_path = nullptr;
    for (const MountOp& op : plan.ops) {
        if (op.kind != MountOp::Kind::Secret) continue;
        *what = "give the secret its owner";
        *path = op.source.c_str();
        ChildFd fd(open_in_container(op.source.c_str(), O_PATH | O_NOFOLLOW));
        if (!fd) return errno;
        if (::fchownat(fd.get(), "", op.owner_uid >= 0 ? static_cast<uid_t>(op.owner_uid) : uid,
                       op.owner_gid >= 0 ? static_cast<gid_t>(op.owner_gid) : gid, AT_EMPTY_PATH) < 0)
            return errno;
        dir_path = config::kSecretsDir.data();  // a literal: NUL-terminated
    }
    if (!dir_path) return 0;
    *what = "make the secrets read-only";
    *path = dir_path;
    ChildFd dir(open_in_container(dir_path, O_PATH | O_DIRECTORY));
    if (!dir) return errno;
    if (::fchownat(dir.get(), "", uid, gid, AT_EMPTY_PATH) < 0) return errno;
    if (set_tree_attributes(dir.get(), MOUNT_ATTR_RDONLY, false) < 0) return errno;
    return 0;
}

// Fills the "LISTEN_PID=" entry (a placeholder the supervisor sized) with the pid the payload
// sees (sd_listen_fds(3) checks it): 1, or its pid under init = true.
void set_listen_pid(char* const envp[]) {
    static constexpr char kKey[] = "LISTEN_PID=";
    for (size_t i = 0; envp[i]; ++i) {
        if (std::strncmp(envp[i], kKey, sizeof kKey - 1) != 0) continue;
        char* p = envp[i] + sizeof kKey - 1;
        size_t room = std::strlen(p);
        char digits[16];
        int n = 0;
        for (unsigned v = static_cast<unsigned>(::getpid()); n == 0 || v; v /= 10)
            digits[n++] = static_cast<char>('0' + v % 10);
        if (static_cast<size_t>(n) > room) return;
        while (n > 0) *p++ = digits[--n];
        *p = '\0';
        return;
    }
}

// Keeps the listening sockets (socket activation) as fds 3, 4, ... in order, the sync socket
// right after them (close-on-exec, *sync updated), and closes everything else: the payload sees
// 0-2 and its sockets only. Returns 0 or -1 with errno.
int keep_listen_fds(const int* fds, size_t n, int* sync) {
    // Above every fd we keep, so the copies cannot land on one we still need.
    int top = *sync > 2 + static_cast<int>(n) ? *sync : 2 + static_cast<int>(n);
    for (size_t i = 0; i < n; ++i)
        if (fds[i] > top) top = fds[i];
    int high[1024];
    if (n > sizeof high / sizeof high[0]) {
        errno = EMFILE;
        return -1;
    }
    for (size_t i = 0; i < n; ++i)
        if ((high[i] = ::fcntl(fds[i], F_DUPFD_CLOEXEC, top + 1)) < 0) return -1;
    int high_sync = ::fcntl(*sync, F_DUPFD_CLOEXEC, top + 1);
    if (high_sync < 0) return -1;
    // Everything below the copies goes (the originals included), then the copies move down.
    if (::syscall(SYS_close_range, 3u, static_cast<unsigned>(top), 0u) < 0) return -1;
    for (size_t i = 0; i < n; ++i)
        if (::dup2(high[i], 3 + static_cast<int>(i)) < 0) return -1;  // dup2: not close-on-exec
    *sync = ::fcntl(high_sync, F_DUPFD_CLOEXEC, 3 + static_cast<int>(n));
    if (*sync < 0) return -1;
    return ::syscall(SYS_close_range, static_cast<unsigned>(*sync) + 1, ~0u, 0u) < 0 ? -1 : 0;
}

[[noreturn]] void run_init(int sync_fd, char** argv, char** envp, const char* search_path, bool listen_pid) {
    sigset_t all;
    sigfillset(&all);
    ::sigprocmask(SIG_SETMASK, &all, nullptr);
    pid_t payload = ::fork();
    if (payload < 0) child_fail(sync_fd, errno, "fork payload", argv[0]);
    if (payload == 0) {
        if (listen_pid) set_listen_pid(envp);
        exec_payload(sync_fd, argv, envp, search_path);
    }
    ::close(sync_fd);
    // PID 1: forward every signal we can catch to the payload, reap everything, leave with the
    // payload's status.
    for (;;) {
        siginfo_t info{};
        int sig = ::sigwaitinfo(&all, &info);
        if (sig < 0) continue;
        if (sig == SIGCHLD) {
            int status = 0;
            pid_t w;
            while ((w = ::waitpid(-1, &status, WNOHANG)) > 0) {
                if (w != payload) continue;
                if (WIFEXITED(status)) ::_exit(WEXITSTATUS(status));
                ::_exit(128 + WTERMSIG(status));
            }
            continue;
        }
        ::kill(payload, sig);
    }
}

}  // namespace

int recv_message_header(int fd, MessageHeader* header, int* received_fd) {
    *received_fd = -1;
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } control;
    std::memset(&control, 0, sizeof control);
    struct iovec iov = {header, sizeof *header};
    struct msghdr msg {};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.buf;
    msg.msg_controllen = sizeof control.buf;
    ssize_t n;
    do n = ::recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
    while (n < 0 && errno == EINTR);
    if (n <= 0) return n == 0 ? 0 : -1;
    for (struct cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
            std::memcpy(received_fd, CMSG_DATA(c), sizeof(int));
    if (static_cast<size_t>(n) < sizeof *header &&
        !read_full(fd, reinterpret_cast<char*>(header) + n, sizeof *header - static_cast<size_t>(n)))
        return -1;
    return 1;
}

int send_message(int fd, MessageType type, const void* payload, uint32_t length, int pass_fd) {
    MessageHeader header{type, length};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } control;
    std::memset(&control, 0, sizeof control);
    struct iovec iov = {&header, sizeof header};
    struct msghdr msg {};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (pass_fd >= 0) {
        msg.msg_control = control.buf;
        msg.msg_controllen = sizeof control.buf;
        struct cmsghdr* c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        std::memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
    }
    ssize_t n;
    do n = ::sendmsg(fd, &msg, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n < 0) return -1;
    if (static_cast<size_t>(n) < sizeof header &&
        !write_full(fd, reinterpret_cast<char*>(&header) + n, sizeof header - static_cast<size_t>(n)))
        return -1;
    if (length && !write_full(fd, payload, length)) return -1;
    return 0;
}

[[noreturn]] void child_fail(int sync_fd, int code, const char* what, const char* path, const char* note) {
    ErrorPayload e;
    e.code = code;
    str_copy(e.message, sizeof e.message, what);
    if (path && *path) {
        str_append(e.message, sizeof e.message, " '");
        str_append(e.message, sizeof e.message, path);
        str_append(e.message, sizeof e.message, "'");
    }
    if (note && *note) {
        str_append(e.message, sizeof e.message, " (");
        str_append(e.message, sizeof e.message, note);
        str_append(e.message, sizeof e.message, ")");
    }
    send_message(sync_fd, MessageType::Error, &e, sizeof e);
    ::_exit(127);
}

int close_inherited_fds(int keep) {
    // close_range(2) rather than a loop to RLIMIT_NOFILE: one call, whatever the limit.
    if (keep > 3 && ::syscall(SYS_close_range, 3u, static_cast<unsigned>(keep) - 1, 0u) < 0) return -1;
    unsigned from = keep >= 3 ? static_cast<unsigned>(keep) + 1 : 3u;
    return ::syscall(SYS_close_range, from, ~0u, 0u) < 0 ? -1 : 0;
}

namespace {

// openat2() inside the process's root with magic links (/proc/self/fd/N, /proc/PID/cwd, exe,
// root) refused: after pivot_root or setns the root is the container's, and plain symlinks and
// ".." cannot leave it; only a magic link can, to whatever some process holds open.
int open_no_magic(const char* path, int flags) {
    if (path[0] != '/') return chase_raw(AT_FDCWD, path, flags, Resolve::NoMagicLinks);
    ChildFd root(::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!root) return -1;
    return chase_raw(root.get(), path, flags, Resolve::NoMagicLinks | Resolve::InRoot);
}

}  // namespace

int open_in_container(const char* path, int flags) { return open_no_magic(path, flags); }

namespace {

bool is_refusal(int e) { return e == ELOOP || e == EXDEV; }

// Whether `path`, or the deepest part of it that exists, is on procfs: "/proc/self/fd/4" whose fd
// is closed, "/proc/1/cwd/..." are refused like the magic links they are meant to go through,
// rather than answered "No such file or directory" (or skipped in a PATH search).
bool under_proc(const char* path) {
    char buf[PATH_MAX];
    str_copy(buf, sizeof buf, path);
    for (int depth = 0; depth < 256; ++depth) {
        ChildFd fd(open_no_magic(buf[0] ? buf : ".", O_PATH));
        if (fd) {
            struct statfs sfs {};
            return ::fstatfs(fd.get(), &sfs) == 0 && sfs.f_type == PROC_SUPER_MAGIC;
        }
        if (is_refusal(errno)) return true;
        if (errno != ENOENT && errno != ENOTDIR) return false;
        char* slash = std::strrchr(buf, '/');
        if (!slash) {
            buf[0] = '\0';
        } else if (slash == buf) {
            if (buf[1] == '\0') return false;
            buf[1] = '\0';
        } else {
            *slash = '\0';
        }
    }
    return false;
}

// Executes `path` (checked with open_no_magic first). Returns errno; *refused when the path went
// through a magic link.
//
// The file checked should be the file run. execveat(fd, "", AT_EMPTY_PATH) would guarantee that,
// but it names the process after the file's dentry ("busybox" for every applet, "dash" for sh)
// or, before Linux 6.14, after the fd number, which ps, pidof and killall show. So the program is
// run by name from its directory, held open: a regular file with AT_SYMLINK_NOFOLLOW (nothing
// left to swap), a symlink (busybox applets) by following it, where a process of the container
// racing `berth exec` could still swap the link between the check and the execve; the fds are
// closed and this process is non-dumpable, so a magic link could only lead to its own stdio or
// /proc/self/exe.
int exec_candidate(const char* path, char* const argv[], char* const envp[], bool* refused) {
    *refused = false;
    ChildFd fd(open_no_magic(path, O_PATH));
    if (!fd) {
        int e = errno;
        if (is_refusal(e)) {
            *refused = true;
            return e;
        }
        // A custom seccomp profile without openat2: the fds are closed and the cwd checked, so a
        // plain execve() can no longer reach a host file through a magic link of ours.
        if (e == ENOSYS || e == EPERM) {
            ::execve(path, argv, envp);
            return errno;
        }
        return e;
    }
    char dir[PATH_MAX];
    str_copy(dir, sizeof dir, path);
    char* slash = std::strrchr(dir, '/');
    const char* name = path;
    if (!slash) {
        str_copy(dir, sizeof dir, ".");
    } else {
        name = path + (slash - dir) + 1;
        if (slash == dir)
            slash[1] = '\0';
        else
            *slash = '\0';
    }
    int e = ENOENT;
    ChildFd dfd(*name ? open_no_magic(dir, O_PATH | O_DIRECTORY) : -1);
    if (dfd) {
        struct stat st {};
        int nofollow = ::fstatat(dfd.get(), name, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISLNK(st.st_mode)
                           ? AT_SYMLINK_NOFOLLOW
                           : 0;
        ::syscall(SYS_execveat, dfd.get(), name, argv, envp, nofollow);
        e = errno;
    }
    if (!dfd || e == ENOENT) {
        // A script: its interpreter would get /dev/fd/N/NAME, which close-on-exec makes unusable
        // (and $0 would name it). Run it by path, after checking the path still leads to the
        // file checked above.
        struct stat a {
        }, b{};
        ChildFd again(open_no_magic(path, O_PATH));
        if (!again && is_refusal(errno)) *refused = true;
        if (again && ::fstat(fd.get(), &a) == 0 && ::fstat(again.get(), &b) == 0 && a.st_dev == b.st_dev &&
            a.st_ino == b.st_ino) {
            ::execve(path, argv, envp);
            e = errno;
        }
    }
    return e;
}

}  // namespace

int exec_search_path(char* const argv[], char* const envp[], const char* search_path, ExecFailure* failure) {
    const char* name = argv[0];
    bool refused = false;
    failure->what = "execute";
    str_copy(failure->path, sizeof failure->path, name);
    if (std::strchr(name, '/')) {
        int e = exec_candidate(name, argv, envp, &refused);
        if (refused || ((e == ENOENT || e == ENOTDIR || e == EACCES) && under_proc(name))) {
            failure->what = "refuse to execute";
            failure->note = kMagicLinkNote;
            return refused ? e : ELOOP;
        }
        return e;
    }
    int last = ENOENT;
    const char* p = search_path && *search_path
                        ? search_path
                        : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    char candidate[PATH_MAX];
    while (*p) {
        const char* end = std::strchr(p, ':');
        size_t len = end ? static_cast<size_t>(end - p) : std::strlen(p);
        if (len == 0 || len + std::strlen(name) + 2 > sizeof candidate) {
            p += len + (end ? 1 : 0);
            continue;
        }
        std::memcpy(candidate, p, len);
        candidate[len] = '/';
        str_copy(candidate + len + 1, sizeof candidate - len - 1, name);
        int e = exec_candidate(candidate, argv, envp, &refused);
        if (!refused && (e == ENOENT || e == ENOTDIR || e == EACCES) && under_proc(candidate)) {
            refused = true;
            e = ELOOP;
        }
        if (refused) {
            // A PATH entry through /proc/self/fd/N and the like: refuse loudly, do not look on.
            failure->what = "refuse the PATH lookup of";
            failure->note = kMagicLinkNote;
            str_copy(failure->path, sizeof failure->path, candidate);
            return e;
        }
        if (e != ENOENT && e != ENOTDIR) last = e;
        p += len + (end ? 1 : 0);
    }
    return last;
}

int enter_workdir(const char* workdir, const char** what, const char** note) {
    *what = "change to working directory";
    *note = nullptr;
    ChildFd fd(open_no_magic(workdir, O_PATH | O_DIRECTORY));
    if (!fd) {
        int e = errno;
        if (is_refusal(e) || ((e == ENOENT || e == ENOTDIR) && under_proc(workdir))) {
            *what = "refuse working directory";
            *note = kMagicLinkNote;
            return is_refusal(e) ? e : ELOOP;
        }
        return e;
    }
    if (::fchdir(fd.get()) < 0) return errno;
    fd.reset();
    // The kernel's own answer: getcwd(2) names a directory the root cannot reach "(unreachable)...".
    char cwd[PATH_MAX];
    if (::syscall(SYS_getcwd, cwd, sizeof cwd) < 0) return errno;
    if (cwd[0] != '/') {
        *what = "refuse working directory";
        *note = "outside the container's root";
        return EXDEV;
    }
    return 0;
}

int setup_controlling_tty(int slave) {
    ::setsid();
    if (::ioctl(slave, TIOCSCTTY, 0) < 0) return -1;
    for (int target = 0; target < 3; ++target)
        if (::dup2(slave, target) < 0) return -1;
    if (slave > 2) ::close(slave);
    return 0;
}

int apply_identity_and_privileges(const LaunchHeader& h, const gid_t* groups, uint64_t bounding, int last_cap,
                                  bool no_new_privileges, const unsigned char* seccomp, size_t seccomp_size,
                                  const char** step) {
    int rc;
    if (no_new_privileges) {
        *step = "set no_new_privs";
        if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) return -errno;
    }
    *step = "drop bounding capabilities";
    if ((rc = drop_bounding_set(bounding, last_cap)) < 0) return rc;
    // Without no_new_privs the filter needs CAP_SYS_ADMIN, which we still hold here.
    if (seccomp && !no_new_privileges) {
        *step = "install seccomp filter";
        if ((rc = install_seccomp(seccomp, seccomp_size)) < 0) return rc;
    }
    *step = "keep capabilities across setuid";
    if (::prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0) return -errno;
    *step = "setgroups";
    if (::syscall(SYS_setgroups, h.ngroups, groups) < 0) return -errno;
    *step = "setgid";
    if (::syscall(SYS_setresgid, h.gid, h.gid, h.gid) < 0) return -errno;
    *step = "setuid";
    if (::syscall(SYS_setresuid, h.uid, h.uid, h.uid) < 0) return -errno;
    *step = "set capabilities";
    CapabilitySets sets;
    sets.bounding = bounding;
    sets.permitted = h.permitted;
    sets.effective = h.effective;
    if ((rc = apply_capability_sets(sets, last_cap)) < 0) return rc;
    ::prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);
    if (seccomp && no_new_privileges) {
        *step = "install seccomp filter";
        if ((rc = install_seccomp(seccomp, seccomp_size)) < 0) return rc;
    }
    return 0;
}

namespace {

int write_sysctl(const ChildSysctl& sysctl) {
    ChildFd f(::open(sysctl.path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY));
    if (!f || !write_full(f.get(), sysctl.value, std::strlen(sysctl.value))) return -1;
    return 0;
}

}  // namespace

void child_main(const ChildConfig& cfg) {
    int sync = cfg.sync_fd;
    ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    // Until execve() this process is the berth binary (and with init = true, PID 1 stays it):
    // no process of the container may open its /proc/PID/{exe,fd,mem,environ} or ptrace it
    // (CVE-2019-5736, CVE-2016-9962). execve() of the payload resets this.
    ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    MessageHeader header{};
    int received = -1;
    if (recv_message_header(sync, &header, &received) <= 0 || header.type != MessageType::Go)
        ::_exit(127);  // the parent is gone or gave up: nothing to report to
    ChildFd assembled_root(received);
    GoPayload go;
    if (header.length != sizeof go || !read_full(sync, &go, sizeof go)) ::_exit(127);
    if (!go.assembled_root) assembled_root.reset();

    if (cfg.user_namespace) {
        // Until now we were the unmapped host root; the maps are written, become the
        // namespace's root (its full capability set is ours already).
        if (::syscall(SYS_setresgid, 0, 0, 0) < 0 || ::syscall(SYS_setresuid, 0, 0, 0) < 0)
            child_fail(sync, errno, "become root of the user namespace", "");
    }
    for (size_t i = 0; i < cfg.nsysctls; ++i)
        if (write_sysctl(cfg.sysctls[i]) < 0) child_fail(sync, errno, "set sysctl", cfg.sysctls[i].path);
    StepError err;
    if (build_root(cfg, assembled_root.get(), &err) < 0) child_fail(sync, errno, err.what, err.path);
    assembled_root.reset();
    if (!cfg.tty && cfg.stdin_fd >= 0 && ::dup2(cfg.stdin_fd, 0) < 0)
        child_fail(sync, errno, "redirect stdin", "");
    // The root is built (the volume trees are attached): nothing but stdio and the sync socket
    // from here on. Every path below (the pty, the workdir, the program) is resolved on the
    // container's behalf, and the payload gets only what it is meant to.
    if ((cfg.nlisten ? keep_listen_fds(cfg.listen_fds, cfg.nlisten, &sync) : close_inherited_fds(sync)) < 0)
        child_fail(sync, errno, "close inherited file descriptors", "");
    if (::sethostname(cfg.hostname, std::strlen(cfg.hostname)) < 0)
        child_fail(sync, errno, "set hostname", cfg.hostname);
    if (cfg.loopback_up && loopback_up() < 0) child_fail(sync, errno, "bring up", "lo");

    MountedPayload mounted;
    ChildFd master;
    if (cfg.tty) {
        master = ChildFd(open_pty(&err));
        if (!master) child_fail(sync, errno, err.what, err.path);
        mounted.has_pty = 1;
    } else {
        ::setsid();
    }
    if (send_message(sync, MessageType::Mounted, &mounted, sizeof mounted, master.get()) < 0) ::_exit(127);
    master.reset();

    if (recv_message_header(sync, &header, &received) <= 0 || header.type != MessageType::Launch ||
        header.length > cfg.launch_capacity || header.length < sizeof(LaunchHeader))
        ::_exit(127);
    ChildFd(received).reset();  // Launch carries no fd: one sent anyway is not kept
    char* buf = cfg.launch_buffer;
    if (!read_full(sync, buf, header.length)) ::_exit(127);
    LaunchHeader launch;
    std::memcpy(&launch, buf, sizeof launch);
    const gid_t* groups = reinterpret_cast<const gid_t*>(buf + sizeof launch);
    char* strings = buf + sizeof launch + launch.ngroups * sizeof(gid_t);
    char* end = buf + header.length;
    size_t needed = launch.argc + launch.envc + 2;
    if (needed > cfg.pointer_capacity || launch.argc == 0) child_fail(sync, E2BIG, "prepare command", "");
    char** argv = cfg.pointer_buffer;
    char** envp = argv + launch.argc + 1;
    char* cursor = strings;
    auto next = [&]() -> char* {
        char* s = cursor;
        while (cursor < end && *cursor) ++cursor;
        if (cursor < end) ++cursor;
        return s;
    };
    for (uint32_t i = 0; i < launch.argc; ++i) argv[i] = next();
    argv[launch.argc] = nullptr;
    for (uint32_t i = 0; i < launch.envc; ++i) envp[i] = next();
    envp[launch.envc] = nullptr;
    const char* workdir = next();
    const char* search_path = next();

    for (size_t i = 0; i < cfg.nrlimits; ++i)
        if (::setrlimit(static_cast<__rlimit_resource>(cfg.rlimits[i].resource), &cfg.rlimits[i].limit) < 0)
            child_fail(sync, errno, "set resource limit", "");
    ::umask(cfg.umask_value);
    const char *what = "", *note = nullptr;
    if (int e = enter_workdir(workdir, &what, &note)) child_fail(sync, e, what, workdir, note);

    const char* secret_path = "";
    if (int e = finish_secrets(*cfg.plan, launch.uid, launch.gid, &what, &secret_path))
        child_fail(sync, e, what, secret_path);

    const char* step = "";
    int rc = apply_identity_and_privileges(launch, groups, cfg.bounding, cfg.last_cap, cfg.no_new_privileges,
                                           cfg.seccomp, cfg.seccomp_size, &step);
    if (rc < 0) child_fail(sync, -rc, step, "");
    // The credential change above (another uid, or the root of a user namespace) cleared the
    // parent-death signal armed at the start (commit_creds() does that): arm it again, so that a
    // supervisor killed with SIGKILL takes the payload, and as PID 1 of its namespace everything
    // in it, along. A supervisor that died before this line has closed its end of the channel.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    struct pollfd parent_gone = {sync, POLLRDHUP, 0};
    if (::poll(&parent_gone, 1, 0) > 0 && (parent_gone.revents & (POLLHUP | POLLRDHUP))) ::_exit(127);

    if (cfg.init) run_init(sync, argv, envp, search_path, cfg.nlisten > 0);
    if (cfg.nlisten) set_listen_pid(envp);
    exec_payload(sync, argv, envp, search_path);
}

void exec_payload(int sync_fd, char* const argv[], char* const envp[], const char* search_path) {
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ExecFailure failure;
    int code = exec_search_path(argv, envp, search_path, &failure);
    child_fail(sync_fd, code, failure.what, failure.path, failure.note);
}

}  // namespace berth::runtime
