// berthd's core: an sd-event loop serving org.berth.Storage1 over sd-bus for a Storage.
//
// Threads. sd-bus objects are touched only by the loop thread. Work that can take long (imports,
// exports, removals, commits, GC) runs on two bounded worker pools (worker-pool.h): one for jobs
// (imports, exports: they may wait on a slow pipe for as long as the caller likes) and one for the
// other slow calls, so stalled jobs cannot starve removals, gc or DiskUsage. A worker hands its
// result back through a queue + eventfd and the loop thread sends the reply or signal. Reads
// (ListImages, properties) are answered on the loop thread directly, so they are answered while
// imports run. Callers other than root have at most DaemonLimits::max_calls_per_user calls in
// flight (beyond that: EBUSY at once), and concurrent DiskUsage walks are one walk whose result
// answers every caller waiting for it (issue #16).
//
// Jobs belong to the bus connection that started them: when it leaves the bus (NameOwnerChanged),
// its jobs are cancelled, so `timeout -s KILL 2 berth image import /dev/zero` does not leave an
// import spooling into staging. A job cancelled before it started leaves the queue at once.
//
// Files: daemon.cpp (loop, workers, jobs), manager.cpp (the manager object), objects.cpp (image
// and container objects), access.cpp (who may call what), main.cpp (options, signals, notify).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "basic/result.h"
#include "bus/bus-util.h"
#include "bus/storage.h"
#include "worker-pool.h"

namespace berth::berthd {

class Daemon;

// berthd's own limits (berthd(8): --workers, --job-workers, --max-queued, --max-calls-per-user).
struct DaemonLimits {
    unsigned workers = 8;              // threads for slow calls (removals, gc, DiskUsage walks)
    unsigned job_workers = 16;         // imports/exports running at once; more wait (cancellable)
    unsigned max_queued = 1024;        // calls waiting for a thread, per pool; beyond: EBUSY
    unsigned max_calls_per_user = 16;  // slow calls in flight per uid other than root; beyond: EBUSY
};

// A long-running operation exposed as /org/berth/Storage1/job/<id>.
struct Job {
    uint32_t id = 0;
    std::string type;         // "import", "export"
    std::string description;  // image name or ref
    std::string path;
    std::atomic<double> progress{0.0};
    std::atomic<uint64_t> bytes_read{0};  // input bytes read so far (imports)
    double announced_progress = 0.0;
    uint64_t announced_bytes = 0;
    std::atomic<bool> cancel{false};
    // A pull's layers (the Layers property), written by its worker; layers_version counts changes.
    std::mutex layers_mutex;
    std::vector<bus::LayerStatus> layers;
    std::atomic<uint64_t> layers_version{0};
    uint64_t announced_layers = 0;
    bus::SlotPtr slot;
    std::string owner;    // the caller's unique bus name ("" on a peer connection)
    uint64_t ticket = 0;  // its place in the job pool's queue (WorkerPool::withdraw)
    Daemon* daemon = nullptr;
};

// The reply-building half of an asynchronous method: runs on the loop thread.
using Appender = std::function<int(sd_bus_message* reply)>;

class Daemon {
public:
    explicit Daemon(bus::Storage& storage, DaemonLimits limits = {});
    ~Daemon();
    Daemon(const Daemon&) = delete;
    Daemon& operator=(const Daemon&) = delete;

    // Connects to `bus_address` ("" = the system bus), exports the objects and takes the name.
    Result<> start(const std::string& bus_address);
    // Serves the one client connected on `fd` (a private berthd, `--peer-fd`); run() returns when
    // it disconnects. Takes the fd.
    Result<> start_peer(int fd);
    // Runs until SIGTERM/SIGINT (or exit()); cancels jobs and joins workers before returning.
    Result<> run();
    void exit();

    sd_event* event() { return event_.get(); }
    sd_bus* bus() { return bus_.get(); }
    bus::Storage& storage() { return storage_; }

    // Runs `work` on a worker thread, then replies to `m` from the loop thread with the appender's
    // output (or the error). Returns what a method handler returns: 1 ("reply will follow"), or
    // the result of replying with an error at once (caller over its limit, queue full).
    int reply_async(sd_bus_message* m, std::function<Result<Appender>()> work);
    // Like reply_async, but callers of the same `key` whose calls overlap share one run of `work`:
    // whoever calls while it runs gets its result (DiskUsage: one walk for a flood of callers).
    int reply_coalesced(sd_bus_message* m, const std::string& key, std::function<Result<Appender>()> work);

