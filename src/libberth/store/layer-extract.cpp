#include "store/layer-extract.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <climits>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <unordered_set>
#include <vector>

#include "basic/chase.h"
#include "basic/fs-util.h"
#include "basic/io-util.h"
#include "basic/unique.h"
#include "store/digest.h"
#include "store/gzip-isal.h"
#include "store/libarchive-dl.h"
#include "store/tar-split.h"

namespace berth::store {
namespace {

// An entry's access and modification times for utimensat/futimens (atime = mtime when unset).
void entry_times(struct archive_entry* e, struct timespec ts[2]) {
    bool atime = sym_archive_entry_atime_is_set(e);
    ts[0].tv_sec = atime ? sym_archive_entry_atime(e) : sym_archive_entry_mtime(e);
    ts[0].tv_nsec = atime ? sym_archive_entry_atime_nsec(e) : sym_archive_entry_mtime_nsec(e);
    ts[1].tv_sec = sym_archive_entry_mtime(e);
    ts[1].tv_nsec = sym_archive_entry_mtime_nsec(e);
}

using ArchivePtr = CPtr<struct archive, free_archive_reader>;

constexpr size_t kBufSize = 1 << 20;

// sha256 of the input on a second thread (direct mode): the reader fills one of a few buffers
// while the previous ones are hashed, so hashing (~0.5 s per GiB with SHA-NI) runs beside the
// extraction's system calls instead of in front of them. A buffer is reused only once hashed; the
// tar reader itself only looks at the buffer handed out last (libarchive copies what it still
// needs before it asks for more).
class HashWorker {
public:
    static constexpr size_t kSlots = 4;

    HashWorker() {
        for (auto& b : bufs_) b.resize(kBufSize);
        try {
            thread_ = std::thread([this] { run(); });
        } catch (const std::exception&) {
            inline_ = true;  // no thread to be had: hash in the caller, as before
        }
    }
    ~HashWorker() {
        {
            std::lock_guard lock(mu_);
            stop_ = true;
        }
        cv_.notify_all();
        if (thread_.joinable()) thread_.join();
    }
    // The next buffer to read into (waits until it is hashed).
    char* next_buffer() {
        cur_ = (cur_ + 1) % kSlots;
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return !busy_[cur_]; });
        return bufs_[cur_].data();
    }
    void submit(size_t n) {
        if (inline_) {
            hash_.update(bufs_[cur_].data(), n);
            return;
        }
        {
            std::lock_guard lock(mu_);
            busy_[cur_] = true;
            queue_.push_back({cur_, n});
        }
        cv_.notify_all();
    }
    std::string finish() {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return queue_.empty() && !hashing_; });
        return hash_.finish();
    }

private:
    void run() {
        std::unique_lock lock(mu_);
        for (;;) {
            cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
            if (queue_.empty()) return;
            auto [slot, n] = queue_.front();
            queue_.pop_front();
            hashing_ = true;
            lock.unlock();
            hash_.update(bufs_[slot].data(), n);
            lock.lock();
            hashing_ = false;
            busy_[slot] = false;
            cv_.notify_all();
        }
    }

    std::vector<char> bufs_[kSlots];
    bool busy_[kSlots] = {};
    size_t cur_ = kSlots - 1;
    std::deque<std::pair<size_t, size_t>> queue_;
    bool hashing_ = false;
    bool stop_ = false;
    bool inline_ = false;
    Sha256 hash_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::thread thread_;
};

struct Pipeline {
    int fd = -1;
    int tee_fd = -1;
    std::vector<char> in_buf = std::vector<char>(kBufSize);
    Sha256 blob_hash;
    uint64_t blob_size = 0;
    uint64_t next_progress = kBufSize;
    const ExtractOptions* options = nullptr;
    Error io_error;  // set by callbacks (libarchive only sees -1)
    bool failed = false;

    // The decompressor: ISA-L for gzip when available (gzip-isal.h), else libarchive's raw reader.
    struct archive* raw = nullptr;
    IsalGunzip* gunzip = nullptr;
    size_t pending = 0;  // input bytes at the start of in_buf read (and hashed) by sniff_input
    // An uncompressed layer's diff ID is its blob digest: the bytes are hashed once, not twice
    // (sha256 is the largest CPU cost of an import after the kernel's).
    bool hash_diff = true;
    Sha256 diff_hash;
    uint64_t diff_size = 0;
    std::vector<char> raw_buf = std::vector<char>(kBufSize);
    bool raw_eof = false;

    SplitRecorder* recorder = nullptr;  // direct (uncompressed) mode with a tar-split
    HashWorker* hasher = nullptr;       // direct mode: blob_hash is computed by this instead

