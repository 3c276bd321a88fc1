#include "basic/program.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "basic/fs-util.h"
#include "basic/string-util.h"
#include "basic/unique.h"

namespace berth {

std::string find_program(const std::string& name) {
    for (const char* dir : {"/usr/sbin", "/sbin", "/usr/bin", "/bin"}) {
        std::string candidate = path_join(dir, name);
        if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    }
    return "";
}

Result<std::string> run_program(const std::vector<std::string>& argv) {
    std::string exe = find_program(argv.at(0));
    if (exe.empty()) return fail(ENOENT, "'{}' not found", argv[0]);
    int out_pipe[2], err_pipe[2];
    if (::pipe2(out_pipe, O_CLOEXEC) < 0) return fail_errno("pipe");
    UniqueFd out_rd(out_pipe[0]), out_wr(out_pipe[1]);
    if (::pipe2(err_pipe, O_CLOEXEC) < 0) return fail_errno("pipe");
    UniqueFd err_rd(err_pipe[0]), err_wr(err_pipe[1]);
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    pid_t pid = ::fork();
    if (pid < 0) return fail_errno("fork");
    if (pid == 0) {
        // Child: only async-signal-safe calls. argv[0] stays the bare name: pdata_tools (thin_ls)
        // dispatches on it.
        ::dup2(out_wr.get(), 1);
        ::dup2(err_wr.get(), 2);
        int null = ::open("/dev/null", O_RDONLY);
        if (null >= 0) ::dup2(null, 0);
        // The mask survives exec: a caller in the middle of a start blocks the stop signals
        // (runtime/supervise.h), and a dnsmasq started then would never see its SIGTERM.
        sigset_t none;
        ::sigemptyset(&none);
        ::sigprocmask(SIG_SETMASK, &none, nullptr);
        ::execv(exe.c_str(), args.data());
        ::_exit(127);
    }
    out_wr.reset();
    err_wr.reset();
    // Both pipes are drained together so a chatty stderr cannot block the child on a full pipe.
    std::string output, errors;
    pollfd fds[2] = {{out_rd.get(), POLLIN, 0}, {err_rd.get(), POLLIN, 0}};
    int open_fds = 2;
    char buffer[8192];
    while (open_fds > 0) {
        if (::poll(fds, 2, -1) < 0) {
            if (errno == EINTR) continue;
            break;
        }
        for (int i = 0; i < 2; i++) {
            if (fds[i].fd < 0 || !fds[i].revents) continue;
            ssize_t n = ::read(fds[i].fd, buffer, sizeof buffer);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                fds[i].fd = -1;
                open_fds--;
                continue;
            }
            std::string& sink = i == 0 ? output : errors;
            if (i == 0 || sink.size() < 4096) sink.append(buffer, static_cast<size_t>(n));
        }
    }
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return output;
    std::string said = std::string(trim(errors));
    if (said.empty()) said = std::string(trim(output.substr(0, 4096)));
    return fail(EIO, "{} failed (status {}): {}", join(argv, " "), status, said);
}

}  // namespace berth
