// The Container Device Interface (CDI): vendor-written specs that say what handing a device to a
// container takes (device nodes, driver libraries bound in, environment, hooks), named
// "vendor.com/class=name" in [security] devices. nvidia-ctk writes them for GPUs.
//
// Specs are read from /etc/cdi then /var/run/cdi (a later directory overrides a device of the same
// name), JSON or YAML, every released spec version (0.3.0 .. 1.1.0). YAML goes through a small
// module dlopen()ed only when a .yaml file is met (yaml-module.cpp): the runtime's start path does
// not map libyaml-cpp, and the JSON parser (nlohmann, header-only) reads both, so the same spec
// written both ways yields the same edits by construction.
//
// Pure: parse and resolve; applying the edits is the runtime's (runtime/devices.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "basic/result.h"

namespace berth::cdi {

struct DeviceNode {
    std::string path;       // in the container
    std::string host_path;  // on the host ("" = path)
    std::string type;       // "c", "b", "u", "p" or "" (= the host node's)
    std::optional<uint32_t> major, minor;
    std::optional<uint32_t> file_mode;
    std::string permissions;  // cgroup access, "" = "rwm"
    std::optional<uint32_t> uid, gid;

    bool operator==(const DeviceNode&) const = default;
};

struct Mount {
    std::string host_path;
    std::string container_path;
    std::string type;  // "" or "bind"
    std::vector<std::string> options;

    bool operator==(const Mount&) const = default;
};

enum class HookKind { CreateRuntime, CreateContainer, StartContainer, Poststart, Poststop };

struct Hook {
    HookKind kind = HookKind::CreateContainer;
    std::string path;
    std::vector<std::string> args;
    std::vector<std::string> env;
    std::optional<uint32_t> timeout_s;

    bool operator==(const Hook&) const = default;
};

struct ContainerEdits {
    std::vector<std::string> env;  // "K=V"
    std::vector<DeviceNode> device_nodes;
    std::vector<Mount> mounts;
    std::vector<Hook> hooks;

    void append(const ContainerEdits& other);
    bool operator==(const ContainerEdits&) const = default;
};

struct Device {
    std::string name;
    ContainerEdits edits;

    bool operator==(const Device&) const = default;
};

struct Spec {
    std::string file;     // where it was read from (messages)
    std::string version;  // cdiVersion
    std::string kind;     // "vendor.com/class"
    std::vector<Device> devices;
    ContainerEdits edits;  // applied once when any of its devices is requested

    bool operator==(const Spec&) const = default;
};

// The released spec versions, oldest first.
const std::vector<std::string>& known_versions();

// Errors name `file` and the offending field ("devices[0].containerEdits.deviceNodes[1].major").
Result<Spec> parse_spec_json(std::string_view text, const std::string& file);
// YAML -> the JSON parser above, through the dlopen()ed module (BERTH_CDI_YAML_MODULE overrides
// where it is looked for).
Result<Spec> parse_spec_yaml(std::string_view text, const std::string& file);
// By extension: .json, .yaml, .yml.
Result<Spec> load_spec_file(const std::string& path);

// BERTH_CDI_SPEC_DIRS (colon-separated) or /etc/cdi:/var/run/cdi.
std::vector<std::string> spec_dirs();

struct Registry {
    std::vector<Spec> specs;
    std::vector<Error> errors;  // spec files that could not be read: reported, not fatal

    // "kind=name" of every device, sorted.
    std::vector<std::string> device_names() const;
    // The edits for the requested devices ("nvidia.com/gpu=all": every device of the kind unless
    // one is named "all"), spec-level edits once per spec. An unknown name fails with the known ones.
    Result<ContainerEdits> resolve(const std::vector<std::string>& names) const;
};

// For systemd's DeviceAllow=: "HOSTPATH PERMS" of every node the names resolve to with the specs
// in spec_dirs(); nullopt when they do not resolve (config::UnitOptions::cdi_device_allow).
std::optional<std::vector<std::string>> device_allow_entries(const std::vector<std::string>& names);

// Reads every *.json, *.yaml and *.yml in `dirs` (missing directories are fine).
Registry load_registry(const std::vector<std::string>& dirs);

}  // namespace berth::cdi