    // The layer has grown to `out` uncompressed bytes from blob_size input bytes: false (and the
    // error remembered, as for a failed read) once that passes a limit. Called for every chunk
    // the decompressor yields, so a bomb stops after at most one input buffer's expansion.
    bool within_limits(uint64_t out) {
        const LayerLimits& l = options->limits;
        if (l.max_size && out > l.max_size) {
            io_error =
                Error{EFBIG, fmt::format("layer is larger than max_layer_size ({} bytes) uncompressed; "
                                         "raise it in berthd.toml if the image is genuine",
                                         l.max_size)};
        } else if (l.max_ratio && out > LayerLimits::kRatioGrace && blob_size > 0 &&
                   static_cast<double>(out) >
                       static_cast<double>(l.max_ratio) * static_cast<double>(blob_size)) {
            io_error =
                Error{EFBIG, fmt::format("layer expands more than max_layer_ratio ({}:1): {} bytes from {} "
                                         "compressed bytes (a decompression bomb?); raise it in berthd.toml "
                                         "if the image is genuine",
                                         l.max_ratio, out, blob_size)};
        } else {
            return true;
        }
        failed = true;
        return false;
    }
};

// Bytes just read into `data` are layer input: hashed for the blob digest, teed, reported.
// False (the error remembered) when the tee fails.
bool take_input(Pipeline* p, const char* data, size_t n) {
    p->blob_hash.update(data, n);
    p->blob_size += n;
    if (p->tee_fd >= 0) {
        int w = write_all_raw(p->tee_fd, data, n);
        if (w < 0) {
            p->failed = true;
            p->io_error = Error{-w, "write blob copy"};
            return false;
        }
    }
    if (p->options->progress && p->blob_size >= p->next_progress) {
        p->next_progress = p->blob_size + kBufSize;
        p->options->progress(p->blob_size);
    }
    return true;
}

// A failed (or cancelled) read of the layer input, remembered for the caller's error.
ssize_t input_failed(Pipeline* p, int err) {
    p->failed = true;
    p->io_error = err == ECANCELED ? Error{ECANCELED, "import cancelled"} : Error{err, "read layer input"};
    return -1;
}

// The next input bytes for the decompressor (in in_buf): their count, 0 at the end, -1 with
// the error remembered. What sniff_input read comes first.
ssize_t next_input(Pipeline* p, const void** buf) {
    *buf = p->in_buf.data();
    if (p->pending) {
        size_t n = p->pending;
        p->pending = 0;
        return static_cast<ssize_t>(n);
    }
    ssize_t n = read_input(p->fd, p->in_buf.data(), p->in_buf.size(), p->options->cancel);
    if (n < 0) return input_failed(p, errno);
    if (n > 0 && !take_input(p, p->in_buf.data(), static_cast<size_t>(n))) return -1;
    return n;
}

// Reads the first bytes of the input (enough to tell a gzip header, or all of a shorter input)
// into in_buf as pending input: their count, or -1 with the error remembered.
ssize_t sniff_input(Pipeline* p) {
    size_t have = 0;
    while (have < 4) {
        ssize_t n = read_input(p->fd, p->in_buf.data() + have, p->in_buf.size() - have, p->options->cancel);
        if (n < 0) return input_failed(p, errno);
        if (n == 0) break;
        if (!take_input(p, p->in_buf.data() + have, static_cast<size_t>(n))) return -1;
        have += static_cast<size_t>(n);
    }
    p->pending = have;
    return static_cast<ssize_t>(have);
}

// libarchive's read callback for the raw reader.
la_ssize_t input_read(struct archive* a, void* data, const void** buf) {
    auto* p = static_cast<Pipeline*>(data);
    ssize_t n = next_input(p, buf);
    if (n < 0) sym_archive_set_error(a, p->io_error.code, "%s", p->io_error.message.c_str());
    return n;
}

// Direct mode: the tar reader reads the (uncompressed) input itself, and every byte it gets is
// shown to the tar-split recorder in stream order.
la_ssize_t direct_read(struct archive* a, void* data, const void** buf) {
    auto* p = static_cast<Pipeline*>(data);
    char* slot = p->hasher->next_buffer();
    ssize_t n = read_input(p->fd, slot, kBufSize, p->options->cancel);
    if (n < 0) {
        input_failed(p, errno);
        sym_archive_set_error(a, p->io_error.code, "read failed");
        return -1;
    }
    if (n > 0) {
        p->hasher->submit(static_cast<size_t>(n));
        p->blob_size += static_cast<uint64_t>(n);
        if (!p->within_limits(p->blob_size)) {
            sym_archive_set_error(a, p->io_error.code, "%s", p->io_error.message.c_str());
            return -1;
        }
        if (p->options->progress && p->blob_size >= p->next_progress) {
            p->next_progress = p->blob_size + kBufSize;
            p->options->progress(p->blob_size);
        }
        if (p->recorder) p->recorder->feed(slot, static_cast<size_t>(n));
    }
    *buf = slot;
    return n;
}

// The next decompressed bytes into raw_buf, from ISA-L or libarchive's raw reader: their count,
// 0 at the end, or -1 with what failed in `err` (a failed input read is also p->io_error).
la_ssize_t decompress(Pipeline* p, Error* err) {
    if (p->gunzip) {
        ssize_t n = p->gunzip->read(p->raw_buf.data(), p->raw_buf.size());
        if (n < 0) *err = p->gunzip->input_failed() ? p->io_error : Error{EIO, p->gunzip->error()};
        return n;
    }
    la_ssize_t n = sym_archive_read_data(p->raw, p->raw_buf.data(), p->raw_buf.size());
    if (n < 0) {
        const char* s = sym_archive_error_string(p->raw);
        *err = Error{sym_archive_errno(p->raw) > 0 ? sym_archive_errno(p->raw) : EIO,
                     s ? s : "decompression failed"};
    }
    return n;
}

