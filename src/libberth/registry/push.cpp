// Push: blobs the registry lacks, then the manifest (push.h).
#include "registry/push.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "basic/io-util.h"
#include "basic/unique.h"
#include "registry/client.h"
#include "registry/pull.h"
#include "store/digest.h"

namespace berth::registry {
namespace {

constexpr const char* kOciManifest = "application/vnd.oci.image.manifest.v1+json";

struct Blob {
    std::string digest;
    uint64_t size = 0;
};

// The config and layer descriptors of the stored manifest, and its media type.
Result<std::vector<Blob>> blobs_of(const std::string& manifest, std::string* media_type) {
    try {
        auto j = nlohmann::json::parse(manifest);
        *media_type = j.value("mediaType", kOciManifest);
        std::vector<Blob> out;
        auto add = [&](const nlohmann::json& d) {
            out.push_back({d.at("digest").get<std::string>(), d.at("size").get<uint64_t>()});
        };
        add(j.at("config"));
        for (const auto& l : j.at("layers")) add(l);
        return out;
    } catch (const std::exception& e) {
        return fail(EBADMSG, "the stored manifest: {}", e.what());
    }
}

}  // namespace

Result<PushResult> push_image(store::Store& store, std::string_view image_ref, std::string_view reference,
                              const RegistriesConfig& config, const PushOptions& options,
                              const store::ProgressFn& progress, const std::atomic<bool>* cancel) {
    auto image = BERTH_TRY(store.get_image(image_ref));
    auto parsed = BERTH_TRY(parse_reference(reference));
    Reference ref = BERTH_TRY(qualify(parsed, config));
    auto ctx = [&](std::string_view what) {
        return fmt::format("push '{}' to '{}': {}", image_ref, ref.str(), what);
    };
    if (!ref.digest.empty() && ref.digest != image.id)
        return fail(EINVAL, "{}",
                    ctx(fmt::format("the reference pins {}, but the image is {}", ref.digest, image.id)));
    auto endpoints = BERTH_TRY(endpoints_for(ref, config));
    auto ep = std::find_if(endpoints.begin(), endpoints.end(), [](const Endpoint& e) { return !e.mirror; });
    if (ep == endpoints.end()) return fail(ENOENT, "{}", ctx("no registry endpoint (only mirrors)"));
    auto creds = BERTH_TRY(credentials_for(config, ref, *ep));
    RegistryClient client(*ep, creds, options.http, cancel);
    client.set_actions("pull,push");

    // Blobs go through an unnamed file in the store's staging directory: nothing to clean up.
    const std::string staging = store.root() + "/staging";
    auto stage_blob = [&](const std::string& digest) -> Result<UniqueFd> {
        UniqueFd fd(::open(staging.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
        if (!fd) return fail_errno("create a file in '{}'", staging);
        BERTH_TRY_VOID(store.write_image_blob(image.id, digest, fd.get()));
        return fd;
    };
    auto manifest_fd = BERTH_TRY_CTX(stage_blob(image.id), ctx("manifest"));
    if (::lseek(manifest_fd.get(), 0, SEEK_SET) < 0) return fail_errno("{}", ctx("manifest"));
    std::string manifest =
        BERTH_TRY_CTX(read_all(manifest_fd.get(), "the stored manifest", kMaxManifestSize), ctx("manifest"));
    std::string media_type;
    auto blobs = BERTH_TRY_CTX(blobs_of(manifest, &media_type), ctx(image.id));

    PushResult out;
    out.reference = ref.str();
    store::ImportProgress p;
    p.layer_count = blobs.size();
    for (const auto& b : blobs) p.bytes_total += b.size;
    if (progress) progress(p);
    for (size_t i = 0; i < blobs.size(); ++i) {
        const auto& b = blobs[i];
        p.phase = store::ImportPhase::Layer;
        p.layer_index = i;
        if (progress) progress(p);
        if (BERTH_TRY_CTX(client.has_blob(b.digest), ctx(b.digest))) {
            ++out.blobs_skipped;
        } else {
            auto fd = BERTH_TRY_CTX(stage_blob(b.digest), ctx(b.digest));
            BERTH_TRY_VOID_CTX(client.upload_blob(b.digest, fd.get(), b.size), ctx(b.digest));
            ++out.blobs_uploaded;
        }
        if (cancel && cancel->load()) return fail(ECANCELED, "push cancelled");
        p.bytes_done += b.size;
        p.phase = store::ImportPhase::LayerCommitted;
        if (progress) progress(p);
    }
    p.phase = store::ImportPhase::Publishing;
    if (progress) progress(p);
    std::string digest = BERTH_TRY_CTX(
        client.put_manifest(ref.tag.empty() ? image.id : ref.tag, media_type, manifest), ctx("manifest"));
    out.repo_digest = ref.repository() + "@" + digest;
    BERTH_TRY_VOID_CTX(store.add_repo_digest(image.id, out.repo_digest), ctx("record the digest"));
    p.phase = store::ImportPhase::Done;
    if (progress) progress(p);
    return out;
}

}  // namespace berth::registry
