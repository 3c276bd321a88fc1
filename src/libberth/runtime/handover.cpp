#include "runtime/handover.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <vector>

#include "basic/fs-util.h"
#include "basic/unique.h"
#include "bus/storage-client.h"
#include "runtime/cgroup.h"
#include "runtime/network-seam.h"
#include "runtime/paths.h"
#include "runtime/state.h"
#include "runtime/supervise-protocol.h"

namespace berth::runtime {

namespace {

Error errno_error(std::string message) {
    int saved = errno;
    return Error{saved > 0 ? saved : EIO, std::move(message)};
}

// True if the executable at `fd` carries our protocol string: a berth-supervise from another build
// (a stale install next to a new berth) would misread its argv and lose the container, so it is
// never started; the caller supervises in-process instead.
bool speaks_our_protocol(int fd) {
    struct stat st {};
    if (::fstat(fd, &st) < 0 || st.st_size <= 0 || st.st_size > (64 << 20)) return false;
    size_t size = static_cast<size_t>(st.st_size);
    void* map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) return false;
    bool found = ::memmem(map, size, kSuperviseProtocol, std::strlen(kSuperviseProtocol) + 1) != nullptr;
    ::munmap(map, size);
    return found;
}

}  // namespace

Error hand_over_supervision(const std::string& supervisor_exe, const std::string& teardown_exe,
                            const std::string& name, int stop_signal, int stop_requests,
                            const HandoverFds& fds, const std::string& health) {
    if (::access(supervisor_exe.c_str(), X_OK) < 0) return errno_error(fmt::format("'{}'", supervisor_exe));
    {
        UniqueFd exe(::open(supervisor_exe.c_str(), O_RDONLY | O_CLOEXEC));
        if (!exe) return errno_error(fmt::format("open '{}'", supervisor_exe));
        if (!speaks_our_protocol(exe.get()))
            return Error{EPROTO, fmt::format("'{}' does not speak {} (from another build?)", supervisor_exe,
                                             kSuperviseProtocol)};
    }
    // An fd, not a path: the teardown runs the very binary that started the container, even if a
    // package upgrade replaced the file meanwhile.
    UniqueFd teardown(::open(teardown_exe.c_str(), O_PATH | O_CLOEXEC));
    if (!teardown) return errno_error(fmt::format("open '{}'", teardown_exe));

    struct Passed {
        int fd;
        int flags;
    };
    std::vector<Passed> passed;
    for (int fd : {fds.pidfd, fds.signal_fd, fds.pty_master, fds.notify_socket, fds.lock_fd, teardown.get()})
        if (fd >= 0) passed.push_back({fd, ::fcntl(fd, F_GETFD)});
    for (const auto& p : passed) ::fcntl(p.fd, F_SETFD, p.flags & ~FD_CLOEXEC);

    std::vector<std::string> args(kSuperviseArgc);
    args[0] = supervisor_exe;
    args[kArgProtocol] = kSuperviseProtocol;
    args[kArgName] = name;
    args[kArgPidfd] = std::to_string(fds.pidfd);
    args[kArgSignalFd] = std::to_string(fds.signal_fd);
    args[kArgPtyMaster] = std::to_string(fds.pty_master);
    args[kArgNotifySocket] = std::to_string(fds.notify_socket);
    args[kArgStopSignal] = std::to_string(stop_signal);
    args[kArgStopRequests] = std::to_string(stop_requests);
    args[kArgLockFd] = std::to_string(fds.lock_fd);
    args[kArgTeardownExe] = std::to_string(teardown.get());
    args[kArgHealth] = health;
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);

    // What we printed must not be lost with our stdio buffers.
    std::fflush(nullptr);
    ::execve(supervisor_exe.c_str(), argv.data(), environ);
    Error error = errno_error(fmt::format("execute '{}'", supervisor_exe));
    for (const auto& p : passed) ::fcntl(p.fd, F_SETFD, p.flags);
    return error;
}

Result<int> teardown_handed_over(const std::string& name, int status, int lock_fd) {
    const std::string lock_path = path_join(containers_run_dir(), name + ".lock");
    struct stat held {
    }, on_disk{};
    if (lock_fd < 0 || ::fstat(lock_fd, &held) < 0 || ::stat(lock_path.c_str(), &on_disk) < 0 ||
        held.st_dev != on_disk.st_dev || held.st_ino != on_disk.st_ino)
        return fail(EBADF, "container '{}': fd {} is not its lock '{}' (internal command of berth-supervise)",
                    name, lock_fd, lock_path);
    // Succeeds on the lock we inherited; fails while another process (a live supervisor) holds it.
    if (::flock(lock_fd, LOCK_EX | LOCK_NB) < 0)
        return fail(EBUSY, "container '{}': lock '{}' is held by another process", name, lock_path);
    // Held until we exit, by us alone: nothing the teardown might start inherits it.
    ::fcntl(lock_fd, F_SETFD, FD_CLOEXEC);

    const std::string path = state_file_path(name);
    auto text = read_file(path);
    Result<RuntimeState> st =
        text ? state_from_json(*text, path) : Result<RuntimeState>(Unexpected(text.error()));
    Result<> result;
    if (st) {
        // The order of run_container()'s own teardown: cgroup, network, state, notify socket,
        // snapshot, lock.
        const Teardown& t = st->teardown;
        auto cgroup = ContainerCgroup::adopt(st->cgroup, t.cgroup_remove, t.cgroup_prune);
        result = with_context(cgroup.destroy(), "cgroup");
        if (t.network) (void)detach_network(name, *t.network);
        remove_state(name);
        if (!t.notify_socket.empty()) ::unlink(t.notify_socket.c_str());
        if (t.snapshot) {
            config::Declaration decl;
            decl.name = name;
            bus::StorageSession storage;
            (void)bus::release_container_snapshot(storage, decl);
        }
    } else {
        result = Unexpected(st.error().wrap("read runtime state"));
    }
    ::unlink(lock_path.c_str());
    if (!result) return fail(result.error().wrap(fmt::format("container '{}'", name)));
    return status;
}

}  // namespace berth::runtime
