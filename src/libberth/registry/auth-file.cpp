#include "registry/auth-file.h"

#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "basic/fs-util.h"
#include "basic/string-util.h"

namespace berth::registry {
namespace {

using nlohmann::json;

// The whole file, or an empty object when there is none.  A file others can read is refused: it
// holds passwords, and silently using it would hide the leak.
Result<json> read_auth_file(const std::string& path) {
    struct stat st {};
    if (stat(path.c_str(), &st) < 0) {
        if (errno == ENOENT) return json::object();
        return fail_errno("auth file '{}'", path);
    }
    if (st.st_mode & 077)
        return fail(EPERM, "auth file '{}' is readable by others (mode {:o}): chmod 600 it", path,
                    st.st_mode & 07777);
    auto text = BERTH_TRY(read_file(path));
    json doc = json::parse(text, nullptr, false);
    if (doc.is_discarded() || !doc.is_object())
        return fail(EINVAL, "auth file '{}' is not a JSON object", path);
    if (doc.contains("auths") && !doc["auths"].is_object())
        return fail(EINVAL, "auth file '{}': \"auths\" must be an object", path);
    return doc;
}

}  // namespace

Result<std::optional<Credentials>> lookup_credentials(const std::string& auth_file, std::string_view key) {
    json doc = BERTH_TRY(read_auth_file(auth_file));
    if (!doc.contains("auths")) return std::optional<Credentials>();
    const json& auths = doc["auths"];
    auto it = auths.find(std::string(key));
    if (it == auths.end() || !it->is_object()) return std::optional<Credentials>();
    auto auth = it->find("auth");
    if (auth == it->end() || !auth->is_string()) return std::optional<Credentials>();
    auto decoded = base64_decode(auth->get<std::string>());
    auto colon = decoded ? decoded->find(':') : std::string::npos;
    if (colon == std::string::npos)
        return fail(EINVAL, "auth file '{}': the entry for '{}' is not base64 of user:password", auth_file,
                    key);
    return std::optional<Credentials>(Credentials{decoded->substr(0, colon), decoded->substr(colon + 1)});
}

Result<> store_credentials(const std::string& auth_file, std::string_view key,
                           const Credentials& credentials) {
    if (credentials.username.find(':') != std::string::npos)
        return fail(EINVAL, "a user name cannot contain ':'");
    json doc = BERTH_TRY(read_auth_file(auth_file));
    doc["auths"][std::string(key)] =
        json{{"auth", base64_encode(credentials.username + ":" + credentials.password)}};
    BERTH_TRY_VOID(mkdir_p(split_parent(auth_file).first, 0755));
    return write_file_atomic(auth_file, doc.dump(1, '\t') + "\n", 0600);
}

Result<bool> remove_credentials(const std::string& auth_file, std::string_view key) {
    json doc = BERTH_TRY(read_auth_file(auth_file));
    if (!doc.contains("auths") || !doc["auths"].contains(std::string(key))) return false;
    doc["auths"].erase(std::string(key));
    BERTH_TRY_VOID(write_file_atomic(auth_file, doc.dump(1, '\t') + "\n", 0600));
    return true;
}

}  // namespace berth::registry
