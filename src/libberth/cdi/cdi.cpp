#include "cdi/cdi.h"

#include <dirent.h>
#include <dlfcn.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>

#include "basic/fs-util.h"
#include "basic/string-util.h"
#include "cdi/yaml-module.h"
#include "config/values.h"

namespace berth::cdi {

namespace {

using nlohmann::json;

// Reads one spec, remembering the first error with its field path.
class Reader {
public:
    explicit Reader(const std::string& file) : file_(file) {}
    Error error() const { return error_; }
    bool failed() const { return failed_; }

    void fail_at(const std::string& field, std::string_view what) {
        if (failed_) return;
        failed_ = true;
        error_ = Error{0, fmt::format("CDI spec '{}': {}: {}", file_, field, what)};
    }

    static const char* type_of(const json& j) { return j.is_null() ? "null" : j.type_name(); }

    std::optional<std::string> string(const json& j, const std::string& field) {
        if (j.is_string()) return j.get<std::string>();
        fail_at(field, fmt::format("is {}, expected a string", type_of(j)));
        return std::nullopt;
    }
    std::optional<uint32_t> number(const json& j, const std::string& field) {
        if (j.is_number_unsigned() && j.get<uint64_t>() <= UINT32_MAX)
            return static_cast<uint32_t>(j.get<uint64_t>());
        if (j.is_number_integer() && j.get<int64_t>() >= 0 && j.get<int64_t>() <= UINT32_MAX)
            return static_cast<uint32_t>(j.get<int64_t>());
        fail_at(field, fmt::format("is {}, expected an integer from 0 to 4294967295",
                                   j.is_number() ? j.dump() : type_of(j)));
        return std::nullopt;
    }
    std::vector<std::string> strings(const json& j, const std::string& field) {
        std::vector<std::string> out;
        if (!j.is_array()) {
            fail_at(field, fmt::format("is {}, expected an array of strings", type_of(j)));
            return out;
        }
        for (size_t i = 0; i < j.size(); ++i)
            if (auto s = string(j[i], fmt::format("{}[{}]", field, i))) out.push_back(*s);
        return out;
    }
    // Every member of `j` must be one of `keys` (a typo is an error, not a silently skipped edit).
    bool object(const json& j, const std::string& field, std::initializer_list<std::string_view> keys) {
        if (!j.is_object()) {
            fail_at(field, fmt::format("is {}, expected an object", type_of(j)));
            return false;
        }
        for (const auto& [k, v] : j.items())
            if (std::find(keys.begin(), keys.end(), k) == keys.end())
                fail_at(field.empty() ? k : field + "." + k,
                        fmt::format("is not a field berth knows, expected one of {}",
                                    join(std::vector<std::string>(keys.begin(), keys.end()), ", ")));
        return !failed_;
    }
    std::string absolute(const json& j, const std::string& field) {
        auto s = string(j, field);
        if (s && (s->empty() || (*s)[0] != '/'))
            fail_at(field, fmt::format("{} is not an absolute path", quote(*s)));
        return s.value_or("");
    }

    // The least spec version a feature needs, and which field needed it.
    void needs(const std::string& version, const std::string& field) {
        if (compare_versions(version, required_) > 0) {
            required_ = version;
            required_by_ = field;
        }
    }
    const std::string& required() const { return required_; }
    const std::string& required_by() const { return required_by_; }

