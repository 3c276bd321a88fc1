// Tree helpers shared by the backends: disk usage, copying a tree with all metadata, listing a
// directory, making a unique name.
#pragma once

#include <cstdint>
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

// Names in a directory ("." and ".." excluded); empty when it does not exist.
std::vector<std::string> list_dir(const std::string& path);

// A random 16-hex-digit token for staging names.
std::string random_token();

// umount2(path, MNT_DETACH) when `path` is a mount point; fine when it is not.
Result<> unmount_if_mounted(const std::string& path);
using berth::is_mount_point;  // basic/mount-util.h

}  // namespace berth::store
