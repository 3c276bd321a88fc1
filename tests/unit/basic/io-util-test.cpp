#include "basic/io-util.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/time.h>
#include <unistd.h>

#include <string>
#include <thread>

#include "basic/unique.h"

using namespace berth;

namespace {

struct Pipe {
    UniqueFd r, w;
    explicit Pipe(int flags = 0) {
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC | flags) == 0) {
            r.reset(fds[0]);
            w.reset(fds[1]);
        }
    }
};

std::string pattern(size_t n) {
    std::string s(n, '\0');
    for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7) % 26);
    return s;
}

void on_alarm(int) {}

// Delivers SIGALRM every 200 us without SA_RESTART, so blocking read()/write() return EINTR.
struct Interrupter {
    struct sigaction old {};
    Interrupter() {
        struct sigaction sa {};
        sa.sa_handler = on_alarm;
        ::sigaction(SIGALRM, &sa, &old);
        struct itimerval it {
            {0, 200}, { 0, 200 }
        };
        ::setitimer(ITIMER_REAL, &it, nullptr);
    }
    ~Interrupter() {
        struct itimerval off {};
        ::setitimer(ITIMER_REAL, &off, nullptr);
        ::sigaction(SIGALRM, &old, nullptr);
    }
};

}  // namespace

TEST(IoUtil, WriteAllAndReadAllMoveEveryByteThroughAPipeDespiteShortWritesAndSignals) {
    // 4 MiB through a 64 KiB pipe: every write() is short, and the timer interrupts both sides.
    Pipe p;
    ASSERT_TRUE(p.r);
    const std::string data = pattern(4 << 20);
    std::string got(data.size(), '\0');
    ssize_t n = -1;
    {
        Interrupter interrupt;
        std::thread reader([&] { n = read_all_raw(p.r.get(), got.data(), got.size()); });
        int w = write_all_raw(p.w.get(), data.data(), data.size());
        p.w.reset();
        reader.join();
        EXPECT_EQ(w, 0);
    }
    EXPECT_EQ(n, static_cast<ssize_t>(data.size()));
    EXPECT_TRUE(got == data);
}

TEST(IoUtil, ReadAllRawReturnsAShortCountAtEndOfFile) {
    Pipe p;
    ASSERT_EQ(write_all_raw(p.w.get(), "hello", 5), 0);
    p.w.reset();
    char buf[16];
    EXPECT_EQ(read_all_raw(p.r.get(), buf, sizeof buf), 5);
    EXPECT_EQ(std::string(buf, 5), "hello");
}

TEST(IoUtil, ANonBlockingFdFailsWithEagainUnlessAskedToWait) {
    Pipe p(O_NONBLOCK);
    const std::string data = pattern(1 << 20);  // more than the pipe holds
    EXPECT_EQ(write_all_raw(p.w.get(), data.data(), data.size()), -EAGAIN);

    Pipe q(O_NONBLOCK);
    std::string got;
    std::thread reader([&] {
        int fl = ::fcntl(q.r.get(), F_GETFL);
        ::fcntl(q.r.get(), F_SETFL, fl & ~O_NONBLOCK);
        got = read_all(q.r.get(), "pipe").value_or("");
    });
    EXPECT_EQ(write_all_raw(q.w.get(), data.data(), data.size(), WaitWhenBlocked::Yes), 0);
    q.w.reset();
    reader.join();
    EXPECT_TRUE(got == data);
}

TEST(IoUtil, WriteAllReportsTheErrnoAndNamesTheTarget) {
    Pipe p;
    p.r.reset();
    struct sigaction ign {
    }, old{};
    ign.sa_handler = SIG_IGN;
    ::sigaction(SIGPIPE, &ign, &old);
    auto r = write_all(p.w.get(), "x", "'the pipe'");
    ::sigaction(SIGPIPE, &old, nullptr);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, EPIPE);
    EXPECT_EQ(r.error().what(), "write 'the pipe': Broken pipe");
}

TEST(IoUtil, ReadAllRefusesMoreThanTheLimit) {
    Pipe p;
    ASSERT_EQ(write_all_raw(p.w.get(), "0123456789", 10), 0);
    p.w.reset();
    auto r = read_all(p.r.get(), "'f'", 4);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, EFBIG);
    EXPECT_EQ(r.error().what(), "'f' is larger than 4 bytes: File too large");
}
