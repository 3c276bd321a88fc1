// Finding declarations on disk (search path precedence, drop-ins, masking) and the checks that
// need the whole set: dependencies on undeclared containers and dependency cycles.
#include <dirent.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <functional>
#include <set>

#include "basic/fs-private.h"
#include "basic/fs-util.h"
#include "basic/names.h"
#include "basic/string-util.h"
#include "config/config.h"

namespace berth::config {

namespace {

constexpr std::array<std::string_view, 12> kUnitSuffixes = {".service",   ".socket", ".target", ".mount",
                                                            ".automount", ".device", ".path",   ".timer",
                                                            ".slice",     ".scope",  ".swap",   ".busname"};

bool ends_with(std::string_view text, std::string_view suffix) {
    return text.size() >= suffix.size() && text.substr(text.size() - suffix.size()) == suffix;
}

// Names of the entries of `dir` ending in `suffix` (regular files or symlinks), sorted.
std::vector<std::string> list_dir(const std::string& dir, std::string_view suffix) {
    std::vector<std::string> out;
    DIR* d = ::opendir(dir.c_str());
    if (!d) return out;
    while (struct dirent* entry = ::readdir(d)) {
        std::string_view name = entry->d_name;
        if (name.empty() || name[0] == '.' || !ends_with(name, suffix) || name.size() == suffix.size())
            continue;
        out.emplace_back(name);
    }
    ::closedir(d);
    std::sort(out.begin(), out.end());
    return out;
}

// systemd's convention: a declaration symlinked to /dev/null (or empty drop-in name) is masked.
bool is_masked(const std::string& path) {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) return false;
    return S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3);
}

// The largest declaration or drop-in file read (1 MiB; real ones are a few hundred bytes). Files
// must be regular files (or a symlink to /dev/null, which masks): a FIFO, /dev/zero or a huge file
// is an error of that declaration, never a hang of the generator, which systemd waits for at boot.
constexpr size_t kMaxDeclarationSize = 1 << 20;

// Reads a declaration or drop-in without ever blocking (read_regular_file()). The errors
// read like the parser's, "FILE:1:1: ..., expected ...", so that they become the unit's error.
Result<SourceText> read_source(const std::string& path) {
    auto text = read_regular_file(path, kMaxDeclarationSize);
    if (text) return SourceText{path, std::move(*text)};
    const Error& e = text.error();
    if (e.code == EFBIG)
        return fail(
            0, "{}:1:1: the file is larger than {} bytes (1 MiB), expected a declaration of at most 1 MiB",
            path, kMaxDeclarationSize);
    if (e.code == EINVAL) {
        struct stat st {};
        std::string_view kind = ::stat(path.c_str(), &st) == 0 ? file_kind(st.st_mode) : "not a regular file";
        if (is_masked(path))
            return fail(0,
                        "{}:1:1: the declaration is masked (a symlink to /dev/null), expected a regular file",
                        path);
        return fail(0, "{}:1:1: the file is {}, expected a regular file (a symlink to /dev/null masks)", path,
                    kind);
    }
    return Unexpected(Error{e.code, path});
}

// Drop-ins for NAME from each dir, in lexical order of file name; the first directory wins for
// the same file name (so /etc can override or mask a /usr/lib drop-in).
std::vector<std::string> find_dropins(std::string_view name, const std::vector<std::string>& dirs) {
    std::map<std::string, std::string> by_file;
    for (const auto& dir : dirs) {
        std::string dropin_dir = path_join(dir, std::string(name) + ".toml.d");
        for (const auto& file : list_dir(dropin_dir, ".toml"))
            by_file.emplace(file, path_join(dropin_dir, file));
    }
    std::vector<std::string> out;
    for (const auto& [file, path] : by_file)
        if (!is_masked(path)) out.push_back(path);
    return out;
}

// Reads NAME's main file and drop-ins and hands them to `parse` (parse_declaration or
// parse_network_declaration): containers and networks load the same way.
template <class Parse>
auto load_from(std::string_view name, const std::string& main_path,
               const std::vector<std::string>& dropin_paths, Parse parse)
    -> decltype(parse(name, SourceText{}, std::vector<SourceText>{})) {
    auto main = read_source(main_path);
    if (!main) return Unexpected(main.error());
    std::vector<SourceText> dropins;
    for (const auto& p : dropin_paths) {
        auto d = read_source(p);
        if (!d) return Unexpected(d.error());
        dropins.push_back(std::move(*d));
    }
    return parse(name, *main, dropins);
}

