// The Store end to end as root, on overlay (tmpfs) and btrfs (loop device): images made by umoci
// and skopeo imported in every format, shared layers stored once, whiteouts in containers, export
// accepted by skopeo and re-imported with the same digests, containers, commit, volumes, gc, df.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/prctl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <thread>

#include "store-fixture.h"
#include "store/fsck.h"
#include "store/store-json.h"
#include "store/tree-util.h"

namespace berth::store::test {
namespace {

class StoreTest : public ::testing::TestWithParam<std::string> {
protected:
    void SetUp() override {
        BERTH_REQUIRE_ROOT();
        images_ = test_images();
        ASSERT_FALSE(images_.empty()) << "make-test-images.sh failed";
        root_ = std::make_unique<StoreRoot>(GetParam());
        ASSERT_TRUE(root_->ok()) << "could not make a " << GetParam() << " store root";
        reopen();
    }
    void TearDown() override {
        store_.reset();
        root_.reset();
    }
    void reopen() {
        store_.reset();
        auto s = Store::open(root_->options());
        ASSERT_TRUE(s) << s.error().what();
        store_ = std::move(*s);
    }
    ImageInfo import(const std::string& rel, std::string_view name, ImportFormat f = ImportFormat::Auto) {
        auto r = store_->import_image_path(images_ + "/" + rel, f, name);
        EXPECT_TRUE(r) << rel << ": " << r.error().what();
        return r ? *r : ImageInfo{};
    }
    size_t backend_layers() {
        return list_dir(root_->root() + "/" + store_->backend_name() + "/layers").size();
    }
    size_t staged() {
        return list_dir(root_->root() + "/staging").size() +
               list_dir(root_->root() + "/" + store_->backend_name() + "/staging").size();
    }

