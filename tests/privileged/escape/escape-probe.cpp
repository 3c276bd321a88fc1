// berth-escape-probe: a small static program that runs INSIDE a container started by `berth run`
// with the default security settings and tries, one after the other, every way out of the
// container that issue #7 lists. It prints exactly one line per attempt:
//
//     PASS <name>: <why it was denied>
//     FAIL <name>: <what succeeded>
//
// and a final "DONE <n> attempts, <m> failed". The gtest (escape-test.cpp) runs it and asserts
// that every attempt was denied.
//
// Rules for this program: it must never do damage when an attempt *succeeds* (the host is shared
// with other developers). So every probe stops at the first step that proves the capability: it
// opens for writing but writes nothing (or writes back the value it just read), passes invalid
// arguments that the kernel only validates *after* its permission check (so EINVAL/EBADF mean
// "the permission check passed", i.e. FAIL), and closes whatever it obtained.
//
// It is linked statically (the container's rootfs is busybox) and uses only libc.
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/kexec.h>
#include <linux/keyctl.h>
#include <linux/magic.h>
#include <linux/perf_event.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <string>
#include <vector>

namespace {

int g_attempts = 0;
int g_failed = 0;

void report(bool denied, const char* name, const char* fmt, ...) __attribute__((format(printf, 3, 4)));
void report(bool denied, const char* name, const char* fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    g_attempts++;
    if (!denied) g_failed++;
    printf("%s %s: %s\n", denied ? "PASS" : "FAIL", name, buf);
    fflush(stdout);
}

// errno values that mean "the kernel or a security layer refused": permission, seccomp's
// ENOSYS/EPERM, read-only mounts, absent objects.
bool is_denial(int e) {
    return e == EPERM || e == EACCES || e == ENOSYS || e == EROFS || e == ENOENT || e == ESRCH ||
           e == ENXIO || e == ENODEV || e == ENOTDIR;
}

std::string read_small(const char* path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return {};
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

bool is_procfs_fd(int fd) {
    struct statfs sfs {};
    return fstatfs(fd, &sfs) == 0 && sfs.f_type == PROC_SUPER_MAGIC;
}

// Options from the command line (all optional).
struct Options {
    std::vector<pid_t> outside_pids;      // host pids (supervisor, test process)
    std::vector<std::string> abstract;    // abstract unix socket names on the host
    std::vector<std::string> unix_paths;  // path sockets on the host (system bus, berthd)
    std::vector<dev_t> devices;           // host block devices (major:minor) with a marker
    std::string host_cgroup;              // the supervisor's cgroup path (relative to cgroup2 root)
};

// ---- CVE-2019-5736 class: the runtime binary must not be writable through /proc/*/exe --------
void probe_proc_exe(const Options& o) {
    int fd = open("/proc/self/exe", O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
        close(fd);
        report(false, "proc-self-exe-write", "opened /proc/self/exe for writing");
    } else {
        report(true, "proc-self-exe-write", "open(O_WRONLY): %s", strerror(errno));
    }

    // Every process visible inside (including pid 1, which is berth's own init when init = true)
    // and every outside pid we were told about.
    std::vector<pid_t> pids(o.outside_pids);
    if (DIR* d = opendir("/proc")) {
        while (dirent* e = readdir(d)) {
            char* end;
            long v = strtol(e->d_name, &end, 10);
            if (*end == 0 && v > 0 && v != getpid()) pids.push_back(static_cast<pid_t>(v));
        }
        closedir(d);
    }
    std::string opened;
    for (pid_t p : pids) {
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/exe", p);
        int w = open(path, O_WRONLY | O_CLOEXEC);
        if (w >= 0) {
            close(w);
            opened += std::string(path) + " ";
            continue;
        }
        // The runc exploit: keep an O_PATH handle and reopen it for writing through
        // /proc/self/fd once the binary is no longer busy (ETXTBSY). Try it right away.
        int h = open(path, O_PATH | O_CLOEXEC);
        if (h >= 0) {
            char via[64];
            snprintf(via, sizeof via, "/proc/self/fd/%d", h);
            int w2 = open(via, O_WRONLY | O_CLOEXEC);
            if (w2 >= 0) {
                close(w2);
                opened += std::string(path) + "(via O_PATH) ";
            }
            close(h);
        }
    }
    if (opened.empty())
        report(true, "proc-pid-exe-write", "no /proc/PID/exe of %zu processes writable", pids.size());
    else
        report(false, "proc-pid-exe-write", "writable: %s", opened.c_str());
}

// ---- /proc/sys, /proc/sysrq-trigger, /sys -------------------------------------------------------
// Writes back the value just read, so success changes nothing but proves write access.
void probe_write_same(const char* name, const char* path) {
    std::string cur = read_small(path);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
        report(is_denial(errno), name, "open %s: %s", path, strerror(errno));
        return;
    }
    ssize_t n = cur.empty() ? 0 : write(fd, cur.data(), cur.size());
    int e = errno;
    close(fd);
    if (cur.empty())
        report(false, name, "%s opened for writing (nothing to write back)", path);
    else if (n < 0)
        report(is_denial(e), name, "write %s: %s", path, strerror(e));
    else
        report(false, name, "wrote %s", path);
}

void probe_sysrq() {
    // Never write to it: a write would trigger a sysrq action on the host. Open alone proves it:
    // the kernel's write handler checks no capability, so a writable real procfs file is an escape.
    // A masked file (bind-mounted /dev/null or a read-only mount) is fine.
    int fd = open("/proc/sysrq-trigger", O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
        report(is_denial(errno), "proc-sysrq-trigger", "open: %s", strerror(errno));
        return;
    }
    bool real = is_procfs_fd(fd);
    close(fd);
    report(!real, "proc-sysrq-trigger", "%s",
           real ? "the real /proc/sysrq-trigger is writable" : "opened, but it is masked (not procfs)");
}

void probe_sys() {
    // /sys must be read-only: no file under it may be opened for writing, and no directory made.
    const char* files[] = {"/sys/kernel/uevent_helper", "/sys/kernel/mm/ksm/run", "/sys/kernel/profiling",
                           "/sys/power/state", "/sys/module/printk/parameters/time"};
    std::string opened;
    int tried = 0;
    for (const char* f : files) {
        if (access(f, F_OK) != 0) continue;
        tried++;
        int fd = open(f, O_WRONLY | O_CLOEXEC);
        if (fd >= 0) {
            close(fd);
            opened += std::string(f) + " ";
        }
    }
    bool mk = mkdir("/sys/kernel/berth-escape-probe", 0700) == 0;
    if (mk) rmdir("/sys/kernel/berth-escape-probe");
    struct statfs sfs {};
    bool ro = statfs("/sys", &sfs) == 0 && (sfs.f_flags & ST_RDONLY);
    if (!opened.empty() || mk)
        report(false, "sys-write", "writable under /sys: %s%s", opened.c_str(), mk ? "(mkdir)" : "");
    else
        report(true, "sys-write", "%d files not writable, /sys %s", tried,
               ro ? "read-only" : "not mounted read-only");
}

// ---- cgroups --------------------------------------------------------------------------------------
std::string own_cgroup2_path() {
    std::string s = read_small("/proc/self/cgroup");
    size_t p = s.find("0::");
    if (p == std::string::npos) return {};
    size_t e = s.find('\n', p);
    return s.substr(p + 3, e == std::string::npos ? std::string::npos : e - p - 3);
}

void probe_cgroup(const Options& o) {
    // 1. The release_agent of any v1 hierarchy (CVE-2022-0492): must not be writable or mountable.
    std::string found;
    std::string mi = read_small("/proc/self/mountinfo");
    std::vector<std::string> cg_mounts;
    for (size_t pos = 0; pos < mi.size();) {
        size_t e = mi.find('\n', pos);
        std::string line = mi.substr(pos, e == std::string::npos ? std::string::npos : e - pos);
        pos = e == std::string::npos ? mi.size() : e + 1;
        if (line.find(" - cgroup") == std::string::npos) continue;
        // field 5 is the mount point
        size_t f = 0;
        for (int i = 0; i < 4 && f != std::string::npos; i++) f = line.find(' ', f + 1);
        if (f == std::string::npos) continue;
        size_t f2 = line.find(' ', f + 1);
        cg_mounts.push_back(line.substr(f + 1, f2 - f - 1));
    }
    for (const auto& m : cg_mounts) {
        std::string ra = m + "/release_agent";
        int fd = open(ra.c_str(), O_WRONLY | O_CLOEXEC);
        if (fd >= 0) {
            close(fd);
            found += ra + " ";
        }
    }
    char tmpl[] = "/tmp/.berth-probe-cg-XXXXXX";
    bool mounted = false;
    if (mkdtemp(tmpl)) {
        if (mount("cgroup", tmpl, "cgroup", 0, "none,name=berthprobe") == 0) {
            mounted = true;
            umount2(tmpl, MNT_DETACH);
        }
        rmdir(tmpl);
    }
    if (!found.empty() || mounted)
        report(false, "cgroup-release-agent", "%s%s", found.c_str(), mounted ? "mounted a v1 hierarchy" : "");
    else
        report(true, "cgroup-release-agent",
               "no writable release_agent in %zu cgroup mounts, v1 mount refused", cg_mounts.size());

    // 2. Moving ourselves (or writing anything) above the delegated payload cgroup. Inside a cgroup
    //    namespace our own cgroup is "/"; ancestors show up as "/.." paths.
    std::string before = own_cgroup2_path();
    std::string wrote;
    std::vector<std::string> targets;
    for (const auto& m : cg_mounts) {
        targets.push_back(m + "/../cgroup.procs");
        if (!o.host_cgroup.empty()) {
            targets.push_back(m + o.host_cgroup + "/cgroup.procs");
            targets.push_back(m + o.host_cgroup + "/memory.max");
            targets.push_back(m + o.host_cgroup + "/pids.max");
        }
    }
    targets.push_back("/sys/fs/cgroup/unified/cgroup.procs");
    for (const auto& t : targets) {
        int fd = open(t.c_str(), O_WRONLY | O_CLOEXEC);
        if (fd < 0) continue;
        // Only files that are not inside our own cgroup count; writing our pid to our own
        // cgroup.procs is a delegated, harmless no-op.
        char pid[32];
        int n = snprintf(pid, sizeof pid, "%d\n", getpid());
        bool is_procs = t.size() >= 12 && t.compare(t.size() - 12, 12, "cgroup.procs") == 0;
        if (is_procs && write(fd, pid, static_cast<size_t>(n)) == n) {
            std::string now = own_cgroup2_path();
            if (now.rfind("/..", 0) == 0 ||
                (now != before && before.rfind("/..", 0) != 0 && now.size() < before.size()))
                wrote += t + "(moved to " + now + ") ";
        } else if (!is_procs) {
            wrote += t + "(opened) ";
        }
        close(fd);
    }
    std::string after = own_cgroup2_path();
    bool outside = after.rfind("/..", 0) == 0;
    if (!wrote.empty() || outside)
        report(false, "cgroup-outside-write", "%s cgroup now '%s'", wrote.c_str(), after.c_str());
    else
        report(true, "cgroup-outside-write", "stayed in '%s' (was '%s')", after.c_str(), before.c_str());
}

// ---- mount, namespaces --------------------------------------------------------------------------
void probe_mount() {
    std::string ok;
    char tmpl[] = "/tmp/.berth-probe-mnt-XXXXXX";
    const char* dir = mkdtemp(tmpl) ? tmpl : "/mnt";
    if (mount("tmpfs", dir, "tmpfs", 0, "size=64k") == 0) {
        ok += "tmpfs ";
        umount2(dir, MNT_DETACH);
    }
    if (mount("proc", dir, "proc", 0, nullptr) == 0) {
        ok += "proc ";
        umount2(dir, MNT_DETACH);
    }
    if (mount("/", dir, nullptr, MS_BIND, nullptr) == 0) {
        ok += "bind ";
        umount2(dir, MNT_DETACH);
    }
    // Remounting /proc/sys read-write would undo the read-only /proc/sys.
    if (mount(nullptr, "/proc/sys", nullptr, MS_REMOUNT | MS_BIND, nullptr) == 0) ok += "remount-/proc/sys ";
    if (syscall(SYS_fsopen, "tmpfs", 0) >= 0) ok += "fsopen ";
    if (syscall(SYS_open_tree, AT_FDCWD, "/", 0x1 /* OPEN_TREE_CLONE */) >= 0) ok += "open_tree ";
    if (umount2("/proc/sysrq-trigger", MNT_DETACH) == 0) ok += "umount-mask ";
    if (dir == tmpl) rmdir(tmpl);
    if (ok.empty())
        report(true, "mount", "tmpfs, proc, bind, remount, fsopen, open_tree, umount all refused");
    else
        report(false, "mount", "succeeded: %s", ok.c_str());
}

void probe_userns() {
    // A new user namespace gives a full capability set inside it: the default profile must refuse.
    pid_t child = fork();
    if (child == 0) {
        if (unshare(CLONE_NEWUSER) == 0) _exit(10);
        _exit(errno == EPERM || errno == ENOSYS || errno == EINVAL || errno == ENOSPC ? 0 : 11);
    }
    int st = 0;
    waitpid(child, &st, 0);
    bool unshare_ok = WIFEXITED(st) && WEXITSTATUS(st) == 10;

    // clone() with CLONE_NEWUSER directly (not through unshare).
    long r = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, nullptr, nullptr, nullptr, nullptr);
    if (r == 0) _exit(0);
    bool clone_ok = r > 0;
    if (r > 0) waitpid(static_cast<pid_t>(r), nullptr, 0);
    int clone_errno = errno;

