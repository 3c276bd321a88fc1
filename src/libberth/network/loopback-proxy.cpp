#include "network/loopback-proxy.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <vector>

#include "basic/fs-util.h"
#include "basic/process-util.h"
#include "basic/string-util.h"
#include "basic/unique.h"

namespace berth::network {

namespace {

// "LISTEN_PID=" and the decimal pid into `buf` (allocates nothing: runs between fork and exec).
void format_listen_pid(char* buf, size_t size, pid_t pid) {
    static constexpr char kPrefix[] = "LISTEN_PID=";
    char digits[16];
    int n = 0;
    for (auto v = static_cast<unsigned>(pid); n == 0 || v > 0; v /= 10)
        digits[n++] = static_cast<char>('0' + v % 10);
    size_t at = 0;
    for (const char* c = kPrefix; *c && at + 1 < size; ++c) buf[at++] = *c;
    while (n > 0 && at + 1 < size) buf[at++] = digits[--n];
    buf[at] = '\0';
}

// The child: fd 3 = the listening socket, nothing else open above stderr, no signal blocked or
// ignored, user nobody without privileges (the socket is bound already; connecting needs none),
// dead with its parent. Allocates nothing.
[[noreturn]] void exec_proxy(int sock, pid_t parent, char* const argv[], char* const envp[], char* listen_pid,
                             size_t listen_pid_size) {
    constexpr uid_t kNobody = 65534;
    if (::setgroups(0, nullptr) < 0 || ::setresgid(kNobody, kNobody, kNobody) < 0 ||
        ::setresuid(kNobody, kNobody, kNobody) < 0 || ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        ::_exit(127);
    // After the change of user, which clears it.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);  // the parent died before the prctl
    // Default actions first, then unblock: a stop signal already pending must not run a handler
    // inherited from the parent.
    for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGPIPE, SIGQUIT}) ::signal(sig, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    if (sock == 3) {
        if (::fcntl(3, F_SETFD, 0) < 0) ::_exit(127);
    } else if (::dup2(sock, 3) < 0) {
        ::_exit(127);
    }
    ::close_range(4, ~0U, 0);
    format_listen_pid(listen_pid, listen_pid_size, ::getpid());
    ::execve(argv[0], argv, envp);
    ::_exit(127);
}

// `pid` is a systemd-socket-proxyd started for `target` (its comm is cut to 15 characters).
bool is_our_proxy(pid_t pid, const std::string& target) {
    auto cmdline = read_file(fmt::format("/proc/{}/cmdline", pid));
    if (!cmdline) return false;
    auto args = split(*cmdline, '\0');
    return args.size() >= 2 && args[0] == kSocketProxyd &&
           std::find(args.begin() + 1, args.end(), target) != args.end();
}

bool exited(int pidfd, int timeout_ms) {
    struct pollfd p {
        pidfd, POLLIN, 0
    };
    return ::poll(&p, 1, timeout_ms) == 1;
}

}  // namespace

Result<LoopbackProxy> start_loopback_proxy(uint16_t host_port, const std::string& target) {
    auto context = fmt::format("publish [::1]:{}/tcp (loopback proxy to {})", host_port, target);
    if (::access(kSocketProxyd, X_OK) < 0)
        return fail_errno("{}: '{}' (Debian package systemd)", context, kSocketProxyd);
    UniqueFd sock(::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!sock) return fail_errno("{}: socket", context);
    int one = 1;
    if (::setsockopt(sock.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) < 0 ||
        ::setsockopt(sock.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
        return fail_errno("{}: setsockopt", context);
    sockaddr_in6 addr{};
    addr.sin6_family = AF_INET6;
    addr.sin6_port = htons(host_port);
    addr.sin6_addr = in6addr_loopback;
    if (::bind(sock.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0)
        return fail_errno("{}: bind [::1]:{}", context, host_port);
    if (::listen(sock.get(), SOMAXCONN) < 0) return fail_errno("{}: listen", context);

    // Everything the child needs, allocated before the fork.
    std::string program = kSocketProxyd, to = target, fds = "LISTEN_FDS=1";
    char listen_pid[32] = "LISTEN_PID=";
    std::vector<char*> argv{program.data(), to.data(), nullptr};
    std::vector<char*> envp{fds.data(), listen_pid, nullptr};
    const pid_t parent = ::getpid();
    pid_t pid = ::fork();
    if (pid < 0) return fail_errno("{}: fork", context);
    if (pid == 0) exec_proxy(sock.get(), parent, argv.data(), envp.data(), listen_pid, sizeof listen_pid);
    // The listening socket is the proxy's now: it goes when the proxy does.
    return LoopbackProxy{pid, target};
}

Result<> stop_loopback_proxy(const LoopbackProxy& proxy) {
    if (proxy.pid <= 0) return {};
    auto pidfd = pidfd_open(proxy.pid);
    if (!pidfd) return {};  // gone
    siginfo_t info;
    // Our own child (the attaching process): its pid cannot have been reused while unreaped, and
    // it may not have reached its exec yet, so no check of its command line; one that exited is
    // reaped here. Another process's (the teardown in another process image): checked after the
    // pidfd is open, so that the pidfd refers to the process that was checked.
    int ours = pidfd_wait_raw(pidfd->get(), &info, WEXITED | WNOHANG);
    if (ours == 0 && info.si_pid != 0) return {};
    if (ours != 0 && !is_our_proxy(proxy.pid, proxy.target)) return {};
    (void)pidfd_signal_raw(pidfd->get(), SIGTERM);
    if (!exited(pidfd->get(), 2000)) {
        (void)pidfd_signal_raw(pidfd->get(), SIGKILL);
        if (!exited(pidfd->get(), 5000))
            return fail(ETIMEDOUT, "loopback proxy to {} (pid {}) does not exit", proxy.target, proxy.pid);
    }
    (void)pidfd_wait_raw(pidfd->get(), &info, WEXITED | WNOHANG);  // ECHILD: another process's child
    return {};
}

}  // namespace berth::network
