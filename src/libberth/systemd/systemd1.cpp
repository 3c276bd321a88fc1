// org.freedesktop.systemd1 over sd-bus. The job calls follow systemctl: subscribe, install the
// JobRemoved match BEFORE enqueuing (a fast job can finish before the method reply arrives), then
// collect every removed job path with its result and look ours up once the reply names it.
#include "systemd/systemd1.h"

#include <sys/stat.h>
#include <systemd/sd-bus.h>
#include <time.h>
#include <unistd.h>

#include <map>
#include <span>
#include <utility>

#include "basic/time-util.h"
#include "basic/unique.h"

namespace berth::systemd {
namespace {

constexpr const char* kDest = "org.freedesktop.systemd1";
constexpr const char* kPath = "/org/freedesktop/systemd1";
constexpr const char* kManagerIface = "org.freedesktop.systemd1.Manager";
constexpr const char* kUnitIface = "org.freedesktop.systemd1.Unit";
constexpr const char* kServiceIface = "org.freedesktop.systemd1.Service";

struct BusError {
    sd_bus_error error = SD_BUS_ERROR_NULL;
    ~BusError() { sd_bus_error_free(&error); }
    sd_bus_error* operator&() { return &error; }
};

Unexpected bus_fail(int r, const sd_bus_error& error, std::string_view context) {
    int code = sd_bus_error_is_set(&error) ? sd_bus_error_get_errno(&error) : -r;
    if (code <= 0) code = EIO;
    if (sd_bus_error_is_set(&error) && error.message) return fail(code, "{}: {}", context, error.message);
    return fail(code, "{}", context);
}

using MessagePtr = CPtr<sd_bus_message, sd_bus_message_unref>;

Result<std::string> get_string(sd_bus* bus, const std::string& path, const char* iface, const char* prop) {
    BusError error;
    char* value = nullptr;
    int r = sd_bus_get_property_string(bus, kDest, path.c_str(), iface, prop, &error, &value);
    if (r < 0) return bus_fail(r, error.error, fmt::format("get property {}", prop));
    std::string out = value ? value : "";
    free(value);
    return out;
}

template <class T>
Result<T> get_trivial(sd_bus* bus, const std::string& path, const char* iface, const char* prop, char type) {
    BusError error;
    T value{};
    int r = sd_bus_get_property_trivial(bus, kDest, path.c_str(), iface, prop, &error, type, &value);
    if (r < 0) return bus_fail(r, error.error, fmt::format("get property {}", prop));
    return value;
}

struct JobWait {
    std::map<std::string, std::string> removed;  // job path -> result
};

int on_job_removed(sd_bus_message* m, void* userdata, sd_bus_error*) noexcept {
    auto* wait = static_cast<JobWait*>(userdata);
    uint32_t id = 0;
    const char *path = nullptr, *unit = nullptr, *result = nullptr;
    if (sd_bus_message_read(m, "uoss", &id, &path, &unit, &result) < 0) return 0;
    try {
        wait->removed.emplace(path, result);
    } catch (...) {
    }
    return 0;
}

// ---- many units' properties, pipelined (unit_states) ----
// One GetAll per interface (Unit, Service) on the unit's object path: systemd loads a unit on its
// first access by path, as LoadUnit would, so no LoadUnit round trip comes first.

struct StringProperty {
    const char* name;
    std::string UnitState::*field;
};
constexpr StringProperty kUnitStrings[] = {
    {"Id", &UnitState::id},
    {"Description", &UnitState::description},
    {"LoadState", &UnitState::load_state},
    {"ActiveState", &UnitState::active_state},
    {"SubState", &UnitState::sub_state},
    {"FragmentPath", &UnitState::fragment_path},
    {"SourcePath", &UnitState::source_path},
};
constexpr StringProperty kServiceStrings[] = {
    {"ControlGroup", &UnitState::control_group},
    {"Result", &UnitState::result},
};

// One property's variant into `s` when it is one unit_state() reads; skipped otherwise.
int read_property(sd_bus_message* m, std::string_view key, UnitState& s, bool service) {
    using Strings = std::span<const StringProperty>;
    for (const auto& p : service ? Strings(kServiceStrings) : Strings(kUnitStrings)) {
        if (key != p.name) continue;
        const char* v = nullptr;
        int r = sd_bus_message_read(m, "v", "s", &v);
        if (r >= 0) s.*p.field = v ? v : "";
        return r;
    }
    if (!service && key == "ActiveEnterTimestamp")
        return sd_bus_message_read(m, "v", "t", &s.active_enter_us);
    if (!service && key == "StateChangeTimestamp")
        return sd_bus_message_read(m, "v", "t", &s.state_change_us);
    if (service && key == "MainPID") return sd_bus_message_read(m, "v", "u", &s.main_pid);
    if (service && key == "NRestarts") return sd_bus_message_read(m, "v", "u", &s.n_restarts);
    if (service && key == "MemoryMax") return sd_bus_message_read(m, "v", "t", &s.memory_max);
    if (service && key == "ExecMainStatus") return sd_bus_message_read(m, "v", "i", &s.exec_main_status);
    return sd_bus_message_skip(m, "v");
}

int read_properties(sd_bus_message* m, UnitState& s, bool service) {
    int r = sd_bus_message_enter_container(m, 'a', "{sv}");
    if (r < 0) return r;
    while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
        const char* key = nullptr;
        if ((r = sd_bus_message_read(m, "s", &key)) < 0) return r;
        if ((r = read_property(m, key, s, service)) < 0) return r;
        if ((r = sd_bus_message_exit_container(m)) < 0) return r;
    }
    if (r < 0) return r;
    return sd_bus_message_exit_container(m);
}

struct PropertiesCall {
    UnitState* state = nullptr;
    bool service = false;
    bool done = false;
    int error = 0;  // positive errno of a failed call
    std::string message;
    size_t* in_flight = nullptr;
};

int on_properties(sd_bus_message* m, void* userdata, sd_bus_error*) noexcept {
    auto* call = static_cast<PropertiesCall*>(userdata);
    call->done = true;
    --*call->in_flight;
    try {
        if (const sd_bus_error* e = sd_bus_message_get_error(m)) {
            call->error = sd_bus_message_get_errno(m) > 0 ? sd_bus_message_get_errno(m) : EIO;
            call->message = e->message ? e->message : e->name ? e->name : "error";
        } else if (int r = read_properties(m, *call->state, call->service); r < 0) {
            call->error = -r;
            call->message = "bad reply";
        }
    } catch (...) {
        call->error = ENOMEM;
    }
    return 0;
}

}  // namespace

