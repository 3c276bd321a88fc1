// User namespaces: which host ids a container's 0..size-1 map to.
//
// "pick" allocates a free range of 65536 ids, aligned to 65536, from 0x80000 (524288) up to
// 0x6fff0000 (the range systemd-nspawn uses too), avoiding ranges other berth containers hold
// and the ranges delegated in /etc/subuid and /etc/subgid. The choice is remembered per container
// in <state dir>/userns/NAME so a persistent container keeps its file ownership across runs.
// Allocation is serialised with a lock file.
//
// File ownership: the runtime gives the container an idmapped mount of its base layer (host uid 0
// shows as container uid 0). Where the file system cannot be idmapped, the documented fallback is
// that files owned by host uid 0 appear as "nobody" (65534) inside the container; the writable
// layer is still owned by the container's root.
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

// Parent side: writes /proc/PID/{uid_map,gid_map} as "0 base size".
Result<> write_id_maps(pid_t pid, const IdRange& range);

}  // namespace berth::runtime
