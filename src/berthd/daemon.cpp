#include "daemon.h"

#include <signal.h>
#include <sys/eventfd.h>
#include <systemd/sd-daemon.h>

#include "basic/string-util.h"

namespace berth::berthd {

Daemon::Daemon(bus::Storage& storage, DaemonLimits limits)
    : storage_(storage),
      limits_(limits),
      calls_pool_(std::make_unique<WorkerPool>(limits.workers, limits.max_queued)),
      jobs_pool_(std::make_unique<WorkerPool>(limits.job_workers, limits.max_queued)) {}

Daemon::~Daemon() {
    for (auto& [id, job] : jobs_) job->cancel = true;
    // Join the workers while the jobs they hold and the queue they post to still exist.
    jobs_pool_.reset();
    calls_pool_.reset();
}

void Daemon::post(std::function<void()> fn) {
    {
        std::lock_guard lock(queue_mutex_);
        queue_.push_back(std::move(fn));
    }
    uint64_t one = 1;
    (void)!::write(queue_fd_.get(), &one, sizeof one);
}

int Daemon::on_queue(sd_event_source*, int fd, uint32_t, void* userdata) noexcept {
    auto* self = static_cast<Daemon*>(userdata);
    uint64_t count;
    (void)!::read(fd, &count, sizeof count);
    std::vector<std::function<void()>> items;
    {
        std::lock_guard lock(self->queue_mutex_);
        items.swap(self->queue_);
    }
    for (auto& fn : items) fn();
    return 0;
}

// Emits PropertiesChanged for what moved since the last time (Layers only when they changed: a
// pull's list is the largest of them).
static void announce_progress(sd_bus* bus, Job& job) {
    double p = job.progress.load();
    uint64_t b = job.bytes_read.load();
    uint64_t v = job.layers_version.load();
    if (p == job.announced_progress && b == job.announced_bytes && v == job.announced_layers) return;
    bool layers = v != job.announced_layers;
    job.announced_progress = p;
    job.announced_bytes = b;
    job.announced_layers = v;
    sd_bus_emit_properties_changed(bus, job.path.c_str(), bus::kJobInterface, "Progress", "BytesRead",
                                   layers ? "Layers" : nullptr, nullptr);
}

// Progress is written by workers into an atomic; the loop publishes changes a few times a second.
int Daemon::on_progress_timer(sd_event_source* source, uint64_t usec, void* userdata) noexcept {
    auto* self = static_cast<Daemon*>(userdata);
    for (auto& [id, job] : self->jobs_) announce_progress(self->bus_.get(), *job);
    sd_event_source_set_time(source, usec + 200 * 1000);
    return 0;
}

int Daemon::on_signal(sd_event_source*, const struct signalfd_siginfo*, void* userdata) noexcept {
    static_cast<Daemon*>(userdata)->exit();
    return 0;
}

void Daemon::exit() {
    if (stopping_) return;
    stopping_ = true;
    sd_notify(0, "STOPPING=1\nSTATUS=Stopping, cancelling jobs");
    for (auto& [id, job] : jobs_) job->cancel = true;
    // Workers finish (or notice the cancel flag) and post their completions; leave the loop once
    // the last one is back so every caller gets an answer.
    if (tasks_ == 0) sd_event_exit(event_.get(), 0);
}

Result<uint64_t> Daemon::submit(WorkerPool& pool, std::function<void()> fn) {
    auto ticket = pool.submit([this, fn = std::move(fn)] {
        fn();
        post([this] { task_done(); });
    });
    if (ticket) ++tasks_;
    return ticket;
}

void Daemon::task_done() {
    --tasks_;
    if (release_store_pending_ && tasks_ == 0) release_store_when_idle();
    if (stopping_ && tasks_ == 0) sd_event_exit(event_.get(), 0);
}

Result<int64_t> Daemon::admit(sd_bus_message* m) {
    int64_t uid = caller_uid(m);
    if (uid < 0) return fail(static_cast<int>(-uid), "cannot determine the caller's user id");
    if (uid == 0) return uid;
    unsigned& n = user_calls_[uid];
    if (n >= limits_.max_calls_per_user) {
        if (n == 0) user_calls_.erase(uid);
        return fail(EBUSY, "uid {} has {} calls in flight already (at most {}): try again later", uid, n,
                    limits_.max_calls_per_user);
    }
    ++n;
    return uid;
}

void Daemon::release(int64_t uid) {
    if (uid == 0) return;
    auto it = user_calls_.find(uid);
    if (it != user_calls_.end() && --it->second == 0) user_calls_.erase(it);
}

void Daemon::send_reply(sd_bus_message* msg, const Result<Appender>& result) {
    if (!result) {
        bus::BusError e;
        bus::set_bus_error(e.get(), result.error());
        sd_bus_reply_method_error(msg, e.get());
        return;
    }
    sd_bus_message* reply = nullptr;
    int r = sd_bus_message_new_method_return(msg, &reply);
    bus::MessagePtr owned(reply);
    if (r >= 0 && *result) r = (*result)(reply);
    if (r < 0) {
        sd_bus_reply_method_errnof(msg, -r, "Failed to build reply: %m");
        return;
    }
    sd_bus_send(nullptr, reply, nullptr);
}

// An error for the caller now, from a handler (the caller is not counted as in flight).
static int reply_now(sd_bus_message* m, const Error& error) {
    bus::BusError e;
    bus::set_bus_error(e.get(), error);
    return sd_bus_reply_method_error(m, e.get());
}

void Daemon::release_store_when_idle() {
    if (!peer_) return;
    release_store_pending_ = tasks_ != 0;  // a worker may still be using the store
    if (!release_store_pending_) storage_.release_store();
}

int Daemon::reply_async(sd_bus_message* m, std::function<Result<Appender>()> work) {
    auto uid = admit(m);
    if (!uid) return reply_now(m, uid.error());
    auto call = std::make_shared<bus::MessagePtr>(sd_bus_message_ref(m));
    auto submitted = submit(*calls_pool_, [this, call, uid = *uid, work = std::move(work)] {
        auto result = std::make_shared<Result<Appender>>(work());
        post([this, call, uid, result] {
            release(uid);
            send_reply(call->get(), *result);
        });
    });
    if (!submitted) {
        release(*uid);
        return reply_now(m, submitted.error());
    }
    return 1;
}

int Daemon::reply_coalesced(sd_bus_message* m, const std::string& key,
                            std::function<Result<Appender>()> work) {
    auto uid = admit(m);
    if (!uid) return reply_now(m, uid.error());
    auto [it, first] = coalesced_.try_emplace(key);
    it->second.push_back(Waiter{bus::MessagePtr(sd_bus_message_ref(m)), *uid});
    if (!first) return 1;  // the run in flight answers this caller too
    auto submitted = submit(*calls_pool_, [this, key, work = std::move(work)] {
        auto result = std::make_shared<Result<Appender>>(work());
        post([this, key, result] {
            auto waiters = coalesced_.extract(key);
            if (waiters.empty()) return;
            for (auto& w : waiters.mapped()) {
                release(w.uid);
                send_reply(w.call.get(), *result);
            }
        });
    });
    if (!submitted) {
        coalesced_.erase(key);
        release(*uid);
        return reply_now(m, submitted.error());
    }
    return 1;
}

Result<Job*> Daemon::start_job(sd_bus_message* m, const std::string& type, const std::string& description,
                               std::function<Result<std::string>(Job&)> work) {
    auto job = std::make_unique<Job>();
    job->id = next_job_++;
    job->type = type;
    job->description = description;
    job->path = std::string(bus::kJobPrefix) + "/" + std::to_string(job->id);
    job->daemon = this;
    if (const char* sender = sd_bus_message_get_sender(m)) job->owner = sender;
    Job& ref = *job;
    uint32_t id = ref.id;
    auto ticket = submit(*jobs_pool_, [this, id, &ref, work = std::move(work)] {
        // A job cancelled while it waited for a worker does not start at all.
        auto result = std::make_shared<Result<std::string>>(
            ref.cancel ? Result<std::string>(fail(ECANCELED, "{} cancelled", ref.type)) : work(ref));
        post([this, id, result] { finish_job(id, *result); });
    });
    if (!ticket) return fail(ticket.error());
    ref.ticket = *ticket;
    jobs_.emplace(id, std::move(job));
    (void)add_job_object(*this, bus_.get(), ref);
    sd_bus_emit_signal(bus_.get(), bus::kManagerPath, bus::kManagerInterface, "JobNew", "uo", ref.id,
                       ref.path.c_str());
    return &ref;
}

void Daemon::cancel_job(Job& job) {
    job.cancel = true;
    if (job.ticket && jobs_pool_->withdraw(job.ticket)) {
        // Ended from the loop's next round, not from inside a call on the job's own object.
        std::string what = job.type;
        post([this, id = job.id, what] {
            finish_job(id, fail(ECANCELED, "{} cancelled before it started", what));
            task_done();
        });
    }
}

void Daemon::finish_job(uint32_t id, const Result<std::string>& result) {
    auto it = jobs_.find(id);
    if (it == jobs_.end()) return;
    Job& j = *it->second;
    const char* status = result ? "done" : j.cancel ? "canceled" : "failed";
    std::string image = result ? *result : "";
    // Bounded, escaped, valid UTF-8 (else the signal is not sent and the client waits).
    std::string error = result ? "" : sanitize_message(result.error().message);
    int code = result ? 0 : result.error().code;
    // The last progress, before JobRemoved: a job shorter than one progress tick would
    // otherwise end without any update (a small import's 100% and its byte count).
    announce_progress(bus_.get(), j);
    sd_bus_emit_signal(bus_.get(), bus::kManagerPath, bus::kManagerInterface, "JobRemoved", "uossis", j.id,
                       j.path.c_str(), status, image.c_str(), code, error.c_str());
    jobs_.erase(it);
}

// The bus says a name lost its owner: a client that left. Its jobs have nobody to report to and
// nobody to cancel them (issue #16: an import from /dev/zero kept spooling after `kill -9`).
int Daemon::on_name_owner_changed(sd_bus_message* m, void* userdata, sd_bus_error*) noexcept {
    auto* self = static_cast<Daemon*>(userdata);
    const char *name = nullptr, *old_owner = nullptr, *new_owner = nullptr;
    if (sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner) < 0) return 0;
    if (!name || name[0] != ':' || (new_owner && *new_owner)) return 0;
    std::vector<Job*> gone;
    for (auto& [id, job] : self->jobs_)
        if (job->owner == name) gone.push_back(job.get());
    for (Job* job : gone) self->cancel_job(*job);
    return 0;
}