UnitState unloaded_unit_state(const std::string& unit, const std::string& root) {
    // systemd's search path for the system manager, highest priority first (systemd.unit(5)).
    static constexpr const char* kUnitDirs[] = {
        "/etc/systemd/system.control",   "/run/systemd/system.control",  "/run/systemd/transient",
        "/run/systemd/generator.early",  "/etc/systemd/system",          "/etc/systemd/system.attached",
        "/run/systemd/system",           "/run/systemd/system.attached", "/run/systemd/generator",
        "/usr/local/lib/systemd/system", "/lib/systemd/system",          "/usr/lib/systemd/system",
        "/run/systemd/generator.late"};
    UnitState u;
    u.id = unit;
    u.active_state = "inactive";
    u.sub_state = "dead";
    u.load_state = "not-found";
    std::vector<std::string> names{unit};
    // berth@web.service may come from a template berth@.service.
    if (auto at = unit.find('@'), dot = unit.rfind('.');
        at != std::string::npos && dot != std::string::npos && at < dot)
        names.push_back(unit.substr(0, at + 1) + unit.substr(dot));
    for (const auto& name : names)
        for (const char* dir : kUnitDirs) {
            std::string path = root + dir + "/" + name;
            char target[16];
            ssize_t n = ::readlink(path.c_str(), target, sizeof target);
            if (n == 9 && std::string_view(target, 9) == "/dev/null") {
                u.load_state = "masked";
                return u;
            }
            struct stat st {};
            if (::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
                u.load_state = "loaded";
                u.fragment_path = std::string(dir) + "/" + name;
                return u;
            }
        }
    return u;
}

std::string container_unit(std::string_view container_name) {
    return fmt::format("berth@{}.service", container_name);
}

std::string container_name_of_unit(std::string_view unit) {
    constexpr std::string_view prefix = "berth@", suffix = ".service";
    if (unit.size() <= prefix.size() + suffix.size() || unit.substr(0, prefix.size()) != prefix ||
        unit.substr(unit.size() - suffix.size()) != suffix)
        return {};
    return std::string(unit.substr(prefix.size(), unit.size() - prefix.size() - suffix.size()));
}