    std::string images_;
    std::unique_ptr<StoreRoot> root_;
    std::unique_ptr<Store> store_;
};

TEST_P(StoreTest, AutoPicksTheBackendFromTheFilesystem) { EXPECT_EQ(store_->backend_name(), GetParam()); }

TEST_P(StoreTest, ImportsEveryFormatAndKeepsTheImageConfig) {
    auto dir = import("oci", "busybox");
    auto oci_tar = import("busybox-oci.tar", "bb-oci-tar");
    auto docker = import("busybox-docker.tar", "");
    auto zstd = import("oci-zstd", "bb-zstd");
    auto rootfs = import("rootfs.tar.gz", "bb-rootfs");
    EXPECT_EQ(dir.config.entrypoint, (std::vector<std::string>{"/bin/sh"}));
    EXPECT_EQ(dir.config.cmd, (std::vector<std::string>{"-c", "echo hi"}));
    EXPECT_NE(std::find(dir.config.env.begin(), dir.config.env.end(), "BERTH_TEST=1"), dir.config.env.end());
    EXPECT_EQ(dir.config.user, "app");
    EXPECT_EQ(dir.config.working_dir, "/home/app");
    EXPECT_EQ(dir.config.stop_signal, "SIGINT");
    EXPECT_EQ(dir.layers.size(), 1u);
    EXPECT_EQ(docker.config.entrypoint, dir.config.entrypoint);
    EXPECT_EQ(docker.names, (std::vector<std::string>{"busybox:latest"}))
        << "docker-archive RepoTags name the image";
    EXPECT_EQ(zstd.layers.at(0).media_type, "application/vnd.oci.image.layer.v1.tar+zstd");
    EXPECT_EQ(zstd.layers.at(0).diff_id, dir.layers.at(0).diff_id) << "same content whatever the compression";
    EXPECT_EQ(rootfs.layers.size(), 1u);
    EXPECT_EQ(rootfs.layers.at(0).diff_id, rootfs.layers.at(0).chain_id);
    // All of them are one tree, so the backend holds one layer for the lot.
    EXPECT_EQ(dir.top_layer, oci_tar.top_layer);
    EXPECT_EQ(dir.top_layer, docker.top_layer);
    EXPECT_EQ(dir.top_layer, zstd.top_layer);
    EXPECT_EQ(rootfs.size, store_->get_image("bb-rootfs")->size);
    EXPECT_EQ(staged(), 0u);
    auto got = store_->get_image("busybox");
    ASSERT_TRUE(got);
    EXPECT_EQ(got->id, docker.id) << "the docker import moved busybox:latest";
    EXPECT_TRUE(store_->get_image(dir.id.substr(7, 12)));
    EXPECT_FALSE(store_->get_image("nosuch:tag"));
}

TEST_P(StoreTest, ReimportGivesTheSameManifestDigest) {
    auto a = import("busybox-oci.tar", "a");
    auto b = import("busybox-oci.tar", "b");
    EXPECT_EQ(a.id, b.id);
    auto c = import("busybox-docker.tar", "c");
    auto d = import("busybox-docker.tar", "d");
    EXPECT_EQ(c.id, d.id);
    auto e = import("rootfs.tar", "e");
    auto f = import("rootfs.tar", "f");
    EXPECT_EQ(e.id, f.id);
    EXPECT_EQ(import("oci", "busybox").id, a.id) << "skopeo's oci-archive keeps umoci's manifest";
    EXPECT_EQ(store_->list_images().size(), 3u);
    auto names = store_->get_image(a.id)->names;
    EXPECT_EQ(names, (std::vector<std::string>{"a:latest", "b:latest", "busybox:latest"}));
}

TEST_P(StoreTest, TwoImagesSharingABaseLayerStoreItOnce) {
    auto layered = import("oci", "layered");
    auto sibling = import("oci", "sibling");
    ASSERT_EQ(layered.layers.size(), 2u);
    ASSERT_EQ(sibling.layers.size(), 2u);
    EXPECT_EQ(layered.layers[0].chain_id, sibling.layers[0].chain_id);
    EXPECT_NE(layered.top_layer, sibling.top_layer);
    EXPECT_EQ(backend_layers(), 3u);
    auto df = store_->df();
    ASSERT_TRUE(df);
    ASSERT_EQ(df->images.size(), 2u);
    for (const auto& e : df->images) {
        EXPECT_EQ(e.shared_size, layered.layers[0].size);
        EXPECT_GT(e.unique_size, 0u);
    }
}

TEST_P(StoreTest, WhiteoutsAndOpaqueDirectoriesApplyInsideContainers) {
    for (const char* src : {"oci", "layered-oci.tar", "layered-docker.tar"}) {
        SCOPED_TRACE(src);
        auto img = import(src, "layered");
        auto p = store_->prepare_container("wh", "layered", true);
        ASSERT_TRUE(p) << p.error().what();
        std::string mnt = root_->scratch(std::string("mnt-") + src);
        ASSERT_TRUE(mkdir_p(mnt));
        MountedSpec m(p->rootfs, mnt);
        ASSERT_TRUE(m.ok()) << m.error();
        EXPECT_TRUE(path_exists(mnt + "/bin/busybox"));
        EXPECT_FALSE(path_exists(mnt + "/etc/motd")) << "whiteout";
        EXPECT_FALSE(path_exists(mnt + "/data/a")) << "opaque dir";
        EXPECT_FALSE(path_exists(mnt + "/data/b")) << "opaque dir";
        EXPECT_EQ(slurp(mnt + "/data/c"), "c\n");
        EXPECT_EQ(slurp(mnt + "/added/file"), "added\n");
        EXPECT_FALSE(path_exists(mnt + "/etc/.wh.motd"));
        EXPECT_EQ(p->config.entrypoint, (std::vector<std::string>{"/bin/sh"}));
    }
}

TEST_P(StoreTest, ExportIsAcceptedBySkopeoAndReimportsWithTheSameDigests) {
    auto img = import("oci", "layered");
    std::string out = root_->scratch("export.tar");
    {
        UniqueFd fd(::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
        auto r = store_->export_image("layered", fd.get());
        ASSERT_TRUE(r) << r.error().what();
    }
    std::string inspect = capture("skopeo inspect --raw oci-archive:" + out + " 2>&1");
    EXPECT_NE(inspect.find("\"layers\""), std::string::npos) << inspect;
    EXPECT_EQ(run("skopeo copy -q oci-archive:" + out + " oci:" + root_->scratch("copied") + ":x >&2"), 0);
    EXPECT_EQ(run("umoci stat --image " + root_->scratch("copied") + ":x >/dev/null"), 0)
        << "umoci accepts skopeo's copy";
    // Re-import into another store: same ids.
    StoreRoot other(GetParam());
    ASSERT_TRUE(other.ok());
    auto s2 = Store::open(other.options());
    ASSERT_TRUE(s2);
    auto again = (*s2)->import_image_path(out, ImportFormat::Auto, "");
    ASSERT_TRUE(again) << again.error().what();
    EXPECT_EQ(again->id, img.id);
    EXPECT_EQ(again->config_digest, img.config_digest);
    ASSERT_EQ(again->layers.size(), img.layers.size());
    for (size_t i = 0; i < img.layers.size(); ++i) {
        EXPECT_EQ(again->layers[i].digest, img.layers[i].digest);
        EXPECT_EQ(again->layers[i].chain_id, img.layers[i].chain_id);
    }
    EXPECT_EQ(again->names, (std::vector<std::string>{"layered:latest"}));
}

TEST_P(StoreTest, ContainersPersistCommitAndExport) {
    auto img = import("busybox-oci.tar", "busybox");
    auto p = store_->prepare_container("web", "busybox", false);
    ASSERT_TRUE(p) << p.error().what();
    std::string mnt = root_->scratch("web");
    ASSERT_TRUE(mkdir_p(mnt));
    {
        MountedSpec m(p->rootfs, mnt);
        ASSERT_TRUE(m.ok()) << m.error();
        ASSERT_TRUE(write_file(mnt + "/state", "kept"));
        ASSERT_EQ(::unlink((mnt + "/data/a").c_str()), 0);
    }
    ASSERT_TRUE(store_->release_container("web"));
    reopen();
    auto again = store_->prepare_container("web", "busybox", false);
    ASSERT_TRUE(again);
    EXPECT_EQ(again->snapshot_id, p->snapshot_id);
    {
        MountedSpec m(again->rootfs, mnt);
        ASSERT_TRUE(m.ok());
        EXPECT_EQ(slurp(mnt + "/state"), "kept");
    }
    auto busy = store_->remove_image("busybox");
    ASSERT_FALSE(busy);
    EXPECT_EQ(busy.error().code, EBUSY);
    EXPECT_NE(busy.error().message.find("web"), std::string::npos);

    auto committed = store_->commit_container("web", "web-image:v1");
    ASSERT_TRUE(committed) << committed.error().what();
    ASSERT_EQ(committed->layers.size(), 2u);
    EXPECT_EQ(committed->config.entrypoint, img.config.entrypoint);
    auto from = store_->prepare_container("from-commit", "web-image:v1", true);
    ASSERT_TRUE(from);
    {
        MountedSpec m(from->rootfs, mnt);
        ASSERT_TRUE(m.ok());
        EXPECT_EQ(slurp(mnt + "/state"), "kept");
        EXPECT_FALSE(path_exists(mnt + "/data/a")) << "deletion committed as a whiteout";
        EXPECT_TRUE(path_exists(mnt + "/data/b"));
    }
    // The committed layer is a real OCI layer: export and look at it.
    std::string out = root_->scratch("web.tar");
    {
        UniqueFd fd(::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
        ASSERT_TRUE(store_->export_image("web-image:v1", fd.get()));
    }
    EXPECT_EQ(run("skopeo inspect oci-archive:" + out + " >/dev/null"), 0);
    std::string rootfs = root_->scratch("web-rootfs.tar");
    {
        UniqueFd fd(::open(rootfs.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
        auto r = store_->export_container("web", fd.get());
        ASSERT_TRUE(r) << r.error().what();
    }
    std::string listing = capture("tar -tf " + rootfs);
    EXPECT_NE(listing.find("state"), std::string::npos);
    EXPECT_NE(listing.find("bin/busybox"), std::string::npos);
    EXPECT_EQ(listing.find("data/a"), std::string::npos);
    // Ephemeral: fresh each time, gone at release.
    ASSERT_TRUE(store_->release_container("from-commit"));
    EXPECT_FALSE(store_->get_container("from-commit"));
    // In use (prepared, not released): removal is refused with EBUSY naming the container, also
    // after a reopen (the flag is persisted); after release it works.
    auto refused = store_->remove_container("web");
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, EBUSY);
    EXPECT_NE(refused.error().message.find("'web'"), std::string::npos) << refused.error().message;
    EXPECT_NE(refused.error().message.find("in use"), std::string::npos) << refused.error().message;
    reopen();
    refused = store_->remove_container("web");
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, EBUSY);
    ASSERT_TRUE(store_->release_container("web"));
    ASSERT_TRUE(store_->remove_container("web"));
    EXPECT_TRUE(store_->remove_image("busybox"));
}

// A process that stays alive until killed (and is killed and reaped at scope exit).
struct Sleeper {
    pid_t pid = -1;
    Sleeper() {
        int ready[2];
        if (::pipe2(ready, O_CLOEXEC) < 0) return;
        pid = ::fork();
        if (pid == 0) {
            // Not the store's lock: an inherited lock fd would keep the store locked. The parent
            // waits for this (a reopen() racing a child not yet scheduled found the store locked),
            // and a crashed test must not leave the child holding meson's output pipe.
            ::prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (ready[1] > 3) ::close_range(3, static_cast<unsigned>(ready[1]) - 1, 0);
            ::close_range(static_cast<unsigned>(ready[1]) + 1, ~0U, 0);
            (void)!::write(ready[1], "r", 1);
            ::close(ready[1]);
            ::pause();
            ::_exit(0);
        }
        ::close(ready[1]);
        char c = 0;
        while (pid > 0 && ::read(ready[0], &c, 1) < 0 && errno == EINTR) {
        }
        ::close(ready[0]);
    }
    void kill() {
        if (pid > 0) ::kill(pid, SIGKILL), ::waitpid(pid, nullptr, 0), pid = -1;
    }
    ~Sleeper() { kill(); }
};

TEST_P(StoreTest, AnInUseMarkLastsOnlyAsLongAsTheProcessThatPreparedTheSnapshot) {
    import("oci", "busybox");
    // A child process prepared (it is the holder, given explicitly as berthd does from the bus)
    // and was killed without releasing: the mark is stale, removal is allowed.
    pid_t child = 0;
    {
        Sleeper crashed;
        ASSERT_GT(crashed.pid, 0);
        child = crashed.pid;
        ASSERT_TRUE(store_->prepare_container("crashed", "busybox", false, crashed.pid));
        EXPECT_FALSE(store_->remove_container("crashed"));
    }
    reopen();  // also as read back from disk
    auto crashed = store_->get_container("crashed");
    ASSERT_TRUE(crashed) << crashed.error().what();
    EXPECT_EQ(crashed->holder_pid, child);
    EXPECT_FALSE(crashed->in_use) << "the holder is gone: the mark is stale";
    EXPECT_TRUE(store_->remove_container("crashed"));

    // A live holder (another process, given explicitly as berthd does): EBUSY naming it, also
    // after reopening the store (the mark and its holder are persisted); removable once it died.
    {
        Sleeper holder;
        ASSERT_GT(holder.pid, 0);
        ASSERT_TRUE(store_->prepare_container("held", "busybox", false, holder.pid));
        for (int round = 0; round < 2; ++round) {
            auto refused = store_->remove_container("held");
            ASSERT_FALSE(refused);
            EXPECT_EQ(refused.error().code, EBUSY);
            EXPECT_NE(refused.error().message.find("process " + std::to_string(holder.pid)),
                      std::string::npos)
                << refused.error().message;
            EXPECT_TRUE(store_->get_container("held")->in_use);
            reopen();
        }
        holder.kill();
        EXPECT_FALSE(store_->get_container("held")->in_use);
        EXPECT_TRUE(store_->remove_container("held"));
    }

    // A reused pid: this (live) process is recorded with another start time -> stale.
    ASSERT_TRUE(store_->prepare_container("reused", "busybox", false));
    EXPECT_FALSE(store_->remove_container("reused"));
    std::string file = root_->root() + "/containers/reused.json";
    auto text = read_file(file);
    ASSERT_TRUE(text);
    auto record = nlohmann::json::parse(*text);
    EXPECT_EQ(record["in_use_pid"], ::getpid());
    EXPECT_EQ(record["in_use_start_time"].get<uint64_t>(), *process_start_time(::getpid()));
    record["in_use_start_time"] = record["in_use_start_time"].get<uint64_t>() + 1;
    ASSERT_TRUE(write_file_atomic(file, record.dump()));
    reopen();
    EXPECT_TRUE(store_->remove_container("reused"));

    // A record from before holders were kept (no pid): in use until released.
    ASSERT_TRUE(store_->prepare_container("old", "busybox", false));
    file = root_->root() + "/containers/old.json";
    record = nlohmann::json::parse(*read_file(file));
    record.erase("in_use_pid");
    record.erase("in_use_start_time");
    ASSERT_TRUE(write_file_atomic(file, record.dump()));
    reopen();
    EXPECT_FALSE(store_->remove_container("old"));
    ASSERT_TRUE(store_->release_container("old"));
    EXPECT_TRUE(store_->remove_container("old"));
}

TEST_P(StoreTest, AVolumeIsInUseOnlyWhileAProcessThatMountedItRuns) {
    // Two live users (other processes, given as berthd does): EBUSY naming both, also after
    // reopening (the users are kept beside the record); the same container again replaces its
    // entry; one user killed leaves the other.
    Sleeper web, db;
    ASSERT_GT(web.pid, 0);
    ASSERT_GT(db.pid, 0);
    auto first = store_->use_volume("shared", "web", web.pid);
    ASSERT_TRUE(first) << first.error().what();
    EXPECT_TRUE(first->created);
    auto again = store_->use_volume("shared", "web", web.pid);
    ASSERT_TRUE(again);
    EXPECT_FALSE(again->created);
    ASSERT_TRUE(store_->use_volume("shared", "db", db.pid));
    EXPECT_EQ(store_->get_volume("shared")->users.size(), 2u);
    for (int round = 0; round < 2; ++round) {
        auto refused = store_->remove_volume("shared");
        ASSERT_FALSE(refused);
        EXPECT_EQ(refused.error().code, EBUSY);
        EXPECT_NE(
            refused.error().message.find("containers 'web' (process " + std::to_string(web.pid) + "), 'db'"),
            std::string::npos)
            << refused.error().message;
        reopen();
    }
    db.kill();
    auto v = store_->get_volume("shared");
    ASSERT_EQ(v->users.size(), 1u);
    EXPECT_EQ(v->users[0].container, "web");
    EXPECT_EQ(store_->list_volumes()[0].users.size(), 1u);
    // Released: free, although its process still runs.
    ASSERT_TRUE(store_->release_volume("shared", "web"));
    EXPECT_TRUE(store_->get_volume("shared")->users.empty());
    EXPECT_TRUE(store_->remove_volume("shared"));
    EXPECT_FALSE(path_exists(root_->root() + "/volumes/shared.users"));

    // The users file is not fsynced, so a power loss may leave it empty or torn: that reads as
    // no users (their processes ended with the boot), and the volume itself is intact.
    ASSERT_TRUE(store_->use_volume("torn", "web", web.pid));
    ASSERT_TRUE(write_file(root_->root() + "/volumes/torn.users", "[{\"contai"));
    reopen();
    auto torn = store_->get_volume("torn");
    ASSERT_TRUE(torn) << torn.error().what();
    EXPECT_TRUE(torn->users.empty());
    EXPECT_TRUE(store_->remove_volume("torn"));
    EXPECT_TRUE(store_->list_volumes().empty());
}

TEST_P(StoreTest, ProcessStartTimesNameOneProcess) {
    auto self = process_start_time(::getpid());
    ASSERT_TRUE(self) << self.error().what();
    EXPECT_EQ(*process_start_time(::getpid()), *self);
    EXPECT_GT(*self, 0u);
    Sleeper later;
    auto child = process_start_time(later.pid);
    ASSERT_TRUE(child);
    EXPECT_GE(*child, *self);
    pid_t pid = later.pid;
    later.kill();
    EXPECT_FALSE(process_start_time(pid));
}

TEST_P(StoreTest, AnImportsLastProgressReportIsDoneWithTheImagePublished) {
    for (const char* rel : {"oci", "busybox-oci.tar", "rootfs.tar.gz"}) {
        std::vector<ImportPhase> phases;
        bool visible_at_done = false;
        auto r = store_->import_image_path(images_ + "/" + rel, ImportFormat::Auto, "busybox",
                                           [&](const ImportProgress& p) {
                                               phases.push_back(p.phase);
                                               if (p.phase == ImportPhase::Done)
                                                   visible_at_done = !store_->list_images().empty();
                                           });
        ASSERT_TRUE(r) << rel << ": " << r.error().what();
        ASSERT_FALSE(phases.empty()) << rel;
        EXPECT_EQ(phases.back(), ImportPhase::Done) << rel << ": callers wait for Done to show 100%";
        EXPECT_EQ(std::count(phases.begin(), phases.end(), ImportPhase::Done), 1) << rel;
        EXPECT_TRUE(visible_at_done) << rel << ": Done comes after the publish, outside the store lock";
        ASSERT_TRUE(store_->remove_image("busybox"));
    }
}

TEST_P(StoreTest, GcReclaimsLayersAndBlobsOfRemovedImages) {
    auto layered = import("oci", "layered");
    auto sibling = import("oci", "sibling");
    ASSERT_TRUE(store_->remove_image("sibling"));
    EXPECT_EQ(store_->list_images().size(), 1u);
    auto r = store_->gc();
    ASSERT_TRUE(r) << r.error().what();
    EXPECT_EQ(r->removed_layers, (std::vector<std::string>{sibling.top_layer}));
    EXPECT_NE(std::find(r->removed_blobs.begin(), r->removed_blobs.end(), sibling.id),
              r->removed_blobs.end());
    EXPECT_NE(std::find(r->removed_blobs.begin(), r->removed_blobs.end(), sibling.layers[1].digest),
              r->removed_blobs.end());
    EXPECT_EQ(std::find(r->removed_blobs.begin(), r->removed_blobs.end(), layered.layers[0].digest),
              r->removed_blobs.end());
    EXPECT_EQ(backend_layers(), 2u);
    auto again = store_->gc();
    ASSERT_TRUE(again);
    EXPECT_TRUE(again->removed_layers.empty());
    EXPECT_TRUE(again->removed_blobs.empty());
    ASSERT_TRUE(store_->prepare_container("still", "layered", true)) << "the kept image still works";
}

TEST_P(StoreTest, VolumesTagsAndTheLock) {
    auto v = store_->create_volume("data");
    ASSERT_TRUE(v) << v.error().what();
    EXPECT_EQ(store_->list_volumes().size(), 1u);
    EXPECT_FALSE(store_->create_volume("../x"));
    auto second = Store::open(root_->options());
    ASSERT_FALSE(second) << "the store lock must keep a second opener out";
    EXPECT_EQ(second.error().code, EWOULDBLOCK);
    auto img = import("rootfs.tar.gz", "");
    EXPECT_TRUE(img.names.empty());
    ASSERT_TRUE(store_->tag_image(img.id, "mine:1"));
    EXPECT_EQ(store_->get_image("mine:1")->id, img.id);
    EXPECT_FALSE(store_->tag_image(img.id, "UPPER:1"));
    ASSERT_TRUE(store_->remove_image("mine:1", true));
    EXPECT_TRUE(store_->get_image(img.id)) << "untag keeps the image";
    ASSERT_TRUE(store_->remove_volume("data"));
    EXPECT_TRUE(store_->list_volumes().empty());
    nlohmann::json j = *store_->df();
    EXPECT_EQ(j["backend"], GetParam());
}

// A private berthd lets go of the lock while its client's payload runs (Store::suspend) and takes
// it again for the next call: it keeps what it read only when no other writer had the store in
// between (the token every writable open puts in ROOT/lock), else its caller reads the store anew.
TEST_P(StoreTest, ASuspendedStoreKeepsWhatItReadOnlyWhenNoOtherWriterCame) {
    import("rootfs.tar", "base:1");
    ASSERT_TRUE(store_->prepare_container("mine", "base:1", false));
    store_->suspend();
    auto refused = store_->create_volume("while-suspended");
    ASSERT_FALSE(refused) << "a suspended store holds no lock: it must not write";
    EXPECT_EQ(refused.error().code, ENOLCK) << refused.error().what();
    auto resumed = store_->resume();
    ASSERT_TRUE(resumed) << resumed.error().what();
    EXPECT_TRUE(*resumed) << "nobody else opened the store: what it read is still true";
    ASSERT_TRUE(store_->create_volume("mine-vol"));

    // Any writable open in between counts, even one that wrote no record: its open may have
    // cleaned up what the backend held (reconcile), and its writes may fall within one tick of
    // the file system's clock, which a look at the directories would miss.
    store_->suspend();
    ASSERT_TRUE(Store::open(root_->options()));
    resumed = store_->resume();
    ASSERT_TRUE(resumed) << resumed.error().what();
    EXPECT_FALSE(*resumed) << "another writer had the store";
    store_.reset();
    auto reopened = Store::open(root_->options());
    ASSERT_TRUE(reopened) << reopened.error().what();
    store_ = std::move(*reopened);

    store_->suspend();
    {
        auto other = Store::open(root_->options());
        ASSERT_TRUE(other) << "a suspended store let go of its lock: " << other.error().what();
        auto busy = store_->resume();
        ASSERT_FALSE(busy) << "the lock is another's now";
        EXPECT_EQ(busy.error().code, EWOULDBLOCK) << busy.error().what();
        ASSERT_TRUE((*other)->prepare_container("theirs", "base:1", false));
        ASSERT_TRUE((*other)->create_volume("their-vol"));
    }
    resumed = store_->resume();
    ASSERT_TRUE(resumed) << resumed.error().what();
    EXPECT_FALSE(*resumed) << "another writer came: the records in memory are stale";
    EXPECT_FALSE(store_->create_volume("stale")) << "a stale store stays suspended";
    // resume() let go of the lock again: the caller opens the store anew and sees both.
    store_.reset();
    auto again = Store::open(root_->options());
    ASSERT_TRUE(again) << again.error().what();
    std::vector<std::string> names;
    for (const auto& c : (*again)->list_containers()) names.push_back(c.name);
    std::sort(names.begin(), names.end());
    EXPECT_EQ(names, (std::vector<std::string>{"mine", "theirs"}));
    EXPECT_EQ((*again)->list_volumes().size(), 2u);

    // A writer from before the token (it leaves ROOT/lock as it was) still changes the records'
    // directories: a record renamed into containers/ after the suspend makes the store stale.
    (*again)->suspend();
    std::this_thread::sleep_for(std::chrono::milliseconds(30));  // past the coarse clock's tick
    std::string rec = root_->root() + "/containers/mine.json";
    auto text = read_file(rec);
    ASSERT_TRUE(text);
    ASSERT_TRUE(write_file_atomic(rec, *text));
    resumed = (*again)->resume();
    ASSERT_TRUE(resumed) << resumed.error().what();
    EXPECT_FALSE(*resumed) << "a record replaced behind the lock token's back";
}

TEST_P(StoreTest, ConcurrentImportsAndARemoveStayConsistent) {
    auto victim = import("rootfs.tar", "victim");
    Result<ImageInfo> a, b;
    Result<ImageRemoval> rm;
    std::thread t1([&] { a = store_->import_image_path(images_ + "/oci", ImportFormat::Auto, "layered"); });
    std::thread t2([&] { b = store_->import_image_path(images_ + "/oci", ImportFormat::Auto, "sibling"); });
    std::thread t3([&] { rm = store_->remove_image("victim"); });
    t1.join();
    t2.join();
    t3.join();
    ASSERT_TRUE(a) << a.error().what();
    ASSERT_TRUE(b) << b.error().what();
    ASSERT_TRUE(rm) << rm.error().what();
    EXPECT_EQ(store_->list_images().size(), 2u);
    ASSERT_TRUE(store_->gc());
    EXPECT_EQ(backend_layers(), 3u)
        << "shared base once + two tops (the victim's layer equals the base tree or was reclaimed)";
    EXPECT_TRUE(store_->prepare_container("x", "layered", true));
    EXPECT_TRUE(store_->prepare_container("y", "sibling", true));
}

INSTANTIATE_TEST_SUITE_P(Backends, StoreTest, ::testing::Values("overlay", "btrfs"));

}  // namespace
}  // namespace berth::store::test

namespace berth::store::test {
namespace {

TEST(StorePool, ALoopbackBtrfsPoolIsCreatedMountedAndReused) {
    BERTH_REQUIRE_ROOT();
    std::string images = test_images();
    ASSERT_FALSE(images.empty());
    StoreRoot root("overlay");  // a tmpfs: no btrfs underneath
    ASSERT_TRUE(root.ok());
    StoreOptions o = root.options();
    o.pool = root.scratch("pool.img");
    o.pool_size = 512ull << 20;
    std::string mnt = o.root + "/btrfs";
    ScopeExit unmount([&] { ::umount2(mnt.c_str(), MNT_DETACH); });
    {
        auto s = Store::open(o);
        ASSERT_TRUE(s) << s.error().what();
        EXPECT_EQ((*s)->backend_name(), "btrfs");
        EXPECT_EQ((*s)->pool_path(), o.pool);
        ASSERT_TRUE((*s)->import_image_path(images + "/rootfs.tar.gz", ImportFormat::Auto, "pooled"));
        auto u = (*s)->pool_usage();
        ASSERT_TRUE(u);
        EXPECT_GT(u->data_total, 400ull << 20);
        EXPECT_LE(u->data_total, 512ull << 20);
    }
    EXPECT_TRUE(is_mount_point(mnt)) << "the pool stays mounted for the runtime";
    auto again = Store::open(o);
    ASSERT_TRUE(again) << again.error().what();
    EXPECT_TRUE((*again)->get_image("pooled"));
    auto bad = root.options();
    bad.backend = "overlay";
    bad.pool = o.pool;
    again->reset();
    EXPECT_FALSE(Store::open(bad)) << "a pool needs btrfs";
}

TEST(StorePool, APoolFileHoldingAnotherFileSystemOrStrayDataIsRefusedUntouched) {
    // Fails before the fix: the pool was mounted as btrfs without looking, which failed with a
    // bare "mount btrfs ...: Invalid argument" (ext4) or the same for a file of stray data.
    BERTH_REQUIRE_ROOT();
    StoreRoot root("overlay");
    ASSERT_TRUE(root.ok());
    StoreOptions o = root.options();
    o.pool = root.scratch("ext4.img");
    o.pool_size = 512ull << 20;
    ASSERT_EQ(std::system(("truncate -s 64M '" + o.pool + "' && mkfs.ext4 -q -F '" + o.pool + "'").c_str()),
              0);
    std::string mnt = o.root + "/btrfs";
    ScopeExit unmount([&] { ::umount2(mnt.c_str(), MNT_DETACH); });
    auto s = Store::open(o);
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error().code, EMEDIUMTYPE);
    EXPECT_NE(s.error().message.find("holds a ext4 file system, not btrfs"), std::string::npos)
        << s.error().what();

