// order_listen_fds(): the payload gets its sockets in the declaration's order of names, whatever
// order systemd passed them in (a service's sockets come from a hash of its triggering units).
#include <gtest/gtest.h>

#include "runtime/secrets.h"

using namespace berth::runtime;

TEST(ListenFds, AreOrderedByTheDeclarationsSocketNames) {
    ListenFds l{{3, 4, 5}, "b:a:b"};
    order_listen_fds(l, {"a", "b"});
    EXPECT_EQ(l.fds, (std::vector<int>{4, 3, 5}));  // fds of one name keep systemd's order
    EXPECT_EQ(l.names, "a:b:b");
}

TEST(ListenFds, UnknownNamesGoLastAndAMismatchChangesNothing) {
    ListenFds l{{3, 4}, "other:a"};
    order_listen_fds(l, {"a"});
    EXPECT_EQ(l.fds, (std::vector<int>{4, 3}));
    EXPECT_EQ(l.names, "a:other");
    ListenFds m{{3, 4}, "b"};  // one name for two fds: not systemd's, left alone
    order_listen_fds(m, {"a", "b"});
    EXPECT_EQ(m.fds, (std::vector<int>{3, 4}));
    EXPECT_EQ(m.names, "b");
}
