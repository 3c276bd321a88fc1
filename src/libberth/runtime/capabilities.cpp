#include "runtime/capabilities.h"

#include <linux/capability.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>

#include "basic/fs-util.h"
#include "basic/string-util.h"

namespace berth::runtime {

uint64_t default_capabilities() {
    // Docker's set minus CAP_MKNOD (as Podman). Docker can grant MKNOD because its device cgroup
    // stops a container from *opening* the nodes it makes; berth has no device controller
    // (cgroup v2 would need a BPF_CGROUP_DEVICE program), so with MKNOD a container's root could
    // mknod the host's disks and read them (tests/privileged/escape: host-devices). Declarations
    // that need it can still add it with capabilities_add = ["CAP_MKNOD"].
    static constexpr int caps[] = {
        CAP_CHOWN,      CAP_DAC_OVERRIDE, CAP_FSETID,      CAP_FOWNER,  CAP_NET_RAW,
        CAP_SETGID,     CAP_SETUID,       CAP_SETFCAP,     CAP_SETPCAP, CAP_NET_BIND_SERVICE,
        CAP_SYS_CHROOT, CAP_KILL,         CAP_AUDIT_WRITE,
    };
    uint64_t mask = 0;
    for (int c : caps) mask |= uint64_t{1} << c;
    return mask;
}

int last_capability() {
    static int cached = -1;
    if (cached >= 0) return cached;
    auto text = read_file("/proc/sys/kernel/cap_last_cap");
    int value = CAP_LAST_CAP;
    if (text) {
        if (auto v = parse_unsigned(trim(*text)); v && *v < 64) value = static_cast<int>(*v);
    }
    cached = value;
    return cached;
}

Result<int> capability_from_name(const std::string& name) {
    std::string lower;
    for (char ch : name) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (lower.rfind("cap_", 0) != 0) lower = "cap_" + lower;
    cap_value_t value = 0;
    if (cap_from_name(lower.c_str(), &value) < 0 || value < 0 || value > 63)
        return fail(EINVAL, "unknown capability '{}'", name);
    return static_cast<int>(value);
}

std::string capability_name(int cap) {
    char* n = cap_to_name(static_cast<cap_value_t>(cap));
    std::string out = n ? n : fmt::format("{}", cap);
    cap_free(n);
    for (char& ch : out) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    return out;
}

Result<CapabilitySets> compute_capabilities(const config::Security& security, bool root_user) {
    int last = last_capability();
    uint64_t all = last >= 63 ? ~uint64_t{0} : ((uint64_t{1} << (last + 1)) - 1);
    auto is_all = [](const std::string& s) { return s == "ALL" || s == "all" || s == "CAP_ALL"; };
    // Docker's order (moby oci/caps TweakCapabilities), as berth.toml(5) says: drops apply
    // first, then adds, whatever order the lists are written in. "ALL" among the adds starts
    // from every capability less the named drops; "ALL" among the drops starts from none, so
    // drop ["ALL"] + add ["NET_BIND_SERVICE"] keeps exactly that one.
    bool add_all = false, drop_all = false;
    uint64_t adds = 0, drops = 0;
    for (const auto& name : security.capabilities_add) {
        if (is_all(name)) {
            add_all = true;
            continue;
        }
        int c = BERTH_TRY_CTX(capability_from_name(name), "capabilities_add");
        adds |= uint64_t{1} << c;
    }
    for (const auto& name : security.capabilities_drop) {
        if (is_all(name)) {
            drop_all = true;
            continue;
        }
        int c = BERTH_TRY_CTX(capability_from_name(name), "capabilities_drop");
        drops |= uint64_t{1} << c;
    }
    uint64_t mask = 0;
    if (add_all)
        mask = all & ~drops;
    else
        mask = ((drop_all ? 0 : default_capabilities()) & ~drops) | adds;
    mask &= all;
    CapabilitySets sets;
    sets.bounding = mask;
    if (root_user) sets.permitted = sets.effective = mask;
    return sets;
}

std::string capability_mask_hex(uint64_t mask) { return fmt::format("{:016x}", mask); }

int drop_bounding_set(uint64_t keep, int last_cap) {
    for (int c = 0; c <= last_cap; ++c) {
        if (keep & (uint64_t{1} << c)) continue;
        if (::prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL) return -errno;
    }
    return 0;
}

int apply_capability_sets(const CapabilitySets& sets, int last_cap) {
    struct __user_cap_header_struct header {};
    struct __user_cap_data_struct data[2]{};
    header.version = _LINUX_CAPABILITY_VERSION_3;
    header.pid = 0;
    data[0].effective = static_cast<uint32_t>(sets.effective);
    data[1].effective = static_cast<uint32_t>(sets.effective >> 32);
    data[0].permitted = static_cast<uint32_t>(sets.permitted);
    data[1].permitted = static_cast<uint32_t>(sets.permitted >> 32);
    data[0].inheritable = static_cast<uint32_t>(sets.inheritable);
    data[1].inheritable = static_cast<uint32_t>(sets.inheritable >> 32);
    if (::syscall(SYS_capset, &header, data) < 0) return -errno;
    if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL) return -errno;
    for (int c = 0; c <= last_cap; ++c) {
        if (!(sets.ambient & (uint64_t{1} << c))) continue;
        if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0) < 0) return -errno;
    }
    return 0;
}

}  // namespace berth::runtime
