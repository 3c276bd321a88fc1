#include "registry/auth-file.h"

#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "basic/fs-util.h"
#include "basic/string-util.h"
#include "registry/reference.h"

namespace berth::registry {
namespace {

using nlohmann::json;

// The whole file, or an empty object when there is none.  A file others can read is refused: it
// holds passwords, and silently using it would hide the leak.  A malformed file is an error for
// reading and writing alike: rewriting it would drop what another tool put there.
Result<json> read_auth_file(const std::string& path) {
    struct stat st {};
    if (stat(path.c_str(), &st) < 0) {
        if (errno == ENOENT) return json::object();
        return fail_errno("auth file '{}'", path);
    }
    if (st.st_mode & 077)
        return fail(0, "auth file '{}' is open to group or others (mode {:o}): chmod 600 it", path,
                    st.st_mode & 07777);
    auto text = BERTH_TRY(read_file(path));
    json doc = json::parse(text, nullptr, false);
    if (doc.is_discarded() || !doc.is_object()) return fail(0, "auth file '{}' is not a JSON object", path);
    if (!doc.contains("auths")) return doc;
    if (!doc["auths"].is_object()) return fail(0, "auth file '{}': \"auths\" must be an object", path);
    for (auto& [key, entry] : doc["auths"].items())
        if (!entry.is_object())
            return fail(0, "auth file '{}': the entry for '{}' is not an object", path, key);
    return doc;
}

// The key a file's entry stands for, as podman reads docker's files: a key with a scheme
// ("https://index.docker.io/v1/", "http://host:5000") names its host; Docker Hub's aliases are
// docker.io.
std::string normalize_key(std::string_view key) {
    for (std::string_view scheme : {"https://", "http://"})
        if (key.substr(0, scheme.size()) == scheme) {
            key.remove_prefix(scheme.size());
            key = key.substr(0, key.find('/'));
            break;
        }
    if (key == "index.docker.io" || key == "registry-1.docker.io") return "docker.io";
    return std::string(key);
}

// The entry for `key`: the exact key first, then one that normalizes to it; nullptr when none.
const json* find_entry(const json& doc, std::string_view key) {
    if (!doc.contains("auths")) return nullptr;
    const json& auths = doc["auths"];
    if (auto it = auths.find(std::string(key)); it != auths.end()) return &*it;
    for (auto it = auths.begin(); it != auths.end(); ++it)
        if (normalize_key(it.key()) == key) return &*it;
    return nullptr;
}

Result<> write_auth_file(const std::string& path, const json& doc) {
    std::string parent = split_parent(path).first;
    if (!parent.empty()) BERTH_TRY_VOID(mkdir_p(parent, 0755));
    return write_file_atomic(path, doc.dump(1, '\t') + "\n", 0600);
}

}  // namespace

Result<std::optional<Credentials>> lookup_credentials(const std::string& auth_file, std::string_view key) {
    json doc = BERTH_TRY(read_auth_file(auth_file));
    const json* entry = find_entry(doc, key);
    if (!entry) return std::optional<Credentials>();
    auto auth = entry->find("auth");
    if (auth == entry->end()) return std::optional<Credentials>();  // a credential helper's entry
    auto decoded = auth->is_string() ? base64_decode(auth->get<std::string>()) : std::nullopt;
    auto colon = decoded ? decoded->find(':') : std::string::npos;
    if (colon == std::string::npos)
        return fail(0, "auth file '{}': the entry for '{}' is not base64 of user:password", auth_file, key);
    return std::optional<Credentials>(Credentials{decoded->substr(0, colon), decoded->substr(colon + 1)});
}

Result<std::optional<Credentials>> lookup_credentials_for(const std::string& auth_file,
                                                          const Reference& qualified) {
    std::string repository = qualified.repository();
    while (true) {
        auto found = BERTH_TRY(lookup_credentials(auth_file, repository));
        if (found || repository.size() <= qualified.domain.size()) return found;
        repository.resize(repository.rfind('/'));
    }
}

Result<> store_credentials(const std::string& auth_file, std::string_view key,
                           const Credentials& credentials) {
    auto parsed = parse_registry_prefix(key);
    if (!parsed) return fail(0, "auth file: {}", parsed.error().what());
    if (credentials.username.empty()) return fail(0, "an empty user name cannot log in");
    if (credentials.username.find(':') != std::string::npos) return fail(0, "a user name cannot contain ':'");
    json doc = BERTH_TRY(read_auth_file(auth_file));
    doc["auths"][parsed->repository()] =
        json{{"auth", base64_encode(credentials.username + ":" + credentials.password)}};
    return write_auth_file(auth_file, doc);
}

Result<bool> remove_credentials(const std::string& auth_file, std::string_view key_text) {
    auto parsed = parse_registry_prefix(key_text);
    std::string key = parsed ? parsed->repository() : std::string(key_text);
    json doc = BERTH_TRY(read_auth_file(auth_file));
    if (!doc.contains("auths")) return false;
    // Every entry standing for the key goes, or a legacy one would answer the next lookup.
    json& auths = doc["auths"];
    size_t before = auths.size();
    for (auto it = auths.begin(); it != auths.end();)
        it = (it.key() == key || normalize_key(it.key()) == key) ? auths.erase(it) : std::next(it);
    if (auths.size() == before) return false;
    BERTH_TRY_VOID(write_auth_file(auth_file, doc));
    return true;
}

Result<size_t> remove_all_credentials(const std::string& auth_file) {
    json doc = BERTH_TRY(read_auth_file(auth_file));
    if (!doc.contains("auths") || doc["auths"].empty()) return size_t{0};
    size_t n = doc["auths"].size();
    doc["auths"] = json::object();
    BERTH_TRY_VOID(write_auth_file(auth_file, doc));
    return n;
}

Result<std::vector<std::string>> list_credentials(const std::string& auth_file) {
    json doc = BERTH_TRY(read_auth_file(auth_file));
    std::vector<std::string> keys;
    if (doc.contains("auths"))
        for (auto& [key, entry] : doc["auths"].items())
            if (entry.contains("auth")) keys.push_back(key);
    return keys;
}

}  // namespace berth::registry
