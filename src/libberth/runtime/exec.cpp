#include "runtime/exec.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <cstring>

#include "basic/fs-util.h"
#include "basic/process-util.h"
#include "basic/string-util.h"
#include "runtime/capabilities.h"
#include "runtime/child.h"
#include "runtime/identity.h"
#include "runtime/relay.h"
#include "runtime/spawn.h"
#include "runtime/state.h"
#include "runtime/supervise.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#endif

namespace berth::runtime {

namespace {

// A probe's side of exec_impl: where the command's stdout and stderr go, when it is killed.
struct Capture {
    uint64_t deadline_msec = 0;  // CLOCK_MONOTONIC
    std::string tail;            // in: its capacity; out: what the command wrote last
    bool timed_out = false;
};

Result<int> exec_impl(const std::string& name, const ExecOptions& opt, Capture* capture = nullptr) {
    if (opt.command.empty()) return fail(EINVAL, "no command given");
    RuntimeState st = BERTH_TRY(read_state(name));
    UniqueFd pidfd = BERTH_TRY_CTX(pidfd_open(st.pid), "payload");

    std::vector<unsigned char> bpf;
    if (!st.seccomp.empty()) {
        auto text = BERTH_TRY_CTX(read_file(st.seccomp), "seccomp program");
        bpf.assign(text.begin(), text.end());
    }
    // Identity: the payload's, or a user resolved from the container's /etc/passwd.
    LaunchHeader lh;
    lh.uid = st.uid;
    lh.gid = st.gid;
    std::vector<gid_t> groups(st.groups.begin(), st.groups.end());
    std::string home;
    if (!opt.user.empty()) {
        UniqueFd croot(
            ::open(fmt::format("/proc/{}/root", st.pid).c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
        if (!croot) return fail_errno("open the container's root");
        std::string passwd = BERTH_TRY_CTX(read_container_file(croot.get(), "/etc/passwd"), "user");
        std::string group = BERTH_TRY_CTX(read_container_file(croot.get(), "/etc/group"), "user");
        Identity id = BERTH_TRY_CTX(resolve_identity(opt.user, {}, passwd, group), "user");
        lh.uid = id.uid;
        lh.gid = id.gid;
        groups = id.groups;
        home = id.home;
    }
    lh.ngroups = static_cast<uint32_t>(groups.size());
    lh.effective = lh.permitted = lh.uid == 0 ? st.bounding : 0;

    std::vector<std::string> env = st.env;
    for (const auto& e : opt.env) {
        std::string key = e.substr(0, e.find('='));
        std::erase_if(env, [&](const std::string& x) { return x.substr(0, x.find('=')) == key; });
        env.push_back(e);
    }
    if (!home.empty()) {
        std::erase_if(env, [](const std::string& x) { return x.rfind("HOME=", 0) == 0; });
        env.push_back("HOME=" + home);
    }
    if (opt.tty &&
        std::none_of(env.begin(), env.end(), [](const std::string& x) { return x.rfind("TERM=", 0) == 0; }))
        env.push_back("TERM=xterm");
    std::string search_path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    for (const auto& e : env)
        if (e.rfind("PATH=", 0) == 0) search_path = e.substr(5);
    std::string workdir = opt.workdir.empty() ? st.workdir : opt.workdir;
    std::vector<char*> argv, envp;
    for (const auto& a : opt.command) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);

    // Join the payload cgroup while we are still host root (its cgroup.procs is owned by host
    // root, which a user namespace cannot write), then every namespace at once.
    BERTH_TRY_VOID_CTX(write_file(path_join(st.cgroup, "cgroup.procs"), "0", O_WRONLY), "join cgroup");
#if defined(__SANITIZE_ADDRESS__)
    // LeakSanitizer's exit-time check lists our threads through /proc/self/task; once we are in
    // the container's mount namespace /proc belongs to its pid namespace and that check spins
    // forever. Check for leaks now, on the host's /proc, which also turns the exit check off.
    __lsan_do_leak_check();
#endif
    // The host's /dev/null, opened before setns(): the container's /dev is the payload's, which
    // may have put a FIFO there (an open of it would block berth exec forever) or a device.
    UniqueFd devnull;
    UniqueFd capture_read, capture_write;
    if (capture) {
        int p[2];
        if (::pipe2(p, O_CLOEXEC) < 0) return fail_errno("pipe for the probe's output");
        capture_read.reset(p[0]);
        capture_write.reset(p[1]);
    }
    if (!opt.interactive && !opt.tty) {
        devnull.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC | O_NOCTTY));
        if (!devnull) return fail_errno("open /dev/null");
    }
    // From here until the command's execve(), this process and its child are the berth binary
    // inside the container's namespaces: non-dumpable, so that no process of the container can
    // open their /proc/PID/{exe,fd,mem,environ} or ptrace them (CVE-2016-9962, CVE-2019-5736).
    // The child inherits it; execve() of the command resets it.
    if (::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) return fail_errno("make berth exec non-dumpable");
    int nsflags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET | CLONE_NEWCGROUP;
    if (st.user_namespace) nsflags |= CLONE_NEWUSER;
    if (::setns(pidfd.get(), nsflags) < 0) return fail_errno("join the namespaces of process {}", st.pid);

    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) return fail_errno("socketpair");
    UniqueFd parent_end(sv[0]), child_end(sv[1]);
    UniqueFd master, slave;
    if (opt.tty) {
        // The container's devpts: /dev/ptmx now resolves in its mount namespace.
        // Through no magic link: a process of the container could have made /dev/ptmx one to
        // an fd of ours.
        master.reset(open_in_container("/dev/ptmx", O_RDWR | O_NOCTTY));
        if (!master) return fail_errno("open the container's /dev/ptmx");
        int unlock = 0;
        if (::ioctl(master.get(), TIOCSPTLCK, &unlock) < 0) return fail_errno("unlock pty");
        slave.reset(::ioctl(master.get(), TIOCGPTPEER, O_RDWR | O_NOCTTY));
        if (!slave) return fail_errno("open pty peer");
    }
    SignalsBlocked signals = BERTH_TRY(block_forwarded_signals());
    const int last_cap = last_capability();
    const int child_fd = child_end.get();