    // Other namespaces need CAP_SYS_ADMIN, which the default set does not hold.
    pid_t c2 = fork();
    if (c2 == 0) _exit(unshare(CLONE_NEWNS) == 0 ? 10 : 0);
    waitpid(c2, &st, 0);
    bool mntns_ok = WIFEXITED(st) && WEXITSTATUS(st) == 10;

    bool denied = !unshare_ok && !clone_ok && !mntns_ok;
    report(denied, "userns-regain-caps", "unshare(NEWUSER) %s, clone(NEWUSER) %s (%s), unshare(NEWNS) %s",
           unshare_ok ? "SUCCEEDED" : "refused", clone_ok ? "SUCCEEDED" : "refused", strerror(clone_errno),
           mntns_ok ? "SUCCEEDED" : "refused");
}

// ---- kernel: modules, kexec ----------------------------------------------------------------------
// The kernel checks CAP_SYS_MODULE / CAP_SYS_BOOT before it looks at the arguments, so bogus
// arguments make a success harmless and still distinguish "denied" (EPERM/ENOSYS) from "allowed"
// (EBADF/EFAULT/EINVAL).
void probe_syscall_denied(const char* name, long r) {
    int e = errno;
    if (r >= 0) {
        report(false, name, "returned %ld", r);
    } else {
        report(e == EPERM || e == ENOSYS || e == EACCES, name, "%s", strerror(e));
    }
}

