// RemoteStorage: org.berth.Storage1 on the system bus. Long operations (import, export) are jobs:
// the call returns a job at once and the result arrives as the manager's JobRemoved signal. While
// waiting, an import follows the job's Progress/BytesRead (PropertiesChanged) and, once the
// caller's cancel flag is set (berth image import on SIGINT/SIGTERM), calls Job.Cancel and keeps
// waiting for JobRemoved, so the caller learns that berthd has cleaned up before it exits.
#include "bus/remote-storage.h"

#include <cstdlib>
#include <map>

#include "bus/bus-util.h"
#include "bus/wire.h"

namespace berth::bus {

namespace {

// Mutating calls run on the daemon's workers and may take long (commit, gc on a big store).
constexpr uint64_t kLongCallUsec = 30ull * 60 * 1000000;

struct JobResult {
    std::string status, image, error;
    int code = 0;
};

// Set when berthd drops off the bus while we wait for a job (killed, crashed, restarted).
int on_owner_changed(sd_bus_message* m, void* userdata, sd_bus_error*) noexcept {
    const char *name, *old_owner, *new_owner;
    if (sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner) < 0) return 0;
    if (std::string_view(name) == kService && *old_owner) *static_cast<bool*>(userdata) = true;
    return 0;
}

class RemoteStorage final : public Storage {
public:
    RemoteStorage(BusPtr bus, std::string mode, std::function<void()> on_close)
        : on_close_(std::move(on_close)), mode_(std::move(mode)), bus_(std::move(bus)) {}
    ~RemoteStorage() override {
        bus_.reset();  // first: a private berthd exits when its connection closes
        if (on_close_) on_close_();
    }
    RemoteStorage(const RemoteStorage&) = delete;
    RemoteStorage& operator=(const RemoteStorage&) = delete;

    std::string mode() const override { return mode_; }
    bool peer() const { return mode_ != "bus"; }

    Result<ImageInfo> import_image(int fd, const std::string& format, const std::string& name,
                                   const ProgressFn& progress, const std::atomic<bool>& cancel) override {
        BERTH_TRY_VOID(validate_import_format(format));
        auto image_id = BERTH_TRY(run_job(
            "import",
            [&](sd_bus_message* m) {
                return sd_bus_message_append(m, "hss", fd, format.c_str(), name.c_str());
            },
            "ImportImage", &progress, &cancel));
        return get_image(image_id);
    }

    Result<ImageInfo> pull_image(const std::string& reference,
                                 const std::map<std::string, std::string>& options,
                                 const ProgressFn& progress, const std::atomic<bool>& cancel,
                                 const LayersFn& layers) override {
        auto image_id = BERTH_TRY(run_job(
            "pull",
            [&](sd_bus_message* m) {
                int r = sd_bus_message_append(m, "s", reference.c_str());
                if (r >= 0) r = sd_bus_message_open_container(m, 'a', "{sv}");
                for (const auto& [key, value] : options)
                    if (r >= 0) r = sd_bus_message_append(m, "{sv}", key.c_str(), "s", value.c_str());
                if (r >= 0) r = sd_bus_message_close_container(m);
                return r;
            },
            "PullImage", &progress, &cancel, &layers));
        return get_image(image_id);
    }

    Result<std::string> resolve_image(const std::string& reference,
                                      const std::atomic<bool>& cancel) override {
        return run_job(
            "resolve", [&](sd_bus_message* m) { return sd_bus_message_append(m, "s", reference.c_str()); },
            "ResolveImage", nullptr, &cancel);
    }

    Result<std::string> push_image(const std::string& image, const std::string& reference,
                                   const std::map<std::string, std::string>& options,
                                   const ProgressFn& progress, const std::atomic<bool>& cancel) override {
        return run_job(
            "push",
            [&](sd_bus_message* m) {
                int r = sd_bus_message_append(m, "ss", image.c_str(), reference.c_str());
                if (r >= 0) r = sd_bus_message_open_container(m, 'a', "{sv}");
                for (const auto& [key, value] : options)
                    if (r >= 0) r = sd_bus_message_append(m, "{sv}", key.c_str(), "s", value.c_str());
                if (r >= 0) r = sd_bus_message_close_container(m);
                return r;
            },
            "PushImage", &progress, &cancel);
    }

    Result<std::vector<ImageInfo>> list_images() override {
        auto reply = BERTH_TRY(call("ListImages", nullptr));
        std::vector<ImageInfo> out;
        if (int r = wire::read_array(reply.get(), wire::kImage, out, wire::read_image); r < 0)
            return fail(-r, "parse ListImages reply");
        add_repo_digests(out);
        return out;
    }

