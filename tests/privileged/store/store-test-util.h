// Helpers for the store's privileged tests: building small layer tars, mounting a MountSpec the
// way the runtime would, reading files.
#pragma once

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "basic/fs-util.h"
#include "basic/string-util.h"
#include "basic/unique.h"
#include "store/backend.h"

namespace berth::store::test {

struct TarEntry {
    std::string path;
    char type = 'f';   // f file, d dir, l symlink, h hardlink, c char / b block device, p fifo
    std::string data;  // file content, or link target
    mode_t mode = 0644;
    uid_t uid = 0;
    gid_t gid = 0;
    dev_t rdev = 0;
};

// Writes a tar (optionally "gzip"/"zstd" compressed) to a memfd and returns it rewound.
inline UniqueFd make_tar(const std::vector<TarEntry>& entries, const char* filter = nullptr) {
    UniqueFd fd(::memfd_create("berth-test-tar", MFD_CLOEXEC));
    struct archive* a = archive_write_new();
    archive_write_set_format_pax_restricted(a);
    if (filter && std::string(filter) == "gzip") archive_write_add_filter_gzip(a);
    if (filter && std::string(filter) == "zstd") archive_write_add_filter_zstd(a);
    archive_write_set_bytes_in_last_block(a, 1);
    archive_write_open_fd(a, fd.get());
    for (const auto& t : entries) {
        struct archive_entry* e = archive_entry_new();
        archive_entry_set_pathname(e, t.path.c_str());
        archive_entry_set_uid(e, t.uid);
        archive_entry_set_gid(e, t.gid);
        archive_entry_set_mtime(e, 1700000000, 0);
        switch (t.type) {
            case 'd':
                archive_entry_set_filetype(e, AE_IFDIR);
                archive_entry_set_perm(e, t.mode == 0644 ? 0755 : t.mode);
                break;
            case 'l':
                archive_entry_set_filetype(e, AE_IFLNK);
                archive_entry_set_symlink(e, t.data.c_str());
                archive_entry_set_perm(e, 0777);
                break;
            case 'h':
                archive_entry_set_filetype(e, AE_IFREG);
                archive_entry_set_hardlink(e, t.data.c_str());
                break;
            case 'c':
                archive_entry_set_filetype(e, AE_IFCHR);
                archive_entry_set_rdev(e, t.rdev);
                archive_entry_set_perm(e, 0600);
                break;
            case 'b':
                archive_entry_set_filetype(e, AE_IFBLK);
                archive_entry_set_rdev(e, t.rdev);
                archive_entry_set_perm(e, 0600);
                break;
            case 'p':
                archive_entry_set_filetype(e, AE_IFIFO);
                archive_entry_set_perm(e, 0600);
                break;
            default:
                archive_entry_set_filetype(e, AE_IFREG);
                archive_entry_set_perm(e, t.mode);
                archive_entry_set_size(e, static_cast<la_int64_t>(t.data.size()));
        }
        archive_write_header(a, e);
        if (t.type == 'f' && !t.data.empty()) archive_write_data(a, t.data.data(), t.data.size());
        archive_entry_free(e);
    }
    archive_write_close(a);
    archive_write_free(a);
    ::lseek(fd.get(), 0, SEEK_SET);
    return fd;
}

inline std::string slurp(const std::string& path) {
    auto r = read_file(path);
    return r ? *r : std::string("<missing>");
}

// Mounts a MountSpec at `target` (like the runtime does, but on the host); unmounts on scope exit.
class MountedSpec {
public:
    MountedSpec(const MountSpec& spec, const std::string& target) : target_(target) {
        int flags = spec.read_only ? MS_RDONLY : 0;
        int r = -1;
        switch (spec.kind) {
            case MountSpec::Kind::Bind:
                r = ::mount(spec.source.c_str(), target.c_str(), nullptr, MS_BIND | MS_REC, nullptr);
                break;
            case MountSpec::Kind::Overlay: {
                std::string opts = "lowerdir=" + join(spec.lowerdirs, ":") + ",upperdir=" + spec.upperdir +
                                   ",workdir=" + spec.workdir;
                if (!spec.options.empty()) opts += "," + spec.options;
                r = ::mount("overlay", target.c_str(), "overlay", flags, opts.c_str());
                break;
            }
            case MountSpec::Kind::Block:
                r = ::mount(spec.source.c_str(), target.c_str(), spec.fstype.c_str(), flags,
                            spec.options.empty() ? nullptr : spec.options.c_str());
                break;
        }
        if (r < 0)
            error_ = std::string("mount: ") + strerror(errno);
        else
            mounted_ = true;
    }
    ~MountedSpec() {
        if (mounted_) ::umount2(target_.c_str(), MNT_DETACH);
    }
    bool ok() const { return mounted_; }
    const std::string& error() const { return error_; }

private:
    std::string target_, error_;
    bool mounted_ = false;
};

}  // namespace berth::store::test