    bool in_child = false;
    ChildProcess child = BERTH_TRY_CTX(clone_child(0, -1, &in_child), "start");
    if (in_child) {
        // Child, inside the container's namespaces: same rules as the container's first process.
        ::close(sv[0]);
        ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
        if (slave) {
            if (setup_controlling_tty(slave.get()) < 0) child_fail(child_fd, errno, "set up pty", "");
        } else {
            if (devnull && ::dup2(devnull.get(), 0) < 0) child_fail(child_fd, errno, "redirect stdin", "");
            if (capture_write && (::dup2(capture_write.get(), 1) < 0 || ::dup2(capture_write.get(), 2) < 0))
                child_fail(child_fd, errno, "redirect the probe's output", "");
            // A session of its own: the caller's terminal (our stdio without -t) is not the
            // command's controlling tty, so TIOCSTI cannot push input into the caller's shell.
            if (::setsid() < 0) child_fail(child_fd, errno, "start a new session", "");
        }
        // As in the container's first process: only stdio and the sync socket remain before the
        // workdir and the program are resolved inside the container (CVE-2024-21626).
        if (close_inherited_fds(child_fd) < 0)
            child_fail(child_fd, errno, "close inherited file descriptors", "");
        const char *what = "", *note = nullptr;
        if (int e = enter_workdir(workdir.c_str(), &what, &note))
            child_fail(child_fd, e, what, workdir.c_str(), note);
        const char* step = "";
        int rc = apply_identity_and_privileges(lh, groups.data(), st.bounding, last_cap, st.no_new_privileges,
                                               bpf.empty() ? nullptr : bpf.data(), bpf.size(), &step);
        if (rc < 0) child_fail(child_fd, -rc, step, "");
        // As in the container's first process (child.cpp): another uid cleared the parent-death
        // signal; arm it again, unless `berth exec` is gone already (its end of the channel).
        ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
        struct pollfd parent_gone = {child_fd, POLLRDHUP, 0};
        if (::poll(&parent_gone, 1, 0) > 0 && (parent_gone.revents & (POLLHUP | POLLRDHUP))) ::_exit(127);
        exec_payload(child_fd, argv.data(), envp.data(), search_path.c_str());
    }
    child_end.reset();
    slave.reset();
    capture_write.reset();

