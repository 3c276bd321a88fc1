// Who the payload runs as, resolved from the container's own /etc/passwd and /etc/group (never
// the host's), like Docker: "name", "uid", "uid:gid", "name:group"; a numeric uid absent from
// passwd is allowed (gid 0, HOME=/); an unknown name is an error.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "basic/result.h"
#include "config/declaration.h"

namespace berth::runtime {

struct Identity {
    uid_t uid = 0;
    gid_t gid = 0;
    std::vector<gid_t> groups;  // supplementary groups
    std::string home = "/";
    std::string user_name;      // empty when the uid has no passwd entry
};

// `user` is "name|uid[:group|gid]" (declaration or image default); passwd/group texts may be empty
// (file missing).
Result<Identity> resolve_identity(const std::string& user, const std::vector<std::string>& extra_groups,
                                  const std::string& passwd_text, const std::string& group_text);

// config::UserSpec -> "user[:group]".
std::string user_spec_string(const config::UserSpec& spec);

}  // namespace berth::runtime
