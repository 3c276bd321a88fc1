#include "runtime/mount-plan.h"

#include <sys/mount.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <memory>

#include "basic/fs-util.h"
#include "basic/string-util.h"
#include "config/values.h"
#include "runtime/devices.h"

namespace berth::runtime {

// Docker's lists (moby oci/defaults.go, as `docker inspect` shows them in HostConfig.MaskedPaths
// and ReadonlyPaths), kept in config/ so that [security] unmask can be checked against them.
const std::vector<std::string>& masked_paths() { return config::default_masked_paths(); }

const std::vector<std::string>& read_only_paths() { return config::default_read_only_paths(); }

Result<std::string> resolve_timezone(const std::string& timezone) {
    if (timezone.empty()) return std::string();
    if (!config::is_valid_timezone(timezone))
        return fail(EINVAL, "timezone {} is not a time zone name", quote(timezone));
    const std::string zoneinfo(config::kZoneinfoDir);
    std::string path = timezone == "host" ? std::string("/etc/localtime") : path_join(zoneinfo, timezone);
    std::unique_ptr<char, decltype(&::free)> real(::realpath(path.c_str(), nullptr), &::free);
    if (!real) return fail_errno("time zone {}: '{}'", quote(timezone), path);
    struct stat st {};
    if (::stat(real.get(), &st) < 0) return fail_errno("time zone {}: '{}'", quote(timezone), real.get());
    if (!S_ISREG(st.st_mode))
        return fail(EINVAL, "time zone {}: '{}' is not a file", quote(timezone), real.get());
    // A name is looked up in the zone database only; the host's own choice may be anywhere.
    std::unique_ptr<char, decltype(&::free)> base(::realpath(zoneinfo.c_str(), nullptr), &::free);
    if (timezone != "host" &&
        (!base || std::string_view(real.get()).rfind(std::string(base.get()) + "/", 0) != 0))
        return fail(EINVAL, "time zone {}: '{}' leads out of {}", quote(timezone), path, zoneinfo);
    return std::string(real.get());
}

std::optional<bool> probe_host_path(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) < 0) return std::nullopt;
    return S_ISDIR(st.st_mode);
}

namespace {

// overlayfs separates options with ',' and layers with ':'; such paths cannot be expressed.
Result<> check_overlay_path(const std::string& p) {
    if (p.find_first_of(",:") != std::string::npos)
        return fail(EINVAL, "overlay layer path '{}' contains ',' or ':'", p);
    return {};
}

MountOp make_op(MountOp::Kind kind, std::string source, std::string target) {
    MountOp op;
    op.kind = kind;
    op.source = std::move(source);
    op.target = std::move(target);
    return op;
}

MountOp fs(std::string fstype, std::string source, std::string target, unsigned long flags, std::string data,
           bool optional = false) {
    MountOp op = make_op(MountOp::Kind::Mount, std::move(source), std::move(target));
    op.fstype = std::move(fstype);
    op.flags = flags;
    op.data = std::move(data);
    op.optional = optional;
    return op;
}

MountOp bind_host(std::string source, std::string target, bool is_dir, bool read_only, bool recursive,
                  bool optional = false) {
    MountOp op = make_op(MountOp::Kind::BindHost, std::move(source), std::move(target));
    op.target_is_dir = is_dir;
    op.read_only = read_only;
    op.recursive = recursive;
    op.optional = optional;
    return op;
}

MountOp stage_file(std::string path, std::string target, std::string content, bool read_only) {
    MountOp op = make_op(MountOp::Kind::StageFile, std::move(path), std::move(target));
    op.data = std::move(content);
    op.target_is_dir = false;
    op.read_only = read_only;
    return op;
}

MountOp symlink(std::string to, std::string path) {
    return make_op(MountOp::Kind::Symlink, std::move(to), std::move(path));
}

}  // namespace

