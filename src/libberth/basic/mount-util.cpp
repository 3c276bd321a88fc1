#include "basic/mount-util.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>

#include "basic/libmount-dl.h"
#include "basic/unique.h"

#ifndef STATX_ATTR_MOUNT_ROOT
#define STATX_ATTR_MOUNT_ROOT 0x00002000
#endif

namespace berth {

namespace {

std::string str(const char* s) { return s ? s : ""; }

bool at_or_below(const std::string& path, const std::string& dir) {
    if (dir == "/") return !path.empty() && path[0] == '/';
    return path.compare(0, dir.size(), dir) == 0 && (path.size() == dir.size() || path[dir.size()] == '/');
}

}  // namespace

Result<std::vector<MountEntry>> read_mount_table(const std::string& mountinfo) {
    BERTH_TRY_VOID(libmount.load());
    CPtr<libmnt_table, unref_mount_table> table(sym_mnt_new_table());
    if (!table) return fail(ENOMEM, "read '{}'", mountinfo);
    if (int r = sym_mnt_table_parse_file(table.get(), mountinfo.c_str()); r < 0)
        return fail(-r, "parse mount table '{}'", mountinfo);
    CPtr<libmnt_iter, free_mount_iter> iter(sym_mnt_new_iter(MNT_ITER_FORWARD));
    if (!iter) return fail(ENOMEM, "read '{}'", mountinfo);
    std::vector<MountEntry> out;
    libmnt_fs* fs = nullptr;
    while (sym_mnt_table_next_fs(table.get(), iter.get(), &fs) == 0) {
        MountEntry e;
        e.id = static_cast<uint64_t>(std::max(0, sym_mnt_fs_get_id(fs)));
        e.parent_id = static_cast<uint64_t>(std::max(0, sym_mnt_fs_get_parent_id(fs)));
        e.target = str(sym_mnt_fs_get_target(fs));
        e.root = str(sym_mnt_fs_get_root(fs));
        e.fstype = str(sym_mnt_fs_get_fstype(fs));
        e.source = str(sym_mnt_fs_get_source(fs));
        CPtr<char, free> options(sym_mnt_fs_strdup_options(fs));
        e.options = str(options.get());
        out.push_back(std::move(e));
    }
    return out;
}

Result<std::vector<std::string>> mounts_at_or_below(const std::string& dir, const std::string& mountinfo) {
    std::string base = dir;
    while (base.size() > 1 && base.back() == '/') base.pop_back();
    std::vector<std::string> out;
    for (auto& e : BERTH_TRY(read_mount_table(mountinfo)))
        if (at_or_below(e.target, base)) out.push_back(std::move(e.target));
    // Deepest first; a path mounted over twice is listed twice (one umount each).
    std::stable_sort(out.begin(), out.end(), [](const std::string& a, const std::string& b) {
        return std::count(a.begin(), a.end(), '/') > std::count(b.begin(), b.end(), '/');
    });
    return out;
}

bool is_mount_point(const std::string& path) {
    struct statx st {};
    if (::statx(AT_FDCWD, path.c_str(), AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT, STATX_MNT_ID, &st) < 0)
        return false;
    if (st.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT)
        return (st.stx_attributes & STATX_ATTR_MOUNT_ROOT) != 0;
    // Before Linux 5.8: a mount root is on another mount than its parent directory.
    if (!(st.stx_mask & STATX_MNT_ID) || !S_ISDIR(st.stx_mode)) return false;
    struct statx parent {};
    std::string up = path + "/..";
    if (::statx(AT_FDCWD, up.c_str(), AT_NO_AUTOMOUNT, STATX_MNT_ID, &parent) < 0) return false;
    return (parent.stx_mask & STATX_MNT_ID) && parent.stx_mnt_id != st.stx_mnt_id;
}

}  // namespace berth
