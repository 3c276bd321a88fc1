#include "registry/registries.h"

#include <dirent.h>
#include <toml++/toml.h>

#include <algorithm>
#include <cstdlib>

#include "basic/fs-util.h"
#include "basic/string-util.h"

namespace berth::registry {
namespace {

std::string where(const toml::source_region& s, const std::string& path) {
    return fmt::format("{}:{}:{}", path, s.begin.line, s.begin.column);
}

Result<std::string> string_key(const toml::table& t, std::string_view key, const std::string& path) {
    const toml::node* n = t.get(key);
    if (!n) return std::string();
    if (!n->is_string()) return fail(EINVAL, "{}: {} must be a string", where(n->source(), path), key);
    return std::string(*n->value<std::string>());
}

Result<bool> bool_key(const toml::table& t, std::string_view key, const std::string& path) {
    const toml::node* n = t.get(key);
    if (!n) return false;
    if (!n->is_boolean()) return fail(EINVAL, "{}: {} must be true or false", where(n->source(), path), key);
    return *n->value<bool>();
}

Result<> check_keys(const toml::table& t, std::initializer_list<std::string_view> known,
                    std::string_view what, const std::string& path) {
    for (auto&& [k, v] : t)
        if (std::find(known.begin(), known.end(), k.str()) == known.end())
            return fail(EINVAL, "{}: unknown key '{}' in {}", where(v.source(), path), k.str(), what);
    return {};
}

Result<> apply_file(RegistriesConfig& config, const std::string& path) {
    auto text = BERTH_TRY(read_file(path));
    toml::table root;
    try {
        root = toml::parse(text, path);
    } catch (const toml::parse_error& e) {
        return fail(EINVAL, "{}: invalid TOML: {}", where(e.source(), path), e.description());
    }
    BERTH_TRY_VOID(check_keys(root, {"default_registry", "certs_dir", "auth_file", "registry"},
                              "registries.toml", path));
    if (root.get("default_registry"))
        config.default_domain = BERTH_TRY(string_key(root, "default_registry", path));
    if (root.get("certs_dir")) config.certs_dir = BERTH_TRY(string_key(root, "certs_dir", path));
    if (root.get("auth_file")) config.auth_file = BERTH_TRY(string_key(root, "auth_file", path));
    if (const toml::node* regs = root.get("registry")) {
        const toml::array* array = regs->as_array();
        if (!array)
            return fail(EINVAL, "{}: registry must be an array of tables ([[registry]])",
                        where(regs->source(), path));
        for (const toml::node& node : *array) {
            const toml::table* t = node.as_table();
            if (!t) return fail(EINVAL, "{}: registry entries must be tables", where(node.source(), path));
            BERTH_TRY_VOID(check_keys(*t, {"prefix", "location", "insecure", "blocked", "mirror"},
                                      "[[registry]]", path));
            RegistryEntry entry;
            entry.prefix = BERTH_TRY(string_key(*t, "prefix", path));
            if (entry.prefix.empty())
                return fail(EINVAL, "{}: [[registry]] needs prefix", where(t->source(), path));
            entry.location = BERTH_TRY(string_key(*t, "location", path));
            if (entry.location.empty()) entry.location = entry.prefix;
            entry.insecure = BERTH_TRY(bool_key(*t, "insecure", path));
            entry.blocked = BERTH_TRY(bool_key(*t, "blocked", path));
            if (const toml::node* mirrors = t->get("mirror")) {
                const toml::array* ma = mirrors->as_array();
                if (!ma)
                    return fail(EINVAL, "{}: mirror must be an array of tables",
                                where(mirrors->source(), path));
                for (const toml::node& m : *ma) {
                    const toml::table* mt = m.as_table();
                    if (!mt)
                        return fail(EINVAL, "{}: mirror entries must be tables", where(m.source(), path));
                    BERTH_TRY_VOID(check_keys(*mt, {"location", "insecure"}, "[[registry.mirror]]", path));
                    Mirror mirror{BERTH_TRY(string_key(*mt, "location", path)),
                                  BERTH_TRY(bool_key(*mt, "insecure", path))};
                    if (mirror.location.empty())
                        return fail(EINVAL, "{}: a mirror needs location", where(mt->source(), path));
                    entry.mirrors.push_back(std::move(mirror));
                }
            }
            // A later file's entry for the same prefix replaces the earlier one (drop-ins override).
            std::erase_if(config.registries,
                          [&](const RegistryEntry& e) { return e.prefix == entry.prefix; });
            config.registries.push_back(std::move(entry));
        }
    }
    return {};
}

std::vector<std::string> sorted_entries(const std::string& dir, std::string_view suffix) {
    std::vector<std::string> out;
    DIR* d = opendir(dir.c_str());
    if (!d) return out;
    while (dirent* e = readdir(d)) {
        std::string name = e->d_name;
        if (name.size() > suffix.size() &&
            name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0)
            out.push_back(name);
    }
    closedir(d);
    std::sort(out.begin(), out.end());
    return out;
}

bool prefix_matches(std::string_view prefix, std::string_view repository) {
    if (repository.substr(0, prefix.size()) != prefix) return false;
    return repository.size() == prefix.size() || repository[prefix.size()] == '/';
}

}  // namespace

RegistriesSearchPath RegistriesSearchPath::system() {
    RegistriesSearchPath s;
    if (const char* env = std::getenv("BERTH_REGISTRIES_PATH"); env && *env)
        s.dirs = split(env, ':');
    else
        s.dirs = {"/etc/berth", "/run/berth", "/usr/lib/berth"};
    return s;
}

Result<RegistriesConfig> load_registries(const RegistriesSearchPath& search) {
    RegistriesConfig config;
    for (const std::string& dir : search.dirs) {
        std::string main = path_join(dir, "registries.toml");
        if (path_exists(main)) {
            BERTH_TRY_VOID(apply_file(config, main));
            break;
        }
    }
    // Drop-ins from every directory, ordered by file name; the same name in an earlier directory wins.
    std::vector<std::pair<std::string, std::string>> dropins;
    for (const std::string& dir : search.dirs) {
        std::string d = path_join(dir, "registries.toml.d");
        for (const std::string& name : sorted_entries(d, ".toml"))
            if (std::none_of(dropins.begin(), dropins.end(), [&](auto& p) { return p.first == name; }))
                dropins.emplace_back(name, path_join(d, name));
    }
    std::sort(dropins.begin(), dropins.end());
    for (auto& [name, path] : dropins) BERTH_TRY_VOID(apply_file(config, path));
    return config;
}

Result<Reference> qualify(const Reference& ref, const RegistriesConfig& config) {
    Reference q = ref;
    if (q.domain.empty()) {
        if (config.default_domain.empty())
            return fail(
                EINVAL,
                "'{}' is a short name and registries.toml sets no default_registry: write the registry "
                "(e.g. docker.io/{})",
                ref.str(), ref.path);
        q.domain = config.default_domain;
    }
    if (q.domain == "index.docker.io" || q.domain == "registry-1.docker.io") q.domain = "docker.io";
    if (q.domain == "docker.io" && q.path.find('/') == std::string::npos) q.path = "library/" + q.path;
    if (q.tag.empty() && q.digest.empty()) q.tag = "latest";
    return q;
}

std::string Endpoint::base_url() const { return (insecure ? "http://" : "https://") + host; }

Result<std::vector<Endpoint>> endpoints_for(const Reference& qualified, const RegistriesConfig& config) {
    std::string repository = qualified.repository();
    const RegistryEntry* best = nullptr;
    for (const RegistryEntry& e : config.registries)
        if (prefix_matches(e.prefix, repository) && (!best || e.prefix.size() > best->prefix.size()))
            best = &e;
    if (best && best->blocked)
        return fail(EACCES, "registry '{}' is blocked in registries.toml", best->prefix);

    auto make = [&](std::string_view location, bool insecure, bool mirror) {
        // location = host[:port][/path]; the part of the repository below the prefix is appended.
        std::string loc(location);
        Endpoint ep;
        auto slash = loc.find('/');
        ep.host = loc.substr(0, slash);
        std::string base = slash == std::string::npos ? "" : loc.substr(slash + 1);
        std::string rest = qualified.path;
        if (best) {
            rest = repository.substr(best->prefix.size());
            if (!rest.empty() && rest.front() == '/') rest.erase(0, 1);
        }
        ep.path = base.empty() ? rest : (rest.empty() ? base : base + "/" + rest);
        ep.insecure = insecure;
        ep.mirror = mirror;
        std::string dir = path_join(config.certs_dir, ep.host);
        for (const std::string& name : sorted_entries(dir, ".crt"))
            ep.tls.ca_files.push_back(path_join(dir, name));
        for (const std::string& name : sorted_entries(dir, ".cert")) {
            std::string key = path_join(dir, name.substr(0, name.size() - 5) + ".key");
            if (path_exists(key)) {
                ep.tls.client_cert = path_join(dir, name);
                ep.tls.client_key = key;
                break;
            }
        }
        return ep;
    };

    std::vector<Endpoint> out;
    if (best) {
        for (const Mirror& m : best->mirrors) out.push_back(make(m.location, m.insecure, true));
        out.push_back(make(best->location, best->insecure, false));
    } else {
        std::string host = qualified.domain == "docker.io" ? "registry-1.docker.io" : qualified.domain;
        out.push_back(make(host, false, false));
    }
    return out;
}

}  // namespace berth::registry
