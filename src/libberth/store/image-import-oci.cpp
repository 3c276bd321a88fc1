// Import of an OCI image layout: a directory (read in place, openat2) or an archive staged by
// image-import.cpp. The index may name several manifests (by ref.name) and nest one level.
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
    progress(ImportPhase::Reading);
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

}  // namespace importer

}  // namespace berth::store