Job* Daemon::find_job(uint32_t id) {
    auto it = jobs_.find(id);
    return it == jobs_.end() ? nullptr : it->second.get();
}

Result<> Daemon::register_objects() {
    BERTH_TRY_VOID(add_manager_object(*this, bus_.get(), slots_));
    BERTH_TRY_VOID(add_image_and_container_objects(*this, bus_.get(), slots_));
    return {};
}

Result<> Daemon::setup_loop() {
    sd_event* ev = nullptr;
    int r = sd_event_new(&ev);
    if (r < 0) return fail(-r, "create event loop");
    event_.reset(ev);

    int efd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (efd < 0) return fail_errno("eventfd");
    queue_fd_.reset(efd);
    sd_event_source* src = nullptr;
    r = sd_event_add_io(ev, &src, efd, EPOLLIN, on_queue, this);
    if (r < 0) return fail(-r, "watch worker queue");
    queue_source_.reset(src);

    r = sd_event_add_time_relative(ev, &src, CLOCK_MONOTONIC, 200 * 1000, 50 * 1000, on_progress_timer, this);
    if (r < 0) return fail(-r, "add progress timer");
    sd_event_source_set_enabled(src, SD_EVENT_ON);
    progress_source_.reset(src);

    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    pthread_sigmask(SIG_BLOCK, &mask, nullptr);
    r = sd_event_add_signal(ev, &src, SIGTERM, on_signal, this);
    if (r < 0) return fail(-r, "watch SIGTERM");
    sigterm_source_.reset(src);
    r = sd_event_add_signal(ev, &src, SIGINT, on_signal, this);
    if (r < 0) return fail(-r, "watch SIGINT");
    sigint_source_.reset(src);

    return {};
}

