#include "basic/process-util.h"

#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

namespace berth {

Result<int> wait_for_pid(pid_t pid, std::string_view what) {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return fail_errno("wait for {} (pid {})", what, pid);
    return status;
}

Result<UniqueFd> pidfd_open(pid_t pid) {
    int fd = pidfd_open_raw(pid);
    if (fd < 0) return fail_errno("open process {}", pid);
    return UniqueFd(fd);
}

}  // namespace berth
