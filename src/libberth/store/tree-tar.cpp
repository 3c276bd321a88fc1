#include "store/tree-tar.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <vector>

#include "basic/fs-util.h"
#include "basic/io-util.h"
#include "basic/unique.h"
#include "store/digest.h"
#include "store/libarchive-dl.h"

namespace berth::store {
namespace {

struct Sink {
    int fd = -1;
    Sha256 hash;
    uint64_t size = 0;
    int error = 0;
};

la_ssize_t sink_write(struct archive*, void* data, const void* buf, size_t len) {
    auto* s = static_cast<Sink*>(data);
    if (int w = write_all_raw(s->fd, buf, len); w < 0) {
        s->error = -w;
        return -1;
    }
    s->hash.update(buf, len);
    s->size += len;
    return static_cast<la_ssize_t>(len);
}

std::vector<std::string> sorted_children(int dirfd) {
    std::vector<std::string> out;
    DIR* d = ::fdopendir(::fcntl(dirfd, F_DUPFD_CLOEXEC, 3));
    if (!d) return out;
    CPtr<DIR, ::closedir> guard(d);
    while (auto* e = ::readdir(d)) {
        std::string_view n = e->d_name;
        if (n != "." && n != "..") out.emplace_back(n);
    }
    std::sort(out.begin(), out.end());
    return out;
}

class TarWriter {
public:
    explicit TarWriter(int fd) {
        sink_.fd = fd;
        a_ = sym_archive_write_new();
        sym_archive_write_set_format_pax_restricted(a_);
        sym_archive_write_set_bytes_in_last_block(a_, 1);
        sym_archive_write_open(a_, &sink_, nullptr, sink_write, nullptr);
    }
    ~TarWriter() {
        if (a_) sym_archive_write_free(a_);
    }

