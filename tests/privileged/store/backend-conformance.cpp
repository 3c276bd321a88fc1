// The one SnapshotBackend conformance suite: every case runs against every registered backend
// (overlay on tmpfs, btrfs on a loop device, dm-thin under qemu). Layers are built the way the
// store builds them: begin_layer, extract_layer of a real tar into writer.path with the backend's
// whiteout mode, commit_layer. Containers' trees are checked by mounting their MountSpec as the
// runtime would.
#include "backend-conformance.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include <algorithm>
#include <map>

#include "store-test-util.h"
#include "store/digest.h"
#include "store/layer-extract.h"
#include "test-util.h"

namespace berth::store::test {

std::vector<BackendFactory>& backend_factories() {
    static std::vector<BackendFactory> f;
    return f;
}
int register_backend_factory(BackendFactory factory) {
    backend_factories().push_back(std::move(factory));
    return 0;
}

namespace {

std::string id_for(std::string_view s) { return sha256_digest(s); }

class BackendConformance : public ::testing::TestWithParam<BackendFactory> {
protected:
    void SetUp() override {
        BERTH_REQUIRE_ROOT();
        std::string why = GetParam().unavailable_reason();
        if (!why.empty()) {
            const char* want = ::getenv("BERTH_TEST_BACKEND");
            if (want && GetParam().name == want)
                FAIL() << GetParam().name << " requested but unavailable: " << why;
            GTEST_SKIP() << GetParam().name << " unavailable: " << why;
        }
        auto env = GetParam().make();
        ASSERT_TRUE(env) << env.error().what();
        env_ = std::move(*env);
    }
    void TearDown() override { env_.reset(); }

    SnapshotBackend& b() { return env_->backend(); }

    // Builds a committed layer from tar entries.
    std::string layer(const std::string& tag, const std::optional<std::string>& parent,
                      const std::vector<TarEntry>& entries) {
        std::string chain = id_for(tag);
        auto w = b().begin_layer(chain, parent);
        EXPECT_TRUE(w) << w.error().what();
        if (!w) return chain;
        auto tar = make_tar(entries);
        ExtractOptions o;
        o.whiteouts = w->whiteouts;
        auto r = extract_layer(tar.get(), w->path, o);
        EXPECT_TRUE(r) << r.error().what();
        auto c = b().commit_layer(*w);
        EXPECT_TRUE(c) << c.error().what();
        return chain;
    }

    std::string mnt(const std::string& name) {
        std::string p = tmp_ / name;
        (void)mkdir_p(p);
        return p;
    }

