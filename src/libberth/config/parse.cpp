// The one translation unit that includes toml++ (slow to compile, throws): parses the main file and
// its drop-ins, merges them, and checks and converts the merged table into a Declaration.
//
// Merging keeps every node's source region (toml++ nodes keep it when moved, not when copied), so
// an error in a value that came from a drop-in points at the drop-in's line and column.
//
// The checker never stops at the first problem: it records every error with its position and
// carries on with the next key, so `berth validate` shows everything wrong with a file at once.
// Errors are sorted by file (main file first, then drop-ins in merge order), line and column.
#include <toml++/toml.h>

#include <algorithm>
#include <functional>
#include <set>

#include "basic/fs-util.h"
#include "basic/ip-util.h"
#include "basic/ip6-util.h"
#include "basic/names.h"
#include "basic/string-util.h"
#include "config/config.h"
#include "config/values.h"
#include "registry/reference.h"

namespace berth::config {

namespace {

struct Diagnostic {
    int file_index;
    int line;
    int column;
    std::string text;  // "FILE:LINE:COL: message"
};

struct Section {
    std::string_view name;
    std::vector<std::string_view> keys;
};

const std::vector<Section>& sections() {
    static const std::vector<Section> kSections = {
        {"container",
         {"image",
          "rootfs",
          "command",
          "environment",
          "environment_files",
          "user",
          "supplementary_groups",
          "workdir",
          "hostname",
          "ephemeral",
          "on_image_change",
          "read_only",
          "stop_signal",
          "stop_timeout",
          "notify",
          "init",
          "pull",
          "read_only_tmpfs",
          "shm_size",
          "timezone",
          "sysctl",
          "auto_update"}},
        {"mount", {"type", "source", "target", "read_only", "size", "mode"}},
        {"network",
         {"mode", "bridge", "address", "host_address", "gateway", "ports", "masquerade", "ip_forward",
          "networks", "add_hosts", "dns", "dns_search", "dns_options"}},
        {"resources",
         {"memory_max", "memory_high", "memory_swap_max", "cpu_weight", "cpu_quota", "allowed_cpus",
          "tasks_max", "io_weight", "limits"}},
        {"security",
         {"capabilities_add", "capabilities_drop", "seccomp", "no_new_privileges", "user_namespace",
          "devices", "mask", "unmask"}},
        {"service",
         {"restart", "restart_sec", "requires", "wants", "after", "timeout_start", "timeout_stop"}},
        {"install", {"wanted_by", "required_by", "default_instances"}},
        {"health",
         {"command", "interval", "timeout", "retries", "start_period", "start_interval", "on_failure",
          "watchdog", "reload_signal", "reload_command"}},
        {"secret", {"name", "source", "encrypted", "target", "mode", "uid", "gid", "environment"}},
        {"socket", {"listen", "type", "accept", "name"}},
    };
    return kSections;
}

// By name, not by position in sections(): a section added in between must not rename the others.
const Section& section(std::string_view name) {
    for (const Section& s : sections())
        if (s.name == name) return s;
    std::abort();  // a programming error: every parser names a section of sections()
}

const char* type_name(const toml::node& node) {
    switch (node.type()) {
        case toml::node_type::string:
            return "a string";
        case toml::node_type::integer:
            return "an integer";
        case toml::node_type::floating_point:
            return "a float";
        case toml::node_type::boolean:
            return "a boolean";
        case toml::node_type::date:
            return "a date";
        case toml::node_type::time:
            return "a time";
        case toml::node_type::date_time:
            return "a date-time";
        case toml::node_type::array:
            return "an array";
        case toml::node_type::table:
            return "a table";
        default:
            return "nothing";
    }
}

class Checker {
public:
    Checker(std::string_view name, std::vector<std::string> files) : files_(std::move(files)) {
        declaration.name = std::string(name);
    }

    Declaration declaration;
    // Set for a template's instance (or a template checked with its sample instance): what %i
    // expands to, and named in every error, since one template gives each instance its values.
    std::string instance;
    // A template itself (web@.toml, checked with its sample instance).
    bool is_template = false;
    // Only a template's files may list [install] default_instances.
    bool allow_default_instances = false;

    void error(const toml::source_region& where, std::string message) {
        std::string file = where.path ? *where.path : files_.front();
        int index = 0;
        for (size_t i = 0; i < files_.size(); ++i)
            if (files_[i] == file) index = static_cast<int>(i);
        int line = static_cast<int>(where.begin.line ? where.begin.line : 1);
        int column = static_cast<int>(where.begin.column ? where.begin.column : 1);
        diagnostics_.push_back(
            {index, line, column, fmt::format("{}:{}:{}: {}", file, line, column, message)});
    }
    void error(const toml::node& node, std::string message) { error(node.source(), std::move(message)); }
    // At a region remember()ed earlier: for checks that need the whole declaration parsed first.
    void error(const SourceRegion& at, std::string message) {
        toml::source_region where{};
        where.path = std::make_shared<const std::string>(at.file);
        where.begin = {static_cast<toml::source_index>(at.line), static_cast<toml::source_index>(at.column)};
        error(where, std::move(message));
    }

    bool failed() const { return !diagnostics_.empty(); }

    Error to_error() {
        std::stable_sort(
            diagnostics_.begin(), diagnostics_.end(), [](const Diagnostic& a, const Diagnostic& b) {
                return std::tie(a.file_index, a.line, a.column) < std::tie(b.file_index, b.line, b.column);
            });
        std::vector<std::string> lines;
        std::string suffix;
        if (is_template)
            suffix = fmt::format(" (template {} checked as its instance {})", quote(declaration.name),
                                 quote(declaration.name + instance));
        else if (!instance.empty())
            suffix = fmt::format(" (instance {})", quote(declaration.name));
        for (auto& d : diagnostics_)
            if (lines.empty() || lines.back() != d.text + suffix) lines.push_back(d.text + suffix);
        return Error{0, join(lines, "\n")};
    }

    void remember(const std::string& key, const toml::source_region& where) {
        SourceRegion region;
        region.file = where.path ? *where.path : files_.front();
        region.line = static_cast<int>(where.begin.line);
        region.column = static_cast<int>(where.begin.column);
        declaration.regions[key] = std::move(region);
    }

    SourceRegion region_of(const toml::node& node) {
        const auto& where = node.source();
        return SourceRegion{where.path ? *where.path : files_.front(), static_cast<int>(where.begin.line),
                            static_cast<int>(where.begin.column)};
    }

    // --- typed getters: each reports "wrong type" itself and returns nullopt ---

    std::optional<std::string> string(const toml::node& node, std::string_view key,
                                      std::string_view expected = "a string") {
        if (auto s = node.as_string()) return s->get();
        error(node, fmt::format("{} is {}, expected {}", key, type_name(node), expected));
        return std::nullopt;
    }

    // One of a few words ("started" or "container"), each standing for a value of E.
    template <class E>
    std::optional<E> choice(const toml::node& node, std::string_view key,
                            std::initializer_list<std::pair<std::string_view, E>> words) {
        std::string expected;
        for (const auto& [word, _] : words)
            expected += (expected.empty() ? "\"" : " or \"") + std::string(word) + "\"";
        auto s = string(node, key, expected);
        if (!s) return std::nullopt;
        for (const auto& [word, value] : words)
            if (*s == word) return value;
        error(node, fmt::format("{} = {} is unknown, expected {}", key, quote(*s), expected));
        return std::nullopt;
    }

    std::optional<bool> boolean(const toml::node& node, std::string_view key) {
        if (auto b = node.as_boolean()) return b->get();
        error(node, fmt::format("{} is {}, expected true or false", key, type_name(node)));
        return std::nullopt;
    }

    std::optional<int64_t> integer(const toml::node& node, std::string_view key, int64_t min, int64_t max) {
        if (auto i = node.as_integer()) {
            int64_t v = i->get();
            if (v < min || v > max) {
                error(node, fmt::format("{} = {} is out of range, expected an integer from {} to {}", key, v,
                                        min, max));
                return std::nullopt;
            }
            return v;
        }
        error(node,
              fmt::format("{} is {}, expected an integer from {} to {}", key, type_name(node), min, max));
        return std::nullopt;
    }

    std::optional<std::vector<std::string>> strings(const toml::node& node, std::string_view key,
                                                    std::string_view element = "strings") {
        auto array = node.as_array();
        if (!array) {
            error(node, fmt::format("{} is {}, expected an array of {}", key, type_name(node), element));
            return std::nullopt;
        }
        std::vector<std::string> out;
        bool ok = true;
        for (size_t i = 0; i < array->size(); ++i) {
            const toml::node& item = *array->get(i);
            if (auto s = item.as_string()) {
                out.push_back(s->get());
            } else {
                error(item, fmt::format("{}[{}] is {}, expected a string", key, i, type_name(item)));
                ok = false;
            }
        }
        if (!ok) return std::nullopt;
        return out;
    }

    // An array of strings, keeping those `valid` accepts and reporting each other one as
    // "KEY[i] = 'x' is not WHAT, expected EXPECTED".
    std::vector<std::string> valid_strings(const toml::node& node, std::string_view key,
                                           std::string_view element, bool (*valid)(std::string_view),
                                           std::string_view what, std::string_view expected) {
        std::vector<std::string> out;
        auto list = strings(node, key, element);
        if (!list) return out;
        for (size_t i = 0; i < list->size(); ++i) {
            if (valid((*list)[i]))
                out.push_back((*list)[i]);
            else
                error(*node.as_array()->get(i), fmt::format("{}[{}] = {} is not {}, expected {}", key, i,
                                                            quote((*list)[i]), what, expected));
        }
        return out;
    }

    std::optional<std::string> absolute_path(const toml::node& node, std::string_view key) {
        auto s = string(node, key, "an absolute path");
        if (!s) return std::nullopt;
        if (s->empty() || (*s)[0] != '/' || s->find('\0') != std::string::npos) {
            error(node, fmt::format(
                            "{} = {} is not an absolute path, expected an absolute path (starting with '/')",
                            key, quote(*s)));
            return std::nullopt;
        }
        return normalize_absolute_path(*s);
    }

    // An array of absolute paths, normalised; each bad element is reported as KEY[i] and left out.
    std::vector<std::string> absolute_paths(const toml::node& node, std::string_view key) {
        std::vector<std::string> out;
        auto array = node.as_array();
        if (!array) {
            error(node, fmt::format("{} is {}, expected an array of absolute paths", key, type_name(node)));
            return out;
        }
        for (size_t i = 0; i < array->size(); ++i)
            if (auto p = absolute_path(*array->get(i), fmt::format("{}[{}]", key, i))) out.push_back(*p);
        return out;
    }