// The tar reader pulls decompressed bytes from the decompressor, hashing them for the diff ID.
la_ssize_t raw_read(struct archive* a, void* data, const void** buf) {
    auto* p = static_cast<Pipeline*>(data);
    if (p->raw_eof) return 0;
    Error err;
    la_ssize_t n = decompress(p, &err);
    if (n < 0) {
        sym_archive_set_error(a, err.code, "%s", err.message.c_str());
        return -1;
    }
    if (n == 0) p->raw_eof = true;
    if (p->hash_diff) p->diff_hash.update(p->raw_buf.data(), static_cast<size_t>(n));
    p->diff_size += static_cast<uint64_t>(n);
    if (!p->within_limits(p->diff_size)) {
        sym_archive_set_error(a, p->io_error.code, "%s", p->io_error.message.c_str());
        return -1;
    }
    *buf = p->raw_buf.data();
    return n;
}

// Splits and checks an entry path; "" for the root itself.
Result<std::vector<std::string>> split_entry_path(std::string_view path) {
    if (path.size() >= PATH_MAX) return fail(ENAMETOOLONG, "path is longer than {} bytes", PATH_MAX - 1);
    if (!path.empty() && path[0] == '/') return fail(EPERM, "absolute path");
    std::vector<std::string> parts;
    size_t i = 0;
    while (i <= path.size()) {
        size_t j = path.find('/', i);
        if (j == std::string_view::npos) j = path.size();
        std::string_view c = path.substr(i, j - i);
        if (c == "..") return fail(EPERM, "path contains '..'");
        if (c.size() > NAME_MAX) return fail(ENAMETOOLONG, "path component longer than {} bytes", NAME_MAX);
        if (!c.empty() && c != ".") parts.emplace_back(c);
        i = j + 1;
    }
    return parts;
}

std::string join_parts(const std::vector<std::string>& parts, size_t n) {
    std::string s;
    for (size_t i = 0; i < n; ++i) {
        if (i) s += '/';
        s += parts[i];
    }
    return s;
}

int openat2_beneath(int dirfd, const std::string& path, int flags) {
    return chase_raw(dirfd, path.c_str(), flags, kResolveStrictlyBeneath);
}

class Extractor {
public:
    Extractor(const std::string& dest, const ExtractOptions& options) : dest_(dest), options_(options) {}

