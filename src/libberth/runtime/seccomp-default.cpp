// berth's default seccomp profile: the same allow-list, argument filters and capability-dependent
// rules as Docker's default profile (moby/profiles/seccomp/default.json). Everything not listed
// fails with EPERM. clone3 answers ENOSYS (unless CAP_SYS_ADMIN) so glibc falls back to clone(2),
// whose namespace flags can be filtered by argument, which clone3's struct cannot.
#include <sched.h>

#include "runtime/seccomp-profile.h"

namespace berth::runtime {

namespace {

SeccompRule allow(std::vector<std::string> names) {
    SeccompRule r;
    r.names = std::move(names);
    return r;
}

SeccompRule allow_with_caps(std::vector<std::string> names, std::vector<std::string> caps) {
    SeccompRule r = allow(std::move(names));
    r.includes_caps = std::move(caps);
    return r;
}

SeccompProfile build_default() {
    SeccompProfile p;
    p.default_action = SeccompAction::Errno;
    p.default_errno = 1;
    p.rules.push_back(allow({
        "accept",
        "accept4",
        "access",
        "adjtimex",
        "alarm",
        "bind",
        "brk",
        "cachestat",
        "capget",
        "capset",
        "chdir",
        "chmod",
        "chown",
        "chown32",
        "clock_adjtime",
        "clock_adjtime64",
        "clock_getres",
        "clock_getres_time64",
        "clock_gettime",
        "clock_gettime64",
        "clock_nanosleep",
        "clock_nanosleep_time64",
        "close",
        "close_range",
        "connect",
        "copy_file_range",
        "creat",
        "dup",
        "dup2",
        "dup3",
        "epoll_create",
        "epoll_create1",
        "epoll_ctl",
        "epoll_ctl_old",
        "epoll_pwait",
        "epoll_pwait2",
        "epoll_wait",
        "epoll_wait_old",
        "eventfd",
        "eventfd2",
        "execve",
        "execveat",
        "exit",
        "exit_group",
        "faccessat",
        "faccessat2",
        "fadvise64",
        "fadvise64_64",
        "fallocate",
        "fanotify_mark",
        "fchdir",
        "fchmod",
        "fchmodat",
        "fchmodat2",
        "fchown",
        "fchown32",
        "fchownat",
        "fcntl",
        "fcntl64",
        "fdatasync",
        "fgetxattr",
        "flistxattr",
        "flock",
        "fork",
        "fremovexattr",
        "fsetxattr",
        "fstat",
        "fstat64",
        "fstatat64",
        "fstatfs",
        "fstatfs64",
        "fsync",
        "ftruncate",
        "ftruncate64",
        "futex",
        "futex_requeue",
        "futex_time64",
        "futex_wait",
        "futex_waitv",
        "futex_wake",
        "futimesat",
        "getcpu",
        "getcwd",
        "getdents",
        "getdents64",
        "getegid",
        "getegid32",
        "geteuid",
        "geteuid32",
        "getgid",
        "getgid32",
        "getgroups",
        "getgroups32",
        "getitimer",
        "getpeername",
        "getpgid",
        "getpgrp",
        "getpid",
        "getppid",
        "getpriority",
        "getrandom",
        "getresgid",
        "getresgid32",
        "getresuid",
        "getresuid32",
        "getrlimit",
        "get_robust_list",
        "getrusage",
        "getsid",
        "getsockname",
        "getsockopt",
        "get_thread_area",
        "gettid",
        "gettimeofday",
        "getuid",
        "getuid32",
        "getxattr",
        "inotify_add_watch",
        "inotify_init",
        "inotify_init1",
        "inotify_rm_watch",
        "io_cancel",
        "io_destroy",
        "io_getevents",
        "io_pgetevents",
        "io_pgetevents_time64",
        "ioprio_get",
        "ioprio_set",
        "io_setup",
        "io_submit",
        "ipc",
        "kill",
        "landlock_add_rule",
        "landlock_create_ruleset",
        "landlock_restrict_self",
        "lchown",
        "lchown32",
        "lgetxattr",
        "link",
        "linkat",
        "listen",
        "listxattr",
        "llistxattr",
        "_llseek",
        "lremovexattr",
        "lseek",
        "lsetxattr",
        "lstat",
        "lstat64",
        "madvise",
        "map_shadow_stack",
        "membarrier",
        "memfd_create",
        "memfd_secret",
        "mincore",
        "mkdir",
        "mkdirat",
        "mknod",
        "mknodat",
        "mlock",
        "mlock2",
        "mlockall",
        "mmap",
        "mmap2",
        "mprotect",
        "mq_getsetattr",
        "mq_notify",
        "mq_open",
        "mq_timedreceive",
        "mq_timedreceive_time64",
        "mq_timedsend",
        "mq_timedsend_time64",
        "mq_unlink",
        "mremap",
        "msgctl",
        "msgget",
        "msgrcv",
        "msgsnd",
        "msync",
        "munlock",
        "munlockall",
        "munmap",
        "name_to_handle_at",
        "nanosleep",
        "newfstatat",
        "_newselect",
        "open",
        "openat",
        "openat2",
        "pause",
        "pidfd_open",
        "pidfd_send_signal",
        "pipe",
        "pipe2",
        "pkey_alloc",
        "pkey_free",
        "pkey_mprotect",
        "poll",
        "ppoll",
        "ppoll_time64",
        "prctl",
        "pread64",
        "preadv",
        "preadv2",
        "prlimit64",
        "process_mrelease",
        "pselect6",
        "pselect6_time64",
        "pwrite64",
        "pwritev",
        "pwritev2",
        "read",
        "readahead",
        "readlink",
        "readlinkat",
        "readv",
        "recv",
        "recvfrom",
        "recvmmsg",
        "recvmmsg_time64",
        "recvmsg",
        "remap_file_pages",
        "removexattr",
        "rename",
        "renameat",
        "renameat2",
        "restart_syscall",
        "rmdir",
        "rseq",
        "rt_sigaction",
        "rt_sigpending",
        "rt_sigprocmask",
        "rt_sigqueueinfo",
        "rt_sigreturn",
        "rt_sigsuspend",
        "rt_sigtimedwait",
        "rt_sigtimedwait_time64",
        "rt_tgsigqueueinfo",
        "sched_getaffinity",
        "sched_getattr",
        "sched_getparam",
        "sched_get_priority_max",
        "sched_get_priority_min",
        "sched_getscheduler",
        "sched_rr_get_interval",
        "sched_rr_get_interval_time64",
        "sched_setaffinity",
        "sched_setattr",
        "sched_setparam",
        "sched_setscheduler",
        "sched_yield",
        "seccomp",
        "select",
        "semctl",
        "semget",
        "semop",
        "semtimedop",
        "semtimedop_time64",
        "send",
        "sendfile",
        "sendfile64",
        "sendmmsg",
        "sendmsg",
        "sendto",
        "setfsgid",
        "setfsgid32",
        "setfsuid",
        "setfsuid32",
        "setgid",
        "setgid32",
        "setgroups",
        "setgroups32",
        "setitimer",
        "setpgid",
        "setpriority",
        "setregid",
        "setregid32",
        "setresgid",
        "setresgid32",
        "setresuid",
        "setresuid32",
        "setreuid",
        "setreuid32",
        "setrlimit",
        "set_robust_list",
        "setsid",
        "setsockopt",
        "set_thread_area",
        "set_tid_address",
        "setuid",
        "setuid32",
        "setxattr",
        "shmat",
        "shmctl",
        "shmdt",
        "shmget",
        "shutdown",
        "sigaltstack",
        "signalfd",
        "signalfd4",
        "sigprocmask",
        "sigreturn",
        "socketcall",
        "socketpair",
        "splice",
        "stat",
        "stat64",
        "statfs",
        "statfs64",
        "statx",
        "symlink",
        "symlinkat",
        "sync",
        "sync_file_range",
        "syncfs",
        "sysinfo",
        "tee",
        "tgkill",
        "time",
        "timer_create",
        "timer_delete",
        "timer_getoverrun",
        "timer_gettime",
        "timer_gettime64",
        "timer_settime",
        "timer_settime64",
        "timerfd_create",
        "timerfd_gettime",
        "timerfd_gettime64",
        "timerfd_settime",
        "timerfd_settime64",
        "times",
        "tkill",
        "truncate",
        "truncate64",
        "ugetrlimit",
        "umask",
        "uname",
        "unlink",
        "unlinkat",
        "utime",
        "utimensat",
        "utimensat_time64",
        "utimes",
        "vfork",
        "vmsplice",
        "wait4",
        "waitid",
        "waitpid",
        "write",
        "writev",
    }));
    // ioctl(2), except TIOCSTI (0x5412): pushing bytes into a terminal's input queue types
    // commands into the shell of whoever owns that terminal (the caller of `berth exec`, of `berth
    // run -t`) on kernels with dev.tty.legacy_tiocsti = 1. The kernel reads the request as an
    // unsigned int, so only its low 32 bits count: a plain "!= 0x5412" on the 64-bit argument
    // would let 0x100005412 through. libseccomp has no masked not-equal and an unconditional
    // allow would override a conditional deny, so the allow is spelled as "some bit of the low
    // 32 differs from TIOCSTI's": one masked compare per bit, any one of which admits the call.
    {
        constexpr uint64_t kTiocsti = 0x5412;
        for (unsigned bit = 0; bit < 32; ++bit) {
            SeccompRule r = allow({"ioctl"});
            const uint64_t mask = 1ULL << bit;
            r.args.push_back({1, mask, ~kTiocsti & mask, SeccompOp::MaskedEqual});
            p.rules.push_back(r);
        }
    }
    // socket(2), except AF_VSOCK (40): host communication channel.
    {
        SeccompRule r = allow({"socket"});
        r.args.push_back({0, 40, 0, SeccompOp::NotEqual});
        p.rules.push_back(r);
    }
    // personality(2): only the harmless personas.
    for (uint64_t persona : {0x0ULL, 0x0008ULL, 0x20000ULL, 0x20008ULL, 0xffffffffULL}) {
        SeccompRule r = allow({"personality"});
        r.args.push_back({0, persona, 0, SeccompOp::Equal});
        p.rules.push_back(r);
    }
    // Ptrace-family: safe on kernels >= 4.8 (seccomp can no longer be bypassed with ptrace).
    {
        SeccompRule r = allow({"process_vm_readv", "process_vm_writev", "ptrace"});
        r.min_kernel = "4.8";
        p.rules.push_back(r);
    }
    // x86-64 specifics.
    p.rules.push_back(allow({"arch_prctl", "modify_ldt"}));
    // Capability-dependent rules.
    p.rules.push_back(allow_with_caps({"open_by_handle_at"}, {"CAP_DAC_READ_SEARCH"}));
    p.rules.push_back(allow_with_caps(
        {"bpf",       "clone",           "clone3",         "fanotify_init", "fsconfig",      "fsmount",
         "fsopen",    "fspick",          "lookup_dcookie", "mount",         "mount_setattr", "move_mount",
         "open_tree", "perf_event_open", "quotactl",       "quotactl_fd",   "setdomainname", "sethostname",
         "setns",     "syslog",          "umount",         "umount2",       "unshare"},
        {"CAP_SYS_ADMIN"}));
    // Without CAP_SYS_ADMIN: clone(2) without namespace flags; clone3 -> ENOSYS.
    {
        SeccompRule r = allow({"clone"});
        const uint64_t ns_flags = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID |
                                  CLONE_NEWNET | CLONE_NEWCGROUP;
        r.args.push_back({0, ns_flags, 0, SeccompOp::MaskedEqual});
        r.excludes_caps = {"CAP_SYS_ADMIN"};
        p.rules.push_back(r);
    }
    {
        SeccompRule r;
        r.names = {"clone3"};
        r.action = SeccompAction::Errno;
        r.errno_ret = 38;  // ENOSYS
        r.excludes_caps = {"CAP_SYS_ADMIN"};
        p.rules.push_back(r);
    }
    p.rules.push_back(allow_with_caps({"reboot"}, {"CAP_SYS_BOOT"}));
    p.rules.push_back(allow_with_caps({"chroot"}, {"CAP_SYS_CHROOT"}));
    p.rules.push_back(allow_with_caps({"delete_module", "init_module", "finit_module"}, {"CAP_SYS_MODULE"}));
    p.rules.push_back(allow_with_caps({"acct"}, {"CAP_SYS_PACCT"}));
    p.rules.push_back(allow_with_caps(
        {"kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev", "ptrace"},
        {"CAP_SYS_PTRACE"}));
    p.rules.push_back(allow_with_caps({"iopl", "ioperm"}, {"CAP_SYS_RAWIO"}));
    p.rules.push_back(
        allow_with_caps({"settimeofday", "stime", "clock_settime", "clock_settime64"}, {"CAP_SYS_TIME"}));
    p.rules.push_back(allow_with_caps({"vhangup"}, {"CAP_SYS_TTY_CONFIG"}));
    p.rules.push_back(allow_with_caps({"get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"},
                                      {"CAP_SYS_NICE"}));
    p.rules.push_back(allow_with_caps({"syslog"}, {"CAP_SYSLOG"}));
    p.rules.push_back(allow_with_caps({"bpf"}, {"CAP_BPF"}));
    p.rules.push_back(allow_with_caps({"perf_event_open"}, {"CAP_PERFMON"}));
    // 32-bit programs (i386 on x86_64) run under the same rules, as in Docker; x32 does not.
    p.abis = SeccompAbis::NativeAndCompat;
    return p;
}

}  // namespace

const SeccompProfile& default_seccomp_profile() {
    static const SeccompProfile profile = build_default();
    return profile;
}

}  // namespace berth::runtime
