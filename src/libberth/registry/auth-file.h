// The credentials file, in the containers-auth.json / docker config.json format:
//   {"auths": {"host[:port]": {"auth": "<base64 of user:password>"}}}
// Written 0600, atomically; a file readable by others is refused (it holds passwords).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "basic/result.h"
#include "registry/reference.h"

namespace berth::registry {

struct Credentials {
    std::string username;
    std::string password;
    bool operator==(const Credentials&) const = default;
};

// Looks `key` up ("host[:port]" or "host[:port]/path"); a missing file is no credentials.  Keys
// docker writes ("https://index.docker.io/v1/", "http://host:5000") are found under what they name
// ("docker.io", "host:5000").
Result<std::optional<Credentials>> lookup_credentials(const std::string& auth_file, std::string_view key);
// For a pull or push: the most specific key first ("quay.io/team/app", "quay.io/team", "quay.io"),
// as podman and skopeo look up.
Result<std::optional<Credentials>> lookup_credentials_for(const std::string& auth_file,
                                                          const Reference& qualified);
// `key` is registry[/repository] (parse_registry_prefix); other keys and entries are kept.
Result<> store_credentials(const std::string& auth_file, std::string_view key,
                           const Credentials& credentials);
// False when there was nothing to remove.  Removes every entry standing for the key.
Result<bool> remove_credentials(const std::string& auth_file, std::string_view key);
// `berth logout --all`: every entry; how many there were.
Result<size_t> remove_all_credentials(const std::string& auth_file);
// The keys that hold credentials (for `berth login --list`-like displays; never the secrets).
Result<std::vector<std::string>> list_credentials(const std::string& auth_file);

}  // namespace berth::registry