    // EOF = exec'd; else an error report.
    MessageHeader header{};
    ssize_t n;
    do n = ::read(parent_end.get(), &header, sizeof header);
    while (n < 0 && errno == EINTR);
    if (n == static_cast<ssize_t>(sizeof header) && header.type == MessageType::Error) {
        ErrorPayload e;
        size_t got = 0;
        while (got < sizeof e) {
            ssize_t r = ::read(parent_end.get(), reinterpret_cast<char*>(&e) + got, sizeof e - got);
            if (r <= 0) break;
            got += static_cast<size_t>(r);
        }
        e.message[sizeof e.message - 1] = '\0';
        return fail(Error{e.code, e.message});
    }

    // The shared loop (relay.h): signals forwarded as they come (no stop signal of its own).
    char buf[16384];
    Relay relay;
    relay.pidfd = child.pidfd();
    relay.signal_fd = signals.fd();
    relay.pty_master = master ? master.get() : -1;
    relay.buf = buf;
    relay.buf_size = sizeof buf;
    if (capture) {
        // The probe's output is read like a pty's, into a tail buffer instead of our stdout.
        relay.pty_master = capture_read.get();
        relay.out_fd = -1;
        relay.tail = capture->tail.data();
        relay.tail_size = capture->tail.size();
    }
    relay_start(&relay);
    relay.in_open = relay.in_open && !capture;
    RawTerminalScope raw(master.valid());
    auto exited = BERTH_TRY(supervise_relay(&relay, child, capture ? capture->deadline_msec : 0));
    if (capture) {
        capture->tail.resize(relay.tail_len);
        if (!exited) {
            // Its whole process group (the command called setsid()): what it started goes too.
            capture->timed_out = true;
            ::kill(-child.pid(), SIGKILL);
            return -1;
        }
    }
    return exited.value_or(0);  // without a deadline, only the payload's exit ends the loop
}

}  // namespace

Result<ProbeOutcome> probe_in_container(const std::string& name, const std::vector<std::string>& command,
                                        uint64_t timeout_ms) {
    ExecOptions opt;
    opt.command = command;
    opt.interactive = false;
    Capture capture;
    capture.tail.resize(kProbeOutputTail);
    const uint64_t started = relay_monotonic_msec();
    capture.deadline_msec = started + (timeout_ms ? timeout_ms : 1);
    struct timespec t0 {
    }, t1{};
    ::clock_gettime(CLOCK_MONOTONIC, &t0);
    auto r = exec_impl(name, opt, &capture);
    ::clock_gettime(CLOCK_MONOTONIC, &t1);
    if (!r) return fail(std::move(r.error()).wrap(fmt::format("probe in container '{}'", name)));
    ProbeOutcome out;
    out.exit_status = capture.timed_out ? -1 : *r;
    out.duration_us =
        static_cast<uint64_t>((t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000);
    out.output = std::move(capture.tail);
    return out;
}

Result<int> exec_in_container(const std::string& name, const ExecOptions& options) {
    auto r = exec_impl(name, options);
    if (!r) return fail(std::move(r.error()).wrap(fmt::format("exec in container '{}'", name)));
    return r;
}

}  // namespace berth::runtime
