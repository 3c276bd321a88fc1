#include "runtime/root-assembly.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <vector>

#include "basic/fs-util.h"
#include "basic/string-util.h"
#include "runtime/spawn.h"

namespace berth::runtime {

namespace {

// Names the file system behind a failed idmap: the usual cause is one that cannot be idmapped.
std::string fs_hint(int fd) {
    struct statfs sfs {};
    if (::fstatfs(fd, &sfs) < 0) return "";
    return fmt::format(" (file system type 0x{:x}; idmapped mounts need a file system that supports them)",
                       static_cast<unsigned long>(sfs.f_type));
}

Result<> setattr(int tree, const std::string& path, uint64_t attr, int userns_fd) {
    struct mount_attr ma {};
    ma.attr_set = attr;
    if (userns_fd >= 0) ma.userns_fd = static_cast<uint64_t>(userns_fd);
    if (::syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &ma, sizeof ma) < 0) {
        int e = errno;
        return fail(e, "{} '{}'{}", attr & MOUNT_ATTR_IDMAP ? "idmap" : "set mount attributes on", path,
                    e == EINVAL && (attr & MOUNT_ATTR_IDMAP) ? fs_hint(tree) : "");
    }
    return {};
}

Result<UniqueFd> open_in(int dirfd, const std::string& name, const std::string& shown) {
    UniqueFd fd(::openat(dirfd, name.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd) return fail_errno("open '{}'", shown);
    return fd;
}

// A namespace for the writable layer's idmapped mount (user-namespace.h, kLayerBookkeepingId):
// a helper process is cloned into a new user namespace, its maps are written, the namespace is
// kept as an fd, and the helper is killed and reaped at once (ChildProcess). It only waits on a
// pipe, whose other end goes with us if we die first.
Result<UniqueFd> writable_layer_namespace(const IdRange& range) {
    std::string map = BERTH_TRY(writable_layer_id_map(range));
    int p[2];
    if (::pipe2(p, O_CLOEXEC) < 0) return fail_errno("pipe");
    UniqueFd wait_end(p[0]), hold_end(p[1]);
    bool in_child = false;
    ChildProcess helper = BERTH_TRY_CTX(clone_child(CLONE_NEWUSER, -1, &in_child), "clone");
    if (in_child) {
        // Async-signal-safe only: a copy of the supervisor's memory, single-threaded.
        ::close(p[1]);
        char c;
        while (::read(p[0], &c, 1) < 0 && errno == EINTR) {
        }
        ::_exit(0);
    }
    wait_end.reset();
    BERTH_TRY_VOID(write_id_maps(helper.pid(), map));
    return open_user_namespace(helper.pid());
}

// The writable layer as one idmapped mount and the upper and work directories in it.
struct WritableLayer {
    UniqueFd mount, upper, work;
};

Result<WritableLayer> writable_layer(const RootPlan& root, int layer_ns) {
    WritableLayer w;
    std::string shown;
    if (root.upper_on_stage) {
        // Ephemeral: a tmpfs of its own, gone with the container's root.
        shown = "ephemeral writable layer";
        UniqueFd fs(static_cast<int>(::syscall(SYS_fsopen, "tmpfs", FSOPEN_CLOEXEC)));
        if (!fs) return fail_errno("fsopen tmpfs");
        if (::syscall(SYS_fsconfig, fs.get(), FSCONFIG_SET_STRING, "mode", "0755", 0) < 0 ||
            ::syscall(SYS_fsconfig, fs.get(), FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) < 0)
            return fail_errno("create the {}", shown);
        w.mount.reset(static_cast<int>(::syscall(SYS_fsmount, fs.get(), FSMOUNT_CLOEXEC, MOUNT_ATTR_NODEV)));
        if (!w.mount) return fail_errno("mount the {}", shown);
        for (const char* d : {"upper", "work"})
            if (::mkdirat(w.mount.get(), d, 0755) < 0) return fail_errno("mkdir '{}' in the {}", d, shown);
        BERTH_TRY_VOID(setattr(w.mount.get(), shown, MOUNT_ATTR_IDMAP, layer_ns));
        w.upper = BERTH_TRY(open_in(w.mount.get(), "upper", shown + "/upper"));
        w.work = BERTH_TRY(open_in(w.mount.get(), "work", shown + "/work"));
        return w;
    }
    shown = root.layer_dir;
    w.mount.reset(static_cast<int>(
        ::syscall(SYS_open_tree, AT_FDCWD, shown.c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC)));
    if (!w.mount) return fail_errno("open_tree '{}'", shown);
    BERTH_TRY_VOID(setattr(w.mount.get(), shown, MOUNT_ATTR_IDMAP, layer_ns));
    w.upper = BERTH_TRY(open_in(w.mount.get(), root.upper_name, path_join(shown, root.upper_name)));
    w.work = BERTH_TRY(open_in(w.mount.get(), root.work_name, path_join(shown, root.work_name)));
    return w;
}

Result<> set_fd(int fs, const char* key, int fd, const std::string& shown) {
    if (::syscall(SYS_fsconfig, fs, FSCONFIG_SET_FD, key, nullptr, fd) < 0) {
        int e = errno;
        return fail(e, "overlay {} '{}'{}", key, shown,
                    e == EINVAL || e == EBADF ? " (layers by file descriptor need Linux 6.15 or later)" : "");
    }
    return {};
}

// "key=value,flag" options of the store's MountSpec, one fsconfig call each.
Result<> set_options(int fs, const std::string& options) {
    for (const auto& o : split(options, ',')) {
        auto eq = o.find('=');
        long rc = eq == std::string::npos
                      ? ::syscall(SYS_fsconfig, fs, FSCONFIG_SET_FLAG, o.c_str(), nullptr, 0)
                      : ::syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, o.substr(0, eq).c_str(),
                                  o.substr(eq + 1).c_str(), 0);
        if (rc < 0) return fail_errno("overlay option '{}'", o);
    }
    return {};
}

Result<UniqueFd> assemble_overlay(const RootPlan& root, int userns, int layer_ns) {
    // Every lower layer, idmapped through the container's namespace, held until the overlay has
    // taken its own private copies (fsconfig CMD_CREATE).
    std::vector<UniqueFd> lowers;
    for (const auto& l : root.spec.lowerdirs) {
        UniqueFd tree(static_cast<int>(
            ::syscall(SYS_open_tree, AT_FDCWD, l.c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC)));
        if (!tree) return fail_errno("open_tree '{}'", l);
        BERTH_TRY_VOID(setattr(tree.get(), l, MOUNT_ATTR_IDMAP, userns));
        lowers.push_back(std::move(tree));
    }
    WritableLayer w = BERTH_TRY(writable_layer(root, layer_ns));
    UniqueFd fs(static_cast<int>(::syscall(SYS_fsopen, "overlay", FSOPEN_CLOEXEC)));
    if (!fs) return fail_errno("fsopen overlay");
    for (size_t i = 0; i < lowers.size(); ++i)
        BERTH_TRY_VOID(set_fd(fs.get(), "lowerdir+", lowers[i].get(), root.spec.lowerdirs[i]));
    const std::string upper =
        root.upper_on_stage ? "ephemeral upper" : path_join(root.layer_dir, root.upper_name);
    const std::string work =
        root.upper_on_stage ? "ephemeral work" : path_join(root.layer_dir, root.work_name);
    BERTH_TRY_VOID(set_fd(fs.get(), "upperdir", w.upper.get(), upper));
    BERTH_TRY_VOID(set_fd(fs.get(), "workdir", w.work.get(), work));
    BERTH_TRY_VOID(set_options(fs.get(), root.spec.options));
    if (::syscall(SYS_fsconfig, fs.get(), FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) < 0)
        return fail_errno("mount overlay root '{}'", root.spec.lowerdirs[0]);
    UniqueFd m(static_cast<int>(::syscall(SYS_fsmount, fs.get(), FSMOUNT_CLOEXEC,
                                          static_cast<unsigned>(mount_attributes(root.flags)))));
    if (!m) return fail_errno("mount overlay root '{}'", root.spec.lowerdirs[0]);
    return m;
}

}  // namespace

