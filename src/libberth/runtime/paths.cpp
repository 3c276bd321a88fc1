#include "runtime/paths.h"

#include <cstdlib>

#include "basic/fs-util.h"

namespace berth::runtime {

static std::string env_or(const char* name, const char* fallback) {
    const char* v = std::getenv(name);
    return v && *v ? std::string(v) : std::string(fallback);
}

std::string run_dir() { return env_or("BERTH_RUN_DIR", "/run/berth"); }
std::string state_dir() { return env_or("BERTH_STATE_DIR", "/var/lib/berth"); }
std::string containers_run_dir() { return path_join(run_dir(), "containers"); }
std::string seccomp_cache_dir() { return path_join(run_dir(), "seccomp"); }

}  // namespace berth::runtime