void probe_modules_kexec() {
    probe_syscall_denied("init_module", syscall(SYS_init_module, nullptr, 0UL, ""));
    probe_syscall_denied("finit_module", syscall(SYS_finit_module, -1, "", 0));
    probe_syscall_denied("delete_module", syscall(SYS_delete_module, "berth_no_such_module", O_NONBLOCK));
    probe_syscall_denied("kexec_load", syscall(SYS_kexec_load, 0UL, 0UL, nullptr, 0xffff0000UL));
    probe_syscall_denied("kexec_file_load", syscall(SYS_kexec_file_load, -1, -1, 0UL, "", 0xffff0000UL));
    probe_syscall_denied("reboot", syscall(SYS_reboot, 0, 0, 0, nullptr));  // bad magic -> EINVAL if allowed
}

// ---- processes outside ---------------------------------------------------------------------------
void probe_ptrace(const Options& o) {
    std::string reached;
    for (pid_t p : o.outside_pids) {
        if (ptrace(PTRACE_ATTACH, p, nullptr, nullptr) == 0) {
            ptrace(PTRACE_DETACH, p, nullptr, nullptr);
            reached += "ptrace(" + std::to_string(p) + ") ";
        }
        if (kill(p, 0) == 0) reached += "kill(" + std::to_string(p) + ") ";
        char byte;
        struct iovec local {
            &byte, 1
        }, remote{reinterpret_cast<void*>(0x400000), 1};
        if (process_vm_readv(p, &local, 1, &remote, 1, 0) >= 0 || errno == EFAULT)
            reached += "process_vm_readv(" + std::to_string(p) + ") ";
        if (syscall(SYS_pidfd_open, p, 0) >= 0) reached += "pidfd_open(" + std::to_string(p) + ") ";
    }
    if (reached.empty())
        report(true, "ptrace-outside", "%zu outside pids unreachable", o.outside_pids.size());
    else
        report(false, "ptrace-outside", "reached: %s", reached.c_str());
}

