#include "basic/fs-util.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>

#include "basic/chase.h"
#include "basic/fs-private.h"
#include "basic/io-util.h"

namespace berth {

Result<std::string> read_file(const std::string& path) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return fail_errno("open '{}'", path);
    return read_all(fd.get(), fmt::format("'{}'", path));
}

Result<> write_file(const std::string& path, std::string_view content, int flags, mode_t mode) {
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC | (flags ? flags : (O_CREAT | O_TRUNC)), mode));
    if (!fd) return fail_errno("open '{}'", path);
    return write_all(fd.get(), content, fmt::format("'{}'", path));
}

Result<> fsync_directory(const std::string& path) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd) return fail_errno("open directory '{}'", path);
    if (::fsync(fd.get()) < 0) return fail_errno("fsync directory '{}'", path);
    return {};
}

static std::string dirname_of(const std::string& path) {
    auto slash = path.rfind('/');
    if (slash == std::string::npos) return ".";
    if (slash == 0) return "/";
    return path.substr(0, slash);
}

Result<> write_file_atomic(const std::string& path, std::string_view content, mode_t mode) {
    std::string tmp = path + ".tmp-XXXXXX";
    UniqueFd fd(::mkostemp(tmp.data(), O_CLOEXEC));
    if (!fd) return fail_errno("create temporary file for '{}'", path);
    ScopeExit unlink_tmp([&] { ::unlink(tmp.c_str()); });
    BERTH_TRY_VOID(write_all(fd.get(), content, fmt::format("'{}'", tmp)));
    if (::fchmod(fd.get(), mode) < 0) return fail_errno("chmod '{}'", tmp);
    if (::fsync(fd.get()) < 0) return fail_errno("fsync '{}'", tmp);
    if (::rename(tmp.c_str(), path.c_str()) < 0) return fail_errno("rename '{}' to '{}'", tmp, path);
    unlink_tmp.dismiss();
    return fsync_directory(dirname_of(path));
}

Result<> mkdir_p(const std::string& path, mode_t mode) {
    if (path.empty()) return fail(EINVAL, "mkdir: empty path");
    // The path itself first, its parents only if it has none (as systemd's mkdir_p): where the
    // directory or its parent exists, as for every link the generator makes, that is one call
    // instead of one per component.
    if (::mkdir(path.c_str(), mode) < 0) {
        if (errno == ENOENT) {
            size_t end = path.find_last_not_of('/');
            size_t slash = end == std::string::npos ? std::string::npos : path.rfind('/', end);
            if (slash != std::string::npos && slash > 0) BERTH_TRY_VOID(mkdir_p(path.substr(0, slash), mode));
            if (::mkdir(path.c_str(), mode) < 0 && errno != EEXIST) return fail_errno("mkdir '{}'", path);
        } else if (errno != EEXIST) {
            return fail_errno("mkdir '{}'", path);
        }
    }
    if (!is_directory(path)) return fail(ENOTDIR, "'{}' exists and is not a directory", path);
    return {};
}

// Removes everything below dirfd (same st_dev only), then returns.
static Result<> remove_children(int dirfd, dev_t dev, const std::string& where) {
    int dup = ::fcntl(dirfd, F_DUPFD_CLOEXEC, 3);
    if (dup < 0) return fail_errno("dup '{}'", where);
    DIR* dir = ::fdopendir(dup);
    if (!dir) {
        ::close(dup);
        return fail_errno("opendir '{}'", where);
    }
    CPtr<DIR, ::closedir> guard(dir);
    while (struct dirent* entry = ::readdir(dir)) {
        std::string_view name = entry->d_name;
        if (name == "." || name == "..") continue;
        struct stat st {};
        if (::fstatat(dirfd, entry->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
            if (errno == ENOENT) continue;
            return fail_errno("stat '{}/{}'", where, name);
        }
        if (S_ISDIR(st.st_mode)) {
            if (st.st_dev != dev) return fail(EBUSY, "'{}/{}' is a mount point; not removing", where, name);
            UniqueFd child(::openat(dirfd, entry->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
            if (!child) return fail_errno("open '{}/{}'", where, name);
            BERTH_TRY_VOID(remove_children(child.get(), dev, fmt::format("{}/{}", where, name)));
            if (::unlinkat(dirfd, entry->d_name, AT_REMOVEDIR) < 0 && errno != ENOENT)
                return fail_errno("rmdir '{}/{}'", where, name);
        } else if (::unlinkat(dirfd, entry->d_name, 0) < 0 && errno != ENOENT) {
            return fail_errno("unlink '{}/{}'", where, name);
        }
    }
    return {};
}

Result<> remove_tree(const std::string& path) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) < 0) {
        if (errno == ENOENT) return {};
        return fail_errno("stat '{}'", path);
    }
    if (!S_ISDIR(st.st_mode)) {
        if (::unlink(path.c_str()) < 0 && errno != ENOENT) return fail_errno("unlink '{}'", path);
        return {};
    }
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd) return fail_errno("open '{}'", path);
    BERTH_TRY_VOID(remove_children(fd.get(), st.st_dev, path));
    if (::rmdir(path.c_str()) < 0 && errno != ENOENT) return fail_errno("rmdir '{}'", path);
    return {};
}

