// Tree helpers shared by the backends: disk usage, copying a tree with all metadata, listing a
// directory, making a unique name.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "basic/mount-util.h"
#include "basic/result.h"

namespace berth::store {

// Bytes allocated below `path` (st_blocks * 512), each inode counted once, same filesystem only.
uint64_t disk_usage(const std::string& path);

// Copies the tree at `src` into the existing directory `dst` keeping owners, modes, times,
// xattrs (including trusted.overlay.*), hardlinks, device nodes and symlinks.
Result<> copy_tree(const std::string& src, const std::string& dst);

// syncfs(2) of the filesystem holding `path`: makes a whole extracted layer durable with one
// call (instead of an fsync per file) before the rename that publishes it.
Result<> sync_filesystem(const std::string& path);

// Calls fn(dir fd, name, lstat of it) for each entry of the directory `dirfd` ("." and ".."
// excluded), taking ownership of `dirfd`. Entries that vanish mid-walk (a running container's
// tree) are skipped; an unreadable directory is walked as empty. For the usage walks.
void for_each_entry(int dirfd,
                    const std::function<void(int dir, const char* name, const struct stat& st)>& fn);

// Names in a directory ("." and ".." excluded); empty when it does not exist.
std::vector<std::string> list_dir(const std::string& path);

// reconcile()'s sweep of one backend directory: every entry of `dir` not in `known` is removed
// through `remove` (given its path) and its name appended to `removed`.
Result<> remove_unknown_entries(const std::string& dir, const std::set<std::string>& known,
                                const std::function<Result<>(const std::string& path)>& remove,
                                std::vector<std::string>& removed);

struct PoolUsage;
// statvfs(path) as a PoolUsage (data only): the pool of a backend that lives in a filesystem.
Result<PoolUsage> filesystem_usage(const std::string& path);

// A random 16-hex-digit token for staging names.
std::string random_token();

// umount2(path, MNT_DETACH) when `path` is a mount point; fine when it is not.
Result<> unmount_if_mounted(const std::string& path);
using berth::is_mount_point;  // basic/mount-util.h

}  // namespace berth::store
