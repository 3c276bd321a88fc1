// Image import: the entry points, staging an archive, and importing a manifest's layers. Each
// format has its own file (image-import-internal.h lists them); commit and export are in
// image-commit-export.cpp.
//
// Flow of an import (no store lock held except where noted):
//   1. ROOT/staging/imp-<token>/ is made. An archive's members are streamed once into
//      staging/in/ and hashed on the way (an OCI blob whose name is not its sha256 is rejected
//      right there). An OCI directory is read in place (openat2, no symlinks).
//   2. Manifest and config are verified against their digests; the config's diff_ids give the
//      chain IDs. For each layer the chain ID is *claimed* (another import of the same layer
//      waits, gc skips it); an existing layer whose blob is stored is reused without reading; else
//      the blob is decompressed, hashed and extracted in one pass into backend.begin_layer(), its
//      blob digest and diff ID verified, then committed (or aborted).
//   3. publish_locked() (under the store mutex) renames the staged blobs into ROOT/blobs, writes
//      the image file, then refs.json. The staging directory is removed on every path out.
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
#include <functional>

#include "basic/chase.h"
#include "basic/fs-util.h"
#include "basic/io-util.h"
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

std::string host_arch() {
    struct utsname u {};
    ::uname(&u);
    std::string m = u.machine;
    if (m == "x86_64") return "amd64";
    if (m == "aarch64") return "arm64";
    return m;
}

std::string layer_media_type(const std::string& compression) {
    if (compression == "gzip") return "application/vnd.oci.image.layer.v1.tar+gzip";
    if (compression == "zstd") return "application/vnd.oci.image.layer.v1.tar+zstd";
    if (compression == "none") return "application/vnd.oci.image.layer.v1.tar";
    return "application/vnd.oci.image.layer.v1.tar+" + compression;
}

Result<json> parse_json_text(const std::string& text, std::string_view what) {
    try {
        return json::parse(text);
    } catch (const std::exception& e) {
        return fail(EBADMSG, "{} is not valid JSON: {}", what, e.what());
    }
}

// Normalises an archive member name: strips "./", rejects absolute paths and "..".
Result<std::string> member_name(std::string_view raw) {
    if (!raw.empty() && raw[0] == '/') return fail(EPERM, "archive member '{}': absolute path", raw);
    std::vector<std::string> parts;
    for (auto& p : split(raw, '/')) {
        if (p == "..") return fail(EPERM, "archive member '{}': path contains '..'", raw);
        if (p != ".") parts.push_back(p);
    }
    return join(parts, "/");
}

bool Input::has(const std::string& name) const {
    if (dirfd >= 0) {
        struct stat st {};
        return ::fstatat(dirfd, name.c_str(), &st, 0) == 0;
    }
    return staged(name) != nullptr;
}

