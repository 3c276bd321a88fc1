#include "basic/probe-util.h"

#include <blkid/blkid.h>

#include "basic/dlopen-util.h"
#include "basic/unique.h"

namespace berth {

namespace {

// libblkid, dlopen()ed at the first probe (basic/dlopen-util.h): only the dm-thin backend and
// loop-backed pools probe a file system; linked, it was mapped into every berthd at start.
#define BERTH_LIBBLKID_SYMBOLS(X)        \
    X(blkid_new_probe_from_filename)     \
    X(blkid_free_probe)                  \
    X(blkid_probe_enable_superblocks)    \
    X(blkid_probe_set_superblocks_flags) \
    X(blkid_probe_enable_partitions)     \
    X(blkid_do_safeprobe)                \
    X(blkid_probe_lookup_value)
BERTH_LIBBLKID_SYMBOLS(BERTH_DL_DECLARE)
BERTH_LIBBLKID_SYMBOLS(BERTH_DL_DEFINE)
DlLibrary libblkid{"libblkid.so.1", {BERTH_LIBBLKID_SYMBOLS(BERTH_DL_ENTRY)}};

void free_probe(blkid_probe probe) { sym_blkid_free_probe(probe); }

}  // namespace

Result<std::string> probe_filesystem(const std::string& path) {
    BERTH_TRY_VOID(libblkid.load());
    errno = 0;
    CPtr<blkid_struct_probe, free_probe> probe(sym_blkid_new_probe_from_filename(path.c_str()));
    if (!probe) return fail_errno("open '{}' to probe its file system", path);
    sym_blkid_probe_enable_superblocks(probe.get(), 1);
    sym_blkid_probe_set_superblocks_flags(probe.get(), BLKID_SUBLKS_TYPE);
    sym_blkid_probe_enable_partitions(probe.get(), 1);
    switch (sym_blkid_do_safeprobe(probe.get())) {
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
    if (sym_blkid_probe_lookup_value(probe.get(), "TYPE", &type, nullptr) == 0 && type)
        return std::string(type);
    if (sym_blkid_probe_lookup_value(probe.get(), "PTTYPE", &type, nullptr) == 0 && type)
        return fail(EMEDIUMTYPE, "'{}' holds a {} partition table, not a file system", path, type);
    return std::string();
}

}  // namespace berth

BERTH_ELF_NOTE_DLOPEN(libblkid_note, "file system probing", "libblkid.so.1")
