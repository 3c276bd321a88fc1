// Where the runtime keeps things. Environment overrides exist so tests run in private directories.
#pragma once

#include <string>

namespace berth::runtime {

std::string run_dir();             // $BERTH_RUN_DIR or /run/berth
std::string state_dir();           // $BERTH_STATE_DIR or /var/lib/berth
std::string containers_run_dir();  // run_dir()/containers: NAME.json, NAME.lock, NAME.notify
std::string seccomp_cache_dir();   // run_dir()/seccomp

}  // namespace berth::runtime