// ---- devices ---------------------------------------------------------------------------------------
void probe_devices(const Options& o) {
    std::string opened;
    const char* nodes[] = {"/dev/mem",    "/dev/kmem",          "/dev/port",
                           "/dev/sda",    "/dev/vda",           "/dev/nvme0n1",
                           "/dev/loop0",  "/dev/loop-control",  "/dev/mapper/control",
                           "/dev/kmsg",   "/dev/btrfs-control", "/dev/fuse",
                           "/dev/net/tun"};
    for (const char* n : nodes) {
        int fd = open(n, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
        if (fd >= 0) {
            close(fd);
            opened += std::string(n) + " ";
        }
    }
    // mknod a host block device (the test passes a loop device holding a marker) and read it.
    std::vector<dev_t> devs(o.devices);
    devs.push_back(makedev(1, 1));  // /dev/mem
    devs.push_back(makedev(7, 0));  // loop0
    devs.push_back(makedev(8, 0));  // sda
    struct stat root {};
    if (stat("/", &root) == 0 && major(root.st_dev) != 0) devs.push_back(root.st_dev);
    int made = 0;
    for (dev_t d : devs) {
        for (const char* dir : {"/tmp", "/dev/shm", "/run", "/dev", "/var/tmp", "/"}) {
            std::string p = std::string(dir) + "/.berth-probe-dev";
            unlink(p.c_str());
            mode_t type = major(d) == 1 ? S_IFCHR : S_IFBLK;
            if (mknod(p.c_str(), type | 0600, d) != 0) continue;
            made++;
            int fd = open(p.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
            if (fd >= 0) {
                char buf[16];
                if (read(fd, buf, sizeof buf) > 0)
                    opened +=
                        "mknod+read(" + std::to_string(major(d)) + ":" + std::to_string(minor(d)) + ") ";
                close(fd);
            }
            unlink(p.c_str());
            break;
        }
    }
    if (opened.empty())
        report(true, "host-devices", "no host device opened (%d nodes made, none readable)", made);
    else
        report(false, "host-devices", "opened: %s", opened.c_str());
}

// ---- keyctl, bpf, perf_event_open ----------------------------------------------------------------
void probe_keyctl() {
    long a = syscall(SYS_add_key, "user", "berth-probe", "x", 1UL, KEY_SPEC_PROCESS_KEYRING);
    int ea = errno;
    long k = syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, nullptr);
    int ek = errno;
    long rq = syscall(SYS_request_key, "user", "berth-probe", nullptr, 0L);
    int er = errno;
    bool denied = a < 0 && k < 0 && (ea == EPERM || ea == ENOSYS) && (ek == EPERM || ek == ENOSYS) &&
                  (rq < 0 && (er == EPERM || er == ENOSYS));
    report(denied, "keyctl", "add_key: %s, keyctl(JOIN_SESSION): %s, request_key: %s",
           a < 0 ? strerror(ea) : "SUCCEEDED", k < 0 ? strerror(ek) : "SUCCEEDED",
           rq < 0 ? strerror(er) : "SUCCEEDED");
}

void probe_bpf() {
    union bpf_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.map_type = BPF_MAP_TYPE_ARRAY;
    attr.key_size = 4;
    attr.value_size = 4;
    attr.max_entries = 1;
    long fd = syscall(SYS_bpf, BPF_MAP_CREATE, &attr, sizeof attr);
    int e = errno;
    if (fd >= 0) close(static_cast<int>(fd));
    if (fd >= 0)
        report(false, "bpf", "BPF_MAP_CREATE succeeded");
    else
        report(e == EPERM || e == ENOSYS, "bpf", "BPF_MAP_CREATE: %s", strerror(e));
}

void probe_perf() {
    struct perf_event_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.type = PERF_TYPE_SOFTWARE;
    attr.size = sizeof attr;
    attr.config = PERF_COUNT_SW_TASK_CLOCK;
    attr.disabled = 1;
    attr.exclude_kernel = 1;
    attr.exclude_hv = 1;
    long fd = syscall(SYS_perf_event_open, &attr, 0, -1, -1, 0UL);
    int e = errno;
    if (fd >= 0) close(static_cast<int>(fd));
    if (fd >= 0)
        report(false, "perf_event_open", "opened a perf event on itself");
    else
        report(e == EPERM || e == ENOSYS || e == EACCES, "perf_event_open", "%s", strerror(e));
}

// ---- host sockets ---------------------------------------------------------------------------------
bool connect_unix(const std::string& name, bool abstract, int* err) {
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0) {
        *err = errno;
        return false;
    }
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    socklen_t len;
    if (abstract) {
        sa.sun_path[0] = 0;
        size_t n = std::min(name.size(), sizeof sa.sun_path - 1);
        memcpy(sa.sun_path + 1, name.data(), n);
        len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + n);
    } else {
        snprintf(sa.sun_path, sizeof sa.sun_path, "%s", name.c_str());
        len = sizeof sa;
    }
    bool ok = connect(s, reinterpret_cast<sockaddr*>(&sa), len) == 0;
    *err = errno;
    close(s);
    return ok;
}