Result<Declaration> load_from(std::string_view name, const std::string& main_path,
                              const std::vector<std::string>& dropin_paths) {
    return load_from(name, main_path, dropin_paths,
                     [](std::string_view n, const SourceText& m, const std::vector<SourceText>& d) {
                         return parse_declaration(n, m, d);
                     });
}

// NAME -> first NAME.toml in the search path (masked ones included: the caller skips them).
std::map<std::string, std::string> main_files(const SearchPaths& paths) {
    std::map<std::string, std::string> out;
    for (const auto& dir : paths.dirs)
        for (const auto& file : list_dir(dir, ".toml")) {
            std::string path = path_join(dir, file);
            if (is_directory(path)) continue;
            out.emplace(file.substr(0, file.size() - 5), path);
        }
    return out;
}

// The first NAME.toml in the search path; "" when there is none; ENOENT "KIND 'NAME' is masked".
Result<std::string> find_main(std::string_view kind, std::string_view name, const SearchPaths& paths) {
    for (const auto& dir : paths.dirs) {
        std::string path = path_join(dir, std::string(name) + ".toml");
        if (!path_exists(path)) continue;
        if (is_masked(path))
            return fail(ENOENT, "{} {} is masked ({} -> /dev/null)", kind, quote(name), path);
        return path;
    }
    return std::string();
}

std::string location(const Declaration& d, const std::string& key) {
    auto it = d.regions.find(key);
    if (it == d.regions.end()) return fmt::format("{}:1:1", d.source_path);
    return fmt::format("{}:{}:{}", it->second.file, it->second.line, it->second.column);
}

// Every (dependency entry, region key) of a declaration.
std::vector<std::pair<std::string, std::string>> dependencies(const Declaration& d) {
    std::vector<std::pair<std::string, std::string>> out;
    auto add = [&](const std::vector<std::string>& list, std::string_view key) {
        for (size_t i = 0; i < list.size(); ++i)
            out.emplace_back(list[i], fmt::format("service.{}.{}", key, i));
    };
    add(d.service.requires_, "requires");
    add(d.service.wants, "wants");
    add(d.service.after, "after");
    return out;
}

}  // namespace

static SearchPaths search_paths(const char* variable, std::string_view kind) {
    SearchPaths paths;
    if (const char* env = std::getenv(variable); env && *env) {
        paths.dirs = split(env, ':');
        return paths;
    }
    for (std::string_view root : {"/etc/berth/", "/run/berth/", "/usr/lib/berth/"})
        paths.dirs.push_back(fmt::format("{}{}", root, kind));
    return paths;
}

SearchPaths SearchPaths::system() { return search_paths("BERTH_CONTAINERS_PATH", "containers"); }

SearchPaths SearchPaths::networks() { return search_paths("BERTH_NETWORKS_PATH", "networks"); }

// ---- networks ------------------------------------------------------------------------------

static Result<NetworkDeclaration> load_network_from(std::string_view name, const std::string& path,
                                                    const SearchPaths& paths) {
    return load_from(name, path, find_dropins(name, paths.dirs),
                     [](std::string_view n, const SourceText& m, const std::vector<SourceText>& d) {
                         return parse_network_declaration(n, m, d);
                     });
}

NetworkDeclaration builtin_default_network() {
    NetworkDeclaration n;
    n.name = kDefaultNetwork;
    n.subnets = {"10.89.0.0/24"};
    n.builtin = true;
    return n;
}

Result<NetworkDeclaration> load_network(std::string_view name, const SearchPaths& paths) {
    auto path = find_main("network", name, paths);
    if (!path) return Unexpected(path.error());
    if (!path->empty()) return load_network_from(name, *path, paths);
    if (name == kDefaultNetwork) return builtin_default_network();
    return fail(ENOENT, "network {} is not declared, expected {}.toml in {}", quote(name), name,
                join(paths.dirs, ", "));
}

std::map<std::string, Result<NetworkDeclaration>> load_all_networks(const SearchPaths& paths) {
    std::map<std::string, Result<NetworkDeclaration>> out;
    bool default_masked = false;
    for (const auto& [name, path] : main_files(paths)) {
        if (is_masked(path)) {
            default_masked |= name == kDefaultNetwork;
            continue;
        }
        out.emplace(name, load_network_from(name, path, paths));
    }
    if (!default_masked && !out.count(kDefaultNetwork))
        out.emplace(kDefaultNetwork, builtin_default_network());
    return out;
}

