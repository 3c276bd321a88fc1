// BlobFeed (blob-feed.h says why and what makes it safe).
#include "store/blob-feed.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>

namespace berth::store {

namespace {
// Waits wake at every change; the period only bounds how late a halt is noticed.
constexpr auto kHaltPoll = std::chrono::milliseconds(100);
// A larger pipe than the default 64 KiB: fewer wake-ups of the follower and the extractor.
constexpr int kPipeSize = 1 << 20;
}  // namespace

BlobFeed::~BlobFeed() {
    {
        std::lock_guard lock(mu_);
        closing_ = true;
    }
    changed_.notify_all();
    for (auto& t : followers_) t.join();
}

void BlobFeed::expect(const std::string& member, std::string part, std::string final_path) {
    std::lock_guard lock(mu_);
    Blob& b = blobs_[member];
    b.part = std::move(part);
    b.final_path = std::move(final_path);
}

void BlobFeed::writing(const std::string& member) {
    {
        std::lock_guard lock(mu_);
        auto it = blobs_.find(member);
        if (it == blobs_.end()) return;
        it->second.stage = Stage::Writing;
        it->second.size = 0;
    }
    changed_.notify_all();
}

void BlobFeed::grew(const std::string& member, uint64_t n) {
    {
        std::lock_guard lock(mu_);
        auto it = blobs_.find(member);
        if (it == blobs_.end()) return;
        it->second.size += n;
    }
    changed_.notify_all();
}

void BlobFeed::restart(const std::string& member) {
    {
        std::lock_guard lock(mu_);
        auto it = blobs_.find(member);
        if (it == blobs_.end()) return;
        it->second.generation++;
        it->second.size = 0;
    }
    changed_.notify_all();
}

void BlobFeed::complete(const std::string& member) {
    {
        std::lock_guard lock(mu_);
        auto it = blobs_.find(member);
        if (it == blobs_.end()) return;
        it->second.stage = Stage::Complete;
    }
    changed_.notify_all();
}

void BlobFeed::fail(const std::string& member, const Error& why) {
    {
        std::lock_guard lock(mu_);
        auto it = blobs_.find(member);
        if (it == blobs_.end() || it->second.stage == Stage::Complete) return;
        it->second.stage = Stage::Failed;
        it->second.error = why;
    }
    changed_.notify_all();
}

bool BlobFeed::arriving(const std::string& member) const {
    std::lock_guard lock(mu_);
    return blobs_.count(member) > 0;
}

std::string BlobFeed::final_path(const std::string& member) const {
    std::lock_guard lock(mu_);
    auto it = blobs_.find(member);
    return it == blobs_.end() ? std::string() : it->second.final_path;
}

Result<UniqueFd> BlobFeed::open(const std::string& member, Mode mode) {
    std::unique_lock lock(mu_);
    auto it = blobs_.find(member);
    if (it == blobs_.end()) return berth::fail(ENOENT, "'{}' is not an arriving blob", member);
    Blob& b = it->second;
    if (mode == Mode::Follow && b.stage != Stage::Complete) {
        if (b.stage == Stage::Failed) return berth::fail(*b.error);
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC) < 0) return fail_errno("pipe for '{}'", member);
        UniqueFd reader(fds[0]), writer(fds[1]);
        (void)::fcntl(writer.get(), F_SETPIPE_SZ, kPipeSize);  // a smaller pipe works too
        followers_.emplace_back(&BlobFeed::follow, this, std::ref(b), std::move(writer));
        return reader;
    }
    while (b.stage != Stage::Complete) {
        if (b.stage == Stage::Failed) return berth::fail(*b.error);
        if (halted()) return berth::fail(ECANCELED, "pull cancelled");
        changed_.wait_for(lock, kHaltPoll);
    }
    UniqueFd fd(::open(b.final_path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return fail_errno("open '{}'", b.final_path);
    return fd;
}

Result<BlobFeed::Verdict> BlobFeed::verdict(const std::string& member) const {
    std::lock_guard lock(mu_);
    auto it = blobs_.find(member);
    if (it == blobs_.end()) return berth::fail(ENOENT, "'{}' is not an arriving blob", member);
    const Blob& b = it->second;
    if (b.follow_error) return berth::fail(*b.follow_error);
    if (b.broken) return Verdict::Restarted;
    if (b.stage == Stage::Failed) return berth::fail(*b.error);
    if (b.stage == Stage::Complete) return Verdict::Verified;
    return Verdict::Pending;
}

// Runs on its own thread while the importer reads `out`'s other end. Ends (closing `out`, which
// the reader sees as EOF) when everything of a complete blob is handed on, at a restart after
// bytes were handed on (broken), at a failure or halt, or when the reader went away.
void BlobFeed::follow(Blob& b, UniqueFd out) {
    // A reader that went away (the import failed or was cancelled) makes splice() raise SIGPIPE:
    // blocked in this thread, the signal stays pending here and ends with the thread, and splice()
    // says EPIPE.
    sigset_t pipe_signal;
    sigemptyset(&pipe_signal);
    sigaddset(&pipe_signal, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_signal, nullptr);
    UniqueFd in;
    uint64_t sent = 0, generation = 0;
    for (;;) {
        uint64_t until = 0;
        {
            std::unique_lock lock(mu_);
            for (;;) {
                if (sent > 0 && b.generation != generation) {
                    b.broken = true;  // some of what was handed on may be from the earlier transfer
                    changed_.notify_all();
                    return;
                }
                if (b.stage == Stage::Failed || closing_ || halted()) return;
                if (b.stage != Stage::Expected && b.size > sent) break;
                if (b.stage == Stage::Complete) return;  // all of it handed on: EOF
                changed_.wait_for(lock, kHaltPoll);
            }
            if (sent == 0) generation = b.generation;
            until = b.size;
            if (!in) {
                // Renamed meanwhile (complete): the same file under its final name.
                in.reset(::open(b.part.c_str(), O_RDONLY | O_CLOEXEC));
                if (!in) in.reset(::open(b.final_path.c_str(), O_RDONLY | O_CLOEXEC));
                if (!in) {
                    b.follow_error = Error{errno, fmt::format("follow '{}'", b.part)};
                    return;
                }
            }
        }
        loff_t offset = static_cast<loff_t>(sent);
        while (static_cast<uint64_t>(offset) < until) {
            ssize_t n = ::splice(in.get(), &offset, out.get(), nullptr, until - static_cast<uint64_t>(offset),
                                 SPLICE_F_MOVE);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && errno == EPIPE) return;  // the reader is gone
            if (n < 0) {
                int err = errno;
                std::lock_guard lock(mu_);
                b.follow_error = Error{err, fmt::format("follow '{}'", b.part)};
                return;
            }
            if (n == 0) break;  // the file is shorter than it was: truncated by a restart (seen above)
        }
        sent = static_cast<uint64_t>(offset);
    }
}

}  // namespace berth::store
