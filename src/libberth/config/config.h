// Loading declarations: search paths, drop-in merging, validation, canonical TOML.
//
// A declaration NAME is the first NAME.toml found in the search path (like systemd units: /etc
// overrides /run overrides /usr/lib). Drop-ins NAME.toml.d/*.toml from *every* search directory are
// applied on top in lexical order of their file names (a drop-in in an earlier directory masks one
// with the same file name in a later directory). Merging: tables merge key by key, scalars and
// arrays (including [[mount]]) replace.
//
// Errors read "FILE:LINE:COL: <what was wrong>, expected <what>" (with "did you mean" hints for
// misspelled keys). One declaration may have several errors: they are all reported, one per line
// of Error::message, in file order.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "basic/result.h"
#include "config/declaration.h"

namespace berth::config {

struct SearchPaths {
    std::vector<std::string> dirs;
    // /etc/berth/containers, /run/berth/containers, /usr/lib/berth/containers, or the
    // colon-separated list in $BERTH_CONTAINERS_PATH (tests point it at temporary directories).
    static SearchPaths system();
    // /etc/berth/networks, /run/berth/networks, /usr/lib/berth/networks, or $BERTH_NETWORKS_PATH.
    static SearchPaths networks();
};

// One input file's text, for parsing without touching the disk (tests, fuzzing).
struct SourceText {
    std::string path;  // used in messages only
    std::string text;
};

// The keys the parser accepts, per table ("container", "mount" (an array of tables), ...), from
// the same list that rejects unknown keys: for checking that berth.toml(5) documents each one.
struct SchemaSection {
    std::string name;
    std::vector<std::string> keys;
};
std::vector<SchemaSection> declaration_schema();

// Parses and validates a declaration from its main file plus drop-ins (already in merge order).
// Checks that need other declarations (dependencies, cycles) are done by load_all().
Result<Declaration> parse_declaration(std::string_view name, const SourceText& main,
                                      const std::vector<SourceText>& dropins = {});

// Templates (berth.toml(5) TEMPLATES): "web@.toml" declares the template "web@"; its instance
// "web@1" is the template's file and drop-ins, then web@1.toml and web@1.toml.d/*.toml when they
// exist, merged in that order, with %i in container.hostname, container.command,
// container.environment values and [[mount]] source expanded to "1" (%% is a '%').
inline constexpr std::string_view kSampleInstance = "1";  // what a template alone is checked as
bool is_template_name(std::string_view name);             // "web@"
// An instance: `main` is the template's file, `dropins` the template's drop-ins followed by the
// instance's own file and drop-ins. Errors name the instance.
Result<Declaration> parse_instance(std::string_view name, const SourceText& main,
                                   const std::vector<SourceText>& dropins);

// Finds NAME in the search path and loads it with its drop-ins. An instance "web@1" with no
// file of its own is loaded from its template.
Result<Declaration> load_declaration(std::string_view name, const SearchPaths& paths);

// Loads one file plus its sibling NAME.toml.d/ (name taken from the file name "NAME.toml").
Result<Declaration> load_declaration_file(const std::string& path);

// Same, but keeps an explicit NAME whatever the file is called (berth run --pinned=FILE NAME).
Result<Declaration> load_declaration_file(const std::string& path, std::string_view name);

struct LoadedSet {
    std::map<std::string, Result<Declaration>> by_name;  // containers, a template's instances among them
    // Templates "web@" as checked alone (their own errors; default_instances): not containers.
    std::map<std::string, Result<Declaration>> templates;
};

// Loads every declaration in the search path. One invalid declaration never stops the others;
// adds the cross-declaration checks: a dependency on an undeclared container, dependency cycles
// (over requires, wants and after, which all order the units).
LoadedSet load_all(const SearchPaths& paths);

// Networks (NAME.toml in SearchPaths::networks()): the same search path precedence, drop-ins,
// masking and FILE:LINE:COL errors as containers.
Result<NetworkDeclaration> parse_network_declaration(std::string_view name, const SourceText& main,
                                                     const std::vector<SourceText>& dropins = {});
// NAME's declaration; kDefaultNetwork falls back to builtin_default_network() when no file
// declares it (a default.toml symlinked to /dev/null masks it: then it is an error).
Result<NetworkDeclaration> load_network(std::string_view name, const SearchPaths& paths);
// Every declared network, plus the built-in default unless declared or masked.
std::map<std::string, Result<NetworkDeclaration>> load_all_networks(const SearchPaths& paths);
// "default": subnet 10.89.0.0/24, gateway 10.89.0.1, masquerade, DNS from the host.
NetworkDeclaration builtin_default_network();

// The declaration as canonical TOML: every setting written explicitly, in a fixed order. Parsing
// it back gives an equal Declaration. Used by `berth cat` and as the pinned copy the unit runs.
std::string to_toml(const Declaration& declaration);

// NAME rules: usable as a systemd unit instance name and a hostname-ish label:
// [A-Za-z0-9][A-Za-z0-9_.-]*, at most 64 characters, not ending in a unit type suffix.
bool is_valid_name(std::string_view name);

// "foo.service", "network-online.target": a dependency entry naming a systemd unit rather than
// another container.
bool is_unit_name(std::string_view dependency);

// The systemd unit of a dependency entry: container NAME -> "berth@NAME.service", units as-is.
std::string dependency_unit(std::string_view dependency);

// True when starting the container may fetch its image from a registry: the image names a
// registry ("docker.io/library/nginx", "host:5000/app@sha256:..."), or pull = "always" / "newer"
// asks the registry every start.  The unit then waits for network-online.target.
bool pulls_from_registry(const Declaration& declaration);

// For `berth plan`: "image 'nginx:1.25' -> 'nginx:1.27'; pull \"missing\" -> \"newer\"", or ""
// when the image and pull policy are the same.
std::string describe_image_change(const Declaration& before, const Declaration& after);

}  // namespace berth::config