    o.pool = root.scratch("stray.img");
    ASSERT_EQ(std::system(("head -c 1M /dev/urandom > '" + o.pool + "'").c_str()), 0);
    auto stray = Store::open(o);
    ASSERT_FALSE(stray);
    EXPECT_EQ(stray.error().code, EMEDIUMTYPE) << stray.error().what();
    struct stat st {};
    ASSERT_EQ(::stat(o.pool.c_str(), &st), 0);
    EXPECT_EQ(st.st_size, 1 << 20) << "the file was not formatted over";
    EXPECT_FALSE(is_mount_point(mnt));
}

}  // namespace
}  // namespace berth::store::test

namespace berth::store::test {
namespace {

// Docker's rmi: removing a name untags; the image goes only with its last name and only when no
// container uses it; a name of an image a container uses can go while another name is left; an
// id removes the image with all its names. (Before: any name removed the image and all names.)
TEST_P(StoreTest, RemovingANameUntagsAndTheImageGoesWithItsLastName) {
    auto img = import("rootfs.tar", "multi:1");
    ASSERT_FALSE(img.id.empty());
    ASSERT_TRUE(store_->tag_image("multi:1", "multi:2"));
    ASSERT_TRUE(store_->tag_image("multi:1", "other"));
    auto r = store_->remove_image("multi:1");
    ASSERT_TRUE(r) << r.error().what();
    EXPECT_EQ(r->untagged, (std::vector<std::string>{"multi:1"}));
    EXPECT_EQ(r->deleted, "");
    EXPECT_FALSE(store_->get_image("multi:1"));
    auto kept = store_->get_image("multi:2");
    ASSERT_TRUE(kept) << "removing one name removed the image";
    EXPECT_EQ(kept->names, (std::vector<std::string>{"multi:2", "other:latest"}));

    // A container uses the image: its other names can go, the last one cannot.
    ASSERT_TRUE(store_->prepare_container("user", "multi:2", false));
    r = store_->remove_image("other");
    ASSERT_TRUE(r) << r.error().what();
    EXPECT_EQ(r->untagged, (std::vector<std::string>{"other:latest"}));
    EXPECT_EQ(r->deleted, "");
    r = store_->remove_image("multi:2");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, EBUSY);
    EXPECT_NE(r.error().message.find("user"), std::string::npos) << r.error().message;
    EXPECT_TRUE(store_->get_image("multi:2")) << "a refused removal dropped the name";
    ASSERT_TRUE(store_->release_container("user"));
    ASSERT_TRUE(store_->remove_container("user"));

