// LocalStorage: the store library in berthd's process, served over org.berth.Storage1 (on the
// system bus, or to one client over a socketpair: a private berthd). Store::open() holds the
// store's exclusive lock for the Store's lifetime, so two berthd never write one store at once; a
// private berthd closes it while its client is idle (release_store) and opens it again.
#include "local-storage.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "basic/fs-util.h"
#include "basic/string-util.h"
#include "registry/pull.h"
#include "registry/push.h"

namespace berth::berthd {

using namespace bus;

namespace {

ImageInfo convert(const store::ImageInfo& in) {
    ImageInfo out;
    out.id = in.id;
    out.names = in.names;
    out.size = in.size;
    int64_t when = in.created > 0 ? in.created : in.imported;
    out.created_usec = when > 0 ? static_cast<uint64_t>(when) * 1000000ull : 0;
    for (auto& l : in.layers) out.layers.push_back(l.chain_id);
    out.config = in.config;
    out.repo_digests = in.repo_digests;
    return out;
}

ContainerInfo convert(const store::ContainerInfo& in) {
    ContainerInfo out;
    out.name = in.name;
    out.image = in.image_id;
    out.layer = in.snapshot_id;
    out.ephemeral = in.ephemeral;
    return out;
}

// The store's report as the bus carries it: one list, layers and blobs first, with sizes.
GcReport convert(const store::GcReport& r) {
    GcReport out;
    for (const auto* list : {&r.removed_layers, &r.removed_blobs, &r.removed_retained, &r.removed_containers,
                             &r.removed_volumes, &r.removed_other})
        out.removed.insert(out.removed.end(), list->begin(), list->end());
    out.sizes = r.sizes;
    out.bytes_freed = r.bytes_freed;
    return out;
}

Result<store::ImportFormat> import_format(const std::string& format) {
    if (format.empty()) return store::ImportFormat::Auto;
    if (format == "oci" || format == "oci-archive") return store::ImportFormat::OciLayout;
    if (format == "docker-archive") return store::ImportFormat::DockerArchive;
    if (format == "rootfs") return store::ImportFormat::RootfsTar;
    BERTH_TRY_VOID(validate_import_format(format));
    return fail(EINVAL, "unknown image format '{}'", format);
}

// The store's import (and pull) progress as the bus carries it: a fraction that only grows and
// the input bytes read. The store restarts bytes_done when it re-reads a spooled pipe (and a pull
// reports its downloads, then the import of what it staged): callers see maxima.
struct ProgressReport {
    const ProgressFn& progress;
    double fraction = 0;
    uint64_t bytes = 0;
    store::ProgressFn fn() {
        if (!progress) return {};
        return [this](const store::ImportProgress& p) {
            double f = fraction;
            if (p.phase == store::ImportPhase::Done)
                f = 1.0;
            else if (p.bytes_total > 0)
                f = 0.95 * static_cast<double>(std::min(p.bytes_done, p.bytes_total)) /
                    static_cast<double>(p.bytes_total);
            else if (p.layer_count > 0)
                f = 0.95 * static_cast<double>(p.layer_index) / static_cast<double>(p.layer_count);
            fraction = std::max(fraction, f);
            uint64_t read = p.bytes_total > 0 ? std::min(p.bytes_done, p.bytes_total) : p.bytes_done;
            if (p.phase == store::ImportPhase::Done && p.bytes_total > 0) read = p.bytes_total;
            bytes = std::max(bytes, read);
            progress(fraction, bytes);
        };
    }
};

// Replaces berthd's path for a client's fd ("/proc/self/fd/7", which the store may have used to
// reopen it) in an error with what the client knows it as.
Error name_client_input(Error e, int fd) {
    const std::string own = fd_path(fd), client = "the input passed by the client";
    for (size_t at = 0; (at = e.message.find(own, at)) != std::string::npos;) {
        size_t end = at + own.size();
        if (end < e.message.size() && e.message[end] >= '0' && e.message[end] <= '9') {
            at = end;  // "/proc/self/fd/70" is not fd 7
            continue;
        }
        e.message.replace(at, own.size(), client);
        at += client.size();
    }
    return e;
}

class LocalStorage final : public Storage {
public:
    LocalStorage(std::unique_ptr<store::Store> store, StorageOptions options)
        : options_(std::move(options)), store_(std::move(store)) {}

