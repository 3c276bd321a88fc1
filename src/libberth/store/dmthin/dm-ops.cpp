#include "store/dmthin/dm-ops.h"

#include <fcntl.h>
#include <libdevmapper.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cstdarg>
#include <cstdio>
#include <mutex>
#include <sstream>

#include "basic/dlopen-util.h"
#include "basic/fs-util.h"
#include "basic/string-util.h"
#include "basic/unique.h"

// libdevmapper (with libudev and libselinux behind it), loaded by dlopen() when a dm-thin store
// first needs it (basic/dlopen-util.h): other backends never map it.
#define BERTH_LIBDEVMAPPER_SYMBOLS(X) \
    X(dm_get_next_target)             \
    X(dm_log_with_errno_init)         \
    X(dm_task_add_target)             \
    X(dm_task_create)                 \
    X(dm_task_deferred_remove)        \
    X(dm_task_destroy)                \
    X(dm_task_get_errno)              \
    X(dm_task_get_info)               \
    X(dm_task_get_names)              \
    X(dm_task_retry_remove)           \
    X(dm_task_run)                    \
    X(dm_task_set_add_node)           \
    X(dm_task_set_message)            \
    X(dm_task_set_name)               \
    X(dm_task_set_ro)                 \
    X(dm_task_set_sector)             \
    X(dm_task_update_nodes)           \
    X(dm_udev_set_sync_support)
BERTH_LIBDEVMAPPER_SYMBOLS(BERTH_DL_DECLARE)
BERTH_LIBDEVMAPPER_SYMBOLS(BERTH_DL_DEFINE)
BERTH_ELF_NOTE_DLOPEN(libdevmapper_note, "dm-thin backend", "libdevmapper.so.1.02.1")

namespace berth::store::dmthin {

namespace {

DlLibrary libdevmapper{"libdevmapper.so.1.02.1", {BERTH_LIBDEVMAPPER_SYMBOLS(BERTH_DL_ENTRY)}};

void destroy_task(dm_task* task) { sym_dm_task_destroy(task); }
using DmTask = CPtr<dm_task, destroy_task>;

// libdevmapper reports failures through its log callback; we keep the last error-level messages
// of this thread and attach them to the Result of the call that produced them.
thread_local std::string dm_last_error;

extern "C" void capture_dm_log(int level, const char*, int, int, const char* format, ...) {
    if (level > 3 /* _LOG_ERR */) return;  // warnings and debug output are dropped
    char buffer[512];
    va_list ap;
    va_start(ap, format);
    vsnprintf(buffer, sizeof buffer, format, ap);
    va_end(ap);
    if (!dm_last_error.empty()) dm_last_error += "; ";
    dm_last_error += buffer;
}

Unexpected dm_fail(dm_task* task, std::string_view what, const std::string& name) {
    int code = task ? sym_dm_task_get_errno(task) : 0;
    if (code <= 0) code = EIO;
    std::string detail = std::exchange(dm_last_error, {});
    if (detail.empty()) return fail(code, "{} '{}'", what, name);
    return fail(code, "{} '{}' ({})", what, name, detail);
}

Result<DmTask> new_task(int type, const std::string& name) {
    BERTH_TRY_VOID(init_devmapper());
    dm_last_error.clear();
    DmTask task(sym_dm_task_create(type));
    if (!task) return fail(ENOMEM, "dm_task_create");
    if (!name.empty() && !sym_dm_task_set_name(task.get(), name.c_str()))
        return dm_fail(task.get(), "set device name", name);
    return task;
}

// libdevmapper queues node operations; flush them, then make sure the node is there (or gone)
// whatever the library decided to do about udev.
Result<> ensure_node(const std::string& name, uint32_t major, uint32_t minor) {
    BERTH_TRY_VOID(init_devmapper());
    sym_dm_task_update_nodes();
    std::string path = mapper_path(name);
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0) {
        if (S_ISBLK(st.st_mode) && st.st_rdev == makedev(major, minor)) return {};
        ::unlink(path.c_str());
    }
    BERTH_TRY_VOID(mkdir_p("/dev/mapper"));
    if (::mknod(path.c_str(), S_IFBLK | 0600, makedev(major, minor)) < 0 && errno != EEXIST)
        return fail_errno("mknod '{}'", path);
    return {};
}

}  // namespace

Result<> init_devmapper() {
    BERTH_TRY_VOID(libdevmapper.load());
    static std::once_flag once;
    std::call_once(once, [] {
        sym_dm_udev_set_sync_support(0);
        sym_dm_log_with_errno_init(capture_dm_log);
    });
    return {};
}

bool devmapper_available() {
    if (!init_devmapper()) return false;
    if (::access("/dev/mapper/control", F_OK) != 0 && ::access("/sys/module/dm_mod", F_OK) != 0) return false;
    auto task = new_task(DM_DEVICE_VERSION, "");
    return task && sym_dm_task_run(task->get());
}

