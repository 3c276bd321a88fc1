// Capability sets of a container's payload, computed from the declaration (pure), applied in the
// child with raw prctl/capset calls on precomputed masks (no allocation between clone and exec).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "basic/result.h"
#include "config/declaration.h"

namespace berth::runtime {

struct CapabilitySets {
    uint64_t bounding = 0;
    uint64_t permitted = 0;
    uint64_t effective = 0;
    uint64_t inheritable = 0;
    uint64_t ambient = 0;
};

// Docker's 14 default capabilities minus CAP_MKNOD (13; see capabilities.cpp for why).
uint64_t default_capabilities();

// Highest capability number the running kernel knows (/proc/sys/kernel/cap_last_cap).
int last_capability();

// "CAP_NET_ADMIN" / "net_admin" -> bit number (via libcap's name table).
Result<int> capability_from_name(const std::string& name);
std::string capability_name(int cap);

// The bounding set is the default set minus drops, then plus adds (Docker's order; "ALL"
// allowed on both sides: drop ALL starts from none, add ALL from all less the named drops).
// Root (uid 0) gets permitted = effective = bounding; any other user gets empty permitted and
// effective sets, as Docker does. Inheritable and ambient stay empty (CVE-2022-24769).
Result<CapabilitySets> compute_capabilities(const config::Security& security, bool root_user);

// "CapBnd" style 16-digit hex, for messages and tests.
std::string capability_mask_hex(uint64_t mask);

// Child side (after clone, before exec): async-signal-safe, returns 0 or -errno.
int drop_bounding_set(uint64_t keep, int last_cap);
int apply_capability_sets(const CapabilitySets& sets, int last_cap);

}  // namespace berth::runtime