Result<MountPlan> plan_mounts(const MountInputs& in) {
    const config::Declaration& decl = *in.decl;
    MountPlan plan;
    auto probe = in.probe ? in.probe : probe_host_path;

    // --- root file system ---
    plan.root.spec = in.root;
    plan.root.upper_on_stage = in.upper_on_stage;
    plan.root.read_only = decl.read_only || in.root.read_only;
    // A device node in an image (or one made later in a persistent writable layer) must not open:
    // the image is untrusted, and cgroup v2 has no device list here to stop it. /dev is a
    // separate tmpfs below.
    plan.root.flags = MS_NODEV;
    if (in.root.kind == store::MountSpec::Kind::Overlay) {
        if (in.root.lowerdirs.empty()) return fail(EINVAL, "overlay root without lower layers");
        for (const auto& l : in.root.lowerdirs) {
            BERTH_TRY_VOID(check_overlay_path(l));
            if (probe(l) != true) return fail(ENOENT, "root file system layer '{}' is not a directory", l);
        }
        std::string upper = in.upper_on_stage ? path_join(in.stage_dir, "upper") : in.root.upperdir;
        std::string work = in.upper_on_stage ? path_join(in.stage_dir, "work") : in.root.workdir;
        BERTH_TRY_VOID(check_overlay_path(upper));
        BERTH_TRY_VOID(check_overlay_path(work));
        std::string tail = fmt::format(",upperdir={},workdir={}", upper, work);
        if (!in.root.options.empty()) tail += "," + in.root.options;
        plan.root.overlay_options = "lowerdir=" + join(in.root.lowerdirs, ":") + tail;
        if (in.user_namespace) {
            plan.root.assembled = true;
            if (!in.upper_on_stage) {
                // One idmapped mount of the layer directory carries both (overlayfs: same mount).
                auto [dir, upper_name] = split_parent(in.root.upperdir);
                auto [work_dir, work_name] = split_parent(in.root.workdir);
                if (dir.empty() || dir != work_dir || upper_name.empty() || work_name.empty())
                    return fail(EINVAL,
                                "writable layer: upperdir '{}' and workdir '{}' must be siblings for a "
                                "user namespace",
                                in.root.upperdir, in.root.workdir);
                plan.root.layer_dir = dir;
                plan.root.upper_name = upper_name;
                plan.root.work_name = work_name;
            }
        }
    } else if (in.root.kind == store::MountSpec::Kind::Bind) {
        if (probe(in.root.source) != true)
            return fail(ENOENT, "root file system '{}' is not a directory", in.root.source);
        plan.root.assembled = in.user_namespace;
    } else {
        if (in.user_namespace)
            return fail(EOPNOTSUPP,
                        "a block-device root file system cannot be mounted inside a user namespace");
        if (!probe(in.root.source)) return fail(ENOENT, "root device '{}' does not exist", in.root.source);
    }

    auto& ops = plan.ops;
    std::vector<MountOp> cdi_mounts;  // after /sys, see below
    const unsigned long nosuid_nodev_noexec = MS_NOSUID | MS_NODEV | MS_NOEXEC;

    // --- /proc ---
    ops.push_back(fs("proc", "proc", "/proc", nosuid_nodev_noexec, ""));

    // --- /dev: a tmpfs with the safe nodes bound from the host (mknod is impossible in a user
    // namespace, and binding is the same everywhere). The tmpfs itself is nodev: every node that
    // works here is a bind mount of the host's node (which keeps the host /dev's flags), so a
    // node made with mknod (capabilities_add = ["MKNOD"]) in /dev does not open either ---
    ops.push_back(
        fs("tmpfs", "tmpfs", "/dev", MS_NOSUID | MS_NODEV | MS_STRICTATIME, "mode=755,size=65536k"));
    for (const char* node : {"null", "zero", "full", "random", "urandom", "tty"}) {
        std::string p = std::string("/dev/") + node;
        ops.push_back(bind_host(p, p, false, false, false));
    }
    ops.push_back(fs("devpts", "devpts", "/dev/pts", MS_NOSUID | MS_NOEXEC,
                     in.user_namespace ? "newinstance,ptmxmode=0666,mode=0620"
                                       : "newinstance,ptmxmode=0666,mode=0620,gid=5"));
    ops.push_back(symlink("pts/ptmx", "/dev/ptmx"));
    ops.push_back(
        fs("tmpfs", "shm", "/dev/shm", nosuid_nodev_noexec,
           decl.shm_size ? fmt::format("mode=1777,size={}", *decl.shm_size) : "mode=1777,size=65536k"));
    ops.push_back(fs("mqueue", "mqueue", "/dev/mqueue", nosuid_nodev_noexec, "", true));
    ops.push_back(symlink("/proc/self/fd", "/dev/fd"));
    ops.push_back(symlink("/proc/self/fd/0", "/dev/stdin"));
    ops.push_back(symlink("/proc/self/fd/1", "/dev/stdout"));
    ops.push_back(symlink("/proc/self/fd/2", "/dev/stderr"));
    ops.push_back(symlink("/proc/kcore", "/dev/core"));
    // /dev/console: the pty when there is one (bound later by the child), else /dev/null.
    ops.push_back(bind_host("/dev/null", "/dev/console", false, false, false));
    for (const auto& text : decl.security.devices) {
        std::string why;
        auto entry = config::parse_device_entry(text, &why);
        if (!entry) return fail(EINVAL, "security.devices: {} {}", quote(text), why);
        if (entry->cdi) continue;  // in in.devices
        const std::string& dev = entry->path;
        auto kind = probe(dev);
        if (!kind) return fail(ENOENT, "device '{}' does not exist", dev);
        if (*kind) return fail(EINVAL, "device '{}' is a directory", dev);
        ops.push_back(bind_host(dev, dev, false, false, false));
    }
    if (in.devices) {
        for (const auto& n : in.devices->nodes)
            ops.push_back(bind_host(n.host_path, n.container_path, false, false, false));
        // The vendor's driver files: bound as the spec says ("ro", "rbind"), after /sys so that a
        // driver path under it is not covered.
        for (const auto& m : in.devices->mounts) {
            auto kind = probe(m.host_path);
            if (!kind) return fail(ENOENT, "CDI mount: '{}' does not exist", m.host_path);
            auto has = [&](std::string_view o) {
                return std::find(m.options.begin(), m.options.end(), o) != m.options.end();
            };
            cdi_mounts.push_back(bind_host(m.host_path, normalize_absolute_path(m.container_path), *kind,
                                           has("ro"), has("rbind")));
            cdi_mounts.back().nodev = true;
        }
    }

    // --- /sys, read-only. A fresh sysfs needs a network namespace we own (or real root). ---
    if (!in.user_namespace || in.new_network_namespace) {
        ops.push_back(fs("sysfs", "sysfs", "/sys", nosuid_nodev_noexec | MS_RDONLY, ""));
    } else {
        ops.push_back(bind_host("/sys", "/sys", true, true, true));
    }
    ops.push_back(fs("cgroup2", "cgroup2", "/sys/fs/cgroup", nosuid_nodev_noexec | MS_RDONLY, "", true));
    ops.insert(ops.end(), cdi_mounts.begin(), cdi_mounts.end());

    // --- a read-only root still gets scratch space where programs expect to write (Podman's
    // --read-only-tmpfs); before the generated files and the notify socket, which live in /run ---
    if (decl.read_only && decl.read_only_tmpfs.value_or(true)) {
        for (auto [dir, mode] :
             {std::pair{"/tmp", "1777"}, std::pair{"/var/tmp", "1777"}, std::pair{"/run", "0755"}})
            ops.push_back(fs("tmpfs", "tmpfs", dir, MS_NOSUID | MS_NODEV, fmt::format("mode={}", mode)));
    }

    // --- generated files ---
    ops.push_back(stage_file(path_join(in.stage_dir, "hostname"), "/etc/hostname", in.hostname_file, false));
    ops.push_back(stage_file(path_join(in.stage_dir, "hosts"), "/etc/hosts", in.hosts_file, false));
    ops.push_back(
        stage_file(path_join(in.stage_dir, "resolv.conf"), "/etc/resolv.conf", in.resolv_conf, false));
    if (!in.notify_socket_host.empty())
        ops.push_back(bind_host(in.notify_socket_host, kNotifySocketInContainer, false, false, false));
    if (!in.timezone_file.empty())
        ops.push_back(bind_host(in.timezone_file, "/etc/localtime", false, true, false));

    // --- declared mounts ---
    for (const auto& m : decl.mounts) {
        std::string target = normalize_absolute_path(m.target);
        if (target.empty() || target == "/")
            return fail(EINVAL, "mount target '{}' must be an absolute path other than /", m.target);
        switch (m.type) {
            case config::MountType::Bind: {
                auto kind = probe(m.source);
                if (!kind) return fail(ENOENT, "bind source '{}' does not exist", m.source);
                ops.push_back(bind_host(m.source, target, *kind, m.read_only, true));
                break;
            }
            case config::MountType::Tmpfs: {
                std::string data = fmt::format("mode={:o}", m.mode.value_or(01777));
                if (m.size) data += fmt::format(",size={}", *m.size);
                ops.push_back(
                    fs("tmpfs", "tmpfs", target, MS_NOSUID | MS_NODEV | (m.read_only ? MS_RDONLY : 0), data));
                break;
            }
            case config::MountType::Volume: {
                auto it = in.volumes.find(m.source);
                if (it == in.volumes.end())
                    return fail(ENOENT, "volume '{}' was not prepared by the store", m.source);
                const store::MountSpec& v = it->second;
                bool read_only = m.read_only || v.read_only;
                switch (v.kind) {
                    case store::MountSpec::Kind::Bind:
                        if (probe(v.source) != true)
                            return fail(ENOENT, "volume '{}': '{}' is not a directory", m.source, v.source);
                        ops.push_back(bind_host(v.source, target, true, read_only, true));
                        ops.back().detached = true;
                        // Container data, like a block volume's (MS_NODEV above): a node that
                        // one container made there does not open in the next.
                        ops.back().nodev = true;
                        ops.back().take_owner = in.new_volumes.count(m.source) > 0;
                        break;
                    case store::MountSpec::Kind::Block:
                        // Only real root may mount a block device's file system.
                        if (in.user_namespace)
                            return fail(EOPNOTSUPP,
                                        "volume '{}': a block-device volume cannot be mounted inside a user "
                                        "namespace",
                                        m.source);
                        if (!probe(v.source))
                            return fail(ENOENT, "volume '{}': device '{}' does not exist", m.source,
                                        v.source);
                        // The kernel shares one superblock per device, so other containers may
                        // mount it at once; a read-only superblock request would fail (EBUSY) while
                        // it is mounted writable elsewhere, so read_only is per mount, afterwards.
                        ops.push_back(fs(v.fstype, v.source, target, MS_NOSUID | MS_NODEV, v.options));
                        if (read_only) {
                            MountOp ro;
                            ro.kind = MountOp::Kind::ReadOnly;
                            ro.target = target;
                            ops.push_back(ro);
                        }
                        break;
                    case store::MountSpec::Kind::Overlay:
                        return fail(EOPNOTSUPP, "volume '{}': an overlay volume is not supported", m.source);
                }
                break;
            }
        }
    }

    // --- secrets: a private tmpfs (not the writable layer), after the declared mounts so a
    // tmpfs on /run cannot cover it ---
    if (in.secrets && !in.secrets->empty()) {
        const std::string dir(config::kSecretsDir);
        uint64_t bytes = 0;
        for (const auto& secret : *in.secrets) bytes += secret.value.size() + 4096;
        ops.push_back(
            fs("tmpfs", "tmpfs", dir, nosuid_nodev_noexec,
               fmt::format("mode=0755,size={},nr_inodes={}", bytes + 65536, in.secrets->size() + 16)));
        for (const auto& [secret, value] : *in.secrets) {
            MountOp op;
            op.kind = MountOp::Kind::Secret;
            op.source = path_join(dir, secret.name);
            op.target = normalize_absolute_path(secret.target);
            op.data = value;
            op.target_is_dir = false;
            op.read_only = true;
            op.file_mode = secret.mode;
            if (secret.uid) op.owner_uid = *secret.uid;
            if (secret.gid) op.owner_gid = *secret.gid;
            ops.push_back(std::move(op));
        }
    }

    // --- Docker's masked and read-only paths, less those unmasked, and the declaration's own
    // masked paths; last so no later mount can uncover them ---
    const auto& unmask = decl.security.unmask;
    auto unmasked = [&](const std::string& p) {
        return std::find(unmask.begin(), unmask.end(), "ALL") != unmask.end() ||
               std::find(unmask.begin(), unmask.end(), p) != unmask.end();
    };
    for (auto [kind, paths] : {std::pair{MountOp::Kind::Mask, &masked_paths()},
                               std::pair{MountOp::Kind::ReadOnly, &read_only_paths()},
                               std::pair{MountOp::Kind::Mask, &decl.security.mask}}) {
        for (const auto& p : *paths) {
            if (paths != &decl.security.mask && unmasked(p)) continue;
            ops.push_back(make_op(kind, "", p));
            ops.back().optional = true;
        }
    }
    return plan;
}

}  // namespace berth::runtime