Result<> Daemon::start(const std::string& bus_address) {
    BERTH_TRY_VOID(setup_loop());
    sd_event* ev = event_.get();
    int r;
    sd_bus* b = nullptr;
    if (bus_address.empty()) {
        r = sd_bus_open_system(&b);
        if (r < 0) return fail(-r, "connect to the system bus");
    } else {
        r = sd_bus_new(&b);
        if (r < 0) return fail(-r, "allocate bus");
        bus::BusPtr guard(b);
        if ((r = sd_bus_set_address(b, bus_address.c_str())) < 0 || (r = sd_bus_set_bus_client(b, 1)) < 0 ||
            (r = sd_bus_negotiate_fds(b, 1)) < 0 || (r = sd_bus_start(b)) < 0)
            return fail(-r, "connect to bus '{}'", bus_address);
        guard.release();
    }
    bus_.reset(b);
    sd_bus_slot* slot = nullptr;
    r = sd_bus_match_signal(b, &slot, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                            "NameOwnerChanged", on_name_owner_changed, this);
    if (r < 0) return fail(-r, "watch clients leaving the bus");
    slots_.emplace_back(slot);
    BERTH_TRY_VOID_CTX(register_objects(), "export objects");
    r = sd_bus_attach_event(b, ev, SD_EVENT_PRIORITY_NORMAL);
    if (r < 0) return fail(-r, "attach bus to event loop");
    r = sd_bus_request_name(b, bus::kService, 0);
    if (r < 0) return fail(-r, "acquire bus name '{}'", bus::kService);
    return {};
}

