// Pull: manifests, platform choice, parallel verified downloads streamed into the store's
// importer (pull.h says why the blobs are staged).
#include "registry/pull.h"

#include <fcntl.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "basic/fs-util.h"
#include "basic/io-util.h"
#include "basic/string-util.h"
#include "basic/unique.h"
#include "registry/client.h"
#include "store/blob-feed.h"
#include "store/digest.h"
#include "store/tree-util.h"

namespace berth::registry {
namespace {

using nlohmann::json;

constexpr const char* kOciIndex = "application/vnd.oci.image.index.v1+json";
constexpr const char* kOciManifest = "application/vnd.oci.image.manifest.v1+json";
constexpr const char* kDockerList = "application/vnd.docker.distribution.manifest.list.v2+json";
constexpr const char* kDockerManifest = "application/vnd.docker.distribution.manifest.v2+json";

bool is_index(const std::string& mt) { return mt == kOciIndex || mt == kDockerList; }
bool is_manifest(const std::string& mt) { return mt == kOciManifest || mt == kDockerManifest; }

bool is_layer_type(const std::string& mt) {
    for (const char* t :
         {"application/vnd.oci.image.layer.v1.tar", "application/vnd.oci.image.layer.v1.tar+gzip",
          "application/vnd.oci.image.layer.v1.tar+zstd", "application/vnd.docker.image.rootfs.diff.tar.gzip",
          "application/vnd.oci.image.layer.nondistributable.v1.tar",
          "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
          "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"})
        if (mt == t) return true;
    return false;
}

struct Descriptor {
    std::string media_type, digest;
    uint64_t size = 0;
};

Result<Descriptor> descriptor(const json& j, std::string_view what) {
    if (!j.is_object()) return fail(EBADMSG, "{} is not an object", what);
    Descriptor d;
    d.media_type = j.value("mediaType", "");
    d.digest = j.value("digest", "");
    if (!store::valid_digest(d.digest)) return fail(EBADMSG, "{} has invalid digest '{}'", what, d.digest);
    if (!j.contains("size") || !j["size"].is_number_unsigned()) return fail(EBADMSG, "{} has no size", what);
    d.size = j["size"].get<uint64_t>();
    return d;
}

Result<json> parse(const std::string& text, std::string_view what) {
    try {
        return json::parse(text);
    } catch (const std::exception& e) {
        return fail(EBADMSG, "{} is not valid JSON: {}", what, e.what());
    }
}

// The document's own media type wins over a registry's Content-Type (some send text/plain).
std::string media_type_of(const json& j, const FetchedManifest& m) {
    std::string mt = j.is_object() ? j.value("mediaType", "") : "";
    if (!mt.empty()) return mt;
    if (j.is_object() && j.contains("manifests")) return kOciIndex;
    if (j.is_object() && j.contains("config") && j.contains("layers")) return kOciManifest;
    return m.media_type;
}

Result<> refuse_schema1(const json& j, const std::string& mt, const std::string& where) {
    if (mt.rfind("application/vnd.docker.distribution.manifest.v1+", 0) == 0 ||
        (j.is_object() && j.contains("schemaVersion") && j["schemaVersion"] == 1))
        return fail(EPROTONOSUPPORT,
                    "{}: a Docker schema 1 manifest, which berth does not pull (deprecated and unverifiable: "
                    "push the image again with a current client)",
                    where);
    return {};
}

// The index entry for `p`; attestation manifests (buildx "unknown/unknown") are never chosen.
Result<Descriptor> pick_platform(const json& index, const Platform& p, const std::string& where) {
    if (!index.contains("manifests") || !index["manifests"].is_array())
        return fail(EBADMSG, "{}: the index lists no manifests", where);
    std::vector<std::string> offered;
    for (const auto& m : index["manifests"]) {
        if (!m.is_object()) continue;
        bool attestation = m.contains("annotations") && m["annotations"].is_object() &&
                           m["annotations"].value("vnd.docker.reference.type", "") == "attestation-manifest";
        if (attestation || !m.contains("platform") || !m["platform"].is_object()) continue;
        const auto& pl = m["platform"];
        std::string os = pl.value("os", ""), arch = pl.value("architecture", ""),
                    variant = pl.value("variant", "");
        if (os == "unknown") continue;
        offered.push_back(Platform{os, arch, variant}.str());
        if (os == p.os && arch == p.architecture &&
            (p.variant.empty() || variant.empty() || variant == p.variant))
            return descriptor(m, where + ": index entry");
    }
    return fail(ENOENT, "{}: no image for platform {} (the index offers: {})", where, p.str(),
                offered.empty() ? "none" : join(offered, ", "));
}

struct Stage {
    std::string dir;
    ~Stage() {
        if (!dir.empty()) (void)remove_tree(dir);
    }
};

// Layers the store holds already (with their blob): not downloaded again.
bool stored_layer(const std::vector<store::ImageInfo>& images, const std::string& chain_id,
                  const std::string& digest) {
    for (const auto& img : images)
        for (const auto& l : img.layers)
            if (l.chain_id == chain_id && l.digest == digest) return true;
    return false;
}

struct Download {
    size_t index;
    Descriptor desc;
    std::vector<size_t> same;  // later layers with the same blob (downloaded once, for all of them)
};

// Where the blob `digest` of the staged layout is, as the importer names it.
std::string blob_member(const std::string& digest) {
    return "blobs/sha256/" + std::string(store::digest_hex(digest));
}

// The pull's progress, shared by the download threads and the importing thread (one at a time,
// under `mu`). With streaming a layer can be downloading and extracting at once; what is shown is
// the furthest of the two, in LayerState's order: downloading -> extracting (the importer reached
// it while its bytes still come: `done` keeps growing) -> done; or downloading -> verifying ->
// downloaded -> extracting -> done when the importer reaches it later. The job's bytes are the
// downloaded ones throughout (the importer's phases pass through with them).
struct PullProgress {
    std::mutex mu;
    store::ImportProgress p;
    std::vector<LayerProgress> layers;  // as shown
    std::vector<LayerState> fetched;    // each layer's download: Waiting .. Downloaded, or Present
    std::vector<bool> importing, imported;
    const store::ProgressFn& progress;
    const LayersProgressFn& on_layers;

