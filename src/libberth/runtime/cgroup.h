// cgroup v2 for one container.
//
// Under systemd (Delegate=yes) the unit's cgroup is ours: like systemd-nspawn, the runtime moves
// itself into <unit>/supervisor and starts the payload in <unit>/payload (a cgroup with processes
// cannot have children with controllers, so the split is required). systemd applies the unit's
// limits on <unit>. By hand, the runtime creates <parent>/<NAME> on the cgroup2 mount and writes
// [resources] itself where the controllers exist; which settings could not be applied is reported
// (once, by the caller) rather than silently dropped.
//
// The payload is born in its cgroup (clone3 CLONE_INTO_CGROUP) with a cgroup namespace rooted
// there. Controller writes are planned by a pure function so the mapping is unit-tested.
#pragma once

#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "basic/cgroup-util.h"  // cgroup2_mount_point()
#include "basic/result.h"
#include "basic/unique.h"
#include "config/declaration.h"

namespace berth::runtime {

struct CgroupWrites {
    std::vector<std::pair<std::string, std::string>> files;  // file name -> value
    std::set<std::string> controllers;                       // controllers the writes need
    std::vector<std::string> unapplied;                      // settings whose controller is missing
    std::set<std::string> missing_controllers;
};

// [resources] -> cgroup files, given the controllers available to the container's cgroup.
CgroupWrites plan_cgroup_writes(const config::Resources& resources, const std::set<std::string>& available);

// The calling process's cgroup2 path ("/system.slice/berth@web.service"), from /proc/self/cgroup.
Result<std::string> own_cgroup2_path();

class ContainerCgroup {
public:
    ContainerCgroup() = default;
    // Moving hands over ownership: the moved-from object is inactive (its destructor does nothing).
    ContainerCgroup(ContainerCgroup&& other) noexcept;
    ContainerCgroup& operator=(ContainerCgroup&& other) noexcept;
    ~ContainerCgroup();

    // systemd mode: split the delegated cgroup we run in.
    static Result<ContainerCgroup> split_delegated(const std::string& mount_point);
    // by hand: <parent_dir>/<name>, with [resources] applied where possible. The parent is removed
    // again by destroy() once it is empty if it is berth's own (prune_parent, the default parent) or
    // if this call created it; a busy parent (another container) is left silently.
    static Result<ContainerCgroup> create_own(const std::string& parent_dir, const std::string& name,
                                              const config::Resources& resources, bool prune_parent = false);

    // Takes over a cgroup created by another process image (the teardown after berth-supervise;
    // see supervise-protocol.h): destroy() kills what is left in `payload`, removes `created`, and
    // `prune` when it is empty.
    static ContainerCgroup adopt(std::string payload, std::string created, std::string prune);

    const std::string& payload_path() const { return payload_; }  // filesystem path
    const std::string& created_path() const { return created_; }
    const std::string& prune_path() const { return prune_; }
    int payload_fd() const { return payload_fd_.get(); }
    const std::vector<std::string>& warnings() const { return warnings_; }

    // Kills what is left in the payload cgroup and removes the cgroups we created.
    Result<> destroy();

private:
    std::string payload_;
    UniqueFd payload_fd_;
    std::string created_;  // the cgroup directory we remove at the end
    std::string prune_;    // its parent, removed too when it is empty by then
    std::vector<std::string> warnings_;
    bool active_ = false;
};

}  // namespace berth::runtime
