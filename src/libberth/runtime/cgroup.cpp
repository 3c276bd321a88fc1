#include "runtime/cgroup.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <utility>

#include "basic/fs-util.h"
#include "basic/string-util.h"

namespace berth::runtime {

CgroupWrites plan_cgroup_writes(const config::Resources& r, const std::set<std::string>& available) {
    CgroupWrites w;
    auto add = [&](const char* controller, const char* setting, std::string file, std::string value) {
        if (!available.count(controller)) {
            w.unapplied.push_back(setting);
            w.missing_controllers.insert(controller);
            return;
        }
        w.controllers.insert(controller);
        w.files.emplace_back(std::move(file), std::move(value));
    };
    if (r.memory_max) add("memory", "memory_max", "memory.max", std::to_string(*r.memory_max));
    if (r.memory_high) add("memory", "memory_high", "memory.high", std::to_string(*r.memory_high));
    if (r.memory_swap_max)
        add("memory", "memory_swap_max", "memory.swap.max", std::to_string(*r.memory_swap_max));
    if (r.cpu_weight) add("cpu", "cpu_weight", "cpu.weight", std::to_string(*r.cpu_weight));
    if (r.cpu_quota_percent)
        add("cpu", "cpu_quota", "cpu.max", fmt::format("{} 100000", *r.cpu_quota_percent * 1000));
    if (!r.allowed_cpus.empty()) add("cpuset", "allowed_cpus", "cpuset.cpus", r.allowed_cpus);
    if (r.tasks_max) add("pids", "tasks_max", "pids.max", std::to_string(*r.tasks_max));
    if (r.io_weight) add("io", "io_weight", "io.weight", fmt::format("default {}", *r.io_weight));
    return w;
}

Result<std::string> own_cgroup2_path() {
    auto text = BERTH_TRY(read_file("/proc/self/cgroup"));
    for (const auto& line : split(text, '\n'))
        if (line.rfind("0::", 0) == 0) return line.substr(3);
    return fail(ENOENT, "no cgroup2 entry in /proc/self/cgroup");
}

namespace {

std::set<std::string> read_controllers(const std::string& dir) {
    std::set<std::string> out;
    if (auto text = read_file(path_join(dir, "cgroup.controllers")))
        for (const auto& c : split(std::string(trim(*text)), ' ')) out.insert(c);
    return out;
}

Result<UniqueFd> open_dir(const std::string& path) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd) return fail_errno("open cgroup '{}'", path);
    return fd;
}

bool populated(const std::string& dir) {
    auto text = read_file(path_join(dir, "cgroup.events"));
    return text && text->find("populated 1") != std::string::npos;
}

// Kills every process left in `dir` (cgroup.kill where the kernel has it, else one by one) and
// waits until it is empty.
void kill_all(const std::string& dir) {
    if (!populated(dir)) return;
    if (!write_file(path_join(dir, "cgroup.kill"), "1", O_WRONLY)) {
        if (auto procs = read_file(path_join(dir, "cgroup.procs")))
            for (const auto& p : split(*procs, '\n'))
                if (auto pid = parse_unsigned(p)) ::kill(static_cast<pid_t>(*pid), SIGKILL);
    }
    for (int i = 0; i < 500 && populated(dir); ++i) ::usleep(2000);
}

}  // namespace

ContainerCgroup::ContainerCgroup(ContainerCgroup&& other) noexcept
    : payload_(std::move(other.payload_)),
      payload_fd_(std::move(other.payload_fd_)),
      created_(std::move(other.created_)),
      prune_(std::move(other.prune_)),
      warnings_(std::move(other.warnings_)),
      active_(std::exchange(other.active_, false)) {}

ContainerCgroup& ContainerCgroup::operator=(ContainerCgroup&& other) noexcept {
    if (this != &other) {
        if (active_) (void)destroy();
        payload_ = std::move(other.payload_);
        payload_fd_ = std::move(other.payload_fd_);
        created_ = std::move(other.created_);
        prune_ = std::move(other.prune_);
        warnings_ = std::move(other.warnings_);
        active_ = std::exchange(other.active_, false);
    }
    return *this;
}

ContainerCgroup::~ContainerCgroup() {
    if (active_) (void)destroy();
}

