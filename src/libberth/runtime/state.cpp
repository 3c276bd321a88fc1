#include "runtime/state.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "basic/fs-private.h"
#include "basic/fs-util.h"
#include "basic/unique.h"
#include "runtime/paths.h"

namespace berth::runtime {

using nlohmann::json;

std::string state_to_json(const RuntimeState& s) {
    json j;
    j["name"] = s.name;
    j["pid"] = s.pid;
    j["supervisor_pid"] = s.supervisor_pid;
    j["cgroup"] = s.cgroup;
    j["started_at_usec"] = s.started_at_usec;
    j["image_id"] = s.image_id;
    j["network_mode"] = s.network_mode;
    j["address"] = s.address;
    j["hostname"] = s.hostname;
    if (s.user_namespace)
        j["user_namespace"] = {{"base", s.user_namespace->base}, {"size", s.user_namespace->size}};
    else
        j["user_namespace"] = nullptr;
    j["uid"] = s.uid;
    j["gid"] = s.gid;
    j["groups"] = s.groups;
    j["env"] = s.env;
    j["workdir"] = s.workdir;
    j["bounding"] = s.bounding;
    j["effective"] = s.effective;
    j["no_new_privileges"] = s.no_new_privileges;
    j["seccomp"] = s.seccomp;
    j["health"] = nullptr;
    if (const auto& h = s.health)
        j["health"] = {{"command", h->command},
                       {"interval_us", h->interval_us},
                       {"timeout_us", h->timeout_us},
                       {"start_period_us", h->start_period_us},
                       {"start_interval_us", h->start_interval_us},
                       {"retries", h->retries},
                       {"on_failure", h->on_failure},
                       {"notify_healthy", h->notify_healthy},
                       {"watchdog", h->watchdog}};
    const Teardown& t = s.teardown;
    j["teardown"] = {{"cgroup_remove", t.cgroup_remove},
                     {"cgroup_prune", t.cgroup_prune},
                     {"notify_socket", t.notify_socket},
                     {"snapshot", t.snapshot},
                     {"network", nullptr}};
    if (t.network)
        j["teardown"]["network"] = {{"host_interface", t.network->host_interface},
                                    {"own_link", t.network->own_link},
                                    {"nft_remove", t.network->nft_remove},
                                    {"own_nft", t.network->own_nft},
                                    {"localnet_bridge", t.network->localnet_bridge},
                                    {"more_interfaces", t.network->more_interfaces},
                                    {"loopback_proxies", t.network->loopback_proxies}};
    return j.dump(2) + "\n";
}

Result<RuntimeState> state_from_json(const std::string& text, const std::string& origin) {
    json j = json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return fail(EINVAL, "'{}': not a runtime state object", origin);
    RuntimeState s;
    try {
        s.name = j.at("name").get<std::string>();
        s.pid = j.at("pid").get<pid_t>();
        s.supervisor_pid = j.at("supervisor_pid").get<pid_t>();
        s.cgroup = j.at("cgroup").get<std::string>();
        s.started_at_usec = j.at("started_at_usec").get<uint64_t>();
        s.image_id = j.value("image_id", "");
        s.network_mode = j.value("network_mode", "");
        s.address = j.value("address", "");
        s.hostname = j.value("hostname", "");
        if (j.contains("user_namespace") && j["user_namespace"].is_object())
            s.user_namespace = IdRange{j["user_namespace"].at("base").get<uint32_t>(),
                                       j["user_namespace"].at("size").get<uint32_t>()};
        s.uid = j.value("uid", 0u);
        s.gid = j.value("gid", 0u);
        s.groups = j.value("groups", std::vector<uint32_t>{});
        s.env = j.value("env", std::vector<std::string>{});
        s.workdir = j.value("workdir", "/");
        s.bounding = j.value("bounding", uint64_t{0});
        s.effective = j.value("effective", uint64_t{0});
        s.no_new_privileges = j.value("no_new_privileges", true);
        s.seccomp = j.value("seccomp", "");
        if (j.contains("health") && j["health"].is_object()) {
            const json& h = j["health"];
            HealthSpec spec;
            spec.command = h.at("command").get<std::vector<std::string>>();
            spec.interval_us = h.at("interval_us").get<uint64_t>();
            spec.timeout_us = h.at("timeout_us").get<uint64_t>();
            spec.start_period_us = h.at("start_period_us").get<uint64_t>();
            spec.start_interval_us = h.at("start_interval_us").get<uint64_t>();
            spec.retries = h.at("retries").get<uint32_t>();
            spec.on_failure = h.at("on_failure").get<int>();
            spec.notify_healthy = h.value("notify_healthy", false);
            spec.watchdog = h.value("watchdog", false);
            s.health = std::move(spec);
        }
        if (j.contains("teardown") && j["teardown"].is_object()) {
            const json& t = j["teardown"];
            s.teardown.cgroup_remove = t.value("cgroup_remove", "");
            s.teardown.cgroup_prune = t.value("cgroup_prune", "");
            s.teardown.notify_socket = t.value("notify_socket", "");
            s.teardown.snapshot = t.value("snapshot", false);
            if (t.contains("network") && t["network"].is_object()) {
                const json& n = t["network"];
                s.teardown.network = NetworkTeardown{
                    n.value("host_interface", ""),
                    n.value("own_link", false),
                    n.value("nft_remove", ""),
                    n.value("own_nft", false),
                    n.value("localnet_bridge", ""),
                    n.value("more_interfaces", std::vector<std::string>{}),
                    n.value("loopback_proxies", std::vector<std::pair<pid_t, std::string>>{})};
            }
        }
    } catch (const json::exception& e) {
        return fail(EINVAL, "'{}': {}", origin, e.what());
    }
    return s;
}

std::string state_file_path(const std::string& name) {
    return path_join(containers_run_dir(), name + ".json");
}

Result<std::string> prepare_containers_run_dir() {
    std::string dir = containers_run_dir();
    BERTH_TRY_VOID_CTX(make_private_directory(dir, kContainersRunDirMode), "runtime directory");
    return dir;
}

Result<> write_state(const RuntimeState& state) {
    BERTH_TRY_VOID(prepare_containers_run_dir());
    // Readers must never see half a file, hence write + rename; but no fsync: the state describes
    // running processes and means nothing after a crash or reboot (and fsync costs milliseconds
    // of every start where /run is not a tmpfs).
    std::string path = state_file_path(state.name);
    std::string tmp = path + fmt::format(".tmp-{}", ::getpid());
    // 0600: the state holds the payload's environment, secrets from environment_files included.
    // (A umask can only take bits away.) O_EXCL after the unlink: a leftover of the same name, from
    // a supervisor that died with this pid, is replaced rather than written through.
    ::unlink(tmp.c_str());
    BERTH_TRY_VOID(write_file(tmp, state_to_json(state), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0600));
    if (::rename(tmp.c_str(), path.c_str()) < 0) {
        ::unlink(tmp.c_str());
        return fail_errno("rename '{}' to '{}'", tmp, path);
    }
    return {};
}

static bool supervisor_alive(const std::string& name) {
    UniqueFd fd(::open(path_join(containers_run_dir(), name + ".lock").c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return false;
    if (::flock(fd.get(), LOCK_SH | LOCK_NB) == 0) return false;  // nobody holds it
    return errno == EWOULDBLOCK;
}

Result<RuntimeState> read_state(const std::string& name) {
    std::string path = state_file_path(name);
    auto text = read_file(path);
    // Only root may read the state (it holds the environment): say so rather than "not running".
    if (!text && text.error().code != ENOENT && text.error().code != ENOTDIR) return Unexpected(text.error());
    if (!text || !supervisor_alive(name)) return fail(ESRCH, "container '{}' is not running", name);
    return state_from_json(*text, path);
}

void remove_state(const std::string& name) {
    ::unlink(state_file_path(name).c_str());
    for (const char* suffix : {".health", ".probes.json", ".probes.lock"})
        ::unlink(path_join(containers_run_dir(), name + suffix).c_str());
}

namespace {

// The image's test as an exec-form command; empty for none, NONE, or a form we do not know.
std::vector<std::string> image_health_command(const store::ImageHealthcheck& h) {
    if (h.test.size() >= 2 && h.test[0] == "CMD") return {h.test.begin() + 1, h.test.end()};
    if (h.test.size() == 2 && h.test[0] == "CMD-SHELL") return {"/bin/sh", "-c", h.test[1]};
    return {};
}

// A declaration's key, else the image's (nanoseconds, 0 = unset), else Docker's default.
uint64_t pick_us(const std::optional<uint64_t>& declared, uint64_t image_ns, uint64_t fallback_us) {
    if (declared) return *declared;
    return image_ns ? image_ns / 1000 : fallback_us;
}

}  // namespace

Result<std::optional<HealthSpec>> resolve_health(const config::Declaration& decl,
                                                 const store::ImageConfig* image) {
    const config::Health& h = decl.health;
    const store::ImageHealthcheck none;
    const store::ImageHealthcheck& img = image ? image->healthcheck : none;
    std::vector<std::string> command = h.command ? *h.command : image_health_command(img);
    const bool wanted = decl.notify == config::NotifyMode::Healthy || h.watchdog;
    if (command.empty()) {
        if (wanted)
            return fail(
                EINVAL, "container '{}': {} needs a health check, expected [health] command = [...]{}",
                decl.name,
                decl.notify == config::NotifyMode::Healthy ? "notify = \"healthy\"" : "[health] watchdog",
                h.command ? "" : " or an image with a HEALTHCHECK");
        return std::optional<HealthSpec>{};
    }
    HealthSpec spec;
    spec.command = std::move(command);
    spec.interval_us = pick_us(h.interval_us, img.interval_ns, config::kHealthDefaultIntervalUs);
    spec.timeout_us = pick_us(h.timeout_us, img.timeout_ns, config::kHealthDefaultTimeoutUs);
    spec.start_period_us = pick_us(h.start_period_us, img.start_period_ns, 0);
    spec.start_interval_us =
        pick_us(h.start_interval_us, img.start_interval_ns, config::kHealthDefaultStartIntervalUs);
    spec.retries = h.retries.value_or(img.retries ? img.retries : config::kHealthDefaultRetries);
    spec.on_failure = static_cast<int>(h.on_failure);
    spec.notify_healthy = decl.notify == config::NotifyMode::Healthy;
    spec.watchdog = h.watchdog;
    return std::optional<HealthSpec>{std::move(spec)};
}

std::optional<HealthStatus> read_health_status(const std::string& name) {
    auto text = read_file(path_join(containers_run_dir(), name + ".health"));
    if (!text) return std::nullopt;
    json j = json::parse(*text, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return std::nullopt;
    HealthStatus st;
    st.status = j.value("status", "");
    st.failing_streak = j.value("failing_streak", 0u);
    st.changed_at_usec = j.value("changed_at_usec", uint64_t{0});
    return st;
}

static std::vector<ProbeRecord> probes_from_json(const std::string& text) {
    std::vector<ProbeRecord> out;
    json j = json::parse(text, nullptr, false);
    if (!j.is_array()) return out;
    for (const auto& p : j)
        if (p.is_object())
            out.push_back({p.value("at_usec", uint64_t{0}), p.value("exit_status", -1),
                           p.value("duration_us", uint64_t{0}), p.value("output", "")});
    return out;
}

std::vector<ProbeRecord> read_probe_history(const std::string& name) {
    auto text = read_file(path_join(containers_run_dir(), name + ".probes.json"));
    return text ? probes_from_json(*text) : std::vector<ProbeRecord>{};
}

Result<> append_probe_record(const std::string& name, const ProbeRecord& probe) {
    const std::string dir = containers_run_dir();
    UniqueFd lock(::open(path_join(dir, name + ".probes.lock").c_str(),
                         O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (!lock) return fail_errno("open the probe history lock");
    if (::flock(lock.get(), LOCK_EX) < 0) return fail_errno("lock the probe history");
    std::vector<ProbeRecord> history = read_probe_history(name);
    history.push_back(probe);
    if (history.size() > kProbeHistory)
        history.erase(history.begin(), history.end() - static_cast<std::ptrdiff_t>(kProbeHistory));
    json j = json::array();
    for (const auto& p : history) {
        // Replace what is not UTF-8 (the output is the command's): dump() would throw.
        j.push_back({{"at_usec", p.at_usec},
                     {"exit_status", p.exit_status},
                     {"duration_us", p.duration_us},
                     {"output", p.output}});
    }
    const std::string path = path_join(dir, name + ".probes.json");
    const std::string tmp = path + fmt::format(".tmp-{}", ::getpid());
    ::unlink(tmp.c_str());
    BERTH_TRY_VOID(write_file(tmp, j.dump(2, ' ', false, json::error_handler_t::replace) + "\n",
                              O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0600));
    if (::rename(tmp.c_str(), path.c_str()) < 0) {
        ::unlink(tmp.c_str());
        return fail_errno("rename '{}' to '{}'", tmp, path);
    }
    return {};
}

std::vector<std::string> list_running() {
    std::vector<std::string> out;
    if (DIR* d = ::opendir(containers_run_dir().c_str())) {
        while (auto* e = ::readdir(d)) {
            std::string n = e->d_name;
            if (n.size() > 5 && n.substr(n.size() - 5) == ".json") {
                std::string name = n.substr(0, n.size() - 5);
                if (supervisor_alive(name)) out.push_back(name);
            }
        }
        ::closedir(d);
    }
    std::sort(out.begin(), out.end());
    return out;
}

}  // namespace berth::runtime
