// Names users give to containers and volumes, and the limits on image references: one grammar,
// one limit per kind, one error wording, for the CLI, the config parser, the bus and the store.
//
// Grammar: a letter or digit, then letters, digits, '_', '.' and '-' (so never ".", "..", a
// path, an option, a hidden file or a control character). Limits, and what each one protects:
//   container  64  the default hostname is the container name (HOST_NAME_MAX 64), and the name
//                  reaches systemd as berth-NAME.service and a machine name (both well below 255);
//   volume    120  the store keeps a volume as snapshot "v-NAME" and a container's writable layer
//                  as "c-NAME"/"e-NAME": snapshot ids are at most kSnapshotIdMax (128) bytes;
//   image     255 for the whole reference, 128 for the tag (OCI distribution spec).
// A template's instance (berth.toml(5) TEMPLATES): a container may also be named "BASE@INSTANCE"
// ("web@1"), BASE and INSTANCE each in the grammar above, one '@', the whole within the limit;
// systemd takes berth@web@1.service as a unit name (the instance string of berth@ is "web@1").
// Volumes and other objects keep the plain grammar.
// Host interface names derived from container names (ve-NAME, IFNAMSIZ 16) are shortened with a
// hash by network/plan.cpp rather than limiting container names to 12 bytes.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "basic/result.h"

namespace berth {

enum class NameKind { Container, Volume };

inline constexpr size_t kContainerNameMax = 64;
inline constexpr size_t kVolumeNameMax = 120;
inline constexpr size_t kSnapshotIdMax = 128;
inline constexpr size_t kImageNameMax = 255;
inline constexpr size_t kImageTagMax = 128;

constexpr size_t name_max(NameKind kind) {
    return kind == NameKind::Container ? kContainerNameMax : kVolumeNameMax;
}
std::string_view name_kind(NameKind kind);  // "container", "volume"

// The grammar above with an explicit limit (snapshot ids use it with kSnapshotIdMax).
bool is_plain_name(std::string_view name, size_t max);

// "BASE@INSTANCE", both parts plain names, at most `max` bytes in all.
bool is_instance_name(std::string_view name, size_t max);

// Plain names for every kind; containers also the instance form.
bool is_valid_object_name(NameKind kind, std::string_view name);

// "1 to 64 letters, digits, '_', '.' and '-', starting with a letter or digit": what error
// messages say is expected.
std::string name_rule(NameKind kind);

// EINVAL "invalid container name 'x/y': expected 1 to 64 letters, ...".
Result<> check_object_name(NameKind kind, std::string_view name);

// An image reference "name[:tag]" -> "name:tag" (":latest" added; Docker Hub's
// "docker.io/library/" dropped): docker reference rules, lower-case repository. The one image
// name check: the bus boundary, the CLI and the store all use it, so a name the bus accepts is
// one the store takes (issue #16).
Result<std::string> normalize_image_name(std::string_view name_tag);

}  // namespace berth