void probe_sockets(const Options& o) {
    std::string reached;
    std::vector<std::string> abstract(o.abstract);
    abstract.push_back("/org/freedesktop/systemd1/private");
    abstract.push_back("/tmp/.X11-unix/X0");
    int err = 0;
    for (const auto& a : abstract)
        if (connect_unix(a, true, &err)) reached += "@" + a + " ";
    std::vector<std::string> paths(o.unix_paths);
    paths.push_back("/run/dbus/system_bus_socket");
    paths.push_back("/var/run/dbus/system_bus_socket");
    paths.push_back("/run/systemd/private");
    paths.push_back("/run/systemd/notify");
    paths.push_back("/run/systemd/journal/stdout");
    for (const auto& p : paths)
        if (connect_unix(p, false, &err)) reached += p + " ";
    if (reached.empty())
        report(true, "host-sockets", "%zu abstract and %zu path sockets unreachable", abstract.size(),
               paths.size());
    else
        report(false, "host-sockets", "connected: %s", reached.c_str());
}

// ---- security posture (the defaults that make the above hold) -------------------------------------
void probe_posture() {
    std::string st = read_small("/proc/self/status");
    auto field = [&](const char* k) {
        size_t p = st.find(k);
        if (p == std::string::npos) return std::string();
        size_t e = st.find('\n', p);
        std::string v = st.substr(p + strlen(k), e - p - strlen(k));
        while (!v.empty() && (v[0] == ' ' || v[0] == '\t')) v.erase(0, 1);
        return v;
    };
    std::string nnp = field("NoNewPrivs:"), sec = field("Seccomp:"), capeff = field("CapEff:"),
                capbnd = field("CapBnd:");
    unsigned long long eff = strtoull(capeff.c_str(), nullptr, 16);
    unsigned long long bnd = strtoull(capbnd.c_str(), nullptr, 16);
    const unsigned long long dangerous =
        (1ULL << 21) /*SYS_ADMIN*/ | (1ULL << 16) /*SYS_MODULE*/ | (1ULL << 17) /*SYS_RAWIO*/ |
        (1ULL << 19) /*SYS_PTRACE*/ | (1ULL << 22) /*SYS_BOOT*/ | (1ULL << 25) /*SYS_TIME*/ |
        (1ULL << 24) /*SYS_RESOURCE*/ | (1ULL << 12) /*NET_ADMIN*/ | (1ULL << 33) /*MAC_ADMIN*/ |
        (1ULL << 38) /*PERFMON*/ | (1ULL << 39) /*BPF*/ | (1ULL << 34) /*SYSLOG*/;
    report(nnp == "1", "no-new-privileges", "NoNewPrivs: %s", nnp.c_str());
    report(sec == "2", "seccomp-filter", "Seccomp: %s", sec.c_str());
    report((eff & dangerous) == 0 && (bnd & dangerous) == 0, "capabilities",
           "CapEff %s CapBnd %s (dangerous bits %llx)", capeff.c_str(), capbnd.c_str(),
           (eff | bnd) & dangerous);
}

