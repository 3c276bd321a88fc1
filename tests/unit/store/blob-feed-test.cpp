// BlobFeed (store/blob-feed.h): what a reader of a blob that is still downloading gets. The
// producer here is the test itself, writing a file as a download would.
#include "store/blob-feed.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <string>
#include <thread>

namespace berth::store {
namespace {

class Feed : public ::testing::Test {
protected:
    void SetUp() override {
        char tmpl[] = "/tmp/berth-blob-feed-XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
        part_ = dir_ + "/blob.part";
        final_ = dir_ + "/blob";
        feed_.expect("blobs/sha256/x", part_, final_);
    }
    void TearDown() override {
        ::unlink(part_.c_str());
        ::unlink(final_.c_str());
        ::rmdir(dir_.c_str());
    }
    // The producer's side of a download: create, append, finish.
    void create() {
        out_.reset(::open(part_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
        ASSERT_TRUE(out_);
        feed_.writing(kMember);
    }
    void append(const std::string& bytes) {
        ASSERT_EQ(::write(out_.get(), bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
        feed_.grew(kMember, bytes.size());
    }
    void finish() {
        ASSERT_EQ(::rename(part_.c_str(), final_.c_str()), 0);
        feed_.complete(kMember);
    }
    // Everything `fd` yields until EOF.
    static std::string read_all(int fd) {
        std::string got;
        char buf[4096];
        for (;;) {
            ssize_t n = ::read(fd, buf, sizeof buf);
            if (n <= 0) return got;
            got.append(buf, static_cast<size_t>(n));
        }
    }

    static constexpr const char* kMember = "blobs/sha256/x";
    std::atomic<bool> halt_{false};
    BlobFeed feed_{&halt_};
    std::string dir_, part_, final_;
    UniqueFd out_;
};

TEST_F(Feed, AFollowerYieldsTheBytesAsTheyArriveAndEndsOnlyOnceTheBlobIsVerified) {
    auto in = feed_.open(kMember, BlobFeed::Mode::Follow);
    ASSERT_TRUE(in) << in.error().message;
    create();
    append("first ");
    char buf[6];
    ASSERT_EQ(::read(in->get(), buf, sizeof buf), 6);  // before the download is done
    EXPECT_EQ(std::string(buf, 6), "first ");
    EXPECT_EQ(*feed_.verdict(kMember), BlobFeed::Verdict::Pending);
    append("second");
    finish();
    EXPECT_EQ(read_all(in->get()), "second");
    EXPECT_EQ(*feed_.verdict(kMember), BlobFeed::Verdict::Verified);
    EXPECT_EQ(feed_.final_path(kMember), final_);
}

TEST_F(Feed, ATransferThatStartsOverAfterBytesWereHandedOnBreaksTheStreamAndTheCompleteFileIsRead) {
    auto in = feed_.open(kMember, BlobFeed::Mode::Follow);
    ASSERT_TRUE(in);
    create();
    append("stale bytes");
    char buf[11];
    ASSERT_EQ(::read(in->get(), buf, sizeof buf), 11);
    feed_.restart(kMember);
    ASSERT_EQ(::ftruncate(out_.get(), 0), 0);
    ASSERT_EQ(::lseek(out_.get(), 0, SEEK_SET), 0);
    EXPECT_EQ(read_all(in->get()), "") << "nothing of the second transfer is mixed in";
    EXPECT_EQ(*feed_.verdict(kMember), BlobFeed::Verdict::Restarted);
    append("fresh bytes, all of them");
    finish();
    auto again = feed_.open(kMember, BlobFeed::Mode::Complete);
    ASSERT_TRUE(again) << again.error().message;
    EXPECT_EQ(read_all(again->get()), "fresh bytes, all of them");
}

TEST_F(Feed, ARestartBeforeAnyByteWasHandedOnIsFollowedThrough) {
    create();
    append("cut");
    feed_.restart(kMember);
    ASSERT_EQ(::ftruncate(out_.get(), 0), 0);
    ASSERT_EQ(::lseek(out_.get(), 0, SEEK_SET), 0);
    auto in = feed_.open(kMember, BlobFeed::Mode::Follow);
    ASSERT_TRUE(in);
    append("whole");
    finish();
    EXPECT_EQ(read_all(in->get()), "whole");
    EXPECT_EQ(*feed_.verdict(kMember), BlobFeed::Verdict::Verified);
}

TEST_F(Feed, AFailedDownloadEndsTheStreamWithItsError) {
    auto in = feed_.open(kMember, BlobFeed::Mode::Follow);
    ASSERT_TRUE(in);
    create();
    append("part of it");
    char buf[10];
    ASSERT_EQ(::read(in->get(), buf, sizeof buf), 10);
    feed_.fail(kMember, Error{EBADMSG, "digest mismatch"});
    EXPECT_EQ(read_all(in->get()), "");
    auto v = feed_.verdict(kMember);
    ASSERT_FALSE(v);
    EXPECT_EQ(v.error().code, EBADMSG);
    auto complete = feed_.open(kMember, BlobFeed::Mode::Complete);
    ASSERT_FALSE(complete);
    EXPECT_EQ(complete.error().message, "digest mismatch");
}

TEST_F(Feed, AHaltWakesAReaderWaitingForTheCompleteBlob) {
    create();
    std::thread stopper([&] { halt_ = true; });
    auto complete = feed_.open(kMember, BlobFeed::Mode::Complete);
    stopper.join();
    ASSERT_FALSE(complete);
    EXPECT_EQ(complete.error().code, ECANCELED);
}

TEST_F(Feed, AReaderThatGoesAwayEndsItsFollower) {
    auto in = feed_.open(kMember, BlobFeed::Mode::Follow);
    ASSERT_TRUE(in);
    create();
    append(std::string(4 << 20, 'x'));  // more than the pipe holds: the follower blocks writing
    in->reset();                        // the importer failed: its follower must not hang (EPIPE)
    finish();
}  // ~BlobFeed joins the follower

}  // namespace
}  // namespace berth::store
