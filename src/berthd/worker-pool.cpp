#include "worker-pool.h"

#include <system_error>

namespace berth::berthd {

WorkerPool::WorkerPool(unsigned max_threads, unsigned max_queued)
    : max_threads_(max_threads ? max_threads : 1), max_queued_(max_queued) {}

WorkerPool::~WorkerPool() {
    {
        std::lock_guard lock(mu_);
        stopping_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_)
        if (t.joinable()) t.join();
}

Result<uint64_t> WorkerPool::submit(std::function<void()> task) {
    std::unique_lock lock(mu_);
    if (queue_.size() >= max_queued_)
        return fail(EBUSY, "berthd is busy: {} calls are queued already, try again later", queue_.size());
    // A new thread only when every running one is busy with something else: idle ones take it.
    if (idle_ <= queue_.size() && threads_.size() < max_threads_) {
        try {
            threads_.emplace_back([this] { run(); });
        } catch (const std::system_error& e) {
            // Out of threads (a pids limit, memory): queue for the ones that run, if any do.
            if (threads_.empty())
                return fail(EAGAIN, "berthd cannot start a worker thread: {}", e.code().message());
        }
    }
    uint64_t ticket = next_ticket_++;
    queue_.push_back(Item{ticket, std::move(task)});
    lock.unlock();
    cv_.notify_one();
    return ticket;
}

bool WorkerPool::withdraw(uint64_t ticket) {
    std::lock_guard lock(mu_);
    for (auto it = queue_.begin(); it != queue_.end(); ++it)
        if (it->ticket == ticket) {
            queue_.erase(it);
            return true;
        }
    return false;
}

unsigned WorkerPool::threads() const {
    std::lock_guard lock(mu_);
    return static_cast<unsigned>(threads_.size());
}

size_t WorkerPool::queued() const {
    std::lock_guard lock(mu_);
    return queue_.size();
}

void WorkerPool::run() {
    std::unique_lock lock(mu_);
    for (;;) {
        ++idle_;
        cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
        --idle_;
        if (queue_.empty()) return;  // stopping, nothing left to run
        auto item = std::move(queue_.front());
        queue_.pop_front();
        lock.unlock();
        item.task();
        item.task = nullptr;  // what it captured goes before the next wait
        lock.lock();
    }
}

}  // namespace berth::berthd
