// Helpers for the hardening tests (escape, soak, fault): write a declaration, run `berth run` in
// the foreground, capture its output, snapshot host resource counts.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "test-util.h"

namespace berth::test {

// $BERTH_TEST_EXE overrides the build's berth: to run a test against another build (an older
// one, to see a new test fail before its fix).
inline std::string berth_exe() {
    if (const char* e = ::getenv("BERTH_TEST_EXE"); e && *e) return e;
#ifdef BERTH_EXE
    return BERTH_EXE;
#else
    return build_root() + "/src/berth/berth";
#endif
}

inline std::string read_file(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

inline void write_file(const std::string& path, const std::string& text) {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f << text;
}

struct RunResult {
    int exit_code = -1;  // -1: did not exit normally
    std::string out;     // stdout and stderr, interleaved
};

// Runs argv, capturing stdout+stderr, killing it after timeout_s seconds.
inline RunResult run_capture(const std::vector<std::string>& argv, int timeout_s = 60) {
    RunResult r;
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) != 0) return r;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(pipefd[1], 1);
        dup2(pipefd[1], 2);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0) dup2(devnull, 0);
        std::vector<char*> args;
        for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        execvp(args[0], args.data());
        _exit(127);
    }
    close(pipefd[1]);
    // Simple deadline: a helper child that kills the process group is overkill for tests; the
    // meson timeout is the backstop, and alarm-free reads keep this single-threaded.
    char buf[4096];
    ssize_t n;
    time_t deadline = time(nullptr) + timeout_s;
    fcntl(pipefd[0], F_SETFL, O_NONBLOCK);
    int status = 0;
    bool exited = false;
    while (true) {
        n = read(pipefd[0], buf, sizeof buf);
        if (n > 0) {
            r.out.append(buf, static_cast<size_t>(n));
            continue;
        }
        if (n == 0) break;
        if (!exited && waitpid(pid, &status, WNOHANG) == pid) exited = true;
        if (time(nullptr) > deadline) {
            kill(pid, SIGKILL);
            r.out += "\n[harness: killed after timeout]\n";
            break;
        }
        usleep(10000);
    }
    close(pipefd[0]);
    if (!exited) waitpid(pid, &status, 0);
    if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
    return r;
}

// Runs `berth run` in the foreground on the declaration file `toml` (NAME.toml; NAME is the
// container name).
inline RunResult berth_run(const std::string& toml, int timeout_s = 60) {
    return run_capture({berth_exe(), "run", toml}, timeout_s);
}

// While it lives, the berth this process runs uses a store of its own at `root`, through a
// private (embedded) berthd: BERTH_STORE_ROOT and BERTH_STORAGE set, unset again on destruction.
class EmbeddedStore {
public:
    explicit EmbeddedStore(const std::string& root) {
        ::setenv("BERTH_STORE_ROOT", root.c_str(), 1);
        ::setenv("BERTH_STORAGE", "embedded", 1);
    }
    EmbeddedStore(const EmbeddedStore&) = delete;
    EmbeddedStore& operator=(const EmbeddedStore&) = delete;
    ~EmbeddedStore() {
        ::unsetenv("BERTH_STORE_ROOT");
        ::unsetenv("BERTH_STORAGE");
    }
};

// A busybox rootfs (tests/lib/make-busybox-rootfs.sh) in dir.
inline bool make_busybox_rootfs(const std::string& dir) {
    RunResult r = run_capture({"bash", source_root() + "/tests/lib/make-busybox-rootfs.sh", dir});
    return r.exit_code == 0;
}

inline std::vector<std::string> split_lines(const std::string& s) {
    std::vector<std::string> out;
    std::istringstream in(s);
    std::string line;
    while (std::getline(in, line)) out.push_back(line);
    return out;
}

// A declaration running `script` with /bin/sh in `rootfs`, with `out` bound on /out (where the
// script leaves its findings); `container_extra` goes into [container], `tables` after it.
inline std::string shell_declaration(const std::string& rootfs, const std::string& out,
                                     const std::string& script, const std::string& container_extra = "",
                                     const std::string& tables = "") {
    std::string quoted;
    for (char c : script) {
        if (c == '"' || c == '\\') quoted += '\\';
        quoted += c;
    }
    return "[container]\nrootfs = \"" + rootfs + "\"\ncommand = [\"/bin/sh\", \"-c\", \"" + quoted + "\"]\n" +
           container_extra + "\n[[mount]]\ntype = \"bind\"\nsource = \"" + out + "\"\ntarget = \"/out\"\n" +
           tables;
}

}  // namespace berth::test