Result<ContainerCgroup> ContainerCgroup::split_delegated(const std::string& mount_point) {
    std::string own = BERTH_TRY_CTX(own_cgroup2_path(), "find our cgroup");
    if (own == "/" || own.empty())
        return fail(EINVAL,
                    "--systemd: not running in a delegated service cgroup (we are in the root cgroup)");
    std::string unit = path_join(mount_point, own);
    // Restarted in place (or re-run): our own cgroup may already be ".../supervisor".
    if (own.size() > 11 && own.substr(own.size() - 11) == "/supervisor")
        unit = path_join(mount_point, own.substr(0, own.size() - 11));
    ContainerCgroup cg;
    std::string supervisor = path_join(unit, "supervisor");
    cg.payload_ = path_join(unit, "payload");
    if (::mkdir(supervisor.c_str(), 0755) < 0 && errno != EEXIST)
        return fail_errno("create cgroup '{}'", supervisor);
    BERTH_TRY_VOID_CTX(write_file(path_join(supervisor, "cgroup.procs"), "0", O_WRONLY), "move supervisor");
    if (::mkdir(cg.payload_.c_str(), 0755) < 0) {
        if (errno != EEXIST) return fail_errno("create cgroup '{}'", cg.payload_);
        kill_all(cg.payload_);  // left over from a previous run of this unit
    }
    // Hand every delegated controller down to the payload (best effort: systemd applies the limits
    // on the unit cgroup anyway).
    for (const auto& c : read_controllers(unit))
        (void)write_file(path_join(unit, "cgroup.subtree_control"), "+" + c, O_WRONLY);
    cg.created_ = cg.payload_;
    cg.payload_fd_ = BERTH_TRY(open_dir(cg.payload_));
    cg.active_ = true;
    return cg;
}

Result<ContainerCgroup> ContainerCgroup::create_own(const std::string& parent_dir, const std::string& name,
                                                    const config::Resources& resources, bool prune_parent) {
    ContainerCgroup cg;
    cg.payload_ = path_join(parent_dir, name);
    // Another container may prune the (empty) parent between our mkdir_p and mkdir: retry.
    for (int attempt = 0;; ++attempt) {
        bool parent_existed = path_exists(parent_dir);
        BERTH_TRY_VOID_CTX(mkdir_p(parent_dir), "create cgroup parent");
        if (prune_parent || !parent_existed) cg.prune_ = parent_dir;
        if (::mkdir(cg.payload_.c_str(), 0755) == 0) break;
        if (errno == ENOENT && attempt < 10) continue;
        if (errno != EEXIST) return fail_errno("create cgroup '{}'", cg.payload_);
        if (populated(cg.payload_))
            return fail(EBUSY, "cgroup '{}' still has processes (is the container already running?)",
                        cg.payload_);
        // A stale, empty cgroup from a crashed run: start clean.
        if (::rmdir(cg.payload_.c_str()) < 0 || ::mkdir(cg.payload_.c_str(), 0755) < 0)
            return fail_errno("recreate cgroup '{}'", cg.payload_);
        break;
    }
    cg.created_ = cg.payload_;
    cg.active_ = true;
    auto available = read_controllers(parent_dir);
    CgroupWrites writes = plan_cgroup_writes(resources, available);
    for (const auto& c : writes.controllers)
        (void)write_file(path_join(parent_dir, "cgroup.subtree_control"), "+" + c, O_WRONLY);
    for (const auto& [file, value] : writes.files)
        BERTH_TRY_VOID_CTX(write_file(path_join(cg.payload_, file), value, O_WRONLY), "apply [resources]");
    if (!writes.unapplied.empty())
        cg.warnings_.push_back(fmt::format("cgroup controller(s) {} not available under '{}': {} not applied",
                                           join(std::vector<std::string>(writes.missing_controllers.begin(),
                                                                         writes.missing_controllers.end()),
                                                ", "),
                                           parent_dir, join(writes.unapplied, ", ")));
    cg.payload_fd_ = BERTH_TRY(open_dir(cg.payload_));
    return cg;
}

ContainerCgroup ContainerCgroup::adopt(std::string payload, std::string created, std::string prune) {
    ContainerCgroup cg;
    cg.payload_ = std::move(payload);
    cg.created_ = std::move(created);
    cg.prune_ = std::move(prune);
    cg.active_ = !cg.payload_.empty();
    return cg;
}

Result<> ContainerCgroup::destroy() {
    if (!active_) return {};
    active_ = false;
    payload_fd_.reset();
    kill_all(payload_);
    // rmdir may race the kernel's last exit bookkeeping for a moment.
    if (!created_.empty()) {
        bool removed = false;
        for (int i = 0; i < 200; ++i) {
            if (::rmdir(created_.c_str()) == 0 || errno == ENOENT) {
                removed = true;
                break;
            }
            if (errno != EBUSY) break;
            ::usleep(2000);
        }
        if (!removed) return fail_errno("remove cgroup '{}'", created_);
        // The last container out removes the parent; EBUSY/ENOTEMPTY means another container
        // still lives there (or has just created its cgroup): not our business.
        if (!prune_.empty()) (void)::rmdir(prune_.c_str());
    }
    return {};
}

}  // namespace berth::runtime