Result<Manager> Manager::open_system() {
    sd_bus* bus = nullptr;
    int r = sd_bus_open_system(&bus);
    if (r < 0) return fail(-r, "connect to the system bus");
    return Manager(bus);
}

Result<Manager> Manager::open_address(const std::string& address) {
    sd_bus* bus = nullptr;
    int r = sd_bus_new(&bus);
    if (r < 0) return fail(-r, "allocate bus");
    Manager manager(bus);
    if ((r = sd_bus_set_address(bus, address.c_str())) < 0) return fail(-r, "set bus address '{}'", address);
    if ((r = sd_bus_start(bus)) < 0) return fail(-r, "connect to '{}'", address);
    return manager;
}

Result<Manager> Manager::open_private() { return open_address("unix:path=/run/systemd/private"); }

Manager::Manager(Manager&& other) noexcept : bus_(std::exchange(other.bus_, nullptr)) {}
Manager& Manager::operator=(Manager&& other) noexcept {
    if (this != &other) {
        if (bus_) sd_bus_flush_close_unref(bus_);
        bus_ = std::exchange(other.bus_, nullptr);
    }
    return *this;
}
Manager::~Manager() {
    if (bus_) sd_bus_flush_close_unref(bus_);
}

Result<UnitState> Manager::unit_state(const std::string& unit) {
    BusError error;
    sd_bus_message* raw = nullptr;
    int r =
        sd_bus_call_method(bus_, kDest, kPath, kManagerIface, "LoadUnit", &error, &raw, "s", unit.c_str());
    MessagePtr reply(raw);
    if (r < 0) return bus_fail(r, error.error, fmt::format("load unit '{}'", unit));
    const char* opath = nullptr;
    if ((r = sd_bus_message_read(reply.get(), "o", &opath)) < 0)
        return fail(-r, "load unit '{}': bad reply", unit);
    std::string path = opath;

    UnitState s;
    auto ctx = fmt::format("unit '{}'", unit);
    s.id = BERTH_TRY_CTX(get_string(bus_, path, kUnitIface, "Id"), ctx);
    s.description = BERTH_TRY_CTX(get_string(bus_, path, kUnitIface, "Description"), ctx);
    s.load_state = BERTH_TRY_CTX(get_string(bus_, path, kUnitIface, "LoadState"), ctx);
    s.active_state = BERTH_TRY_CTX(get_string(bus_, path, kUnitIface, "ActiveState"), ctx);
    s.sub_state = BERTH_TRY_CTX(get_string(bus_, path, kUnitIface, "SubState"), ctx);
    s.fragment_path = BERTH_TRY_CTX(get_string(bus_, path, kUnitIface, "FragmentPath"), ctx);
    s.source_path = BERTH_TRY_CTX(get_string(bus_, path, kUnitIface, "SourcePath"), ctx);
    s.active_enter_us =
        BERTH_TRY_CTX(get_trivial<uint64_t>(bus_, path, kUnitIface, "ActiveEnterTimestamp", 't'), ctx);
    s.state_change_us =
        BERTH_TRY_CTX(get_trivial<uint64_t>(bus_, path, kUnitIface, "StateChangeTimestamp", 't'), ctx);
    // Service properties exist only for loaded .service units.
    if (s.load_state == "loaded" && unit.size() > 8 && unit.substr(unit.size() - 8) == ".service") {
        s.control_group = BERTH_TRY_CTX(get_string(bus_, path, kServiceIface, "ControlGroup"), ctx);
        s.result = BERTH_TRY_CTX(get_string(bus_, path, kServiceIface, "Result"), ctx);
        s.main_pid = BERTH_TRY_CTX(get_trivial<uint32_t>(bus_, path, kServiceIface, "MainPID", 'u'), ctx);
        s.n_restarts = BERTH_TRY_CTX(get_trivial<uint32_t>(bus_, path, kServiceIface, "NRestarts", 'u'), ctx);
        s.memory_max = BERTH_TRY_CTX(get_trivial<uint64_t>(bus_, path, kServiceIface, "MemoryMax", 't'), ctx);
        s.exec_main_status =
            BERTH_TRY_CTX(get_trivial<int32_t>(bus_, path, kServiceIface, "ExecMainStatus", 'i'), ctx);
    }
    return s;
}

