// libmount, dlopen()ed at its first use (basic/dlopen-util.h), for mount-util.cpp and
// cgroup-util.cpp. Linked, it also mapped libblkid, libselinux and libpcre2 into every berthd at
// start (libselinux's constructor reads /proc/filesystems): the private berthd that serves one
// embedded `berth run` (bus/private-berthd.cpp) never reads a mount table (issue #14).
#pragma once

#include <libmount/libmount.h>

#include "basic/dlopen-util.h"

#define BERTH_LIBMOUNT_SYMBOLS(X) \
    X(mnt_new_table)              \
    X(mnt_unref_table)            \
    X(mnt_table_parse_file)       \
    X(mnt_new_iter)               \
    X(mnt_free_iter)              \
    X(mnt_table_next_fs)          \
    X(mnt_fs_get_id)              \
    X(mnt_fs_get_parent_id)       \
    X(mnt_fs_get_target)          \
    X(mnt_fs_get_root)            \
    X(mnt_fs_get_fstype)          \
    X(mnt_fs_get_source)          \
    X(mnt_fs_strdup_options)

namespace berth {

BERTH_LIBMOUNT_SYMBOLS(BERTH_DL_DECLARE)
extern DlLibrary libmount;

// For CPtr (unique.h): the table and the iterator, freed through the loaded library (an object
// of it exists only once it loaded).
inline void unref_mount_table(libmnt_table* table) { sym_mnt_unref_table(table); }
inline void free_mount_iter(libmnt_iter* iter) { sym_mnt_free_iter(iter); }

}  // namespace berth
