// A hostile registry (hostile-registry.py) against a real store: every misbehaviour is a clear
// error naming the reference and the digest it concerns, and publishes nothing; a blob cut short
// by a connection reset is resumed with Range (or fetched again when the server ignores Range);
// and berthd killed with SIGKILL at several points of a pull leaves a store that fsck accepts, gc
// cleans, and a retried pull completes.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>

#include "basic/fs-util.h"
#include "basic/string-util.h"
#include "bus-fixture.h"
#include "registry-fixture.h"
#include "registry/pull.h"
#include "store/digest.h"
#include "store/fsck.h"
#include "store/store.h"
#include "store/tree-util.h"

namespace berth::registry {
namespace {

using store::test::StoreRoot;
using test::HostileRegistry;

class Hostile : public ::testing::Test {
protected:
    static void SetUpTestSuite() { registry_ = new HostileRegistry(); }
    static void TearDownTestSuite() {
        delete registry_;
        registry_ = nullptr;
    }
    void SetUp() override {
        if (::geteuid() != 0) GTEST_SKIP() << "needs root (mounts a tmpfs for the store)";
        ASSERT_TRUE(reg().ok()) << "hostile-registry.py did not start: " << reg().stderr_log();
        ASSERT_TRUE(root_.ok());
        auto s = store::Store::open(root_.options());
        ASSERT_TRUE(s) << s.error().message;
        store_ = std::move(*s);
        config_.registries.push_back({reg().host(), reg().host(), true, false, {}});
        config_.certs_dir = tmp_ / "certs.d";
        config_.auth_file = tmp_ / "auth.json";
        // Short enough for a test: the trickle is aborted after 2 s below 1 KiB/s.
        options_.http.low_speed_bytes = 1024;
        options_.http.low_speed_time_s = 2;
        options_.http.retries = 2;
        options_.http.backoff_ms = 20;
    }
    static HostileRegistry& reg() { return *registry_; }

    Result<PullResult> pull(const std::string& repo) {
        return pull_image(*store_, reg().host() + "/" + repo + ":v1", config_, options_, {}, nullptr);
    }
    void expect_nothing_published() {
        EXPECT_TRUE(store_->list_images().empty());
        EXPECT_TRUE(store::list_dir(root_.root() + "/staging").empty()) << "staging is not empty";
    }
    // The layer's GETs in the request log: their Range headers ("-" for none).
    std::vector<std::string> layer_ranges(const std::string& repo) {
        std::vector<std::string> out;
        for (const auto& line : reg().requests("GET /v2/" + repo + "/blobs/" + reg().digest("layer") + " "))
            out.push_back(line.substr(line.find("range=") + 6));
        return out;
    }

