#include "store/dmthin/thin-usage.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <mutex>

#include "basic/fs-util.h"
#include "basic/string-util.h"
#include "store/dmthin/dm-ops.h"
#include "store/dmthin/program.h"

namespace berth::store::dmthin {

std::vector<std::string> thin_ls_arguments(const std::string& metadata_device) {
    // 0.9.0's flags: -m/--metadata-snap takes no argument (it reads the snapshot's location from
    // the superblock); --no-headers drops the title line.
    return {"--metadata-snap", "--no-headers", "-o", "DEV,MAPPED_BLOCKS,EXCLUSIVE_BLOCKS,SHARED_BLOCKS",
            metadata_device};
}

Result<std::map<uint32_t, ThinDeviceUsage>> parse_thin_ls(std::string_view text) {
    std::map<uint32_t, ThinDeviceUsage> out;
    int line_no = 0;
    for (auto& raw : split(text, '\n')) {
        line_no++;
        auto line = trim(raw);
        if (line.empty()) continue;
        std::vector<std::string> fields;
        for (auto& f : split(line, ' '))
            if (!f.empty()) fields.push_back(f);
        std::optional<uint64_t> v[4];
        bool ok = fields.size() == 4;
        for (size_t i = 0; ok && i < 4; i++) ok = (v[i] = parse_unsigned(fields[i])).has_value();
        if (!ok || *v[0] > UINT32_MAX)
            return fail(EBADMSG, "thin_ls output line {}: expected 'DEV MAPPED EXCLUSIVE SHARED', got '{}'",
                        line_no, std::string(line));
        out[static_cast<uint32_t>(*v[0])] = ThinDeviceUsage{*v[1], *v[2], *v[3]};
    }
    return out;
}

Result<std::pair<uint32_t, uint32_t>> thin_pool_metadata_devno(const std::string& table_params) {
    // A view into table_params itself (trimming a substr() temporary would dangle).
    auto first = trim(std::string_view(table_params).substr(0, table_params.find(' ')));
    auto colon = first.find(':');
    std::optional<uint64_t> major, minor;
    if (colon != std::string_view::npos) {
        major = parse_unsigned(first.substr(0, colon));
        minor = parse_unsigned(first.substr(colon + 1));
    }
    if (!major || !minor || *major > UINT32_MAX || *minor > UINT32_MAX)
        return fail(EBADMSG, "thin-pool table '{}' does not start with a major:minor metadata device",
                    table_params);
    return std::pair{static_cast<uint32_t>(*major), static_cast<uint32_t>(*minor)};
}

Result<std::string> block_device_node(uint32_t major, uint32_t minor) {
    std::string uevent = fmt::format("/sys/dev/block/{}:{}/uevent", major, minor);
    auto text = BERTH_TRY_CTX(read_file(uevent), fmt::format("find block device {}:{}", major, minor));
    for (auto& line : split(text, '\n')) {
        if (line.rfind("DEVNAME=", 0) != 0) continue;
        std::string node = "/dev/" + line.substr(8);
        struct stat st {};
        if (::stat(node.c_str(), &st) < 0) return fail_errno("stat '{}'", node);
        if (!S_ISBLK(st.st_mode) || ::major(st.st_rdev) != major || ::minor(st.st_rdev) != minor)
            return fail(ENODEV, "'{}' is not block device {}:{}", node, major, minor);
        return node;
    }
    return fail(ENODEV, "'{}' names no device", uevent);
}

Result<std::map<uint32_t, ThinDeviceUsage>> thin_pool_device_usage(const std::string& pool_name) {
    // A pool holds at most one metadata snapshot: two readers in this process take turns.
    static std::mutex mutex;
    std::lock_guard lock(mutex);
    if (find_program("thin_ls").empty())
        return fail(ENOENT, "thin_ls not found (install thin-provisioning-tools)");
    auto table = BERTH_TRY(dm_table(pool_name));
    auto [major, minor] =
        BERTH_TRY_CTX(thin_pool_metadata_devno(table), fmt::format("thin pool '{}'", pool_name));
    std::string metadata = BERTH_TRY(block_device_node(major, minor));

    auto reserved = dm_message(pool_name, "reserve_metadata_snap");
    if (!reserved) {
        // A snapshot left by a process that died between reserve and release: drop it, retry once.
        (void)dm_message(pool_name, "release_metadata_snap");
        BERTH_TRY_VOID_CTX(dm_message(pool_name, "reserve_metadata_snap"),
                           fmt::format("thin pool '{}': reserve a metadata snapshot", pool_name));
    }
    std::vector<std::string> argv = {"thin_ls"};
    for (auto& a : thin_ls_arguments(metadata)) argv.push_back(a);
    auto output = run_program(argv);
    auto released = dm_message(pool_name, "release_metadata_snap");
    if (!output) return fail(output.error().wrap(fmt::format("thin pool '{}'", pool_name)));
    if (!released)
        return fail(
            released.error().wrap(fmt::format("thin pool '{}': release the metadata snapshot", pool_name)));
    return with_context(parse_thin_ls(*output), fmt::format("thin pool '{}'", pool_name));
}

}  // namespace berth::store::dmthin