    // A private berthd's client is idle (Daemon::release_store_when_idle: no call in flight).
    void release_store() override {
        std::lock_guard lock(mutex_);
        if (store_) store_->suspend();
    }

    std::string mode() const override { return "embedded"; }

    Result<ImageInfo> import_image(int fd, const std::string& format, const std::string& name,
                                   const ProgressFn& progress, const std::atomic<bool>& cancel) override {
        auto fmt_v = BERTH_TRY(import_format(format));
        ProgressReport report{progress};
        // A file or an OCI layout directory, as the fd the client passed: messages name "the
        // input", never berthd's own /proc/self/fd/N (issue #16), which means nothing to the
        // client (its CLI adds the path it opened).
        store::Store* s = BERTH_TRY(store());
        auto image = s->import_image(fd, fmt_v, name, report.fn(), &cancel);
        if (!image) return fail(name_client_input(std::move(image.error()), fd));
        return convert(*image);
    }

    // registries.toml is read at each pull, so a change needs no restart.
    Result<ImageInfo> pull_image(const std::string& reference,
                                 const std::map<std::string, std::string>& options,
                                 const ProgressFn& progress, const std::atomic<bool>& cancel,
                                 const LayersFn& layers) override {
        registry::PullOptions o;
        o.parallel_layers = options_.pull_parallel_layers;  // berthd.toml
        if (layers)
            o.layers = [&layers](const std::vector<registry::LayerProgress>& in) {
                std::vector<LayerStatus> out;
                out.reserve(in.size());
                for (const auto& l : in)
                    out.push_back(
                        {l.digest, std::string(registry::layer_state_name(l.state)), l.done, l.total});
                layers(out);
            };
        for (const auto& [key, value] : options) {
            if (key != "platform") return fail(EINVAL, "unknown pull option '{}' (known: platform)", key);
            o.platform = value;
        }
        auto config = BERTH_TRY(registry::load_registries(registry::RegistriesSearchPath::system()));
        ProgressReport report{progress};
        store::Store* s = BERTH_TRY(store());
        auto pulled = BERTH_TRY(registry::pull_image(*s, reference, config, o, report.fn(), &cancel));
        return convert(pulled.image);
    }

    Result<std::string> resolve_image(const std::string& reference,
                                      const std::atomic<bool>& cancel) override {
        auto config = BERTH_TRY(registry::load_registries(registry::RegistriesSearchPath::system()));
        return registry::resolve_digest(reference, config, registry::HttpOptions{}, &cancel);
    }

    Result<std::string> push_image(const std::string& image, const std::string& reference,
                                   const std::map<std::string, std::string>& options,
                                   const ProgressFn& progress, const std::atomic<bool>& cancel) override {
        if (!options.empty())
            return fail(EINVAL, "unknown push option '{}' (none are known)", options.begin()->first);
        auto config = BERTH_TRY(registry::load_registries(registry::RegistriesSearchPath::system()));
        ProgressReport report{progress};
        store::Store* s = BERTH_TRY(store());
        auto pushed = BERTH_TRY(registry::push_image(*s, image, reference, config, {}, report.fn(), &cancel));
        return pushed.repo_digest;
    }

    Result<std::vector<ImageInfo>> list_images() override {
        std::vector<ImageInfo> out;
        for (auto& i : BERTH_TRY(store())->list_images()) out.push_back(convert(i));
        return out;
    }

    Result<ImageInfo> get_image(const std::string& ref) override {
        auto image = BERTH_TRY(BERTH_TRY(store())->get_image(ref));
        return convert(image);
    }