    static HostileRegistry* registry_;
    StoreRoot root_{"overlay"};
    berth::test::TempDir tmp_{"berth-hostile-pull"};
    std::unique_ptr<store::Store> store_;
    RegistriesConfig config_;
    PullOptions options_;
};
HostileRegistry* Hostile::registry_ = nullptr;

struct Case {
    std::string repo;
    int code;
    std::string digest_key;  // "" for a tag's manifest (the message names the tag instead)
    std::string fragment;
};

TEST_F(Hostile, EachMisbehaviourIsAClearErrorNamingTheReferenceAndDigestAndPublishesNothing) {
    const std::vector<Case> cases = {
        {"bad/digest", EBADMSG, "layer", "digest mismatch (content is sha256:"},
        {"bad/size", EBADMSG, "layer", "more bytes than the"},
        {"bad/truncated", EIO, "layer", "/blobs/"},
        {"bad/bigmanifest", EFBIG, "", "the response is larger than 4194304 bytes"},
        {"bad/redirect", ELOOP, "", "more than 10 redirects"},
        {"bad/auth", EACCES, "", "access denied to 'bad/auth' (HTTP 401 (UNAUTHORIZED"},
        {"bad/trickle", ETIMEDOUT, "layer", "/blobs/"},
        {"bad/bomb", EFBIG, "bomb", "max_layer_ratio (100:1)"},
        {"bad/schema1", EPROTONOSUPPORT, "manifest:bad/schema1", "Docker schema 1 manifest"},
        {"bad/mediatype", EPROTONOSUPPORT, "manifest:bad/mediatype",
         "unsupported manifest media type 'application/vnd.example.thing.v1+json'"},
        {"bad/layertype", EPROTONOSUPPORT, "layer",
         "unsupported media type 'application/vnd.example.layer.v1+exe'"},
        {"bad/platform", ENOENT, "manifest:bad/platform", "(the index offers: linux/s390x, linux/ppc64le)"},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.repo);
        auto r = pull(c.repo);
        ASSERT_FALSE(r) << "a hostile registry's image was pulled";
        const std::string& msg = r.error().message;
        EXPECT_EQ(r.error().code, c.code) << msg;
        EXPECT_EQ(msg.rfind("pull '" + reg().host() + "/" + c.repo + ":v1': ", 0), 0u) << msg;
        if (c.digest_key.empty())
            EXPECT_NE(msg.find("manifest 'v1' from '" + reg().host() + "/" + c.repo + "'"), std::string::npos)
                << msg;
        else
            // The hex part: a layer the importer refuses is named by its path, blobs/sha256/HEX.
            EXPECT_NE(msg.find(store::digest_hex(reg().digest(c.digest_key))), std::string::npos) << msg;
        EXPECT_NE(msg.find(c.fragment), std::string::npos) << msg;
        EXPECT_EQ(msg.find('\n'), std::string::npos) << "one line: " << msg;
        expect_nothing_published();
    }
    // Bounded: a reset blob is tried 1 + retries times, an endless 401 costs two manifest requests
    // (anonymous, then with the token), a redirect loop ends after kMaxRedirects hops.
    EXPECT_EQ(layer_ranges("bad/truncated").size(), 3u);
    EXPECT_EQ(reg().requests("GET /v2/bad/auth/manifests/v1 ").size(), 2u);
    EXPECT_EQ(reg().requests("GET /v2/bad/redirect/manifests/v1 ").size(), 11u);
    // The store is intact: a good image pulls, and fsck finds nothing to say.
    auto good = pull("good/app");
    ASSERT_TRUE(good) << good.error().message;
    EXPECT_EQ(good->image.layers.size(), 1u);
    auto fsck = store::fsck(*store_, false);
    ASSERT_TRUE(fsck) << fsck.error().message;
    EXPECT_EQ(fsck->damage(), 0u);
    EXPECT_EQ(fsck->garbage(), 0u);
}

TEST_F(Hostile, ABlobResetHalfwayIsResumedWithRangeAndVerifiedAsAWhole) {
    auto r = pull("resume/range");
    ASSERT_TRUE(r) << r.error().message;
    auto ranges = layer_ranges("resume/range");
    ASSERT_EQ(ranges.size(), 2u) << "one reset GET, then one Range GET";
    EXPECT_EQ(ranges[0], "-");
    ASSERT_EQ(ranges[1].rfind("bytes=", 0), 0u) << ranges[1];
    uint64_t from = std::strtoull(ranges[1].c_str() + 6, nullptr, 10);
    EXPECT_GT(from, 0u) << "the retry resumed where the reset cut it";
    EXPECT_EQ(ranges[1].back(), '-');
    // The importer checked the layer's diff_id: the resumed blob is the right one, whole.
    EXPECT_EQ(r->image.layers.size(), 1u);
    EXPECT_EQ(r->image.layers[0].digest, reg().digest("layer"));
    EXPECT_TRUE(store::list_dir(root_.root() + "/staging").empty());
}

TEST_F(Hostile, AServerThatIgnoresRangeSendsTheBlobAgainAndThePullStartsItOver) {
    auto r = pull("resume/norange");
    ASSERT_TRUE(r) << r.error().message;
    auto ranges = layer_ranges("resume/norange");
    ASSERT_EQ(ranges.size(), 2u);
    EXPECT_EQ(ranges[0], "-");
    EXPECT_EQ(ranges[1].rfind("bytes=", 0), 0u) << ranges[1];
    EXPECT_EQ(r->image.layers.size(), 1u);
    EXPECT_EQ(r->image.layers[0].digest, reg().digest("layer"));
    EXPECT_TRUE(store::list_dir(root_.root() + "/staging").empty());
}

// kill -9 of berthd during a pull: while the manifest request waits, mid-blob, and (through
// BERTH_STORE_CRASH_AT, berthd SIGKILLing itself) after the layers are extracted, after the blobs
// are published and after the image record is written. Each time: berthd down, fsck finds no
// damage; berthd up again, staging is empty (a partial blob is collected when the store opens,
// and not resumed across a restart: its pull is gone with the daemon); the pull completes on
// retry, gc and fsck are clean. The image is removed and collected for the next round, so that
// every round downloads and extracts again.
class PullCrash : public berth::test::BerthdFixture {
protected:
    PullCrash() : BerthdFixture("berth-pull-crash") {}
    void SetUp() override {
        BerthdFixture::SetUp();
        if (IsSkipped() || HasFatalFailure()) return;
        registry_ = std::make_unique<HostileRegistry>();
        ASSERT_TRUE(registry_->ok()) << registry_->stderr_log();
        ASSERT_TRUE(mkdir_p(dir_ / "registries"));
        ASSERT_TRUE(
            write_file(dir_ / "registries/registries.toml",
                       fmt::format("[[registry]]\nprefix = \"{0}\"\nlocation = \"{0}\"\ninsecure = true\n",
                                   registry_->host())));
        env_reg_ = std::make_unique<berth::test::ScopedEnv>("BERTH_REGISTRIES_PATH", dir_ / "registries");
        env_storage_ = std::make_unique<berth::test::ScopedEnv>("BERTH_STORAGE", "bus");
    }
    void TearDown() override {
        env_storage_.reset();
        env_reg_.reset();
        registry_.reset();
        BerthdFixture::TearDown();
    }
    void start(const std::vector<std::string>& env = {}) {
        daemon_ = berth::test::spawn(
            {berthd_exe(), "--root", store(), "--backend", "overlay", "--bus-address", bus_->address()}, env,
            dir_ / "berthd.log");
        ASSERT_TRUE(berth::test::wait_for_name(bus_->address(), "org.berth.Storage1", 30000, &daemon_))
            << log();
    }
    berth::test::CommandResult berth(const std::string& args) {
        return berth::test::run_shell(berth_exe() + " " + args);
    }
    std::string ref(const std::string& repo) const { return registry_->host() + "/" + repo + ":v1"; }
    // Polls until `child` exits (30 s at most); its wait status, or -1.
    static int wait_exit(berth::test::Child& child) {
        for (int i = 0; i < 1500; ++i) {
            if (child.exited()) return child.exit_status();
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        return -1;
    }
    berth::test::CommandResult fsck() {
        return berth::test::run_shell("env BERTH_STORAGE= " + berth_exe() + " fsck --root " + store());
    }

    std::unique_ptr<HostileRegistry> registry_;
    std::unique_ptr<berth::test::ScopedEnv> env_reg_, env_storage_;
};

TEST_F(PullCrash, KillNineAtEachStepOfAPullLeavesAStoreThatFsckAcceptsAndThePullCompletesOnRetry) {
    struct Point {
        std::string name, repo, wait_for, crash_at;
    };
    const std::vector<Point> points = {
        {"during the manifest request", "slow/manifest", "manifest waiting", ""},
        {"mid-blob", "slow/blob", "blob waiting", ""},
        {"after extraction", "good/app", "", "import:layers-extracted"},
        {"blobs published", "good/app", "", "publish:blobs-moved"},
        {"record written", "good/app", "", "publish:record-written"},
    };
    for (const auto& p : points) {
        SCOPED_TRACE(p.name);
        ::unlink(registry_->gate().c_str());
        start(p.crash_at.empty() ? std::vector<std::string>{}
                                 : std::vector<std::string>{"BERTH_STORE_CRASH_AT=" + p.crash_at});
        if (HasFatalFailure()) return;
        auto client = berth::test::spawn({berth_exe(), "image", "pull", ref(p.repo)}, {}, dir_ / "pull.log");
        if (p.crash_at.empty()) {
            ASSERT_TRUE(registry_->wait_for(p.wait_for)) << log();
            daemon_.kill_and_reap();  // SIGKILL
        } else {
            int st = wait_exit(daemon_);
            ASSERT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL)
                << "berthd did not reach " << p.crash_at << ": status " << st << log();
        }
        int st = wait_exit(client);
        EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) != 0) << "the pull did not fail: status " << st;
        // berthd is down: no damage (garbage, exit status 2, is gc's to collect).
        auto f = fsck();
        EXPECT_TRUE(f.status == 0 || f.status == 2) << "fsck found damage: " << f.out << f.err;
        // Up again: what the crash left in staging is gone; the pull completes.
        registry_->open_gate();
        start();
        if (HasFatalFailure()) return;
        EXPECT_TRUE(store::list_dir(store() + "/staging").empty()) << "staging kept a partial pull";
        auto again = berth("image pull " + ref(p.repo));
        ASSERT_EQ(again.status, 0) << again.out << again.err;
        auto list = berth("image list");
        EXPECT_NE(list.out.find(registry_->host() + "/" + p.repo), std::string::npos) << list.out;
        auto gc = berth("gc");
        ASSERT_EQ(gc.status, 0) << gc.out << gc.err;
        // Removed and collected for the next round; then berthd down and fsck clean.
        auto rm = berth("image rm " + ref(p.repo));
        ASSERT_EQ(rm.status, 0) << rm.out << rm.err;
        ASSERT_EQ(berth("gc").status, 0);
        daemon_.kill_and_reap();
        f = fsck();
        EXPECT_EQ(f.status, 0) << f.out << f.err;
        EXPECT_TRUE(store::list_dir(store() + "/staging").empty());
    }
}

}  // namespace
}  // namespace berth::registry
