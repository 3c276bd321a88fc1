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
    std::string user_name;  // empty when the uid has no passwd entry
};

// `user` is "name|uid[:group|gid]" (declaration or image default); passwd/group texts may be empty
// (file missing).
Result<Identity> resolve_identity(const std::string& user, const std::vector<std::string>& extra_groups,
                                  const std::string& passwd_text, const std::string& group_text);

// Reads `path` (e.g. "/etc/passwd") of the container's tree from the host, for
// resolve_identity. The tree is the container's: anything may be there, put by the image or by
// the running payload (`berth exec --user`). So the path is resolved inside `root_fd`
// (openat2 RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS: no symlink leads to a host file), the node is
// looked at through O_PATH before anything opens it (a device node is never opened, not even
// for a moment), only a regular file is read, and the read is non-blocking and at most 16 MiB.
// A FIFO, socket, device or directory there is an error naming the path, so `berth run` and
// `berth exec --user` fail at once instead of hanging on a FIFO or reading /dev/zero forever.
// A missing file reads as empty (a numeric user needs no passwd).
Result<std::string> read_container_file(int root_fd, const std::string& path);

// config::UserSpec -> "user[:group]".
std::string user_spec_string(const config::UserSpec& spec);

}  // namespace berth::runtime
