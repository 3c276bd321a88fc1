#include "bus/bus-util.h"

#include <cstring>

#include "basic/string-util.h"
#include "basic/unique.h"

namespace berth::bus {

Error error_from_bus(const sd_bus_error* error, int r, std::string_view context) {
    if (error && sd_bus_error_is_set(error)) {
        int code = std::strcmp(error->name, kGenericError) == 0 ? 0 : sd_bus_error_get_errno(error);
        std::string message = error->message ? error->message : error->name;
        if (code == 0 && std::strcmp(error->name, kGenericError) != 0) code = EIO;
        Error e{code, message};
        return context.empty() ? e : e.wrap(context);
    }
    return Error{r < 0 ? -r : EIO, std::string(context)};
}

int set_bus_error(sd_bus_error* ret, const Error& error) {
    // Messages quote what the caller sent: bounded and escaped before they go back (issue #16).
    std::string message = sanitize_message(error.message);
    if (error.code == 0) return sd_bus_error_set(ret, kGenericError, message.c_str());
    // Keep the context chain as the message; the errno is carried by the error name.
    return sd_bus_error_set_errnof(ret, error.code, "%s", message.c_str());
}

int append_strv(sd_bus_message* m, const std::vector<std::string>& v) {
    int r = sd_bus_message_open_container(m, 'a', "s");
    if (r < 0) return r;
    for (auto& s : v) {
        r = sd_bus_message_append(m, "s", s.c_str());
        if (r < 0) return r;
    }
    return sd_bus_message_close_container(m);
}

int read_strv(sd_bus_message* m, std::vector<std::string>& out) {
    char** strv = nullptr;
    int r = sd_bus_message_read_strv(m, &strv);
    if (r < 0) return r;
    out.clear();
    for (char** p = strv; p && *p; ++p) {
        out.emplace_back(*p);
        free(*p);
    }
    free(strv);
    return r;
}

std::string object_path(const char* prefix, const std::string& id) {
    char* path = nullptr;
    if (sd_bus_path_encode(prefix, id.c_str(), &path) < 0) return {};
    std::string result(path);
    free(path);
    return result;
}

std::string object_id(const char* prefix, const char* path) {
    char* id = nullptr;
    if (sd_bus_path_decode(path, prefix, &id) <= 0 || !id) return {};
    std::string result(id);
    free(id);
    return result;
}

}  // namespace berth::bus
