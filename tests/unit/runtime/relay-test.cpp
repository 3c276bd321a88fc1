// The supervise loop (runtime/relay.h) on plain processes, without root: what `berth run`,
// berth-supervise and `berth exec` share. tests/privileged/runtime runs it through all three.
#include "runtime/relay.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "runtime/child-fd.h"

namespace berth::runtime {
namespace {

double cpu_seconds() {
    struct timespec ts {};
    ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

// A fd number that is certainly not open.
int closed_fd() {
    int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    ::close(fd);
    return fd;
}

// A forked "payload" with a pidfd; `body` runs in it and its return value is the exit code.
struct Payload {
    pid_t pid = -1;
    int pidfd = -1;
    template <typename F>
    explicit Payload(F body) {
        pid = ::fork();
        if (pid == 0) ::_exit(body());
        pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
    }
    ~Payload() {
        if (pidfd >= 0) {
            ::syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, nullptr, 0);
            ::close(pidfd);
        }
        ::waitpid(pid, nullptr, 0);  // ECHILD once the relay reaped it
    }
};

// A pty: the master for the relay, the slave's path for the payload.
struct Pty {
    int master = -1;
    std::string slave;
    Pty() {
        master = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (master >= 0 && ::grantpt(master) == 0 && ::unlockpt(master) == 0) slave = ::ptsname(master);
    }
    ~Pty() {
        if (master >= 0) ::close(master);
    }
};

// A payload body: writes `line` `times` times, 20 ms apart, to the pty slave at `slave`, then
// exits with `code`.
int write_lines(const std::string& slave, const char* line, int times, int code) {
    int fd = ::open(slave.c_str(), O_WRONLY | O_NOCTTY);
    for (int i = 0; i < times; ++i) {
        (void)!::write(fd, line, std::strlen(line));
        if (i + 1 < times) ::usleep(20 * 1000);
    }
    return code;
}

// A payload body: ignores `ignored` (0: nothing), says it is ready on `ready`, and waits for a
// signal forever. paused_payload_ready() returns once it is.
int pause_forever(int ignored, int ready) {
    if (ignored) ::signal(ignored, SIG_IGN);
    (void)!::write(ready, "x", 1);
    for (;;) ::pause();
}

struct ReadyPipe {
    int fds[2] = {-1, -1};
    ReadyPipe() { (void)!::pipe(fds); }
    ~ReadyPipe() {
        ::close(fds[0]);
        ::close(fds[1]);
    }
    bool wait() {
        char c;
        return ::read(fds[0], &c, 1) == 1;
    }
};

class RelayTest : public ::testing::Test {
protected:
    // The loop as -t runs it, with the caller's stdin closed and stdout `out`; the status.
    int relay_pty(const Payload& p, int master, int out) {
        block_signals();
        Relay r = relay_for(p, master);
        r.in_fd = closed_fd();
        r.out_fd = out;
        relay_start(&r);
        int status = -1;
        EXPECT_EQ(kRelayExited, relay_run(&r, 0, &status));
        return status;
    }
    Relay relay_for(const Payload& p, int pty_master = -1) {
        Relay r;
        r.pidfd = p.pidfd;
        r.signal_fd = signal_fd_;
        r.pty_master = pty_master;
        r.buf = buf_;
        r.buf_size = sizeof buf_;
        return r;
    }
    void block_signals() {
        signal_fd_ = relay_block_signals(&previous_);
        ASSERT_GE(signal_fd_, 0);
        blocked_ = true;
    }
    void TearDown() override {
        if (blocked_) ::sigprocmask(SIG_SETMASK, &previous_, nullptr);
        if (signal_fd_ >= 0) ::close(signal_fd_);
    }
    char buf_[4096];
    int signal_fd_ = -1;
    sigset_t previous_{};
    bool blocked_ = false;
};

TEST_F(RelayTest, ReturnsThePayloadsExitStatusAndDrainsWhatItWroteToThePty) {
    Pty pty;
    ASSERT_FALSE(pty.slave.empty());
    Payload p([&] { return write_lines(pty.slave, "hello\n", 1, 7); });
    int out[2];
    ASSERT_EQ(0, ::pipe2(out, O_CLOEXEC | O_NONBLOCK));
    EXPECT_EQ(relay_pty(p, pty.master, out[1]), 7);
    char got[64] = {};
    EXPECT_GT(::read(out[0], got, sizeof got - 1), 0);
    EXPECT_NE(std::string(got).find("hello"), std::string::npos) << got;
    ::close(out[0]);
    ::close(out[1]);
}

// A caller that started berth with fd 0 closed: poll() answers POLLNVAL for it at once, every
// round. `berth exec` and `berth run`'s in-process loop ignored that and spun until the payload
// exited.
TEST_F(RelayTest, StopsPollingAClosedStdinInsteadOfSpinning) {
    Pty pty;
    ASSERT_FALSE(pty.slave.empty());
    Payload p([] {
        ::usleep(400 * 1000);
        return 0;
    });
    block_signals();
    Relay r = relay_for(p, pty.master);
    r.in_fd = closed_fd();
    r.out_fd = closed_fd();
    relay_start(&r);
    double before = cpu_seconds();
    int status = -1;
    ASSERT_EQ(kRelayExited, relay_run(&r, 0, &status));
    EXPECT_EQ(status, 0);
    EXPECT_FALSE(r.in_open);
    EXPECT_LT(cpu_seconds() - before, 0.1) << "the loop spun on the closed stdin";
}

// `berth run -t ... | head -1`: the reader of stdout goes away; the output is dropped and the
// loop goes on to the payload's status instead of dying of SIGPIPE.
TEST_F(RelayTest, SurvivesAStdoutWhoseReaderIsGone) {
    Pty pty;
    ASSERT_FALSE(pty.slave.empty());
    Payload p([&] { return write_lines(pty.slave, "line\n", 5, 3); });
    int out[2];
    ASSERT_EQ(0, ::pipe2(out, O_CLOEXEC));
    ::close(out[0]);  // nobody reads
    EXPECT_EQ(relay_pty(p, pty.master, out[1]), 3);
    ::close(out[1]);
    struct sigaction now {};
    ::sigaction(SIGPIPE, nullptr, &now);
    EXPECT_EQ(now.sa_handler, SIG_DFL) << "SIGPIPE's disposition was not put back";
}

// berth run / berth-supervise: SIGTERM becomes the stop signal, the second request SIGKILL
// (issue #15 item 8: it took three silent requests), each one said in a line.
TEST_F(RelayTest, TurnsSigtermIntoTheStopSignalAndTheSecondRequestIntoSigkillSayingSo) {
    ReadyPipe ready;
    Payload p([&] { return pause_forever(SIGUSR1, ready.fds[1]); });  // only SIGKILL ends it
    ASSERT_TRUE(ready.wait());
    block_signals();
    int err[2];
    ASSERT_EQ(0, ::pipe2(err, O_CLOEXEC | O_NONBLOCK));
    Relay r = relay_for(p);
    r.stop_signal = SIGUSR1;
    r.name = "web";
    r.err_fd = err[1];
    char said[1024];
    ::kill(::getpid(), SIGINT);  // blocked: it waits in the signalfd
    int status = -1;
    EXPECT_EQ(relay_run(&r, relay_monotonic_msec() + 100, &status), kRelayDeadline);
    ssize_t n = ::read(err[0], said, sizeof said - 1);
    ASSERT_GT(n, 0);
    EXPECT_EQ(std::string(said, static_cast<size_t>(n)),
              "berth run: container 'web': SIGINT: stopping, SIGUSR1 sent to the payload; Ctrl-C (SIGINT) "
              "again kills it\n");
    ::kill(::getpid(), SIGTERM);
    ASSERT_EQ(relay_run(&r, relay_monotonic_msec() + 5000, &status), kRelayExited);
    EXPECT_EQ(status, 128 + SIGKILL);
    EXPECT_EQ(r.stop_requests, 2);
    n = ::read(err[0], said, sizeof said - 1);
    ASSERT_GT(n, 0);
    EXPECT_EQ(std::string(said, static_cast<size_t>(n)),
              "berth run: container 'web': SIGTERM again: the payload has not exited on SIGUSR1 (a PID 1 "
              "without a handler ignores it; `init = true` forwards signals to the command): killing it "
              "(SIGKILL)\n");
    ::close(err[0]);
    ::close(err[1]);
}

// berth exec: no stop signal, so SIGTERM reaches the command as SIGTERM.
TEST_F(RelayTest, WithoutAStopSignalForwardsSigtermAsItIs) {
    ReadyPipe ready;
    Payload p([&] { return pause_forever(0, ready.fds[1]); });
    ASSERT_TRUE(ready.wait());
    block_signals();
    Relay r = relay_for(p);
    ::kill(::getpid(), SIGTERM);
    int status = -1;
    ASSERT_EQ(kRelayExited, relay_run(&r, relay_monotonic_msec() + 5000, &status));
    EXPECT_EQ(status, 128 + SIGTERM);
}

// A lost pidfd (POLLNVAL) is an error, not a loop: the caller kills the payload.
TEST_F(RelayTest, ReportsALostPidfd) {
    block_signals();
    Relay r;
    r.pidfd = closed_fd();
    r.signal_fd = signal_fd_;
    r.buf = buf_;
    r.buf_size = sizeof buf_;
    int status = -1;
    EXPECT_EQ(relay_run(&r, relay_monotonic_msec() + 2000, &status), -EBADF);
    ASSERT_NE(r.failed_step, nullptr);
}

TEST(ChildFd, ClosesItsFdAndLeavesErrnoAsTheFailedStepSetIt) {
    int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    {
        ChildFd owned(fd);
        errno = ELOOP;
    }
    EXPECT_EQ(errno, ELOOP);
    EXPECT_EQ(::fcntl(fd, F_GETFD), -1) << "not closed";
    ChildFd moved(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    int kept = moved.get();
    ChildFd taker(std::move(moved));
    EXPECT_EQ(taker.get(), kept);
    taker.reset();
    EXPECT_EQ(::fcntl(kept, F_GETFD), -1);
}

}  // namespace
}  // namespace berth::runtime