    std::optional<uint64_t> size(const toml::node& node, std::string_view key, bool allow_infinity) {
        std::string_view expected =
            allow_infinity
                ? "bytes as an integer, a size such as \"512M\" or \"1G\" (K, M, G, T, P, E), or \"infinity\""
                : "bytes as an integer or a size such as \"512M\" or \"1G\" (K, M, G, T, P, E)";
        if (auto i = node.as_integer()) {
            if (i->get() < 0) {
                error(node, fmt::format("{} = {} is negative, expected {}", key, i->get(), expected));
                return std::nullopt;
            }
            return static_cast<uint64_t>(i->get());
        }
        auto s = node.as_string();
        if (!s) {
            error(node, fmt::format("{} is {}, expected {}", key, type_name(node), expected));
            return std::nullopt;
        }
        auto value = parse_size(s->get(), allow_infinity);
        if (!value)
            error(node,
                  fmt::format("{} = {} is not a valid size, expected {}", key, quote(s->get()), expected));
        return value;
    }

    std::optional<uint64_t> duration(const toml::node& node, std::string_view key, bool allow_infinity) {
        std::string_view expected =
            allow_infinity ? "seconds as an integer, a duration such as \"30s\", \"5min\" or \"1h 30min\", "
                             "or \"infinity\""
                           : "seconds as an integer or a duration such as \"30s\", \"5min\" or \"1h 30min\"";
        if (auto i = node.as_integer()) {
            int64_t v = i->get();
            if (v < 0 || v > static_cast<int64_t>(UINT64_MAX / 1000000 - 1)) {
                error(node, fmt::format("{} = {} is out of range, expected {}", key, v, expected));
                return std::nullopt;
            }
            return static_cast<uint64_t>(v) * 1000000;
        }
        auto s = node.as_string();
        if (!s) {
            error(node, fmt::format("{} is {}, expected {}", key, type_name(node), expected));
            return std::nullopt;
        }
        auto value = parse_duration_us(s->get(), allow_infinity);
        if (!value)
            error(node, fmt::format("{} = {} is not a valid duration, expected {}", key, quote(s->get()),
                                    expected));
        return value;
    }

    // A signal written as a name ("SIGTERM", "TERM") or a number.
    std::optional<int> signal(const toml::node& node, std::string_view key) {
        std::optional<int> sig;
        if (auto i = node.as_integer()) {
            if (i->get() >= 1 && i->get() <= 64) sig = parse_signal(fmt::format("{}", i->get()));
        } else if (auto s = node.as_string()) {
            sig = parse_signal(s->get());
        }
        if (!sig) {
            std::string shown = node.is_string()    ? quote(node.as_string()->get())
                                : node.is_integer() ? fmt::format("{}", node.as_integer()->get())
                                                    : std::string(type_name(node));
            error(node, fmt::format("{} = {} is not a signal, expected a signal name such as \"SIGTERM\" or "
                                    "\"INT\", or a number",
                                    key, shown));
        }
        return sig;
    }

    // Octal permissions up to `max`: a string of octal digits or an octal integer literal.
    std::optional<uint32_t> mode(const toml::node& node, std::string_view key, uint32_t max,
                                 std::string_view string_example, std::string_view integer_example) {
        std::optional<unsigned long long> mode;
        if (auto s = node.as_string()) {
            const std::string& text = s->get();
            if (!text.empty() && text.size() <= 4 &&
                std::all_of(text.begin(), text.end(), [](char ch) { return ch >= '0' && ch <= '7'; }))
                mode = std::stoull(text, nullptr, 8);
        } else if (auto i = node.as_integer()) {
            // Only an octal literal (0o1777) means what it says; decimal 1777 is a trap.
            if ((i->flags() & toml::value_flags::format_as_octal) != toml::value_flags::none && i->get() >= 0)
                mode = static_cast<unsigned long long>(i->get());
        }
        if (!mode || *mode > max) {
            error(node, fmt::format("{} is invalid, expected octal permissions as a string such as {} "
                                    "or an octal integer such as {}",
                                    key, string_example, integer_example));
            return std::nullopt;
        }
        return static_cast<uint32_t>(*mode);
    }