    Result<> add(int dirfd, const std::string& name, const std::string& rel, const struct stat& st) {
        CPtr<struct archive_entry, free_archive_entry> e(sym_archive_entry_new());
        sym_archive_entry_set_pathname(e.get(), rel.c_str());
        sym_archive_entry_set_uid(e.get(), st.st_uid);
        sym_archive_entry_set_gid(e.get(), st.st_gid);
        sym_archive_entry_set_mtime(e.get(), st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
        sym_archive_entry_set_perm(e.get(), st.st_mode & 07777);
        UniqueFd data;
        if (!S_ISDIR(st.st_mode) && st.st_nlink > 1) {
            auto [it, fresh] = links_.emplace(std::make_pair(st.st_dev, st.st_ino), rel);
            if (!fresh) {
                sym_archive_entry_set_filetype(e.get(), AE_IFREG);
                sym_archive_entry_set_hardlink(e.get(), it->second.c_str());
                sym_archive_entry_set_size(e.get(), 0);
                return header(e.get(), rel);
            }
        }
        if (S_ISREG(st.st_mode)) {
            sym_archive_entry_set_filetype(e.get(), AE_IFREG);
            sym_archive_entry_set_size(e.get(), st.st_size);
            data.reset(::openat(dirfd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
            if (!data) return fail_errno("open '{}'", rel);
            add_xattrs(e.get(), data.get());
        } else if (S_ISDIR(st.st_mode)) {
            sym_archive_entry_set_filetype(e.get(), AE_IFDIR);
            UniqueFd d(::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
            if (d) add_xattrs(e.get(), d.get());
        } else if (S_ISLNK(st.st_mode)) {
            sym_archive_entry_set_filetype(e.get(), AE_IFLNK);
            std::string target(PATH_MAX, '\0');
            ssize_t n = ::readlinkat(dirfd, name.c_str(), target.data(), target.size() - 1);
            if (n < 0) return fail_errno("readlink '{}'", rel);
            target.resize(static_cast<size_t>(n));
            sym_archive_entry_set_symlink(e.get(), target.c_str());
        } else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
            sym_archive_entry_set_filetype(e.get(), S_ISCHR(st.st_mode) ? AE_IFCHR : AE_IFBLK);
            sym_archive_entry_set_rdev(e.get(), st.st_rdev);
        } else if (S_ISFIFO(st.st_mode)) {
            sym_archive_entry_set_filetype(e.get(), AE_IFIFO);
        } else {
            return {};  // sockets are not archived
        }
        BERTH_TRY_VOID(header(e.get(), rel));
        if (data) {
            std::vector<char> buf(1 << 20);
            int64_t left = st.st_size;
            while (left > 0) {
                ssize_t n =
                    ::read(data.get(), buf.data(), std::min<size_t>(buf.size(), static_cast<size_t>(left)));
                if (n < 0 && errno == EINTR) continue;
                if (n < 0) return fail_errno("read '{}'", rel);
                if (n == 0) {  // shrank while reading: pad to the announced size
                    std::fill(buf.begin(), buf.end(), 0);
                    n = static_cast<ssize_t>(std::min<int64_t>(left, static_cast<int64_t>(buf.size())));
                }
                if (sym_archive_write_data(a_, buf.data(), static_cast<size_t>(n)) < 0)
                    return fail(sink_.error ? sink_.error : EIO, "write '{}': {}", rel, err());
                left -= n;
            }
        }
        return {};
    }

    Result<> whiteout(const std::string& rel) {
        CPtr<struct archive_entry, free_archive_entry> e(sym_archive_entry_new());
        sym_archive_entry_set_pathname(e.get(), rel.c_str());
        sym_archive_entry_set_filetype(e.get(), AE_IFREG);
        sym_archive_entry_set_perm(e.get(), 0644);
        sym_archive_entry_set_size(e.get(), 0);
        return header(e.get(), rel);
    }

    Result<TarResult> finish() {
        if (sym_archive_write_close(a_) != ARCHIVE_OK)
            return fail(sink_.error ? sink_.error : EIO, "finish tar: {}", err());
        sym_archive_write_free(a_);
        a_ = nullptr;
        return TarResult{sink_.hash.finish(), sink_.size};
    }

private:
    std::string err() { return sym_archive_error_string(a_) ? sym_archive_error_string(a_) : "error"; }

    Result<> header(struct archive_entry* e, const std::string& rel) {
        int r = sym_archive_write_header(a_, e);
        if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
            return fail(sink_.error ? sink_.error : EIO, "write header '{}': {}", rel, err());
        return {};
    }

    void add_xattrs(struct archive_entry* e, int fd) {
        char names[8192];
        ssize_t len = ::flistxattr(fd, names, sizeof names);
        if (len <= 0) return;
        std::vector<char> value(65536);
        for (ssize_t i = 0; i < len; i += static_cast<ssize_t>(strlen(names + i)) + 1) {
            std::string_view n = names + i;
            if (n.rfind("trusted.overlay.", 0) == 0) continue;
            if (n.rfind("user.", 0) != 0 && n != "security.capability") continue;
            ssize_t v = ::fgetxattr(fd, names + i, value.data(), value.size());
            if (v >= 0) sym_archive_entry_xattr_add_entry(e, names + i, value.data(), static_cast<size_t>(v));
        }
    }

    struct archive* a_ = nullptr;
    Sink sink_;
    std::map<std::pair<dev_t, ino_t>, std::string> links_;
};

Result<> walk_full(TarWriter& w, int dirfd, const std::string& prefix) {
    for (const auto& n : sorted_children(dirfd)) {
        struct stat st {};
        if (::fstatat(dirfd, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0) continue;
        std::string rel = prefix.empty() ? n : prefix + "/" + n;
        BERTH_TRY_VOID(w.add(dirfd, n, rel, st));
        if (S_ISDIR(st.st_mode)) {
            UniqueFd sub(::openat(dirfd, n.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
            if (!sub) return fail_errno("open '{}'", rel);
            BERTH_TRY_VOID(walk_full(w, sub.get(), rel));
        }
    }
    return {};
}

bool same_entry(const struct stat& a, const struct stat& b) {
    if ((a.st_mode & S_IFMT) != (b.st_mode & S_IFMT)) return false;
    if (a.st_mode != b.st_mode || a.st_uid != b.st_uid || a.st_gid != b.st_gid) return false;
    if (S_ISDIR(a.st_mode)) return true;  // children are compared one by one
    return a.st_size == b.st_size && a.st_mtim.tv_sec == b.st_mtim.tv_sec &&
           a.st_mtim.tv_nsec == b.st_mtim.tv_nsec && a.st_ctim.tv_sec == b.st_ctim.tv_sec &&
           a.st_ctim.tv_nsec == b.st_ctim.tv_nsec && a.st_rdev == b.st_rdev;
}

Result<> walk_diff(TarWriter& w, int dirfd, int basefd, const std::string& prefix) {
    auto names = sorted_children(dirfd);
    auto base_names = sorted_children(basefd);
    std::vector<std::string> gone;
    std::set_difference(base_names.begin(), base_names.end(), names.begin(), names.end(),
                        std::back_inserter(gone));
    for (const auto& g : gone) BERTH_TRY_VOID(w.whiteout(prefix.empty() ? ".wh." + g : prefix + "/.wh." + g));
    for (const auto& n : names) {
        struct stat st {
        }, bst{};
        if (::fstatat(dirfd, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0) continue;
        std::string rel = prefix.empty() ? n : prefix + "/" + n;
        bool in_base = ::fstatat(basefd, n.c_str(), &bst, AT_SYMLINK_NOFOLLOW) == 0;
        bool same_type = in_base && (st.st_mode & S_IFMT) == (bst.st_mode & S_IFMT);
        if (!in_base || !same_entry(st, bst)) BERTH_TRY_VOID(w.add(dirfd, n, rel, st));
        if (S_ISDIR(st.st_mode)) {
            UniqueFd sub(::openat(dirfd, n.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
            if (!sub) return fail_errno("open '{}'", rel);
            if (same_type) {
                UniqueFd bsub(::openat(basefd, n.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
                if (!bsub) return fail_errno("open base '{}'", rel);
                BERTH_TRY_VOID(walk_diff(w, sub.get(), bsub.get(), rel));
            } else {
                BERTH_TRY_VOID(walk_full(w, sub.get(), rel));
            }
        }
    }
    return {};
}

}  // namespace

Result<TarResult> write_tree_tar(const std::string& dir, int fd) {
    UniqueFd root(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!root) return fail_errno("open '{}'", dir);
    BERTH_TRY_VOID(libarchive.load());  // before TarWriter, which uses it
    TarWriter w(fd);
    BERTH_TRY_VOID(walk_full(w, root.get(), ""));
    return w.finish();
}

Result<TarResult> write_diff_tar(const std::string& dir, const std::string& base, int fd) {
    UniqueFd root(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!root) return fail_errno("open '{}'", dir);
    UniqueFd broot(::open(base.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!broot) return fail_errno("open '{}'", base);
    BERTH_TRY_VOID(libarchive.load());  // before TarWriter, which uses it
    TarWriter w(fd);
    BERTH_TRY_VOID(walk_diff(w, root.get(), broot.get(), ""));
    return w.finish();
}

}  // namespace berth::store
