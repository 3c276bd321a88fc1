// Test fixtures for berthd: a REAL private dbus-daemon with a system-bus-style configuration
// (deny by default, berth's own policy file included), child processes that are always killed
// and reaped, and a small shell runner. Header-only; used by tests/unit/bus and
// tests/privileged/bus.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "test-util.h"

namespace berth::test {

// A child process killed (SIGKILL unless stopped before) and reaped on destruction.
class Child {
public:
    Child() = default;
    explicit Child(pid_t pid) : pid_(pid) {}
    Child(Child&& o) noexcept : pid_(std::exchange(o.pid_, -1)) {}
    Child& operator=(Child&& o) noexcept {
        if (this != &o) {
            kill_and_reap();
            pid_ = std::exchange(o.pid_, -1);
        }
        return *this;
    }
    ~Child() { kill_and_reap(); }

    pid_t pid() const { return pid_; }
    bool running() const { return pid_ > 0; }

    // Sends `sig` and waits up to `timeout` for exit; returns the wait status, or -1 on timeout.
    int stop(int sig = SIGTERM, std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
        if (pid_ <= 0) return -1;
        ::kill(pid_, sig);
        auto deadline = std::chrono::steady_clock::now() + timeout;
        while (std::chrono::steady_clock::now() < deadline) {
            int status = 0;
            pid_t r = ::waitpid(pid_, &status, WNOHANG);
            if (r == pid_) {
                pid_ = -1;
                return status;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        return -1;
    }

    // True once the process has exited (reaped; the status is kept in exit_status()).
    bool exited() {
        if (pid_ <= 0) return true;
        if (::waitpid(pid_, &status_, WNOHANG) == pid_) {
            pid_ = -1;
            return true;
        }
        return false;
    }
    int exit_status() const { return status_; }

    void kill_and_reap() {
        if (pid_ <= 0) return;
        ::kill(pid_, SIGKILL);
        int status;
        ::waitpid(pid_, &status, 0);
        pid_ = -1;
    }

private:
    pid_t pid_ = -1;
    int status_ = 0;
};

// fork + exec `argv` with extra environment; stdout/stderr go to `log` (appended) when given.
inline Child spawn(const std::vector<std::string>& argv, const std::vector<std::string>& env = {},
                   const std::string& log = {}) {
    const pid_t parent = ::getpid();
    pid_t pid = ::fork();
    if (pid == 0) {
        // Daemons the fixture starts (dbus-daemon, berthd) must not outlive a test process that
        // dies without running its destructors (a sanitizer abort, a crash, a timeout's SIGKILL).
        // Fixtures spawn from the main thread, so the parent-death signal fires only with the test.
        ::prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (::getppid() != parent) ::_exit(127);
        if (!log.empty()) {
            int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
            if (fd >= 0) {
                ::dup2(fd, 1);
                ::dup2(fd, 2);
            }
        }
        for (auto& e : env) ::putenv(const_cast<char*>(e.c_str()));
        std::vector<char*> args;
        for (auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        ::execvp(args[0], args.data());
        ::_exit(127);
    }
    return Child(pid);
}

struct CommandResult {
    int status = -1;  // exit status (128+N when killed)
    std::string out, err;
};

// Runs `command` with /bin/sh, capturing stdout and stderr separately.
inline CommandResult run_shell(const std::string& command) {
    TempDir tmp("berth-sh");
    std::string out = tmp / "out", err = tmp / "err";
    std::string full = "(" + command + ") >" + out + " 2>" + err;
    int status = std::system(full.c_str());
    CommandResult r;
    r.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    std::ifstream o(out), e(err);
    std::stringstream so, se;
    so << o.rdbuf();
    se << e.rdbuf();
    r.out = so.str();
    r.err = se.str();
    return r;
}

// A private dbus-daemon configured like Debian's system bus (deny by default, every service
// opens what it needs in its own policy file) plus berth's policy file from the source tree.
class PrivateBus {
public:
    enum class Policy { Berth, AllowAll };

    // `servicedir`: a directory of D-Bus activation files (*.service) the bus may start services
    // from, as the system bus does with /usr/share/dbus-1/system-services; "" = no activation.
    explicit PrivateBus(Policy policy = Policy::Berth, const std::string& servicedir = {})
        : dir_("berth-bus") {
        ::chmod(dir_.path().c_str(), 0755);  // unprivileged test callers must reach the socket
        socket_ = dir_ / "system_bus_socket";
        address_ = "unix:path=" + socket_;
        // The configuration is tests/lib/private-bus.conf, shared with the qemu guest's scripts.
        auto text = read_file(source_root() + "/tests/lib/private-bus.conf");
        std::string conf = text ? *text : "";
        std::string includes;
        if (policy == Policy::Berth)
            includes += "<include>" + source_root() + "/dbus/org.berth.Storage1.conf</include>";
        if (!servicedir.empty()) includes += "<servicedir>" + servicedir + "</servicedir>";
        replace_marker(conf, "@ADDRESS@", address_);
        replace_marker(conf, "@INCLUDES@", includes);
        if (policy == Policy::AllowAll) {
            replace_marker(conf, "<deny own=\"*\"/>", "<allow own=\"*\"/>");
            replace_marker(conf, "<deny send_type=\"method_call\"/>", "<allow send_type=\"method_call\"/>");
        }
        std::string config = dir_ / "bus.conf";
        std::ofstream(config) << conf;
        daemon_ = spawn({"dbus-daemon", "--nofork", "--nopidfile", "--nosyslog", "--config-file=" + config},
                        {}, dir_ / "dbus-daemon.log");
        for (int i = 0; i < 500 && !path_exists(socket_); ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }

    bool ok() const { return path_exists(socket_); }
    const std::string& address() const { return address_; }
    const std::string& dir() const { return dir_.path(); }
    std::string log() const {
        auto r = read_file(dir_ / "dbus-daemon.log");
        return r ? *r : "";
    }

private:
    static void replace_marker(std::string& text, const std::string& marker, const std::string& with) {
        if (auto at = text.find(marker); at != std::string::npos) text.replace(at, marker.size(), with);
    }

    TempDir dir_;
    std::string socket_, address_;
    Child daemon_;
};

// Waits until `name` has an owner on the bus (polls busctl); false on timeout.
// Stops early when `owner` (the process expected to take the name) has exited.
inline bool wait_for_name(const std::string& address, const std::string& name, int timeout_ms = 20000,
                          Child* owner = nullptr) {
    for (int waited = 0; waited < timeout_ms; waited += 50) {
        if (owner && owner->exited()) return false;
        auto r = run_shell("busctl --address=" + address + " status " + name + " >/dev/null 2>&1");
        if (r.status == 0) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
}

// Sets an environment variable for the scope.
class ScopedEnv {
public:
    ScopedEnv(const char* name, const std::string& value) : name_(name) {
        if (const char* old = std::getenv(name)) old_ = old, had_ = true;
        ::setenv(name, value.c_str(), 1);
    }
    ~ScopedEnv() {
        if (had_)
            ::setenv(name_.c_str(), old_.c_str(), 1);
        else
            ::unsetenv(name_.c_str());
    }

private:
    std::string name_, old_;
    bool had_ = false;
};

// The setup berthd's load and fault tests share: a private bus with berth's policy, the test
// process (and so every client and `berth` it starts) pointed at it through
// DBUS_SYSTEM_BUS_ADDRESS and at a BERTH_DAEMON_CONFIG that does not exist (built-in defaults),
// and the real berthd ($BERTHD_EXE) on an overlay store in dir()/store, logging to
// dir()/berthd.log. Subclasses call BerthdFixture::SetUp()/TearDown() around their own steps.
class BerthdFixture : public ::testing::Test {
protected:
    explicit BerthdFixture(const char* tmp_prefix) : dir_(tmp_prefix) {}

    void SetUp() override {
        BERTH_REQUIRE_ROOT();
        bus_ = std::make_unique<PrivateBus>(PrivateBus::Policy::Berth);
        ASSERT_TRUE(bus_->ok()) << bus_->log();
        env_addr_ = std::make_unique<ScopedEnv>("DBUS_SYSTEM_BUS_ADDRESS", bus_->address());
        env_cfg_ = std::make_unique<ScopedEnv>("BERTH_DAEMON_CONFIG", dir_ / "no-such-berthd.toml");
    }
    void TearDown() override {
        daemon_.kill_and_reap();
        env_cfg_.reset();
        env_addr_.reset();
        bus_.reset();
    }

    // Starts berthd and waits until it owns its name (fails the test if it does not).
    void start_berthd() {
        daemon_ =
            spawn({berthd_exe(), "--root", store(), "--backend", "overlay", "--bus-address", bus_->address()},
                  {}, dir_ / "berthd.log");
        ASSERT_TRUE(wait_for_name(bus_->address(), "org.berth.Storage1", 30000, &daemon_)) << log();
    }

    static std::string berthd_exe() { return std::getenv("BERTHD_EXE"); }
    static std::string berth_exe() { return std::getenv("BERTH_EXE"); }
    std::string store() const { return dir_ / "store"; }
    std::string log() const {
        auto r = read_file(dir_ / "berthd.log");
        return r ? *r : "";
    }

    TempDir dir_;
    std::unique_ptr<PrivateBus> bus_;
    std::unique_ptr<ScopedEnv> env_addr_, env_cfg_;
    Child daemon_;
};

}  // namespace berth::test