    static int compare_versions(const std::string& a, const std::string& b) {
        auto parts = [](const std::string& v) {
            std::vector<unsigned long long> n;
            for (const auto& p : split(v, '.')) n.push_back(parse_unsigned(p).value_or(0));
            n.resize(3);
            return n;
        };
        auto pa = parts(a), pb = parts(b);
        return pa < pb ? -1 : pa > pb ? 1 : 0;
    }

private:
    std::string file_;
    Error error_;
    bool failed_ = false;
    std::string required_ = "0.3.0", required_by_;
};

std::optional<HookKind> hook_kind(const std::string& name) {
    static const std::map<std::string, HookKind> kinds = {{"createRuntime", HookKind::CreateRuntime},
                                                          {"createContainer", HookKind::CreateContainer},
                                                          {"startContainer", HookKind::StartContainer},
                                                          {"poststart", HookKind::Poststart},
                                                          {"poststop", HookKind::Poststop}};
    auto it = kinds.find(name);
    return it == kinds.end() ? std::nullopt : std::optional(it->second);
}

ContainerEdits read_edits(Reader& r, const json& j, const std::string& field) {
    ContainerEdits e;
    if (!r.object(j, field,
                  {"env", "deviceNodes", "mounts", "hooks", "additionalGids", "intelRdt", "netDevices"}))
        return e;
    auto at = [&](std::string_view k) { return fmt::format("{}.{}", field, k); };
    for (std::string_view unsupported : {"additionalGids", "intelRdt", "netDevices"})
        if (j.contains(unsupported))
            r.fail_at(at(unsupported),
                      "is not supported by berth (the container would not get what the vendor "
                      "asks for), expected a spec without it");
    if (j.contains("env")) {
        e.env = r.strings(j["env"], at("env"));
        for (size_t i = 0; i < e.env.size(); ++i) {
            auto eq = e.env[i].find('=');
            if (eq == std::string::npos || !config::is_valid_env_name(e.env[i].substr(0, eq)))
                r.fail_at(fmt::format("{}[{}]", at("env"), i),
                          fmt::format("{} is not NAME=VALUE", quote(e.env[i])));
        }
    }
    auto array = [&](std::string_view k) -> const json* {
        if (!j.contains(k)) return nullptr;
        if (!j[k].is_array()) {
            r.fail_at(at(k), fmt::format("is {}, expected an array", Reader::type_of(j[k])));
            return nullptr;
        }
        return &j[k];
    };
    if (const json* nodes = array("deviceNodes"))
        for (size_t i = 0; i < nodes->size(); ++i) {
            const json& n = (*nodes)[i];
            std::string f = fmt::format("{}[{}]", at("deviceNodes"), i);
            if (!r.object(
                    n, f,
                    {"path", "hostPath", "type", "major", "minor", "fileMode", "permissions", "uid", "gid"}))
                continue;
            DeviceNode d;
            if (!n.contains("path"))
                r.fail_at(f + ".path", "is missing, expected the node's path in the container");
            else
                d.path = r.absolute(n["path"], f + ".path");
            if (n.contains("hostPath")) {
                d.host_path = r.absolute(n["hostPath"], f + ".hostPath");
                r.needs("0.5.0", f + ".hostPath");
            }
            if (n.contains("type")) {
                d.type = r.string(n["type"], f + ".type").value_or("");
                if (d.type != "c" && d.type != "b" && d.type != "u" && d.type != "p")
                    r.fail_at(f + ".type",
                              fmt::format("is {}, expected \"c\", \"b\", \"u\" or \"p\"", quote(d.type)));
            }
            if (n.contains("major")) d.major = r.number(n["major"], f + ".major");
            if (n.contains("minor")) d.minor = r.number(n["minor"], f + ".minor");
            if (n.contains("fileMode")) {
                d.file_mode = r.number(n["fileMode"], f + ".fileMode");
                if (d.file_mode && *d.file_mode > 07777)
                    r.fail_at(f + ".fileMode",
                              fmt::format("is {:o} (octal), expected permission bits", *d.file_mode));
            }
            if (n.contains("permissions")) {
                d.permissions = r.string(n["permissions"], f + ".permissions").value_or("");
                if (d.permissions.find_first_not_of("rwm") != std::string::npos)
                    r.fail_at(f + ".permissions",
                              fmt::format("is {}, expected letters of \"rwm\"", quote(d.permissions)));
            }
            if (n.contains("uid")) d.uid = r.number(n["uid"], f + ".uid");
            if (n.contains("gid")) d.gid = r.number(n["gid"], f + ".gid");
            e.device_nodes.push_back(std::move(d));
        }
    if (const json* mounts = array("mounts"))
        for (size_t i = 0; i < mounts->size(); ++i) {
            const json& m = (*mounts)[i];
            std::string f = fmt::format("{}[{}]", at("mounts"), i);
            if (!r.object(m, f, {"hostPath", "containerPath", "options", "type"})) continue;
            Mount mt;
            if (!m.contains("hostPath") || !m.contains("containerPath"))
                r.fail_at(f, "needs hostPath and containerPath");
            else {
                mt.host_path = r.absolute(m["hostPath"], f + ".hostPath");
                mt.container_path = r.absolute(m["containerPath"], f + ".containerPath");
            }
            if (m.contains("options")) mt.options = r.strings(m["options"], f + ".options");
            if (m.contains("type")) {
                mt.type = r.string(m["type"], f + ".type").value_or("");
                r.needs("0.4.0", f + ".type");
                if (!mt.type.empty() && mt.type != "bind")
                    r.fail_at(f + ".type",
                              fmt::format("is {}, expected \"bind\" (berth binds host paths only)",
                                          quote(mt.type)));
            }
            e.mounts.push_back(std::move(mt));
        }
    if (const json* hooks = array("hooks"))
        for (size_t i = 0; i < hooks->size(); ++i) {
            const json& h = (*hooks)[i];
            std::string f = fmt::format("{}[{}]", at("hooks"), i);
            if (!r.object(h, f, {"hookName", "path", "args", "env", "timeout"})) continue;
            Hook hk;
            std::string name =
                h.contains("hookName") ? r.string(h["hookName"], f + ".hookName").value_or("") : "";
            auto kind = hook_kind(name);
            if (!kind)
                r.fail_at(f + ".hookName", fmt::format("is {}, expected createRuntime, createContainer, "
                                                       "startContainer, poststart or poststop",
                                                       quote(name)));
            else
                hk.kind = *kind;
            if (!h.contains("path"))
                r.fail_at(f + ".path", "is missing, expected the hook's absolute path");
            else
                hk.path = r.absolute(h["path"], f + ".path");
            if (h.contains("args")) hk.args = r.strings(h["args"], f + ".args");
            if (h.contains("env")) hk.env = r.strings(h["env"], f + ".env");
            if (h.contains("timeout")) {
                hk.timeout_s = r.number(h["timeout"], f + ".timeout");
                if (hk.timeout_s && *hk.timeout_s == 0)
                    r.fail_at(f + ".timeout", "is 0, expected seconds > 0");
            }
            e.hooks.push_back(std::move(hk));
        }
    return e;
}

std::string dlerror_text() {
    const char* e = ::dlerror();
    return e ? e : "unknown error";
}

}  // namespace

void ContainerEdits::append(const ContainerEdits& o) {
    env.insert(env.end(), o.env.begin(), o.env.end());
    device_nodes.insert(device_nodes.end(), o.device_nodes.begin(), o.device_nodes.end());
    mounts.insert(mounts.end(), o.mounts.begin(), o.mounts.end());
    hooks.insert(hooks.end(), o.hooks.begin(), o.hooks.end());
}

const std::vector<std::string>& known_versions() {
    static const std::vector<std::string> v = {"0.3.0", "0.4.0", "0.5.0", "0.6.0",
                                               "0.7.0", "0.8.0", "1.0.0", "1.1.0"};
    return v;
}

Result<Spec> parse_spec_json(std::string_view text, const std::string& file) {
    json j;
    try {  // nlohmann's exceptions stop here
        j = json::parse(text);
    } catch (const json::parse_error& e) {
        return fail(0, "CDI spec '{}': not valid JSON at byte {}: {}", file, e.byte, e.what());
    }
    Reader r(file);
    Spec spec;
    spec.file = file;
    if (!r.object(j, "", {"cdiVersion", "kind", "annotations", "devices", "containerEdits"}))
        return fail(r.error());
    if (!j.contains("cdiVersion"))
        r.fail_at("cdiVersion", "is missing, expected a version such as \"0.6.0\"");
    else
        spec.version = r.string(j["cdiVersion"], "cdiVersion").value_or("");
    const auto& known = known_versions();
    if (!r.failed() && std::find(known.begin(), known.end(), spec.version) == known.end())
        r.fail_at("cdiVersion",
                  fmt::format("is {}, expected one of {}", quote(spec.version), join(known, ", ")));
    if (!j.contains("kind"))
        r.fail_at("kind", "is missing, expected \"vendor.com/class\"");
    else
        spec.kind = r.string(j["kind"], "kind").value_or("");
    if (!r.failed() && !config::is_valid_cdi_kind(spec.kind))
        r.fail_at("kind", fmt::format("is {}, expected \"vendor.com/class\"", quote(spec.kind)));
    if (!r.failed() && spec.kind.find('.', spec.kind.find('/')) != std::string::npos)
        r.needs("0.6.0", "kind");
    if (j.contains("annotations")) {
        if (!j["annotations"].is_object())
            r.fail_at("annotations", "is not an object");
        else if (!j["annotations"].empty())
            r.needs("0.6.0", "annotations");
    }
    if (j.contains("containerEdits")) spec.edits = read_edits(r, j["containerEdits"], "containerEdits");
    if (!j.contains("devices") || !j["devices"].is_array() || j["devices"].empty())
        r.fail_at("devices", "is missing or empty, expected an array of devices");
    else
        for (size_t i = 0; i < j["devices"].size(); ++i) {
            const json& d = j["devices"][i];
            std::string f = fmt::format("devices[{}]", i);
            if (!r.object(d, f, {"name", "annotations", "containerEdits"})) break;
            Device dev;
            if (!d.contains("name"))
                r.fail_at(f + ".name", "is missing");
            else
                dev.name = r.string(d["name"], f + ".name").value_or("");
            if (!r.failed() && !config::is_valid_cdi_device_name(dev.name))
                r.fail_at(f + ".name", fmt::format("is {}, expected letters, digits, '-', '_', '.', ':'",
                                                   quote(dev.name)));
            if (!dev.name.empty() && std::isdigit(static_cast<unsigned char>(dev.name[0])))
                r.needs("0.5.0", f + ".name");
            if (d.contains("annotations") && d["annotations"].is_object() && !d["annotations"].empty())
                r.needs("0.6.0", f + ".annotations");
            if (!d.contains("containerEdits"))
                r.fail_at(f + ".containerEdits", "is missing");
            else
                dev.edits = read_edits(r, d["containerEdits"], f + ".containerEdits");
            for (const auto& other : spec.devices)
                if (other.name == dev.name)
                    r.fail_at(f + ".name", fmt::format("{} is declared twice", quote(dev.name)));
            spec.devices.push_back(std::move(dev));
        }
    if (!r.failed() && Reader::compare_versions(spec.version, r.required()) < 0)
        r.fail_at("cdiVersion", fmt::format("is {} but {} needs {} or later", quote(spec.version),
                                            r.required_by(), r.required()));
    if (r.failed()) return fail(r.error());
    return spec;
}

Result<Spec> parse_spec_yaml(std::string_view text, const std::string& file) {
    // Loaded once, kept for the life of the process (a handful of specs per start at most).
    static void* module = nullptr;
    static YamlToJsonFn convert = nullptr;
    if (!convert) {
        const char* env = std::getenv("BERTH_CDI_YAML_MODULE");
        std::string path = env && *env ? env : BERTH_CDI_YAML_MODULE_PATH;
        module = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
        if (!module)
            return fail(ENOENT, "CDI spec '{}': reading YAML needs '{}': {}", file, path, dlerror_text());
        convert = reinterpret_cast<YamlToJsonFn>(::dlsym(module, kYamlToJsonSymbol));
        if (!convert) return fail(ENOENT, "CDI spec '{}': '{}' has no {}", file, path, kYamlToJsonSymbol);
    }
    char* out = nullptr;
    std::string input(text);
    if (convert(input.c_str(), &out) != 0) {
        std::string message = out ? out : "unknown error";
        ::free(out);
        return fail(0, "CDI spec '{}': not valid YAML: {}", file, message);
    }
    std::string as_json = out ? out : "";
    ::free(out);
    return parse_spec_json(as_json, file);
}

Result<Spec> load_spec_file(const std::string& path) {
    std::string text = BERTH_TRY_CTX(read_file(path), fmt::format("CDI spec '{}'", path));
    if (path.size() > 5 && path.substr(path.size() - 5) == ".json") return parse_spec_json(text, path);
    return parse_spec_yaml(text, path);
}

std::vector<std::string> spec_dirs() {
    const char* env = std::getenv("BERTH_CDI_SPEC_DIRS");
    if (env && *env) return split(env, ':');
    return {"/etc/cdi", "/var/run/cdi"};
}

std::vector<std::string> Registry::device_names() const {
    std::vector<std::string> names;
    for (const auto& s : specs)
        for (const auto& d : s.devices) names.push_back(s.kind + "=" + d.name);
    std::sort(names.begin(), names.end());
    names.erase(std::unique(names.begin(), names.end()), names.end());
    return names;
}

Result<ContainerEdits> Registry::resolve(const std::vector<std::string>& names) const {
    // name -> the spec and device that define it; a later spec (later directory) wins.
    std::map<std::string, std::pair<size_t, size_t>> index;
    for (size_t s = 0; s < specs.size(); ++s)
        for (size_t d = 0; d < specs[s].devices.size(); ++d)
            index[specs[s].kind + "=" + specs[s].devices[d].name] = {s, d};
    ContainerEdits edits;
    std::vector<bool> spec_used(specs.size(), false);
    std::vector<std::pair<size_t, size_t>> chosen;
    for (const auto& name : names) {
        auto eq = name.find('=');
        std::string kind = name.substr(0, eq), dev = eq == std::string::npos ? "" : name.substr(eq + 1);
        auto it = index.find(name);
        if (it != index.end()) {
            chosen.push_back(it->second);
            continue;
        }
        size_t before = chosen.size();
        if (dev == "all")
            for (const auto& [n, where] : index)
                if (n.compare(0, kind.size() + 1, kind + "=") == 0) chosen.push_back(where);
        if (chosen.size() > before) continue;
        auto known = device_names();
        std::string message = fmt::format(
            "unknown CDI device {}; known: {}", quote(name),
            known.empty() ? "none (no specs in " + join(spec_dirs(), ", ") + ")" : join(known, ", "));
        for (const auto& e : errors) message += fmt::format("; {}", e.what());
        return fail(ENOENT, "{}", message);
    }
    for (const auto& [s, d] : chosen) {
        if (!spec_used[s]) edits.append(specs[s].edits);
        spec_used[s] = true;
        edits.append(specs[s].devices[d].edits);
    }
    return edits;
}

Registry load_registry(const std::vector<std::string>& dirs) {
    Registry reg;
    for (const auto& dir : dirs) {
        DIR* d = ::opendir(dir.c_str());
        if (!d) continue;
        std::vector<std::string> files;
        while (auto* ent = ::readdir(d)) {
            std::string n = ent->d_name;
            auto ends = [&](std::string_view suffix) {
                return n.size() > suffix.size() &&
                       n.compare(n.size() - suffix.size(), suffix.size(), suffix) == 0;
            };
            if (ends(".json") || ends(".yaml") || ends(".yml")) files.push_back(path_join(dir, n));
        }
        ::closedir(d);
        std::sort(files.begin(), files.end());
        for (const auto& f : files) {
            if (auto spec = load_spec_file(f))
                reg.specs.push_back(std::move(*spec));
            else
                reg.errors.push_back(spec.error());
        }
    }
    return reg;
}

std::optional<std::vector<std::string>> device_allow_entries(const std::vector<std::string>& names) {
    auto edits = load_registry(spec_dirs()).resolve(names);
    if (!edits) return std::nullopt;
    std::vector<std::string> out;
    for (const auto& n : edits->device_nodes)
        out.push_back(fmt::format("{} {}", n.host_path.empty() ? n.path : n.host_path,
                                  n.permissions.empty() ? "rwm" : n.permissions));
    return out;
}

}  // namespace berth::cdi
