// WWW-Authenticate challenges (RFC 7235), as registries send them:
//   Bearer
//   realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull"
//   Basic realm="Registry Realm"
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "basic/result.h"

namespace berth::registry {

struct Challenge {
    std::string scheme;                         // lower-cased: "bearer", "basic"
    std::map<std::string, std::string> params;  // keys lower-cased, values unquoted
    std::string token68;                        // "Negotiate abc==": the scheme's single token, else ""
};

Result<std::vector<Challenge>> parse_www_authenticate(std::string_view header);

}  // namespace berth::registry
