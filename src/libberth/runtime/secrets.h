// [[secret]]s and [[socket]]s at the start: what systemd hands a unit's main process (credentials
// in $CREDENTIALS_DIRECTORY, listening sockets as fds from 3 with $LISTEN_FDS), taken by the
// supervisor and passed on to the payload.
//
// A secret's value lives only in the supervisor's memory for the few milliseconds of the start:
// it goes into the mount plan, which the child writes on a private tmpfs at /run/secrets inside
// its own mount namespace (never a host path, never the writable layer), and, for an
// `environment = "VAR"` secret, into the payload's execve environment (Launched::secret_env),
// which is not the state file's copy of the environment. Nothing logs it and no error quotes it.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "basic/result.h"
#include "basic/unique.h"
#include "config/declaration.h"

namespace berth::runtime {

struct SecretValue {
    config::Secret declared;  // name, target, mode, owner, environment
    std::string value;
};

// Reads every secret of `decl`: with `systemd` (the unit's ExecStart) from
// $CREDENTIALS_DIRECTORY/NAME, where the unit's LoadCredential*= lines had systemd put it;
// otherwise (`berth run` by hand) from the source itself: the plain file, `systemd-creds decrypt`
// of the encrypted one, or $CREDENTIALS_DIRECTORY/ID for a credential (berth run in a unit).
// An error names the secret and its source, never its value.
Result<std::vector<SecretValue>> read_secrets(const config::Declaration& decl, bool systemd);

// Overwrites the values (explicit_bzero) once the payload has them: a supervisor that runs for
// months does not keep them in its memory.
void forget_secrets(std::vector<SecretValue>& secrets);
void forget_secret_strings(std::vector<std::string>& strings);

// The listening sockets the caller passed (sd_listen_fds(3): $LISTEN_PID is this process,
// $LISTEN_FDS of them from fd 3, named by $LISTEN_FDNAMES). They are made close-on-exec here, so
// no helper berth runs inherits them, and the three variables are removed from the environment.
struct ListenFds {
    std::vector<int> fds;  // owned by the process (systemd passed them): not closed here
    std::string names;     // $LISTEN_FDNAMES as passed, "" if none
};
Result<ListenFds> take_listen_fds();

// systemd passes a service's sockets in no set order (they come from a hash of its triggering
// units); the payload gets them in `order` (config::listen_fd_names(): the declaration's socket
// names as first written), fds of one name in the order systemd gave them. Names not in `order`
// come last; without one name per fd nothing is reordered.
void order_listen_fds(ListenFds& listen, const std::vector<std::string>& order);

}  // namespace berth::runtime
