// /org/berth/Storage1, interface org.berth.Storage1.Manager. Each method: read and validate the
// arguments, check authorization, then do the work (reads here, writes on a worker).
#include <fcntl.h>

#include <map>

#include "basic/string-util.h"
#include "bus/wire.h"
#include "daemon.h"
#include "registry/reference.h"

namespace berth::berthd {

namespace {

using namespace berth::bus;

Daemon& D(void* userdata) { return *static_cast<Daemon*>(userdata); }

int reply_error(sd_bus_error* ret, const Error& e) { return set_bus_error(ret, e); }

#define CHECK_VALID(expr)                                   \
    do {                                                    \
        auto v_ = (expr);                                   \
        if (!v_) return reply_error(ret_error, v_.error()); \
    } while (0)

#define READ_ARGS(...)                                \
    do {                                              \
        int r_ = sd_bus_message_read(m, __VA_ARGS__); \
        if (r_ < 0) return r_;                        \
    } while (0)

// The caller's fd is only borrowed by the message; keep our own copy for the worker.
Result<UniqueFd> dup_fd(int fd) {
    int copy = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
    if (copy < 0) return fail_errno("duplicate the caller's file descriptor");
    return UniqueFd(copy);
}

int method_import_image(sd_bus_message* m, void* userdata, sd_bus_error* ret_error) noexcept {
    int fd;
    const char *format, *name;
    READ_ARGS("hss", &fd, &format, &name);
    CHECK_VALID(validate_import_format(format));
    if (*name) CHECK_VALID(validate_image_name(name));
    if (int r = require_root(m, ret_error); r < 0) return r;
    auto copy = dup_fd(fd);
    if (!copy) return reply_error(ret_error, copy.error());
    auto shared_fd = std::make_shared<UniqueFd>(std::move(*copy));
    Daemon& d = D(userdata);
    std::string fmt_s = format, name_s = name;
    auto job =
        d.start_job(m, "import", name_s, [&d, shared_fd, fmt_s, name_s](Job& j) -> Result<std::string> {
            auto progress = [&j](double p, uint64_t bytes) {
                j.progress = p;
                j.bytes_read = bytes;
            };
            auto image = d.storage().import_image(shared_fd->get(), fmt_s, name_s, progress, j.cancel);
            shared_fd->reset();
            if (!image) return fail(image.error());
            j.progress = 1.0;
            return image->id;
        });
    if (!job) return reply_error(ret_error, job.error());
    return sd_bus_reply_method_return(m, "uo", (*job)->id, (*job)->path.c_str());
}

// PullImage(s reference, a{sv} options): options "platform" (s).
int method_pull_image(sd_bus_message* m, void* userdata, sd_bus_error* ret_error) noexcept {
    const char* reference;
    READ_ARGS("s", &reference);
    std::map<std::string, std::string> options;
    int r = sd_bus_message_enter_container(m, 'a', "{sv}");
    while (r >= 0 && (r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
        const char *key, *value;
        if ((r = sd_bus_message_read(m, "s", &key)) < 0) break;
        if (std::string_view(key) != "platform")
            return reply_error(ret_error,
                               Error{EINVAL, fmt::format("unknown pull option '{}' (known: platform)",
                                                         sanitize_message(key))});
        if ((r = sd_bus_message_read(m, "v", "s", &value)) < 0) break;
        options[key] = value;
        if ((r = sd_bus_message_exit_container(m)) < 0) break;
    }
    if (r >= 0) r = sd_bus_message_exit_container(m);
    if (r < 0) return r;
    CHECK_VALID(registry::parse_reference(reference));
    if (int rr = require_root(m, ret_error); rr < 0) return rr;
    Daemon& d = D(userdata);
    std::string ref_s = reference;
    auto job = d.start_job(m, "pull", ref_s, [&d, ref_s, options](Job& j) -> Result<std::string> {
        auto progress = [&j](double p, uint64_t bytes) {
            j.progress = p;
            j.bytes_read = bytes;
        };
        // Kept for the progress timer, which publishes the Layers property when they changed.
        auto layers = [&j](const std::vector<bus::LayerStatus>& now) {
            std::lock_guard lock(j.layers_mutex);
            if (j.layers == now) return;
            j.layers = now;
            ++j.layers_version;
        };
        auto image = BERTH_TRY(d.storage().pull_image(ref_s, options, progress, j.cancel, layers));
        j.progress = 1.0;
        return image.id;
    });
    if (!job) return reply_error(ret_error, job.error());
    return sd_bus_reply_method_return(m, "uo", (*job)->id, (*job)->path.c_str());
}

// ResolveImage(s reference): a job whose result is the digest the reference's tag names on its
// registry (a HEAD request; `berth auto-update`). Nothing is pulled or stored.
int method_resolve_image(sd_bus_message* m, void* userdata, sd_bus_error* ret_error) noexcept {
    const char* reference;
    READ_ARGS("s", &reference);
    CHECK_VALID(registry::parse_reference(reference));
    if (int rr = require_root(m, ret_error); rr < 0) return rr;
    Daemon& d = D(userdata);
    std::string ref_s = reference;
    auto job = d.start_job(m, "resolve", ref_s, [&d, ref_s](Job& j) -> Result<std::string> {
        auto digest = BERTH_TRY(d.storage().resolve_image(ref_s, j.cancel));
        j.progress = 1.0;
        return digest;
    });
    if (!job) return reply_error(ret_error, job.error());
    return sd_bus_reply_method_return(m, "uo", (*job)->id, (*job)->path.c_str());
}

// PushImage(s image, s reference, a{sv} options): no options yet (an unknown one is refused).
// The job's result is the repository digest ("repository@sha256:...").
int method_push_image(sd_bus_message* m, void* userdata, sd_bus_error* ret_error) noexcept {
    const char *image, *reference;
    READ_ARGS("ss", &image, &reference);
    int r = sd_bus_message_enter_container(m, 'a', "{sv}");
    if (r >= 0 && (r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
        const char* key;
        if ((r = sd_bus_message_read(m, "s", &key)) < 0) return r;
        return reply_error(ret_error, Error{EINVAL, fmt::format("unknown push option '{}' (none are known)",
                                                                sanitize_message(key))});
    }
    if (r >= 0) r = sd_bus_message_exit_container(m);
    if (r < 0) return r;
    CHECK_VALID(validate_image_ref(image));
    CHECK_VALID(registry::parse_reference(reference));
    if (int rr = require_root(m, ret_error); rr < 0) return rr;
    Daemon& d = D(userdata);
    std::string image_s = image, ref_s = reference;
    auto job = d.start_job(m, "push", ref_s, [&d, image_s, ref_s](Job& j) -> Result<std::string> {
        auto progress = [&j](double p, uint64_t bytes) {
            j.progress = p;
            j.bytes_read = bytes;
        };
        auto digest = BERTH_TRY(d.storage().push_image(image_s, ref_s, {}, progress, j.cancel));
        j.progress = 1.0;
        return digest;
    });
    if (!job) return reply_error(ret_error, job.error());
    return sd_bus_reply_method_return(m, "uo", (*job)->id, (*job)->path.c_str());
}

// ListRepoDigests() -> a(sas): (image id, its repository digests) for each image that has some.
// A method of its own so that ListImages' signature stays as clients know it.
int method_list_repo_digests(sd_bus_message* m, void* userdata, sd_bus_error* ret_error) noexcept {
    auto images = D(userdata).storage().list_images();
    if (!images) return reply_error(ret_error, images.error());
    sd_bus_message* reply = nullptr;
    int r = sd_bus_message_new_method_return(m, &reply);
    if (r < 0) return r;
    MessagePtr owned(reply);
    if ((r = sd_bus_message_open_container(reply, 'a', "(sas)")) < 0) return r;
    for (const auto& image : *images) {
        if (image.repo_digests.empty()) continue;
        if ((r = sd_bus_message_open_container(reply, 'r', "sas")) < 0 ||
            (r = sd_bus_message_append(reply, "s", image.id.c_str())) < 0 ||
            (r = append_strv(reply, image.repo_digests)) < 0 ||
            (r = sd_bus_message_close_container(reply)) < 0)
            return r;
    }
    if ((r = sd_bus_message_close_container(reply)) < 0) return r;
    return sd_bus_send(nullptr, reply, nullptr);
}

int method_export_image(sd_bus_message* m, void* userdata, sd_bus_error* ret_error) noexcept {
    const char *ref, *format;
    int fd;
    READ_ARGS("shs", &ref, &fd, &format);
    CHECK_VALID(validate_image_ref(ref));
    CHECK_VALID(validate_export_format(format));
    // Export only reads the store; the caller's fd decides where the bytes go. Still root-only:
    // it is a long job that costs the daemon's resources.
    if (int r = require_root(m, ret_error); r < 0) return r;
    auto copy = dup_fd(fd);
    if (!copy) return reply_error(ret_error, copy.error());
    auto shared_fd = std::make_shared<UniqueFd>(std::move(*copy));
    Daemon& d = D(userdata);
    std::string ref_s = ref, fmt_s = *format ? format : "oci-archive";
    auto job = d.start_job(m, "export", ref_s, [&d, shared_fd, ref_s, fmt_s](Job& j) -> Result<std::string> {
        BERTH_TRY_VOID(d.storage().export_image(ref_s, shared_fd->get(), fmt_s, &j.cancel));
        shared_fd->reset();
        j.progress = 1.0;
        return std::string();
    });
    if (!job) return reply_error(ret_error, job.error());
    return sd_bus_reply_method_return(m, "uo", (*job)->id, (*job)->path.c_str());
}

int method_list_images(sd_bus_message* m, void* userdata, sd_bus_error* ret_error) noexcept {
    auto images = D(userdata).storage().list_images();
    if (!images) return reply_error(ret_error, images.error());
    if (!caller_is_root(m))
        for (auto& image : *images) withhold_secrets(image);
    sd_bus_message* reply = nullptr;
    int r = sd_bus_message_new_method_return(m, &reply);
    if (r < 0) return r;
    MessagePtr owned(reply);
    if ((r = wire::append_array(reply, wire::kImage, *images, wire::append_image)) < 0) return r;
    return sd_bus_send(nullptr, reply, nullptr);
}

int method_get_image(sd_bus_message* m, void* userdata, sd_bus_error* ret_error) noexcept {
    const char* ref;
    READ_ARGS("s", &ref);
    CHECK_VALID(validate_image_ref(ref));
    auto image = D(userdata).storage().get_image(ref);
    if (!image) return reply_error(ret_error, image.error());
    if (!caller_is_root(m)) withhold_secrets(*image);
    sd_bus_message* reply = nullptr;
    int r = sd_bus_message_new_method_return(m, &reply);
    if (r < 0) return r;
    MessagePtr owned(reply);
    std::string path = object_path(kImagePrefix, image->id);
    if ((r = sd_bus_message_append(reply, "o", path.c_str())) < 0 ||
        (r = wire::append_image(reply, *image)) < 0)
        return r;
    return sd_bus_send(nullptr, reply, nullptr);
}

int method_remove_image(sd_bus_message* m, void* userdata, sd_bus_error* ret_error) noexcept {
    const char* ref;
    READ_ARGS("s", &ref);
    CHECK_VALID(validate_image_ref(ref));
    if (int r = require_root(m, ret_error); r < 0) return r;
    Daemon& d = D(userdata);
    std::string ref_s = ref;
    return d.reply_async(m, [&d, ref_s]() -> Result<Appender> {
        auto done = BERTH_TRY(d.storage().remove_image(ref_s));
        return Appender([done](sd_bus_message* reply) {
            int r = append_strv(reply, done.untagged);
            return r < 0 ? r : sd_bus_message_append(reply, "s", done.deleted.c_str());
        });
    });
}

int method_tag_image(sd_bus_message* m, void* userdata, sd_bus_error* ret_error) noexcept {
    const char *ref, *name;
    READ_ARGS("ss", &ref, &name);
    CHECK_VALID(validate_image_ref(ref));
    CHECK_VALID(validate_image_name(name));
    if (int r = require_root(m, ret_error); r < 0) return r;
    Daemon& d = D(userdata);
    std::string ref_s = ref, name_s = name;
    return d.reply_async(m, [&d, ref_s, name_s]() -> Result<Appender> {
        BERTH_TRY_VOID(d.storage().tag_image(ref_s, name_s));
        return Appender();
    });
}

// The bus caller's pid, which the caller cannot forge: the holder of what it prepares or uses.
int caller_pid(sd_bus_message* m, pid_t& pid, sd_bus_error* ret_error) {
    sd_bus_creds* raw = nullptr;
    int r = sd_bus_query_sender_creds(m, SD_BUS_CREDS_PID, &raw);
    if (r < 0) return sd_bus_error_set_errnof(ret_error, r, "Cannot determine the caller's pid: %m");
    CredsPtr creds(raw);
    if ((r = sd_bus_creds_get_pid(raw, &pid)) < 0 || pid <= 0)
        return sd_bus_error_set_errnof(ret_error, r < 0 ? r : -ESRCH,
                                       "Cannot determine the caller's pid: %m");
    return 0;
}

int method_prepare_container(sd_bus_message* m, void* userdata, sd_bus_error* ret_error) noexcept {
    const char *name, *image, *on_change;
    int ephemeral;
    READ_ARGS("ssbs", &name, &image, &ephemeral, &on_change);
    CHECK_VALID(validate_object_name("container", name));
    if (*image) CHECK_VALID(validate_image_ref(image));
    auto policy_r = parse_image_change_policy(on_change);
    CHECK_VALID(policy_r);
    const store::ImageChangePolicy policy = *policy_r;
    if (int r = require_root(m, ret_error); r < 0) return r;
    // The caller holds the snapshot until it releases it or exits (its pid from the bus, which
    // the caller cannot forge; the store adds the start time against pid reuse).
    pid_t holder = 0;
    if (int r = caller_pid(m, holder, ret_error); r < 0) return r;
    Daemon& d = D(userdata);
    std::string name_s = name, image_s = image;
    bool eph = ephemeral;
    return d.reply_async(m, [&d, name_s, image_s, eph, holder, policy]() -> Result<Appender> {
        auto prepared = BERTH_TRY(d.storage().prepare_container(name_s, image_s, eph, holder, policy));
        return Appender([prepared](sd_bus_message* reply) {
            int r = sd_bus_message_append(reply, "s", prepared.snapshot_id.c_str());
            if (r >= 0) r = wire::append_mount(reply, prepared.rootfs);
            if (r >= 0) r = wire::append_config(reply, prepared.config);
            if (r >= 0) r = wire::append_image_change(reply, prepared.image_change);
            return r;
        });
    });
}

// What a one-name method acts on, and who may call it: declared by each entry of the vtable.
enum class ObjectKind { Container, Volume };
enum class Access { Root };

constexpr const char* kind_name(ObjectKind kind) {
    return kind == ObjectKind::Volume ? "volume" : "container";
}

// ReleaseContainer, RemoveContainer, RemoveVolume: one name, no reply data.
template <ObjectKind Kind, Access Who, Result<> (Storage::*Fn)(const std::string&)>
int method_name_only(sd_bus_message* m, void* userdata, sd_bus_error* ret_error) noexcept {
    static_assert(Who == Access::Root, "every one-name method mutates the store");
    const char* name;
    READ_ARGS("s", &name);
    CHECK_VALID(validate_object_name(kind_name(Kind), name));
    if (int r = require_root(m, ret_error); r < 0) return r;
    Daemon& d = D(userdata);
    std::string name_s = name;
    return d.reply_async(m, [&d, name_s]() -> Result<Appender> {
        BERTH_TRY_VOID((d.storage().*Fn)(name_s));
        return Appender();
    });
}

constexpr auto method_release_container =
    method_name_only<ObjectKind::Container, Access::Root, &Storage::release_container>;
constexpr auto method_remove_container =
    method_name_only<ObjectKind::Container, Access::Root, &Storage::remove_container>;
constexpr auto method_remove_volume =
    method_name_only<ObjectKind::Volume, Access::Root, &Storage::remove_volume>;

int method_commit_container(sd_bus_message* m, void* userdata, sd_bus_error* ret_error) noexcept {
    const char *name, *image_name;
    READ_ARGS("ss", &name, &image_name);
    CHECK_VALID(validate_object_name("container", name));
    CHECK_VALID(validate_image_name(image_name));
    if (int r = require_root(m, ret_error); r < 0) return r;
    Daemon& d = D(userdata);
    std::string name_s = name, image_s = image_name;
    return d.reply_async(m, [&d, name_s, image_s]() -> Result<Appender> {
        auto image = BERTH_TRY(d.storage().commit_container(name_s, image_s));
        return Appender([image](sd_bus_message* reply) {
            std::string path = object_path(kImagePrefix, image.id);
            int r = sd_bus_message_append(reply, "o", path.c_str());
            return r < 0 ? r : wire::append_image(reply, image);
        });
    });
}

int method_list_containers(sd_bus_message* m, void* userdata, sd_bus_error* ret_error) noexcept {
    auto items = D(userdata).storage().list_containers();
    if (!items) return reply_error(ret_error, items.error());
    sd_bus_message* reply = nullptr;
    int r = sd_bus_message_new_method_return(m, &reply);
    if (r < 0) return r;
    MessagePtr owned(reply);
    if ((r = wire::append_array(reply, wire::kContainer, *items, wire::append_container)) < 0) return r;
    return sd_bus_send(nullptr, reply, nullptr);
}

int method_create_volume(sd_bus_message* m, void* userdata, sd_bus_error* ret_error) noexcept {
    const char* name;
    READ_ARGS("s", &name);
    CHECK_VALID(validate_object_name("volume", name));
    if (int r = require_root(m, ret_error); r < 0) return r;
    Daemon& d = D(userdata);
    std::string name_s = name;
    return d.reply_async(m, [&d, name_s]() -> Result<Appender> {
        auto spec = BERTH_TRY(d.storage().create_volume(name_s));
        return Appender([spec](sd_bus_message* reply) { return wire::append_mount(reply, spec); });
    });
}

int method_get_volume(sd_bus_message* m, void* userdata, sd_bus_error* ret_error) noexcept {
    const char* name;
    READ_ARGS("s", &name);
    CHECK_VALID(validate_object_name("volume", name));
    auto v = D(userdata).storage().get_volume(name);
    if (!v) return reply_error(ret_error, v.error());
    sd_bus_message* reply = nullptr;
    int r = sd_bus_message_new_method_return(m, &reply);
    if (r < 0) return r;
    MessagePtr owned(reply);
    if ((r = wire::append_mount(reply, v->mount)) < 0) return r;
    if ((r = sd_bus_message_append(reply, "t", v->created_usec)) < 0) return r;
    if ((r = wire::append_array(reply, "(su)", v->users, [](sd_bus_message* mm, const VolumeUser& u) {
             return sd_bus_message_append(mm, "(su)", u.container.c_str(), u.pid);
         })) < 0)
        return r;
    return sd_bus_send(nullptr, reply, nullptr);
}

// The runtime's call for each volume it mounts: the caller holds the volume until it releases it
// or exits, like PrepareContainer.
int method_use_volume(sd_bus_message* m, void* userdata, sd_bus_error* ret_error) noexcept {
    const char *name, *container;
    READ_ARGS("ss", &name, &container);
    CHECK_VALID(validate_object_name("volume", name));
    CHECK_VALID(validate_object_name("container", container));
    if (int r = require_root(m, ret_error); r < 0) return r;
    pid_t holder = 0;
    if (int r = caller_pid(m, holder, ret_error); r < 0) return r;
    Daemon& d = D(userdata);
    std::string name_s = name, container_s = container;
    return d.reply_async(m, [&d, name_s, container_s, holder]() -> Result<Appender> {
        auto use = BERTH_TRY(d.storage().use_volume(name_s, container_s, holder));
        return Appender([use](sd_bus_message* reply) {
            int r = wire::append_mount(reply, use.mount);
            return r < 0 ? r : sd_bus_message_append(reply, "b", static_cast<int>(use.created));
        });
    });
}

int method_release_volume(sd_bus_message* m, void* userdata, sd_bus_error* ret_error) noexcept {
    const char *name, *container;
    READ_ARGS("ss", &name, &container);
    CHECK_VALID(validate_object_name("volume", name));
    CHECK_VALID(validate_object_name("container", container));
    if (int r = require_root(m, ret_error); r < 0) return r;
    Daemon& d = D(userdata);
    std::string name_s = name, container_s = container;
    return d.reply_async(m, [&d, name_s, container_s]() -> Result<Appender> {
        BERTH_TRY_VOID(d.storage().release_volume(name_s, container_s));
        return Appender();
    });
}

// The client will not call for a while (bus::Storage::release_store). Sent without a reply
// expected; a private berthd lets go of the store, berthd on the bus ignores it.
int method_release_store(sd_bus_message* m, void* userdata, sd_bus_error*) noexcept {
    D(userdata).release_store_when_idle();
    return sd_bus_reply_method_return(m, "");
}

int method_list_volumes(sd_bus_message* m, void* userdata, sd_bus_error* ret_error) noexcept {
    auto items = D(userdata).storage().list_volumes();
    if (!items) return reply_error(ret_error, items.error());
    sd_bus_message* reply = nullptr;
    int r = sd_bus_message_new_method_return(m, &reply);
    if (r < 0) return r;
    MessagePtr owned(reply);
    if ((r = wire::append_array(reply, wire::kVolume, *items, wire::append_volume)) < 0) return r;
    return sd_bus_send(nullptr, reply, nullptr);
}

int method_garbage_collect(sd_bus_message* m, void* userdata, sd_bus_error* ret_error) noexcept {
    if (int r = require_root(m, ret_error); r < 0) return r;
    Daemon& d = D(userdata);
    return d.reply_async(m, [&d]() -> Result<Appender> {
        auto report = BERTH_TRY(d.storage().garbage_collect());
        return Appender([report](sd_bus_message* reply) { return wire::append_gc_report(reply, report); });
    });
}

// `berth prune`: the caller names the containers it declares; the rest (not in use) go.
int method_prune_containers(sd_bus_message* m, void* userdata, sd_bus_error* ret_error) noexcept {
    std::vector<std::string> keep;
    if (int r = read_strv(m, keep); r < 0) return r;
    for (const auto& name : keep) CHECK_VALID(validate_object_name("container", name));
    if (int r = require_root(m, ret_error); r < 0) return r;
    Daemon& d = D(userdata);
    return d.reply_async(m, [&d, keep]() -> Result<Appender> {
        auto report = BERTH_TRY(d.storage().prune_containers(keep));
        return Appender([report](sd_bus_message* reply) { return wire::append_gc_report(reply, report); });
    });
}

// Walks the store's trees, which can take a while: on a worker, but open to everyone. One walk
// answers every caller whose call came while it ran (root's answer differs: its own key).
int method_disk_usage(sd_bus_message* m, void* userdata, sd_bus_error*) noexcept {
    Daemon& d = D(userdata);
    const bool root = caller_is_root(m);
    return d.reply_coalesced(
        m, root ? "DiskUsage" : "DiskUsage:unprivileged", [&d, root]() -> Result<Appender> {
            auto usage = BERTH_TRY(d.storage().disk_usage());
            if (!root)
                for (auto& image : usage.images) withhold_secrets(image);
            return Appender([usage](sd_bus_message* reply) {
                int r = wire::append_pool(reply, usage.pool);
                if (r >= 0) r = wire::append_array(reply, wire::kImage, usage.images, wire::append_image);
                if (r >= 0)
                    r = wire::append_array(reply, wire::kContainer, usage.containers, wire::append_container);
                if (r >= 0) r = wire::append_array(reply, wire::kVolume, usage.volumes, wire::append_volume);
                if (r >= 0) r = sd_bus_message_append(reply, "s", usage.size_note.c_str());
                if (r >= 0) r = wire::append_filesystem(reply, usage);
                return r;
            });
        });
}

int property_pool(sd_bus*, const char*, const char*, const char* property, sd_bus_message* reply,
                  void* userdata, sd_bus_error* ret_error) noexcept {
    auto pool = D(userdata).storage().pool_status();
    if (!pool) return reply_error(ret_error, pool.error());
    std::string_view p = property;
    if (p == "Backend") return sd_bus_message_append(reply, "s", pool->backend.c_str());
    if (p == "StoreRoot") return sd_bus_message_append(reply, "s", pool->root.c_str());
    if (p == "PoolPath") return sd_bus_message_append(reply, "s", pool->pool_path.c_str());
    if (p == "PoolUsage") return sd_bus_message_append(reply, "t", pool->used);
    if (p == "MetadataUsage") return sd_bus_message_append(reply, "t", pool->metadata_used);
    if (p == "MetadataSize") return sd_bus_message_append(reply, "t", pool->metadata_size);
    return sd_bus_message_append(reply, "t", pool->size);
}

const sd_bus_vtable manager_vtable[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_PROPERTY("Backend", "s", property_pool, 0, 0),
    SD_BUS_PROPERTY("StoreRoot", "s", property_pool, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_PROPERTY("PoolPath", "s", property_pool, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_PROPERTY("PoolUsage", "t", property_pool, 0, 0),
    SD_BUS_PROPERTY("PoolSize", "t", property_pool, 0, 0),
    SD_BUS_PROPERTY("MetadataUsage", "t", property_pool, 0, 0),
    SD_BUS_PROPERTY("MetadataSize", "t", property_pool, 0, 0),
    SD_BUS_METHOD_WITH_NAMES("ImportImage", "hss", SD_BUS_PARAM(fd) SD_BUS_PARAM(format) SD_BUS_PARAM(name),
                             "uo", SD_BUS_PARAM(job_id) SD_BUS_PARAM(job_path), method_import_image,
                             SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("PullImage", "sa{sv}", SD_BUS_PARAM(reference) SD_BUS_PARAM(options), "uo",
                             SD_BUS_PARAM(job_id) SD_BUS_PARAM(job_path), method_pull_image,
                             SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("ResolveImage", "s", SD_BUS_PARAM(reference), "uo",
                             SD_BUS_PARAM(job_id) SD_BUS_PARAM(job_path), method_resolve_image,
                             SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES(
        "PushImage", "ssa{sv}", SD_BUS_PARAM(image) SD_BUS_PARAM(reference) SD_BUS_PARAM(options), "uo",
        SD_BUS_PARAM(job_id) SD_BUS_PARAM(job_path), method_push_image, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("ListImages", "", , "a(sasttas(asasassss(asttttu)))", SD_BUS_PARAM(images),
                             method_list_images, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("ListRepoDigests", "", , "a(sas)", SD_BUS_PARAM(digests),
                             method_list_repo_digests, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("GetImage", "s", SD_BUS_PARAM(image), "o(sasttas(asasassss(asttttu)))",
                             SD_BUS_PARAM(path) SD_BUS_PARAM(info), method_get_image,
                             SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("RemoveImage", "s", SD_BUS_PARAM(image), "ass",
                             SD_BUS_PARAM(untagged) SD_BUS_PARAM(deleted), method_remove_image,
                             SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("TagImage", "ss", SD_BUS_PARAM(image) SD_BUS_PARAM(name), "", , method_tag_image,
                             SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("ExportImage", "shs", SD_BUS_PARAM(image) SD_BUS_PARAM(fd) SD_BUS_PARAM(format),
                             "uo", SD_BUS_PARAM(job_id) SD_BUS_PARAM(job_path), method_export_image,
                             SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES(
        "PrepareContainer", "ssbs",
        SD_BUS_PARAM(name) SD_BUS_PARAM(image) SD_BUS_PARAM(ephemeral) SD_BUS_PARAM(on_image_change),
        "s(ssasssssb)(asasassss(asttttu))(bbsss)",
        SD_BUS_PARAM(snapshot_id) SD_BUS_PARAM(rootfs) SD_BUS_PARAM(config) SD_BUS_PARAM(image_change),
        method_prepare_container, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("ReleaseContainer", "s", SD_BUS_PARAM(name), "", , method_release_container,
                             SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("RemoveContainer", "s", SD_BUS_PARAM(name), "", , method_remove_container,
                             SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("CommitContainer", "ss", SD_BUS_PARAM(name) SD_BUS_PARAM(image_name),
                             "o(sasttas(asasassss(asttttu)))", SD_BUS_PARAM(path) SD_BUS_PARAM(info),
                             method_commit_container, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("ListContainers", "", , "a(sssbt)", SD_BUS_PARAM(containers),
                             method_list_containers, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("CreateVolume", "s", SD_BUS_PARAM(name), "(ssasssssb)", SD_BUS_PARAM(mount),
                             method_create_volume, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("RemoveVolume", "s", SD_BUS_PARAM(name), "", , method_remove_volume,
                             SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("ListVolumes", "", , "a(st)", SD_BUS_PARAM(volumes), method_list_volumes,
                             SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("GetVolume", "s", SD_BUS_PARAM(name), "(ssasssssb)ta(su)",
                             SD_BUS_PARAM(mount) SD_BUS_PARAM(created_usec) SD_BUS_PARAM(users),
                             method_get_volume, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("UseVolume", "ss", SD_BUS_PARAM(name) SD_BUS_PARAM(container), "(ssasssssb)b",
                             SD_BUS_PARAM(mount) SD_BUS_PARAM(created), method_use_volume,
                             SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("ReleaseVolume", "ss", SD_BUS_PARAM(name) SD_BUS_PARAM(container), "", ,
                             method_release_volume, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD("ReleaseStore", "", "", method_release_store, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("GarbageCollect", "", , "asta{st}",
                             SD_BUS_PARAM(removed) SD_BUS_PARAM(bytes_freed) SD_BUS_PARAM(sizes),
                             method_garbage_collect, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("PruneContainers", "as", SD_BUS_PARAM(keep), "asta{st}",
                             SD_BUS_PARAM(removed) SD_BUS_PARAM(bytes_freed) SD_BUS_PARAM(sizes),
                             method_prune_containers, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("DiskUsage", "", , "(ssstttt)a(sasttas(asasassss(asttttu)))a(sssbt)a(st)s(ssst)",
                             SD_BUS_PARAM(pool) SD_BUS_PARAM(images) SD_BUS_PARAM(containers)
                                 SD_BUS_PARAM(volumes) SD_BUS_PARAM(size_note) SD_BUS_PARAM(filesystem),
                             method_disk_usage, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_SIGNAL_WITH_NAMES("JobNew", "uo", SD_BUS_PARAM(job_id) SD_BUS_PARAM(job_path), 0),
    SD_BUS_SIGNAL_WITH_NAMES("JobRemoved", "uossis",
                             SD_BUS_PARAM(job_id) SD_BUS_PARAM(job_path) SD_BUS_PARAM(result)
                                 SD_BUS_PARAM(image_id) SD_BUS_PARAM(errno) SD_BUS_PARAM(error),
                             0),
    SD_BUS_VTABLE_END,
};

}  // namespace

Result<> add_manager_object(Daemon& daemon, sd_bus* bus, std::vector<SlotPtr>& slots) {
    sd_bus_slot* slot = nullptr;
    int r = sd_bus_add_object_vtable(bus, &slot, kManagerPath, kManagerInterface, manager_vtable, &daemon);
    if (r < 0) return fail(-r, "add manager object");
    slots.emplace_back(slot);
    r = sd_bus_add_object_manager(bus, &slot, kManagerPath);
    if (r < 0) return fail(-r, "add object manager");
    slots.emplace_back(slot);
    return {};
}

}  // namespace berth::berthd
