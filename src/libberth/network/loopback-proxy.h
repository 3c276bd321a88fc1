// Published TCP ports on the host's ::1 (issue #20, systemd-nspawn issue 6106 class). IPv6 has no
// route_localnet: a connection to [::1]:PORT that nftables DNATs to a container is dropped, since
// its replies would have to come back to a loopback address from the bridge. So for exactly that
// case berth does what Docker's docker-proxy does: a userland proxy on the loopback only. The
// runtime binds [::1]:PORT itself (a bind error is reported at start, with the port) and hands the
// listening socket to systemd's own systemd-socket-proxyd as socket-activation fd 3, which
// connects each client to the container. Everything else (127.0.0.1, IPv4, other IPv6 addresses)
// stays on the kernel path, with the client's address preserved; connections via ::1 reach the
// container from the host's side of the link (the proxy's address).
//
// The proxy is a child of `berth run` (its cgroup: the unit's, so it dies with the unit), runs as
// user nobody with no_new_privs, dies with it (PR_SET_PDEATHSIG), and is recorded in the teardown record by
// pid and target, so that the teardown in another process image stops it through a pidfd, after checking that
// the pid is still that proxy (never a recycled pid).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>

#include "basic/result.h"

namespace berth::network {

inline constexpr const char* kSocketProxyd = "/lib/systemd/systemd-socket-proxyd";

struct LoopbackProxy {
    pid_t pid = 0;
    std::string target;  // "fd00::5:80" or "10.89.1.5:80": what it connects to (network.h)
};

// Binds [::1]:host_port (IPV6_V6ONLY) and starts systemd-socket-proxyd on it towards `target`.
Result<LoopbackProxy> start_loopback_proxy(uint16_t host_port, const std::string& target);

// SIGTERM (then SIGKILL) through a pidfd, when `proxy.pid` is still a systemd-socket-proxyd
// towards proxy.target; waits until it is gone. Safe when it is gone already.
Result<> stop_loopback_proxy(const LoopbackProxy& proxy);

}  // namespace berth::network