Result<UniqueFd> Input::open(const std::string& raw) const {
    std::string name = BERTH_TRY(member_name(raw));
    if (dirfd >= 0) {
        int fd = chase_raw(dirfd, name.c_str(), O_RDONLY, kResolveStrictlyBeneath);
        if (fd < 0) return fail_errno("open '{}' in the layout", name);
        struct stat st {};
        if (::fstat(static_cast<int>(fd), &st) < 0 || !S_ISREG(st.st_mode)) {
            ::close(static_cast<int>(fd));
            return fail(EINVAL, "'{}' is not a regular file", name);
        }
        return UniqueFd(static_cast<int>(fd));
    }
    const Staged* s = staged(name);
    if (!s) return fail(ENOENT, "archive has no member '{}'", name);
    UniqueFd fd(::open(s->path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return fail_errno("open staged '{}'", name);
    return fd;
}

Result<std::string> Input::read_small(const std::string& name) const {
    auto fd = BERTH_TRY(open(name));
    struct stat st {};
    if (::fstat(fd.get(), &st) < 0) return fail_errno("stat '{}'", name);
    if (static_cast<uint64_t>(st.st_size) > kMaxJson)
        return fail(EFBIG, "'{}' is larger than {} bytes", name, kMaxJson);
    std::string out(static_cast<size_t>(st.st_size), '\0');
    size_t got = 0;
    while (got < out.size()) {
        ssize_t n = ::read(fd.get(), out.data() + got, out.size() - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return fail_errno("read '{}'", name);
        got += static_cast<size_t>(n);
    }
    return out;
}

// A blob by digest, verified.
Result<std::string> Input::read_blob(const std::string& digest, std::string_view what) const {
    if (!valid_digest(digest)) return fail(EINVAL, "{}: invalid digest '{}'", what, digest);
    std::string name = "blobs/sha256/" + std::string(digest_hex(digest));
    auto text = BERTH_TRY_CTX(read_small(name), what);
    auto actual = sha256_digest(text);
    if (actual != digest)
        return fail(EBADMSG, "{} '{}': digest mismatch (content is {})", what, name, actual);
    return text;
}

namespace {

struct ArchiveInput {
    int fd;
    const std::atomic<bool>* cancel;
    std::vector<char> buf = std::vector<char>(1 << 20);
    uint64_t bytes_read = 0;
    static la_ssize_t read(struct archive* a, void* data, const void** out) {
        auto* in = static_cast<ArchiveInput*>(data);
        ssize_t n = read_input(in->fd, in->buf.data(), in->buf.size(), in->cancel);
        if (n < 0) {
            int err = errno;
            sym_archive_set_error(a, err, "%s", err == ECANCELED ? "import cancelled" : "read failed");
            return -1;
        }
        in->bytes_read += static_cast<uint64_t>(n);
        *out = in->buf.data();
        return n;
    }
};

// Streams an archive's members into stage/in/, hashing each one.
// A compressed image archive (oci-archive.tar.gz) is a bomb as well as a layer can be: its members
// are held to the layer limits (a member is at most a layer blob, which is at most its layer).
Result<> stage_archive(int fd, const std::string& stage, Input& in, Progress& progress,
                       const std::atomic<bool>* cancel, const LayerLimits& limits) {
    BERTH_TRY_VOID(mkdir_p(stage + "/in", 0700));
    BERTH_TRY_VOID(libarchive.load());
    CPtr<struct archive, free_archive_reader> a(sym_archive_read_new());
    sym_archive_read_support_format_tar(a.get());
    sym_archive_read_support_format_gnutar(a.get());
    sym_archive_read_support_filter_all(a.get());
    // Reads through read_input() so a cancel is noticed while a pipe's writer stalls.
    ArchiveInput src{fd, cancel};
    if (sym_archive_read_open(a.get(), &src, nullptr, ArchiveInput::read, nullptr) != ARCHIVE_OK)
        return fail(EIO, "open archive: {}", sym_archive_error_string(a.get()));
    std::vector<char> buf(1 << 20);
    size_t count = 0;
    uint64_t staged_bytes = 0;
    for (;;) {
        if (cancel && cancel->load()) return fail(ECANCELED, "import cancelled");
        struct archive_entry* e = nullptr;
        int r = sym_archive_read_next_header(a.get(), &e);
        if (r == ARCHIVE_EOF) break;
        if (r != ARCHIVE_OK && r != ARCHIVE_WARN && cancel && cancel->load())
            return fail(ECANCELED, "import cancelled");
        if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
            return fail(EIO, "read archive{}: {}",
                        e && sym_archive_entry_pathname(e)
                            ? fmt::format(" member '{}'", sym_archive_entry_pathname(e))
                            : "",
                        sym_archive_error_string(a.get()));
        const char* raw = sym_archive_entry_pathname(e);
        if (!raw) return fail(EINVAL, "archive member without a name");
        if (strlen(raw) >= 4096) return fail(ENAMETOOLONG, "archive member name is longer than 4095 bytes");
        std::string name = BERTH_TRY(member_name(raw));
        if (++count > 100000) return fail(E2BIG, "archive has more than 100000 members");
        auto type = sym_archive_entry_filetype(e);
        if (type == AE_IFDIR || name.empty()) continue;
        if (type == AE_IFLNK) {
            // docker save links identical layers: "<id>/layer.tar -> ../<other>/layer.tar"
            std::string dir = name.find('/') == std::string::npos ? "" : name.substr(0, name.rfind('/'));
            std::string target = sym_archive_entry_symlink(e) ? sym_archive_entry_symlink(e) : "";
            if (target.empty() || target[0] == '/')
                return fail(EPERM, "archive member '{}': symlink to '{}'", name, target);
            auto joined = normalize_absolute_path("/" + (dir.empty() ? target : dir + "/" + target));
            if (joined.empty()) return fail(EPERM, "archive member '{}': bad symlink", name);
            std::string rel = joined.substr(1);
            if ((dir.empty() ? target : dir + "/" + target).find("..") != std::string::npos &&
                ("/" + dir + "/" + target).find("/../..") != std::string::npos)
                return fail(EPERM, "archive member '{}': symlink leaves the archive", name);
            in.aliases[name] = rel;
            continue;
        }
        if (type != AE_IFREG)
            return fail(EPERM, "archive member '{}': unexpected file type {:#o}", name,
                        static_cast<unsigned>(type));
        if (sym_archive_entry_hardlink(e)) {
            in.aliases[name] = BERTH_TRY(member_name(sym_archive_entry_hardlink(e)));
            continue;
        }
        Input::Staged st;
        st.path = fmt::format("{}/in/{}", stage, count);
        UniqueFd out(::open(st.path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
        if (!out) return fail_errno("stage '{}'", name);
        Sha256 h;
        for (;;) {
            la_ssize_t n = sym_archive_read_data(a.get(), buf.data(), buf.size());
            if (n < 0 && cancel && cancel->load()) return fail(ECANCELED, "import cancelled");
            if (n < 0) return fail(EIO, "archive member '{}': {}", name, sym_archive_error_string(a.get()));
            if (n == 0) break;
            h.update(buf.data(), static_cast<size_t>(n));
            st.size += static_cast<uint64_t>(n);
            staged_bytes += static_cast<uint64_t>(n);
            if (limits.max_size && st.size > limits.max_size)
                return fail(EFBIG, "archive member '{}' is larger than max_layer_size ({} bytes)", name,
                            limits.max_size);
            if (limits.max_ratio && staged_bytes > LayerLimits::kRatioGrace && src.bytes_read > 0 &&
                static_cast<double>(staged_bytes) >
                    static_cast<double>(limits.max_ratio) * static_cast<double>(src.bytes_read))
                return fail(
                    EFBIG,
                    "archive member '{}': the archive expands more than max_layer_ratio ({}:1): {} bytes "
                    "from {} (a decompression bomb?)",
                    name, limits.max_ratio, staged_bytes, src.bytes_read);
            BERTH_TRY_VOID(berth::write_all(out.get(), std::string_view(buf.data(), static_cast<size_t>(n)),
                                            fmt::format("stage '{}'", name)));
            progress.p.bytes_done += static_cast<uint64_t>(n);
            if (st.size % (4 << 20) < static_cast<uint64_t>(n)) progress(ImportPhase::Reading);
        }
        st.digest = h.finish();
        if (name.rfind("blobs/sha256/", 0) == 0) {
            std::string expect = "sha256:" + name.substr(13);
            if (!valid_digest(expect))
                return fail(EINVAL, "archive member '{}': not a sha256 blob name", name);
            if (expect != st.digest)
                return fail(EBADMSG, "archive member '{}': digest mismatch (content is {})", name, st.digest);
        }
        in.files[name] = std::move(st);
        progress(ImportPhase::Reading);
    }
    return {};
}

}  // namespace

// Publishes a finished tar-split into the stage (stage/splits/<chain hex>), durable like a blob.
Result<> stage_split(int fd, const std::string& part, const std::string& stage, const std::string& chain_id) {
    if (::fsync(fd) < 0) return fail_errno("fsync tar-split");
    if (::rename(part.c_str(), (stage + "/splits/" + std::string(digest_hex(chain_id))).c_str()) < 0)
        return fail_errno("stage tar-split");
    return {};
}

// Copies `in` from `offset` to its end onto `out` (a full blob when no tar-split could be kept).
Result<> copy_to(int in, off_t offset, int out) {
    if (::ftruncate(out, 0) < 0 || ::lseek(out, 0, SEEK_SET) < 0) return fail_errno("reset blob copy");
    for (;;) {
        ssize_t n = ::copy_file_range(in, &offset, out, nullptr, 1 << 30, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP)) break;
        if (n < 0) return fail_errno("copy");
        if (n == 0) return {};
    }
    std::vector<char> buf(1 << 20);
    for (;;) {
        ssize_t n = ::pread(in, buf.data(), buf.size(), offset);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return fail_errno("read");
        if (n == 0) return {};
        BERTH_TRY_VOID(
            berth::write_all(out, std::string_view(buf.data(), static_cast<size_t>(n)), "the spooled copy"));
        offset += n;
    }
}

// berthd.toml's import settings, as the extractor takes them.
ExtractOptions extract_options(const StoreOptions& o) {
    ExtractOptions opts;
    opts.allow_device_nodes = o.allow_device_nodes;
    opts.limits = {o.max_layer_size, o.max_layer_entries, o.max_layer_ratio};
    return opts;
}

namespace {

// Whether a layer's media type says its blob is compressed (gzip or zstd).
bool compressed_layer(const std::string& media_type) {
    std::string_view mt = media_type;
    for (std::string_view end : {"+gzip", "+zstd", ".gzip"})
        if (mt.size() >= end.size() && mt.substr(mt.size() - end.size()) == end) return true;
    return false;
}

// A layer whose blob is still downloading (blob-feed.h). A compressed one is followed while it
// arrives; an uncompressed one is read once complete, so that it keeps a tar-split instead of a
// copy (docs/STORAGE.md, "tar-split"), at the price of not overlapping its download. Whatever was
// extracted is committed by the caller only when this returns, which is only once the download
// verified the blob; a transfer that started over under the reader is read again, complete.
Result<ExtractResult> extract_arriving(BlobFeed& feed, const LayerSource& src,
                                       const std::function<Result<ExtractResult>(int)>& extract) {
    auto mode = compressed_layer(src.media_type) ? BlobFeed::Mode::Follow : BlobFeed::Mode::Complete;
    auto input = BERTH_TRY(feed.open(src.member, mode));
    auto res = extract(input.get());
    input.reset();  // a follower blocked on a full pipe ends (EPIPE)
    // The download's own error (a wrong digest, a reset) says more than a stream cut short by it.
    auto verdict = BERTH_TRY(feed.verdict(src.member));
    if (verdict == BlobFeed::Verdict::Restarted) {
        auto again = BERTH_TRY(feed.open(src.member, BlobFeed::Mode::Complete));
        return extract(again.get());
    }
    if (!res) return res;
    if (verdict != BlobFeed::Verdict::Verified)
        return fail(EIO, "the layer's stream ended before its download did");
    return res;
}

}  // namespace

Result<std::vector<LayerInfo>> import_layers(Store::Impl& s, ImportGuard& guard, const Input& in,
                                             const std::vector<LayerSource>& srcs,
                                             const std::vector<std::string>& diff_ids,
                                             const std::string& stage, Progress& progress,
                                             const std::atomic<bool>* cancel) {
    if (srcs.size() != diff_ids.size())
        return fail(EBADMSG, "manifest lists {} layers but the config has {} diff_ids", srcs.size(),
                    diff_ids.size());
    for (const auto& d : diff_ids)
        if (!valid_digest(d)) return fail(EBADMSG, "config has invalid diff_id '{}'", d);
    auto chains = chain_ids(diff_ids);
    std::vector<LayerInfo> out;
    progress.p.layer_count = srcs.size();
    for (size_t i = 0; i < srcs.size(); ++i) {
        const auto& src = srcs[i];
        progress.p.layer_index = i;
        progress(ImportPhase::Layer);
        std::string ctx = fmt::format("layer {} ('{}')", i, src.member);
        LayerInfo li;
        li.chain_id = chains[i];
        li.diff_id = diff_ids[i];
        BERTH_TRY_VOID_CTX(guard.claim(li.chain_id), ctx);
        // Reuse: the layer and its blob are stored already (another image shares it).
        if (!src.digest.empty() && s.backend->has_layer(li.chain_id) &&
            (path_exists(s.blob_path(src.digest)) ||
             (src.digest == li.diff_id && path_exists(s.split_path(li.chain_id))))) {
            std::lock_guard lock(s.mu);
            bool found = false;
            for (const auto& [_, img] : s.images)
                for (const auto& l : img.layers)
                    if (!found && l.chain_id == li.chain_id && l.digest == src.digest) {
                        li = l;
                        found = true;
                    }
            if (found) {
                out.push_back(li);
                continue;
            }
        }
        const Input::Staged* staged = in.dirfd < 0 ? in.staged(src.member) : nullptr;
        const bool arriving = in.feed && in.feed->arriving(src.member);
        // A complete file of the blob the stage links instead of keeping a copy.
        std::string kept = staged ? staged->path : "";
        std::string tee_path = stage + "/blobs/layer.part";
        UniqueFd tee;
        if (!staged && !arriving) {
            tee.reset(::open(tee_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
            if (!tee) return fail_errno("{}: stage blob", ctx);
        }
        // The input is a regular file here: an uncompressed layer keeps a tar-split, not a copy.
        std::string split_part = stage + "/splits/layer.part";
        UniqueFd split(::open(split_part.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
        if (!split) return fail_errno("{}: stage tar-split", ctx);
        ExtractOptions opts = extract_options(s.options);
        opts.tee_fd = tee.get();
        opts.split_fd = split.get();
        opts.cancel = cancel;
        uint64_t base_done = progress.p.bytes_done;
        opts.progress = [&](uint64_t n) {
            progress.p.bytes_done = base_done + n;
            progress(ImportPhase::Layer);
        };
        std::optional<std::string> parent;
        if (i > 0) parent = chains[i - 1];
        const bool verify_only = s.backend->has_layer(li.chain_id);
        std::optional<LayerTransaction> tx;  // aborted on every return below until committed
        // One reading of the layer's bytes: into a fresh transaction (an earlier attempt's is
        // aborted first), or only hashed when the backend has the layer already.
        auto extract_from = [&](int input) -> Result<ExtractResult> {
            if (verify_only) return extract_layer(input, "", opts);
            if (tx) {
                auto earlier = std::move(*tx);
                tx.reset();
                BERTH_TRY_VOID(earlier.abort());
            }
            tx.emplace(BERTH_TRY(LayerTransaction::begin(*s.backend, li.chain_id, parent)));
            opts.whiteouts = tx->writer().whiteouts;
            return extract_layer(input, tx->writer().path, opts);
        };
        ExtractResult res;
        if (arriving) {
            res = BERTH_TRY_CTX(extract_arriving(*in.feed, src, extract_from), ctx);
            kept = in.feed->final_path(src.member);
        } else {
            auto fd = BERTH_TRY_CTX(in.open(src.member), ctx);
            res = BERTH_TRY_CTX(extract_from(fd.get()), ctx);
        }
        if (!src.digest.empty() && res.blob_digest != src.digest)
            return fail(EBADMSG, "{}: digest mismatch: manifest says {}, content is {}", ctx, src.digest,
                        res.blob_digest);
        if (res.diff_id != li.diff_id)
            return fail(EBADMSG, "{}: diff_id mismatch: config says {}, content is {}", ctx, li.diff_id,
                        res.diff_id);
        if (tx) BERTH_TRY_VOID_CTX(tx->commit(), ctx);
        progress(ImportPhase::LayerCommitted);
        li.digest = res.blob_digest;
        li.blob_size = res.blob_size;
        li.size = res.size;
        li.media_type = src.media_type.empty() ? layer_media_type(res.compression) : src.media_type;
        li.skipped_device_nodes = std::move(res.skipped_device_nodes);
        std::string dst = stage + "/blobs/" + std::string(digest_hex(li.digest));
        if (res.split) {
            BERTH_TRY_VOID_CTX(stage_split(split.get(), split_part, stage, li.chain_id), ctx);
            if (tee) ::unlink(tee_path.c_str());
            out.push_back(li);
            continue;
        }
        ::unlink(split_part.c_str());
        if (!kept.empty()) {
            if (!path_exists(dst) && ::link(kept.c_str(), dst.c_str()) < 0)
                return fail_errno("{}: stage blob", ctx);
        } else {
            if (!res.teed) {
                // The split was abandoned (docs/STORAGE.md, "tar-split"): keep a full copy.
                auto again = BERTH_TRY_CTX(in.open(src.member), ctx);
                BERTH_TRY_VOID_CTX(copy_to(again.get(), 0, tee.get()), fmt::format("{}: stage blob", ctx));
            }
            if (::fsync(tee.get()) < 0) return fail_errno("{}: fsync blob", ctx);
            if (::rename(tee_path.c_str(), dst.c_str()) < 0) return fail_errno("{}: stage blob", ctx);
        }
        out.push_back(li);
    }
    return out;
}

Result<> stage_blob(const std::string& stage, const std::string& content) {
    std::string p = stage + "/blobs/" + std::string(digest_hex(sha256_digest(content)));
    if (path_exists(p)) return {};
    return write_file(p, content);
}

Result<> fsync_staged(const std::string& stage) {
    for (const char* dir : {"/blobs/", "/splits/"})
        for (const auto& n : list_dir(stage + dir)) {
            UniqueFd fd(::open((stage + dir + n).c_str(), O_RDONLY | O_CLOEXEC));
            if (!fd || ::fsync(fd.get()) < 0) return fail_errno("fsync staged blob '{}'", n);
        }
    return {};
}

ImageInfo base_info(const json& config, const std::string& config_digest, const std::string& manifest_digest,
                    std::vector<LayerInfo> layers) {
    ImageInfo info;
    info.id = manifest_digest;
    info.config_digest = config_digest;
    info.layers = std::move(layers);
    info.top_layer = info.layers.empty() ? "" : info.layers.back().chain_id;
    for (const auto& l : info.layers) info.size += l.size;
    info.config = parse_image_config(config);
    info.architecture = config.value("architecture", "");
    info.os = config.value("os", "");
    if (config.contains("created") && config["created"].is_string())
        info.created = parse_rfc3339(config["created"]);
    info.imported = now_seconds();
    return info;
}

Result<std::vector<std::string>> config_diff_ids(const json& config) {
    if (!config.is_object() || !config.contains("rootfs") || !config["rootfs"].is_object() ||
        !config["rootfs"].contains("diff_ids") || !config["rootfs"]["diff_ids"].is_array())
        return fail(EBADMSG, "image config has no rootfs.diff_ids");
    std::vector<std::string> out;
    for (const auto& d : config["rootfs"]["diff_ids"]) {
        if (!d.is_string()) return fail(EBADMSG, "image config: diff_id is not a string");
        out.push_back(d.get<std::string>());
    }
    return out;
}

Result<std::vector<std::string>> names_for(std::string_view name_tag, const std::vector<std::string>& found) {
    std::vector<std::string> out;
    if (!name_tag.empty()) {
        out.push_back(BERTH_TRY(normalize_name_tag(name_tag)));
        return out;
    }
    for (const auto& f : found)
        if (auto n = normalize_name_tag(f)) out.push_back(*n);
    return out;
}

Result<ImageInfo> finish_import(Store::Impl& s, const std::string& stage, ImageInfo info,
                                const std::vector<std::string>& names, Progress& progress) {
    crash_point("import:layers-extracted");
    BERTH_TRY_VOID(fsync_staged(stage));
    ImageInfo published;
    {
        std::lock_guard lock(s.mu);
        published = BERTH_TRY(s.publish_locked(stage, std::move(info), names, progress.fn));
    }
    progress(ImportPhase::Done);  // outside the lock: the image is visible to the caller now
    return published;
}

}  // namespace importer

using namespace importer;

// config.Healthcheck: {"Test": [...], "Interval": ns, "Timeout": ns, "StartPeriod": ns,
// "StartInterval": ns, "Retries": n}. A malformed one is dropped whole (the image imports, without a
// health check) rather than half-read: a probe with the wrong command is worse than none.
ImageHealthcheck parse_image_healthcheck(const json& config) {
    ImageHealthcheck h;
    auto it = config.find("Healthcheck");
    if (it == config.end() || !it->is_object()) return h;
    const json& j = *it;
    auto test = j.find("Test");
    if (test == j.end() || !test->is_array() || test->empty()) return h;
    for (const auto& v : *test) {
        if (!v.is_string()) return {};
        h.test.push_back(v.get<std::string>());
    }
    const std::string& kind = h.test.front();
    if (!(kind == "NONE" || (kind == "CMD" && h.test.size() > 1) ||
          (kind == "CMD-SHELL" && h.test.size() == 2)))
        return {};
    auto ns = [&](const char* key, uint64_t& out) {
        auto v = j.find(key);
        if (v != j.end() && v->is_number_unsigned()) out = v->get<uint64_t>();
    };
    ns("Interval", h.interval_ns);
    ns("Timeout", h.timeout_ns);
    ns("StartPeriod", h.start_period_ns);
    ns("StartInterval", h.start_interval_ns);
    if (auto r = j.find("Retries"); r != j.end() && r->is_number_unsigned() && r->get<uint64_t>() <= 1000)
        h.retries = static_cast<uint32_t>(r->get<uint64_t>());
    return h;
}

ImageConfig parse_image_config(const json& config) {
    ImageConfig c;
    if (!config.is_object() || !config.contains("config") || !config["config"].is_object()) return c;
    const json& j = config["config"];
    auto strings = [&](const char* key) {
        std::vector<std::string> out;
        if (j.contains(key) && j[key].is_array())
            for (const auto& v : j[key])
                if (v.is_string()) out.push_back(v);
        return out;
    };
    auto str = [&](const char* key) {
        return j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : std::string();
    };
    c.entrypoint = strings("Entrypoint");
    c.cmd = strings("Cmd");
    c.env = strings("Env");
    c.user = str("User");
    c.working_dir = str("WorkingDir");
    c.stop_signal = str("StopSignal");
    c.healthcheck = parse_image_healthcheck(j);
    return c;
}

int64_t parse_rfc3339(const std::string& s) {
    struct tm tm {};
    if (!::strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm)) return 0;
    return static_cast<int64_t>(::timegm(&tm));
}

Result<ImageInfo> import_from_dir(Store::Impl& s, int dirfd, std::string_view name_tag,
                                  const ProgressFn& progress_fn, const std::atomic<bool>* cancel,
                                  BlobFeed* arriving) {
    ImportGuard guard(s, cancel);
    Staging stage{s.path("staging/imp-" + random_token())};
    BERTH_TRY_VOID(mkdir_p(stage.dir + "/blobs", 0700));
    BERTH_TRY_VOID(mkdir_p(stage.dir + "/splits", 0700));
    Input in;
    in.dirfd = dirfd;
    in.feed = arriving;
    Progress progress{progress_fn, {}};
    progress(ImportPhase::Reading);
    return import_oci(s, guard, in, stage.dir, name_tag, progress, cancel);
}

Result<ImageInfo> import_from_fd(Store::Impl& s, int fd, ImportFormat format, std::string_view name_tag,
                                 const ProgressFn& progress_fn, const std::atomic<bool>* cancel) {
    if (!name_tag.empty()) BERTH_TRY_VOID(normalize_name_tag(name_tag));
    ImportGuard guard(s, cancel);
    Staging stage{s.path("staging/imp-" + random_token())};
    BERTH_TRY_VOID(mkdir_p(stage.dir + "/blobs", 0700));
    BERTH_TRY_VOID(mkdir_p(stage.dir + "/splits", 0700));
    Progress progress{progress_fn, {}};
    struct stat st {};
    if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
        progress.p.bytes_total = static_cast<uint64_t>(st.st_size);
    progress(ImportPhase::Reading);
    UniqueFd spooled;
    if (format == ImportFormat::Auto) {
        if (!S_ISREG(st.st_mode) || ::lseek(fd, 0, SEEK_CUR) < 0) {
            // A pipe: keep a copy so it can be looked at twice.
            std::string p = stage.dir + "/input";
            spooled.reset(::open(p.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
            if (!spooled) return fail_errno("spool input");
            std::vector<char> buf(1 << 20);
            for (;;) {
                ssize_t n = read_input(fd, buf.data(), buf.size(), cancel);
                if (n < 0 && errno == ECANCELED) return fail(ECANCELED, "import cancelled");
                if (n < 0) return fail_errno("read input");
                if (n == 0) break;
                const uint64_t cap = s.options.max_import_size;
                if (cap && progress.p.bytes_done + static_cast<uint64_t>(n) > cap)
                    return fail(EFBIG, "input is larger than max_import_size ({} bytes)", cap);
                BERTH_TRY_VOID(berth::write_all(spooled.get(),
                                                std::string_view(buf.data(), static_cast<size_t>(n)),
                                                "the spooled input"));
                progress.p.bytes_done += static_cast<uint64_t>(n);
                progress(ImportPhase::Reading);
            }
            ::lseek(spooled.get(), 0, SEEK_SET);
            fd = spooled.get();
            // The rest reads the spooled copy, whose size is known.
            progress.p.bytes_total = progress.p.bytes_done;
            progress.p.bytes_done = 0;
        }
        format = BERTH_TRY(sniff(fd));
    }
    if (format == ImportFormat::RootfsTar)
        return import_rootfs(s, guard, fd, stage.dir, name_tag, progress, cancel);
    Input in;
    BERTH_TRY_VOID(stage_archive(fd, stage.dir, in, progress, cancel, extract_options(s.options).limits));
    spooled.reset();
    if (in.has("oci-layout")) {
        if (format == ImportFormat::DockerArchive)
            return fail(EINVAL, "archive is an OCI layout, not a docker-archive");
        return import_oci(s, guard, in, stage.dir, name_tag, progress, cancel);
    }
    if (in.has("manifest.json")) {
        if (format == ImportFormat::OciLayout)
            return fail(EINVAL, "archive is a docker-archive, not an OCI layout (no 'oci-layout')");
        return import_docker(s, guard, in, stage.dir, name_tag, progress, cancel);
    }
    return fail(EINVAL, "archive has neither 'oci-layout' nor 'manifest.json'");
}

}  // namespace berth::store