std::vector<Result<UnitState>> Manager::unit_states(const std::vector<std::string>& units) {
    std::vector<UnitState> states(units.size());
    std::vector<PropertiesCall> calls(units.size() * 2);
    std::vector<std::string> paths(units.size());
    std::vector<CPtr<sd_bus_slot, sd_bus_slot_unref>> slots;  // dropped on return: no late callback
    slots.reserve(calls.size());
    size_t in_flight = 0, next = 0;
    auto send = [&](size_t i) {
        PropertiesCall& c = calls[i];
        c.state = &states[i / 2];
        c.service = i % 2 == 1;
        c.in_flight = &in_flight;
        std::string& path = paths[i / 2];
        if (path.empty()) {
            char* encoded = nullptr;
            if (int r = sd_bus_path_encode("/org/freedesktop/systemd1/unit", units[i / 2].c_str(), &encoded);
                r < 0) {
                c.done = true, c.error = -r, c.message = "encode the unit's object path";
                return;
            }
            path = encoded;
            free(encoded);
        }
        sd_bus_slot* slot = nullptr;
        int r = sd_bus_call_method_async(bus_, &slot, kDest, path.c_str(), "org.freedesktop.DBus.Properties",
                                         "GetAll", on_properties, &c, "s",
                                         c.service ? kServiceIface : kUnitIface);
        if (r < 0) {
            c.done = true, c.error = -r, c.message = "send GetAll";
            return;
        }
        slots.emplace_back(slot);
        ++in_flight;
    };
    int bus_error = 0;
    while (next < calls.size() || in_flight > 0) {
        while (next < calls.size() && in_flight < kUnitStatesInFlight) send(next++);
        int r = sd_bus_process(bus_, nullptr);
        if (r > 0) continue;
        if (r == 0) r = sd_bus_wait(bus_, UINT64_MAX);  // each call has sd-bus's own reply timeout
        if (r < 0) {
            bus_error = -r;
            break;
        }
    }
    std::vector<Result<UnitState>> out;
    out.reserve(units.size());
    for (size_t u = 0; u < units.size(); ++u) {
        const PropertiesCall& unit = calls[2 * u];
        const PropertiesCall& service = calls[2 * u + 1];
        auto failed = [&](const PropertiesCall& c) { return c.done ? c.error : bus_error ? bus_error : EIO; };
        // Service properties exist only for loaded .service units, as in unit_state().
        bool want_service = states[u].load_state == "loaded" && units[u].size() > 8 &&
                            units[u].substr(units[u].size() - 8) == ".service";
        if (int e = failed(unit))
            out.push_back(
                fail(e, "unit '{}': get properties: {}", units[u], unit.done ? unit.message : "no reply"));
        else if (int e2 = want_service ? failed(service) : 0)
            out.push_back(fail(e2, "unit '{}': get properties: {}", units[u],
                               service.done ? service.message : "no reply"));
        else
            out.push_back(std::move(states[u]));
    }
    return out;
}

Result<std::vector<std::string>> Manager::list_units(const std::vector<std::string>& patterns) {
    sd_bus_message* raw = nullptr;
    int r = sd_bus_message_new_method_call(bus_, &raw, kDest, kPath, kManagerIface, "ListUnitsByPatterns");
    MessagePtr call(raw);
    if (r < 0) return fail(-r, "list units");
    const char* no_states[] = {nullptr};
    if ((r = sd_bus_message_append_strv(call.get(), const_cast<char**>(no_states))) < 0)
        return fail(-r, "list units");
    std::vector<const char*> pats;
    for (auto& p : patterns) pats.push_back(p.c_str());
    pats.push_back(nullptr);
    if ((r = sd_bus_message_append_strv(call.get(), const_cast<char**>(pats.data()))) < 0)
        return fail(-r, "list units");
    BusError error;
    raw = nullptr;
    r = sd_bus_call(bus_, call.get(), 0, &error, &raw);
    MessagePtr reply(raw);
    if (r < 0) return bus_fail(r, error.error, "list units");
    if ((r = sd_bus_message_enter_container(reply.get(), 'a', "(ssssssouso)")) < 0)
        return fail(-r, "list units: bad reply");
    std::vector<std::string> names;
    const char *id, *desc, *load, *active, *sub, *following, *upath, *jtype, *jpath;
    uint32_t jid;
    while ((r = sd_bus_message_read(reply.get(), "(ssssssouso)", &id, &desc, &load, &active, &sub, &following,
                                    &upath, &jid, &jtype, &jpath)) > 0)
        names.emplace_back(id);
    if (r < 0) return fail(-r, "list units: bad reply");
    return names;
}