    Result<store::ImageRemoval> remove_image(const std::string& ref) override {
        return BERTH_TRY(store())->remove_image(ref);
    }
    Result<> tag_image(const std::string& ref, const std::string& name) override {
        return BERTH_TRY(store())->tag_image(ref, name);
    }
    Result<> export_image(const std::string& ref, int fd, const std::string& format,
                          const std::atomic<bool>* cancel = nullptr) override {
        BERTH_TRY_VOID(validate_export_format(format));
        return BERTH_TRY(store())->export_image(ref, fd, cancel);
    }

    Result<PreparedContainer> prepare_container(
        const std::string& name, const std::string& image, bool ephemeral, int holder = 0,
        store::ImageChangePolicy on_change = store::ImageChangePolicy::Recreate) override {
        auto p = BERTH_TRY(BERTH_TRY(store())->prepare_container(name, image, ephemeral, holder, on_change));
        return PreparedContainer{p.snapshot_id, p.rootfs, p.config, p.image_change};
    }
    Result<GcReport> prune_containers(const std::vector<std::string>& keep) override {
        return convert(BERTH_TRY(BERTH_TRY(store())->prune_containers(keep)));
    }
    Result<> release_container(const std::string& name) override {
        return BERTH_TRY(store())->release_container(name);
    }
    Result<> remove_container(const std::string& name) override {
        return BERTH_TRY(store())->remove_container(name);
    }
    Result<ImageInfo> commit_container(const std::string& name, const std::string& image_name) override {
        auto image = BERTH_TRY(BERTH_TRY(store())->commit_container(name, image_name));
        return convert(image);
    }
    Result<std::vector<ContainerInfo>> list_containers() override {
        std::vector<ContainerInfo> out;
        for (auto& c : BERTH_TRY(store())->list_containers()) out.push_back(convert(c));
        return out;
    }

    Result<store::MountSpec> create_volume(const std::string& name) override {
        auto v = BERTH_TRY(BERTH_TRY(store())->create_volume(name));
        return v.mount;
    }
    Result<> remove_volume(const std::string& name) override {
        return BERTH_TRY(store())->remove_volume(name);
    }
    Result<VolumeDetail> get_volume(const std::string& name) override {
        auto v = BERTH_TRY(BERTH_TRY(store())->get_volume(name));
        VolumeDetail d;
        d.name = v.name;
        d.mount = v.mount;
        d.created_usec = static_cast<uint64_t>(v.created) * 1000000;
        for (auto& u : v.users) d.users.push_back(VolumeUser{u.container, static_cast<uint32_t>(u.pid)});
        return d;
    }
    Result<VolumeUse> use_volume(const std::string& name, const std::string& container,
                                 int holder = 0) override {
        auto u = BERTH_TRY(BERTH_TRY(store())->use_volume(name, container, holder));
        return VolumeUse{u.volume.mount, u.created};
    }
    Result<> release_volume(const std::string& name, const std::string& container) override {
        return BERTH_TRY(store())->release_volume(name, container);
    }
    Result<std::vector<VolumeInfo>> list_volumes() override {
        std::vector<VolumeInfo> out;
        for (auto& v : BERTH_TRY(store())->list_volumes()) out.push_back(VolumeInfo{v.name, 0});
        return out;
    }

    Result<GcReport> garbage_collect() override { return convert(BERTH_TRY(BERTH_TRY(store())->gc())); }

