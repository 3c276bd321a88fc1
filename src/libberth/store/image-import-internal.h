// Shared by the image import files and commit/export (one file per job):
//   image-import.cpp          entry points, staging an archive, importing a manifest's layers
//   image-import-detect.cpp   telling an OCI layout, a docker-archive and a rootfs tarball apart
//   image-import-oci.cpp      OCI layout (directory or archive)
//   image-import-docker.cpp   docker-archive (docker save)
//   image-import-rootfs.cpp   plain rootfs tarball
//   image-commit-export.cpp   a container committed as an image; an image exported as an OCI archive
// Internal to the store: nothing outside these files includes it.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "basic/fs-util.h"
#include "basic/result.h"
#include "basic/unique.h"
#include "store/blob-feed.h"
#include "store/layer-extract.h"
#include "store/store-impl.h"

namespace berth::store::importer {

using nlohmann::json;

constexpr uint64_t kMaxJson = 16 << 20;
constexpr const char* kOciManifest = "application/vnd.oci.image.manifest.v1+json";
constexpr const char* kOciIndex = "application/vnd.oci.image.index.v1+json";
constexpr const char* kOciConfig = "application/vnd.oci.image.config.v1+json";
constexpr const char* kDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json";

std::string host_arch();
std::string layer_media_type(const std::string& compression);
Result<json> parse_json_text(const std::string& text, std::string_view what);
// Normalises an archive member name: strips "./", rejects absolute paths and "..".
Result<std::string> member_name(std::string_view raw);

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
    // Layer blobs still downloading (a registry pull): read through the feed as they arrive,
    // each layer committed only once its download verified it (blob-feed.h).
    BlobFeed* feed = nullptr;

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

    bool has(const std::string& name) const;
    Result<UniqueFd> open(const std::string& raw) const;
    Result<std::string> read_small(const std::string& name) const;
    // A blob by digest, verified.
    Result<std::string> read_blob(const std::string& digest, std::string_view what) const;
};

struct Progress {
    const ProgressFn& fn;
    ImportProgress p;
    void operator()(ImportPhase phase) {
        p.phase = phase;
        if (fn) fn(p);
    }
};

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

// Publishes a finished tar-split into the stage (stage/splits/<chain hex>), durable like a blob.
Result<> stage_split(int fd, const std::string& part, const std::string& stage, const std::string& chain_id);
// Copies `in` from `offset` to its end onto `out` (a full blob when no tar-split could be kept).
Result<> copy_to(int in, off_t offset, int out);
// berthd.toml's import settings, as the extractor takes them.
ExtractOptions extract_options(const StoreOptions& o);

// Extracts and verifies a manifest's layers (claimed, reused when present), staging their blobs.
Result<std::vector<LayerInfo>> import_layers(Store::Impl& s, ImportGuard& guard, const Input& in,
                                             const std::vector<LayerSource>& srcs,
                                             const std::vector<std::string>& diff_ids,
                                             const std::string& stage, Progress& progress,
                                             const std::atomic<bool>* cancel);
Result<> stage_blob(const std::string& stage, const std::string& content);
Result<> fsync_staged(const std::string& stage);
ImageInfo base_info(const json& config, const std::string& config_digest, const std::string& manifest_digest,
                    std::vector<LayerInfo> layers);
Result<std::vector<std::string>> config_diff_ids(const json& config);
Result<std::vector<std::string>> names_for(std::string_view name_tag, const std::vector<std::string>& found);
// Publishes the staged image under the store lock, then reports ImportPhase::Done.
Result<ImageInfo> finish_import(Store::Impl& s, const std::string& stage, ImageInfo info,
                                const std::vector<std::string>& names, Progress& progress);

// The three formats.
Result<ImageInfo> import_oci(Store::Impl& s, ImportGuard& guard, const Input& in, const std::string& stage,
                             std::string_view name_tag, Progress& progress, const std::atomic<bool>* cancel);
Result<ImageInfo> import_docker(Store::Impl& s, ImportGuard& guard, const Input& in, const std::string& stage,
                                std::string_view name_tag, Progress& progress,
                                const std::atomic<bool>* cancel);
Result<ImageInfo> import_rootfs(Store::Impl& s, ImportGuard& guard, int fd, const std::string& stage,
                                std::string_view name_tag, Progress& progress,
                                const std::atomic<bool>* cancel);

// Reads the first members' names to tell an image archive from a rootfs tarball (and rewinds).
Result<ImportFormat> sniff(int fd);

}  // namespace berth::store::importer
