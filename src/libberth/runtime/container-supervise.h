// Stage 4 of `berth run` (container.cpp): the running container. Its state record (state.h, for
// `berth exec`, `berth status` and a teardown in another process image), readiness to systemd,
// and the supervise loop (relay.h): here at first, then, if the payload still runs after
// RunOptions::handover_delay_ms, in the small berth-supervise, which does not come back
// (supervise-protocol.h).
#pragma once

#include <string>

#include "basic/result.h"
#include "bus/storage-client.h"
#include "config/declaration.h"
#include "runtime/cgroup.h"
#include "runtime/container-launch.h"
#include "runtime/container-security.h"
#include "runtime/container.h"
#include "runtime/state.h"

namespace berth::runtime {

struct SuperviseInputs {
    const config::Declaration* decl = nullptr;
    const RunOptions* options = nullptr;
    Launched* launched = nullptr;
    int notify_socket = -1;  // the relay socket (notify = "container"), -1 without
    int lock_fd = -1;        // goes with a hand-over, to the teardown
    // Closed when the payload outlives the hand-over delay: a long run keeps no private berthd.
    bus::StorageSession* storage = nullptr;
    const store::ImageConfig* image = nullptr;  // its HEALTHCHECK, under [health]; null: none
};

// The state record of a running container, and what the RAII owners of run_container() undo,
// for a teardown in another process image (handover.h).
struct StateInputs {
    const config::Declaration* decl = nullptr;
    const Launched* launched = nullptr;
    const ContainerCgroup* cgroup = nullptr;
    const SecurityPlan* security = nullptr;
    std::string hostname;
    std::string notify_socket;  // host path, "" without
    bool snapshot = false;
    const store::ImageConfig* image = nullptr;  // its HEALTHCHECK, under [health]; null: none
    std::string image_id;                       // ContainerRoot::image_id()
};
RuntimeState describe_running(const StateInputs& in);

// Written state, removed when this goes away.
class StateFile {
public:
    Result<> write(const RuntimeState& st);
    ~StateFile() {
        if (!name_.empty()) remove_state(name_);
    }
    StateFile() = default;
    StateFile(const StateFile&) = delete;
    StateFile& operator=(const StateFile&) = delete;

private:
    std::string name_;
};

// Tells systemd the payload runs and supervises it until it exits; its status (exit code or 128 +
// signal). After a successful hand-over this does not return.
Result<int> supervise_container(const SuperviseInputs& in);

}  // namespace berth::runtime
