#include "bus/wire.h"

#include "bus/bus-util.h"

namespace berth::bus::wire {

namespace {
std::string inner(const char* sig) { return std::string(sig + 1, std::char_traits<char>::length(sig) - 2); }

// Reads one 's' into a std::string.
int read_string(sd_bus_message* m, std::string& out) {
    const char* s = nullptr;
    int r = sd_bus_message_read(m, "s", &s);
    if (r > 0) out = s;
    return r;
}
}  // namespace

#define TRY_BUS(expr)          \
    do {                       \
        int r_ = (expr);       \
        if (r_ < 0) return r_; \
    } while (0)

int append_config(sd_bus_message* m, const store::ImageConfig& c) {
    TRY_BUS(sd_bus_message_open_container(m, 'r', inner(kConfig).c_str()));
    TRY_BUS(append_strv(m, c.entrypoint));
    TRY_BUS(append_strv(m, c.cmd));
    TRY_BUS(append_strv(m, c.env));
    TRY_BUS(sd_bus_message_append(m, "sss", c.user.c_str(), c.working_dir.c_str(), c.stop_signal.c_str()));
    const store::ImageHealthcheck& h = c.healthcheck;
    TRY_BUS(sd_bus_message_open_container(m, 'r', "asttttu"));
    TRY_BUS(append_strv(m, h.test));
    TRY_BUS(sd_bus_message_append(m, "ttttu", h.interval_ns, h.timeout_ns, h.start_period_ns,
                                  h.start_interval_ns, h.retries));
    TRY_BUS(sd_bus_message_close_container(m));
    return sd_bus_message_close_container(m);
}

int read_config(sd_bus_message* m, store::ImageConfig& c) {
    int r = sd_bus_message_enter_container(m, 'r', inner(kConfig).c_str());
    if (r <= 0) return r;
    TRY_BUS(read_strv(m, c.entrypoint));
    TRY_BUS(read_strv(m, c.cmd));
    TRY_BUS(read_strv(m, c.env));
    TRY_BUS(read_string(m, c.user));
    TRY_BUS(read_string(m, c.working_dir));
    TRY_BUS(read_string(m, c.stop_signal));
    store::ImageHealthcheck& h = c.healthcheck;
    TRY_BUS(sd_bus_message_enter_container(m, 'r', "asttttu"));
    TRY_BUS(read_strv(m, h.test));
    TRY_BUS(sd_bus_message_read(m, "ttttu", &h.interval_ns, &h.timeout_ns, &h.start_period_ns,
                                &h.start_interval_ns, &h.retries));
    TRY_BUS(sd_bus_message_exit_container(m));
    TRY_BUS(sd_bus_message_exit_container(m));
    return 1;
}

int append_image(sd_bus_message* m, const ImageInfo& i) {
    TRY_BUS(sd_bus_message_open_container(m, 'r', inner(kImage).c_str()));
    TRY_BUS(sd_bus_message_append(m, "s", i.id.c_str()));
    TRY_BUS(append_strv(m, i.names));
    TRY_BUS(sd_bus_message_append(m, "tt", i.size, i.created_usec));
    TRY_BUS(append_strv(m, i.layers));
    TRY_BUS(append_config(m, i.config));
    return sd_bus_message_close_container(m);
}

int read_image(sd_bus_message* m, ImageInfo& i) {
    int r = sd_bus_message_enter_container(m, 'r', inner(kImage).c_str());
    if (r <= 0) return r;
    TRY_BUS(read_string(m, i.id));
    TRY_BUS(read_strv(m, i.names));
    TRY_BUS(sd_bus_message_read(m, "tt", &i.size, &i.created_usec));
    TRY_BUS(read_strv(m, i.layers));
    TRY_BUS(read_config(m, i.config));
    TRY_BUS(sd_bus_message_exit_container(m));
    return 1;
}

int append_container(sd_bus_message* m, const ContainerInfo& c) {
    return sd_bus_message_append(m, kContainer, c.name.c_str(), c.image.c_str(), c.layer.c_str(),
                                 static_cast<int>(c.ephemeral), c.size);
}

int read_container(sd_bus_message* m, ContainerInfo& c) {
    const char *name, *image, *layer;
    int ephemeral = 0;
    int r = sd_bus_message_read(m, kContainer, &name, &image, &layer, &ephemeral, &c.size);
    if (r <= 0) return r;
    c.name = name, c.image = image, c.layer = layer, c.ephemeral = ephemeral;
    return 1;
}

int append_volume(sd_bus_message* m, const VolumeInfo& v) {
    return sd_bus_message_append(m, kVolume, v.name.c_str(), v.size);
}

int read_volume(sd_bus_message* m, VolumeInfo& v) {
    const char* name;
    int r = sd_bus_message_read(m, kVolume, &name, &v.size);
    if (r <= 0) return r;
    v.name = name;
    return 1;
}

int append_mount(sd_bus_message* m, const store::MountSpec& s) {
    const char* kind = s.kind == store::MountSpec::Kind::Overlay ? "overlay"
                       : s.kind == store::MountSpec::Kind::Block ? "block"
                                                                 : "bind";
    TRY_BUS(sd_bus_message_open_container(m, 'r', inner(kMount).c_str()));
    TRY_BUS(sd_bus_message_append(m, "ss", kind, s.source.c_str()));
    TRY_BUS(append_strv(m, s.lowerdirs));
    TRY_BUS(sd_bus_message_append(m, "ssssb", s.upperdir.c_str(), s.workdir.c_str(), s.fstype.c_str(),
                                  s.options.c_str(), static_cast<int>(s.read_only)));
    return sd_bus_message_close_container(m);
}

int read_mount(sd_bus_message* m, store::MountSpec& s) {
    int r = sd_bus_message_enter_container(m, 'r', inner(kMount).c_str());
    if (r <= 0) return r;
    std::string kind;
    TRY_BUS(read_string(m, kind));
    s.kind = kind == "overlay" ? store::MountSpec::Kind::Overlay
             : kind == "block" ? store::MountSpec::Kind::Block
                               : store::MountSpec::Kind::Bind;
    TRY_BUS(read_string(m, s.source));
    TRY_BUS(read_strv(m, s.lowerdirs));
    TRY_BUS(read_string(m, s.upperdir));
    TRY_BUS(read_string(m, s.workdir));
    TRY_BUS(read_string(m, s.fstype));
    TRY_BUS(read_string(m, s.options));
    int ro = 0;
    TRY_BUS(sd_bus_message_read(m, "b", &ro));
    s.read_only = ro;
    TRY_BUS(sd_bus_message_exit_container(m));
    return 1;
}

int append_pool(sd_bus_message* m, const PoolStatus& p) {
    return sd_bus_message_append(m, kPool, p.backend.c_str(), p.root.c_str(), p.pool_path.c_str(), p.used,
                                 p.size, p.metadata_used, p.metadata_size);
}

int read_pool(sd_bus_message* m, PoolStatus& p) {
    const char *backend, *root, *pool;
    int r = sd_bus_message_read(m, kPool, &backend, &root, &pool, &p.used, &p.size, &p.metadata_used,
                                &p.metadata_size);
    if (r <= 0) return r;
    p.backend = backend, p.root = root, p.pool_path = pool;
    return 1;
}

int append_image_change(sd_bus_message* m, const store::ImageChange& c) {
    return sd_bus_message_append(m, kImageChange, static_cast<int>(c.changed), static_cast<int>(c.recreated),
                                 c.old_image_id.c_str(), c.new_image_id.c_str(), c.retained_snapshot.c_str());
}

int read_image_change(sd_bus_message* m, store::ImageChange& c) {
    int changed = 0, recreated = 0;
    const char *old_id, *new_id, *retained;
    int r = sd_bus_message_read(m, kImageChange, &changed, &recreated, &old_id, &new_id, &retained);
    if (r <= 0) return r;
    c.changed = changed, c.recreated = recreated;
    c.old_image_id = old_id, c.new_image_id = new_id, c.retained_snapshot = retained;
    return 1;
}

int append_gc_report(sd_bus_message* m, const GcReport& g) {
    int r = append_strv(m, g.removed);
    if (r >= 0) r = sd_bus_message_append(m, "t", g.bytes_freed);
    if (r >= 0) r = sd_bus_message_open_container(m, 'a', "{st}");
    for (const auto& [what, bytes] : g.sizes)
        if (r >= 0) r = sd_bus_message_append(m, "{st}", what.c_str(), bytes);
    return r < 0 ? r : sd_bus_message_close_container(m);
}

int read_gc_report(sd_bus_message* m, GcReport& g) {
    int r = read_strv(m, g.removed);
    if (r >= 0) r = sd_bus_message_read(m, "t", &g.bytes_freed);
    if (r >= 0) r = sd_bus_message_enter_container(m, 'a', "{st}");
    while (r > 0) {
        const char* what = nullptr;
        uint64_t bytes = 0;
        if ((r = sd_bus_message_read(m, "{st}", &what, &bytes)) > 0) g.sizes[what] = bytes;
    }
    return r < 0 ? r : sd_bus_message_exit_container(m);
}

int append_filesystem(sd_bus_message* m, const DiskUsage& u) {
    return sd_bus_message_append(m, kFilesystem, u.fs_type.c_str(), u.fs_source.c_str(), u.fs_mount.c_str(),
                                 u.store_used);
}

int read_filesystem(sd_bus_message* m, DiskUsage& u) {
    const char *type, *source, *mount;
    int r = sd_bus_message_read(m, kFilesystem, &type, &source, &mount, &u.store_used);
    if (r <= 0) return r;
    u.fs_type = type, u.fs_source = source, u.fs_mount = mount;
    return 1;
}

}  // namespace berth::bus::wire