    // From ListRepoDigests. A berthd older than the method (issue #17) lists none: the digests
    // only add to what ListImages and GetImage say, so their absence is not an error.
    void add_repo_digests(std::vector<ImageInfo>& images) {
        auto reply = call("ListRepoDigests", nullptr);
        if (!reply) return;
        int r = sd_bus_message_enter_container(reply->get(), 'a', "(sas)");
        while (r > 0 && (r = sd_bus_message_enter_container(reply->get(), 'r', "sas")) > 0) {
            const char* id = nullptr;
            std::vector<std::string> digests;
            if ((r = sd_bus_message_read(reply->get(), "s", &id)) < 0 ||
                (r = read_strv(reply->get(), digests)) < 0 ||
                (r = sd_bus_message_exit_container(reply->get())) < 0)
                return;
            for (auto& i : images)
                if (i.id == id) i.repo_digests = digests;
        }
    }

    Result<ImageInfo> get_image(const std::string& ref) override {
        auto reply = BERTH_TRY(
            call("GetImage", [&](sd_bus_message* m) { return sd_bus_message_append(m, "s", ref.c_str()); }));
        const char* path;
        ImageInfo info;
        int r = sd_bus_message_read(reply.get(), "o", &path);
        if (r >= 0) r = wire::read_image(reply.get(), info);
        if (r < 0) return fail(-r, "parse GetImage reply");
        std::vector<ImageInfo> one{std::move(info)};
        add_repo_digests(one);
        return std::move(one.front());
    }

    Result<store::ImageRemoval> remove_image(const std::string& ref) override {
        auto reply = BERTH_TRY(call(
            "RemoveImage", [&](sd_bus_message* m) { return sd_bus_message_append(m, "s", ref.c_str()); }));
        store::ImageRemoval done;
        const char* deleted = nullptr;
        int r = read_strv(reply.get(), done.untagged);
        if (r >= 0) r = sd_bus_message_read(reply.get(), "s", &deleted);
        if (r < 0) return fail(-r, "parse RemoveImage reply");
        done.deleted = deleted;
        return done;
    }

    Result<> tag_image(const std::string& ref, const std::string& name) override {
        BERTH_TRY(call("TagImage", [&](sd_bus_message* m) {
            return sd_bus_message_append(m, "ss", ref.c_str(), name.c_str());
        }));
        return {};
    }

    Result<> export_image(const std::string& ref, int fd, const std::string& format,
                          const std::atomic<bool>* cancel = nullptr) override {
        BERTH_TRY(run_job(
            "export",
            [&](sd_bus_message* m) {
                return sd_bus_message_append(m, "shs", ref.c_str(), fd, format.c_str());
            },
            "ExportImage", nullptr, cancel));
        return {};
    }

    // berthd records this process as the holder, from the bus credentials; `holder` is not sent.
    Result<PreparedContainer> prepare_container(
        const std::string& name, const std::string& image, bool ephemeral, int /*holder*/ = 0,
        store::ImageChangePolicy on_change = store::ImageChangePolicy::Recreate) override {
        auto reply = BERTH_TRY(call("PrepareContainer", [&](sd_bus_message* m) {
            return sd_bus_message_append(m, "ssbs", name.c_str(), image.c_str(), static_cast<int>(ephemeral),
                                         to_string(on_change));
        }));
        PreparedContainer p;
        const char* id;
        int r = sd_bus_message_read(reply.get(), "s", &id);
        if (r >= 0) r = wire::read_mount(reply.get(), p.rootfs);
        if (r >= 0) r = wire::read_config(reply.get(), p.config);
        if (r >= 0) r = wire::read_image_change(reply.get(), p.image_change);
        if (r < 0) return fail(-r, "parse PrepareContainer reply");
        p.snapshot_id = id;
        return p;
    }

    Result<> release_container(const std::string& name) override {
        return name_call("ReleaseContainer", name);
    }

    // Sent without waiting: the private berthd handles its calls in order, so the next call
    // finds the store opened again. A failure shows at that call.
    void release_store() override {
        if (!peer()) return;
        sd_bus_message* m = nullptr;
        if (sd_bus_message_new_method_call(bus_.get(), &m, kService, kManagerPath, kManagerInterface,
                                           "ReleaseStore") < 0)
            return;
        MessagePtr call_msg(m);
        if (sd_bus_message_set_expect_reply(m, 0) >= 0 && sd_bus_send(bus_.get(), m, nullptr) >= 0)
            (void)sd_bus_flush(bus_.get());
    }
    Result<> remove_container(const std::string& name) override { return name_call("RemoveContainer", name); }

