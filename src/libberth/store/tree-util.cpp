#include "store/tree-util.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <map>
#include <set>

#include "basic/fs-util.h"
#include "basic/unique.h"
#include "store/backend.h"

namespace berth::store {

std::vector<std::string> list_dir(const std::string& path) {
    std::vector<std::string> out;
    DIR* d = ::opendir(path.c_str());
    if (!d) return out;
    CPtr<DIR, ::closedir> guard(d);
    while (auto* e = ::readdir(d)) {
        std::string_view n = e->d_name;
        if (n != "." && n != "..") out.emplace_back(n);
    }
    return out;
}

Result<> sync_filesystem(const std::string& path) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd) return fail_errno("open '{}'", path);
    if (::syncfs(fd.get()) < 0) return fail_errno("sync the filesystem of '{}'", path);
    return {};
}

std::string random_token() {
    uint64_t v = 0;
    if (::getrandom(&v, sizeof v, 0) != sizeof v)
        v = static_cast<uint64_t>(::getpid()) * 2654435761u ^ static_cast<uint64_t>(::time(nullptr));
    return fmt::format("{:016x}", v);
}

void for_each_entry(int dirfd,
                    const std::function<void(int dir, const char* name, const struct stat& st)>& fn) {
    DIR* d = ::fdopendir(dirfd);
    if (!d) {
        ::close(dirfd);
        return;
    }
    CPtr<DIR, ::closedir> guard(d);
    while (auto* e = ::readdir(d)) {
        std::string_view n = e->d_name;
        if (n == "." || n == "..") continue;
        struct stat st {};
        if (::fstatat(::dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) continue;
        fn(::dirfd(d), e->d_name, st);
    }
}

static void du_walk(int dirfd, dev_t dev, std::set<std::pair<dev_t, ino_t>>& seen, uint64_t& total) {
    for_each_entry(dirfd, [&](int dir, const char* name, const struct stat& st) {
        if (st.st_nlink > 1 && !S_ISDIR(st.st_mode) && !seen.insert({st.st_dev, st.st_ino}).second) return;
        total += static_cast<uint64_t>(st.st_blocks) * 512;
        if (S_ISDIR(st.st_mode) && st.st_dev == dev) {
            int fd = ::openat(dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (fd >= 0) du_walk(fd, dev, seen, total);
        }
    });
}

Result<> remove_unknown_entries(const std::string& dir, const std::set<std::string>& known,
                                const std::function<Result<>(const std::string& path)>& remove,
                                std::vector<std::string>& removed) {
    for (const auto& n : list_dir(dir)) {
        if (known.count(n)) continue;
        BERTH_TRY_VOID(remove(dir + "/" + n));
        removed.push_back(n);
    }
    return {};
}

Result<PoolUsage> filesystem_usage(const std::string& path) {
    struct statvfs sv {};
    if (::statvfs(path.c_str(), &sv) < 0) return fail_errno("statvfs '{}'", path);
    PoolUsage u;
    u.data_total = static_cast<uint64_t>(sv.f_blocks) * sv.f_frsize;
    u.data_used = static_cast<uint64_t>(sv.f_blocks - sv.f_bfree) * sv.f_frsize;
    return u;
}

uint64_t disk_usage(const std::string& path) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) < 0) return 0;
    uint64_t total = static_cast<uint64_t>(st.st_blocks) * 512;
    if (!S_ISDIR(st.st_mode)) return total;
    int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return total;
    std::set<std::pair<dev_t, ino_t>> seen;
    du_walk(fd, st.st_dev, seen, total);
    return total;
}

static Result<> copy_xattrs(int src, int dst) {
    char names[65536];
    ssize_t len = ::flistxattr(src, names, sizeof names);
    if (len < 0) return (errno == ENOTSUP || errno == EOPNOTSUPP) ? Result<>{} : fail_errno("list xattrs");
    std::vector<char> value(65536);
    for (ssize_t i = 0; i < len; i += static_cast<ssize_t>(strlen(names + i)) + 1) {
        // Overlay's private bookkeeping (origin, impure, ...) describes the old mount; only the
        // opaque marker is part of a layer's meaning.
        std::string_view xn = names + i;
        if (xn.rfind("trusted.overlay.", 0) == 0 && xn != "trusted.overlay.opaque") continue;
        ssize_t v = ::fgetxattr(src, names + i, value.data(), value.size());
        if (v < 0) continue;
        if (::fsetxattr(dst, names + i, value.data(), static_cast<size_t>(v), 0) < 0 && errno != ENOTSUP)
            return fail_errno("set xattr '{}'", names + i);
    }
    return {};
}