std::string mapper_path(const std::string& name) { return "/dev/mapper/" + name; }

Result<ThinPoolStatus> parse_thin_pool_status(const std::string& params) {
    // <transaction id> <used meta>/<total meta> <used data>/<total data> <held root> ro|rw|out_of_data_space
    // ... or just "Fail" / "Error".
    ThinPoolStatus status;
    std::istringstream in(params);
    std::string tok;
    if (!(in >> tok)) return fail(EINVAL, "empty thin-pool status");
    if (tok == "Fail" || tok == "Error") {
        status.failed = true;
        return status;
    }
    auto parse_u64 = [](const std::string& s, uint64_t& out) {
        if (s.empty()) return false;
        char* end = nullptr;
        errno = 0;
        out = strtoull(s.c_str(), &end, 10);
        return errno == 0 && end && *end == '\0';
    };
    auto parse_pair = [&](const std::string& s, uint64_t& a, uint64_t& b) {
        auto slash = s.find('/');
        return slash != std::string::npos && parse_u64(s.substr(0, slash), a) &&
               parse_u64(s.substr(slash + 1), b);
    };
    std::string meta, data, held, mode;
    if (!parse_u64(tok, status.transaction_id) || !(in >> meta >> data) ||
        !parse_pair(meta, status.metadata_used, status.metadata_total) ||
        !parse_pair(data, status.data_used, status.data_total))
        return fail(EINVAL, "unparsable thin-pool status '{}'", params);
    if (in >> held >> mode) {
        status.read_only = mode == "ro";
        status.out_of_data_space = mode == "out_of_data_space";
        std::string rest;
        while (in >> rest)
            if (rest == "needs_check") status.read_only = true;
    }
    return status;
}

std::string thin_pool_params(const std::string& metadata_dev, const std::string& data_dev,
                             uint32_t data_block_sectors, uint64_t low_water_blocks, bool zero_blocks) {
    // error_if_no_space: a full pool fails writes at once instead of queueing them for 60 s (or
    // forever), so a full pool can never hang berthd or a container's I/O.
    std::vector<std::string> features = {"error_if_no_space"};
    if (!zero_blocks) features.push_back("skip_block_zeroing");
    std::string out = fmt::format("{} {} {} {} {}", metadata_dev, data_dev, data_block_sectors,
                                  low_water_blocks, features.size());
    for (auto& f : features) out += " " + f;
    return out;
}

std::string thin_params(const std::string& pool_dev, uint32_t device_id) {
    return fmt::format("{} {}", pool_dev, device_id);
}

Result<DmInfo> dm_info(const std::string& name) {
    auto task = BERTH_TRY(new_task(DM_DEVICE_INFO, name));
    if (!sym_dm_task_run(task.get())) return dm_fail(task.get(), "query device-mapper device", name);
    struct dm_info raw {};
    if (!sym_dm_task_get_info(task.get(), &raw))
        return dm_fail(task.get(), "query device-mapper device", name);
    DmInfo info;
    info.exists = raw.exists;
    info.suspended = raw.suspended;
    info.read_only = raw.read_only;
    info.open_count = raw.open_count;
    info.major = raw.major;
    info.minor = raw.minor;
    return info;
}

Result<> dm_create(const std::string& name, uint64_t sectors, const std::string& target,
                   const std::string& params, bool read_only) {
    auto task = BERTH_TRY(new_task(DM_DEVICE_CREATE, name));
    if (!sym_dm_task_add_target(task.get(), 0, sectors, target.c_str(), params.c_str()))
        return dm_fail(task.get(), "add target to", name);
    if (read_only) sym_dm_task_set_ro(task.get());
    sym_dm_task_set_add_node(task.get(), DM_ADD_NODE_ON_CREATE);
    if (!sym_dm_task_run(task.get()))
        return dm_fail(task.get(), fmt::format("create device ({} {})", target, params), name);
    struct dm_info raw {};
    if (!sym_dm_task_get_info(task.get(), &raw) || !raw.exists)
        return dm_fail(task.get(), "query new device", name);
    return ensure_node(name, raw.major, raw.minor);
}