    Result<ImageInfo> commit_container(const std::string& name, const std::string& image_name) override {
        auto reply = BERTH_TRY(call("CommitContainer", [&](sd_bus_message* m) {
            return sd_bus_message_append(m, "ss", name.c_str(), image_name.c_str());
        }));
        const char* path;
        ImageInfo info;
        int r = sd_bus_message_read(reply.get(), "o", &path);
        if (r >= 0) r = wire::read_image(reply.get(), info);
        if (r < 0) return fail(-r, "parse CommitContainer reply");
        return info;
    }

    Result<std::vector<ContainerInfo>> list_containers() override {
        auto reply = BERTH_TRY(call("ListContainers", nullptr));
        std::vector<ContainerInfo> out;
        if (int r = wire::read_array(reply.get(), wire::kContainer, out, wire::read_container); r < 0)
            return fail(-r, "parse ListContainers reply");
        return out;
    }

    Result<store::MountSpec> create_volume(const std::string& name) override {
        auto reply = BERTH_TRY(call(
            "CreateVolume", [&](sd_bus_message* m) { return sd_bus_message_append(m, "s", name.c_str()); }));
        store::MountSpec spec;
        if (int r = wire::read_mount(reply.get(), spec); r < 0) return fail(-r, "parse CreateVolume reply");
        return spec;
    }

    Result<> remove_volume(const std::string& name) override { return name_call("RemoveVolume", name); }

    Result<std::vector<VolumeInfo>> list_volumes() override {
        auto reply = BERTH_TRY(call("ListVolumes", nullptr));
        std::vector<VolumeInfo> out;
        if (int r = wire::read_array(reply.get(), wire::kVolume, out, wire::read_volume); r < 0)
            return fail(-r, "parse ListVolumes reply");
        return out;
    }

    Result<VolumeDetail> get_volume(const std::string& name) override {
        auto reply = BERTH_TRY(call(
            "GetVolume", [&](sd_bus_message* m) { return sd_bus_message_append(m, "s", name.c_str()); }));
        VolumeDetail d;
        d.name = name;
        sd_bus_message* m = reply.get();
        int r = wire::read_mount(m, d.mount);
        if (r >= 0) r = sd_bus_message_read(m, "t", &d.created_usec);
        if (r >= 0)
            r = wire::read_array(m, "(su)", d.users, [](sd_bus_message* mm, VolumeUser& u) {
                const char* c;
                int rr = sd_bus_message_read(mm, "(su)", &c, &u.pid);
                if (rr > 0) u.container = c;
                return rr;
            });
        if (r < 0) return fail(-r, "parse GetVolume reply");
        return d;
    }

    // berthd records this process as the holder, from the bus credentials; `holder` is not sent.
    Result<VolumeUse> use_volume(const std::string& name, const std::string& container,
                                 int /*holder*/ = 0) override {
        auto reply = BERTH_TRY(call("UseVolume", [&](sd_bus_message* m) {
            return sd_bus_message_append(m, "ss", name.c_str(), container.c_str());
        }));
        VolumeUse u;
        int created = 0;
        int r = wire::read_mount(reply.get(), u.mount);
        if (r >= 0) r = sd_bus_message_read(reply.get(), "b", &created);
        if (r < 0) return fail(-r, "parse UseVolume reply");
        u.created = created;
        return u;
    }

    Result<> release_volume(const std::string& name, const std::string& container) override {
        BERTH_TRY(call("ReleaseVolume", [&](sd_bus_message* m) {
            return sd_bus_message_append(m, "ss", name.c_str(), container.c_str());
        }));
        return {};
    }

    Result<GcReport> garbage_collect() override {
        auto reply = BERTH_TRY(call("GarbageCollect", nullptr));
        GcReport report;
        if (int r = wire::read_gc_report(reply.get(), report); r < 0)
            return fail(-r, "parse GarbageCollect reply");
        return report;
    }

    Result<GcReport> prune_containers(const std::vector<std::string>& keep) override {
        auto reply =
            BERTH_TRY(call("PruneContainers", [&](sd_bus_message* m) { return append_strv(m, keep); }));
        GcReport report;
        if (int r = wire::read_gc_report(reply.get(), report); r < 0)
            return fail(-r, "parse PruneContainers reply");
        return report;
    }

