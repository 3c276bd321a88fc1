// Embedded mode: where no berthd is reachable on a bus (CI, containers, one-off runs), this
// process spawns a private berthd and speaks the same org.berth.Storage1 protocol to it over a
// peer-to-peer sd-bus connection on a socketpair (as systemctl talks to /run/systemd/private).
// Only berthd links the store; the client keeps one code path (RemoteStorage).
//
// The private berthd (berthd --peer-fd 3) opens the store, then writes one line on the socket
// before any D-Bus byte: "READY" or "ERROR <errno> <message>" (then it exits), so a store it
// cannot open (held by another berthd: EWOULDBLOCK; a bad berthd.toml; permissions) fails here
// with its errno and message. It serves this one connection and exits when it closes; it also
// gets SIGTERM when this process dies (PR_SET_PDEATHSIG), so it never outlives its client.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include "basic/fs-util.h"
#include "basic/process-util.h"
#include "basic/string-util.h"
#include "berth-config.h"
#include "bus/bus-util.h"
#include "bus/remote-storage.h"

namespace berth::bus {

namespace {

// How long the client waits for a private berthd to exit after closing its connection (it
// cancels its jobs first) before it is killed.
constexpr int kExitWaitMs = 10000;

void reap(pid_t pid) {
    if (UniqueFd pidfd(pidfd_open_raw(pid)); pidfd) {
        pollfd p{pidfd.get(), POLLIN, 0};
        int r;
        while ((r = ::poll(&p, 1, kExitWaitMs)) < 0 && errno == EINTR) {
        }
        if (r == 0) ::kill(pid, SIGKILL);
    }
    (void)wait_for_pid(pid, "private berthd");
}

// The hello line, read byte by byte so that nothing of the D-Bus stream after it is consumed.
Result<> read_hello(int fd, const std::string& exe) {
    std::string line;
    for (;;) {
        char c;
        ssize_t n = ::read(fd, &c, 1);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return fail_errno("read from private berthd {}", quote(exe));
        if (n == 0 || c == '\n') break;
        line.push_back(c);
        if (line.size() > 64 * 1024) return fail(EPROTO, "private berthd {}: hello too long", quote(exe));
    }
    if (line == kPeerReady) return {};
    if (line.rfind("ERROR ", 0) == 0) {
        char* end = nullptr;
        long code = std::strtol(line.c_str() + 6, &end, 10);
        std::string message = end && *end == ' ' ? std::string(end + 1) : std::string("failed");
        return fail(Error{code >= 0 ? static_cast<int>(code) : EIO, message});  // 0: no errno
    }
    if (line.empty())
        return fail(ECONNRESET, "private berthd {} exited before serving (see its messages above)",
                    quote(exe));
    return fail(EPROTO, "private berthd {}: unexpected hello {}", quote(exe), quote(line));
}

}  // namespace

std::string find_berthd() {
    if (const char* e = std::getenv("BERTH_BERTHD"); e && *e) return e;
    // A build tree: build/src/berth/berth next to build/src/berthd/berthd.
    if (auto dir = self_executable_dir(); !dir.empty())
        if (auto beside = executable_or_empty(dir + "../berthd/berthd"); !beside.empty()) return beside;
    return std::string(BERTH_LIBEXECDIR) + "/berthd";
}

Result<std::unique_ptr<Storage>> open_private_storage() {
    std::string exe = find_berthd();
    if (::access(exe.c_str(), X_OK) < 0)
        return fail_errno("no berthd on the bus and none to start privately ({})", quote(exe));
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) return fail_errno("socketpair");
    UniqueFd ours(sv[0]), theirs(sv[1]);
    // Everything the child needs is built before vfork(): it only makes system calls (on this
    // process's memory, which it shares until execv) and writes nothing but its own registers.
    // vfork, not fork (issue #14): a fork copied the page tables of all of `berth` and made
    // every page this process wrote afterwards, until the container's own clone, take a
    // copy-on-write fault: ~100 faults per image start, expensive on a virtualised host.
    std::string fd_arg = std::to_string(kPeerChildFd);
    char* argv[] = {exe.data(), const_cast<char*>(kPeerFdOption), fd_arg.data(), nullptr};
    UniqueFd null(::open("/dev/null", O_RDWR | O_CLOEXEC));
    if (!null) return fail_errno("open /dev/null");
    const pid_t parent = ::getpid();
    const int fd = theirs.get(), null_fd = null.get();
    const char* path = exe.c_str();
    pid_t pid = ::vfork();
    if (pid < 0) return fail_errno("start private berthd");
    if (pid == 0) {
        ::prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0);
        if (::getppid() != parent) ::_exit(1);  // the client died already
        // Only the socket crosses exec, and stderr for berthd's errors: not the container's
        // stdin/stdout, nor fds the runtime inherited without O_CLOEXEC (socket activation).
        if (fd == kPeerChildFd ? ::fcntl(fd, F_SETFD, 0) < 0 : ::dup2(fd, kPeerChildFd) < 0) ::_exit(127);
        if (::dup2(null_fd, STDIN_FILENO) < 0 || ::dup2(null_fd, STDOUT_FILENO) < 0) ::_exit(127);
        if (::syscall(SYS_close_range, kPeerChildFd + 1, ~0U, 0) < 0)
            for (int i = kPeerChildFd + 1; i < 4096; ++i) ::close(i);
        ::execv(path, argv);
        ::_exit(127);
    }
    null.reset();
    theirs.reset();
    auto reaper = [pid] { reap(pid); };
    if (auto hello = read_hello(ours.get(), exe); !hello) {
        ours.reset();
        reaper();
        return fail(hello.error());
    }
    sd_bus* raw = nullptr;
    int r = sd_bus_new(&raw);
    if (r < 0) {
        ours.reset();
        reaper();
        return fail(-r, "allocate bus");
    }
    BusPtr bus(raw);
    if ((r = sd_bus_set_fd(raw, ours.get(), ours.get())) >= 0) ours.release();  // the bus owns it
    if (r >= 0) r = sd_bus_negotiate_fds(raw, 1);
    if (r >= 0) r = sd_bus_start(raw);
    if (r < 0) {
        bus.reset();
        ours.reset();
        reaper();
        return fail(-r, "connect to private berthd {}", quote(exe));
    }
    return make_remote_storage(std::move(bus), "embedded", reaper);
}

}  // namespace berth::bus
