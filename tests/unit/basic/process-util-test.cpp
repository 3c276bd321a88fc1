#include "basic/process-util.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "basic/program.h"

using namespace berth;

namespace {
void on_alarm(int) {}
}  // namespace

TEST(ProcessUtil, WaitForPidSurvivesSignalsAndReturnsTheStatus) {
    struct sigaction sa {
    }, old{};
    sa.sa_handler = on_alarm;  // no SA_RESTART: waitpid returns EINTR on every tick
    ::sigaction(SIGALRM, &sa, &old);
    struct itimerval it {
        {0, 1000}, { 0, 1000 }
    };
    ::setitimer(ITIMER_REAL, &it, nullptr);
    pid_t pid = ::fork();
    if (pid == 0) {
        ::usleep(50'000);
        ::_exit(3);
    }
    auto status = wait_for_pid(pid, "child");
    struct itimerval off {};
    ::setitimer(ITIMER_REAL, &off, nullptr);
    ::sigaction(SIGALRM, &old, nullptr);
    ASSERT_TRUE(status) << status.error().what();
    ASSERT_TRUE(WIFEXITED(*status));
    EXPECT_EQ(WEXITSTATUS(*status), 3);
    auto again = wait_for_pid(pid, "child");
    ASSERT_FALSE(again);
    EXPECT_EQ(again.error().code, ECHILD);
}

TEST(ProcessUtil, APidfdSignalsWaitsAndReportsShellStyleCodes) {
    pid_t pid = ::fork();
    if (pid == 0) {
        ::pause();
        ::_exit(0);
    }
    auto fd = pidfd_open(pid);
    ASSERT_TRUE(fd) << fd.error().what();
    siginfo_t info{};
    EXPECT_EQ(pidfd_wait_raw(fd->get(), &info, WEXITED | WNOHANG), 0);
    EXPECT_EQ(info.si_pid, 0) << "still running";
    EXPECT_EQ(pidfd_signal_raw(fd->get(), SIGKILL), 0);
    EXPECT_EQ(pidfd_wait_raw(fd->get(), &info, WEXITED), 0);
    EXPECT_EQ(info.si_pid, pid);
    EXPECT_EQ(exit_code_of(info), 128 + SIGKILL);
    EXPECT_EQ(pidfd_signal_raw(fd->get(), SIGTERM), -ESRCH);
    EXPECT_EQ(pidfd_wait_raw(fd->get(), &info, WEXITED), -ECHILD);
}

TEST(ProcessUtil, OpeningAProcessThatDoesNotExistFailsWithEsrch) {
    pid_t pid = ::fork();
    if (pid == 0) ::_exit(0);
    ASSERT_TRUE(wait_for_pid(pid, "child"));
    auto fd = pidfd_open(pid);  // reaped: the pid is free (and not reused this soon)
    ASSERT_FALSE(fd);
    EXPECT_EQ(fd.error().code, ESRCH);
}

// A program berth starts (dnsmasq for a network, nft...) begins with no signal blocked, whatever
// the caller blocked: `berth run` blocks the stop signals for the whole start (and reads them from
// a signalfd), and a dnsmasq started then inherited the mask across exec, so it never saw the
// SIGTERM of `berth network down` (stopped by SIGKILL after 5 s; and a killed test left it running).
TEST(ProcessUtil, RunProgramStartsTheProgramWithNoSignalBlocked) {
    sigset_t term, previous;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    sigaddset(&term, SIGINT);
    ::sigprocmask(SIG_BLOCK, &term, &previous);
    auto out = run_program({"grep", "^SigBlk:", "/proc/self/status"});
    ::sigprocmask(SIG_SETMASK, &previous, nullptr);
    ASSERT_TRUE(out) << out.error().what();
    EXPECT_EQ(*out, "SigBlk:\t0000000000000000\n");
}