    Result<> open_root() {
        root_.reset(::open(dest_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
        if (!root_) return fail_errno("open '{}'", dest_);
        return {};
    }

    Result<> entry(struct archive_entry* e) {
        const char* raw_path = sym_archive_entry_pathname(e);
        if (!raw_path) return fail(EINVAL, "entry without a path");
        auto parts = BERTH_TRY(split_entry_path(raw_path));
        if (parts.empty()) return {};  // "./": the root itself keeps the backend's metadata
        std::string name = parts.back();
        std::vector<std::string> parent_parts(parts.begin(), parts.end() - 1);
        std::string parent_rel = join_parts(parent_parts, parent_parts.size());

        if (name.rfind(".wh.", 0) == 0) return whiteout(parent_rel, name);

        std::string rel = parent_rel.empty() ? name : parent_rel + "/" + name;
        mode_t type = sym_archive_entry_filetype(e);
        const char* hardlink = sym_archive_entry_hardlink(e);
        if ((type == AE_IFCHR || type == AE_IFBLK) && !hardlink) {
            dev_t rdev = sym_archive_entry_rdev(e);
            // overlayfs's whiteout format (what an overlay upper dir holds, and what some tools
            // tar up as is): a whiteout of that name, never a device, on every backend alike.
            if (type == AE_IFCHR && rdev == makedev(0, 0)) return whiteout(parent_rel, ".wh." + name);
            if (!options_.allow_device_nodes) {
                // Real images carry /dev/console, /dev/null & co. (debootstrap, older distribution
                // images); Docker and containerd keep them. berth leaves them out, so an image can
                // never reach a host device whatever the container's mounts, and says so.
                skip_device(rel, fmt::format("{} {}:{}", type == AE_IFCHR ? "char" : "block", major(rdev),
                                             minor(rdev)));
                return {};
            }
        }
        if (hardlink && !skipped_.empty()) {
            // A hardlink to a device node left out is left out too.
            auto target = split_entry_path(hardlink);
            if (target && skipped_.count(join_parts(*target, target->size()))) {
                skip_device(rel, fmt::format("hardlink to '{}'", hardlink));
                return {};
            }
        }

        int parent = BERTH_TRY(parent_dir(parent_parts, parent_rel));

        struct stat st {};
        bool exists = ::fstatat(parent, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
        if (exists && !(type == AE_IFDIR && S_ISDIR(st.st_mode) && !hardlink)) {
            note_removal(rel);
            if (S_ISDIR(st.st_mode)) {
                BERTH_TRY_VOID(remove_tree(path_join(dest_, rel)));
            } else if (::unlinkat(parent, name.c_str(), 0) < 0) {
                return fail_errno("replace existing entry");
            }
        }
        created_.insert(rel);

        if (hardlink) {
            auto target =
                BERTH_TRY_CTX(split_entry_path(hardlink), fmt::format("hardlink target '{}'", hardlink));
            if (target.empty()) return fail(EPERM, "hardlink to the root directory");
            std::string tparent_rel = join_parts(target, target.size() - 1);
            UniqueFd tparent(openat2_beneath(root_.get(), tparent_rel.empty() ? "." : tparent_rel,
                                             O_PATH | O_DIRECTORY | O_CLOEXEC));
            if (!tparent) return fail_errno("hardlink target '{}' is not inside the layer", hardlink);
            struct stat tst {};
            if (::fstatat(tparent.get(), target.back().c_str(), &tst, AT_SYMLINK_NOFOLLOW) < 0)
                return fail_errno("hardlink target '{}'", hardlink);
            if (S_ISDIR(tst.st_mode)) return fail(EPERM, "hardlink to directory '{}'", hardlink);
            if (::linkat(tparent.get(), target.back().c_str(), parent, name.c_str(), 0) < 0)
                return fail_errno("link to '{}'", hardlink);
            return {};
        }

        switch (type) {
            case AE_IFDIR:
                if (!exists || !S_ISDIR(st.st_mode)) {
                    if (::mkdirat(parent, name.c_str(), 0700) < 0) return fail_errno("mkdir");
                }
                break;
            case AE_IFREG: {
                UniqueFd fd(::openat(parent, name.c_str(),
                                     O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
                if (!fd) return fail_errno("create file");
                int64_t size = sym_archive_entry_size(e);
                // The content is referenced from the tar-split only for a plain file: a sparse entry's
                // stored bytes are not the file's bytes, so they stay in the split verbatim.
                bool ref =
                    split_ && !split_->abandoned() && size > 0 && sym_archive_entry_sparse_count(e) == 0;
                if (ref) split_->begin_file(data_start_, static_cast<uint64_t>(size));
                DataCheck check;
                BERTH_TRY_VOID(copy_data(fd.get(), size, ref ? &check : nullptr));
                if (ref) {
                    if (check.contiguous && check.written == static_cast<uint64_t>(size)) {
                        split_->end_file(rel, static_cast<uint64_t>(size), check.crc);
                        referenced_.insert(rel);
                    } else {
                        split_->abandon(
                            fmt::format("entry '{}': data is not one plain run of {} bytes", rel, size));
                    }
                }
                BERTH_TRY_VOID(apply_xattrs(e, fd.get()));
                // Owner, mode and times through the open file: no three more path lookups per file.
                return set_file_metadata(e, fd.get());
            }
            case AE_IFLNK: {
                const char* target = sym_archive_entry_symlink(e);
                if (!target || !*target) return fail(EINVAL, "symlink without a target");
                if (strlen(target) >= PATH_MAX) return fail(ENAMETOOLONG, "symlink target too long");
                if (::symlinkat(target, parent, name.c_str()) < 0) return fail_errno("symlink");
                break;
            }
            case AE_IFCHR:
            case AE_IFBLK:  // allow_device_nodes (else skipped above)
                if (::mknodat(parent, name.c_str(), (type == AE_IFCHR ? S_IFCHR : S_IFBLK) | 0600,
                              sym_archive_entry_rdev(e)) < 0)
                    return fail_errno("mknod");
                break;
            case AE_IFIFO:
                if (::mknodat(parent, name.c_str(), S_IFIFO | 0600, 0) < 0) return fail_errno("mkfifo");
                break;
            default:
                return fail(EINVAL, "unsupported entry type {:#o}", static_cast<unsigned>(type));
        }

        // Owner first: chown clears set-id bits, so the mode goes after it.
        if (::fchownat(parent, name.c_str(), static_cast<uid_t>(sym_archive_entry_uid(e)),
                       static_cast<gid_t>(sym_archive_entry_gid(e)), AT_SYMLINK_NOFOLLOW) < 0)
            return fail_errno("chown");
        if (type != AE_IFLNK) {
            if (::fchmodat(parent, name.c_str(), sym_archive_entry_perm(e) & 07777, 0) < 0)
                return fail_errno("chmod");
        }
        struct timespec ts[2];
        entry_times(e, ts);
        if (type == AE_IFDIR) {
            UniqueFd dfd(::openat(parent, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
            if (!dfd) return fail_errno("open directory");
            BERTH_TRY_VOID(apply_xattrs(e, dfd.get()));
            dir_times_.push_back({rel, {ts[0], ts[1]}});
        } else if (::utimensat(parent, name.c_str(), ts, AT_SYMLINK_NOFOLLOW) < 0) {
            return fail_errno("set times");
        }
        return {};
    }

    Result<> set_file_metadata(struct archive_entry* e, int fd) {
        // Owner first: chown clears set-id bits, so the mode goes after it.
        if (::fchown(fd, static_cast<uid_t>(sym_archive_entry_uid(e)),
                     static_cast<gid_t>(sym_archive_entry_gid(e))) < 0)
            return fail_errno("chown");
        if (::fchmod(fd, sym_archive_entry_perm(e) & 07777) < 0) return fail_errno("chmod");
        struct timespec ts[2];
        entry_times(e, ts);
        if (::futimens(fd, ts) < 0) return fail_errno("set times");
        return {};
    }

    const std::vector<std::string>& skipped_report() const { return skipped_report_; }

    // Whiteouts of the Apply mode are deferred to the end of the layer: they only hide what lower
    // layers put there, never what this layer adds (OCI image spec, "Whiteouts").
    Result<> finish() {
        if (options_.whiteouts == WhiteoutMode::Apply) {
            for (const auto& rel : whiteouts_)
                BERTH_TRY_VOID_CTX(apply_whiteout(rel), fmt::format("whiteout '{}'", rel));
            for (const auto& rel : opaques_)
                BERTH_TRY_VOID_CTX(apply_opaque(rel), fmt::format("opaque directory '{}'", rel));
        }
        for (auto it = dir_times_.rbegin(); it != dir_times_.rend(); ++it) {
            struct timespec ts[2] = {it->times[0], it->times[1]};
            (void)::utimensat(root_.get(), it->rel.c_str(), ts, AT_SYMLINK_NOFOLLOW);
        }
        return {};
    }

private:
    struct DirTimes {
        std::string rel;
        struct timespec times[2];
    };

    void skip_device(const std::string& rel, const std::string& what) {
        skipped_.insert(rel);
        if (skipped_.size() <= kMaxSkippedRecorded) {
            skipped_report_.push_back(fmt::format("{} ({})", rel, what));
        } else {
            if (skipped_report_.size() > kMaxSkippedRecorded) skipped_report_.pop_back();
            skipped_report_.push_back(fmt::format("... and {} more", skipped_.size() - kMaxSkippedRecorded));
        }
    }

    Result<int> parent_dir(const std::vector<std::string>& parts, const std::string& rel) {
        if (rel.empty()) return root_.get();
        if (cached_parent_ && cached_rel_ == rel) return cached_parent_.get();
        UniqueFd fd(openat2_beneath(root_.get(), rel, O_PATH | O_DIRECTORY | O_CLOEXEC));
        if (!fd && errno == ENOENT) {
            // Create missing parents one by one, each checked the same way.
            UniqueFd cur(::fcntl(root_.get(), F_DUPFD_CLOEXEC, 3));
            for (size_t i = 0; i < parts.size(); ++i) {
                if (::mkdirat(cur.get(), parts[i].c_str(), 0755) < 0 && errno != EEXIST)
                    return fail_errno("create parent '{}'", join_parts(parts, i + 1));
                UniqueFd next(openat2_beneath(cur.get(), parts[i], O_PATH | O_DIRECTORY | O_CLOEXEC));
                if (!next) {
                    if (errno == ELOOP)
                        return fail(ELOOP, "path goes through symlink '{}'", join_parts(parts, i + 1));
                    return fail_errno("open parent '{}'", join_parts(parts, i + 1));
                }
                created_.insert(join_parts(parts, i + 1));
                cur = std::move(next);
            }
            fd = std::move(cur);
        }
        if (!fd) {
            if (errno == ELOOP || errno == EXDEV) return fail(ELOOP, "path goes through a symlink");
            if (errno == ENOTDIR) return fail(ENOTDIR, "a parent of the path is not a directory");
            return fail_errno("open parent directory '{}'", rel);
        }
        cached_parent_ = std::move(fd);
        cached_rel_ = rel;
        return cached_parent_.get();
    }

    struct DataCheck {
        uint32_t crc = 0;
        uint64_t written = 0;
        bool contiguous = true;
    };

    Result<> copy_data(int fd, int64_t size, DataCheck* check) {
        const void* buf = nullptr;
        size_t len = 0;
        la_int64_t offset = 0;
        int64_t end = 0;
        for (;;) {
            int r = sym_archive_read_data_block(tar_, &buf, &len, &offset);
            if (r == ARCHIVE_EOF) break;
            if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
                return fail(EIO, "read data: {}",
                            sym_archive_error_string(tar_) ? sym_archive_error_string(tar_) : "error");
            const char* q = static_cast<const char*>(buf);
            size_t left = len;
            off_t pos = offset;
            if (check) {
                if (static_cast<uint64_t>(offset) != check->written) check->contiguous = false;
                check->crc = crc32c(check->crc, buf, len);
                check->written += len;
            }
            while (left) {
                ssize_t w = ::pwrite(fd, q, left, pos);
                if (w < 0 && errno == EINTR) continue;
                if (w < 0) return fail_errno("write");
                q += w;
                pos += w;
                left -= static_cast<size_t>(w);
            }
            end = std::max<int64_t>(end, offset + static_cast<int64_t>(len));
        }
        if (size > end && ::ftruncate(fd, size) < 0) return fail_errno("truncate");  // sparse tail
        return {};
    }

    Result<> apply_xattrs(struct archive_entry* e, int fd) {
        if (sym_archive_entry_xattr_reset(e) == 0) return {};
        const char* name = nullptr;
        const void* value = nullptr;
        size_t size = 0;
        while (sym_archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
            std::string_view n = name;
            // Only overlay whiteout handling may set overlay's own attributes.
            if (n.rfind("trusted.overlay.", 0) == 0) continue;
            if (size > 65536) return fail(E2BIG, "xattr '{}' too large", n);
            if (::fsetxattr(fd, name, value, size, 0) < 0 && errno != ENOTSUP && errno != EOPNOTSUPP)
                return fail_errno("set xattr '{}'", n);
        }
        return {};
    }

    Result<> whiteout(const std::string& parent_rel, const std::string& name) {
        std::string rel_parent_prefix = parent_rel.empty() ? "" : parent_rel + "/";
        if (name == ".wh..wh..opq") {
            if (options_.whiteouts == WhiteoutMode::Overlay) {
                auto parts = BERTH_TRY(split_entry_path(parent_rel));
                int parent = BERTH_TRY(parent_dir(parts, parent_rel));
                UniqueFd dfd(::openat(parent, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
                if (!dfd) return fail_errno("open opaque directory");
                if (::fsetxattr(dfd.get(), "trusted.overlay.opaque", "y", 1, 0) < 0)
                    return fail_errno("mark directory opaque");
            } else {
                opaques_.push_back(parent_rel);
            }
            return {};
        }
        if (name.rfind(".wh..wh.", 0) == 0) return {};  // aufs bookkeeping, meaningless here
        std::string target = name.substr(4);
        if (target.empty() || target == "." || target == "..") return fail(EINVAL, "invalid whiteout name");
        std::string rel = rel_parent_prefix + target;
        if (options_.whiteouts == WhiteoutMode::Overlay) {
            if (created_.count(rel)) return {};  // this layer adds it again: keep the new entry
            auto parts = BERTH_TRY(split_entry_path(parent_rel));
            int parent = BERTH_TRY(parent_dir(parts, parent_rel));
            if (::mknodat(parent, target.c_str(), S_IFCHR | 0000, makedev(0, 0)) < 0 && errno != EEXIST)
                return fail_errno("create overlay whiteout");
            created_.insert(rel);
        } else {
            whiteouts_.push_back(rel);
        }
        return {};
    }

    Result<> apply_whiteout(const std::string& rel) {
        if (created_.count(rel)) return apply_opaque(rel);  // same layer re-created it
        auto slash = rel.rfind('/');
        std::string parent_rel = slash == std::string::npos ? "" : rel.substr(0, slash);
        std::string name = slash == std::string::npos ? rel : rel.substr(slash + 1);
        UniqueFd parent(openat2_beneath(root_.get(), parent_rel.empty() ? "." : parent_rel,
                                        O_PATH | O_DIRECTORY | O_CLOEXEC));
        if (!parent) return {};  // nothing below to hide (or hidden by a symlink: never followed)
        struct stat st {};
        if (::fstatat(parent.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0) return {};
        note_removal(rel);
        if (S_ISDIR(st.st_mode)) return remove_tree(path_join(dest_, rel));
        if (::unlinkat(parent.get(), name.c_str(), 0) < 0) return fail_errno("remove");
        return {};
    }

    // Removes everything below `rel` that this layer did not add itself.
    Result<> apply_opaque(const std::string& rel) {
        UniqueFd dir(
            openat2_beneath(root_.get(), rel.empty() ? "." : rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        if (!dir) return {};
        std::vector<std::pair<std::string, bool>> children;
        {
            DIR* d = ::fdopendir(::fcntl(dir.get(), F_DUPFD_CLOEXEC, 3));
            if (!d) return fail_errno("opendir");
            CPtr<DIR, ::closedir> guard(d);
            while (auto* de = ::readdir(d)) {
                std::string_view n = de->d_name;
                if (n == "." || n == "..") continue;
                struct stat st {};
                if (::fstatat(dir.get(), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) continue;
                children.emplace_back(de->d_name, S_ISDIR(st.st_mode));
            }
        }
        for (const auto& [n, is_dir] : children) {
            std::string child = rel.empty() ? n : rel + "/" + n;
            if (created_.count(child)) {
                if (is_dir) BERTH_TRY_VOID(apply_opaque(child));
            } else if (is_dir) {
                note_removal(child);
                BERTH_TRY_VOID(remove_tree(path_join(dest_, child)));
            } else if (::unlinkat(dir.get(), n.c_str(), 0) < 0) {
                return fail_errno("remove '{}'", child);
            }
        }
        return {};
    }

    // A file whose content the tar-split references must stay in the tree as written: if this
    // tar replaces or removes it (or a directory above it), the split cannot rebuild the blob.
    void note_removal(const std::string& rel) {
        if (!split_ || split_->abandoned() || referenced_.empty()) return;
        bool hit = rel.empty() || referenced_.count(rel);
        if (!hit) {
            std::string prefix = rel + "/";
            auto it = referenced_.lower_bound(prefix);
            hit = it != referenced_.end() && it->compare(0, prefix.size(), prefix) == 0;
        }
        if (hit)
            split_->abandon(fmt::format("'{}' is replaced or removed by a later entry of the same layer",
                                        rel.empty() ? "/" : rel));
    }

public:
    struct archive* tar_ = nullptr;
    SplitRecorder* split_ = nullptr;
    uint64_t data_start_ = 0;  // stream offset of the current entry's data

private:
    std::string dest_;
    const ExtractOptions& options_;
    UniqueFd root_;
    UniqueFd cached_parent_;
    std::string cached_rel_;
    std::unordered_set<std::string> created_;
    std::vector<std::string> whiteouts_, opaques_;
    std::vector<DirTimes> dir_times_;
    std::set<std::string> referenced_;         // files the tar-split points at
    std::unordered_set<std::string> skipped_;  // device nodes left out (hardlinks to them follow)
    std::vector<std::string> skipped_report_;  // the first kMaxSkippedRecorded, then a count
};

std::string archive_err(struct archive* a) {
    const char* s = sym_archive_error_string(a);
    return s ? s : "unknown archive error";
}

// Reads every entry of `tar` into the tree. With a recorder (direct mode), each entry's data
// start is libarchive's consumed position right after its header: the bytes before it (the
// header and any pax/GNU long-name blocks) are raw in the split.
Result<> run_entries(struct archive* tar, Extractor& ex, Pipeline& p, const ExtractOptions& options) {
    uint64_t entries = 0;
    for (;;) {
        if (options.cancel && options.cancel->load()) return fail(ECANCELED, "import cancelled");
        struct archive_entry* e = nullptr;
        int r = sym_archive_read_next_header(tar, &e);
        if (r == ARCHIVE_EOF) break;
        if (r == ARCHIVE_WARN) {
            // e.g. unknown pax keys: still usable.
        } else if (r != ARCHIVE_OK) {
            if (p.failed) return fail(p.io_error);
            const char* last = e ? sym_archive_entry_pathname(e) : nullptr;
            return fail(EIO, "layer tar{}: {}", last ? fmt::format(" entry '{}'", last) : std::string(),
                        archive_err(tar));
        }
        if (p.recorder) {
            ex.data_start_ = static_cast<uint64_t>(sym_archive_filter_bytes(tar, 0));
            p.recorder->header(ex.data_start_);
        }
        const char* path = sym_archive_entry_pathname(e);
        if (options.limits.max_entries && ++entries > options.limits.max_entries)
            return fail(E2BIG,
                        "layer has more than max_layer_entries ({}) entries; raise it in berthd.toml if the "
                        "image is genuine",
                        options.limits.max_entries);
        auto res = ex.entry(e);
        if (!res && p.failed) return fail(p.io_error);  // a limit or the input, not the entry
        if (!res)
            return fail(std::move(res.error()).wrap(fmt::format("layer entry '{}'", path ? path : "?")));
    }
    return ex.finish();
}

// Uncompressed, seekable input with a tar-split wanted: read the tar directly (no raw reader,
// no copy of the input) and record the split on the way.
Result<ExtractResult> extract_direct(int fd, const std::string& dest, const ExtractOptions& options) {
    Pipeline p;
    p.fd = fd;
    p.options = &options;
    p.hash_diff = false;
    SplitRecorder rec(options.split_fd);
    p.recorder = &rec;
    HashWorker hasher;
    p.hasher = &hasher;
    Extractor ex(dest, options);
    BERTH_TRY_VOID(ex.open_root());
    ex.split_ = &rec;
    BERTH_TRY_VOID(libarchive.load());
    ArchivePtr tar(sym_archive_read_new());
    sym_archive_read_support_format_tar(tar.get());
    sym_archive_read_support_format_gnutar(tar.get());
    sym_archive_read_support_filter_none(tar.get());
    ex.tar_ = tar.get();
    if (sym_archive_read_open(tar.get(), &p, nullptr, direct_read, nullptr) != ARCHIVE_OK) {
        if (p.failed) return fail(p.io_error);
        return fail(EIO, "open layer tar: {}", archive_err(tar.get()));
    }
    BERTH_TRY_VOID(run_entries(tar.get(), ex, p, options));
    // The end-of-archive blocks and whatever follows them belong to the blob: read to the end.
    for (;;) {
        const void* buf = nullptr;
        la_ssize_t n = direct_read(tar.get(), &p, &buf);
        if (n < 0) return fail(p.io_error);
        if (n == 0) break;
    }
    if (options.progress) options.progress(p.blob_size);
    ExtractResult out;
    out.compression = "none";
    out.blob_digest = hasher.finish();
    out.blob_size = p.blob_size;
    out.diff_id = out.blob_digest;
    out.size = p.blob_size;
    BERTH_TRY_VOID_CTX(rec.finish(p.blob_size, out.blob_digest), "write tar-split");
    BERTH_TRY_VOID_CTX(rec.error(), "write tar-split");
    out.split = !rec.abandoned();
    out.split_fallback = rec.reason();
    out.skipped_device_nodes = ex.skipped_report();
    return out;
}

}  // namespace

Result<ExtractResult> extract_layer(int fd, const std::string& dest, const ExtractOptions& options) {
    Pipeline p;
    p.fd = fd;
    p.tee_fd = options.tee_fd;
    p.options = &options;
    off_t start = options.split_fd >= 0 && !dest.empty() ? ::lseek(fd, 0, SEEK_CUR) : -1;

    BERTH_TRY_VOID(libarchive.load());
    ExtractResult out;
    // gzip, the usual layer, is inflated by ISA-L where it is installed (gzip-isal.h says why):
    // the first bytes decide, and stay pending for whichever decompressor reads them.
    std::optional<IsalGunzip> gunzip;
    if (use_isal_for_gzip()) {
        if (sniff_input(&p) < 0) return fail(p.io_error.code, "open layer stream: {}", p.io_error.message);
        if (is_gzip_header(p.in_buf.data(), p.pending)) {
            gunzip.emplace([&p](const void** buf) { return next_input(&p, buf); }, p.in_buf.data(),
                           p.pending);
            p.pending = 0;
            p.gunzip = &*gunzip;
            out.compression = "gzip";
            p.hash_diff = true;
        }
    }
    ArchivePtr raw;
    if (!p.gunzip) {
        raw.reset(sym_archive_read_new());
        sym_archive_read_support_filter_all(raw.get());
        sym_archive_read_support_format_raw(raw.get());
        p.raw = raw.get();
        if (sym_archive_read_open(raw.get(), &p, nullptr, input_read, nullptr) != ARCHIVE_OK)
            return fail(p.failed ? p.io_error.code : EIO, "open layer stream: {}",
                        p.failed ? p.io_error.message : archive_err(raw.get()));
        struct archive_entry* raw_entry = nullptr;
        int r = sym_archive_read_next_header(raw.get(), &raw_entry);
        if (r == ARCHIVE_EOF) {
            return fail(EIO, "layer stream is empty");
        }
        if (r != ARCHIVE_OK) return fail(EIO, "read layer stream: {}", archive_err(raw.get()));
        const char* filter =
            sym_archive_filter_count(raw.get()) > 1 ? sym_archive_filter_name(raw.get(), 0) : "none";
        out.compression = filter ? filter : "none";
        p.hash_diff = sym_archive_filter_count(raw.get()) > 1;
    }

    if (start >= 0 && !p.hash_diff) {
        // libarchive found no compression: start over at the beginning, reading the tar directly.
        raw.reset();
        if (::lseek(fd, start, SEEK_SET) < 0) return fail_errno("rewind layer input");
        return extract_direct(fd, dest, options);
    }
    if (options.split_fd >= 0)
        out.split_fallback = dest.empty() ? "layer not extracted"
                             : start < 0  ? "input is not seekable"
                                          : "layer is compressed";

    std::optional<Extractor> extractor;
    if (!dest.empty()) {
        Extractor& ex = extractor.emplace(dest, options);
        BERTH_TRY_VOID(ex.open_root());
        ArchivePtr tar(sym_archive_read_new());
        sym_archive_read_support_format_tar(tar.get());
        sym_archive_read_support_format_gnutar(tar.get());
        sym_archive_read_support_filter_none(tar.get());
        ex.tar_ = tar.get();
        if (sym_archive_read_open(tar.get(), &p, nullptr, raw_read, nullptr) != ARCHIVE_OK)
            return fail(EIO, "open layer tar: {}", archive_err(tar.get()));
        BERTH_TRY_VOID(run_entries(tar.get(), ex, p, options));
    }
    // Drain: tar padding after the end-of-archive blocks belongs to the diff ID, trailing bytes of
    // the compressed stream to the blob digest.
    while (!p.raw_eof) {
        Error err;
        la_ssize_t n = decompress(&p, &err);
        if (n < 0) {
            if (p.failed) return fail(p.io_error);
            return fail(EIO, "layer stream: {}", err.message);
        }
        if (n == 0) {
            p.raw_eof = true;
            break;
        }
        if (p.hash_diff) p.diff_hash.update(p.raw_buf.data(), static_cast<size_t>(n));
        p.diff_size += static_cast<uint64_t>(n);
        if (!p.within_limits(p.diff_size)) return fail(p.io_error);  // a bomb after the tar's end
    }
    while (true) {
        const void* buf = nullptr;
        ssize_t n = next_input(&p, &buf);
        if (n < 0) return fail(p.io_error);
        if (n == 0) break;
    }
    if (options.progress) options.progress(p.blob_size);
    out.blob_digest = p.blob_hash.finish();
    out.blob_size = p.blob_size;
    out.diff_id = p.hash_diff ? p.diff_hash.finish() : out.blob_digest;
    out.size = p.diff_size;
    out.teed = options.tee_fd >= 0;
    if (extractor) out.skipped_device_nodes = extractor->skipped_report();
    return out;
}

ssize_t read_input(int fd, void* buf, size_t size, const std::atomic<bool>* cancel) {
    for (;;) {
        if (cancel) {
            if (cancel->load()) {
                errno = ECANCELED;
                return -1;
            }
            struct pollfd pfd {
                fd, POLLIN, 0
            };
            int r = ::poll(&pfd, 1, 100);
            if (r < 0 && errno != EINTR) return -1;
            if (r <= 0) continue;
        }
        ssize_t n = ::read(fd, buf, size);
        if (n < 0 && (errno == EINTR || (cancel && errno == EAGAIN))) continue;
        return n;
    }
}

}  // namespace berth::store
