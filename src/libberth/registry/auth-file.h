// The credentials file, in the containers-auth.json / docker config.json format:
//   {"auths": {"host[:port]": {"auth": "<base64 of user:password>"}}}
// Written 0600, atomically; a file readable by others is refused (it holds passwords).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "basic/result.h"

namespace berth::registry {

struct Credentials {
    std::string username;
    std::string password;
    bool operator==(const Credentials&) const = default;
};

// Looks `key` up ("host[:port]", then "host[:port]/path" prefixes are tried by the caller); a
// missing file is no credentials.
Result<std::optional<Credentials>> lookup_credentials(const std::string& auth_file, std::string_view key);
Result<> store_credentials(const std::string& auth_file, std::string_view key,
                           const Credentials& credentials);
// False when there was nothing to remove.
Result<bool> remove_credentials(const std::string& auth_file, std::string_view key);

}  // namespace berth::registry
