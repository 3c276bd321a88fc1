#include "basic/cgroup-util.h"

#include <map>
#include <string_view>
#include <vector>

#include "basic/libmount-dl.h"
#include "basic/unique.h"

namespace berth {

Result<std::string> find_cgroup2_mount(const std::string& mountinfo_path) {
    BERTH_TRY_VOID(libmount.load());
    CPtr<libmnt_table, unref_mount_table> table(sym_mnt_new_table());
    if (!table) return fail(ENOMEM, "allocate a mount table");
    if (int r = sym_mnt_table_parse_file(table.get(), mountinfo_path.c_str()); r < 0)
        return fail(-r, "parse '{}'", mountinfo_path);
    CPtr<libmnt_iter, free_mount_iter> iter(sym_mnt_new_iter(MNT_ITER_FORWARD));
    if (!iter) return fail(ENOMEM, "allocate a mount table iterator");

    // Later lines are mounted later: the last mount at a target is the one a lookup reaches.
    std::map<std::string, bool> on_top;  // target -> is the visible mount there cgroup2
    std::vector<std::string> cgroup2_targets;
    libmnt_fs* fs = nullptr;
    while (sym_mnt_table_next_fs(table.get(), iter.get(), &fs) == 0) {
        const char* target = sym_mnt_fs_get_target(fs);
        const char* type = sym_mnt_fs_get_fstype(fs);
        if (!target) continue;
        bool is_cgroup2 = type && std::string_view(type) == "cgroup2";
        on_top[target] = is_cgroup2;
        if (is_cgroup2) cgroup2_targets.emplace_back(target);
    }
    for (const char* standard : {"/sys/fs/cgroup", "/sys/fs/cgroup/unified"})
        if (auto it = on_top.find(standard); it != on_top.end() && it->second) return std::string(standard);
    for (const auto& target : cgroup2_targets)
        if (on_top[target]) return target;
    return fail(ENOENT, "no cgroup2 file system is mounted (per '{}')", mountinfo_path);
}

}  // namespace berth
