// registries.toml: where images are pulled from.  Search path and drop-ins like declarations:
//   /etc/berth/registries.toml, /run/berth/..., /usr/lib/berth/... (first found wins) plus
//   registries.toml.d/*.toml (BERTH_REGISTRIES_PATH: colon-separated directories, for tests).
// Per-registry TLS material lives in certs.d/<host[:port]>/ (ca: *.crt; client: *.cert + *.key),
// the layout Docker and containers-certs.d use.
#pragma once

#include <string>
#include <vector>

#include "basic/result.h"
#include "registry/reference.h"

namespace berth::registry {

struct Mirror {
    std::string location;  // host[:port][/path prefix]
    bool insecure = false;
};

struct RegistryEntry {
    std::string prefix;     // what references start with: "docker.io", "host:5000/team"
    std::string location;   // where requests go: host[:port][/path prefix]
    bool insecure = false;  // plain HTTP (and TLS without verification is never done)
    bool blocked = false;
    std::vector<Mirror> mirrors;
};

struct RegistriesConfig {
    // Registry for short names ("nginx"); "" refuses short names.  docker.io short names with one
    // path component get "library/".
    std::string default_domain = "docker.io";
    std::vector<RegistryEntry> registries;  // longest matching prefix wins
    std::string certs_dir = "/etc/berth/certs.d";
    std::string auth_file = "/etc/berth/auth.json";
};

struct RegistriesSearchPath {
    std::vector<std::string> dirs;         // each may hold registries.toml and registries.toml.d/
    static RegistriesSearchPath system();  // BERTH_REGISTRIES_PATH or the three system dirs
};

// Errors name file:line:col like declarations; no file at all gives the defaults.
Result<RegistriesConfig> load_registries(const RegistriesSearchPath& search);

// A fully qualified reference: domain set ("index.docker.io" -> "docker.io"), "library/" added for
// docker.io one-component paths, tag "latest" when neither tag nor digest is given.
Result<Reference> qualify(const Reference& ref, const RegistriesConfig& config);

struct TlsFiles {
    std::vector<std::string> ca_files;  // extra CAs for this host (system CAs are always trusted)
    std::string client_cert;            // PEM, "" for none
    std::string client_key;
};

// One place to try a pull from.
struct Endpoint {
    std::string host;  // host[:port] requests go to ("registry-1.docker.io" for docker.io)
    std::string path;  // repository path on that host
    bool insecure = false;
    bool mirror = false;
    TlsFiles tls;
    std::string base_url() const;  // "https://host" or "http://host"
};

// Mirrors first (in order), then the registry itself; an error for a blocked registry (EACCES) and
// for a certs.d directory with a client certificate and no key or the reverse.  docker.io (as a
// location too) is served by registry-1.docker.io.
Result<std::vector<Endpoint>> endpoints_for(const Reference& qualified, const RegistriesConfig& config);

}  // namespace berth::registry
