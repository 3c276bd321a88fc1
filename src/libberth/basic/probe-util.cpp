#include "basic/probe-util.h"

#include <blkid/blkid.h>

#include "basic/unique.h"

namespace berth {

Result<std::string> probe_filesystem(const std::string& path) {
    errno = 0;
    CPtr<blkid_struct_probe, blkid_free_probe> probe(blkid_new_probe_from_filename(path.c_str()));
    if (!probe) return fail_errno("open '{}' to probe its file system", path);
    blkid_probe_enable_superblocks(probe.get(), 1);
    blkid_probe_set_superblocks_flags(probe.get(), BLKID_SUBLKS_TYPE);
    blkid_probe_enable_partitions(probe.get(), 1);
    switch (blkid_do_safeprobe(probe.get())) {
        case 0:
            break;
        case 1:
            return std::string();
        case -2:
            return fail(EUCLEAN, "'{}' carries several file system signatures; refusing to guess", path);
        default:
            return fail_errno("probe the file system of '{}'", path);
    }
    const char* type = nullptr;
    if (blkid_probe_lookup_value(probe.get(), "TYPE", &type, nullptr) == 0 && type) return std::string(type);
    if (blkid_probe_lookup_value(probe.get(), "PTTYPE", &type, nullptr) == 0 && type)
        return fail(EMEDIUMTYPE, "'{}' holds a {} partition table, not a file system", path, type);
    return std::string();
}

}  // namespace berth
