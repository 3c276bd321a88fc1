// Format detection for an image given as one stream: an OCI layout archive, a docker-archive, or
// (anything else that is a tar) a rootfs tarball.
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <ctime>

#include "basic/fs-util.h"
#include "basic/string-util.h"
#include "store/digest.h"
#include "store/image-import-internal.h"
#include "store/layer-extract.h"
#include "store/layer-transaction.h"
#include "store/libarchive-dl.h"
#include "store/store-impl.h"
#include "store/store-json.h"
#include "store/tree-tar.h"
#include "store/tree-util.h"

namespace berth::store {
namespace importer {

namespace {

bool looks_like_image_member(const std::string& n) {
    if (n == "oci-layout" || n == "index.json" || n == "manifest.json" || n == "repositories") return true;
    if (n.rfind("blobs/sha256/", 0) == 0) return true;
    if (n.size() >= 64) {
        std::string_view h(n.data(), 64);
        bool hex = std::all_of(h.begin(), h.end(),
                               [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
        if (hex && (n.size() == 64 || n[64] == '/' || n.substr(64) == ".json" || n.substr(64) == ".tar"))
            return true;
    }
    return false;
}

}  // namespace

// Reads the first members' names to tell an image archive from a rootfs tarball.
Result<ImportFormat> sniff(int fd) {
    off_t start = ::lseek(fd, 0, SEEK_CUR);
    BERTH_TRY_VOID(libarchive.load());
    CPtr<struct archive, free_archive_reader> a(sym_archive_read_new());
    sym_archive_read_support_format_tar(a.get());
    sym_archive_read_support_format_gnutar(a.get());
    sym_archive_read_support_filter_all(a.get());
    if (sym_archive_read_open_fd(a.get(), fd, 1 << 16) != ARCHIVE_OK)
        return fail(EIO, "not a readable archive: {}", sym_archive_error_string(a.get()));
    ImportFormat result = ImportFormat::RootfsTar;
    for (int i = 0; i < 16; ++i) {
        struct archive_entry* e = nullptr;
        int r = sym_archive_read_next_header(a.get(), &e);
        if (r == ARCHIVE_EOF) break;
        if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
            return fail(EIO, "not a readable archive: {}", sym_archive_error_string(a.get()));
        auto n = member_name(sym_archive_entry_pathname(e) ? sym_archive_entry_pathname(e) : "");
        if (!n) break;  // the real pass reports it
        if (*n == "oci-layout" || n->rfind("blobs/", 0) == 0 || *n == "index.json") {
            result = ImportFormat::OciLayout;
            break;
        }
        if (looks_like_image_member(*n)) {
            result = ImportFormat::DockerArchive;
            break;
        }
        if (sym_archive_entry_filetype(e) != AE_IFDIR) break;  // rootfs content
    }
    if (::lseek(fd, start, SEEK_SET) < 0) return fail_errno("rewind input");
    return result;
}

}  // namespace importer

}  // namespace berth::store
