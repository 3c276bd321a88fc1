// A container committed as an image (its snapshot's diff against its image becomes a new layer),
// and an image exported as an OCI archive (blobs streamed, layer blobs rebuilt from tar-splits).
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

using namespace importer;

// ---- commit ----

Result<ImageInfo> commit_to_image(Store::Impl& s, const ContainerInfo& c, std::string_view name_tag) {
    std::vector<std::string> names;
    if (!name_tag.empty()) names.push_back(BERTH_TRY(normalize_name_tag(name_tag)));
    ImageInfo base;
    json config = {{"architecture", host_arch()},
                   {"os", "linux"},
                   {"config", json::object()},
                   {"rootfs", {{"type", "layers"}, {"diff_ids", json::array()}}}};
    json manifest = {{"schemaVersion", 2}, {"mediaType", kOciManifest}, {"layers", json::array()}};
    if (!c.image_id.empty()) {
        {
            std::lock_guard lock(s.mu);
            auto it = s.images.find(c.image_id);
            if (it == s.images.end()) return fail(ENOENT, "image '{}' of the container is gone", c.image_id);
            base = it->second;
        }
        auto base_config = BERTH_TRY(read_file(s.blob_path(base.config_digest)));
        config = BERTH_TRY(parse_json_text(base_config, "image config"));
        auto base_manifest = BERTH_TRY(read_file(s.blob_path(base.id)));
        manifest = BERTH_TRY(parse_json_text(base_manifest, "manifest"));
    }
    ImportGuard guard(s);
    Staging stage{s.path("staging/commit-" + random_token())};
    BERTH_TRY_VOID(mkdir_p(stage.dir + "/blobs", 0700));
    BERTH_TRY_VOID(mkdir_p(stage.dir + "/empty", 0755));
    std::string tmp = stage.dir + "/blobs/layer.part";
    UniqueFd out(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (!out) return fail_errno("stage layer");
    auto view = BERTH_TRY(s.backend->snapshot_view(c.snapshot_id));
    ScopeExit release_view([&] { (void)s.backend->release_snapshot_view(c.snapshot_id); });
    std::string base_view = stage.dir + "/empty";
    if (!base.top_layer.empty()) base_view = BERTH_TRY(s.backend->layer_view(base.top_layer));
    ScopeExit release_base([&] {
        if (!base.top_layer.empty()) (void)s.backend->release_layer_view(base.top_layer);
    });
    auto tar = BERTH_TRY(write_diff_tar(view, base_view, out.get()));
    if (::fsync(out.get()) < 0) return fail_errno("fsync layer");
    std::string chain = chain_id_next(base.top_layer, tar.digest);
    BERTH_TRY_VOID(guard.claim(chain));
    if (!s.backend->has_layer(chain)) BERTH_TRY_VOID(s.backend->commit_snapshot(c.snapshot_id, chain));
    if (::rename(tmp.c_str(), (stage.dir + "/blobs/" + std::string(digest_hex(tar.digest))).c_str()) < 0)
        return fail_errno("stage layer");
    LayerInfo li{chain,    tar.digest, tar.digest, "application/vnd.oci.image.layer.v1.tar",
                 tar.size, tar.size,   {}};
    config["rootfs"]["diff_ids"].push_back(tar.digest);
    char when[64];
    time_t now = ::time(nullptr);
    struct tm tm {};
    ::gmtime_r(&now, &tm);
    ::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    config["created"] = when;
    if (!config.contains("history") || !config["history"].is_array()) config["history"] = json::array();
    config["history"].push_back({{"created", when}, {"created_by", "berth commit " + c.name}});
    std::string config_text = config.dump();
    manifest["config"] = {
        {"mediaType", kOciConfig}, {"digest", sha256_digest(config_text)}, {"size", config_text.size()}};
    manifest["layers"].push_back(
        {{"mediaType", li.media_type}, {"digest", li.digest}, {"size", li.blob_size}});
    std::string manifest_text = manifest.dump();
    BERTH_TRY_VOID(stage_blob(stage.dir, config_text));
    BERTH_TRY_VOID(stage_blob(stage.dir, manifest_text));
    auto layers = base.layers;
    layers.push_back(li);
    auto info =
        base_info(config, sha256_digest(config_text), sha256_digest(manifest_text), std::move(layers));
    Progress progress{ProgressFn{}, {}};
    return finish_import(s, stage.dir, std::move(info), names, progress);
}

// ---- export ----

namespace {

// Where an export's bytes go, cancellably. A regular file takes writes at once; a pipe or socket
// can stall for good (a reader that stopped reading), and a blocked write() would not see the
// cancel flag. So there the sink waits in poll() (100 ms at a time, or until a signal) and then
// writes at most PIPE_BUF bytes, which a pipe that polls writable takes without blocking.
struct ExportSink {
    int fd = -1;
    bool stream = false;
    const std::atomic<bool>* cancel = nullptr;
    bool cancelled = false;
    int error = 0;

    bool should_stop() {
        if (cancel && cancel->load()) cancelled = true;
        return cancelled;
    }

    static la_ssize_t write(struct archive*, void* self, const void* buf, size_t len) {
        auto& k = *static_cast<ExportSink*>(self);
        const char* p = static_cast<const char*>(buf);
        size_t left = len;
        while (left > 0) {
            if (k.should_stop()) return -1;
            size_t chunk = left;
            if (k.stream) {
                struct pollfd pfd {
                    k.fd, POLLOUT, 0
                };
                int r = ::poll(&pfd, 1, 100);
                if (r < 0 && errno != EINTR) return k.error = errno, -1;
                if (r <= 0) continue;
                chunk = std::min<size_t>(left, PIPE_BUF);
            }
            ssize_t n = ::write(k.fd, p, chunk);
            if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
            if (n < 0) return k.error = errno, -1;
            p += n;
            left -= static_cast<size_t>(n);
        }
        return static_cast<la_ssize_t>(len);
    }
};

}  // namespace

Result<> write_oci_archive(Store::Impl& s, const ImageInfo& info, int fd, const std::atomic<bool>* cancel) {
    BERTH_TRY_VOID(libarchive.load());
    CPtr<struct archive, free_archive_writer> a(sym_archive_write_new());
    sym_archive_write_set_format_pax_restricted(a.get());
    ExportSink sink;
    sink.fd = fd;
    sink.cancel = cancel;
    struct stat out_st {};
    sink.stream = ::fstat(fd, &out_st) == 0 && (S_ISFIFO(out_st.st_mode) || S_ISSOCK(out_st.st_mode));
    // As sym_archive_write_open_fd() does for files and pipes: no padding of the last block.
    sym_archive_write_set_bytes_in_last_block(a.get(), 1);
    if (sym_archive_write_open2(a.get(), &sink, nullptr, &ExportSink::write, nullptr, nullptr) != ARCHIVE_OK)
        return fail(EIO, "open output: {}", sym_archive_error_string(a.get()));
    // A failed write: cancelled, the output's errno, or libarchive's own message.
    auto write_failed = [&](const std::string& name) -> Error {
        if (sink.cancelled) return Error{ECANCELED, "export cancelled"};
        if (sink.error)
            return Error{sink.error, fmt::format("write '{}': {}", name, std::strerror(sink.error))};
        return Error{EIO, fmt::format("write '{}': {}", name, sym_archive_error_string(a.get()))};
    };
    auto add = [&](const std::string& name, const std::string* data, const std::string* file, uint64_t size,
                   bool dir) -> Result<> {
        CPtr<struct archive_entry, free_archive_entry> e(sym_archive_entry_new());
        sym_archive_entry_set_pathname(e.get(), name.c_str());
        sym_archive_entry_set_filetype(e.get(), dir ? AE_IFDIR : AE_IFREG);
        sym_archive_entry_set_perm(e.get(), dir ? 0755 : 0644);
        sym_archive_entry_set_size(e.get(), dir ? 0 : static_cast<la_int64_t>(size));
        sym_archive_entry_set_mtime(e.get(), 0, 0);
        if (sym_archive_write_header(a.get(), e.get()) != ARCHIVE_OK) return fail(write_failed(name));
        if (data && sym_archive_write_data(a.get(), data->data(), data->size()) < 0)
            return fail(write_failed(name));
        if (file) {
            // Hashed as it streams (issue #16): a blob damaged in the store fails the export
            // naming it, before the end-of-archive blocks, so no reader takes the output for a
            // good archive (berth would refuse it on import anyway).
            UniqueFd in(::open(file->c_str(), O_RDONLY | O_CLOEXEC));
            if (!in) return fail_errno("open blob '{}'", *file);
            std::vector<char> buf(1 << 20);
            Sha256 hash;
            for (;;) {
                ssize_t n = ::read(in.get(), buf.data(), buf.size());
                if (n < 0 && errno == EINTR) continue;
                if (n < 0) return fail_errno("read blob '{}'", *file);
                if (n == 0) break;
                hash.update(buf.data(), static_cast<size_t>(n));
                if (sym_archive_write_data(a.get(), buf.data(), static_cast<size_t>(n)) < 0)
                    return fail(write_failed(name));
            }
            std::string digest = "sha256:" + name.substr(name.rfind('/') + 1);
            if (std::string got = hash.finish(); got != digest)
                return fail(
                    EBADMSG,
                    "blob '{}' is damaged in the store (its content hashes to '{}'): run 'berth fsck'",
                    digest, got);
        }
        return {};
    };
    std::string layout = json{{"imageLayoutVersion", "1.0.0"}}.dump();
    auto manifest_file = s.blob_path(info.id);
    struct stat st {};
    if (::stat(manifest_file.c_str(), &st) < 0) return fail_errno("manifest blob '{}'", info.id);
    json desc = {{"mediaType", kOciManifest}, {"digest", info.id}, {"size", st.st_size}};
    if (!info.names.empty()) {
        const auto& n = info.names.front();
        desc["annotations"] = {{"org.opencontainers.image.ref.name", n.substr(n.rfind(':') + 1)},
                               {"io.containerd.image.name", n}};
    }
    std::string index = json{{"schemaVersion", 2}, {"mediaType", kOciIndex}, {"manifests", {desc}}}.dump();
    BERTH_TRY_VOID(add("oci-layout", &layout, nullptr, layout.size(), false));
    BERTH_TRY_VOID(add("index.json", &index, nullptr, index.size(), false));
    BERTH_TRY_VOID(add("blobs/", nullptr, nullptr, 0, true));
    BERTH_TRY_VOID(add("blobs/sha256/", nullptr, nullptr, 0, true));
    std::set<std::string> done;
    std::vector<std::string> digests{info.id, info.config_digest};
    std::map<std::string, const LayerInfo*> layer_of;
    for (const auto& l : info.layers) {
        digests.push_back(l.digest);
        layer_of.emplace(l.digest, &l);
    }
    for (const auto& d : digests) {
        if (!done.insert(d).second) continue;
        std::string p = s.blob_path(d);
        std::string name = "blobs/sha256/" + std::string(digest_hex(d));
        auto lit = layer_of.find(d);
        if (::stat(p.c_str(), &st) < 0 && lit != layer_of.end() &&
            path_exists(s.split_path(lit->second->chain_id))) {
            // Rebuilt from the layer's tar-split, verified while streaming: a damaged layer file
            // fails the export naming it (the partial output is then not a valid archive).
            BERTH_TRY_VOID(add(name, nullptr, nullptr, lit->second->blob_size, false));
            auto n = BERTH_TRY(s.stream_layer_blob(*lit->second, [&](const char* b, size_t len) -> Result<> {
                if (sym_archive_write_data(a.get(), b, len) < 0) return fail(write_failed(name));
                return {};
            }));
            if (n != lit->second->blob_size)
                return fail(EBADMSG, "layer blob '{}': rebuilt {} bytes, expected {}", d, n,
                            lit->second->blob_size);
            continue;
        }
        if (::stat(p.c_str(), &st) < 0) return fail_errno("blob '{}'", d);
        BERTH_TRY_VOID(add(name, nullptr, &p, static_cast<uint64_t>(st.st_size), false));
    }
    if (sym_archive_write_close(a.get()) != ARCHIVE_OK) return fail(write_failed("end of archive"));
    return {};
}

}  // namespace berth::store