std::string normalize_absolute_path(std::string_view path) {
    if (path.empty() || path[0] != '/') return {};
    std::vector<std::string_view> parts;
    size_t i = 0;
    while (i < path.size()) {
        while (i < path.size() && path[i] == '/') ++i;
        size_t j = path.find('/', i);
        if (j == std::string_view::npos) j = path.size();
        std::string_view part = path.substr(i, j - i);
        if (part == "..") {
            if (!parts.empty()) parts.pop_back();
        } else if (!part.empty() && part != ".") {
            parts.push_back(part);
        }
        i = j;
    }
    std::string out;
    for (auto part : parts) {
        out += '/';
        out += part;
    }
    return out.empty() ? "/" : out;
}

std::string path_join(std::string_view a, std::string_view b) {
    while (!a.empty() && a.back() == '/') a.remove_suffix(1);
    while (!b.empty() && b.front() == '/') b.remove_prefix(1);
    std::string out(a);
    out += '/';
    out += b;
    return out;
}

std::pair<std::string, std::string> split_parent(std::string_view path) {
    std::string p = normalize_absolute_path(path);
    size_t slash = p.rfind('/');
    if (p.size() <= 1 || slash == std::string::npos) return {};
    return {slash == 0 ? "/" : p.substr(0, slash), p.substr(slash + 1)};
}

bool path_exists(const std::string& path) {
    struct stat st {};
    return ::lstat(path.c_str(), &st) == 0;
}

bool is_directory(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

Result<UniqueFd> open_path(const std::string& path, int extra_flags) {
    UniqueFd fd(::open(path.c_str(), O_PATH | O_CLOEXEC | extra_flags));
    if (!fd) return fail_errno("open '{}'", path);
    return fd;
}

Result<UniqueFd> open_in_root(int root_fd, const std::string& path, int flags, mode_t mode) {
    int fd = chase_raw(root_fd, path.c_str(), flags, Resolve::InRoot | Resolve::NoMagicLinks, mode);
    if (fd < 0) return fail_errno("open '{}' inside root", path);
    return UniqueFd(fd);
}

std::string fd_path(int fd) { return fmt::format("/proc/self/fd/{}", fd); }

std::string executable_or_empty(const std::string& path) {
    return !path.empty() && ::access(path.c_str(), X_OK) == 0 ? path : std::string();
}

std::string self_executable_dir() {
    char self[4096];
    ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) return {};
    std::string dir(self, static_cast<size_t>(n));
    dir.erase(dir.rfind('/') + 1);
    return dir;
}

std::string_view file_kind(mode_t mode) {
    switch (mode & S_IFMT) {
        case S_IFREG:
            return "a regular file";
        case S_IFDIR:
            return "a directory";
        case S_IFIFO:
            return "a FIFO";
        case S_IFCHR:
            return "a character device";
        case S_IFBLK:
            return "a block device";
        case S_IFSOCK:
            return "a socket";
        case S_IFLNK:
            return "a symbolic link";
        default:
            return "not a regular file";
    }
}

Result<std::string> read_regular_file(const std::string& path, size_t max_size) {
    // O_NONBLOCK: opening a FIFO waits for a writer otherwise. O_NOCTTY: a tty must not become
    // our controlling terminal just because someone pointed a path at it.
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
    if (!fd) return fail_errno("open '{}'", path);
    struct stat st {};
    if (::fstat(fd.get(), &st) < 0) return fail_errno("stat '{}'", path);
    if (!S_ISREG(st.st_mode))
        return fail(EINVAL, "'{}' is {}, not a regular file", path, file_kind(st.st_mode));
    if (static_cast<uint64_t>(st.st_size) > max_size)
        return fail(EFBIG, "'{}' is larger than {} bytes ({} bytes)", path, max_size, st.st_size);
    return read_all(fd.get(), fmt::format("'{}'", path), max_size);  // it may have grown since the fstat()
}

Result<> make_private_directory(const std::string& path, mode_t mode) {
    if (path.empty()) return fail(EINVAL, "mkdir: empty path");
    std::string parent = dirname_of(path);
    if (parent != "/" && parent != ".") BERTH_TRY_VOID(mkdir_p(parent, 0755));
    if (::mkdir(path.c_str(), mode) < 0 && errno != EEXIST) return fail_errno("mkdir '{}'", path);
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd) return fail_errno("open directory '{}'", path);
    struct stat st {};
    if (::fstat(fd.get(), &st) < 0) return fail_errno("stat '{}'", path);
    if (st.st_uid != ::geteuid())
        return fail(EPERM, "'{}' belongs to uid {}, not to uid {}: refusing to keep private files there",
                    path, st.st_uid, ::geteuid());
    if ((st.st_mode & 07777) != mode && ::fchmod(fd.get(), mode) < 0)
        return fail_errno("chmod '{}' to {:04o}", path, mode);
    return {};
}

}  // namespace berth