    // Reports unknown keys of a table with a "did you mean" hint; returns false if any.
    void unknown_key(const toml::key& key, std::string_view section,
                     const std::vector<std::string_view>& known) {
        std::string hint = did_you_mean(key.str(), known);
        std::string message;
        std::string where = section.empty() ? "at the top level" : fmt::format("in [{}]", section);
        if (!hint.empty()) {
            message = fmt::format("unknown key {} {}, expected a known key; did you mean {}?",
                                  quote(key.str()), where, quote(hint));
        } else {
            // Right key, wrong section?
            std::string home;
            for (const auto& s : sections())
                for (auto k : s.keys)
                    if (k == key.str() && s.name != section) home = std::string(s.name);
            if (!home.empty())
                message = fmt::format("unknown key {} {}, expected it in [{}]; did you mean [{}] {}?",
                                      quote(key.str()), where, home, home, key.str());
            else
                message = fmt::format("unknown key {} {}, expected one of: {}", quote(key.str()), where,
                                      join(std::vector<std::string>(known.begin(), known.end()), ", "));
        }
        error(key.source(), std::move(message));
    }

private:
    std::vector<std::string> files_;
    std::vector<Diagnostic> diagnostics_;
};

// Tables merge key by key; everything else (scalars, arrays, arrays of tables) replaces.
void merge_into(toml::table& base, toml::table&& overlay) {
    for (auto&& [key, node] : overlay) {
        toml::node* existing = base.get(key.str());
        if (existing && existing->is_table() && node.is_table()) {
            merge_into(*existing->as_table(), std::move(*node.as_table()));
        } else {
            base.insert_or_assign(key, std::move(node));
        }
    }
}

bool is_container_dependency_ok(std::string_view entry) {
    return is_unit_name(entry) || is_valid_name(entry);
}

// A local image id, or a reference as the distribution grammar defines it (registry/reference.h):
// "web", "web:v1", "docker.io/library/nginx:1.27", "host:5000/team/app@sha256:...".
void check_image_reference(Checker& c, const toml::node& node, const std::string& image) {
    if (image.rfind("sha256:", 0) == 0) {
        std::string_view hex = std::string_view(image).substr(7);
        if (hex.size() != 64 || !std::all_of(hex.begin(), hex.end(), [](char ch) {
                return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f');
            }))
            c.error(node,
                    fmt::format("container.image = {} is not a valid image id, expected \"sha256:\" and 64 "
                                "lowercase hex digits",
                                quote(image)));
        return;
    }
    if (auto ref = registry::parse_reference(image); !ref)
        c.error(node,
                fmt::format("container.image = {} is not a valid image reference ({}), expected NAME[:TAG], "
                            "REGISTRY/NAME[:TAG][@sha256:DIGEST] or sha256:ID",
                            quote(image.substr(0, 300)), ref.error().what()));
}

// [container] sysctl = { "net.core.somaxconn" = 1024 }: the namespace check for net.* waits for
// [network] mode (convert()).
void parse_sysctl(Checker& c, const toml::node& node, const std::string& path) {
    auto table = node.as_table();
    if (!table) {
        c.error(node, fmt::format("{} is {}, expected a table of \"name\" = value", path, type_name(node)));
        return;
    }
    for (auto&& [key, value] : *table) {
        std::string name(key.str());
        std::string at = fmt::format("{}.{}", path, quote(name));
        // Checked with mode = none here; a net.* key under mode = "host" is refused in convert().
        if (std::string why = sysctl_refusal(name, NetworkMode::None); !why.empty()) {
            c.error(key.source(), fmt::format("{} {}", at, why));
            continue;
        }
        std::optional<std::string> text;
        if (auto str = value.as_string())
            text = str->get();
        else if (auto i = value.as_integer())
            text = fmt::format("{}", i->get());
        if (!text || !is_valid_sysctl_value(*text)) {
            c.error(value, fmt::format("{} is {}, expected a one-line value such as \"1\" or \"4096 87380\" "
                                       "(or an integer)",
                                       at, text ? quote(*text) : std::string(type_name(value))));
            continue;
        }
        c.remember(fmt::format("{}.{}", path, name), key.source());
        c.declaration.sysctl[name] = *text;
    }
}

void parse_container(Checker& c, const toml::table& table, const toml::node* container_node,
                     const toml::node*& image_node, const toml::node*& rootfs_node) {
    Declaration& d = c.declaration;
    const auto& keys = section("container").keys;
    for (auto&& [key, node] : table) {
        const std::string k(key.str());
        std::string path = "container." + k;
        c.remember(path, key.source());
        if (k == "image") {
            if (auto s = c.string(node, path)) {
                d.image = *s;
                image_node = &node;
                check_image_reference(c, node, *s);
            }
        } else if (k == "rootfs") {
            if (auto s = c.absolute_path(node, path)) {
                d.rootfs = *s;
                rootfs_node = &node;
            }
        } else if (k == "command") {
            if (auto v = c.strings(node, path)) {
                if (v->empty())
                    c.error(node,
                            "container.command is empty, expected at least the program to run (or leave it "
                            "out for the image's default)");
                d.command = *v;
            }
        } else if (k == "environment") {
            auto env = node.as_table();
            if (!env) {
                c.error(node,
                        fmt::format("{} is {}, expected a table of NAME = \"value\"", path, type_name(node)));
                continue;
            }
            for (auto&& [ek, ev] : *env) {
                std::string name(ek.str());
                std::string ep = path + "." + name;
                if (!is_valid_env_name(ek.str())) {
                    c.error(ek.source(),
                            fmt::format("environment variable name {} is invalid, expected letters, "
                                        "digits and '_', not starting with a digit",
                                        quote(ek.str())));
                    continue;
                }
                if (auto s = ev.as_string()) {
                    if (s->get().find('\0') != std::string::npos)
                        c.error(ev, fmt::format("{} contains a NUL byte, expected text", ep));
                    else
                        d.environment[name] = s->get();
                } else if (auto i = ev.as_integer()) {
                    d.environment[name] = fmt::format("{}", i->get());
                } else if (auto b = ev.as_boolean()) {
                    d.environment[name] = b->get() ? "true" : "false";
                } else {
                    c.error(ev, fmt::format("{} is {}, expected a string (or an integer or boolean)", ep,
                                            type_name(ev)));
                }
            }
        } else if (k == "environment_files") {
            d.environment_files = c.absolute_paths(node, path);
        } else if (k == "user") {
            if (auto s = c.string(node, path, "\"user\", \"uid\", \"uid:gid\" or \"user:group\"")) {
                auto colon = s->find(':');
                std::string user = s->substr(0, colon);
                std::string group = colon == std::string::npos ? "" : s->substr(colon + 1);
                if (!is_valid_account(user) || (colon != std::string::npos && !is_valid_account(group)))
                    c.error(node, fmt::format("container.user = {} is invalid, expected \"user\", \"uid\", "
                                              "\"uid:gid\" or \"user:group\"",
                                              quote(*s)));
                else
                    d.user = UserSpec{user, group};
            }
        } else if (k == "supplementary_groups") {
            if (auto v = c.strings(node, path, "group names or gids")) {
                for (const auto& g : *v)
                    if (!is_valid_account(g))
                        c.error(node,
                                fmt::format("container.supplementary_groups has invalid group {}, expected a "
                                            "group name or gid",
                                            quote(g)));
                d.supplementary_groups = *v;
            }
        } else if (k == "workdir") {
            if (auto p = c.absolute_path(node, path)) d.workdir = *p;
        } else if (k == "hostname") {
            if (auto s = c.string(node, path)) {
                if (!is_valid_hostname(*s))
                    c.error(node,
                            fmt::format("container.hostname = {} is invalid, expected at most 64 letters, "
                                        "digits, '-', '_' and '.'",
                                        quote(*s)));
                else
                    d.hostname = *s;
            }
        } else if (k == "ephemeral") {
            if (auto b = c.boolean(node, path)) d.ephemeral = *b;
        } else if (k == "on_image_change") {
            if (auto v = c.choice<OnImageChange>(
                    node, path, {{"recreate", OnImageChange::Recreate}, {"keep", OnImageChange::Keep}}))
                d.on_image_change = *v;
        } else if (k == "pull") {
            if (auto v = c.choice<registry::PullPolicy>(node, path,
                                                        {{"missing", registry::PullPolicy::Missing},
                                                         {"always", registry::PullPolicy::Always},
                                                         {"never", registry::PullPolicy::Never},
                                                         {"newer", registry::PullPolicy::Newer}}))
                d.pull = *v;
        } else if (k == "auto_update") {
            if (auto v = c.choice<registry::AutoUpdateMode>(node, path,
                                                            {{"registry", registry::AutoUpdateMode::Registry},
                                                             {"local", registry::AutoUpdateMode::Local},
                                                             {"off", registry::AutoUpdateMode::Off}}))
                d.auto_update = *v;
        } else if (k == "read_only") {
            if (auto b = c.boolean(node, path)) d.read_only = *b;
        } else if (k == "init") {
            if (auto b = c.boolean(node, path)) d.init = *b;
        } else if (k == "stop_signal") {
            if (auto sig = c.signal(node, path)) d.stop_signal = *sig;
        } else if (k == "stop_timeout") {
            if (auto v = c.duration(node, path, true)) d.stop_timeout_us = *v;
        } else if (k == "read_only_tmpfs") {
            if (auto b = c.boolean(node, path)) d.read_only_tmpfs = *b;
        } else if (k == "shm_size") {
            if (auto v = c.size(node, path, false)) {
                if (*v < 4096)
                    c.error(node, fmt::format("{} = {} is too small, expected at least 4096 bytes (\"4K\")",
                                              path, *v));
                else
                    d.shm_size = *v;
            }
        } else if (k == "timezone") {
            if (auto s = c.string(node, path, "\"host\" or a zone name such as \"Europe/Paris\"")) {
                if (is_valid_timezone(*s))
                    d.timezone = *s;
                else
                    c.error(node, fmt::format("{} = {} is not a time zone name, expected \"host\" or a zone "
                                              "name under {} such as \"Europe/Paris\" or \"UTC\"",
                                              path, quote(*s), kZoneinfoDir));
            }
        } else if (k == "sysctl") {
            parse_sysctl(c, node, path);
        } else if (k == "notify") {
            if (auto v = c.choice<NotifyMode>(node, path,
                                              {{"started", NotifyMode::Started},
                                               {"container", NotifyMode::Container},
                                               {"healthy", NotifyMode::Healthy}}))
                d.notify = *v;
        } else {
            c.unknown_key(key, "container", keys);
        }
    }
    (void)container_node;
}

// What every [[array]] entry's parser starts from: the entry's known keys and its "name[i]".
struct ArrayEntry {
    const std::vector<std::string_view>& keys;
    std::string prefix;
};

ArrayEntry array_entry(std::string_view name, size_t index) {
    const Section& s = section(name);
    return ArrayEntry{s.keys, fmt::format("{}[{}]", s.name, index)};
}

void parse_mount(Checker& c, const toml::table& table, size_t index) {
    const auto [keys, prefix] = array_entry("mount", index);
    Mount m;
    m.where = c.region_of(table);
    const toml::node* type_node = nullptr;
    const toml::node* source_node = nullptr;
    const toml::node* size_node = nullptr;
    const toml::node* mode_node = nullptr;
    bool type_ok = true;
    for (auto&& [key, node] : table) {
        const std::string k(key.str());
        std::string path = prefix + "." + k;
        if (k == "type") {
            type_node = &node;
            if (auto s = c.string(node, path, "\"bind\", \"tmpfs\" or \"volume\"")) {
                if (*s == "bind")
                    m.type = MountType::Bind;
                else if (*s == "tmpfs")
                    m.type = MountType::Tmpfs;
                else if (*s == "volume")
                    m.type = MountType::Volume;
                else {
                    c.error(node,
                            fmt::format("{} = {} is unknown, expected \"bind\", \"tmpfs\" or \"volume\"",
                                        path, quote(*s)));
                    type_ok = false;
                }
            } else {
                type_ok = false;
            }
        } else if (k == "source") {
            source_node = &node;
        } else if (k == "target") {
            if (auto p = c.absolute_path(node, path)) m.target = *p;
        } else if (k == "read_only") {
            if (auto b = c.boolean(node, path)) m.read_only = *b;
        } else if (k == "size") {
            size_node = &node;
            if (auto v = c.size(node, path, false)) m.size = *v;
        } else if (k == "mode") {
            mode_node = &node;
            if (auto mode = c.mode(node, path, 07777, "\"1777\"", "0o1777")) m.mode = *mode;
        } else {
            c.unknown_key(key, "[mount]", keys);
        }
    }
    if (!type_node) {
        c.error(table,
                fmt::format("{} has no type, expected type = \"bind\", \"tmpfs\" or \"volume\"", prefix));
        type_ok = false;
    }
    if (!table.get("target"))
        c.error(table,
                fmt::format("{} has no target, expected an absolute path inside the container", prefix));
    if (type_ok) {
        std::string sp = prefix + ".source";
        switch (m.type) {
            case MountType::Bind:
                if (!source_node)
                    c.error(table,
                            fmt::format("{} (bind) has no source, expected an absolute host path", prefix));
                else if (auto p = c.absolute_path(*source_node, sp))
                    m.source = *p;
                break;
            case MountType::Volume:
                if (!source_node) {
                    c.error(table, fmt::format("{} (volume) has no source, expected a volume name", prefix));
                } else if (auto s = c.string(*source_node, sp, "a volume name")) {
                    if (!is_valid_volume_name(*s))
                        c.error(*source_node, fmt::format("{} = {} is not a valid volume name, expected {}",
                                                          sp, quote(*s), name_rule(NameKind::Volume)));
                    else
                        m.source = *s;
                }
                break;
            case MountType::Tmpfs:
                if (source_node)
                    c.error(*source_node, fmt::format("{} is set for a tmpfs mount, expected no source", sp));
                break;
        }
        if (m.type != MountType::Tmpfs) {
            if (size_node)
                c.error(*size_node,
                        fmt::format("{}.size applies to tmpfs mounts only, expected no size here", prefix));
            if (mode_node)
                c.error(*mode_node,
                        fmt::format("{}.mode applies to tmpfs mounts only, expected no mode here", prefix));
        }
    }
    c.declaration.mounts.push_back(std::move(m));
}

// [network] networks = ["app", { name = "db", address = "10.89.1.5", aliases = ["pg"] }]
void parse_memberships(Checker& c, const toml::node& node, std::vector<NetworkMembership>& out) {
    constexpr std::string_view expected =
        "an array of network names or { name = \"NAME\", address = \"A.B.C.D\", aliases = [...] }";
    auto array = node.as_array();
    if (!array) {
        c.error(node, fmt::format("network.networks is {}, expected {}", type_name(node), expected));
        return;
    }
    for (size_t i = 0; i < array->size(); ++i) {
        const toml::node& item = *array->get(i);
        std::string path = fmt::format("network.networks[{}]", i);
        NetworkMembership m;
        const toml::node* name_node = &item;
        if (auto word = item.as_string()) {
            m.network = word->get();
        } else if (auto t = item.as_table()) {
            name_node = t->get("name");
            for (auto&& [key, value] : *t) {
                const std::string k(key.str());
                std::string kpath = path + "." + k;
                if (k == "name") {
                    if (auto s = c.string(value, kpath, "a network name")) m.network = *s;
                } else if (k == "address") {
                    // For the check against the network's subnet, which needs the network's
                    // declaration (network::check_static_address).
                    c.remember(fmt::format("network.networks.{}.address", out.size()), value.source());
                    if (auto s = c.string(value, kpath, "an IPv4 address such as \"10.89.0.5\"")) {
                        auto a = parse_ipv4(*s);
                        if (!a || !usable_host_address(Ipv4Cidr{*a, 32}))
                            c.error(value,
                                    fmt::format("{} = {} is invalid, expected a host's IPv4 address such "
                                                "as \"10.89.0.5\" (the prefix is the network's)",
                                                kpath, quote(*s)));
                        else
                            m.address = *s;
                    }
                } else if (k == "aliases") {
                    m.aliases = c.valid_strings(value, kpath, "host names", is_valid_hostname, "a host name",
                                                "letters, digits, '-' and '.' (at most 64)");
                } else {
                    c.unknown_key(key, "network.networks", {"name", "address", "aliases"});
                }
            }
            if (!name_node) {
                c.error(item, fmt::format("{} has no name, expected name = \"NAME\"", path));
                continue;
            }
        } else {
            c.error(item, fmt::format("{} is {}, expected {}", path, type_name(item), expected));
            continue;
        }
        if (m.network.empty()) continue;  // reported above
        if (!is_valid_name(m.network)) {
            c.error(*name_node, fmt::format("{} names network {}, expected {}", path, quote(m.network),
                                            name_rule(NameKind::Container)));
            continue;
        }
        bool twice = std::any_of(out.begin(), out.end(), [&](auto& o) { return o.network == m.network; });
        if (twice) {
            c.error(*name_node, fmt::format("{} joins network {} again, expected each network once", path,
                                            quote(m.network)));
            continue;
        }
        out.push_back(std::move(m));
    }
}

void parse_network(Checker& c, const toml::table& table) {
    Network& n = c.declaration.network;
    const auto& keys = section("network").keys;
    const toml::node* mode_node = nullptr;
    const toml::node* bridge_node = nullptr;
    const toml::node* masquerade_node = nullptr;
    const toml::node* networks_node = nullptr;
    std::vector<const toml::node*> netns_only;  // settings that need an own veth/bridge
    std::vector<std::string> netns_only_keys;
    for (auto&& [key, node] : table) {
        const std::string k(key.str());
        std::string path = "network." + k;
        c.remember(path, key.source());
        if (k == "mode") {
            mode_node = &node;
            if (auto s = c.string(node, path, "\"none\", \"host\", \"veth\", \"bridge\" or \"network\"")) {
                if (*s == "none")
                    n.mode = NetworkMode::None;
                else if (*s == "host")
                    n.mode = NetworkMode::Host;
                else if (*s == "veth")
                    n.mode = NetworkMode::Veth;
                else if (*s == "bridge")
                    n.mode = NetworkMode::Bridge;
                else if (*s == "network")
                    n.mode = NetworkMode::Network;
                else
                    c.error(node, fmt::format("network.mode = {} is unknown, expected \"none\", \"host\", "
                                              "\"veth\", \"bridge\" or \"network\"",
                                              quote(*s)));
            }
        } else if (k == "bridge") {
            bridge_node = &node;
            if (auto s = c.string(node, path, "a host bridge interface name")) {
                if (!is_valid_ifname(*s))
                    c.error(node,
                            fmt::format("network.bridge = {} is not an interface name, expected 1 to 15 "
                                        "characters without '/', ':' or spaces",
                                        quote(*s)));
                else
                    n.bridge = *s;
            }
        } else if (k == "address" || k == "host_address") {
            netns_only.push_back(&node);
            netns_only_keys.push_back(path);
            if (auto s = c.string(node, path, "an address with prefix length such as \"10.0.0.2/24\"")) {
                if (!is_valid_cidr_address(*s))
                    c.error(node,
                            fmt::format("{} = {} is invalid, expected an address with prefix length such as "
                                        "\"10.0.0.2/24\"",
                                        path, quote(*s)));
                else
                    (k == "address" ? n.address : n.host_address) = *s;
            }
        } else if (k == "gateway") {
            netns_only.push_back(&node);
            netns_only_keys.push_back(path);
            if (auto s = c.string(node, path, "an IP address")) {
                if (!is_valid_ip_address(*s))
                    c.error(
                        node,
                        fmt::format(
                            "network.gateway = {} is invalid, expected an IP address such as \"10.0.0.1\"",
                            quote(*s)));
                else
                    n.gateway = *s;
            }
        } else if (k == "ports") {
            netns_only.push_back(&node);
            netns_only_keys.push_back(path);
            auto array = node.as_array();
            if (!array) {
                c.error(node,
                        fmt::format("network.ports is {}, expected an array of \"HOSTPORT:PORT[/tcp|udp]\"",
                                    type_name(node)));
                continue;
            }
            std::vector<size_t> index_of;  // n.ports[j] came from network.ports[index_of[j]]
            for (size_t i = 0; i < array->size(); ++i) {
                const toml::node& item = *array->get(i);
                auto s = c.string(item, fmt::format("network.ports[{}]", i),
                                  "\"[HOSTIP:]HOSTPORT:PORT[/tcp|udp]\"");
                if (!s) continue;
                auto port = parse_port_mapping(*s);
                if (auto v6 = port ? parse_ipv6(port->host_address) : std::nullopt;
                    v6 && is_loopback(*v6) && port->protocol != "tcp") {
                    // docs/NETWORKING.md, "IPv6": the reply, un-NATed to ::1, is dropped by routing;
                    // TCP there goes through a loopback proxy, which is TCP only.
                    c.error(item, fmt::format("network.ports[{}] = {} publishes UDP on ::1, expected "
                                              "\"127.0.0.1:...\" (IPv6 never routes a loopback address to a "
                                              "container, and berth's loopback proxy for TCP is TCP only)",
                                              i, quote(*s)));
                    continue;
                }
                if (port) {
                    // The second bind of the same host port fails at the start (EADDRINUSE from
                    // nftables' view: the first rule wins silently), so it is an error here.
                    for (size_t j = 0; j < n.ports.size(); ++j) {
                        const PortMapping& seen = n.ports[j];
                        bool same_address = seen.host_address.empty() || port->host_address.empty() ||
                                            seen.host_address == port->host_address;
                        if (seen.host_port == port->host_port && seen.protocol == port->protocol &&
                            same_address)
                            c.error(item,
                                    fmt::format("network.ports[{}] = {} publishes host port {}/{} again "
                                                "(network.ports[{}]), expected each host port once",
                                                i, quote(*s), port->host_port, port->protocol, index_of[j]));
                    }
                    n.ports.push_back(*port);
                    index_of.push_back(i);
                } else
                    c.error(item,
                            fmt::format("network.ports[{}] = {} is not a port mapping, expected "
                                        "\"[HOSTIP:]HOSTPORT:PORT[/tcp|udp]\" such as \"8080:80/tcp\" or "
                                        "\"127.0.0.1:8080:80\" (ports 1-65535)",
                                        i, quote(*s)));
            }
        } else if (k == "networks") {
            networks_node = &node;
            parse_memberships(c, node, n.networks);
        } else if (k == "add_hosts") {
            auto list = c.strings(node, path, "\"NAME:ADDRESS\" strings");
            for (size_t i = 0; list && i < list->size(); ++i) {
                if (auto entry = parse_host_entry((*list)[i]))
                    n.add_hosts.push_back(*entry);
                else
                    c.error(
                        *node.as_array()->get(i),
                        fmt::format("{}[{}] = {} is not a host entry, expected \"NAME:ADDRESS\" with a host "
                                    "name and an IPv4 or IPv6 address, such as \"db:10.0.0.5\"",
                                    path, i, quote((*list)[i])));
            }
        } else if (k == "dns") {
            n.dns = c.valid_strings(node, path, "addresses", is_valid_ip_address, "an IP address",
                                    "an IPv4 or IPv6 address such as \"192.0.2.53\"");
        } else if (k == "dns_search") {
            n.dns_search = c.valid_strings(node, path, "domains", is_valid_dns_domain, "a domain name",
                                           "a domain such as \"example.com\"");
        } else if (k == "dns_options") {
            n.dns_options = c.valid_strings(node, path, "options", is_valid_dns_option, "a resolver option",
                                            "a resolv.conf(5) option such as \"ndots:2\" or \"edns0\"");
        } else if (k == "masquerade" || k == "ip_forward") {
            netns_only.push_back(&node);
            netns_only_keys.push_back(path);
            if (auto b = c.boolean(node, path)) {
                if (k == "masquerade") {
                    n.masquerade = *b;
                    masquerade_node = &node;
                } else {
                    n.ip_forward = *b;
                }
            }
        } else {
            c.unknown_key(key, "network", keys);
        }
    }
    // `networks` implies mode = "network"; any other mode written next to it is a contradiction.
    if (networks_node && !mode_node) n.mode = NetworkMode::Network;
    if (networks_node && mode_node && n.mode != NetworkMode::Network && mode_node->is_string())
        c.error(*networks_node,
                fmt::format("network.networks needs network.mode \"network\", expected no networks with "
                            "mode {} or mode = \"network\"",
                            quote(mode_node->as_string()->get())));
    if (n.mode == NetworkMode::Network) {
        // The declared network owns addresses, gateway, NAT and the bridge.
        for (const char* key : {"bridge", "address", "host_address", "gateway", "masquerade", "ip_forward"})
            if (const toml::node* node = table.get(key))
                c.error(*node, fmt::format("network.{} does not apply to mode \"network\", expected it in "
                                           "the network's declaration (or networks = [{{ name = ..., "
                                           "address = ... }}])",
                                           key));
        return;
    }
    // The rule matches the container's source address: in bridge mode there is none by default
    // (the bridge's own network may hand one out), so it must be declared.
    if (n.mode == NetworkMode::Bridge && n.masquerade.value_or(false) && n.address.empty() &&
        !table.get("address"))
        c.error(*masquerade_node,
                "network.masquerade = true in mode \"bridge\" needs the container's address, "
                "expected network.address = \"A.B.C.D/N\" as well");
    if (n.mode == NetworkMode::Bridge && n.bridge.empty() && !bridge_node)
        c.error(
            mode_node ? *mode_node : static_cast<const toml::node&>(table),
            "network.mode = \"bridge\" needs a bridge, expected network.bridge = \"NAME\" of a host bridge");
    if (n.mode != NetworkMode::Bridge && bridge_node)
        c.error(*bridge_node,
                "network.bridge is set but network.mode is not \"bridge\", expected mode = \"bridge\" "
                "or no bridge");
    if (n.mode == NetworkMode::None || n.mode == NetworkMode::Host) {
        const char* mode = n.mode == NetworkMode::None ? "none" : "host";
        for (size_t i = 0; i < netns_only.size(); ++i)
            c.error(*netns_only[i],
                    fmt::format("{} needs network.mode \"veth\" or \"bridge\", expected no {} with "
                                "mode \"{}\"",
                                netns_only_keys[i], netns_only_keys[i], mode));
    }
    if (n.mode == NetworkMode::Bridge && !n.host_address.empty())
        c.error(*table.get("host_address"),
                "network.host_address applies to mode \"veth\" only, expected no "
                "host_address with mode \"bridge\" (the bridge has the host's address)");
}

void parse_resources(Checker& c, const toml::table& table) {
    Resources& r = c.declaration.resources;
    const auto& keys = section("resources").keys;
    for (auto&& [key, node] : table) {
        const std::string k(key.str());
        std::string path = "resources." + k;
        c.remember(path, key.source());
        if (k == "memory_max") {
            if (auto v = c.size(node, path, true)) r.memory_max = *v;
        } else if (k == "memory_high") {
            if (auto v = c.size(node, path, true)) r.memory_high = *v;
        } else if (k == "memory_swap_max") {
            if (auto v = c.size(node, path, true)) r.memory_swap_max = *v;
        } else if (k == "cpu_weight") {
            if (auto v = c.integer(node, path, 1, 10000)) r.cpu_weight = static_cast<uint32_t>(*v);
        } else if (k == "io_weight") {
            if (auto v = c.integer(node, path, 1, 10000)) r.io_weight = static_cast<uint32_t>(*v);
        } else if (k == "cpu_quota") {
            if (auto s = c.string(node, path, "a percentage such as \"150%\"")) {
                if (auto v = parse_percent(*s))
                    r.cpu_quota_percent = *v;
                else
                    c.error(node, fmt::format("resources.cpu_quota = {} is not a percentage, expected a "
                                              "percentage such as \"50%\" or \"150%\" (100% = one CPU)",
                                              quote(*s)));
            }
        } else if (k == "allowed_cpus") {
            if (auto s = c.string(node, path, "a CPU list such as \"0-3,6\"")) {
                if (is_valid_cpu_list(*s))
                    r.allowed_cpus = *s;
                else
                    c.error(
                        node,
                        fmt::format(
                            "resources.allowed_cpus = {} is invalid, expected a CPU list such as \"0-3,6\"",
                            quote(*s)));
            }
        } else if (k == "tasks_max") {
            if (auto s = node.as_string(); s && s->get() == "infinity") {
                r.tasks_max = kInfinity;
            } else if (node.is_integer()) {
                if (auto v = c.integer(node, path, 1, INT64_MAX)) r.tasks_max = static_cast<uint64_t>(*v);
            } else {
                c.error(node,
                        fmt::format("resources.tasks_max is {}, expected a positive integer or \"infinity\"",
                                    node.is_string() ? quote(node.as_string()->get()) : type_name(node)));
            }
        } else if (k == "limits") {
            auto limits = node.as_table();
            if (!limits) {
                c.error(node,
                        fmt::format("resources.limits is {}, expected a table such as {{ nofile = 1024 }}",
                                    type_name(node)));
                continue;
            }
            for (auto&& [lk, lv] : *limits) {
                std::string limit(lk.str());
                if (!is_valid_rlimit(lk.str())) {
                    c.error(lk.source(),
                            fmt::format("unknown resource limit {} in resources.limits, expected one of: "
                                        "cpu, fsize, data, stack, core, rss, nofile, as, nproc, memlock, "
                                        "locks, sigpending, msgqueue, nice, rtprio, rttime",
                                        quote(lk.str())));
                    continue;
                }
                std::string lp = "resources.limits." + limit;
                if (auto s = lv.as_string(); s && s->get() == "infinity") {
                    r.limits[limit] = kInfinity;
                } else if (lv.is_integer()) {
                    if (auto v = c.integer(lv, lp, 0, INT64_MAX)) r.limits[limit] = static_cast<uint64_t>(*v);
                } else {
                    c.error(lv, fmt::format("{} is {}, expected a non-negative integer or \"infinity\"", lp,
                                            lv.is_string() ? quote(lv.as_string()->get()) : type_name(lv)));
                }
            }
        } else {
            c.unknown_key(key, "resources", keys);
        }
    }
}

void parse_capabilities(Checker& c, const toml::node& node, const std::string& path,
                        std::vector<std::string>& out) {
    auto names = c.strings(node, path, "capability names");
    if (!names) return;
    auto array = node.as_array();
    for (size_t i = 0; i < names->size(); ++i) {
        if (auto cap = normalize_capability((*names)[i])) {
            if (std::find(out.begin(), out.end(), *cap) == out.end()) out.push_back(*cap);
        } else {
            c.error(*array->get(i), fmt::format("{}[{}] = {} is not a capability, expected a name such as "
                                                "\"CAP_NET_ADMIN\" or \"NET_ADMIN\", or \"ALL\"",
                                                path, i, quote((*names)[i])));
        }
    }
}

std::vector<std::string> unmaskable_paths() {
    std::vector<std::string> all = default_masked_paths();
    all.insert(all.end(), default_read_only_paths().begin(), default_read_only_paths().end());
    return all;
}

bool is_unmaskable(std::string_view path) {
    auto all = unmaskable_paths();
    return path == "ALL" || std::find(all.begin(), all.end(), path) != all.end();
}

void parse_security(Checker& c, const toml::table& table) {
    Security& s = c.declaration.security;
    const auto& keys = section("security").keys;
    for (auto&& [key, node] : table) {
        const std::string k(key.str());
        std::string path = "security." + k;
        c.remember(path, key.source());
        if (k == "capabilities_add") {
            parse_capabilities(c, node, path, s.capabilities_add);
        } else if (k == "capabilities_drop") {
            parse_capabilities(c, node, path, s.capabilities_drop);
        } else if (k == "seccomp") {
            if (auto v = c.string(node, path,
                                  "\"default\", \"unconfined\" or an absolute path to a JSON profile")) {
                if (*v == "default")
                    s.seccomp = SeccompMode::Default;
                else if (*v == "unconfined")
                    s.seccomp = SeccompMode::Unconfined;
                else if (!v->empty() && (*v)[0] == '/') {
                    s.seccomp = SeccompMode::Profile;
                    s.seccomp_profile = normalize_absolute_path(*v);
                } else {
                    c.error(node, fmt::format("security.seccomp = {} is invalid, expected \"default\", "
                                              "\"unconfined\" or an absolute path to a JSON profile",
                                              quote(*v)));
                }
            }
        } else if (k == "no_new_privileges") {
            if (auto b = c.boolean(node, path)) s.no_new_privileges = *b;
        } else if (k == "user_namespace") {
            std::string_view expected = "\"off\", \"pick\" or { uid = N, size = N }";
            if (auto str = node.as_string()) {
                if (str->get() == "off")
                    s.user_namespace.mode = UserNamespaceMode::Off;
                else if (str->get() == "pick")
                    s.user_namespace.mode = UserNamespaceMode::Pick;
                else
                    c.error(node, fmt::format("security.user_namespace = {} is unknown, expected {}",
                                              quote(str->get()), expected));
            } else if (auto t = node.as_table()) {
                UserNamespace ns;
                ns.mode = UserNamespaceMode::Fixed;
                bool ok = true, have_uid = false;
                for (auto&& [uk, uv] : *t) {
                    std::string up = "security.user_namespace." + std::string(uk.str());
                    if (uk.str() == "uid") {
                        if (auto v = c.integer(uv, up, 0, UINT32_MAX - 1))
                            ns.uid = static_cast<uint32_t>(*v), have_uid = true;
                        else
                            ok = false;
                    } else if (uk.str() == "size") {
                        if (auto v = c.integer(uv, up, 1, UINT32_MAX))
                            ns.size = static_cast<uint32_t>(*v);
                        else
                            ok = false;
                    } else {
                        c.unknown_key(uk, "security.user_namespace", {"uid", "size"});
                        ok = false;
                    }
                }
                if (!have_uid && ok) {
                    c.error(node, fmt::format("security.user_namespace has no uid, expected {}", expected));
                    ok = false;
                }
                if (ok && uint64_t{ns.uid} + ns.size > uint64_t{UINT32_MAX}) {
                    c.error(node,
                            fmt::format("security.user_namespace uid {} + size {} exceeds the uid range, "
                                        "expected uid + size <= 4294967295",
                                        ns.uid, ns.size));
                    ok = false;
                }
                if (ok && ns.uid == 0) {
                    c.error(
                        node,
                        "security.user_namespace uid = 0 maps the host's root, expected a range of unused "
                        "host uids such as { uid = 524288, size = 65536 }");
                    ok = false;
                }
                if (ok) s.user_namespace = ns;
            } else {
                c.error(node,
                        fmt::format("security.user_namespace is {}, expected {}", type_name(node), expected));
            }
        } else if (k == "mask") {
            for (auto& p : c.absolute_paths(node, path)) {
                if (p == "/")
                    c.error(node, fmt::format("{} has \"/\", which would hide the whole container, expected "
                                              "paths below /",
                                              path));
                else
                    s.mask.push_back(std::move(p));
            }
        } else if (k == "unmask") {
            s.unmask =
                c.valid_strings(node, path, "paths", is_unmaskable, "a default masked or read-only path",
                                fmt::format("\"ALL\" or one of {}", join(unmaskable_paths(), ", ")));
        } else if (k == "devices") {
            auto array = node.as_array();
            if (!array) {
                c.error(node, fmt::format("security.devices is {}, expected an array of device paths under "
                                          "/dev or CDI device names",
                                          type_name(node)));
                continue;
            }
            for (size_t i = 0; i < array->size(); ++i) {
                std::string ip = fmt::format("security.devices[{}]", i);
                auto entry_text = c.string(*array->get(i), ip, "a device node path or a CDI device name");
                if (!entry_text) continue;
                std::string why;
                if (auto entry = parse_device_entry(*entry_text, &why))
                    s.devices.push_back(entry->cdi ? *entry_text
                                        : entry->permissions == "rwm"
                                            ? entry->path
                                            : entry->path + ":" + entry->permissions);
                else
                    c.error(*array->get(i), fmt::format("{} = {} {}", ip, quote(*entry_text), why));
            }
        } else {
            c.unknown_key(key, "security", keys);
        }
    }
}

// A systemd credential name (LoadCredential=NAME:..., the file name in /run/secrets); reports
// `shown` (the whole value) when `name` is not one.
bool is_credential_name(Checker& c, const toml::node& node, const std::string& path, const std::string& shown,
                        const std::string& name) {
    if (is_plain_name(name, 128)) return true;
    c.error(node, fmt::format("{} = {} is not a credential name, expected 1 to 128 letters, digits, '_', '.' "
                              "and '-', starting with a letter or digit",
                              path, quote(shown)));
    return false;
}

// [[secret]] (declaration.h): where a credential comes from, where the payload finds it.
void parse_secret(Checker& c, const toml::table& table, size_t index) {
    const auto [keys, prefix] = array_entry("secret", index);
    Secret secret;
    secret.where = c.region_of(table);
    const toml::node* encrypted_node = nullptr;
    bool encrypted = false;
    for (auto&& [key, node] : table) {
        const std::string k(key.str());
        std::string path = prefix + "." + k;
        if (k == "name") {
            if (auto s = c.string(node, path); s && is_credential_name(c, node, path, *s, *s))
                secret.name = *s;
        } else if (k == "source") {
            auto s = c.string(node, path, "an absolute path or \"credential:ID\"");
            if (!s) continue;
            if (s->rfind("credential:", 0) == 0) {
                std::string id = s->substr(11);
                is_credential_name(c, node, path, *s, id);
                secret.kind = SecretSource::Credential;
                secret.source = id;
            } else if (auto p = c.absolute_path(node, path)) {
                secret.source = *p;
            }
        } else if (k == "encrypted") {
            encrypted_node = &node;
            if (auto b = c.boolean(node, path)) encrypted = *b;
        } else if (k == "target") {
            if (auto p = c.absolute_path(node, path)) {
                if (*p == "/" || *p == kSecretsDir)
                    c.error(node, fmt::format("{} = {} is a directory berth owns, expected a file path such "
                                              "as \"/run/secrets/NAME\" or \"/etc/app/key\"",
                                              path, quote(*p)));
                else
                    secret.target = *p;
            }
        } else if (k == "mode") {
            if (auto mode = c.mode(node, path, 0777, "\"0400\"", "0o400")) secret.mode = *mode;
        } else if (k == "uid" || k == "gid") {
            if (auto v = c.integer(node, path, 0, UINT32_MAX - 1))
                (k == "uid" ? secret.uid : secret.gid) = static_cast<uint32_t>(*v);
        } else if (k == "environment") {
            if (auto s = c.string(node, path, "an environment variable name")) {
                if (!is_valid_env_name(*s))
                    c.error(node, fmt::format("{} = {} is invalid, expected an environment variable name of "
                                              "letters, digits and '_', not starting with a digit",
                                              path, quote(*s)));
                else
                    secret.environment = *s;
            }
        } else {
            c.unknown_key(key, "[secret]", keys);
        }
    }
    if (!table.get("name"))
        c.error(table, fmt::format("{} has no name, expected name = \"ID\" (the credential's name)", prefix));
    if (!table.get("source"))
        c.error(table, fmt::format("{} has no source, expected source = \"/path/to/file\" (with encrypted = "
                                   "true for `systemd-creds encrypt` output) or \"credential:ID\"",
                                   prefix));
    if (encrypted && secret.kind == SecretSource::Credential)
        c.error(*encrypted_node,
                fmt::format("{}.encrypted applies to a file, expected it only with source = \"/path\" (a "
                            "credential the host passes is decrypted by the host)",
                            prefix));
    else if (encrypted)
        secret.kind = SecretSource::Encrypted;
    Declaration& d = c.declaration;
    if (!secret.name.empty()) {
        if (secret.target.empty()) secret.target = fmt::format("{}/{}", kSecretsDir, secret.name);
        for (const auto& other : d.secrets) {
            if (other.name == secret.name)
                c.error(table,
                        fmt::format("{}: secret {} is declared twice (line {}), expected each name once",
                                    prefix, quote(secret.name), other.where.line));
            else if (other.target == secret.target)
                c.error(table,
                        fmt::format("{}: target {} is also secret {}'s (line {}), expected one secret a "
                                    "file",
                                    prefix, quote(secret.target), quote(other.name), other.where.line));
            else if (!secret.environment.empty() && other.environment == secret.environment)
                c.error(table, fmt::format("{}: environment {} is also secret {}'s, expected one secret a "
                                           "variable",
                                           prefix, quote(secret.environment), quote(other.name)));
        }
    }
    d.secrets.push_back(std::move(secret));
}

// [[socket]]: a socket systemd listens on and hands to the payload (socket activation).
void parse_socket(Checker& c, const toml::table& table, size_t index) {
    const auto [keys, prefix] = array_entry("socket", index);
    Socket socket;
    socket.where = c.region_of(table);
    for (auto&& [key, node] : table) {
        const std::string k(key.str());
        std::string path = prefix + "." + k;
        if (k == "listen") {
            std::string_view expected = "\"ADDRESS:PORT\", \"[IPV6]:PORT\" or an absolute unix socket path";
            if (auto s = c.string(node, path, expected)) {
                if (!is_valid_socket_listen(*s))
                    c.error(node, fmt::format("{} = {} is invalid, expected {}", path, quote(*s), expected));
                else
                    socket.listen = *s;
            }
        } else if (k == "type") {
            if (auto v = c.choice<SocketType>(
                    node, path, {{"stream", SocketType::Stream}, {"datagram", SocketType::Datagram}}))
                socket.type = *v;
        } else if (k == "name") {
            // systemd's FileDescriptorName= rule (fdname_is_valid): 1 to 255 printable characters, no ':'
            // (the separator of $LISTEN_FDNAMES).
            std::string_view expected = "1 to 255 printable characters without ':' such as \"http\"";
            if (auto s = c.string(node, path, expected)) {
                bool ok = !s->empty() && s->size() <= 255;
                for (char ch : *s) ok &= ch != ':' && static_cast<unsigned char>(ch) >= 0x20 && ch != 0x7f;
                if (!ok)
                    c.error(node, fmt::format("{} = {} is not a file descriptor name, expected {}", path,
                                              quote(*s), expected));
                else
                    socket.name = *s;
            }
        } else if (k == "accept") {
            if (auto b = c.boolean(node, path); b && *b)
                c.error(node, fmt::format("{} = true is not supported, expected false (one payload serves "
                                          "every connection on the listening socket)",
                                          path));
        } else {
            c.unknown_key(key, "[socket]", keys);
        }
    }
    if (!table.get("listen"))
        c.error(table, fmt::format("{} has no listen, expected listen = \"127.0.0.1:8080\", \"[::]:8080\" or "
                                   "\"/run/NAME.sock\"",
                                   prefix));
    Declaration& d = c.declaration;
    for (const auto& other : d.sockets)
        if (!socket.listen.empty() && other.listen == socket.listen && other.type == socket.type)
            c.error(table, fmt::format("{}: listen {} is declared twice (line {}), expected each socket once",
                                       prefix, quote(socket.listen), other.where.line));
    d.sockets.push_back(std::move(socket));
}

void parse_dependencies(Checker& c, const toml::node& node, const std::string& path,
                        std::vector<std::string>& out) {
    auto names = c.strings(node, path, "container NAMEs or systemd unit names");
    if (!names) return;
    auto array = node.as_array();
    for (size_t i = 0; i < names->size(); ++i) {
        const std::string& entry = (*names)[i];
        const toml::node& item = *array->get(i);
        if (!is_container_dependency_ok(entry)) {
            c.error(item, fmt::format(
                              "{}[{}] = {} is neither a container NAME nor a unit name, expected a container "
                              "NAME such as \"db\" or a unit such as \"network-online.target\"",
                              path, i, quote(entry)));
            continue;
        }
        if (entry == c.declaration.name) {
            c.error(item,
                    fmt::format("{}[{}]: container {} depends on itself, expected another container or unit",
                                path, i, quote(entry)));
            continue;
        }
        c.remember(fmt::format("{}.{}", path, out.size()), item.source());
        out.push_back(entry);
    }
}

void parse_service(Checker& c, const toml::table& table) {
    Service& s = c.declaration.service;
    const auto& keys = section("service").keys;
    for (auto&& [key, node] : table) {
        const std::string k(key.str());
        std::string path = "service." + k;
        c.remember(path, key.source());
        if (k == "restart") {
            std::string_view expected =
                "one of no, on-success, on-failure, on-abnormal, on-watchdog, on-abort, always";
            if (auto v = c.string(node, path, expected)) {
                if (is_valid_restart(*v))
                    s.restart = *v;
                else
                    c.error(node,
                            fmt::format("service.restart = {} is unknown, expected {}", quote(*v), expected));
            }
        } else if (k == "restart_sec") {
            if (auto v = c.duration(node, path, false)) s.restart_sec_us = *v;
        } else if (k == "timeout_start") {
            if (auto v = c.duration(node, path, true)) s.timeout_start_us = *v;
        } else if (k == "timeout_stop") {
            if (auto v = c.duration(node, path, true)) s.timeout_stop_us = *v;
        } else if (k == "requires") {
            parse_dependencies(c, node, path, s.requires_);
        } else if (k == "wants") {
            parse_dependencies(c, node, path, s.wants);
        } else if (k == "after") {
            parse_dependencies(c, node, path, s.after);
        } else {
            c.unknown_key(key, "service", keys);
        }
    }
}

// A duration that must be more than zero (a probe every 0 s would spin the supervisor).
std::optional<uint64_t> positive_duration(Checker& c, const toml::node& node, const std::string& path) {
    auto v = c.duration(node, path, false);
    if (v && *v == 0) {
        c.error(node, fmt::format("{} = 0 is too short, expected a duration of at least 1ms", path));
        return std::nullopt;
    }
    if (v && *v < 1000) {
        c.error(node, fmt::format("{} is under 1ms, expected a duration of at least 1ms", path));
        return std::nullopt;
    }
    return v;
}

void parse_health(Checker& c, const toml::table& table) {
    Health& h = c.declaration.health;
    const auto& keys = section("health").keys;
    const toml::node* reload_signal = nullptr;
    const toml::node* reload_command = nullptr;
    for (auto&& [key, node] : table) {
        const std::string k(key.str());
        std::string path = "health." + k;
        c.remember(path, key.source());
        if (k == "command") {
            // The exec form only: a shell string would need a shell in the image, and a probe
            // that silently means "/bin/sh -c" is how Docker's CMD-SHELL surprises people.
            if (auto v = c.strings(node, path, "strings (the program and its arguments, [] disables)"))
                h.command = *v;
        } else if (k == "reload_command") {
            reload_command = &node;
            if (auto v = c.strings(node, path, "strings (the program and its arguments)")) {
                if (v->empty())
                    c.error(node, fmt::format("{} is empty, expected the program and its arguments", path));
                else
                    h.reload_command = *v;
            }
        } else if (k == "interval") {
            if (auto v = positive_duration(c, node, path)) h.interval_us = *v;
        } else if (k == "timeout") {
            if (auto v = positive_duration(c, node, path)) h.timeout_us = *v;
        } else if (k == "start_interval") {
            if (auto v = positive_duration(c, node, path)) h.start_interval_us = *v;
        } else if (k == "start_period") {
            if (auto v = c.duration(node, path, false)) h.start_period_us = *v;
        } else if (k == "retries") {
            if (auto v = c.integer(node, path, 1, 1000)) h.retries = static_cast<uint32_t>(*v);
        } else if (k == "on_failure") {
            if (auto v = c.choice<HealthOnFailure>(node, path,
                                                   {{"none", HealthOnFailure::None},
                                                    {"kill", HealthOnFailure::Kill},
                                                    {"restart", HealthOnFailure::Restart},
                                                    {"stop", HealthOnFailure::Stop}}))
                h.on_failure = *v;
        } else if (k == "watchdog") {
            if (auto b = c.boolean(node, path)) h.watchdog = *b;
        } else if (k == "reload_signal") {
            reload_signal = &node;
            if (auto sig = c.signal(node, path)) h.reload_signal = *sig;
        } else {
            c.unknown_key(key, "health", keys);
        }
    }
    if (reload_signal && reload_command)
        c.error(*reload_command,
                fmt::format("health.reload_command conflicts with health.reload_signal (line {}), expected "
                            "one of them",
                            reload_signal->source().begin.line));
}

void parse_install(Checker& c, const toml::table& table) {
    Install& in = c.declaration.install;
    const auto& keys = section("install").keys;
    for (auto&& [key, node] : table) {
        const std::string k(key.str());
        std::string path = "install." + k;
        c.remember(path, key.source());
        if (k == "wanted_by" || k == "required_by") {
            auto names = c.strings(node, path, "unit names");
            if (!names) continue;
            std::vector<std::string> units;
            for (size_t i = 0; i < names->size(); ++i) {
                const std::string& unit = (*names)[i];
                if (!is_unit_name(unit) || unit.find('/') != std::string::npos)
                    c.error(*node.as_array()->get(i),
                            fmt::format("{}[{}] = {} is not a unit name, expected a unit "
                                        "such as \"berth.target\" or \"multi-user.target\"",
                                        path, i, quote(unit)));
                else
                    units.push_back(unit);
            }
            (k == "wanted_by" ? in.wanted_by : in.required_by) = units;
        } else if (k == "default_instances") {
            if (!c.allow_default_instances) {
                c.error(key.source(),
                        fmt::format("{} is only for a template (NAME@.toml), expected it in the "
                                    "template or no default_instances",
                                    path));
                continue;
            }
            auto names = c.strings(node, path, "instance names");
            if (!names) continue;
            in.default_instances.clear();
            for (size_t i = 0; i < names->size(); ++i) {
                const std::string& instance = (*names)[i];
                if (!is_plain_name(instance, kContainerNameMax))
                    c.error(*node.as_array()->get(i),
                            fmt::format("{}[{}] = {} is not an instance name, expected {}", path, i,
                                        quote(instance), "letters, digits, '_', '.' and '-' such as \"1\""));
                else if (std::find(in.default_instances.begin(), in.default_instances.end(), instance) ==
                         in.default_instances.end())
                    in.default_instances.push_back(instance);
            }
        } else {
            c.unknown_key(key, "install", keys);
        }
    }
}

void convert(Checker& c, const toml::table& root, const std::string& main_path) {
    std::vector<std::string_view> top;
    for (const auto& s : sections()) top.push_back(s.name);
    const toml::node* image_node = nullptr;
    const toml::node* rootfs_node = nullptr;
    const toml::node* container_node = nullptr;
    for (auto&& [key, node] : root) {
        const std::string k(key.str());
        c.remember(k, key.source());
        if (k == "mount" || k == "secret" || k == "socket") {
            auto array = node.as_array();
            if (!array || !array->is_array_of_tables()) {
                c.error(node, fmt::format("{} is {}, expected an array of tables written as [[{}]]", k,
                                          array ? "an array of non-tables" : type_name(node), k));
                continue;
            }
            auto parse = k == "mount" ? parse_mount : k == "secret" ? parse_secret : parse_socket;
            for (size_t i = 0; i < array->size(); ++i) parse(c, *array->get(i)->as_table(), i);
            continue;
        }
        bool known = std::find(top.begin(), top.end(), k) != top.end();
        if (!known) {
            c.unknown_key(key, "", top);
            continue;
        }
        auto table = node.as_table();
        if (!table) {
            c.error(node, fmt::format("{} is {}, expected a table written as [{}]", k, type_name(node), k));
            continue;
        }
        if (k == "container") {
            container_node = &node;
            parse_container(c, *table, container_node, image_node, rootfs_node);
        } else if (k == "network") {
            parse_network(c, *table);
        } else if (k == "resources") {
            parse_resources(c, *table);
        } else if (k == "security") {
            parse_security(c, *table);
        } else if (k == "service") {
            parse_service(c, *table);
        } else if (k == "install") {
            parse_install(c, *table);
        } else if (k == "health") {
            parse_health(c, *table);
        }
    }
    Declaration& d = c.declaration;
    if (image_node && rootfs_node) {
        c.error(*rootfs_node,
                fmt::format("container.rootfs conflicts with container.image (line {}), expected "
                            "exactly one of image or rootfs",
                            image_node->source().begin.line));
    } else if (!image_node && !rootfs_node && d.image.empty() && d.rootfs.empty()) {
        const toml::node* container = root.get("container");
        bool image_or_rootfs_broken =
            container && container->is_table() &&
            (container->as_table()->get("image") || container->as_table()->get("rootfs"));
        if (!image_or_rootfs_broken) {
            toml::source_region where = container ? container->source() : toml::source_region{};
            if (!container) where.path = std::make_shared<const std::string>(main_path);
            c.error(where,
                    "no container.image or container.rootfs, expected exactly one of image = \"NAME[:TAG]\" "
                    "or rootfs = \"/absolute/dir\" in [container]");
        }
    }
    // Caught here rather than at the start ("no command to run", issue #15): an image has a
    // config that names its program, a directory has none.
    // With an image too, the conflict above is the one error to fix first.
    if (rootfs_node && !d.rootfs.empty() && d.image.empty() && d.command.empty()) {
        const toml::node* container = root.get("container");
        if (!(container && container->is_table() && container->as_table()->get("command")))
            c.error(*rootfs_node,
                    "container.rootfs needs container.command, expected command = [\"/program\", ...] (a "
                    "directory has no image config to take the program from)");
    }
    // What follows the health check needs one. notify = "healthy" may follow the image's
    // HEALTHCHECK (the runtime fails the start when the image has none), unless the declaration
    // disabled it or there is no image; the watchdog's WatchdogSec= is computed here, from the
    // declaration's own check.
    const bool declared_check = d.health.command && !d.health.command->empty();
    const bool image_check_possible = !d.health.command && !d.image.empty();
    // Where `key` was written (d.regions), for a check that runs after parsing.
    auto region_of = [&](const char* key) -> std::optional<toml::source_region> {
        auto at = d.regions.find(key);
        if (at == d.regions.end()) return std::nullopt;
        toml::source_region where{};
        where.path = std::make_shared<const std::string>(at->second.file);
        where.begin = {static_cast<toml::source_index>(at->second.line),
                       static_cast<toml::source_index>(at->second.column)};
        return where;
    };
    // auto_update follows a name: a directory has none, and a digest pin never changes.
    if (d.auto_update != registry::AutoUpdateMode::Off) {
        const auto where = region_of("container.auto_update");
        const std::string mode(registry::auto_update_mode_name(d.auto_update));
        if (where && d.image.empty())
            c.error(*where, fmt::format("container.auto_update = \"{}\" needs container.image, expected an "
                                        "image name to follow (a rootfs directory has none)",
                                        mode));
        else if (where && (d.image.starts_with("sha256:") || d.image.find('@') != std::string::npos))
            c.error(*where, fmt::format("container.auto_update = \"{}\" cannot follow the digest pin '{}', "
                                        "expected an image name with a tag (\"NAME:TAG\")",
                                        mode, d.image));
    }
    if (!declared_check) {
        auto needs = [&](const char* key, const char* what) {
            if (auto where = region_of(key))
                c.error(
                    *where,
                    fmt::format("{} needs a health check, expected [health] command = [\"/program\", ...]",
                                what));
        };
        if (d.notify == NotifyMode::Healthy && !image_check_possible)
            needs("container.notify", "container.notify = \"healthy\"");
        if (d.health.watchdog) needs("health.watchdog", "health.watchdog = true");
    }
    for (const auto& [name, value] : d.sysctl) {
        std::string why = sysctl_refusal(name, d.network.mode);
        auto at = d.regions.find("container.sysctl." + name);
        if (!why.empty() && at != d.regions.end())
            c.error(at->second, fmt::format("container.sysctl.{} {}", quote(name), why));
    }
    if (d.read_only_tmpfs && *d.read_only_tmpfs && !d.read_only)
        if (auto at = d.regions.find("container.read_only_tmpfs"); at != d.regions.end())
            c.error(at->second,
                    "container.read_only_tmpfs = true needs container.read_only = true, expected read_only = "
                    "true or no read_only_tmpfs (a writable root has writable /tmp and /run already)");
    if (d.hostname.empty() && is_valid_hostname(d.name)) d.hostname = d.name;
    // An instance "web@1" is host "web-1" unless its template says otherwise ("%i" and so on).
    if (auto at = d.name.find('@'); d.hostname.empty() && at != std::string::npos) {
        std::string host = d.name;
        host[at] = '-';
        if (host.back() == '-') host += c.instance;  // a template checked with its sample instance
        if (is_valid_hostname(host)) d.hostname = host;
    }
}

// %i -> the instance, %% -> '%'; any other '%' is an error at `node`. Templates only: a plain
// declaration's "%" is a plain character, as before templates existed.
void expand_value(Checker& c, toml::node& node, const std::string& path) {
    auto* value = node.as_string();
    if (!value) return;  // the wrong type is reported by the conversion
    const std::string& text = value->get();
    std::string out;
    for (size_t i = 0; i < text.size(); ++i) {
        if (text[i] != '%') {
            out += text[i];
            continue;
        }
        char next = i + 1 < text.size() ? text[i + 1] : '\0';
        if (next == 'i')
            out += c.instance;
        else if (next == '%')
            out += '%';
        else {
            c.error(node, fmt::format("{} = {} has the specifier {}, expected %i (the instance) or %% (a "
                                      "literal '%') in a template",
                                      path, quote(text), quote(text.substr(i, next ? 2 : 1))));
            return;
        }
        ++i;
    }
    value->get() = std::move(out);
}

// The keys whose strings a template's instance expands: container.hostname, container.command,
// container.environment values and [[mount]] source. Done on the merged TOML, so the normal
// conversion checks the expanded value and reports it at the value's own file:line:col.
void expand_instance(Checker& c, toml::table& root) {
    if (auto* container = root.get_as<toml::table>("container")) {
        if (auto* hostname = container->get("hostname")) expand_value(c, *hostname, "container.hostname");
        if (auto* command = container->get_as<toml::array>("command"))
            for (size_t i = 0; i < command->size(); ++i)
                expand_value(c, *command->get(i), fmt::format("container.command[{}]", i));
        if (auto* env = container->get_as<toml::table>("environment"))
            for (auto&& [key, value] : *env)
                expand_value(c, value, fmt::format("container.environment.{}", key.str()));
    }
    if (auto* mounts = root.get_as<toml::array>("mount"))
        for (size_t i = 0; i < mounts->size(); ++i)
            if (auto* mount = mounts->get(i)->as_table())
                if (auto* source = mount->get("source"))
                    expand_value(c, *source, fmt::format("mount[{}].source", i));
}

// Parses one file; reports a syntax error through the checker.
std::optional<toml::table> parse_text(Checker& c, const SourceText& source) {
    try {
        return toml::parse(source.text, source.path);
    } catch (const toml::parse_error& e) {
        std::string description(e.description());
        toml::source_region where = e.source();
        if (!where.path) where.path = std::make_shared<const std::string>(source.path);
        c.error(where, fmt::format("invalid TOML: {}, expected valid TOML syntax", description));
    } catch (const std::exception& e) {
        toml::source_region where{};
        where.path = std::make_shared<const std::string>(source.path);
        c.error(where, fmt::format("cannot parse: {}, expected valid TOML", e.what()));
    }
    return std::nullopt;
}

// ---- network declarations (/etc/berth/networks/NAME.toml) ---------------------------------

const std::vector<std::string_view>& network_declaration_keys() {
    static const std::vector<std::string_view> kKeys = {"bridge",   "subnets",    "gateway", "range",
                                                        "internal", "masquerade", "mtu",     "dns"};
    return kKeys;
}

// "10.89.1.100-10.89.1.200" or "10.89.1.128/25", inside `subnet`.
bool valid_range(std::string_view text, const Ipv4Cidr& subnet) {
    auto dash = text.find('-');
    if (dash == std::string_view::npos) {
        auto c = parse_ipv4_cidr(text, -1);
        return c && c->prefix >= subnet.prefix && same_subnet(subnet, c->address) &&
               network_of(*c) == c->address;
    }
    auto a = parse_ipv4(text.substr(0, dash)), b = parse_ipv4(text.substr(dash + 1));
    return a && b && a->value <= b->value && same_subnet(subnet, *a) && same_subnet(subnet, *b);
}

void convert_network(Checker& c, NetworkDeclaration& n, const toml::table& root) {
    const toml::table* table = nullptr;
    for (auto&& [key, node] : root) {
        if (key.str() != "network") {
            c.unknown_key(key, "", {"network"});
            continue;
        }
        table = node.as_table();
        if (!table)
            c.error(node,
                    fmt::format("network is {}, expected a table written as [network]", type_name(node)));
    }
    if (!table) return;
    std::optional<Ipv4Cidr> subnet4;
    const toml::node *subnets_node = nullptr, *gateway_node = nullptr, *range_node = nullptr;
    const toml::node *masquerade_node = nullptr, *internal_node = nullptr;
    for (auto&& [key, node] : *table) {
        const std::string k(key.str());
        std::string path = "network." + k;
        if (k == "bridge") {
            if (auto s = c.string(node, path, "an interface name")) {
                if (is_valid_ifname(*s))
                    n.bridge = *s;
                else
                    c.error(node,
                            fmt::format("network.bridge = {} is not an interface name, expected 1 to 15 "
                                        "characters without '/', ':' or spaces",
                                        quote(*s)));
            }
        } else if (k == "subnets") {
            subnets_node = &node;
            auto list = c.strings(node, path, "subnets such as \"10.89.1.0/24\" or \"fd00:89:1::/64\"");
            if (!list) continue;
            bool seen4 = false, six = false;
            for (size_t i = 0; i < list->size(); ++i) {
                const toml::node& item = *node.as_array()->get(i);
                const std::string& text = (*list)[i];
                auto v4 = parse_ipv4_cidr(text, -1);
                bool is4 = v4 && v4->prefix >= 8 && v4->prefix <= 30 && network_of(*v4) == v4->address;
                // IPv6: the container's address is the subnet's prefix + its IPv4 address in the
                // last 32 bits (network/ipam.h), so the prefix leaves at least 32 bits.
                auto v6 = v4 ? std::nullopt : parse_ipv6_cidr(text, -1);
                bool is6 = v6 && v6->prefix >= 16 && v6->prefix <= 96 && network_of(*v6) == v6->address &&
                           usable_ipv6(v6->address);
                if (is4 || is6) {
                    bool& seen = is4 ? seen4 : six;
                    if (seen)
                        c.error(item,
                                fmt::format("{}[{}] = {} is a second IPv{} subnet, expected at most one "
                                            "IPv4 and one IPv6 subnet",
                                            path, i, quote(text), is4 ? 4 : 6));
                    seen = true;
                    if (is4) subnet4 = v4;
                    n.subnets.push_back(text);
                } else {
                    c.error(item,
                            fmt::format("{}[{}] = {} is not a subnet, expected a network address with "
                                        "prefix such as \"10.89.1.0/24\" (/8 to /30, host bits zero) or "
                                        "\"fd00:89:1::/64\" (/16 to /96, host bits zero, not link-local, "
                                        "multicast or loopback)",
                                        path, i, quote(text)));
                }
            }
        } else if (k == "gateway") {
            gateway_node = &node;
            if (auto s = c.string(node, path, "an IPv4 address")) n.gateway = *s;
        } else if (k == "range") {
            range_node = &node;
            if (auto s = c.string(node, path, "\"A.B.C.D-E.F.G.H\" or \"A.B.C.D/N\"")) n.range = *s;
        } else if (k == "internal") {
            internal_node = &node;
            if (auto b = c.boolean(node, path)) n.internal = *b;
        } else if (k == "masquerade") {
            masquerade_node = &node;
            if (auto b = c.boolean(node, path)) n.masquerade = *b;
        } else if (k == "mtu") {
            if (auto i = c.integer(node, path, 68, 65535)) n.mtu = static_cast<uint32_t>(*i);
        } else if (k == "dns") {
            n.dns = c.valid_strings(node, path, "IP addresses", is_valid_ip_address, "an IP address",
                                    "an upstream server such as \"192.0.2.53\" or \"2001:db8::53\"");
        } else {
            c.unknown_key(key, "network", network_declaration_keys());
        }
    }
    if (!subnets_node) {
        c.error(*table,
                "no network.subnets, expected subnets = [\"10.89.1.0/24\"] (one IPv4 subnet, and "
                "optionally one IPv6)");
        return;
    }
    if (!subnet4) {
        if (!c.failed())
            c.error(*subnets_node,
                    "network.subnets has no IPv4 subnet, expected one IPv4 subnet (IPv6-only "
                    "networks are not supported)");
        return;
    }
    if (gateway_node && !n.gateway.empty()) {
        auto g = parse_ipv4(n.gateway);
        if (!g || !same_subnet(*subnet4, *g) || !usable_host_address(Ipv4Cidr{*g, subnet4->prefix}))
            c.error(*gateway_node, fmt::format("network.gateway = {} is not a host address in {}, expected "
                                               "an IPv4 address of the subnet such as \"{}\"",
                                               quote(n.gateway), format_ipv4_cidr(*subnet4),
                                               format_ipv4(Ipv4{subnet4->address.value + 1})));
    }
    if (range_node && !n.range.empty() && !valid_range(n.range, *subnet4))
        c.error(*range_node,
                fmt::format("network.range = {} is not inside {}, expected \"A.B.C.D-E.F.G.H\" or "
                            "\"A.B.C.D/N\" within the IPv4 subnet",
                            quote(n.range), format_ipv4_cidr(*subnet4)));
    if (n.internal && n.masquerade.value_or(false))
        c.error(*masquerade_node, "network.masquerade = true conflicts with internal = true (line " +
                                      std::to_string(internal_node->source().begin.line) +
                                      "), expected no outbound NAT on an internal network");
}

std::vector<std::string> files_of(const SourceText& main, const std::vector<SourceText>& dropins) {
    std::vector<std::string> files = {main.path};
    for (const auto& d : dropins) files.push_back(d.path);
    return files;
}

// The name check, the syntax of every file, the merge and then `check` on the merged table: all
// problems as one error, in file order. The boundary for toml++'s exceptions.
Result<> parse_merged(Checker& c, std::string_view kind, std::string_view name, const SourceText& main,
                      const std::vector<SourceText>& dropins,
                      const std::function<void(const toml::table&)>& check) {
    try {
        bool name_ok = kind == "container" ? is_valid_name(name) || is_template_name(name)
                                           : is_plain_name(name, kContainerNameMax) && is_valid_name(name);
        if (!name_ok) {
            toml::source_region where{};
            where.path = std::make_shared<const std::string>(main.path);
            c.error(where, fmt::format("{} name {} cannot be used in a unit name, expected {}", kind,
                                       quote(name), name_rule(NameKind::Container)));
            return Unexpected(c.to_error());
        }
        auto root = parse_text(c, main);
        std::vector<toml::table> overlays;
        for (const auto& d : dropins)
            if (auto t = parse_text(c, d)) overlays.push_back(std::move(*t));
        if (c.failed()) return Unexpected(c.to_error());
        for (auto& overlay : overlays) merge_into(*root, std::move(overlay));
        if (!c.instance.empty()) expand_instance(c, *root);
        check(*root);
    } catch (const std::exception& e) {
        // toml++ and the standard library may throw (bad_alloc); nothing escapes this boundary.
        return fail(ENOMEM, "{}: {}", main.path, e.what());
    }
    if (c.failed()) return Unexpected(c.to_error());
    return {};
}

}  // namespace

std::vector<SchemaSection> declaration_schema() {
    std::vector<SchemaSection> out;
    for (const auto& s : sections()) {
        SchemaSection section{std::string(s.name), {}};
        for (auto key : s.keys) section.keys.emplace_back(key);
        out.push_back(std::move(section));
    }
    return out;
}

Result<Declaration> parse_declaration(std::string_view name, const SourceText& main,
                                      const std::vector<SourceText>& dropins) {
    Checker c(name, files_of(main, dropins));
    // A template alone is checked as its sample instance would be.
    if (is_template_name(name)) {
        c.is_template = c.allow_default_instances = true;
        c.instance = kSampleInstance;
    }
    auto checked = parse_merged(c, "container", name, main, dropins,
                                [&](const toml::table& root) { convert(c, root, main.path); });
    if (!checked) return Unexpected(checked.error());
    Declaration d = std::move(c.declaration);
    d.source_path = main.path;
    for (const auto& dropin : dropins) d.dropin_paths.push_back(dropin.path);
    return d;
}

Result<Declaration> parse_instance(std::string_view name, const SourceText& main,
                                   const std::vector<SourceText>& dropins) {
    auto at = name.find('@');
    if (at == std::string_view::npos || !is_valid_name(name))
        return fail(EINVAL, "{}:1:1: {} is not a template's instance, expected NAME@INSTANCE", main.path,
                    quote(name));
    Checker c(name, files_of(main, dropins));
    c.instance = std::string(name.substr(at + 1));
    // The template's [install] default_instances is read from the template; an instance has none.
    c.allow_default_instances = true;
    auto checked = parse_merged(c, "container", name, main, dropins,
                                [&](const toml::table& root) { convert(c, root, main.path); });
    if (!checked) return Unexpected(checked.error());
    Declaration d = std::move(c.declaration);
    d.install.default_instances.clear();
    d.source_path = main.path;
    for (const auto& dropin : dropins) d.dropin_paths.push_back(dropin.path);
    return d;
}

Result<NetworkDeclaration> parse_network_declaration(std::string_view name, const SourceText& main,
                                                     const std::vector<SourceText>& dropins) {
    Checker c(name, files_of(main, dropins));
    NetworkDeclaration n;
    n.name = std::string(name);
    auto checked = parse_merged(c, "network", name, main, dropins,
                                [&](const toml::table& root) { convert_network(c, n, root); });
    if (!checked) return Unexpected(checked.error());
    n.source_path = main.path;
    for (const auto& dropin : dropins) n.dropin_paths.push_back(dropin.path);
    return n;
}

}  // namespace berth::config