static Result<> set_meta(int dirfd, const char* name, const struct stat& st, bool is_link) {
    if (::fchownat(dirfd, name, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) < 0)
        return fail_errno("chown '{}'", name);
    if (!is_link && ::fchmodat(dirfd, name, st.st_mode & 07777, 0) < 0) return fail_errno("chmod '{}'", name);
    struct timespec ts[2] = {st.st_atim, st.st_mtim};
    if (::utimensat(dirfd, name, ts, AT_SYMLINK_NOFOLLOW) < 0) return fail_errno("utimes '{}'", name);
    return {};
}

static Result<> copy_dir(int src, int dst,
                         std::map<std::pair<dev_t, ino_t>, std::pair<int, std::string>>& links,
                         const std::string& where) {
    DIR* d = ::fdopendir(::fcntl(src, F_DUPFD_CLOEXEC, 3));
    if (!d) return fail_errno("opendir '{}'", where);
    CPtr<DIR, ::closedir> guard(d);
    while (auto* e = ::readdir(d)) {
        std::string_view n = e->d_name;
        if (n == "." || n == "..") continue;
        std::string rel = where + "/" + e->d_name;
        struct stat st {};
        if (::fstatat(src, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) return fail_errno("stat '{}'", rel);
        if (!S_ISDIR(st.st_mode) && st.st_nlink > 1) {
            auto it = links.find({st.st_dev, st.st_ino});
            if (it != links.end()) {
                if (::linkat(AT_FDCWD, it->second.second.c_str(), dst, e->d_name, 0) < 0)
                    return fail_errno("link '{}'", rel);
                continue;
            }
        }
        if (S_ISDIR(st.st_mode)) {
            if (::mkdirat(dst, e->d_name, 0700) < 0) return fail_errno("mkdir '{}'", rel);
            UniqueFd s(::openat(src, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
            UniqueFd t(::openat(dst, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
            if (!s || !t) return fail_errno("open '{}'", rel);
            BERTH_TRY_VOID(copy_dir(s.get(), t.get(), links, rel));
            BERTH_TRY_VOID(copy_xattrs(s.get(), t.get()));
        } else if (S_ISREG(st.st_mode)) {
            UniqueFd s(::openat(src, e->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
            UniqueFd t(::openat(dst, e->d_name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
            if (!s || !t) return fail_errno("open '{}'", rel);
            off_t left = st.st_size;
            while (left > 0) {
                ssize_t c =
                    ::copy_file_range(s.get(), nullptr, t.get(), nullptr, static_cast<size_t>(left), 0);
                if (c < 0 && errno == EINTR) continue;
                if (c < 0) return fail_errno("copy '{}'", rel);
                if (c == 0) break;
                left -= c;
            }
            BERTH_TRY_VOID(copy_xattrs(s.get(), t.get()));
        } else if (S_ISLNK(st.st_mode)) {
            std::string target(static_cast<size_t>(st.st_size) + 1, '\0');
            ssize_t l = ::readlinkat(src, e->d_name, target.data(), target.size());
            if (l < 0) return fail_errno("readlink '{}'", rel);
            target.resize(static_cast<size_t>(l));
            if (::symlinkat(target.c_str(), dst, e->d_name) < 0) return fail_errno("symlink '{}'", rel);
        } else {
            if (::mknodat(dst, e->d_name, st.st_mode, st.st_rdev) < 0) return fail_errno("mknod '{}'", rel);
        }
        BERTH_TRY_VOID(set_meta(dst, e->d_name, st, S_ISLNK(st.st_mode)));
        if (!S_ISDIR(st.st_mode) && st.st_nlink > 1)
            links[{st.st_dev, st.st_ino}] = {0, fmt::format("/proc/self/fd/{}/{}", dst, e->d_name)};
    }
    return {};
}

Result<> copy_tree(const std::string& src, const std::string& dst) {
    UniqueFd s(::open(src.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!s) return fail_errno("open '{}'", src);
    UniqueFd t(::open(dst.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!t) return fail_errno("open '{}'", dst);
    std::map<std::pair<dev_t, ino_t>, std::pair<int, std::string>> links;
    BERTH_TRY_VOID(copy_dir(s.get(), t.get(), links, src));
    BERTH_TRY_VOID(copy_xattrs(s.get(), t.get()));
    struct stat st {};
    if (::fstat(s.get(), &st) < 0) return fail_errno("stat '{}'", src);
    if (::fchown(t.get(), st.st_uid, st.st_gid) < 0 || ::fchmod(t.get(), st.st_mode & 07777) < 0)
        return fail_errno("set owner of '{}'", dst);
    struct timespec ts[2] = {st.st_atim, st.st_mtim};
    (void)::futimens(t.get(), ts);
    return {};
}

Result<> unmount_if_mounted(const std::string& path) {
    for (int i = 0; i < 16 && is_mount_point(path); ++i) {
        if (::umount2(path.c_str(), MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
            return fail_errno("unmount '{}'", path);
    }
    return {};
}

}  // namespace berth::store