    // Starts a job for the caller of `m`; `work` runs on a job worker with the job for
    // progress/cancel and returns the result image id (or "" when none). Emits JobNew now and
    // JobRemoved when done. Fails when the job queue is full.
    Result<Job*> start_job(sd_bus_message* m, const std::string& type, const std::string& description,
                           std::function<Result<std::string>(Job&)> work);
    Job* find_job(uint32_t id);
    // Job.Cancel: flags the job; one still queued ends now (JobRemoved "canceled").
    void cancel_job(Job& job);
    size_t job_count() const { return jobs_.size(); }

    // Posts `fn` to run on the loop thread (callable from any thread).
    void post(std::function<void()> fn);

    // A private berthd's client will not call for a while (ReleaseStore): the store is closed as
    // soon as no worker uses it, and opened again at the next call (bus::Storage::release_store).
    // Berthd on the bus serves every client: it keeps its store.
    void release_store_when_idle();

private:
    // Runs `fn` on `pool`; the loop stays up until its completion is posted (see exit()).
    Result<uint64_t> submit(WorkerPool& pool, std::function<void()> fn);
    void task_done();
    // Per-uid admission of a slow call (root is not limited); release() when it is answered.
    Result<int64_t> admit(sd_bus_message* m);
    void release(int64_t uid);
    void send_reply(sd_bus_message* m, const Result<Appender>& result);
    void finish_job(uint32_t id, const Result<std::string>& result);
    static int on_name_owner_changed(sd_bus_message* m, void* userdata, sd_bus_error*) noexcept;
    static int on_queue(sd_event_source*, int fd, uint32_t, void* userdata) noexcept;
    static int on_progress_timer(sd_event_source*, uint64_t usec, void* userdata) noexcept;
    static int on_disconnected(sd_bus_message*, void* userdata, sd_bus_error*) noexcept;
    static int on_signal(sd_event_source*, const struct signalfd_siginfo*, void* userdata) noexcept;
    Result<> register_objects();
    Result<> setup_loop();

    bus::Storage& storage_;
    bus::EventPtr event_;
    bus::BusPtr bus_;
    std::vector<bus::SlotPtr> slots_;
    bus::EventSourcePtr queue_source_, progress_source_, sigterm_source_, sigint_source_;
    UniqueFd queue_fd_;
    std::mutex queue_mutex_;
    std::vector<std::function<void()>> queue_;
    DaemonLimits limits_;
    // Declared before the pools: their threads post here until the pools are joined.
    std::unique_ptr<WorkerPool> calls_pool_, jobs_pool_;
    size_t tasks_ = 0;                        // submitted, completion not yet run on the loop
    std::map<int64_t, unsigned> user_calls_;  // uid (not root) -> slow calls in flight
    struct Waiter {
        bus::MessagePtr call;
        int64_t uid;
    };
    std::map<std::string, std::vector<Waiter>> coalesced_;  // key -> callers of the run in flight
    std::map<uint32_t, std::unique_ptr<Job>> jobs_;
    uint32_t next_job_ = 1;
    bool stopping_ = false;
    bool peer_ = false;                   // serving one client (start_peer)
    bool release_store_pending_ = false;  // ReleaseStore came while a worker ran
};

// Access control (access.cpp). Mutating calls need euid 0; the bus policy says the same.
// Returns 0 when allowed, or a negative errno with `error` set to AccessDenied.
int require_root(sd_bus_message* m, sd_bus_error* error);
// Whether the caller of `m` is root (false when its credentials cannot be had).
bool caller_is_root(sd_bus_message* m);
// The caller's uid (euid where the transport has it), or -errno.
int64_t caller_uid(sd_bus_message* m);
// What a caller other than root gets of an image's config: env as NAMEs, without "=VALUE".
void withhold_secrets(store::ImageConfig& config);
inline void withhold_secrets(bus::ImageInfo& image) { withhold_secrets(image.config); }

// Object tables (manager.cpp, objects.cpp).
Result<> add_manager_object(Daemon& daemon, sd_bus* bus, std::vector<bus::SlotPtr>& slots);
Result<> add_image_and_container_objects(Daemon& daemon, sd_bus* bus, std::vector<bus::SlotPtr>& slots);
Result<> add_job_object(Daemon& daemon, sd_bus* bus, Job& job);

// `berthd fsck ...` (fsck-command.cpp): argv[0] is "fsck". Returns the exit status.
int fsck_command(int argc, char** argv);

}  // namespace berth::berthd
