// libarchive, loaded by dlopen() on the paths that read or write archives (basic/dlopen-util.h):
// import, export, commit, fsck's layer checks. A private berthd that only prepares a snapshot
// never maps it (nor libxml2 and ICU behind it).
#pragma once

#include <archive.h>
#include <archive_entry.h>

#include "basic/dlopen-util.h"

#define BERTH_LIBARCHIVE_SYMBOLS(X)          \
    X(archive_entry_atime)                   \
    X(archive_entry_atime_is_set)            \
    X(archive_entry_atime_nsec)              \
    X(archive_entry_filetype)                \
    X(archive_entry_free)                    \
    X(archive_entry_gid)                     \
    X(archive_entry_hardlink)                \
    X(archive_entry_mtime)                   \
    X(archive_entry_mtime_nsec)              \
    X(archive_entry_new)                     \
    X(archive_entry_pathname)                \
    X(archive_entry_perm)                    \
    X(archive_entry_rdev)                    \
    X(archive_entry_set_filetype)            \
    X(archive_entry_set_gid)                 \
    X(archive_entry_set_hardlink)            \
    X(archive_entry_set_mtime)               \
    X(archive_entry_set_pathname)            \
    X(archive_entry_set_perm)                \
    X(archive_entry_set_rdev)                \
    X(archive_entry_set_size)                \
    X(archive_entry_set_symlink)             \
    X(archive_entry_set_uid)                 \
    X(archive_entry_size)                    \
    X(archive_entry_sparse_count)            \
    X(archive_entry_symlink)                 \
    X(archive_entry_uid)                     \
    X(archive_entry_xattr_add_entry)         \
    X(archive_entry_xattr_next)              \
    X(archive_entry_xattr_reset)             \
    X(archive_errno)                         \
    X(archive_error_string)                  \
    X(archive_filter_bytes)                  \
    X(archive_filter_count)                  \
    X(archive_filter_name)                   \
    X(archive_read_data)                     \
    X(archive_read_data_block)               \
    X(archive_read_free)                     \
    X(archive_read_new)                      \
    X(archive_read_next_header)              \
    X(archive_read_open)                     \
    X(archive_read_open_fd)                  \
    X(archive_read_support_filter_all)       \
    X(archive_read_support_filter_none)      \
    X(archive_read_support_format_gnutar)    \
    X(archive_read_support_format_raw)       \
    X(archive_read_support_format_tar)       \
    X(archive_set_error)                     \
    X(archive_write_close)                   \
    X(archive_write_data)                    \
    X(archive_write_free)                    \
    X(archive_write_header)                  \
    X(archive_write_new)                     \
    X(archive_write_open)                    \
    X(archive_write_open2)                   \
    X(archive_write_open_fd)                 \
    X(archive_write_set_bytes_in_last_block) \
    X(archive_write_set_format_pax_restricted)

BERTH_LIBARCHIVE_SYMBOLS(BERTH_DL_DECLARE)

namespace berth::store {

extern DlLibrary libarchive;

// Deleters for CPtr (a template argument must be a function, not the pointer variable).
inline void free_archive_reader(struct archive* a) { sym_archive_read_free(a); }
inline void free_archive_writer(struct archive* a) { sym_archive_write_free(a); }
inline void free_archive_entry(struct archive_entry* e) { sym_archive_entry_free(e); }

}  // namespace berth::store