    PullProgress(const store::ProgressFn& progress_fn, const LayersProgressFn& layers_fn)
        : progress(progress_fn), on_layers(layers_fn) {}

    void add_layer(const Descriptor& d, bool present) {
        layers.push_back(
            {d.digest, present ? LayerState::Present : LayerState::Waiting, present ? d.size : 0, d.size});
        fetched.push_back(layers.back().state);
        importing.push_back(false);
        imported.push_back(false);
    }
    // Recomputes the shown states; tells the caller when a state changed or `bytes_moved`.
    void show_locked(bool bytes_moved) {
        bool changed = false;
        for (size_t i = 0; i < layers.size(); ++i) {
            LayerState s = fetched[i];
            if (s != LayerState::Present && imported[i])
                s = LayerState::Done;
            else if (s != LayerState::Present && importing[i] && s != LayerState::Waiting)
                s = LayerState::Extracting;
            if (s != layers[i].state) {
                layers[i].state = s;
                changed = true;
            }
        }
        if ((changed || bytes_moved) && on_layers) on_layers(layers);
    }
    void fetch_state(size_t layer, LayerState s) {
        std::lock_guard lock(mu);
        fetched[layer] = s;
        show_locked(false);
    }
    // Every chunk counts at once (berthd publishes the job's bytes a few times a second): a pull
    // that moves is seen to move, even inside one large layer (`berth run --systemd` extends its
    // start timeout on it). A restarted transfer takes back what it had counted.
    void bytes(size_t layer, uint64_t added, uint64_t taken_back) {
        std::lock_guard lock(mu);
        p.bytes_done = p.bytes_done + added - std::min(taken_back, p.bytes_done);
        p.layer_index = layer;
        if (progress) progress(p);
        LayerProgress& l = layers[layer];
        l.done = l.done + added - std::min(taken_back, l.done);
        fetched[layer] = l.done >= l.total ? LayerState::Verifying : LayerState::Downloading;
        show_locked(true);
    }
    void downloaded(size_t layer, uint64_t uncounted) {
        std::lock_guard lock(mu);
        p.bytes_done += uncounted;
        p.layer_index = layer;
        if (progress) progress(p);
        fetched[layer] = LayerState::Downloaded;
        show_locked(false);
    }
    // The importer's phases; a layer it found stored skips its steps.
    void imported_step(const store::ImportProgress& ip) {
        std::lock_guard lock(mu);
        store::ImportProgress out = ip;
        out.bytes_done = p.bytes_done;
        out.bytes_total = p.bytes_total;
        if (progress) progress(out);
        for (size_t i = 0; i < layers.size(); ++i) {
            if (ip.phase == store::ImportPhase::Done ||
                (ip.layer_index > i && ip.phase != store::ImportPhase::Reading))
                imported[i] = true;
            else if (ip.layer_index == i && ip.phase == store::ImportPhase::Layer)
                importing[i] = true;
            else if (ip.layer_index == i && ip.phase == store::ImportPhase::LayerCommitted)
                imported[i] = true;
        }
        show_locked(false);
    }
};

// Downloads `todo` into dir/blobs/sha256/, `parallel` at a time, telling `feed` how each blob
// grows (the importer reads them meanwhile). The first failure stops the others; `halt` (the
// caller's cancel, or the import failing) is looked at every 50 ms while the workers run.
Result<> download_layers(const RegistryClient& proto, const std::vector<Download>& todo, unsigned parallel,
                         const std::string& dir, PullProgress& progress, store::BlobFeed& feed,
                         const std::atomic<bool>* halt) {
    std::atomic<bool> stop{false};
    std::mutex mu;
    std::optional<Error> first_error;
    size_t next = 0;
    auto worker = [&] {
        RegistryClient client = proto;
        client.set_cancel(&stop);
        for (;;) {
            Download d;
            {
                std::lock_guard lock(mu);
                if (first_error || stop || next >= todo.size()) return;
                d = todo[next++];
            }
            progress.fetch_state(d.index, LayerState::Downloading);
            std::string member = blob_member(d.desc.digest);
            std::string final_path = dir + "/" + member;
            std::string part = final_path + ".part";
            UniqueFd fd(::open(part.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
            uint64_t written = 0;
            Result<> r = fd ? Result<>{} : fail_errno("create '{}'", part);
            if (r) {
                feed.writing(member);
                r = client.blob(
                    d.desc.digest, d.desc.size,
                    [&](std::string_view chunk) -> Result<> {
                        BERTH_TRY_VOID(write_all(fd.get(), chunk, part));
                        written += chunk.size();
                        feed.grew(member, chunk.size());
                        progress.bytes(d.index, chunk.size(), 0);
                        return {};
                    },
                    [&] {
                        feed.restart(member);  // before the file shrinks under a reader
                        (void)::ftruncate(fd.get(), 0);
                        (void)::lseek(fd.get(), 0, SEEK_SET);
                        progress.bytes(d.index, 0, written);
                        written = 0;
                    });
            }
            if (r && ::rename(part.c_str(), final_path.c_str()) < 0) r = fail_errno("rename '{}'", part);
            if (!r) {
                feed.fail(member, r.error());
                std::lock_guard lock(mu);
                if (!first_error) first_error = r.error();
                stop = true;
                return;
            }
            feed.complete(member);
            progress.downloaded(d.index, d.desc.size - std::min(written, d.desc.size));  // counted as it came
            for (size_t also : d.same) progress.fetch_state(also, LayerState::Downloaded);
        }
    };
    std::vector<std::thread> threads;
    for (unsigned i = 0; i < std::min<size_t>(std::max(parallel, 1u), todo.size()); ++i)
        threads.emplace_back(worker);
    // Running transfers end: by themselves, or at `stop` (watched until they do).
    std::atomic<bool> joined{false};
    std::thread watch([&] {
        while (!joined) {
            if (halt && halt->load()) stop = true;
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
    });
    for (auto& t : threads) t.join();
    joined = true;
    watch.join();
    if (first_error) return fail(*first_error);
    if (halt && halt->load()) return fail(ECANCELED, "pull cancelled");
    return {};
}

}  // namespace

std::string_view layer_state_name(LayerState state) {
    // In LayerState's order.
    static constexpr std::string_view kNames[] = {"waiting",    "downloading", "verifying", "downloaded",
                                                  "extracting", "done",        "present"};
    auto i = static_cast<size_t>(state);
    return i < std::size(kNames) ? kNames[i] : "unknown";
}

Result<std::optional<Credentials>> credentials_for(const RegistriesConfig& config, const Reference& ref,
                                                   const Endpoint& ep) {
    // Most specific key first: "host/team/app", "host/team", "host".
    std::string host = ep.mirror ? ep.host : ref.domain;
    std::vector<std::string> parts = split(ep.mirror ? ep.path : ref.path, '/');
    for (size_t n = parts.size(); n > 0; --n) {
        std::vector<std::string> head(parts.begin(), parts.begin() + static_cast<long>(n));
        auto c = BERTH_TRY(lookup_credentials(config.auth_file, host + "/" + join(head, "/")));
        if (c) return c;
    }
    return lookup_credentials(config.auth_file, host);
}

std::string Platform::str() const {
    std::string s = os + "/" + architecture;
    if (!variant.empty()) s += "/" + variant;
    return s;
}

Platform host_platform() {
    struct utsname u {};
    ::uname(&u);
    std::string m = u.machine;
    if (m == "x86_64") return {"linux", "amd64", ""};
    if (m == "aarch64") return {"linux", "arm64", "v8"};
    if (m.rfind("armv7", 0) == 0) return {"linux", "arm", "v7"};
    if (m == "i686" || m == "i386") return {"linux", "386", ""};
    return {"linux", m, ""};
}

Result<Platform> parse_platform(std::string_view text) {
    if (text.empty()) return host_platform();
    auto parts = split(text, '/', true);
    if (parts.size() < 2 || parts.size() > 3 || parts[0].empty() || parts[1].empty() ||
        (parts.size() == 3 && parts[2].empty()))
        return fail(EINVAL, "invalid platform {}: expected OS/ARCH[/VARIANT], e.g. linux/arm64", quote(text));
    for (const auto& p : parts)
        for (char c : p)
            if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-')
                return fail(EINVAL, "invalid platform {}: expected OS/ARCH[/VARIANT], e.g. linux/arm64",
                            quote(text));
    return Platform{parts[0], parts[1], parts.size() == 3 ? parts[2] : ""};
}

Result<PullResult> pull_image(store::Store& store, std::string_view reference, const RegistriesConfig& config,
                              const PullOptions& options, const store::ProgressFn& progress,
                              const std::atomic<bool>* cancel) {
    auto parsed = BERTH_TRY(parse_reference(reference));
    Reference ref = BERTH_TRY(qualify(parsed, config));
    Platform platform = BERTH_TRY(parse_platform(options.platform));
    auto endpoints = BERTH_TRY(endpoints_for(ref, config));
    PullResult out;
    out.reference = ref.str();
    std::string where = ref.str();
    // The first endpoint that answers the manifest request is used for everything; a mirror that
    // fails (down, or lacking the image) falls through to the next.
    std::optional<RegistryClient> client;
    std::optional<FetchedManifest> top;
    Error last{ENOENT, "no endpoint"};
    for (const auto& ep : endpoints) {
        auto creds = BERTH_TRY(credentials_for(config, ref, ep));
        RegistryClient c(ep, creds, options.http, cancel);
        auto m = c.manifest(ref.digest.empty() ? ref.tag : ref.digest);
        out.requests += c.requests();
        if (m) {
            client.emplace(std::move(c));
            top = std::move(*m);
            break;
        }
        last = m.error();
        if (m.error().code == ECANCELED) break;
    }
    if (!client) return fail(last.code, "pull '{}': {}", where, last.message);
    auto ctx = [&](std::string_view what) { return fmt::format("pull '{}': {}", where, what); };
    out.repo_digest = ref.repository() + "@" + top->digest;

    auto top_json = BERTH_TRY_CTX(parse(top->bytes, "manifest"), ctx(top->digest));
    std::string mt = media_type_of(top_json, *top);
    BERTH_TRY_VOID(refuse_schema1(top_json, mt, ctx(top->digest)));
    Descriptor manifest_desc{mt, top->digest, top->bytes.size()};
    std::optional<FetchedManifest> platform_manifest;
    if (is_index(mt)) {
        manifest_desc = BERTH_TRY(pick_platform(top_json, platform, ctx(top->digest)));
    } else if (is_manifest(mt)) {
        platform_manifest = std::move(top);
    } else {
        return fail(EPROTONOSUPPORT, "{}: unsupported manifest media type '{}'", ctx(top->digest), mt);
    }
    std::string name;
    if (!ref.tag.empty()) name = ref.repository() + ":" + ref.tag;

    // Everything present: the one manifest request was all.
    if (auto have = store.get_image(manifest_desc.digest)) {
        if (!name.empty()) BERTH_TRY_VOID_CTX(store.tag_image(have->id, name), ctx("tag"));
        BERTH_TRY_VOID_CTX(store.add_repo_digest(have->id, out.repo_digest), ctx("record the digest"));
        out.image = BERTH_TRY(store.get_image(have->id));
        out.already_present = true;
        out.requests = client->requests();
        return out;
    }
    if (!platform_manifest) {
        if (manifest_desc.size > kMaxManifestSize)
            return fail(EFBIG, "{}: manifest is {} bytes (limit {})", ctx(manifest_desc.digest),
                        manifest_desc.size, kMaxManifestSize);
        platform_manifest = BERTH_TRY_CTX(client->manifest(manifest_desc.digest), ctx("platform manifest"));
    }
    const std::string mdigest = platform_manifest->digest;
    auto manifest = BERTH_TRY_CTX(parse(platform_manifest->bytes, "manifest"), ctx(mdigest));
    std::string pmt = media_type_of(manifest, *platform_manifest);
    BERTH_TRY_VOID(refuse_schema1(manifest, pmt, ctx(mdigest)));
    if (!is_manifest(pmt))
        return fail(EPROTONOSUPPORT, "{}: expected an image manifest, got '{}'", ctx(mdigest), pmt);
    if (!manifest.contains("config") || !manifest.contains("layers") || !manifest["layers"].is_array())
        return fail(EBADMSG, "{}: manifest has no config or layers", ctx(mdigest));
    auto config_desc = BERTH_TRY_CTX(descriptor(manifest["config"], "config"), ctx(mdigest));
    std::vector<Descriptor> layers;
    for (const auto& l : manifest["layers"]) {
        auto d = BERTH_TRY_CTX(descriptor(l, "layer"), ctx(mdigest));
        if (!is_layer_type(d.media_type))
            return fail(EPROTONOSUPPORT, "{}: layer {} has unsupported media type '{}'", ctx(mdigest),
                        d.digest, d.media_type);
        layers.push_back(d);
    }
    auto config_text = BERTH_TRY_CTX(client->small_blob(config_desc.digest, config_desc.size, kMaxConfigSize),
                                     ctx("config"));
    auto config_json = BERTH_TRY_CTX(parse(config_text, "image config"), ctx(config_desc.digest));
    std::vector<std::string> diff_ids;
    if (config_json.is_object() && config_json.contains("rootfs") && config_json["rootfs"].is_object() &&
        config_json["rootfs"].contains("diff_ids") && config_json["rootfs"]["diff_ids"].is_array())
        for (const auto& d : config_json["rootfs"]["diff_ids"])
            if (d.is_string()) diff_ids.push_back(d.get<std::string>());
    if (diff_ids.size() != layers.size())
        return fail(EBADMSG, "{}: the manifest lists {} layers but the config {} has {} diff_ids",
                    ctx(mdigest), layers.size(), config_desc.digest, diff_ids.size());
    for (const auto& d : diff_ids)
        if (!store::valid_digest(d))
            return fail(EBADMSG, "{}: config has invalid diff_id '{}'", ctx(mdigest), d);

    Stage stage{store.root() + "/staging/pull-" + store::random_token()};
    BERTH_TRY_VOID(mkdir_p(stage.dir + "/blobs/sha256", 0700));
    BERTH_TRY_VOID(write_file(stage.dir + "/oci-layout", R"({"imageLayoutVersion":"1.0.0"})"));
    json index = {
        {"schemaVersion", 2},
        {"manifests",
         json::array(
             {{{"mediaType", pmt}, {"digest", mdigest}, {"size", platform_manifest->bytes.size()}}})}};
    BERTH_TRY_VOID(write_file(stage.dir + "/index.json", index.dump()));
    BERTH_TRY_VOID(write_file(stage.dir + "/blobs/sha256/" + std::string(store::digest_hex(mdigest)),
                              platform_manifest->bytes));
    BERTH_TRY_VOID(write_file(
        stage.dir + "/blobs/sha256/" + std::string(store::digest_hex(config_desc.digest)), config_text));

    auto chains = store::chain_ids(diff_ids);
    auto images = store.list_images();
    std::vector<Download> todo;
    PullProgress status(progress, options.layers);
    status.p.layer_count = layers.size();
    for (size_t i = 0; i < layers.size(); ++i) {
        bool present = stored_layer(images, chains[i], layers[i].digest);
        status.add_layer(layers[i], present);
        if (present) continue;
        auto first = std::find_if(todo.begin(), todo.end(),
                                  [&](const Download& d) { return d.desc.digest == layers[i].digest; });
        if (first != todo.end()) {
            first->same.push_back(i);  // two writers of one file would spoil it
            continue;
        }
        todo.push_back({i, layers[i], {}});
        status.p.bytes_total += layers[i].size;
    }
    if (progress) progress(status.p);
    if (options.layers) options.layers(status.layers);

    // Download and import at once (store/blob-feed.h): the importer extracts each layer as its
    // bytes arrive, in layer order, and commits it once its download verified it, while later
    // layers keep downloading. `halt` stops both sides: a cancel, or either side failing.
    std::atomic<bool> halt{false};
    store::BlobFeed feed(&halt);
    for (const auto& d : todo) {
        std::string member = blob_member(d.desc.digest);
        feed.expect(member, stage.dir + "/" + member + ".part", stage.dir + "/" + member);
    }
    Result<> downloaded;
    std::thread downloads([&] {
        downloaded = download_layers(*client, todo, options.parallel_layers, stage.dir, status, feed, &halt);
        if (downloaded) return;
        halt = true;
        for (const auto& d : todo) feed.fail(blob_member(d.desc.digest), downloaded.error());
    });
    std::atomic<bool> finished{false};
    std::thread watch([&] {
        while (!finished) {
            if (cancel && cancel->load()) halt = true;
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
    });
    auto imported = store.import_arriving_layout(
        stage.dir, feed, name, [&](const store::ImportProgress& ip) { status.imported_step(ip); }, &halt);
    if (!imported) halt = true;
    downloads.join();
    finished = true;
    watch.join();
    out.requests = client->requests() + static_cast<unsigned>(todo.size());
    // The first cause wins: a cancel; a download's own failure (the import then only saw its
    // stream end); the import's.
    if (cancel && cancel->load()) return fail(ECANCELED, "{}", ctx("pull cancelled"));
    if (!downloaded && (downloaded.error().code != ECANCELED || imported))
        return fail(downloaded.error().wrap(ctx("download")));
    if (!imported) return fail(imported.error().wrap(ctx("import")));
    BERTH_TRY_VOID_CTX(store.add_repo_digest(imported->id, out.repo_digest), ctx("record the digest"));
    out.image = BERTH_TRY(store.get_image(imported->id));
    return out;
}

Result<std::string> resolve_digest(std::string_view reference, const RegistriesConfig& config,
                                   const HttpOptions& http, const std::atomic<bool>* cancel) {
    Reference ref = BERTH_TRY(qualify(BERTH_TRY(parse_reference(reference)), config));
    if (!ref.digest.empty()) return ref.digest;  // a pin names its digest already
    Error last{ENOENT, "no endpoint"};
    for (const auto& ep : BERTH_TRY(endpoints_for(ref, config))) {
        RegistryClient c(ep, BERTH_TRY(credentials_for(config, ref, ep)), http, cancel);
        auto digest = c.manifest_digest(ref.tag);
        if (digest) return digest;
        last = digest.error();
        if (last.code == ECANCELED) break;
    }
    return fail(last.code, "resolve '{}': {}", ref.str(), last.message);
}

}  // namespace berth::registry