    Result<DiskUsage> disk_usage() override {
        auto df = BERTH_TRY(BERTH_TRY(store())->df());
        DiskUsage out;
        out.pool = BERTH_TRY(pool_status());
        // The images as ListImages gives them (all names, creation time, layers), with df's size.
        std::map<std::string, store::ImageInfo> images;
        for (auto& i : BERTH_TRY(store())->list_images()) images[i.id] = std::move(i);
        auto known = [](uint64_t bytes) { return bytes == store::kSizeUnknown ? 0 : bytes; };
        out.store_used = df.blobs_size;
        for (auto& e : df.images) {
            ImageInfo i;
            if (auto it = images.find(e.id); it != images.end()) {
                i = convert(it->second);
            } else {  // removed in between: what df saw
                i.id = e.id;
                if (e.name != e.id) i.names.push_back(e.name);
            }
            i.size = e.size;
            out.images.push_back(std::move(i));
        }
        // Layers shared by images count once.
        std::set<std::string> layers;
        for (const auto& [_, i] : images)
            for (const auto& l : i.layers)
                if (layers.insert(l.chain_id).second) out.store_used += l.size;
        for (auto& e : df.containers) {
            out.store_used += known(e.size);
            out.containers.push_back(ContainerInfo{e.name, "", e.id, false, e.size});
        }
        for (auto& e : df.volumes) {
            out.store_used += known(e.size);
            out.volumes.push_back(VolumeInfo{e.name, e.size});
        }
        out.size_note = df.size_note;
        out.fs_type = df.fs_type;
        out.fs_source = df.fs_source;
        out.fs_mount = df.fs_mount;
        return out;
    }

    Result<PoolStatus> pool_status() override {
        PoolStatus p;
        store::Store* s = BERTH_TRY(store());
        p.backend = s->backend_name();
        p.root = s->root();
        p.pool_path = s->pool_path();
        auto usage = BERTH_TRY(s->pool_usage());
        p.used = usage.data_used;
        p.size = usage.data_total;
        p.metadata_used = usage.metadata_used;
        p.metadata_size = usage.metadata_total;
        return p;
    }

private:
    // The store, locked again after release_store(): as it was when no other process wrote it
    // meanwhile (Store::resume), else opened anew. Another process may hold its lock for a
    // moment then (a container of its own starting): waited for, bounded, as the client waits
    // for a private berthd (bus/storage-client.cpp).
    Result<store::Store*> store() {
        std::lock_guard lock(mutex_);
        auto attempt = [&]() -> Result<store::Store*> {
            if (store_) {
                if (BERTH_TRY(store_->resume())) return store_.get();
                store_.reset();  // another writer came: read the store anew
            }
            store_ = BERTH_TRY(store::Store::open(options_));
            return store_.get();
        };
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
        for (;;) {
            auto s = attempt();
            if (s) return s;
            if (s.error().code != EWOULDBLOCK || std::chrono::steady_clock::now() >= deadline)
                return fail(s.error().wrap(fmt::format("open store '{}' again", options_.root)));
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
    }

    const StorageOptions options_;
    std::mutex mutex_;  // store_ is reopened by whichever thread calls first
    std::unique_ptr<store::Store> store_;
};

}  // namespace

Result<std::unique_ptr<Storage>> open_local_storage(const StorageOptions& options) {
    auto s = BERTH_TRY_CTX(store::Store::open(options), fmt::format("open store '{}'", options.root));
    // The one place berthd (on the bus or private) opens the store: say which records were left
    // out (issue #16), once, so the files can be found and `berth fsck --repair` run.
    for (const auto& b : s->bad_records())
        std::fprintf(stderr, "%s: warning: store '%s': skipped unreadable record: %s\n",
                     program_invocation_short_name, options.root.c_str(), b.error.c_str());
    return std::unique_ptr<Storage>(std::make_unique<LocalStorage>(std::move(s), options));
}

std::string default_config_path() {
    const char* e = std::getenv("BERTH_DAEMON_CONFIG");
    return e && *e ? e : "/etc/berth/berthd.toml";
}

Result<StorageOptions> load_storage_options(const std::string& path) {
    auto options = BERTH_TRY(store::load_store_options(path));
    if (const char* e = std::getenv("BERTH_STORE_ROOT"); e && *e) options.root = e;
    if (const char* e = std::getenv("BERTH_STORE_BACKEND"); e && *e) options.backend = e;
    if (normalize_absolute_path(options.root).empty())
        return fail(EINVAL, "store root {} is not an absolute path", quote(options.root));
    return options;
}

}  // namespace berth::berthd
