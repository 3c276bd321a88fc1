#include "store/loop.h"

#include <fcntl.h>
#include <linux/loop.h>
#include <spawn.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include "basic/process-util.h"

extern char** environ;

namespace berth::store {

Result<LoopDevice> attach_loop(const std::string& file, bool read_only) {
    UniqueFd backing(::open(file.c_str(), (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC));
    if (!backing) return fail_errno("open '{}'", file);
    UniqueFd control(::open("/dev/loop-control", O_RDWR | O_CLOEXEC));
    if (!control) return fail_errno("open /dev/loop-control");
    for (int attempt = 0; attempt < 64; ++attempt) {
        int n = ::ioctl(control.get(), LOOP_CTL_GET_FREE);
        if (n < 0) return fail_errno("find a free loop device");
        std::string path = "/dev/loop" + std::to_string(n);
        UniqueFd dev(::open(path.c_str(), (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC));
        if (!dev) {
            if (errno == ENOENT) {  // no devtmpfs node yet (containers): make one
                ::mknod(path.c_str(), S_IFBLK | 0660, makedev(7, static_cast<unsigned>(n)));
                dev.reset(::open(path.c_str(), (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC));
            }
            if (!dev) return fail_errno("open '{}'", path);
        }
        struct loop_config cfg {};
        cfg.fd = static_cast<uint32_t>(backing.get());
        cfg.info.lo_flags = LO_FLAGS_AUTOCLEAR | (read_only ? LO_FLAGS_READ_ONLY : 0);
        std::strncpy(reinterpret_cast<char*>(cfg.info.lo_file_name), file.c_str(), LO_NAME_SIZE - 1);
        if (::ioctl(dev.get(), LOOP_CONFIGURE, &cfg) < 0) {
            if (errno == EBUSY) continue;  // raced with another user of the same device
            return fail_errno("attach '{}' to '{}'", file, path);
        }
        return LoopDevice{path, std::move(dev)};
    }
    return fail(EBUSY, "no free loop device for '{}'", file);
}

Result<> create_sparse_file(const std::string& path, uint64_t size) {
    UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (!fd) return fail_errno("create '{}'", path);
    if (::ftruncate(fd.get(), static_cast<off_t>(size)) < 0) {
        int e = errno;
        ::unlink(path.c_str());
        return fail(e, "size '{}': {}", path, strerror(e));
    }
    return {};
}

Result<> make_btrfs(const std::string& device, const std::string& label) {
    const char* argv[] = {"mkfs.btrfs", "-q", "-f", "-L", label.c_str(), device.c_str(), nullptr};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    pid_t pid = 0;
    int r = ::posix_spawnp(&pid, "mkfs.btrfs", &fa, nullptr, const_cast<char**>(argv), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (r != 0) return fail(r, "run mkfs.btrfs (apt-get install btrfs-progs)");
    int status = BERTH_TRY(wait_for_pid(pid, "mkfs.btrfs"));
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return fail(EIO, "mkfs.btrfs '{}' failed (status {})", device, status);
    return {};
}

Result<> mount_btrfs(const std::string& device, const std::string& target) {
    if (::mount(device.c_str(), target.c_str(), "btrfs", MS_NOATIME, nullptr) < 0)
        return fail_errno("mount btrfs '{}' at '{}'", device, target);
    return {};
}

}  // namespace berth::store
