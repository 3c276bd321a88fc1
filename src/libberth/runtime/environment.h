// The payload's environment: image defaults, then environment_files in order, then the
// declaration's table (later wins), then what the runtime owns (container=berth, HOSTNAME, HOME
// unless set, PATH unless set, TERM for a tty, NOTIFY_SOCKET for notify="container").
#pragma once

#include <map>
#include <string>
#include <vector>

#include "basic/result.h"

namespace berth::runtime {

// Parses a KEY=VALUE file (blank lines and '#' comments skipped, optional "export ", surrounding
// single or double quotes stripped). `origin` names the file in messages.
Result<std::vector<std::pair<std::string, std::string>>> parse_environment_file(const std::string& text,
                                                                                const std::string& origin);

struct EnvironmentInputs {
    std::vector<std::string> image_env;  // "K=V"
    std::vector<std::string> environment_files;
    std::map<std::string, std::string> table;
    std::string hostname;
    std::string home;
    bool tty = false;
    std::string notify_socket;  // in-container path, empty = none
};

// Reads the environment files (host paths) and composes "K=V" entries, sorted by key.
Result<std::vector<std::string>> compose_environment(const EnvironmentInputs& in);

inline constexpr const char* kDefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

}  // namespace berth::runtime