// ---- modes for single checks (escape-test.cpp runs them one at a time) -------------------------

// `fds`: one line "FD <n> <target>" per open fd (the directory stream used to list them left
// out), then "FDS <n> <n>...". The test checks that only stdio is open and that nothing points
// at a host path.
int mode_fds() {
    DIR* d = opendir("/proc/self/fd");
    if (!d) {
        printf("ERROR opendir /proc/self/fd: %s\n", strerror(errno));
        return 2;
    }
    std::string all;
    while (dirent* e = readdir(d)) {
        if (e->d_name[0] == '.') continue;
        int fd = atoi(e->d_name);
        if (fd == dirfd(d)) continue;
        char path[64], target[4096] = {};
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        ssize_t n = readlink(path, target, sizeof target - 1);
        if (n < 0) snprintf(target, sizeof target, "?(%s)", strerror(errno));
        printf("FD %d %s\n", fd, target);
        all += " " + std::to_string(fd);
    }
    closedir(d);
    printf("FDS%s\n", all.c_str());
    return 0;
}

// `tiocsti TEXT`: pushes TEXT into the input queue of every terminal on stdio with TIOCSTI, one
// byte at a time; prints "TIOCSTI fd=<n> pushed=<bytes> errno=<e>" per terminal.
int mode_tiocsti(const char* text) {
    for (int fd = 0; fd < 3; fd++) {
        if (!isatty(fd)) {
            printf("TIOCSTI fd=%d not a tty\n", fd);
            continue;
        }
        int pushed = 0, err = 0;
        for (const char* c = text; *c; c++) {
            if (ioctl(fd, TIOCSTI, c) < 0) {
                err = errno;
                break;
            }
            pushed++;
        }
        printf("TIOCSTI fd=%d pushed=%d errno=%s\n", fd, pushed, err ? strerror(err) : "0");
    }
    return 0;
}