// Serves one client on a connected socket (a private berthd): no bus name, the peer's
// SO_PEERCRED credentials are the caller's, and the daemon exits when the connection closes.
Result<> Daemon::start_peer(int fd) {
    BERTH_TRY_VOID(setup_loop());
    peer_ = true;
    // A Ctrl-C in the client's terminal reaches this process too: the client cancels its own
    // jobs (Job.Cancel) and then closes the connection, so SIGINT stays blocked here.
    sigint_source_.reset();
    sd_bus* b = nullptr;
    int r = sd_bus_new(&b);
    if (r < 0) return fail(-r, "allocate bus");
    bus::BusPtr guard(b);
    sd_id128_t id;
    if ((r = sd_id128_randomize(&id)) < 0) return fail(-r, "server id");
    if ((r = sd_bus_set_fd(b, fd, fd)) < 0 || (r = sd_bus_set_server(b, 1, id)) < 0 ||
        (r = sd_bus_set_anonymous(b, 1)) < 0 || (r = sd_bus_negotiate_fds(b, 1)) < 0 ||
        (r = sd_bus_start(b)) < 0)
        return fail(-r, "serve the peer connection");
    bus_ = std::move(guard);
    sd_bus_slot* slot = nullptr;
    r = sd_bus_match_signal(b, &slot, nullptr, "/org/freedesktop/DBus/Local", "org.freedesktop.DBus.Local",
                            "Disconnected", on_disconnected, this);
    if (r < 0) return fail(-r, "watch the peer connection");
    slots_.emplace_back(slot);
    BERTH_TRY_VOID_CTX(register_objects(), "export objects");
    r = sd_bus_attach_event(b, event_.get(), SD_EVENT_PRIORITY_NORMAL);
    if (r < 0) return fail(-r, "attach bus to event loop");
    return {};
}

int Daemon::on_disconnected(sd_bus_message*, void* userdata, sd_bus_error*) noexcept {
    static_cast<Daemon*>(userdata)->exit();
    return 0;
}

Result<> Daemon::run() {
    sd_notify(0, "READY=1\nSTATUS=Serving org.berth.Storage1");
    int r = sd_event_loop(event_.get());
    if (r < 0) return fail(-r, "event loop");
    return {};
}

}  // namespace berth::berthd
