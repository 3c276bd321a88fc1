// 50 containers starting at once on one network: 50 processes call acquire_address() on the same
// lease directory, released together from a barrier, on a range of exactly 50 addresses. Without
// the lock two of them read the same leases and pick the same address (or one finds the range
// "full"); with it every address is handed out exactly once.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <set>

#include "basic/string-util.h"
#include "network/ipam.h"
#include "test-util.h"

using namespace berth;
using namespace berth::network;

TEST(IpamConcurrency, FiftyContainersStartingAtOnceGetDistinctAddresses) {
    test::TempDir tmp("berth-ipam");
    config::NetworkDeclaration decl;
    decl.name = fmt::format("app{}", ::getpid());
    decl.subnets = {"10.89.7.0/24"};
    decl.range = "10.89.7.2-10.89.7.51";
    auto pool = pool_of(decl);
    ASSERT_TRUE(pool) << pool.error().what();
    const std::string dir = tmp / "networks/app";
    constexpr int kContainers = 50;

    int barrier[2], results[2];
    ASSERT_EQ(::pipe2(barrier, O_CLOEXEC), 0);
    ASSERT_EQ(::pipe2(results, O_CLOEXEC), 0);
    std::vector<pid_t> children;
    for (int i = 0; i < kContainers; ++i) {
        pid_t pid = ::fork();
        ASSERT_GE(pid, 0);
        if (pid == 0) {
            ::close(barrier[1]);
            char c;
            (void)!::read(barrier[0], &c, 1);  // EOF: everyone goes at once
            auto a = acquire_address(*pool, dir, fmt::format("c{}", i), "");
            std::string line = a ? fmt::format("{} {}\n", i, format_ipv4(a->address))
                                 : fmt::format("{} error {}\n", i, a.error().what());
            (void)!::write(results[1], line.data(), line.size());  // < PIPE_BUF: atomic
            ::_exit(a ? 0 : 1);
        }
        children.push_back(pid);
    }
    ::close(barrier[0]);
    ::close(results[1]);
    ::close(barrier[1]);  // go
    std::string out;
    char buf[4096];
    for (ssize_t n; (n = ::read(results[0], buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
    ::close(results[0]);
    for (pid_t pid : children) {
        int status = 0;
        ASSERT_EQ(::waitpid(pid, &status, 0), pid);
        EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << out;
    }
    std::set<std::string> addresses;
    auto lines = split(out, '\n');
    ASSERT_EQ(lines.size(), static_cast<size_t>(kContainers)) << out;
    for (const auto& line : lines) {
        auto fields = split(line, ' ');
        ASSERT_EQ(fields.size(), 2u) << line;
        EXPECT_TRUE(addresses.insert(fields[1]).second) << fields[1] << " handed out twice:\n" << out;
    }
    EXPECT_EQ(addresses.size(), static_cast<size_t>(kContainers));
    auto leases = read_leases(dir);
    ASSERT_TRUE(leases) << leases.error().what();
    EXPECT_EQ(leases->size(), static_cast<size_t>(kContainers));
}
