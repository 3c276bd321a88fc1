// The parts of an OCI image config that become a container's defaults.
#pragma once

#include <string>
#include <vector>

namespace berth::store {

struct ImageConfig {
    std::vector<std::string> entrypoint;  // config.Entrypoint
    std::vector<std::string> cmd;         // config.Cmd
    std::vector<std::string> env;         // config.Env, "KEY=VALUE"
    std::string user;                     // config.User ("name", "uid", "uid:gid")
    std::string working_dir;              // config.WorkingDir
    std::string stop_signal;              // config.StopSignal
};

}  // namespace berth::store