Result<> Manager::run_job(const char* method, const std::string& unit, const JobOptions& options) {
    std::string verb = method == std::string_view("StartUnit")  ? "start"
                       : method == std::string_view("StopUnit") ? "stop"
                                                                : "restart";
    auto ctx = fmt::format("{} '{}'", verb, unit);
    JobWait wait;
    sd_bus_slot* slot_raw = nullptr;
    CPtr<sd_bus_slot, sd_bus_slot_unref> slot;
    int r;
    if (options.wait) {
        BusError error;
        r = sd_bus_call_method(bus_, kDest, kPath, kManagerIface, "Subscribe", &error, nullptr, "");
        // Already subscribed on this connection is fine.
        if (r < 0 && !sd_bus_error_has_name(&error.error, "org.freedesktop.systemd1.AlreadySubscribed"))
            return bus_fail(r, error.error, ctx + ": subscribe");
        r = sd_bus_match_signal(bus_, &slot_raw, kDest, kPath, kManagerIface, "JobRemoved", on_job_removed,
                                &wait);
        if (r < 0) return fail(-r, "{}: watch jobs", ctx);
        slot.reset(slot_raw);
    }
    BusError error;
    sd_bus_message* raw = nullptr;
    r = sd_bus_call_method(bus_, kDest, kPath, kManagerIface, method, &error, &raw, "ss", unit.c_str(),
                           options.mode == JobMode::Fail ? "fail" : "replace");
    MessagePtr reply(raw);
    if (r < 0) return bus_fail(r, error.error, ctx);
    if (!options.wait) return {};
    const char* job = nullptr;
    if ((r = sd_bus_message_read(reply.get(), "o", &job)) < 0) return fail(-r, "{}: bad reply", ctx);
    std::string job_path = job;

    uint64_t deadline = now_usec(CLOCK_MONOTONIC) + options.timeout_us;
    while (!wait.removed.count(job_path)) {
        r = sd_bus_process(bus_, nullptr);
        if (r < 0) return fail(-r, "{}: wait for job", ctx);
        if (r > 0) continue;
        uint64_t now = now_usec(CLOCK_MONOTONIC);
        if (now >= deadline) return fail(ETIMEDOUT, "{}: timed out waiting for job {}", ctx, job_path);
        r = sd_bus_wait(bus_, deadline - now);
        if (r < 0) return fail(-r, "{}: wait for job", ctx);
    }
    const std::string& result = wait.removed[job_path];
    if (result == "done" || result == "skipped") return {};
    // Say what state the unit ended in, as systemctl does.
    std::string detail;
    if (auto st = unit_state(unit))
        detail = fmt::format(" (unit is {}/{}{})", st->active_state, st->sub_state,
                             st->result.empty() || st->result == "success" ? "" : ", result " + st->result);
    // Not a system error: code 0 keeps strerror() out of the message.
    return fail(0, "{}: job {}{}; see 'systemctl status {}' and 'journalctl -u {}'", ctx, result, detail,
                unit, unit);
}

Result<> Manager::start(const std::string& unit, const JobOptions& o) {
    return run_job("StartUnit", unit, o);
}
Result<> Manager::stop(const std::string& unit, const JobOptions& o) { return run_job("StopUnit", unit, o); }
Result<> Manager::restart(const std::string& unit, const JobOptions& o) {
    return run_job("RestartUnit", unit, o);
}

std::string format_timestamp(uint64_t realtime_us) {
    if (realtime_us == 0) return "-";
    time_t t = time_t(realtime_us / 1000000ULL);
    struct tm tm {};
    localtime_r(&t, &tm);
    char buf[64];
    if (strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S %Z", &tm) == 0) return "-";
    return buf;
}

std::string format_age(uint64_t realtime_us, uint64_t now_us) {
    if (realtime_us == 0) return "-";
    uint64_t s = now_us > realtime_us ? (now_us - realtime_us) / 1000000ULL : 0;
    if (s < 60) return fmt::format("{}s ago", s);
    if (s < 3600) return fmt::format("{}min ago", s / 60);
    if (s < 86400) {
        uint64_t m = (s % 3600) / 60;
        return m ? fmt::format("{}h {}min ago", s / 3600, m) : fmt::format("{}h ago", s / 3600);
    }
    uint64_t d = s / 86400;
    return fmt::format("{} day{} ago", d, d == 1 ? "" : "s");
}

}  // namespace berth::systemd
