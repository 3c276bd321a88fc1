// A bounded pool of worker threads with a queue: what berthd runs its slow calls and jobs on.
//
// Why a pool: berthd once started one std::thread per asynchronous call, and DiskUsage is open to
// every user, so any user could make it start hundreds of threads (issue #16: 559 threads, 1023
// fds, a root import answered 35 s late) and, under a pids limit, make thread creation throw out
// of a noexcept handler and terminate the daemon. Here at most `max_threads` threads exist; they
// are started on demand (a failed start is an error for that task only when no thread is left to
// run it later) and what does not fit waits in a queue of at most `max_queued` tasks. A task that
// has not started yet can be withdrawn (a cancelled job leaves the queue at once).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "basic/result.h"

namespace berth::berthd {

class WorkerPool {
public:
    WorkerPool(unsigned max_threads, unsigned max_queued);
    ~WorkerPool();  // runs what is queued, then joins every thread
    WorkerPool(const WorkerPool&) = delete;
    WorkerPool& operator=(const WorkerPool&) = delete;

    // Queues `task`; returns its ticket (for withdraw()). EBUSY when the queue is full, EAGAIN when
    // no thread could be started and none runs. Callable from any thread.
    Result<uint64_t> submit(std::function<void()> task);
    // Removes a task that has not started yet; false when it runs or ran already.
    bool withdraw(uint64_t ticket);

    unsigned threads() const;
    size_t queued() const;

private:
    void run();

    struct Item {
        uint64_t ticket;
        std::function<void()> task;
    };
    const unsigned max_threads_;
    const unsigned max_queued_;
    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::deque<Item> queue_;
    std::vector<std::thread> threads_;
    unsigned idle_ = 0;
    uint64_t next_ticket_ = 1;
    bool stopping_ = false;
};

}  // namespace berth::berthd