    std::unique_ptr<BackendEnv> env_;
    berth::test::TempDir tmp_{"berth-conf"};
};

const std::vector<TarEntry> kBase = {
    {"etc/", 'd'},
    {"etc/hostname", 'f', "base\n"},
    {"a/", 'd'},
    {"a/x", 'f', "x"},
    {"a/y", 'f', "y"},
    {"d/", 'd'},
    {"d/1", 'f', "1"},
    {"d/sub/", 'd'},
    {"d/sub/deep", 'f', "deep"},
    {"bin/", 'd'},
    {"bin/sh", 'f', "#!", 0755},
    {"link", 'l', "etc/hostname"},
};

TEST_P(BackendConformance, StacksLayersSoTheViewShowsEveryLayer) {
    auto base = layer("base", std::nullopt, kBase);
    auto top = layer("top", base, {{"etc/", 'd'}, {"etc/hostname", 'f', "top\n"}, {"new", 'f', "n"}});
    EXPECT_TRUE(b().has_layer(base));
    EXPECT_TRUE(b().has_layer(top));
    EXPECT_FALSE(b().has_layer(id_for("nope")));
    auto v = b().layer_view(top);
    ASSERT_TRUE(v) << v.error().what();
    EXPECT_EQ(slurp(*v + "/etc/hostname"), "top\n");
    EXPECT_EQ(slurp(*v + "/new"), "n");
    EXPECT_EQ(slurp(*v + "/a/x"), "x");
    struct stat st {};
    ASSERT_EQ(::stat((*v + "/bin/sh").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0755u);
    EXPECT_TRUE(b().release_layer_view(top));
    auto bv = b().layer_view(base);
    ASSERT_TRUE(bv);
    EXPECT_EQ(slurp(*bv + "/etc/hostname"), "base\n") << "an upper layer must not change its parent";
    EXPECT_FALSE(path_exists(*bv + "/new"));
    EXPECT_TRUE(b().release_layer_view(base));
}

TEST_P(BackendConformance, WhiteoutsDeleteAndOpaqueDirectoriesHideLowerFiles) {
    auto base = layer("base", std::nullopt, kBase);
    auto top =
        layer("wh", base,
              {{"a/.wh.x", 'f'}, {"d/", 'd'}, {"d/.wh..wh..opq", 'f'}, {"d/2", 'f', "2"}, {".wh.link", 'f'}});
    // In a container made from the top layer...
    auto spec = b().prepare_snapshot("c-wh", top);
    ASSERT_TRUE(spec) << spec.error().what();
    MountedSpec m(*spec, mnt("wh"));
    ASSERT_TRUE(m.ok()) << m.error();
    std::string root = tmp_ / "wh";
    EXPECT_FALSE(path_exists(root + "/a/x")) << "whiteout must delete a/x";
    EXPECT_EQ(slurp(root + "/a/y"), "y");
    EXPECT_FALSE(path_exists(root + "/d/1")) << "opaque dir must hide d/1";
    EXPECT_FALSE(path_exists(root + "/d/sub")) << "opaque dir must hide d/sub";
    EXPECT_EQ(slurp(root + "/d/2"), "2");
    struct stat st {};
    EXPECT_NE(::lstat((root + "/link").c_str(), &st), 0) << "whiteout of a symlink";
    EXPECT_FALSE(path_exists(root + "/.wh.link"));
    EXPECT_FALSE(path_exists(root + "/a/.wh.x"));
    // ...and in the layer's own view.
    auto v = b().layer_view(top);
    ASSERT_TRUE(v);
    EXPECT_FALSE(path_exists(*v + "/a/x"));
    EXPECT_FALSE(path_exists(*v + "/d/1"));
    EXPECT_EQ(slurp(*v + "/d/2"), "2");
    EXPECT_TRUE(b().release_layer_view(top));
}

TEST_P(BackendConformance, AWhiteoutNeverHidesWhatItsOwnLayerAdds) {
    auto base = layer("base", std::nullopt, kBase);
    // File re-created in the same layer that whites it out, in either order.
    auto top = layer("same", base,
                     {{"a/x", 'f', "again"}, {"a/.wh.x", 'f'}, {"d/.wh..wh..opq", 'f'}, {"d/3", 'f', "3"}});
    auto v = b().layer_view(top);
    ASSERT_TRUE(v);
    EXPECT_EQ(slurp(*v + "/a/x"), "again");
    EXPECT_EQ(slurp(*v + "/d/3"), "3");
    EXPECT_FALSE(path_exists(*v + "/d/1"));
    EXPECT_TRUE(b().release_layer_view(top));
}

TEST_P(BackendConformance, AContainersWritesAreInvisibleToTheImageAndOtherContainers) {
    auto base = layer("base", std::nullopt, kBase);
    auto s1 = b().prepare_snapshot("c-one", base);
    auto s2 = b().prepare_snapshot("c-two", base);
    ASSERT_TRUE(s1 && s2);
    {
        MountedSpec m1(*s1, mnt("one"));
        ASSERT_TRUE(m1.ok()) << m1.error();
        ASSERT_TRUE(write_file(tmp_ / "one/etc/hostname", "one\n"));
        ASSERT_TRUE(write_file(tmp_ / "one/created", "c"));
        ASSERT_EQ(::unlink((tmp_ / "one/a/x").c_str()), 0);
    }
    MountedSpec m2(*s2, mnt("two"));
    ASSERT_TRUE(m2.ok()) << m2.error();
    EXPECT_EQ(slurp(tmp_ / "two/etc/hostname"), "base\n");
    EXPECT_FALSE(path_exists(tmp_ / "two/created"));
    EXPECT_EQ(slurp(tmp_ / "two/a/x"), "x");
    auto v = b().layer_view(base);
    ASSERT_TRUE(v);
    EXPECT_EQ(slurp(*v + "/etc/hostname"), "base\n");
    EXPECT_TRUE(path_exists(*v + "/a/x"));
    EXPECT_TRUE(b().release_layer_view(base));
    // The first container still sees its own changes (remount).
    auto again = b().snapshot_mount("c-one");
    ASSERT_TRUE(again);
    MountedSpec m1b(*again, mnt("one-again"));
    ASSERT_TRUE(m1b.ok()) << m1b.error();
    EXPECT_EQ(slurp(tmp_ / "one-again/etc/hostname"), "one\n");
    EXPECT_FALSE(path_exists(tmp_ / "one-again/a/x"));
}

TEST_P(BackendConformance, CommitTurnsASnapshotIntoANewLayer) {
    auto base = layer("base", std::nullopt, kBase);
    auto s = b().prepare_snapshot("c-commit", base);
    ASSERT_TRUE(s);
    {
        MountedSpec m(*s, mnt("commit"));
        ASSERT_TRUE(m.ok()) << m.error();
        ASSERT_TRUE(write_file(tmp_ / "commit/committed", "yes"));
        ASSERT_EQ(::unlink((tmp_ / "commit/a/y").c_str()), 0);
    }
    auto view = b().snapshot_view("c-commit");
    ASSERT_TRUE(view) << view.error().what();
    EXPECT_EQ(slurp(*view + "/committed"), "yes");
    EXPECT_FALSE(path_exists(*view + "/a/y"));
    EXPECT_TRUE(b().release_snapshot_view("c-commit"));

    std::string chain = id_for("committed");
    auto c = b().commit_snapshot("c-commit", chain);
    ASSERT_TRUE(c) << c.error().what();
    ASSERT_TRUE(b().has_layer(chain));
    auto v = b().layer_view(chain);
    ASSERT_TRUE(v);
    EXPECT_EQ(slurp(*v + "/committed"), "yes");
    EXPECT_FALSE(path_exists(*v + "/a/y")) << "a deletion must survive commit";
    EXPECT_EQ(slurp(*v + "/a/x"), "x");
    EXPECT_TRUE(b().release_layer_view(chain));
    // A container from the committed layer sees it; later writes to the source don't leak in.
    auto s2 = b().prepare_snapshot("c-from-commit", chain);
    ASSERT_TRUE(s2);
    MountedSpec m2(*s2, mnt("from"));
    ASSERT_TRUE(m2.ok()) << m2.error();
    EXPECT_EQ(slurp(tmp_ / "from/committed"), "yes");
    EXPECT_FALSE(b().commit_snapshot("c-commit", chain)) << "committing onto an existing id must fail";
}

TEST_P(BackendConformance, CommitUsesTheChainIdTheWriterHasAtCommitTime) {
    std::string provisional = id_for("provisional");
    auto w = b().begin_layer(provisional, std::nullopt);
    ASSERT_TRUE(w) << w.error().what();
    auto tar = make_tar({{"f", 'f', "1"}});
    ExtractOptions o;
    o.whiteouts = w->whiteouts;
    ASSERT_TRUE(extract_layer(tar.get(), w->path, o));
    w->chain_id = id_for("final");
    ASSERT_TRUE(b().commit_layer(*w));
    EXPECT_TRUE(b().has_layer(id_for("final")));
    EXPECT_FALSE(b().has_layer(provisional));
}

TEST_P(BackendConformance, AbortedLayerLeavesNothing) {
    auto w = b().begin_layer(id_for("aborted"), std::nullopt);
    ASSERT_TRUE(w);
    ASSERT_TRUE(write_file(w->path + "/junk", "j"));
    ASSERT_TRUE(b().abort_layer(*w));
    EXPECT_FALSE(b().has_layer(id_for("aborted")));
    auto again = b().begin_layer(id_for("aborted"), std::nullopt);
    ASSERT_TRUE(again) << again.error().what();
    EXPECT_FALSE(path_exists(again->path + "/junk"));
    ASSERT_TRUE(b().abort_layer(*again));
}

TEST_P(BackendConformance, RefusesToRemoveALayerThatHasChildren) {
    auto base = layer("base", std::nullopt, kBase);
    auto child = layer("child", base, {{"c", 'f', "c"}});
    auto r = b().remove_layer(base);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, EBUSY) << r.error().what();
    ASSERT_TRUE(b().remove_layer(child));
    ASSERT_TRUE(b().prepare_snapshot("c-holds", base));
    r = b().remove_layer(base);
    ASSERT_FALSE(r) << "a snapshot is a child too";
    EXPECT_EQ(r.error().code, EBUSY);
    ASSERT_TRUE(b().remove_snapshot("c-holds"));
    ASSERT_TRUE(b().remove_layer(base)) << "no children left";
    EXPECT_FALSE(b().has_layer(base));
    EXPECT_FALSE(b().remove_layer(base));
}

TEST_P(BackendConformance, DuplicateLayersAndSnapshotsAreRefused) {
    auto base = layer("base", std::nullopt, kBase);
    EXPECT_FALSE(b().begin_layer(base, std::nullopt));
    EXPECT_FALSE(b().begin_layer(id_for("orphan"), id_for("missing-parent")));
    ASSERT_TRUE(b().prepare_snapshot("c-dup", base));
    EXPECT_FALSE(b().prepare_snapshot("c-dup", base));
    EXPECT_FALSE(b().prepare_snapshot("../escape", base));
}

TEST_P(BackendConformance, VolumesAreWritableTreesListedAsVolumes) {
    auto v = b().create_volume("v-data");
    ASSERT_TRUE(v) << v.error().what();
    {
        MountedSpec m(*v, mnt("vol"));
        ASSERT_TRUE(m.ok()) << m.error();
        ASSERT_TRUE(write_file(tmp_ / "vol/file", "persisted"));
    }
    auto again = b().create_volume("v-data");
    ASSERT_TRUE(again) << "creating an existing volume returns it";
    MountedSpec m2(*again, mnt("vol2"));
    ASSERT_TRUE(m2.ok()) << m2.error();
    EXPECT_EQ(slurp(tmp_ / "vol2/file"), "persisted");
    auto list = b().list_snapshots();
    auto it = std::find_if(list.begin(), list.end(), [](const SnapshotInfo& i) { return i.id == "v-data"; });
    ASSERT_NE(it, list.end());
    EXPECT_TRUE(it->is_volume);
    EXPECT_FALSE(it->layer);
}

TEST_P(BackendConformance, ReportsUsageAndLists) {
    auto base = layer("base", std::nullopt, kBase);
    ASSERT_TRUE(b().prepare_snapshot("c-usage", base));
    ASSERT_TRUE(b().prepare_snapshot("c-scratch", std::nullopt));
    auto u = b().usage();
    ASSERT_TRUE(u) << u.error().what();
    EXPECT_GT(u->data_total, 0u);
    EXPECT_GT(u->data_used, 0u);
    EXPECT_LE(u->data_used, u->data_total);
    auto list = b().list_snapshots();
    ASSERT_EQ(list.size(), 2u);
    for (const auto& s : list) {
        EXPECT_FALSE(s.is_volume);
        if (s.id == "c-usage")
            EXPECT_EQ(s.layer, base);
        else
            EXPECT_FALSE(s.layer);
    }
}

// `berth df` shows per container and per volume "the bytes it adds": a container that wrote
// 10 MiB shows that much, one that only shares its image's data (here a 4 MiB file and the small
// files, which btrfs keeps inline) shows about nothing.
// dm-thin counts at block level (docs/STORAGE.md): the 64 KiB pool blocks its device alone maps,
// so the filesystem's own writes (journal, bitmaps, inode table, and for a volume what mkfs wrote)
// count too, each rounded up to a whole pool block; hence a wider upper bound there.
TEST_P(BackendConformance, SizesCountWhatAContainerOrVolumeAddsNotWhatItShares) {
    constexpr uint64_t MiB = 1ull << 20;
    const bool block_level = b().name() == "dm-thin";
    const uint64_t slack = block_level ? 2 * MiB : 1 * MiB;
    auto pattern = [](size_t n, char seed) {
        std::string s(n, '\0');
        for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>(seed + i * 7 + (i >> 12));
        return s;
    };
    auto entries = kBase;
    entries.push_back({"big/", 'd'});
    entries.push_back({"big/shared", 'f', pattern(4 * MiB, 'a')});
    auto base = layer("sized", std::nullopt, entries);
    auto writer = b().prepare_snapshot("c-writer", base);
    ASSERT_TRUE(writer) << writer.error().what();
    ASSERT_TRUE(b().prepare_snapshot("c-fresh", base));
    auto vol = b().create_volume("v-sized");
    ASSERT_TRUE(vol) << vol.error().what();
    {
        MountedSpec m(*writer, mnt("writer"));
        ASSERT_TRUE(m.ok()) << m.error();
        ASSERT_TRUE(write_file(tmp_ / "writer/new-10m", pattern(10 * MiB, 'b')));
        ASSERT_TRUE(write_file(tmp_ / "writer/etc/hostname", "changed\n"));  // a small changed file
        // A metadata-only change: btrfs and dm-thin keep sharing the data (overlay would copy the
        // file up, really adding its 4 MiB, unless mounted with metacopy).
        if (b().name() != "overlay") {
            ASSERT_EQ(::chmod((tmp_ / "writer/big/shared").c_str(), 0600), 0);
        }
        MountedSpec v(*vol, mnt("vol"));
        ASSERT_TRUE(v.ok()) << v.error();
        ASSERT_TRUE(write_file(tmp_ / "vol/data-10m", pattern(10 * MiB, 'c')));
        ::sync();  // block-level accounting sees what reached the device
    }
    auto sizes = [&] {
        std::map<std::string, uint64_t> size;
        for (const auto& s : b().list_snapshots()) size[s.id] = s.exclusive_bytes;
        return size;
    };
    auto size = sizes();
    ASSERT_EQ(size.size(), 3u);
    EXPECT_EQ(b().size_note(), "");
    EXPECT_GE(size["c-writer"], 10 * MiB);
    EXPECT_LT(size["c-writer"], 10 * MiB + slack) << "the shared 4 MiB file must not count";
    EXPECT_LT(size["c-fresh"], 256u << 10) << "a fresh container adds (almost) nothing";
    EXPECT_GE(size["v-sized"], 10 * MiB);
    EXPECT_LT(size["v-sized"], 10 * MiB + slack);
    std::printf("sizes (%s): writer %llu KiB, fresh %llu KiB, volume %llu KiB\n", b().name().c_str(),
                static_cast<unsigned long long>(size["c-writer"] >> 10),
                static_cast<unsigned long long>(size["c-fresh"] >> 10),
                static_cast<unsigned long long>(size["v-sized"] >> 10));
    if (!block_level) return;

    // An idle mounted container adds (almost) nothing: mounting writes the superblock and journal,
    // but nothing may keep writing in the background (ext4's lazy inode-table init would, in
    // every container's own device, unless mkfs recorded the tables as zeroed).
    {
        auto idle = b().snapshot_mount("c-fresh");
        ASSERT_TRUE(idle) << idle.error().what();
        MountedSpec m(*idle, mnt("fresh"));
        ASSERT_TRUE(m.ok()) << m.error();
        ::sleep(8);  // ext4lazyinit starts within 5 s of a mount
        ::sync();
        uint64_t idle_size = sizes()["c-fresh"];
        EXPECT_LT(idle_size, 512u << 10) << "an idle mounted container keeps writing";
        std::printf("dm-thin: fresh container mounted 8 s: %llu KiB\n",
                    static_cast<unsigned long long>(idle_size >> 10));
    }

    // Block level: a deleted file's blocks stay mapped until the filesystem discards them, so the
    // container still holds them; a trim (what `fstrim` does) gives them back.
    auto again = b().snapshot_mount("c-writer");
    ASSERT_TRUE(again) << again.error().what();
    {
        MountedSpec m(*again, mnt("writer"));
        ASSERT_TRUE(m.ok()) << m.error();
        ASSERT_EQ(::unlink((tmp_ / "writer/new-10m").c_str()), 0);
        ::sync();
        EXPECT_GE(sizes()["c-writer"], 10 * MiB) << "deleted but not discarded: still mapped";
        UniqueFd dir(::open((tmp_ / "writer").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        ASSERT_TRUE(dir);
        fstrim_range range{0, UINT64_MAX, 0};
        ASSERT_EQ(::ioctl(dir.get(), FITRIM, &range), 0) << strerror(errno);
        ::sync();
    }
    uint64_t trimmed = sizes()["c-writer"];
    EXPECT_LT(trimmed, slack) << "after a trim the deleted file's blocks are the pool's again";
    std::printf("dm-thin: writer after rm %llu KiB after trim\n",
                static_cast<unsigned long long>(trimmed >> 10));
}

TEST_P(BackendConformance, ReconcileRemovesWhatTheStoreDoesNotKnow) {
    auto keep = layer("keep", std::nullopt, kBase);
    auto orphan = layer("orphan", keep, {{"o", 'f', "o"}});
    auto half = b().begin_layer(id_for("half"), std::nullopt);  // a crash mid-import
    ASSERT_TRUE(half);
    ASSERT_TRUE(b().prepare_snapshot("c-known", keep));
    ASSERT_TRUE(b().prepare_snapshot("c-orphan", keep));
    ASSERT_TRUE(b().create_volume("v-orphan"));
    ASSERT_TRUE(b().create_volume("v-known"));
    auto removed = b().reconcile({keep}, {"c-known", "v-known"});
    ASSERT_TRUE(removed) << removed.error().what();
    EXPECT_TRUE(b().has_layer(keep));
    EXPECT_FALSE(b().has_layer(orphan));
    EXPECT_FALSE(b().has_layer(id_for("half")));
    auto list = b().list_snapshots();
    std::vector<std::string> ids;
    for (const auto& s : list) ids.push_back(s.id);
    std::sort(ids.begin(), ids.end());
    EXPECT_EQ(ids, (std::vector<std::string>{"c-known", "v-known"}));
    // Exactly what went, by kind, as the store names it: gc reports these lists unparsed.
    EXPECT_EQ(removed->layers, (std::vector<std::string>{orphan}));
    EXPECT_EQ(removed->snapshots, (std::vector<std::string>{"c-orphan"}));
    EXPECT_EQ(removed->volumes, (std::vector<std::string>{"v-orphan"}));
    EXPECT_EQ(removed->other.size(), 1u) << "the unfinished layer's staging tree";
    auto again = b().reconcile({keep}, {"c-known", "v-known"});
    ASSERT_TRUE(again) << again.error().what();
    EXPECT_TRUE(again->empty()) << "a second reconcile finds nothing left to remove";
    // The known layer still works.
    ASSERT_TRUE(b().prepare_snapshot("c-after", keep));
}

TEST_P(BackendConformance, PersistentSnapshotSurvivesReopen) {
    auto base = layer("base", std::nullopt, kBase);
    auto s = b().prepare_snapshot("c-persist", base);
    ASSERT_TRUE(s);
    {
        MountedSpec m(*s, mnt("p1"));
        ASSERT_TRUE(m.ok()) << m.error();
        ASSERT_TRUE(write_file(tmp_ / "p1/state", "kept"));
    }
    ASSERT_TRUE(b().release_snapshot("c-persist"));
    ASSERT_TRUE(env_->reopen());
    EXPECT_TRUE(b().has_layer(base));
    auto again = b().snapshot_mount("c-persist");
    ASSERT_TRUE(again) << again.error().what();
    MountedSpec m(*again, mnt("p2"));
    ASSERT_TRUE(m.ok()) << m.error();
    EXPECT_EQ(slurp(tmp_ / "p2/state"), "kept");
    EXPECT_EQ(slurp(tmp_ / "p2/etc/hostname"), "base\n");
}

TEST_P(BackendConformance, RemovedSnapshotIsGoneAndItsIdReusable) {
    auto base = layer("base", std::nullopt, kBase);
    auto s = b().prepare_snapshot("c-reuse", base);
    ASSERT_TRUE(s);
    {
        MountedSpec m(*s, mnt("r1"));
        ASSERT_TRUE(m.ok());
        ASSERT_TRUE(write_file(tmp_ / "r1/old", "old"));
    }
    ASSERT_TRUE(b().remove_snapshot("c-reuse"));
    EXPECT_FALSE(b().snapshot_mount("c-reuse"));
    auto fresh = b().prepare_snapshot("c-reuse", base);
    ASSERT_TRUE(fresh);
    MountedSpec m(*fresh, mnt("r2"));
    ASSERT_TRUE(m.ok());
    EXPECT_FALSE(path_exists(tmp_ / "r2/old")) << "an ephemeral restart must start clean";
}

std::vector<BackendFactory> selected_backends() {
    std::vector<BackendFactory> out;
    const char* want = ::getenv("BERTH_TEST_BACKEND");
    for (const auto& f : backend_factories())
        if (!want || !*want || f.name == want) out.push_back(f);
    return out;
}

INSTANTIATE_TEST_SUITE_P(Backends, BackendConformance, ::testing::ValuesIn(selected_backends()),
                         [](const ::testing::TestParamInfo<BackendFactory>& backend) {
                             std::string n = backend.param.name;
                             std::replace(n.begin(), n.end(), '-', '_');
                             return n;
                         });
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(BackendConformance);

}  // namespace
}  // namespace berth::store::test

// --backend=NAME is turned into BERTH_TEST_BACKEND before gtest expands the parameters.
int main(int argc, char** argv) {
    std::vector<char*> args;
    for (int i = 0; i < argc; ++i) {
        std::string_view a = argv[i];
        if (a.rfind("--backend=", 0) == 0) {
            ::setenv("BERTH_TEST_BACKEND", argv[i] + 10, 1);
            continue;
        }
        args.push_back(argv[i]);
    }
    int n = static_cast<int>(args.size());
    args.push_back(nullptr);  // gtest shifts argv[] including its terminating null (ASan found this)
    ::testing::InitGoogleTest(&n, args.data());
    const char* want = ::getenv("BERTH_TEST_BACKEND");
    if (want && *want && berth::store::test::selected_backends().empty()) {
        fprintf(stderr, "backend-conformance: no backend named '%s' is linked in\n", want);
        return 1;
    }
    return RUN_ALL_TESTS();
}
