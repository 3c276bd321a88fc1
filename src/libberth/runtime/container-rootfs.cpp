#include "runtime/container-rootfs.h"

#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include <algorithm>

#include "basic/fs-private.h"
#include "basic/fs-util.h"
#include "basic/string-util.h"
#include "runtime/paths.h"

namespace berth::runtime {

ContainerRoot::~ContainerRoot() {
    remove_stale_scratch();
    if (!created_layer_dir_.empty()) (void)remove_tree(created_layer_dir_);
    if (!snapshot_) return;
    auto released = bus::release_container_snapshot(storage_, decl_);
    // A first start that failed before its payload ran (issue #15 item 2): no data to keep, and a
    // kept layer would block `berth image rm` until someone ran `berth rm`.
    if (created_snapshot_ && released)
        if (auto storage = storage_.get()) (void)(*storage)->remove_container(decl_.name);
}

void ContainerRoot::payload_started() {
    created_snapshot_ = false;
    if (!fresh_marker_.empty()) ::unlink(fresh_marker_.c_str());
    fresh_marker_.clear();
}

void ContainerRoot::remove_stale_scratch() {
    if (stale_scratch_.empty()) return;
    (void)remove_tree(stale_scratch_);
    stale_scratch_.clear();
}

Result<> ContainerRoot::prepare() {
    if (!decl_.rootfs.empty()) {
        if (!is_directory(decl_.rootfs))
            return fail(ENOENT, "root file system '{}' does not exist", decl_.rootfs);
        spec_.kind = store::MountSpec::Kind::Overlay;
        spec_.lowerdirs = {decl_.rootfs};
        if (decl_.ephemeral) {
            upper_on_stage_ = true;
            return {};
        }
        // The writable layer holds whatever the payload made, setuid-root binaries included:
        // the directories above it are root's alone (0700, as tmpfiles makes /var/lib/berth),
        // also when `berth run` is the first to create them.
        const std::string layers = path_join(state_dir(), "rootfs-layers");
        BERTH_TRY_VOID_CTX(make_private_directory(state_dir()), "state directory");
        BERTH_TRY_VOID_CTX(make_private_directory(layers), "writable layer");
        std::string layer = path_join(layers, decl_.name);
        spec_.upperdir = path_join(layer, "upper");
        spec_.workdir = path_join(layer, "work");
        // A layer whose payload never ran is this start's to make again: it is marked until the
        // payload runs (payload_started), so a start killed half-way (SIGKILL, a crash, power)
        // leaves nothing that the next start takes for the container's data.
        fresh_marker_ = path_join(layer, kFreshMarker);
        if (path_exists(layer) && (path_exists(fresh_marker_) || !path_exists(spec_.upperdir)))
            BERTH_TRY_VOID_CTX(remove_tree(layer), "stale writable layer of a start that never ran");
        if (!path_exists(layer)) {
            created_layer_dir_ = layer;
            BERTH_TRY_VOID_CTX(mkdir_p(layer, 0755), "writable layer");
            BERTH_TRY_VOID_CTX(write_file(fresh_marker_, "", O_CREAT | O_EXCL, 0600), "writable layer");
        } else {
            fresh_marker_.clear();
        }
        BERTH_TRY_VOID_CTX(mkdir_p(spec_.upperdir, 0755), "writable layer");
        BERTH_TRY_VOID_CTX(mkdir_p(spec_.workdir, 0700), "writable layer");
        // overlayfs empties <workdir>/work (its scratch directory) at every mount: an rmdir on
        // the host file system, which on one mounted `discard` waits for the device (2-5 ms
        // here, in the middle of the start). Move it aside now, a rename, and remove it while
        // the child builds the root (remove_stale_scratch, after Go). One supervisor per name
        // holds the lock, so the fixed name cannot race; a leftover from a run that died goes
        // first.
        const std::string scratch = path_join(spec_.workdir, "work");
        stale_scratch_ = path_join(layer, "work.old");
        if (path_exists(stale_scratch_)) (void)remove_tree(stale_scratch_);
        if (::rename(scratch.c_str(), stale_scratch_.c_str()) < 0) stale_scratch_.clear();
        return {};
    }
    if (!decl_.image.empty()) {
        if (!decl_.ephemeral) {
            // Whether this start makes the container's layer (a cheap in-memory listing).
            bus::Storage* storage = BERTH_TRY_CTX(storage_.get(), fmt::format("image '{}'", decl_.image));
            if (auto known = storage->list_containers())
                created_snapshot_ = std::none_of(known->begin(), known->end(),
                                                 [&](const auto& c) { return c.name == decl_.name; });
        }
        snapshot_ = BERTH_TRY(bus::prepare_container_snapshot(storage_, decl_));
        spec_ = snapshot_->rootfs;
        image_ = snapshot_->config;
        return {};
    }
    return fail(EINVAL, "neither 'rootfs' nor 'image' is set");
}

}  // namespace berth::runtime
