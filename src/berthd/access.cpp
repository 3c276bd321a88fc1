// Who may call what, and who may see what. The bus policy (dbus/org.berth.Storage1.conf) already
// lets only root send mutating calls; the daemon checks again from the caller's credentials so a
// permissive or broken policy does not open the store. Reads are open to every local user, but an
// image's environment values are root's: images carry credentials in ENV (database passwords, API
// tokens), so other callers get the variable names only.
#include "daemon.h"

namespace berth::berthd {

// The bus reports the uid it got from SO_PEERCRED (the effective uid at connect time); ask for the
// euid too where the transport has it.
int64_t caller_uid(sd_bus_message* m) {
    sd_bus_creds* raw = nullptr;
    int r = sd_bus_query_sender_creds(m, SD_BUS_CREDS_EUID | SD_BUS_CREDS_UID, &raw);
    if (r < 0) return r;
    bus::CredsPtr creds(raw);
    uid_t uid = static_cast<uid_t>(-1);
    if (sd_bus_creds_get_euid(raw, &uid) < 0 && sd_bus_creds_get_uid(raw, &uid) < 0) return -ENODATA;
    return uid;
}

bool caller_is_root(sd_bus_message* m) { return m && caller_uid(m) == 0; }

void withhold_secrets(store::ImageConfig& config) {
    for (auto& entry : config.env) entry = entry.substr(0, entry.find('='));
}

int require_root(sd_bus_message* m, sd_bus_error* error) {
    int64_t uid = caller_uid(m);
    if (uid == -ENODATA)
        return sd_bus_error_set(error, SD_BUS_ERROR_ACCESS_DENIED, "Cannot determine caller's user id");
    if (uid < 0)
        return sd_bus_error_set_errnof(error, static_cast<int>(uid),
                                       "Cannot determine caller credentials: %m");
    if (uid != 0)
        return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED, "Only root may call %s (caller uid %u)",
                                 sd_bus_message_get_member(m), static_cast<unsigned>(uid));
    return 0;
}

}  // namespace berth::berthd
