// berth rm NAME [--force] [--json] and berth prune [--json]: removing a container's state from the
// store (issue #15 item 2). Every non-ephemeral run keeps its writable layer (even one that failed
// before the payload ran), which then pins its image; these are the ways to let go of it.
//
// What "the container is active" means here: its unit is active or activating in systemd (when
// systemd is reachable), or a `berth run` of it holds <run dir>/containers/NAME.lock. While `rm`
// removes, it holds that lock itself, so no run of NAME can start half-way through; the store
// (berthd) refuses on its own too while the process that prepared the layer lives.
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <thread>

#include "basic/fs-util.h"
#include "basic/string-util.h"
#include "basic/unique.h"
#include "bus/storage.h"
#include "command.h"
#include "config/config.h"
#include "network/declared.h"
#include "runtime/paths.h"
#include "runtime/state.h"
#include "storage-cli.h"
#include "systemd/systemd1.h"

namespace berth::cli {

namespace {

// The run lock of NAME, held by this process while it removes (runtime/container.cpp's NameLock
// takes the same flock). Unlinked again when released, as the runtime does.
class RunLock {
public:
    ~RunLock() {
        if (fd_) ::unlink(path_.c_str());
    }
    // EBUSY while a run holds it.
    Result<> take(const std::string& name) {
        auto dir = BERTH_TRY(runtime::prepare_containers_run_dir());
        path_ = path_join(dir, name + ".lock");
        UniqueFd fd(::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
        if (!fd) return fail_errno("open '{}'", path_);
        if (::flock(fd.get(), LOCK_EX | LOCK_NB) < 0) {
            if (errno == EWOULDBLOCK)
                return fail(EBUSY, "container '{}' is running (lock '{}' is held)", name, path_);
            return fail_errno("lock '{}'", path_);
        }
        // A run that ended meanwhile unlinked the file we locked: a new run would lock a new
        // one. Only the file at the path counts.
        struct stat held {
        }, now{};
        if (::fstat(fd.get(), &held) < 0 || ::stat(path_.c_str(), &now) < 0 || held.st_ino != now.st_ino)
            return fail(EBUSY, "container '{}': its run lock changed hands; try again", name);
        fd_ = std::move(fd);
        return {};
    }

private:
    std::string path_;
    UniqueFd fd_;
};

bool unit_busy(const systemd::UnitState& u) {
    return u.is_active() || u.active_state == "activating" || u.active_state == "deactivating";
}

// --force without systemd (or a `berth run` outside the unit): SIGTERM to the supervisor, which
// stops the payload with its stop signal; SIGKILL when the run still holds its lock after
// `grace`. Ends with `lock` taken (the run is gone) or an error.
Result<> stop_run(const std::string& name, RunLock& lock, std::chrono::seconds grace) {
    auto state = runtime::read_state(name);
    if (!state) return fail(EBUSY, "container '{}' is starting or stopping; try again", name);
    const pid_t sup = state->supervisor_pid;
    if (sup <= 0) return fail(ESRCH, "container '{}': no supervisor pid in its state", name);
    ::kill(sup, SIGTERM);
    for (int sig : {0, SIGKILL}) {
        if (sig) ::kill(sup, sig);
        auto deadline = std::chrono::steady_clock::now() + (sig ? std::chrono::seconds(5) : grace);
        while (std::chrono::steady_clock::now() < deadline) {
            auto taken = lock.take(name);
            if (taken) return {};
            if (taken.error().code != EBUSY) return taken;
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
    }
    return fail(EBUSY, "container '{}' did not stop (supervisor pid {})", name, sup);
}

struct RmOptions {
    std::string name;
    bool force = false, json = false, verbose = false;
};

int do_rm(const RmOptions& o) {
    const std::string name = container_name(o.name);
    if (auto v = bus::validate_object_name("container", name); !v)
        return report_error("rm", v.error().what());
    const std::string unit = "berth@" + name + ".service";
    bool stopped = false;
    if (auto manager = systemd::Manager::open_system()) {
        if (auto u = manager->unit_state(unit); u && unit_busy(*u)) {
            if (!o.force)
                return report_error("rm",
                                    fmt::format("container '{}' is {} ({}): stop it first ('berth stop {}') "
                                                "or use --force",
                                                name, u->active_state, unit, name));
            if (auto r = manager->stop(unit); !r)
                return report_error("rm", fmt::format("container '{}': {}", name, r.error().what()));
            stopped = true;
        }
    }
    RunLock lock;
    auto locked = lock.take(name);
    if (!locked && locked.error().code == EBUSY && o.force) {
        locked = stop_run(name, lock, std::chrono::seconds(30));
        stopped = bool(locked);
    }
    if (!locked) {
        if (locked.error().code == EBUSY)
            return report_error("rm", fmt::format("{}: stop it first or use --force", locked.error().what()));
        return report_error("rm", locked.error().what());
    }
    auto storage = open_storage_verbose(o.verbose);
    if (!storage) return report_error("rm", storage.error().what());
    auto removed = (*storage)->remove_container(name);
    if (!removed && removed.error().code != ENOENT) return report_error("rm", removed.error().what());
    // Its addresses on declared networks go back to their pools (kept across restarts until now),
    // also when the store never knew it (a rootfs container) or has forgotten it already.
    auto released = network::release_all_addresses(name);
    if (!released) return report_error("rm", released.error().what());
    if (!removed && released->empty())
        return report_error("rm", fmt::format("container '{}' has no state in the store", name));
    if (o.json)
        std::printf(
            "%s\n",
            nlohmann::json{
                {"name", name}, {"removed", true}, {"stopped", stopped}, {"released_addresses_on", *released}}
                .dump(2)
                .c_str());
    else
        std::printf(
            "Removed container %s%s%s\n", name.c_str(), stopped ? " (stopped first)" : "",
            released->empty() ? "" : fmt::format(", its addresses on {}", join(*released, ", ")).c_str());
    return 0;
}

// Containers with a declaration (valid or not: an invalid one is being edited, not abandoned),
// and every one that runs now, are kept; prune removes the state of the others.
std::vector<std::string> names_to_keep() {
    std::vector<std::string> keep;
    for (const auto& [name, _] : config::load_all(config::SearchPaths::system()).by_name)
        keep.push_back(name);
    for (const auto& name : runtime::list_running()) keep.push_back(name);
    return keep;
}

int do_prune(bool json, bool verbose) {
    auto storage = open_storage_verbose(verbose);
    if (!storage) return report_error("prune", storage.error().what());
    auto report = (*storage)->prune_containers(names_to_keep());
    if (!report) return report_error("prune", report.error().what());
    return print_removal_report(*report, json, "container ", "container(s)");
}

}  // namespace

void register_rm(CLI::App& app, CommandContext& ctx) {
    // Flags both commands take (bound to each command's own options).
    auto output_flags = [](CLI::App* sub, bool& json, bool& verbose) {
        sub->add_flag("--json", json, "Print JSON");
        sub->add_flag("-v,--verbose", verbose, "Say whether berthd or the embedded store is used");
    };
    auto o = std::make_shared<RmOptions>();
    auto* rm = app.add_subcommand(
        "rm", "Remove a container's writable layer(s) from the store and release its network addresses");
    output_flags(rm, o->json, o->verbose);
    rm->add_flag("-f,--force", o->force, "stop the container first (its unit, or the running `berth run`)");
    rm->add_option("NAME", o->name, "container NAME or path to NAME.toml")->required();
    rm->callback([&ctx, o] { ctx.exit_code = do_rm(*o); });

    auto prune = std::make_shared<RmOptions>();
    auto* sub = app.add_subcommand(
        "prune", "Remove the writable layers of containers that have no declaration and do not run");
    output_flags(sub, prune->json, prune->verbose);
    sub->callback([&ctx, prune] { ctx.exit_code = do_prune(prune->json, prune->verbose); });
}

}  // namespace berth::cli
