// Import of a plain rootfs tarball: one pass into a provisional layer; its chain id (the
// uncompressed digest) is learnt at the end of the stream and the layer committed under it.
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

Result<ImageInfo> import_rootfs(Store::Impl& s, ImportGuard& guard, int fd, const std::string& stage,
                                std::string_view name_tag, Progress& progress,
                                const std::atomic<bool>* cancel) {
    std::string tee_path = stage + "/blobs/layer.part";
    UniqueFd tee(::open(tee_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!tee) return fail_errno("stage blob");
    std::string split_part = stage + "/splits/layer.part";
    UniqueFd split(::open(split_part.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!split) return fail_errno("stage tar-split");
    off_t start = ::lseek(fd, 0, SEEK_CUR);
    // The digest is known only at the end of the stream: a provisional id, committed under the real one.
    auto tx = BERTH_TRY(
        LayerTransaction::begin(*s.backend, sha256_digest("provisional " + random_token()), std::nullopt));
    ExtractOptions opts = extract_options(s.options);
    opts.whiteouts = tx.writer().whiteouts;
    opts.tee_fd = tee.get();
    opts.split_fd = split.get();
    opts.cancel = cancel;
    progress.p.layer_count = 1;
    opts.progress = [&](uint64_t n) {
        progress.p.bytes_done = n;
        progress(ImportPhase::Layer);
    };
    auto res = BERTH_TRY_CTX(extract_layer(fd, tx.writer().path, opts), "rootfs tarball");
    BERTH_TRY_VOID(guard.claim(res.diff_id));
    if (s.backend->has_layer(res.diff_id)) {
        BERTH_TRY_VOID(tx.abort());
    } else {
        tx.writer().chain_id = res.diff_id;
        BERTH_TRY_VOID(tx.commit());
    }
    progress(ImportPhase::LayerCommitted);
    if (res.split) {
        // Valid for an existing layer of the same diff ID too: it was made from the same tar.
        BERTH_TRY_VOID(stage_split(split.get(), split_part, stage, res.diff_id));
        ::unlink(tee_path.c_str());
    } else {
        ::unlink(split_part.c_str());
        if (!res.teed) BERTH_TRY_VOID_CTX(copy_to(fd, start, tee.get()), "stage blob");
        if (::fsync(tee.get()) < 0) return fail_errno("fsync blob");
        if (::rename(tee_path.c_str(),
                     (stage + "/blobs/" + std::string(digest_hex(res.blob_digest))).c_str()) < 0)
            return fail_errno("stage blob");
    }
    LayerInfo li{res.diff_id,
                 res.diff_id,
                 res.blob_digest,
                 layer_media_type(res.compression),
                 res.blob_size,
                 res.size,
                 std::move(res.skipped_device_nodes)};
    // Deterministic config and manifest: the same tarball always gives the same image id.
    json config = {{"architecture", host_arch()},
                   {"os", "linux"},
                   {"config", json::object()},
                   {"rootfs", {{"type", "layers"}, {"diff_ids", {li.diff_id}}}}};
    std::string config_text = config.dump();
    json manifest = {
        {"schemaVersion", 2},
        {"mediaType", kOciManifest},
        {"config",
         {{"mediaType", kOciConfig}, {"digest", sha256_digest(config_text)}, {"size", config_text.size()}}},
        {"layers", {{{"mediaType", li.media_type}, {"digest", li.digest}, {"size", li.blob_size}}}}};
    std::string manifest_text = manifest.dump();
    BERTH_TRY_VOID(stage_blob(stage, config_text));
    BERTH_TRY_VOID(stage_blob(stage, manifest_text));
    auto info = base_info(config, sha256_digest(config_text), sha256_digest(manifest_text), {li});
    auto names = BERTH_TRY(names_for(name_tag, {}));
    return finish_import(s, stage, std::move(info), names, progress);
}

}  // namespace importer

}  // namespace berth::store