    // The last name takes the image along.
    r = store_->remove_image("multi:2");
    ASSERT_TRUE(r) << r.error().what();
    EXPECT_EQ(r->untagged, (std::vector<std::string>{"multi:2"}));
    EXPECT_EQ(r->deleted, img.id);
    EXPECT_FALSE(store_->get_image(img.id));
    reopen();
    EXPECT_TRUE(store_->list_images().empty());

    // An id removes the image and all its names.
    auto again = import("rootfs.tar", "byid:1");
    ASSERT_TRUE(store_->tag_image("byid:1", "byid:2"));
    r = store_->remove_image(again.id.substr(7, 12));
    ASSERT_TRUE(r) << r.error().what();
    EXPECT_EQ(r->untagged, (std::vector<std::string>{"byid:1", "byid:2"}));
    EXPECT_EQ(r->deleted, again.id);
    EXPECT_TRUE(store_->list_images().empty());
}

}  // namespace
}  // namespace berth::store::test

// ---- issue #15: image changes, removing container state, gc accounting ----

namespace berth::store::test {
namespace {

// A rootfs image holding /marker = `marker` (and `extra` bytes of incompressible data, to be
// seen by the accounting), imported as `name`.
ImageInfo import_marked(Store& store, const std::string& name, const std::string& marker, size_t extra = 0) {
    std::string noise(extra, '\0');
    uint64_t x = std::hash<std::string>{}(name + marker) | 1;
    for (auto& c : noise) {  // xorshift: does not compress, differs per image
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        c = static_cast<char>(x);
    }
    std::vector<TarEntry> entries{{"marker", 'f', marker}};
    if (extra) entries.push_back({"noise", 'f', noise});
    auto tar = make_tar(entries);
    auto r = store.import_image(tar.get(), ImportFormat::RootfsTar, name);
    EXPECT_TRUE(r) << r.error().what();
    return r ? *r : ImageInfo{};
}

// The marker as the container sees it through its MountSpec.
std::string marker_of(const StoreRoot& root, const PreparedContainer& p) {
    std::string mnt = root.scratch("marker-mnt");
    (void)mkdir_p(mnt);
    MountedSpec m(p.rootfs, mnt);
    if (!m.ok()) return "<mount failed: " + m.error() + ">";
    return slurp(mnt + "/marker");
}

// Bytes allocated under `path` (du's count).
uint64_t du_bytes(const std::string& path) {
    FILE* p = ::popen(("du -s -B1 " + path).c_str(), "r");
    if (!p) return 0;
    unsigned long long bytes = 0;
    if (std::fscanf(p, "%llu", &bytes) != 1) bytes = 0;
    ::pclose(p);
    return bytes;
}

}  // namespace

TEST_P(StoreTest, AChangedImageRecreatesTheLayerAndRetainsTheOldOneUntilRemoveOrGc) {
    auto a = import_marked(*store_, "ta:1", "A");
    auto b = import_marked(*store_, "tb:1", "B");
    auto first = store_->prepare_container("app", "ta:1", false);
    ASSERT_TRUE(first) << first.error().what();
    EXPECT_FALSE(first->image_change.changed);
    EXPECT_EQ(marker_of(*root_, *first), "A");
    ASSERT_TRUE(store_->release_container("app"));

    auto second = store_->prepare_container("app", "tb:1", false);
    ASSERT_TRUE(second) << second.error().what();
    EXPECT_TRUE(second->image_change.changed);
    EXPECT_TRUE(second->image_change.recreated);
    EXPECT_EQ(second->image_change.old_image_id, a.id);
    EXPECT_EQ(second->image_change.new_image_id, b.id);
    EXPECT_EQ(second->image_change.retained_snapshot, first->snapshot_id);
    EXPECT_NE(second->snapshot_id, first->snapshot_id);
    EXPECT_EQ(second->image_id, b.id);
    EXPECT_EQ(marker_of(*root_, *second), "B");
    ASSERT_TRUE(store_->release_container("app"));

    // Retained across a reopen, pinning its image, listed by df.
    reopen();
    auto c = store_->get_container("app");
    ASSERT_TRUE(c);
    ASSERT_EQ(c->retained.size(), 1u);
    EXPECT_EQ(c->retained[0].snapshot_id, first->snapshot_id);
    EXPECT_EQ(c->retained[0].image_id, a.id);
    auto busy = store_->remove_image(a.id);
    ASSERT_FALSE(busy);
    EXPECT_EQ(busy.error().code, EBUSY);
    EXPECT_NE(busy.error().what().find("retained earlier layer"), std::string::npos) << busy.error().what();
    auto df = store_->df();
    ASSERT_TRUE(df);
    size_t listed = 0;
    for (const auto& e : df->containers) listed += e.name == "app";
    EXPECT_EQ(listed, 2u);

    auto check = fsck(*store_, false);
    ASSERT_TRUE(check) << check.error().what();
    EXPECT_EQ(check->garbage(), 0u) << "fsck takes the retained layer for garbage";
    EXPECT_EQ(check->damage(), 0u);

    // gc removes the retained layer (and says so); the current one stays.
    auto gc = store_->gc();
    ASSERT_TRUE(gc) << gc.error().what();
    EXPECT_EQ(gc->removed_retained, (std::vector<std::string>{"app " + first->snapshot_id}));
    c = store_->get_container("app");
    ASSERT_TRUE(c);
    EXPECT_TRUE(c->retained.empty());
    EXPECT_EQ(c->snapshot_id, second->snapshot_id);
    auto again = store_->prepare_container("app", "tb:1", false);
    ASSERT_TRUE(again);
    EXPECT_FALSE(again->image_change.changed);
    EXPECT_EQ(again->snapshot_id, second->snapshot_id);
    ASSERT_TRUE(store_->release_container("app"));
    EXPECT_TRUE(store_->remove_image(a.id));
}

TEST_P(StoreTest, KeepStaysOnTheOldLayerAndAReimportedTagIsAChangeToo) {
    auto a = import_marked(*store_, "ta:1", "A");
    auto first = store_->prepare_container("app", "ta:1", false);
    ASSERT_TRUE(first);
    ASSERT_TRUE(store_->release_container("app"));
    // The same tag, now on another image: compared by id, it is a change.
    auto a2 = import_marked(*store_, "ta:1", "A2");
    ASSERT_NE(a2.id, a.id);
    auto kept = store_->prepare_container("app", "ta:1", false, 0, ImageChangePolicy::Keep);
    ASSERT_TRUE(kept) << kept.error().what();
    EXPECT_TRUE(kept->image_change.changed);
    EXPECT_FALSE(kept->image_change.recreated);
    EXPECT_EQ(kept->snapshot_id, first->snapshot_id);
    EXPECT_EQ(kept->image_id, a.id);
    EXPECT_EQ(marker_of(*root_, *kept), "A");
    ASSERT_TRUE(store_->release_container("app"));
    auto recreated = store_->prepare_container("app", "ta:1", false);
    ASSERT_TRUE(recreated) << recreated.error().what();
    EXPECT_TRUE(recreated->image_change.recreated);
    EXPECT_EQ(marker_of(*root_, *recreated), "A2");
    ASSERT_TRUE(store_->release_container("app"));
    // remove_container takes the retained layer with it, and the old image is free to go.
    ASSERT_TRUE(store_->remove_container("app"));
    EXPECT_TRUE(store_->remove_image(a.id)) << "nothing pins the old image any more";
    auto snaps = store_->backend().list_snapshots();
    for (const auto& s : snaps)
        EXPECT_EQ(s.id.rfind("c-app", 0), std::string::npos) << s.id << " left behind";
}

TEST_P(StoreTest, RemoveAndPruneTakeRootfsLayersAndUndeclaredContainers) {
    import_marked(*store_, "ta:1", "A");
    ASSERT_TRUE(store_->prepare_container("kept", "ta:1", false));
    ASSERT_TRUE(store_->release_container("kept"));
    ASSERT_TRUE(store_->prepare_container("gone", "ta:1", false));
    ASSERT_TRUE(store_->release_container("gone"));
    ASSERT_TRUE(store_->prepare_container("busy", "ta:1", false));  // held by this process
    const std::string layers = root_->root() + "/rootfs-layers";
    ASSERT_TRUE(mkdir_p(layers + "/rf/upper"));
    ASSERT_TRUE(write_file(layers + "/rf/upper/data", std::string(8192, 'x')));
    ASSERT_TRUE(mkdir_p(layers + "/rf2/upper"));
    auto df = store_->df();
    ASSERT_TRUE(df);
    bool rootfs_listed = false;
    for (const auto& e : df->containers) rootfs_listed = rootfs_listed || e.id == "rootfs-layers/rf";
    EXPECT_TRUE(rootfs_listed);

    ASSERT_TRUE(store_->remove_container("rf2"));
    EXPECT_FALSE(path_exists(layers + "/rf2"));
    auto missing = store_->remove_container("nosuch");
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().code, ENOENT);