Result<UniqueFd> open_user_namespace(pid_t pid) {
    UniqueFd ns(::open(fmt::format("/proc/{}/ns/user", pid).c_str(), O_RDONLY | O_CLOEXEC));
    if (!ns) return fail_errno("open user namespace of {}", pid);
    return ns;
}

Result<UniqueFd> open_detached_tree(const std::string& path) {
    UniqueFd tree(static_cast<int>(::syscall(SYS_open_tree, AT_FDCWD, path.c_str(),
                                             OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE)));
    if (!tree) return fail_errno("open_tree '{}'", path);
    return tree;
}

Result<> idmap_tree(int tree, const std::string& path, int userns_fd) {
    return setattr(tree, path, MOUNT_ATTR_IDMAP, userns_fd);
}

Result<UniqueFd> assemble_root(const RootPlan& root, pid_t pid, const IdRange& range) {
    UniqueFd userns = BERTH_TRY(open_user_namespace(pid));
    if (root.spec.kind == store::MountSpec::Kind::Bind) {
        // The whole tree (a btrfs snapshot with its nested subvolumes, a directory) as it is on
        // disk, written with the container's ids; nodev etc. on all of it, as the child's bind does.
        UniqueFd tree = BERTH_TRY(open_detached_tree(root.spec.source));
        BERTH_TRY_VOID(idmap_tree(tree.get(), root.spec.source, userns.get()));
        if (uint64_t attr = mount_attributes(root.flags))
            BERTH_TRY_VOID(setattr(tree.get(), root.spec.source, attr, -1));
        return tree;
    }
    if (root.spec.kind != store::MountSpec::Kind::Overlay || root.spec.lowerdirs.empty())
        return fail(EOPNOTSUPP, "this root file system cannot be mounted for a user namespace");
    UniqueFd layer_ns = BERTH_TRY_CTX(writable_layer_namespace(range), "writable layer's user namespace");
    return assemble_overlay(root, userns.get(), layer_ns.get());
}

}  // namespace berth::runtime