// `race-exec MILLISECONDS`: races `berth exec` run from the host meanwhile. Pids in the
// container's pid namespace are handed out in order, so the next `berth exec` child is the next
// pid after the highest one seen: spin on it, and while it is still the berth binary (before its
// execve) try to open its exe (O_PATH, then for writing through /proc/self/fd), its fd directory,
// mem and environ. Prints "RACE tries=<n> caught=<n> denied=<n> opened=<n>" (caught: processes
// seen; denied: opens of an exe refused, i.e. a berth child caught before its execve) and an
// "OPENED ..." line per success; never writes anything.
int mode_race_exec(long ms) {
    struct timespec start {
    }, now{};
    clock_gettime(CLOCK_MONOTONIC, &start);
    pid_t next = getpid() + 1;
    long tries = 0, caught = 0, opened = 0, denied = 0;
    pid_t last_caught = 0, last_opened = 0;
    struct stat busybox {
    }, self{};
    stat("/bin/busybox", &busybox);
    stat("/proc/self/exe", &self);
    auto is_container_binary = [&](const struct stat& st) {
        return (st.st_dev == busybox.st_dev && st.st_ino == busybox.st_ino) ||
               (st.st_dev == self.st_dev && st.st_ino == self.st_ino);
    };
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        long elapsed = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
        if (elapsed > ms) break;
        for (pid_t pid = next; pid < next + 4; pid++) {
            char path[64];
            snprintf(path, sizeof path, "/proc/%d/exe", pid);
            tries++;
            int h = open(path, O_PATH | O_CLOEXEC);
            int e = errno;
            if (h < 0 && e == ENOENT) {
                // Not there (yet), or gone: if a later pid exists, move on.
                continue;
            }
            if (pid != last_caught) {
                caught++;
                last_caught = pid;
            }
            if (pid >= next) next = pid;
            if (h < 0) {
                denied++;  // EACCES: the non-dumpable berth child, as it must be
                continue;
            }
            // What h is, from h itself: the process may have exec'd or exited meanwhile. The
            // exec'd command (busybox) or this probe are the container's own files; anything else
            // is the berth binary, opened before the child's execve.
            struct stat hs {};
            if (fstat(h, &hs) != 0 || is_container_binary(hs)) {
                close(h);
                continue;
            }
            opened++;
            bool first = pid != last_opened;  // one report per process, however often it is opened
            last_opened = pid;
            if (first) printf("OPENED %s (the berth binary)\n", path);
            char via[64];
            snprintf(via, sizeof via, "/proc/self/fd/%d", h);
            int w = open(via, O_WRONLY | O_CLOEXEC);  // opened, never written
            if (w >= 0) {
                if (first) printf("OPENED-FOR-WRITING %s\n", path);
                close(w);
            }
            // fd, mem, environ: counted only if the process was still berth after the open (a
            // process only ever goes from berth to the command, never back).
            const char* others[] = {"fd/0", "mem", "environ"};
            for (const char* o : others) {
                char other[64];
                snprintf(other, sizeof other, "/proc/%d/%s", pid, o);
                int f = open(other, (strcmp(o, "fd/0") == 0 ? O_PATH : O_RDONLY) | O_CLOEXEC);
                if (f < 0) continue;
                int again = open(path, O_PATH | O_CLOEXEC);
                struct stat as {};
                if (first && again >= 0 && fstat(again, &as) == 0 && !is_container_binary(as))
                    printf("OPENED %s\n", other);
                if (again >= 0) close(again);
                close(f);
            }
            close(h);
        }
        // Skip pids that are gone for good: the next exec child takes a higher one.
        char probe[64];
        snprintf(probe, sizeof probe, "/proc/%d", next + 1);
        struct stat st {};
        if (stat(probe, &st) == 0) next++;
    }
    printf("RACE tries=%ld caught=%ld denied=%ld opened=%ld\n", tries, caught, denied, opened);
    return opened == 0 ? 0 : 1;
}