    auto pruned = store_->prune_containers({"kept"});
    ASSERT_TRUE(pruned) << pruned.error().what();
    EXPECT_EQ(pruned->removed_containers, (std::vector<std::string>{"gone", "rootfs-layers/rf"}));
    EXPECT_GE(pruned->sizes["rootfs-layers/rf"], 8192u);
    EXPECT_TRUE(store_->get_container("kept"));
    EXPECT_TRUE(store_->get_container("busy")) << "in use: never pruned";
    EXPECT_FALSE(store_->get_container("gone"));
    EXPECT_FALSE(path_exists(layers + "/rf"));
}

// Issue #15 item 6: gc said "565 B freed" after an 802 MiB image went. Its report now names each
// layer and blob with the bytes it held, and their sum is what the store's disk use went down by.
TEST_P(StoreTest, GcReportsTheLayersAndBlobsItRemovedWithTheirRealSizes) {
    import_marked(*store_, "stay:1", "S");
    auto big = import_marked(*store_, "big:1", "B", 6 << 20);
    ASSERT_TRUE(store_->remove_image("big:1"));
    // As in embedded mode, where every command opens the store anew: opening must leave the
    // removed image's layer to gc (it reconciled it away, and gc then reported only the blobs).
    reopen();
    ::sync();
    uint64_t before = du_bytes(root_->root());
    auto gc = store_->gc();
    ASSERT_TRUE(gc) << gc.error().what();
    ::sync();
    uint64_t after = du_bytes(root_->root());
    ASSERT_EQ(gc->removed_layers, (std::vector<std::string>{big.top_layer}));
    ASSERT_TRUE(gc->sizes.count(big.top_layer)) << "the layer's size is reported";
    EXPECT_GE(gc->sizes[big.top_layer], 6u << 20);
    uint64_t sum = 0;
    for (const auto& [_, bytes] : gc->sizes) sum += bytes;
    EXPECT_EQ(sum, gc->bytes_freed);
    const uint64_t freed = before - after;
    // What du saw go, within 5% (directories and metadata the walk does not attribute).
    EXPECT_GE(gc->bytes_freed, freed * 95 / 100) << "du: " << before << " -> " << after;
    EXPECT_LE(gc->bytes_freed, freed * 105 / 100 + 65536) << "du: " << before << " -> " << after;
}

}  // namespace berth::store::test