    Result<DiskUsage> disk_usage() override {
        auto reply = BERTH_TRY(call("DiskUsage", nullptr));
        DiskUsage u;
        sd_bus_message* m = reply.get();
        int r = wire::read_pool(m, u.pool);
        if (r >= 0) r = wire::read_array(m, wire::kImage, u.images, wire::read_image);
        if (r >= 0) r = wire::read_array(m, wire::kContainer, u.containers, wire::read_container);
        if (r >= 0) r = wire::read_array(m, wire::kVolume, u.volumes, wire::read_volume);
        const char* note = nullptr;
        if (r >= 0) r = sd_bus_message_read(m, "s", &note);
        if (r >= 0) r = wire::read_filesystem(m, u);
        if (r < 0) return fail(-r, "parse DiskUsage reply");
        u.size_note = note ? note : "";
        return u;
    }

    Result<PoolStatus> pool_status() override {
        auto reply = BERTH_TRY(call_on("org.freedesktop.DBus.Properties", "GetAll", [](sd_bus_message* m) {
            return sd_bus_message_append(m, "s", kManagerInterface);
        }));
        PoolStatus p;
        sd_bus_message* m = reply.get();
        int r = sd_bus_message_enter_container(m, 'a', "{sv}");
        while (r > 0 && (r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
            const char* key;
            if ((r = sd_bus_message_read(m, "s", &key)) < 0) break;
            std::string_view k = key;
            const char* s = nullptr;
            if (k == "Backend" || k == "StoreRoot" || k == "PoolPath") {
                r = sd_bus_message_read(m, "v", "s", &s);
                (k == "Backend" ? p.backend : k == "StoreRoot" ? p.root : p.pool_path) = s ? s : "";
            } else if (k == "PoolUsage") {
                r = sd_bus_message_read(m, "v", "t", &p.used);
            } else if (k == "PoolSize") {
                r = sd_bus_message_read(m, "v", "t", &p.size);
            } else if (k == "MetadataUsage") {
                r = sd_bus_message_read(m, "v", "t", &p.metadata_used);
            } else if (k == "MetadataSize") {
                r = sd_bus_message_read(m, "v", "t", &p.metadata_size);
            } else {
                r = sd_bus_message_skip(m, "v");
            }
            if (r < 0) break;
            r = sd_bus_message_exit_container(m);
        }
        if (r < 0) return fail(-r, "parse manager properties");
        return p;
    }

private:
    using Filler = std::function<int(sd_bus_message*)>;

    Result<MessagePtr> call_on(const char* interface, const char* method, const Filler& fill) {
        sd_bus_message* m = nullptr;
        int r = sd_bus_message_new_method_call(bus_.get(), &m, kService, kManagerPath, interface, method);
        if (r < 0) return fail(-r, "{}: build call", method);
        MessagePtr call_msg(m);
        if (fill && (r = fill(m)) < 0) return fail(-r, "{}: build call", method);
        BusError error;
        sd_bus_message* reply = nullptr;
        r = sd_bus_call(bus_.get(), m, kLongCallUsec, error.get(), &reply);
        // No error reply: the connection failed (a private berthd that died closes it). sd_bus_call()
        // also fills `error` itself from the errno when the connection breaks while it waits
        // (ENOTCONN, ECONNRESET): a closed connection means the error did not come from berthd.
        if (r < 0 && (!sd_bus_error_is_set(error.get()) || sd_bus_is_open(bus_.get()) <= 0))
            return fail(-r, "{}: no answer from berthd", method);
        if (r < 0) return fail(error_from_bus(error.get(), r, ""));
        return MessagePtr(reply);
    }

    Result<MessagePtr> call(const char* method, const Filler& fill) {
        return call_on(kManagerInterface, method, fill);
    }

    Result<> name_call(const char* method, const std::string& name) {
        BERTH_TRY(
            call(method, [&](sd_bus_message* m) { return sd_bus_message_append(m, "s", name.c_str()); }));
        return {};
    }

    static int on_job_removed(sd_bus_message* m, void* userdata, sd_bus_error*) noexcept {
        auto& results = *static_cast<std::map<uint32_t, JobResult>*>(userdata);
        uint32_t id;
        const char *path, *status, *image, *error;
        int code;
        if (sd_bus_message_read(m, "uossis", &id, &path, &status, &image, &code, &error) < 0) return 0;
        results[id] = JobResult{status, image, error, code};
        return 0;
    }

    struct JobProgress {
        const ProgressFn* fn = nullptr;
        const LayersFn* layers_fn = nullptr;
        std::string path;  // our job's object path; "" until ImportImage has answered
        double fraction = 0;
        uint64_t bytes = 0;
        std::vector<LayerStatus> layers;
    };

    static int read_layers(sd_bus_message* m, std::vector<LayerStatus>& out) {
        out.clear();
        int r = sd_bus_message_enter_container(m, 'v', "a(sstt)");
        if (r >= 0) r = sd_bus_message_enter_container(m, 'a', "(sstt)");
        while (r >= 0) {
            const char *digest, *state;
            LayerStatus l;
            r = sd_bus_message_read(m, "(sstt)", &digest, &state, &l.done, &l.total);
            if (r <= 0) break;
            l.digest = digest;
            l.state = state;
            out.push_back(std::move(l));
        }
        if (r >= 0) r = sd_bus_message_exit_container(m);
        if (r >= 0) r = sd_bus_message_exit_container(m);
        return r;
    }

    static int on_job_properties(sd_bus_message* m, void* userdata, sd_bus_error*) noexcept {
        auto& p = *static_cast<JobProgress*>(userdata);
        // The match covers every job (subscribed before ours existed): keep only ours. Signals
        // that arrive while the call is pending are queued by sd_bus_call() and dispatched after
        // it returns, when the path is known.
        const char* path = sd_bus_message_get_path(m);
        if (p.path.empty() || !path || p.path != path) return 0;
        const char* interface;
        if (sd_bus_message_read(m, "s", &interface) < 0 || std::string_view(interface) != kJobInterface)
            return 0;
        int r = sd_bus_message_enter_container(m, 'a', "{sv}");
        bool changed = false;
        while (r > 0 && (r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
            const char* key;
            if ((r = sd_bus_message_read(m, "s", &key)) < 0) break;
            std::string_view k = key;
            if (k == "Progress")
                r = sd_bus_message_read(m, "v", "d", &p.fraction), changed = true;
            else if (k == "BytesRead")
                r = sd_bus_message_read(m, "v", "t", &p.bytes), changed = true;
            else if (k == "Layers" && p.layers_fn && *p.layers_fn) {
                r = read_layers(m, p.layers);
                if (r >= 0) (*p.layers_fn)(p.layers);
            } else
                r = sd_bus_message_skip(m, "v");
            if (r < 0) break;
            r = sd_bus_message_exit_container(m);
        }
        if (r >= 0 && changed && p.fn && *p.fn) (*p.fn)(p.fraction, p.bytes);
        return 0;
    }

    // Subscribes to JobRemoved before starting the job (no lost signal), starts it, then waits for
    // its completion. Returns the job's image id. With `cancel`, the wait wakes every 100 ms (and on
    // signals) to look at the flag; once it is set the job is cancelled and its end awaited.
    Result<std::string> run_job(const char* what, const Filler& fill, const char* method,
                                const ProgressFn* progress = nullptr,
                                const std::atomic<bool>* cancel = nullptr, const LayersFn* layers = nullptr) {
        std::map<uint32_t, JobResult> results;
        sd_bus_slot* raw_slot = nullptr;
        // On a peer connection (a private berthd) messages carry no sender: match on none.
        const char* sender = peer() ? nullptr : kService;
        int r = sd_bus_match_signal(bus_.get(), &raw_slot, sender, kManagerPath, kManagerInterface,
                                    "JobRemoved", on_job_removed, &results);
        if (r < 0) return fail(-r, "{}: subscribe to job signals", what);
        SlotPtr slot(raw_slot);
        bool lost = false;
        SlotPtr owner_slot;
        if (!peer()) {  // a private berthd that dies closes the connection instead
            r = sd_bus_match_signal(bus_.get(), &raw_slot, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                    "org.freedesktop.DBus", "NameOwnerChanged", on_owner_changed, &lost);
            if (r < 0) return fail(-r, "{}: watch berthd", what);
            owner_slot.reset(raw_slot);
        }
        JobProgress job_progress{progress, layers};
        SlotPtr progress_slot;
        if ((progress && *progress) || (layers && *layers)) {
            // Subscribed before the job exists (its path is not known yet), to every job's
            // PropertiesChanged: a fast job's only updates come right after the reply, and a
            // match added after it could miss them.
            std::string match = fmt::format(
                "type='signal',{}interface='org.freedesktop.DBus.Properties',"
                "member='PropertiesChanged',path_namespace='{}'",
                sender ? fmt::format("sender='{}',", sender) : std::string(), kJobPrefix);
            r = sd_bus_add_match(bus_.get(), &raw_slot, match.c_str(), on_job_properties, &job_progress);
            if (r < 0) return fail(-r, "{}: subscribe to job progress", what);
            progress_slot.reset(raw_slot);
        }
        auto reply = BERTH_TRY(call(method, fill));
        uint32_t id;
        const char* path;
        if ((r = sd_bus_message_read(reply.get(), "uo", &id, &path)) < 0)
            return fail(-r, "parse {} reply", method);
        std::string job_path = path;
        job_progress.path = job_path;
        bool cancel_sent = false;
        for (;;) {
            auto it = results.find(id);
            if (it != results.end()) {
                auto& j = it->second;
                if (j.status == "done") return j.image;
                if (j.status == "canceled") return fail(ECANCELED, "{} cancelled", what);
                return fail(Error{j.code, j.error});
            }
            if (lost) return fail(ECONNRESET, "{}: berthd exited before the job finished", what);
            if (cancel && cancel->load() && !cancel_sent) {
                cancel_sent = true;
                BusError error;
                r = sd_bus_call_method(bus_.get(), kService, job_path.c_str(), kJobInterface, "Cancel",
                                       error.get(), nullptr, "");
                // UnknownObject: the job ended meanwhile; its JobRemoved is on the way.
                if (r < 0 && !sd_bus_error_has_name(error.get(), SD_BUS_ERROR_UNKNOWN_OBJECT))
                    return fail(error_from_bus(error.get(), r, fmt::format("cancel the {} job", what)));
            }
            r = sd_bus_process(bus_.get(), nullptr);
            if (r < 0) return fail(-r, "{}: connection to berthd lost", what);
            if (r > 0) continue;
            r = sd_bus_wait(bus_.get(), cancel ? 100 * 1000 : UINT64_MAX);
            if (r == -EINTR) continue;
            if (r < 0) return fail(-r, "{}: wait for berthd", what);
        }
    }

    std::function<void()> on_close_;
    std::string mode_;
    BusPtr bus_;
};

bool env_is(const char* name, const char* value) {
    const char* e = std::getenv(name);
    return e && std::string_view(e) == value;
}

}  // namespace

Result<std::unique_ptr<Storage>> open_remote_storage() {
    sd_bus* raw = nullptr;
    int r = sd_bus_open_system(&raw);
    if (r < 0) return fail(-r, "connect to the system bus");
    BusPtr bus(raw);
    // berthd is reachable when it owns its name, or the bus can start it.
    BusError error;
    sd_bus_message* reply = nullptr;
    r = sd_bus_call_method(raw, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                           "NameHasOwner", error.get(), &reply, "s", kService);
    if (r < 0) return fail(error_from_bus(error.get(), r, "ask the bus for berthd"));
    MessagePtr owned(reply);
    int has_owner = 0;
    if ((r = sd_bus_message_read(reply, "b", &has_owner)) < 0) return fail(-r, "parse NameHasOwner reply");
    if (!has_owner) {
        sd_bus_message* names_reply = nullptr;
        BusError e2;
        r = sd_bus_call_method(raw, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                               "ListActivatableNames", e2.get(), &names_reply, "");
        if (r < 0) return fail(error_from_bus(e2.get(), r, "ask the bus for activatable names"));
        MessagePtr owned2(names_reply);
        std::vector<std::string> names;
        if ((r = read_strv(names_reply, names)) < 0) return fail(-r, "parse ListActivatableNames reply");
        bool activatable = false;
        for (auto& n : names) activatable |= n == kService;
        if (!activatable)
            return fail(ESRCH, "berthd ({}) is neither running nor activatable on the system bus", kService);
    }
    return make_remote_storage(std::move(bus), "bus", nullptr);
}

std::unique_ptr<Storage> make_remote_storage(BusPtr bus, std::string mode, std::function<void()> on_close) {
    return std::make_unique<RemoteStorage>(std::move(bus), std::move(mode), std::move(on_close));
}

Result<std::unique_ptr<Storage>> open_storage() {
    if (env_is("BERTH_STORAGE", "bus")) return open_remote_storage();
    if (!env_is("BERTH_STORAGE", "embedded")) {
        auto remote = open_remote_storage();
        if (remote) return remote;
        // No bus or no berthd on it: a private berthd, the same protocol over a socketpair.
    }
    return open_private_storage();
}

}  // namespace berth::bus