bool is_valid_name(std::string_view name) {
    if (!is_valid_object_name(NameKind::Container, name)) return false;
    // "web.service" in a containers directory would read as a unit file, not a container.
    for (auto suffix : kUnitSuffixes)
        if (ends_with(name, suffix)) return false;
    return true;
}

bool is_unit_name(std::string_view dependency) {
    if (dependency.size() > 255) return false;
    for (auto suffix : kUnitSuffixes) {
        if (!ends_with(dependency, suffix) || dependency.size() == suffix.size()) continue;
        std::string_view stem = dependency.substr(0, dependency.size() - suffix.size());
        for (char c : stem)
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == ':' ||
                  c == '_' || c == '.' || c == '-' || c == '@' || c == '\\'))
                return false;
        // "foo@.service" is a template: it cannot be started or depended on.
        if (stem.back() == '@') return false;
        return true;
    }
    return false;
}

std::string dependency_unit(std::string_view dependency) {
    if (is_unit_name(dependency)) return std::string(dependency);
    return fmt::format("berth@{}.service", dependency);
}

bool is_template_name(std::string_view name) {
    return name.size() > 1 && name.back() == '@' && is_valid_name(name.substr(0, name.size() - 1));
}

// Instance "web@1": the template's file and drop-ins, then the instance's own file (`own`, "" when
// none) and drop-ins, parsed with %i expanded.
static Result<Declaration> load_instance(std::string_view name, const std::string& own,
                                         const SearchPaths& paths) {
    std::string templ(name.substr(0, name.find('@') + 1));
    auto template_path = find_main("template", templ, paths);
    if (!template_path) return Unexpected(template_path.error());
    if (template_path->empty())
        return fail(ENOENT, "{}container {} has no template, expected {}.toml in {}",
                    own.empty() ? "" : own + ":1:1: ", quote(name), templ, join(paths.dirs, ", "));
    std::vector<std::string> layers = find_dropins(templ, paths.dirs);
    if (!own.empty()) layers.push_back(own);
    for (auto& p : find_dropins(name, paths.dirs)) layers.push_back(std::move(p));
    return load_from(name, *template_path, layers,
                     [](std::string_view n, const SourceText& m, const std::vector<SourceText>& d) {
                         return parse_instance(n, m, d);
                     });
}

Result<Declaration> load_declaration(std::string_view name, const SearchPaths& paths) {
    auto path = find_main("container", name, paths);
    if (path && is_instance_name(name, kContainerNameMax)) return load_instance(name, *path, paths);
    if (!path) return Unexpected(path.error());
    if (path->empty())
        return fail(ENOENT, "container {} is not declared, expected {}.toml in {}", quote(name), name,
                    join(paths.dirs, ", "));
    return load_from(name, *path, find_dropins(name, paths.dirs));
}

Result<Declaration> load_declaration_file(const std::string& path, std::string_view name) {
    std::vector<std::string> dropins;
    std::string dropin_dir = path + ".d";
    for (const auto& file : list_dir(dropin_dir, ".toml")) {
        std::string p = path_join(dropin_dir, file);
        if (!is_masked(p)) dropins.push_back(p);
    }
    return load_from(name, path, dropins);
}

Result<Declaration> load_declaration_file(const std::string& path) {
    std::string base = path.substr(path.rfind('/') == std::string::npos ? 0 : path.rfind('/') + 1);
    if (!ends_with(base, ".toml") || base.size() == 5)
        return fail(0, "{}:1:1: declaration file name {} does not end in .toml, expected NAME.toml", path,
                    quote(base));
    std::string name = base.substr(0, base.size() - 5);
    // An instance file next to its template is that instance (berth validate /etc/.../web@1.toml).
    if (is_instance_name(name, kContainerNameMax)) {
        SearchPaths here;
        here.dirs = {path.rfind('/') == std::string::npos ? "." : path.substr(0, path.rfind('/'))};
        std::string templ = name.substr(0, name.find('@') + 1);
        if (path_exists(path_join(here.dirs[0], templ + ".toml"))) return load_instance(name, path, here);
    }
    return load_declaration_file(path, name);
}

