// Image import (OCI layout dir/tar, docker-archive, rootfs tar), commit and OCI export.
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
#include <archive.h>
#include <archive_entry.h>
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
#include "store/layer-extract.h"
#include "store/store-impl.h"
#include "store/store-json.h"
#include "store/tree-tar.h"
#include "store/tree-util.h"

namespace berth::store {

using nlohmann::json;

namespace {

constexpr uint64_t kMaxJson = 16 << 20;
constexpr const char* kOciManifest = "application/vnd.oci.image.manifest.v1+json";
constexpr const char* kOciIndex = "application/vnd.oci.image.index.v1+json";
constexpr const char* kOciConfig = "application/vnd.oci.image.config.v1+json";
constexpr const char* kDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json";

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

Result<> write_all(int fd, std::string_view data) {
    while (!data.empty()) {
        ssize_t n = ::write(fd, data.data(), data.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return fail_errno("write");
        data.remove_prefix(static_cast<size_t>(n));
    }
    return {};
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

// Where the image's files come from: an OCI directory, or an archive staged into files.
struct Input {
    int dirfd = -1;
    struct Staged {
        std::string path;
        std::string digest;
        uint64_t size = 0;
    };
    std::map<std::string, Staged> files;
    std::map<std::string, std::string> aliases;  // symlink members (docker save dedups layers)

    const Staged* staged(const std::string& name) const {
        std::string n = name;
        for (int i = 0; i < 8; ++i) {
            auto a = aliases.find(n);
            if (a == aliases.end()) break;
            n = a->second;
        }
        auto it = files.find(n);
        return it == files.end() ? nullptr : &it->second;
    }

    bool has(const std::string& name) const {
        if (dirfd >= 0) {
            struct stat st {};
            return ::fstatat(dirfd, name.c_str(), &st, 0) == 0;
        }
        return staged(name) != nullptr;
    }

    Result<UniqueFd> open(const std::string& raw) const {
        std::string name = BERTH_TRY(member_name(raw));
        if (dirfd >= 0) {
            struct open_how how {};
            how.flags = O_RDONLY | O_CLOEXEC;
            how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
            long fd = ::syscall(SYS_openat2, dirfd, name.c_str(), &how, sizeof how);
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

    Result<std::string> read_small(const std::string& name) const {
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
    Result<std::string> read_blob(const std::string& digest, std::string_view what) const {
        if (!valid_digest(digest)) return fail(EINVAL, "{}: invalid digest '{}'", what, digest);
        std::string name = "blobs/sha256/" + std::string(digest_hex(digest));
        auto text = BERTH_TRY_CTX(read_small(name), what);
        auto actual = sha256_digest(text);
        if (actual != digest)
            return fail(EBADMSG, "{} '{}': digest mismatch (content is {})", what, name, actual);
        return text;
    }
};

struct Progress {
    const ProgressFn& fn;
    ImportProgress p;
    void operator()(const std::string& phase) {
        p.phase = phase;
        if (fn) fn(p);
    }
};

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
            archive_set_error(a, err, "%s", err == ECANCELED ? "import cancelled" : "read failed");
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
    CPtr<struct archive, archive_read_free> a(archive_read_new());
    archive_read_support_format_tar(a.get());
    archive_read_support_format_gnutar(a.get());
    archive_read_support_filter_all(a.get());
    // Reads through read_input() so a cancel is noticed while a pipe's writer stalls.
    ArchiveInput src{fd, cancel};
    if (archive_read_open(a.get(), &src, nullptr, ArchiveInput::read, nullptr) != ARCHIVE_OK)
        return fail(EIO, "open archive: {}", archive_error_string(a.get()));
    std::vector<char> buf(1 << 20);
    size_t count = 0;
    uint64_t staged_bytes = 0;
    for (;;) {
        if (cancel && cancel->load()) return fail(ECANCELED, "import cancelled");
        struct archive_entry* e = nullptr;
        int r = archive_read_next_header(a.get(), &e);
        if (r == ARCHIVE_EOF) break;
        if (r != ARCHIVE_OK && r != ARCHIVE_WARN && cancel && cancel->load())
            return fail(ECANCELED, "import cancelled");
        if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
            return fail(
                EIO, "read archive{}: {}",
                e && archive_entry_pathname(e) ? fmt::format(" member '{}'", archive_entry_pathname(e)) : "",
                archive_error_string(a.get()));
        const char* raw = archive_entry_pathname(e);
        if (!raw) return fail(EINVAL, "archive member without a name");
        if (strlen(raw) >= 4096) return fail(ENAMETOOLONG, "archive member name is longer than 4095 bytes");
        std::string name = BERTH_TRY(member_name(raw));
        if (++count > 100000) return fail(E2BIG, "archive has more than 100000 members");
        auto type = archive_entry_filetype(e);
        if (type == AE_IFDIR || name.empty()) continue;
        if (type == AE_IFLNK) {
            // docker save links identical layers: "<id>/layer.tar -> ../<other>/layer.tar"
            std::string dir = name.find('/') == std::string::npos ? "" : name.substr(0, name.rfind('/'));
            std::string target = archive_entry_symlink(e) ? archive_entry_symlink(e) : "";
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
        if (archive_entry_hardlink(e)) {
            in.aliases[name] = BERTH_TRY(member_name(archive_entry_hardlink(e)));
            continue;
        }
        Input::Staged st;
        st.path = fmt::format("{}/in/{}", stage, count);
        UniqueFd out(::open(st.path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
        if (!out) return fail_errno("stage '{}'", name);
        Sha256 h;
        for (;;) {
            la_ssize_t n = archive_read_data(a.get(), buf.data(), buf.size());
            if (n < 0 && cancel && cancel->load()) return fail(ECANCELED, "import cancelled");
            if (n < 0) return fail(EIO, "archive member '{}': {}", name, archive_error_string(a.get()));
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
            BERTH_TRY_VOID_CTX(write_all(out.get(), std::string_view(buf.data(), static_cast<size_t>(n))),
                               fmt::format("stage '{}'", name));
            progress.p.bytes_done += static_cast<uint64_t>(n);
            if (st.size % (4 << 20) < static_cast<uint64_t>(n)) progress("reading");
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
        progress("reading");
    }
    return {};
}

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
        BERTH_TRY_VOID(write_all(out, std::string_view(buf.data(), static_cast<size_t>(n))));
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

struct LayerSource {
    std::string member;      // file in the input
    std::string digest;      // expected blob digest ("" = unknown: docker-archive)
    std::string media_type;  // "" = from compression
};

struct Staging {
    std::string dir;
    ~Staging() {
        if (!dir.empty()) (void)remove_tree(dir);
    }
};

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
        progress("layer");
        std::string ctx = fmt::format("layer {} ('{}')", i, src.member);
        LayerInfo li;
        li.chain_id = chains[i];
        li.diff_id = diff_ids[i];
        guard.claim(li.chain_id);
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
        auto fd = BERTH_TRY_CTX(in.open(src.member), ctx);
        std::string tee_path = stage + "/blobs/layer.part";
        UniqueFd tee;
        if (!staged) {
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
            progress("layer");
        };
        std::optional<std::string> parent;
        if (i > 0) parent = chains[i - 1];
        ExtractResult res;
        std::optional<LayerWriter> writer;
        if (s.backend->has_layer(li.chain_id)) {
            res = BERTH_TRY_CTX(extract_layer(fd.get(), "", opts), ctx);  // verify only
        } else {
            writer = BERTH_TRY_CTX(s.backend->begin_layer(li.chain_id, parent), ctx);
            opts.whiteouts = writer->whiteouts;
            auto r = extract_layer(fd.get(), writer->path, opts);
            if (!r) {
                (void)s.backend->abort_layer(*writer);
                return fail(std::move(r.error()).wrap(ctx));
            }
            res = *r;
        }
        auto mismatch = [&](std::string msg) -> Unexpected {
            if (writer) (void)s.backend->abort_layer(*writer);
            return fail(EBADMSG, "{}: {}", ctx, msg);
        };
        if (!src.digest.empty() && res.blob_digest != src.digest)
            return mismatch(
                fmt::format("digest mismatch: manifest says {}, content is {}", src.digest, res.blob_digest));
        if (res.diff_id != li.diff_id)
            return mismatch(
                fmt::format("diff_id mismatch: config says {}, content is {}", li.diff_id, res.diff_id));
        if (writer) BERTH_TRY_VOID_CTX(s.backend->commit_layer(*writer), ctx);
        progress("layer committed");
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
        if (staged) {
            if (!path_exists(dst) && ::link(staged->path.c_str(), dst.c_str()) < 0)
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
    BERTH_TRY_VOID(fsync_staged(stage));
    std::lock_guard lock(s.mu);
    return s.publish_locked(stage, std::move(info), names, progress.fn);
}

// ---- OCI layout (directory or staged archive) ----

Result<ImageInfo> import_oci(Store::Impl& s, ImportGuard& guard, const Input& in, const std::string& stage,
                             std::string_view name_tag, Progress& progress, const std::atomic<bool>* cancel) {
    auto layout = BERTH_TRY_CTX(in.read_small("oci-layout"), "OCI layout");
    auto lj = BERTH_TRY(parse_json_text(layout, "oci-layout"));
    if (!lj.is_object() || !lj.contains("imageLayoutVersion"))
        return fail(EBADMSG, "oci-layout has no imageLayoutVersion");
    auto index_text = BERTH_TRY_CTX(in.read_small("index.json"), "OCI layout");
    auto index = BERTH_TRY(parse_json_text(index_text, "index.json"));
    if (!index.is_object() || !index.contains("manifests") || !index["manifests"].is_array() ||
        index["manifests"].empty())
        return fail(EBADMSG, "index.json lists no manifests");

    std::string want_tag, want_full;
    if (!name_tag.empty()) {
        want_full = BERTH_TRY(normalize_name_tag(name_tag));
        want_tag = want_full.substr(want_full.rfind(':') + 1);
    }
    auto pick = [&](const json& manifests) -> Result<json> {
        if (manifests.size() == 1) return manifests[0];
        std::vector<std::string> refs;
        for (const auto& m : manifests) {
            std::string ref = m.contains("annotations") && m["annotations"].is_object()
                                  ? m["annotations"].value("org.opencontainers.image.ref.name", "")
                                  : "";
            refs.push_back(ref.empty() ? m.value("digest", "?") : ref);
            if (!ref.empty() && (ref == want_tag || ref == want_full || ref == std::string(name_tag)))
                return m;
            if (m.contains("platform") && m["platform"].is_object() &&
                m["platform"].value("architecture", "") == host_arch() &&
                m["platform"].value("os", "") == "linux" && want_tag.empty())
                return m;
        }
        return fail(EINVAL,
                    "the layout holds {} images ({}); choose one with a NAME:TAG matching its ref name",
                    manifests.size(), join(refs, ", "));
    };
    json desc = BERTH_TRY(pick(index["manifests"]));
    std::string ref_name;
    if (desc.contains("annotations") && desc["annotations"].is_object()) {
        // containerd (and berth's export) record the full name; the OCI ref name is often a tag only.
        ref_name = desc["annotations"].value("io.containerd.image.name", "");
        if (ref_name.empty()) ref_name = desc["annotations"].value("org.opencontainers.image.ref.name", "");
    }
    std::string mt = desc.value("mediaType", "");
    if (mt == kOciIndex || mt == kDockerManifestList) {  // one level of nesting (multi-platform)
        auto sub_text = BERTH_TRY(in.read_blob(desc.value("digest", ""), "nested index"));
        auto sub = BERTH_TRY(parse_json_text(sub_text, "nested index"));
        if (!sub.contains("manifests") || !sub["manifests"].is_array() || sub["manifests"].empty())
            return fail(EBADMSG, "nested index lists no manifests");
        desc = BERTH_TRY(pick(sub["manifests"]));
        BERTH_TRY_VOID(stage_blob(stage, sub_text));
    }
    std::string manifest_digest = desc.value("digest", "");
    auto manifest_text = BERTH_TRY(in.read_blob(manifest_digest, "manifest"));
    auto manifest = BERTH_TRY(parse_json_text(manifest_text, "manifest"));
    if (!manifest.is_object() || !manifest.contains("config") || !manifest["config"].is_object() ||
        !manifest.contains("layers") || !manifest["layers"].is_array())
        return fail(EBADMSG, "manifest '{}' has no config or layers", manifest_digest);
    std::string config_digest = manifest["config"].value("digest", "");
    auto config_text = BERTH_TRY(in.read_blob(config_digest, "image config"));
    auto config = BERTH_TRY(parse_json_text(config_text, "image config"));
    auto diff_ids = BERTH_TRY(config_diff_ids(config));
    std::vector<LayerSource> srcs;
    for (const auto& l : manifest["layers"]) {
        if (!l.is_object()) return fail(EBADMSG, "manifest layer is not an object");
        std::string d = l.value("digest", "");
        if (!valid_digest(d)) return fail(EBADMSG, "manifest layer has invalid digest '{}'", d);
        srcs.push_back({"blobs/sha256/" + std::string(digest_hex(d)), d, l.value("mediaType", "")});
    }
    progress("reading");
    auto layers = BERTH_TRY(import_layers(s, guard, in, srcs, diff_ids, stage, progress, cancel));
    BERTH_TRY_VOID(stage_blob(stage, manifest_text));
    BERTH_TRY_VOID(stage_blob(stage, config_text));
    auto info = base_info(config, config_digest, manifest_digest, std::move(layers));
    std::vector<std::string> found;
    if (ref_name.find(':') != std::string::npos || ref_name.find('/') != std::string::npos)
        found.push_back(ref_name);
    auto names = BERTH_TRY(names_for(name_tag, found));
    return finish_import(s, stage, std::move(info), names, progress);
}

// ---- docker-archive ----

Result<ImageInfo> import_docker(Store::Impl& s, ImportGuard& guard, const Input& in, const std::string& stage,
                                std::string_view name_tag, Progress& progress,
                                const std::atomic<bool>* cancel) {
    auto text = BERTH_TRY(in.read_small("manifest.json"));
    auto list = BERTH_TRY(parse_json_text(text, "manifest.json"));
    if (!list.is_array() || list.empty()) return fail(EBADMSG, "manifest.json lists no images");
    json entry = list[0];
    if (list.size() > 1 && !name_tag.empty()) {
        auto want = BERTH_TRY(normalize_name_tag(name_tag));
        for (const auto& e : list)
            if (e.contains("RepoTags") && e["RepoTags"].is_array())
                for (const auto& t : e["RepoTags"])
                    if (t.is_string() && normalize_name_tag(t.get<std::string>()).value_or("") == want)
                        entry = e;
    }
    if (!entry.is_object() || !entry.contains("Config") || !entry["Config"].is_string() ||
        !entry.contains("Layers") || !entry["Layers"].is_array())
        return fail(EBADMSG, "manifest.json entry has no Config or Layers");
    std::string config_member = entry["Config"];
    auto config_text = BERTH_TRY_CTX(in.read_small(config_member), "image config");
    std::string config_digest = sha256_digest(config_text);
    // Newer docker writes blobs/sha256/<hex> members: then the name is a digest to check.
    if (config_member.rfind("blobs/sha256/", 0) == 0 && "sha256:" + config_member.substr(13) != config_digest)
        return fail(EBADMSG, "image config '{}': digest mismatch", config_member);
    auto config = BERTH_TRY(parse_json_text(config_text, "image config"));
    auto diff_ids = BERTH_TRY(config_diff_ids(config));
    std::vector<LayerSource> srcs;
    for (const auto& l : entry["Layers"]) {
        if (!l.is_string()) return fail(EBADMSG, "manifest.json: layer is not a string");
        srcs.push_back({l.get<std::string>(), "", ""});
    }
    std::vector<std::string> found;
    if (entry.contains("RepoTags") && entry["RepoTags"].is_array())
        for (const auto& t : entry["RepoTags"])
            if (t.is_string()) found.push_back(t);
    auto layers = BERTH_TRY(import_layers(s, guard, in, srcs, diff_ids, stage, progress, cancel));
    json manifest = {
        {"schemaVersion", 2},
        {"mediaType", kOciManifest},
        {"config", {{"mediaType", kOciConfig}, {"digest", config_digest}, {"size", config_text.size()}}},
        {"layers", json::array()}};
    for (const auto& l : layers)
        manifest["layers"].push_back(
            {{"mediaType", l.media_type}, {"digest", l.digest}, {"size", l.blob_size}});
    std::string manifest_text = manifest.dump();
    BERTH_TRY_VOID(stage_blob(stage, manifest_text));
    BERTH_TRY_VOID(stage_blob(stage, config_text));
    auto info = base_info(config, config_digest, sha256_digest(manifest_text), std::move(layers));
    auto names = BERTH_TRY(names_for(name_tag, found));
    return finish_import(s, stage, std::move(info), names, progress);
}

// ---- plain rootfs tarball: one pass, chain id learnt at the end ----

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
    auto writer =
        BERTH_TRY(s.backend->begin_layer(sha256_digest("provisional " + random_token()), std::nullopt));
    ExtractOptions opts = extract_options(s.options);
    opts.whiteouts = writer.whiteouts;
    opts.tee_fd = tee.get();
    opts.split_fd = split.get();
    opts.cancel = cancel;
    progress.p.layer_count = 1;
    opts.progress = [&](uint64_t n) {
        progress.p.bytes_done = n;
        progress("layer");
    };
    auto res = extract_layer(fd, writer.path, opts);
    if (!res) {
        (void)s.backend->abort_layer(writer);
        return fail(std::move(res.error()).wrap("rootfs tarball"));
    }
    guard.claim(res->diff_id);
    if (s.backend->has_layer(res->diff_id)) {
        BERTH_TRY_VOID(s.backend->abort_layer(writer));
    } else {
        writer.chain_id = res->diff_id;
        auto c = s.backend->commit_layer(writer);
        if (!c) {
            (void)s.backend->abort_layer(writer);
            return fail(std::move(c.error()));
        }
    }
    progress("layer committed");
    if (res->split) {
        // Valid for an existing layer of the same diff ID too: it was made from the same tar.
        BERTH_TRY_VOID(stage_split(split.get(), split_part, stage, res->diff_id));
        ::unlink(tee_path.c_str());
    } else {
        ::unlink(split_part.c_str());
        if (!res->teed) BERTH_TRY_VOID_CTX(copy_to(fd, start, tee.get()), "stage blob");
        if (::fsync(tee.get()) < 0) return fail_errno("fsync blob");
        if (::rename(tee_path.c_str(),
                     (stage + "/blobs/" + std::string(digest_hex(res->blob_digest))).c_str()) < 0)
            return fail_errno("stage blob");
    }
    LayerInfo li{res->diff_id,
                 res->diff_id,
                 res->blob_digest,
                 layer_media_type(res->compression),
                 res->blob_size,
                 res->size,
                 std::move(res->skipped_device_nodes)};
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

// Reads the first members' names to tell an image archive from a rootfs tarball.
Result<ImportFormat> sniff(int fd) {
    off_t start = ::lseek(fd, 0, SEEK_CUR);
    CPtr<struct archive, archive_read_free> a(archive_read_new());
    archive_read_support_format_tar(a.get());
    archive_read_support_format_gnutar(a.get());
    archive_read_support_filter_all(a.get());
    if (archive_read_open_fd(a.get(), fd, 1 << 16) != ARCHIVE_OK)
        return fail(EIO, "not a readable archive: {}", archive_error_string(a.get()));
    ImportFormat result = ImportFormat::RootfsTar;
    for (int i = 0; i < 16; ++i) {
        struct archive_entry* e = nullptr;
        int r = archive_read_next_header(a.get(), &e);
        if (r == ARCHIVE_EOF) break;
        if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
            return fail(EIO, "not a readable archive: {}", archive_error_string(a.get()));
        auto n = member_name(archive_entry_pathname(e) ? archive_entry_pathname(e) : "");
        if (!n) break;  // the real pass reports it
        if (*n == "oci-layout" || n->rfind("blobs/", 0) == 0 || *n == "index.json") {
            result = ImportFormat::OciLayout;
            break;
        }
        if (looks_like_image_member(*n)) {
            result = ImportFormat::DockerArchive;
            break;
        }
        if (archive_entry_filetype(e) != AE_IFDIR) break;  // rootfs content
    }
    if (::lseek(fd, start, SEEK_SET) < 0) return fail_errno("rewind input");
    return result;
}

}  // namespace

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
    return c;
}

int64_t parse_rfc3339(const std::string& s) {
    struct tm tm {};
    if (!::strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm)) return 0;
    return static_cast<int64_t>(::timegm(&tm));
}

Result<ImageInfo> import_from_dir(Store::Impl& s, int dirfd, std::string_view name_tag,
                                  const ProgressFn& progress_fn, const std::atomic<bool>* cancel) {
    ImportGuard guard(s);
    Staging stage{s.path("staging/imp-" + random_token())};
    BERTH_TRY_VOID(mkdir_p(stage.dir + "/blobs", 0700));
    BERTH_TRY_VOID(mkdir_p(stage.dir + "/splits", 0700));
    Input in;
    in.dirfd = dirfd;
    Progress progress{progress_fn, {}};
    progress("reading");
    return import_oci(s, guard, in, stage.dir, name_tag, progress, cancel);
}

Result<ImageInfo> import_from_fd(Store::Impl& s, int fd, ImportFormat format, std::string_view name_tag,
                                 const ProgressFn& progress_fn, const std::atomic<bool>* cancel) {
    if (!name_tag.empty()) BERTH_TRY_VOID(normalize_name_tag(name_tag));
    ImportGuard guard(s);
    Staging stage{s.path("staging/imp-" + random_token())};
    BERTH_TRY_VOID(mkdir_p(stage.dir + "/blobs", 0700));
    BERTH_TRY_VOID(mkdir_p(stage.dir + "/splits", 0700));
    Progress progress{progress_fn, {}};
    struct stat st {};
    if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
        progress.p.bytes_total = static_cast<uint64_t>(st.st_size);
    progress("reading");
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
                BERTH_TRY_VOID(
                    write_all(spooled.get(), std::string_view(buf.data(), static_cast<size_t>(n))));
                progress.p.bytes_done += static_cast<uint64_t>(n);
                progress("reading");
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
        config =
            BERTH_TRY(parse_json_text(BERTH_TRY(read_file(s.blob_path(base.config_digest))), "image config"));
        manifest = BERTH_TRY(parse_json_text(BERTH_TRY(read_file(s.blob_path(base.id))), "manifest"));
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
    guard.claim(chain);
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
    CPtr<struct archive, archive_write_free> a(archive_write_new());
    archive_write_set_format_pax_restricted(a.get());
    ExportSink sink;
    sink.fd = fd;
    sink.cancel = cancel;
    struct stat out_st {};
    sink.stream = ::fstat(fd, &out_st) == 0 && (S_ISFIFO(out_st.st_mode) || S_ISSOCK(out_st.st_mode));
    // As archive_write_open_fd() does for files and pipes: no padding of the last block.
    archive_write_set_bytes_in_last_block(a.get(), 1);
    if (archive_write_open2(a.get(), &sink, nullptr, &ExportSink::write, nullptr, nullptr) != ARCHIVE_OK)
        return fail(EIO, "open output: {}", archive_error_string(a.get()));
    // A failed write: cancelled, the output's errno, or libarchive's own message.
    auto write_failed = [&](const std::string& name) -> Error {
        if (sink.cancelled) return Error{ECANCELED, "export cancelled"};
        if (sink.error)
            return Error{sink.error, fmt::format("write '{}': {}", name, std::strerror(sink.error))};
        return Error{EIO, fmt::format("write '{}': {}", name, archive_error_string(a.get()))};
    };
    auto add = [&](const std::string& name, const std::string* data, const std::string* file, uint64_t size,
                   bool dir) -> Result<> {
        CPtr<struct archive_entry, archive_entry_free> e(archive_entry_new());
        archive_entry_set_pathname(e.get(), name.c_str());
        archive_entry_set_filetype(e.get(), dir ? AE_IFDIR : AE_IFREG);
        archive_entry_set_perm(e.get(), dir ? 0755 : 0644);
        archive_entry_set_size(e.get(), dir ? 0 : static_cast<la_int64_t>(size));
        archive_entry_set_mtime(e.get(), 0, 0);
        if (archive_write_header(a.get(), e.get()) != ARCHIVE_OK) return fail(write_failed(name));
        if (data && archive_write_data(a.get(), data->data(), data->size()) < 0)
            return fail(write_failed(name));
        if (file) {
            UniqueFd in(::open(file->c_str(), O_RDONLY | O_CLOEXEC));
            if (!in) return fail_errno("open blob '{}'", *file);
            std::vector<char> buf(1 << 20);
            for (;;) {
                ssize_t n = ::read(in.get(), buf.data(), buf.size());
                if (n < 0 && errno == EINTR) continue;
                if (n < 0) return fail_errno("read blob '{}'", *file);
                if (n == 0) break;
                if (archive_write_data(a.get(), buf.data(), static_cast<size_t>(n)) < 0)
                    return fail(write_failed(name));
            }
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
                if (archive_write_data(a.get(), b, len) < 0) return fail(write_failed(name));
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
    if (archive_write_close(a.get()) != ARCHIVE_OK) return fail(write_failed("end of archive"));
    return {};
}

}  // namespace berth::store
