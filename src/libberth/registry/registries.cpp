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

// One file's parse: every error names file:line:col of the offending key or value.
class FileParser {
public:
    explicit FileParser(std::string path) : path_(std::move(path)) {}

    Result<std::string> string_key(const toml::table& t, std::string_view key) const {
        const toml::node* n = t.get(key);
        if (!n) return std::string();
        if (!n->is_string()) return fail(0, "{}: {} must be a string", where(n->source(), path_), key);
        return std::string(*n->value<std::string>());
    }

    Result<bool> bool_key(const toml::table& t, std::string_view key) const {
        const toml::node* n = t.get(key);
        if (!n) return false;
        if (!n->is_boolean()) return fail(0, "{}: {} must be true or false", where(n->source(), path_), key);
        return *n->value<bool>();
    }

    // Unknown keys are errors, with the likely typo named (as in declarations).
    Result<> check_keys(const toml::table& t, const std::vector<std::string_view>& known,
                        std::string_view section) const {
        for (auto&& [k, v] : t) {
            if (std::find(known.begin(), known.end(), k.str()) != known.end()) continue;
            std::string in = section.empty() ? "at the top level" : fmt::format("in {}", section);
            std::string hint = did_you_mean(k.str(), known);
            if (!hint.empty())
                return fail(0, "{}: unknown key '{}' {}, expected a known key; did you mean '{}'?",
                            where(k.source(), path_), k.str(), in, hint);
            return fail(0, "{}: unknown key '{}' {}, expected one of: {}", where(k.source(), path_), k.str(),
                        in, join(std::vector<std::string>(known.begin(), known.end()), ", "));
        }
        return {};
    }

    // host[:port][/path]: where requests for a prefix go.  No scheme (insecure = true says http).
    Result<std::string> location_key(const toml::table& t) const {
        std::string location = BERTH_TRY(string_key(t, "location"));
        if (location.empty()) return location;
        auto slash = location.find('/');
        if (!valid_domain(location.substr(0, slash)) ||
            (slash != std::string::npos && !valid_repository_path(location.substr(slash + 1))))
            return fail(0,
                        "{}: location '{}' is not host[:port][/path] (no scheme: set insecure = true for "
                        "plain HTTP)",
                        where(t.get("location")->source(), path_), location);
        return location;
    }

    Result<std::string> absolute_path_key(const toml::table& t, std::string_view key) const {
        std::string value = BERTH_TRY(string_key(t, key));
        if (value.empty() || value.front() != '/')
            return fail(0, "{}: {} '{}' must be an absolute path", where(t.get(key)->source(), path_), key,
                        value);
        return value;
    }

    const std::string& path() const { return path_; }

private:
    std::string path_;
};

Result<Mirror> parse_mirror(const FileParser& p, const toml::node& m) {
    const toml::table* mt = m.as_table();
    if (!mt) return fail(0, "{}: mirror entries must be tables", where(m.source(), p.path()));
    BERTH_TRY_VOID(p.check_keys(*mt, {"location", "insecure"}, "[[registry.mirror]]"));
    Mirror mirror{BERTH_TRY(p.location_key(*mt)), BERTH_TRY(p.bool_key(*mt, "insecure"))};
    if (mirror.location.empty()) return fail(0, "{}: a mirror needs location", where(mt->source(), p.path()));
    return mirror;
}

Result<RegistryEntry> parse_entry(const FileParser& p, const toml::node& node) {
    const toml::table* t = node.as_table();
    if (!t) return fail(0, "{}: registry entries must be tables", where(node.source(), p.path()));
    BERTH_TRY_VOID(p.check_keys(*t, {"prefix", "location", "insecure", "blocked", "mirror"}, "[[registry]]"));
    RegistryEntry entry;
    std::string prefix = BERTH_TRY(p.string_key(*t, "prefix"));
    if (!t->get("prefix")) return fail(0, "{}: [[registry]] needs prefix", where(t->source(), p.path()));
    auto parsed = parse_registry_prefix(prefix);
    if (!parsed)
        return fail(0,
                    "{}: prefix '{}' is not a registry[/repository] (e.g. \"quay.io\" or "
                    "\"localhost:5000/team\"; no tag or digest)",
                    where(t->get("prefix")->source(), p.path()), prefix);
    entry.prefix = parsed->repository();
    entry.location = BERTH_TRY(p.location_key(*t));
    if (entry.location.empty()) entry.location = entry.prefix;
    entry.insecure = BERTH_TRY(p.bool_key(*t, "insecure"));
    entry.blocked = BERTH_TRY(p.bool_key(*t, "blocked"));
    if (const toml::node* mirrors = t->get("mirror")) {
        const toml::array* ma = mirrors->as_array();
        if (!ma)
            return fail(0, "{}: mirror must be an array of tables ([[registry.mirror]])",
                        where(mirrors->source(), p.path()));
        for (const toml::node& m : *ma) entry.mirrors.push_back(BERTH_TRY(parse_mirror(p, m)));
    }
    return entry;
}

