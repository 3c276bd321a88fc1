// User namespaces: which host ids a container's 0..size-1 map to.
//
// "pick" allocates a free range of 65536 ids, aligned to 65536, from 0x80000 (524288) up to
// 0x6fff0000 (the range systemd-nspawn uses too), avoiding ranges other berth containers hold
// and the ranges delegated in /etc/subuid and /etc/subgid. The choice is remembered per container
// in <state dir>/userns/NAME so a persistent container keeps its file ownership across runs.
// Allocation is serialised with a lock file.
//
// File ownership (root-assembly.h): the store stays unshifted. The supervisor, outside the
// namespace, idmaps every layer of the root through the container's namespace, so a file the
// image has as uid N (host uid N on disk) shows as uid N inside; writes land in the writable layer
// with the container's own ids too (container root writes host uid 0 on disk), as for volumes.
// A container keeps its data when its range changes or its user namespace is switched off. Ids
// outside the range (an image file owned by uid 70000 in a 65536-id range) show as "nobody"
// (65534) and cannot be changed. A file system that cannot be idmapped fails the start.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "basic/result.h"
#include "config/declaration.h"

namespace berth::runtime {

struct IdRange {
    uint32_t base = 0;
    uint32_t size = 0;
    bool operator==(const IdRange&) const = default;
};

inline constexpr uint32_t kPickFirst = 0x80000;
inline constexpr uint32_t kPickLast = 0x6fff0000;

// Lowest aligned base in [kPickFirst, kPickLast) whose range overlaps none of `used`.
std::optional<uint32_t> pick_free_range(const std::vector<IdRange>& used, uint32_t size);

// "user:100000:65536" lines of /etc/subuid -> ranges.
std::vector<IdRange> parse_subid_file(const std::string& text);

// Off -> nullopt; Fixed -> the declared range; Pick -> remembered or newly allocated range.
Result<std::optional<IdRange>> resolve_user_namespace(const config::Declaration& decl,
                                                      const std::string& state_dir);

// The container's map: "0 base size".
std::string container_id_map(const IdRange& range);

// Inside id that host root becomes on the writable layer's idmapped mount: overlayfs creates its
// own files there (the work directory's scratch, whiteouts) with the credentials of whoever
// mounted it, host root, and an idmapped mount refuses an id it cannot map (EOVERFLOW, the overlay
// then goes read-only). So that mount's namespace maps the container's range as the container's
// does, plus host root to this otherwise unused id; the container's own namespace never maps host
// root. What overlayfs keeps there is hidden from the container.
inline constexpr uint32_t kLayerBookkeepingId = 0xfffffffd;  // 4294967293

// The writable layer's map: the container's, plus "kLayerBookkeepingId 0 1". Fails for a range
// that reaches kLayerBookkeepingId or holds host uid 0.
Result<std::string> writable_layer_id_map(const IdRange& range);

// Parent side: writes /proc/PID/{uid_map,gid_map}, as "0 base size" or the given map.
Result<> write_id_maps(pid_t pid, const IdRange& range);
Result<> write_id_maps(pid_t pid, const std::string& map);

}  // namespace berth::runtime