LoadedSet load_all(const SearchPaths& paths) {
    LoadedSet set;
    auto files = main_files(paths);
    for (const auto& [name, path] : files) {
        if (is_masked(path)) continue;
        if (is_template_name(name))
            set.templates.emplace(name, load_from(name, path, find_dropins(name, paths.dirs)));
        else if (is_instance_name(name, kContainerNameMax))
            set.by_name.emplace(name, load_instance(name, path, paths));
        else
            set.by_name.emplace(name, load_from(name, path, find_dropins(name, paths.dirs)));
    }
    // A template's default instances exist without a file of their own (a masked one stays masked).
    for (const auto& [templ, result] : set.templates) {
        if (!result) continue;
        for (const auto& instance : result->install.default_instances) {
            std::string name = templ + instance;
            if (!files.count(name)) set.by_name.emplace(name, load_instance(name, "", paths));
        }
    }

    // Cross-declaration checks. Errors are added per declaration; an invalid dependency target is
    // still "declared" (its unit exists and fails), so only missing ones are errors here.
    std::map<std::string, std::vector<std::string>> extra_errors;
    std::map<std::string, std::vector<std::pair<std::string, std::string>>> edges;  // container deps only
    for (auto& [name, result] : set.by_name) {
        if (!result) continue;
        for (const auto& [entry, key] : dependencies(*result)) {
            if (is_unit_name(entry)) continue;
            if (!set.by_name.count(entry)) {
                extra_errors[name].push_back(fmt::format(
                    "{}: {}: container {} is not declared, expected the NAME of a declared container (a "
                    "{}.toml in "
                    "the search path) or a unit name such as \"{}.service\"",
                    location(*result, key), key.substr(0, key.rfind('.')), quote(entry), entry, entry));
                continue;
            }
            edges[name].emplace_back(entry, key);
        }
    }

    // Tarjan's strongly connected components: every container in a component of two or more is
    // part of a cycle (self-dependencies are rejected by the parser).
    std::map<std::string, int> index, low;
    std::set<std::string> on_stack;
    std::vector<std::string> stack;
    int counter = 0;
    std::vector<std::vector<std::string>> components;
    std::function<void(const std::string&)> strongconnect = [&](const std::string& v) {
        index[v] = low[v] = counter++;
        stack.push_back(v);
        on_stack.insert(v);
        for (const auto& [w, key] : edges[v]) {
            if (!index.count(w)) {
                strongconnect(w);
                low[v] = std::min(low[v], low[w]);
            } else if (on_stack.count(w)) {
                low[v] = std::min(low[v], index[w]);
            }
        }
        if (low[v] == index[v]) {
            std::vector<std::string> component;
            std::string w;
            do {
                w = stack.back();
                stack.pop_back();
                on_stack.erase(w);
                component.push_back(w);
            } while (w != v);
            if (component.size() > 1) components.push_back(component);
        }
    };
    for (const auto& [name, result] : set.by_name)
        if (result && !index.count(name)) strongconnect(name);

    for (const auto& component : components) {
        std::set<std::string> members(component.begin(), component.end());
        for (const auto& start : component) {
            // Shortest path back to `start` inside the component, for a readable "a -> b -> a".
            std::map<std::string, std::pair<std::string, std::string>> parent;  // node -> (prev, key)
            std::vector<std::string> queue = {start};
            std::string last;
            std::string closing_key;
            for (size_t qi = 0; qi < queue.size() && last.empty(); ++qi) {
                const std::string& v = queue[qi];
                for (const auto& [w, key] : edges[v]) {
                    if (!members.count(w)) continue;
                    if (w == start) {
                        last = v;
                        closing_key = key;
                        break;
                    }
                    if (!parent.count(w)) {
                        parent[w] = {v, key};
                        queue.push_back(w);
                    }
                }
            }
            std::vector<std::string> cycle = {start};
            for (std::string v = last; v != start; v = parent[v].first) cycle.insert(cycle.begin() + 1, v);
            cycle.push_back(start);
            // Point at the edge leaving `start`.
            std::string first_key = closing_key;
            for (const auto& [w, key] : edges[start])
                if (cycle.size() > 1 && w == cycle[1]) {
                    first_key = key;
                    break;
                }
            const Declaration& d = *set.by_name.at(start);
            extra_errors[start].push_back(
                fmt::format("{}: dependency cycle {}, expected requires/wants/after without cycles (each "
                            "orders the units)",
                            location(d, first_key), join(cycle, " -> ")));
        }
    }

    for (auto& [name, errors] : extra_errors) {
        auto& result = set.by_name.at(name);
        result = Unexpected(Error{0, join(errors, "\n")});
    }
    return set;
}

}  // namespace berth::config