// `open-pid PID`: tries to open /proc/PID/exe (O_PATH), fd, mem and environ of a process that is
// not a container binary (berth's own PID 1 with init = true); prints "OPENED <path>" for each
// success and "OPEN-PID denied=<n> opened=<n>".
int mode_open_pid(pid_t pid) {
    struct stat busybox {
    }, self{};
    stat("/bin/busybox", &busybox);
    stat("/proc/self/exe", &self);
    int denied = 0, opened = 0;
    // fd/0, not the fd directory: that opens for its owner's uid; its entries need ptrace access.
    const char* entries[] = {"exe", "fd/0", "mem", "environ", "cwd", "root"};
    for (const char* entry : entries) {
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/%s", pid, entry);
        bool path_only = strcmp(entry, "exe") == 0 || strcmp(entry, "fd/0") == 0;
        int fd = open(path, (path_only ? O_PATH : O_RDONLY) | O_CLOEXEC);
        if (fd < 0) {
            printf("DENIED %s: %s\n", path, strerror(errno));
            denied++;
            continue;
        }
        struct stat st {};
        if (strcmp(entry, "exe") == 0 && fstat(fd, &st) == 0 &&
            ((st.st_dev == busybox.st_dev && st.st_ino == busybox.st_ino) ||
             (st.st_dev == self.st_dev && st.st_ino == self.st_ino))) {
            printf("CONTAINER-BINARY %s\n", path);  // not berth: the test is moot
        } else {
            printf("OPENED %s\n", path);
            opened++;
        }
        close(fd);
    }
    printf("OPEN-PID denied=%d opened=%d\n", denied, opened);
    return opened == 0 ? 0 : 1;
}

void usage() {
    fprintf(stderr,
            "usage: berth-escape-probe [--outside-pid PID]... [--abstract NAME]... [--unix PATH]...\n"
            "                          [--device MAJ:MIN]... [--host-cgroup PATH]\n");
}

}  // namespace

int main(int argc, char** argv) {
    setvbuf(stdout, nullptr, _IOLBF, 0);
    if (argc >= 2 && strcmp(argv[1], "fds") == 0) return mode_fds();
    if (argc >= 3 && strcmp(argv[1], "tiocsti") == 0) return mode_tiocsti(argv[2]);
    if (argc >= 3 && strcmp(argv[1], "race-exec") == 0) return mode_race_exec(atol(argv[2]));
    if (argc >= 3 && strcmp(argv[1], "open-pid") == 0)
        return mode_open_pid(static_cast<pid_t>(atoi(argv[2])));
    Options o;
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        if (i + 1 >= argc) {
            usage();
            return 2;
        }
        std::string v = argv[++i];
        if (a == "--outside-pid") {
            o.outside_pids.push_back(static_cast<pid_t>(atoi(v.c_str())));
        } else if (a == "--abstract") {
            o.abstract.push_back(v);
        } else if (a == "--unix") {
            o.unix_paths.push_back(v);
        } else if (a == "--device") {
            unsigned ma = 0, mi = 0;
            if (sscanf(v.c_str(), "%u:%u", &ma, &mi) != 2) {
                usage();
                return 2;
            }
            o.devices.push_back(makedev(ma, mi));
        } else if (a == "--host-cgroup") {
            o.host_cgroup = v;
        } else {
            usage();
            return 2;
        }
    }
    setvbuf(stdout, nullptr, _IOLBF, 0);
    probe_posture();
    probe_proc_exe(o);
    probe_write_same("proc-sys-write", "/proc/sys/kernel/core_pattern");
    probe_write_same("proc-sys-write-vm", "/proc/sys/vm/overcommit_memory");
    probe_sysrq();
    probe_sys();
    probe_cgroup(o);
    probe_mount();
    probe_userns();
    probe_modules_kexec();
    probe_ptrace(o);
    probe_devices(o);
    probe_keyctl();
    probe_bpf();
    probe_perf();
    probe_sockets(o);
    printf("DONE %d attempts, %d failed\n", g_attempts, g_failed);
    return g_failed == 0 ? 0 : 1;
}
