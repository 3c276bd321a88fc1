// Import of a docker-archive (docker save): manifest.json names the config and the layer tars; the
// image gets an OCI manifest made from them.
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

}  // namespace importer

}  // namespace berth::store