Result<> apply_file(RegistriesConfig& config, const std::string& path) {
    auto text = BERTH_TRY(read_file(path));
    toml::table root;
    try {
        root = toml::parse(text, path);
    } catch (const toml::parse_error& e) {
        return fail(0, "{}: invalid TOML: {}", where(e.source(), path), e.description());
    }
    FileParser p(path);
    BERTH_TRY_VOID(p.check_keys(root, {"default_registry", "certs_dir", "auth_file", "registry"}, ""));
    if (const toml::node* n = root.get("default_registry")) {
        std::string domain = BERTH_TRY(p.string_key(root, "default_registry"));
        // "" refuses short names; anything else is one registry, no path (short names get library/
        // on docker.io only).
        if (!domain.empty() && (domain.find('/') != std::string::npos || !parse_registry_prefix(domain)))
            return fail(0,
                        "{}: default_registry '{}' is not a registry host[:port] (or \"\" to refuse short "
                        "names)",
                        where(n->source(), path), domain);
        config.default_domain = domain.empty() ? domain : parse_registry_prefix(domain)->domain;
    }
    if (root.get("certs_dir")) config.certs_dir = BERTH_TRY(p.absolute_path_key(root, "certs_dir"));
    if (root.get("auth_file")) config.auth_file = BERTH_TRY(p.absolute_path_key(root, "auth_file"));
    if (const toml::node* regs = root.get("registry")) {
        const toml::array* array = regs->as_array();
        if (!array)
            return fail(0, "{}: registry must be an array of tables ([[registry]])",
                        where(regs->source(), path));
        std::vector<std::pair<std::string, int>> seen;  // prefix, line: twice in one file is a mistake
        for (const toml::node& node : *array) {
            RegistryEntry entry = BERTH_TRY(parse_entry(p, node));
            const toml::node* prefix_node = node.as_table()->get("prefix");
            for (auto& [prefix, line] : seen)
                if (prefix == entry.prefix)
                    return fail(0, "{}: prefix '{}' is declared twice (first at line {})",
                                where(prefix_node->source(), path), entry.prefix, line);
            seen.emplace_back(entry.prefix, static_cast<int>(prefix_node->source().begin.line));
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

// certs.d/<host[:port]>/ as Docker reads it: every *.crt is a CA; a client certificate is a
// *.cert with the *.key of the same name, and one without the other is an error (Docker's
// "missing key ... for client certificate ..."), not a certificate silently left out.
Result<TlsFiles> tls_files(const std::string& certs_dir, const std::string& host) {
    TlsFiles tls;
    std::string dir = path_join(certs_dir, host);
    for (const std::string& name : sorted_entries(dir, ".crt")) tls.ca_files.push_back(path_join(dir, name));
    auto stem = [](const std::string& name, size_t suffix) { return name.substr(0, name.size() - suffix); };
    for (const std::string& name : sorted_entries(dir, ".cert")) {
        std::string key = path_join(dir, stem(name, 5) + ".key");
        if (!path_exists(key))
            return fail(ENOENT, "certs.d: client certificate '{}' has no key '{}'", path_join(dir, name),
                        key);
        if (tls.client_cert.empty()) {
            tls.client_cert = path_join(dir, name);
            tls.client_key = key;
        }
    }
    for (const std::string& name : sorted_entries(dir, ".key"))
        if (!path_exists(path_join(dir, stem(name, 4) + ".cert")))
            return fail(ENOENT, "certs.d: key '{}' has no client certificate '{}'", path_join(dir, name),
                        path_join(dir, stem(name, 4) + ".cert"));
    return tls;
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
    // As distribution's ParseNormalizedNamed: the limit holds for the qualified name too (found
    // by fuzz-reference: a 250-character short name qualified past 255).
    if (q.repository().size() > 255)
        return fail(0, "'{}' qualified as '{}' is longer than 255 characters", ref.str(), q.repository());
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

    auto make = [&](std::string_view location, bool insecure, bool mirror) -> Result<Endpoint> {
        // location = host[:port][/path]; the part of the repository below the prefix is appended.
        std::string loc(location);
        Endpoint ep;
        auto slash = loc.find('/');
        ep.host = loc.substr(0, slash);
        // Docker Hub's API is not served at docker.io (an entry that only adds a mirror keeps it).
        if (ep.host == "docker.io" || ep.host == "index.docker.io") ep.host = "registry-1.docker.io";
        std::string base = slash == std::string::npos ? "" : loc.substr(slash + 1);
        std::string rest = qualified.path;
        if (best) {
            rest = repository.substr(best->prefix.size());
            if (!rest.empty() && rest.front() == '/') rest.erase(0, 1);
        }
        ep.path = base.empty() ? rest : (rest.empty() ? base : base + "/" + rest);
        ep.insecure = insecure;
        ep.mirror = mirror;
        ep.tls = BERTH_TRY(tls_files(config.certs_dir, ep.host));
        return ep;
    };

    std::vector<Endpoint> out;
    if (best) {
        for (const Mirror& m : best->mirrors) out.push_back(BERTH_TRY(make(m.location, m.insecure, true)));
        out.push_back(BERTH_TRY(make(best->location, best->insecure, false)));
    } else {
        out.push_back(BERTH_TRY(make(qualified.domain, false, false)));
    }
    return out;
}

}  // namespace berth::registry
