// How much space a btrfs container snapshot or volume adds, without quota groups.
//
// `berth df` reports, for every backend, "the bytes this container (or volume) adds": overlay
// sums the allocated blocks of the container's upper directory (new files and copied-up ones),
// btrfs counts what the container's subvolume holds that no other subvolume shares. btrfs can
// account for that itself with quota groups (qgroup "exclusive"), but qgroups must be enabled on
// the whole filesystem, slow down every snapshot creation and deletion and every extent change
// (they are known to stall large filesystems during snapshot deletion and balance), take a rescan
// to become correct, and belong to the administrator: a berth store often lives on the host's
// root filesystem. So berth never turns them on, and works without them:
//
//   * A snapshot starts by sharing every extent with the layer it was made from. FIEMAP asks the
//     filesystem, extent by extent, whether anything else references it (FIEMAP_EXTENT_SHARED is
//     computed from the extent's back references, so it sees snapshots and reflinks). Extents
//     without the flag belong to this subvolume only: new files, rewritten parts of old ones, and
//     delayed-allocation data not written back yet (reported as DELALLOC, never as shared).
//   * Small files keep their data inline in the metadata tree, where FIEMAP reports it as
//     FIEMAP_EXTENT_DATA_INLINE and never as shared. A snapshot shares those tree blocks until a
//     file changes, so inline data counts only for a new or changed inode.
//   * An inode the container never touched has the same inode number, ctime and size in the
//     snapshot and in its base layer (a snapshot copies inodes as they are; any change to data or
//     metadata moves ctime). Those files are skipped without a FIEMAP call, which also keeps a
//     walk of a fresh container of a large image to a pair of fstatat() per file.
//
// What this does not count: metadata (inodes, directories, symlink targets), extents the
// container shares with itself (a `cp --reflink` inside the container counts neither copy), and
// the unreferenced tail of a partly overwritten extent of the base (btrfs frees extents whole).
// That is "bytes of file data this container adds", the same meaning as overlay's upper
// directory. The cost is a walk of the container's tree, paid only when sizes are asked for.
#include "store/btrfs-usage.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <set>
#include <vector>

#include "basic/unique.h"
#include "store/tree-util.h"

namespace berth::store {
namespace {

constexpr unsigned kExtentsPerCall = 256;

bool unchanged_since_snapshot(const struct stat& st, const struct stat& base) {
    return st.st_ino == base.st_ino && st.st_mode == base.st_mode && st.st_size == base.st_size &&
           st.st_ctim.tv_sec == base.st_ctim.tv_sec && st.st_ctim.tv_nsec == base.st_ctim.tv_nsec;
}

// A FIEMAP request with room for kExtentsPerCall extents (struct fiemap ends in a flexible array).
class FiemapBuffer {
public:
    FiemapBuffer()
        : words_((sizeof(struct fiemap) + kExtentsPerCall * sizeof(struct fiemap_extent)) / 8 + 1) {}
    struct fiemap* get() {
        return reinterpret_cast<struct fiemap*>(words_.data());
    }
    void clear() { std::fill(words_.begin(), words_.end(), 0); }

private:
    std::vector<uint64_t> words_;
};

// Bytes of the open regular file's data that only this subvolume holds.
uint64_t file_exclusive_bytes(int fd, const struct stat& st, FiemapBuffer& buf) {
    uint64_t total = 0, start = 0;
    for (;;) {
        buf.clear();
        struct fiemap* map = buf.get();
        map->fm_start = start;
        map->fm_length = FIEMAP_MAX_OFFSET - start;
        map->fm_extent_count = kExtentsPerCall;
        if (::ioctl(fd, FS_IOC_FIEMAP, map) < 0)  // not expected on btrfs: all allocated blocks
            return static_cast<uint64_t>(st.st_blocks) * 512;
        if (map->fm_mapped_extents == 0) break;
        bool last = false;
        uint64_t next = start;
        for (unsigned i = 0; i < map->fm_mapped_extents; ++i) {
            const auto& e = map->fm_extents[i];
            if (e.fe_flags & FIEMAP_EXTENT_DATA_INLINE)
                total += std::min<uint64_t>(e.fe_length, static_cast<uint64_t>(st.st_size));
            else if (!(e.fe_flags & FIEMAP_EXTENT_SHARED))
                total += e.fe_length;
            next = std::max<uint64_t>(next, e.fe_logical + e.fe_length);
            if (e.fe_flags & FIEMAP_EXTENT_LAST) last = true;
        }
        if (last || next <= start) break;
        start = next;
    }
    return total;
}

struct Walk {
    dev_t dev = 0;
    std::set<ino_t> seen;  // hardlinked inodes already counted
    uint64_t total = 0;
    FiemapBuffer fiemap;
};

// Takes ownership of both fds (base_fd may be -1: no counterpart in the base).
void walk(int dir_fd, int base_fd, Walk& w) {
    UniqueFd base(base_fd);
    // Files may come and go while a container runs: whatever vanished mid-walk is skipped.
    for_each_entry(dir_fd, [&](int dir, const char* name, const struct stat& st) {
        if (st.st_dev != w.dev) return;  // a nested subvolume or a mount point: not ours
        struct stat bst {};
        bool in_base = base && ::fstatat(base.get(), name, &bst, AT_SYMLINK_NOFOLLOW) == 0;
        if (S_ISDIR(st.st_mode)) {
            int fd = ::openat(dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (fd < 0) return;
            int bfd = in_base && S_ISDIR(bst.st_mode)
                          ? ::openat(base.get(), name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                          : -1;
            walk(fd, bfd, w);
            return;
        }
        if (!S_ISREG(st.st_mode)) return;
        if (in_base && unchanged_since_snapshot(st, bst)) return;
        if (st.st_nlink > 1 && !w.seen.insert(st.st_ino).second) return;
        UniqueFd fd(::openat(dir, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
        if (!fd) return;
        w.total += file_exclusive_bytes(fd.get(), st, w.fiemap);
    });
}

}  // namespace

Result<uint64_t> btrfs_exclusive_bytes(const std::string& tree, const std::optional<std::string>& base) {
    int fd = ::open(tree.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return fail_errno("open '{}'", tree);
    struct stat st {};
    if (::fstat(fd, &st) < 0) {
        int e = errno;
        ::close(fd);
        return fail(e, "stat '{}': {}", tree, strerror(e));
    }
    Walk w;
    w.dev = st.st_dev;
    int bfd = base ? ::open(base->c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) : -1;
    walk(fd, bfd, w);
    return w.total;
}

}  // namespace berth::store
