// Image references as the distribution grammar defines them (github.com/distribution/reference):
//   nginx   nginx:1.27   library/nginx   docker.io/library/nginx   host:5000/team/app@sha256:...
//   name:tag@digest
// parse_reference() splits the text into its parts and fills in nothing; qualify() (registries.h)
// applies the configured default registry to short names, so that nothing is guessed silently.
#pragma once

#include <string>
#include <string_view>

#include "basic/result.h"

namespace berth::registry {

struct Reference {
    std::string domain;  // "docker.io", "127.0.0.1:5000"; "" for a short name
    std::string path;    // repository path on that registry: "library/nginx", "team/app"
    std::string tag;     // "" when the text has none
    std::string digest;  // "sha256:<64 lowercase hex>", "" when the text has none

    // "domain/path" (or "path" for a short name): the repository, without tag or digest.
    std::string repository() const;
    // The canonical text: repository[:tag][@digest].
    std::string str() const;
    bool operator==(const Reference&) const = default;
};

// Strict: a clear error names the offending part ("repository name must be lowercase", ...).
Result<Reference> parse_reference(std::string_view text);

// True when `text` can only be a remote reference (it names a registry domain or pins a digest on a
// qualified name), as opposed to a local image name such as "web" or "web:v1".
bool names_a_registry(std::string_view text);

// The grammar's parts, for registries.toml and the auth file: a registry "host[:port]" (a DNS
// name or an IP, IPv6 in brackets), and a repository path ("team/app": lowercase components).
bool valid_domain(std::string_view domain);
bool valid_repository_path(std::string_view path);

// A registries.toml prefix or auth-file key, "registry[/repository]": a domain as the reference
// grammar recognises one ("quay.io", "localhost:5000", not "team"), an optional repository path,
// no tag or digest.  Docker Hub's aliases ("index.docker.io", "registry-1.docker.io") become
// "docker.io".  The result's path is "" for a bare registry.
Result<Reference> parse_registry_prefix(std::string_view text);

}  // namespace berth::registry