Result<> dm_remove(const std::string& name, bool deferred) {
    auto info = BERTH_TRY(dm_info(name));
    if (!info.exists) {
        ::unlink(mapper_path(name).c_str());
        return {};
    }
    if (info.open_count > 0 && !deferred)
        return fail(EBUSY, "remove device '{}': in use ({} opener{})", name, info.open_count,
                    info.open_count == 1 ? "" : "s");
    if (info.open_count == 0) {
        auto task = BERTH_TRY(new_task(DM_DEVICE_REMOVE, name));
        sym_dm_task_retry_remove(task.get());  // a short-lived opener (blkid, a closing mount) is not "busy"
        if (sym_dm_task_run(task.get())) {
            sym_dm_task_update_nodes();
            ::unlink(mapper_path(name).c_str());
            return {};
        }
        int code = sym_dm_task_get_errno(task.get());
        if (code != EBUSY || !deferred) return dm_fail(task.get(), "remove device", name);
    }
    // Still open (a container is using it): let the kernel remove it at the last close.
    auto task = BERTH_TRY(new_task(DM_DEVICE_REMOVE, name));
    sym_dm_task_deferred_remove(task.get());
    if (!sym_dm_task_run(task.get())) return dm_fail(task.get(), "schedule deferred removal of device", name);
    return {};
}

Result<> dm_suspend(const std::string& name) {
    auto task = BERTH_TRY(new_task(DM_DEVICE_SUSPEND, name));  // flushes and freezes a mounted fs
    if (!sym_dm_task_run(task.get())) return dm_fail(task.get(), "suspend device", name);
    return {};
}

Result<> dm_resume(const std::string& name) {
    auto task = BERTH_TRY(new_task(DM_DEVICE_RESUME, name));
    sym_dm_task_set_add_node(task.get(), DM_ADD_NODE_ON_RESUME);
    if (!sym_dm_task_run(task.get())) return dm_fail(task.get(), "resume device", name);
    sym_dm_task_update_nodes();
    return {};
}

Result<> dm_message(const std::string& name, const std::string& message) {
    auto task = BERTH_TRY(new_task(DM_DEVICE_TARGET_MSG, name));
    if (!sym_dm_task_set_sector(task.get(), 0) || !sym_dm_task_set_message(task.get(), message.c_str()))
        return dm_fail(task.get(), "prepare message", name);
    if (!sym_dm_task_run(task.get()))
        return dm_fail(task.get(), fmt::format("message \"{}\" to", message), name);
    return {};
}

// The parameters of a device's (first) target, as a STATUS or TABLE query reports them.
static Result<std::string> first_target_params(int query, const std::string& name, const char* what) {
    auto task = BERTH_TRY(new_task(query, name));
    if (!sym_dm_task_run(task.get())) return dm_fail(task.get(), what, name);
    uint64_t start = 0, length = 0;
    char* type = nullptr;
    char* params = nullptr;
    sym_dm_get_next_target(task.get(), nullptr, &start, &length, &type, &params);
    if (!type) return fail(ENXIO, "device '{}' has no table", name);
    return std::string(params ? params : "");
}

Result<std::string> dm_status(const std::string& name) {
    return first_target_params(DM_DEVICE_STATUS, name, "read status of");
}

Result<std::string> dm_table(const std::string& name) {
    return first_target_params(DM_DEVICE_TABLE, name, "read table of");
}

Result<std::vector<std::string>> dm_list(const std::string& prefix) {
    auto task = BERTH_TRY(new_task(DM_DEVICE_LIST, ""));
    if (!sym_dm_task_run(task.get())) return dm_fail(task.get(), "list devices", "device-mapper");
    std::vector<std::string> names;
    dm_names* entry = sym_dm_task_get_names(task.get());
    if (!entry || !entry->dev) return names;
    for (;;) {
        std::string n = entry->name;
        if (n.rfind(prefix, 0) == 0) names.push_back(n);
        if (!entry->next) break;
        entry = reinterpret_cast<dm_names*>(reinterpret_cast<char*>(entry) + entry->next);
    }
    return names;
}

Result<ThinPoolStatus> thin_pool_status(const std::string& pool_name) {
    auto params = BERTH_TRY(dm_status(pool_name));
    return with_context(parse_thin_pool_status(params), fmt::format("thin pool '{}'", pool_name));
}

Result<uint64_t> device_sectors(const std::string& path) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return fail_errno("open '{}'", path);
    struct stat st {};
    if (::fstat(fd.get(), &st) < 0) return fail_errno("stat '{}'", path);
    if (S_ISREG(st.st_mode)) return static_cast<uint64_t>(st.st_size) / 512;
    uint64_t bytes = 0;
    if (::ioctl(fd.get(), BLKGETSIZE64, &bytes) < 0) return fail_errno("BLKGETSIZE64 '{}'", path);
    return bytes / 512;
}

Result<> discard_device(const std::string& path) {
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
    if (!fd) return fail_errno("open '{}'", path);
    uint64_t bytes = 0;
    if (::ioctl(fd.get(), BLKGETSIZE64, &bytes) < 0) return fail_errno("BLKGETSIZE64 '{}'", path);
    uint64_t range[2] = {0, bytes};
    if (::ioctl(fd.get(), BLKDISCARD, range) < 0) return fail_errno("discard '{}'", path);
    return {};
}

}  // namespace berth::store::dmthin
