// Stage 1 of `berth run` (container.cpp): the container's root file system, before the start
// (nspawn's "image" step). Either the declared directory (rootfs = ...) as the lower layer of an
// overlay with a writable layer of the container's own (kept between runs unless ephemeral), or
// an image snapshot from the store (bus/storage-client.h). What the host keeps for the child to
// mount, as a MountSpec; the mounting itself happens in the child (child.cpp).
//
// ContainerRoot owns what it made: a start that fails removes the writable layer it created and
// releases the snapshot; the snapshot is released in every case when the owner goes away (a
// handed-over run releases it in the teardown instead, runtime/handover.h).
#pragma once

#include <optional>
#include <string>

#include "basic/result.h"
#include "bus/storage-client.h"
#include "config/declaration.h"

namespace berth::runtime {

class ContainerRoot {
public:
    // `storage` (an image's snapshot) outlives this object: the snapshot is released through it.
    ContainerRoot(const config::Declaration& decl, bus::StorageSession& storage)
        : decl_(decl), storage_(storage) {}
    ContainerRoot(const ContainerRoot&) = delete;
    ContainerRoot& operator=(const ContainerRoot&) = delete;
    ~ContainerRoot();

    // Makes the root ready to mount: checks the directory and prepares the writable layer, or
    // asks the store for the snapshot.
    Result<> prepare();

    const store::MountSpec& spec() const { return spec_; }
    bool upper_on_stage() const { return upper_on_stage_; }  // ephemeral: the upper layer is a tmpfs
    const store::ImageConfig& image() const { return image_; }
    bool has_snapshot() const { return snapshot_.has_value(); }
    // The image id the snapshot was made from, where the store said ("" otherwise).
    std::string image_id() const { return snapshot_ ? snapshot_->image_id : std::string(); }
    // "image changed: ..." when the store recreated or kept the layer of a changed image, else "".
    std::string image_change_message() const {
        return snapshot_ ? bus::describe_image_change(decl_, snapshot_->image_change) : std::string();
    }
    // This run made the writable layer (so the container's root may own it).
    bool created_layer() const { return !created_layer_dir_.empty(); }

    // Removes overlayfs' old scratch directory (moved aside by prepare()): called while the
    // child mounts, so that the I/O wait overlaps its work.
    void remove_stale_scratch();
    // The payload runs: a new writable layer loses its "fresh" mark (a start that dies before
    // this leaves a marked layer, which the next start removes).
    void payload_started();
    // The payload ran: its writable layer is its data from now on.
    void keep_layer() { created_layer_dir_.clear(); }
    // In a rootfs container's layer directory (beside upper/ and work/) until its payload runs.
    static constexpr const char* kFreshMarker = "starting";

private:
    const config::Declaration& decl_;
    bus::StorageSession& storage_;
    store::MountSpec spec_;
    bool upper_on_stage_ = false;
    store::ImageConfig image_;
    std::optional<bus::PreparedSnapshot> snapshot_;
    std::string created_layer_dir_;
    // The store made the container's persistent snapshot for this start (it had none): until the
    // payload runs, a failed start removes it rather than keeping an empty layer forever.
    bool created_snapshot_ = false;
    std::string fresh_marker_;   // the "starting" mark of a layer this start made
    std::string stale_scratch_;  // overlayfs' old scratch directory, removed during the start
};

}  // namespace berth::runtime
