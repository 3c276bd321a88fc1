// Pure parts of the dm-thin backend: pool status parsing, table lines, the metadata file and the
// crash-recovery decision, and berthd.toml's dm-thin keys. No kernel needed.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "store/dmthin/dm-ops.h"
#include "store/dmthin/dmthin-backend.h"
#include "store/dmthin/dmthin-metadata.h"
#include "store/dmthin/program.h"
#include "store/dmthin/thin-usage.h"
#include "store/store.h"
#include "test-util.h"

using namespace berth::store::dmthin;

TEST(DmThinStatus, ParsesAHealthyPoolStatusLine) {
    auto s = parse_thin_pool_status("7 130/16384 420/16384 - rw discard_passdown queue_if_no_space - 1024");
    ASSERT_TRUE(s) << s.error().what();
    EXPECT_EQ(s->transaction_id, 7u);
    EXPECT_EQ(s->metadata_used, 130u);
    EXPECT_EQ(s->metadata_total, 16384u);
    EXPECT_EQ(s->data_used, 420u);
    EXPECT_EQ(s->data_total, 16384u);
    EXPECT_FALSE(s->read_only);
    EXPECT_FALSE(s->out_of_data_space);
    EXPECT_FALSE(s->failed);
}

TEST(DmThinStatus, RecognisesFullFailedAndNeedsCheckPools) {
    EXPECT_TRUE(
        parse_thin_pool_status("3 1/2 16384/16384 - out_of_data_space discard_passdown error_if_no_space -")
            ->out_of_data_space);
    EXPECT_TRUE(parse_thin_pool_status("Fail")->failed);
    EXPECT_TRUE(
        parse_thin_pool_status("3 1/2 3/4 - rw discard_passdown error_if_no_space needs_check")->read_only);
    EXPECT_TRUE(parse_thin_pool_status("3 1/2 3/4 - ro")->read_only);
}

TEST(DmThinStatus, RejectsGarbage) {
    EXPECT_FALSE(parse_thin_pool_status(""));
    EXPECT_FALSE(parse_thin_pool_status("x 1/2 3/4"));
    EXPECT_FALSE(parse_thin_pool_status("1 12 3/4"));
}

TEST(DmThinUsage, ParsesThinLsRowsPerDevice) {
    auto u = parse_thin_ls("0 160 3 157 \n1 170 13 157 \n\n7 0 0 0\n");
    ASSERT_TRUE(u) << u.error().what();
    ASSERT_EQ(u->size(), 3u);
    EXPECT_EQ(u->at(1).mapped_blocks, 170u);
    EXPECT_EQ(u->at(1).exclusive_blocks, 13u);
    EXPECT_EQ(u->at(1).shared_blocks, 157u);
    EXPECT_EQ(u->at(7).mapped_blocks, 0u);
    EXPECT_TRUE(parse_thin_ls("")->empty());
}

TEST(DmThinUsage, RejectsThinLsOutputItDoesNotUnderstand) {
    EXPECT_FALSE(parse_thin_ls("DEV MAPPED_BLOCKS EXCLUSIVE_BLOCKS SHARED_BLOCKS\n"));  // a header
    EXPECT_FALSE(parse_thin_ls("1 2 3\n"));
    EXPECT_FALSE(parse_thin_ls("1 2 3 4 5\n"));
    EXPECT_FALSE(parse_thin_ls("1 2MiB 3 4\n"));  // a human-readable column
    EXPECT_FALSE(parse_thin_ls("4294967296 1 1 0\n"));
}

TEST(DmThinUsage, FindsTheMetadataDeviceInAPoolTable) {
    auto d = thin_pool_metadata_devno("254:0 254:1 128 32768 1 skip_block_zeroing");
    ASSERT_TRUE(d) << d.error().what();
    EXPECT_EQ(d->first, 254u);
    EXPECT_EQ(d->second, 0u);
    EXPECT_FALSE(thin_pool_metadata_devno("/dev/vda /dev/vdb 128 0 0"));
    EXPECT_FALSE(thin_pool_metadata_devno(""));
}

// The real thin_ls (thin-provisioning-tools, as installed) on pool metadata written by the real
// thin_restore: two devices sharing two blocks, each with blocks of its own. The kernel is not
// needed to prove that berth's columns and parser match the tool's output.
TEST(DmThinUsage, ReadsWhatTheInstalledThinLsPrints) {
    if (find_program("thin_ls").empty() || find_program("thin_restore").empty())
        GTEST_SKIP() << "thin-provisioning-tools not installed (scripts/install-deps.sh)";
    berth::test::TempDir dir("berth-thinls");
    std::string xml = dir / "meta.xml", meta = dir / "meta.bin";
    ASSERT_TRUE(berth::write_file(
        xml,
        R"(<superblock uuid="" time="1" transaction="3" flags="0" version="2" data_block_size="128" nr_data_blocks="16384">
  <device dev_id="1" mapped_blocks="3" transaction="0" creation_time="0" snap_time="0">
    <range_mapping origin_begin="0" data_begin="0" length="3" time="0"/>
  </device>
  <device dev_id="2" mapped_blocks="4" transaction="0" creation_time="0" snap_time="1">
    <range_mapping origin_begin="0" data_begin="0" length="2" time="0"/>
    <single_mapping origin_block="2" data_block="10" time="1"/>
    <single_mapping origin_block="5" data_block="11" time="1"/>
  </device>
</superblock>
)"));
    ASSERT_TRUE(berth::write_file(meta, std::string(8 << 20, '\0')));
    ASSERT_TRUE(run_program({"thin_restore", "-i", xml, "-o", meta}));
    // berth's own arguments, minus --metadata-snap: an offline file has no metadata snapshot.
    std::vector<std::string> argv = {"thin_ls"};
    for (auto& a : thin_ls_arguments(meta))
        if (a != "--metadata-snap") argv.push_back(a);
    auto out = run_program(argv);
    ASSERT_TRUE(out) << out.error().what();
    auto u = parse_thin_ls(*out);
    ASSERT_TRUE(u) << u.error().what() << "\n" << *out;
    ASSERT_EQ(u->size(), 2u) << *out;
    EXPECT_EQ(u->at(1).mapped_blocks, 3u);
    EXPECT_EQ(u->at(1).exclusive_blocks, 1u);
    EXPECT_EQ(u->at(1).shared_blocks, 2u);
    EXPECT_EQ(u->at(2).mapped_blocks, 4u);
    EXPECT_EQ(u->at(2).exclusive_blocks, 2u);
    // And a failing tool's words reach the error.
    auto bad = run_program({"thin_ls", "--metadata-snap", "--no-headers", "-o", "DEV", meta});
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.error().what().find("metadata snap"), std::string::npos) << bad.error().what();
}

TEST(DmThinTables, PoolTableErrorsInsteadOfQueueingWhenFull) {
    EXPECT_EQ(thin_pool_params("/dev/vda", "/dev/vdb", 128, 10, true),
              "/dev/vda /dev/vdb 128 10 1 error_if_no_space");
    EXPECT_EQ(thin_pool_params("/dev/vda", "/dev/vdb", 128, 10, false),
              "/dev/vda /dev/vdb 128 10 2 error_if_no_space skip_block_zeroing");
    EXPECT_EQ(thin_params("/dev/mapper/p", 12), "/dev/mapper/p 12");
}

static Metadata sample() {
    Metadata m;
    m.pool = "berth-pool";
    m.data_block_sectors = 128;
    m.transaction_id = 4;
    m.next_device_id = 9;
    DeviceRecord layer;
    layer.id = 3;
    layer.kind = DeviceKind::Layer;
    layer.name = "sha256:aa";
    layer.parent = "sha256:bb";
    layer.sectors = 2048;
    layer.ready = true;
    m.devices[record_key(DeviceKind::Layer, layer.name)] = layer;
    return m;
}

TEST(DmThinMetadata, RoundTripsThroughItsFileFormat) {
    Metadata m = sample();
    DeviceRecord snap;
    snap.id = 8;
    snap.kind = DeviceKind::Snapshot;
    snap.name = "web";
    snap.parent = "sha256:aa";
    snap.sectors = 2048;
    m.pending = PendingOp{PendingOp::Op::Create, 5, record_key(DeviceKind::Snapshot, "web"), snap};
    auto back = parse_metadata(serialize_metadata(m));
    ASSERT_TRUE(back) << back.error().what();
    EXPECT_EQ(back->pool, "berth-pool");
    EXPECT_EQ(back->transaction_id, 4u);
    EXPECT_EQ(back->next_device_id, 9u);
    ASSERT_EQ(back->devices.count("layer:sha256:aa"), 1u);
    EXPECT_EQ(back->devices["layer:sha256:aa"].parent, "sha256:bb");
    EXPECT_TRUE(back->devices["layer:sha256:aa"].ready);
    ASSERT_TRUE(back->pending);
    EXPECT_EQ(back->pending->key, "snapshot:web");
    EXPECT_EQ(back->pending->device.id, 8u);
    EXPECT_EQ(back->pending->device.kind, DeviceKind::Snapshot);
}

TEST(DmThinMetadata, RejectsACorruptFileWithAClearError) {
    auto r = parse_metadata("{\"version\": 1, \"pool\": 3}");
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().what().find("corrupt dm-thin metadata"), std::string::npos);
    EXPECT_FALSE(parse_metadata("not json"));
}

TEST(DmThinReconcile, ReportsWhatItRemovesByKindUnderTheStoresNames) {
    Metadata m = sample();  // base + layer sha256:aa (parent sha256:bb)
    auto add = [&](DeviceKind kind, const std::string& name, bool ready) {
        DeviceRecord r;
        r.id = m.next_device_id++;
        r.kind = kind;
        r.name = name;
        r.ready = ready;
        m.devices[record_key(kind, name)] = r;
    };
    add(DeviceKind::Layer, "sha256:bb", true);
    add(DeviceKind::Staging, "sha256:cc", false);
    add(DeviceKind::Snapshot, "c-known", true);
    add(DeviceKind::Snapshot, "c-orphan", true);
    add(DeviceKind::Volume, "v-known", true);
    add(DeviceKind::Volume, "v-orphan", true);
    add(DeviceKind::Volume, "v-unfinished", false);
    auto plan = plan_reconcile(m, {"sha256:bb"}, {"c-known", "v-known", "v-unfinished"});
    // Store::gc copies these lists into its report: a layer is its chain id, not "layer:<chain>".
    EXPECT_EQ(plan.report.layers, (std::vector<std::string>{"sha256:aa"}));
    EXPECT_EQ(plan.report.snapshots, (std::vector<std::string>{"c-orphan"}));
    EXPECT_EQ(plan.report.volumes, (std::vector<std::string>{"v-orphan", "v-unfinished"}));
    EXPECT_EQ(plan.report.other, (std::vector<std::string>{"staging sha256:cc"}));
    std::vector<std::string> keys = plan.keys;
    std::sort(keys.begin(), keys.end());
    EXPECT_EQ(keys, (std::vector<std::string>{"layer:sha256:aa", "snapshot:c-orphan", "staging:sha256:cc",
                                              "volume:v-orphan", "volume:v-unfinished"}));
    auto nothing = plan_reconcile(m, {"sha256:aa", "sha256:bb"}, {"c-known", "c-orphan", "v-known"});
    EXPECT_EQ(nothing.keys,
              (std::vector<std::string>{"staging:sha256:cc", "volume:v-orphan", "volume:v-unfinished"}));
}

TEST(DmThinRecovery, ConsistentStateNeedsNothing) {
    EXPECT_EQ(plan_recovery(sample(), 4), Recovery::None);
    EXPECT_EQ(plan_recovery(sample(), 5), Recovery::Mismatch);
}

TEST(DmThinRecovery, RollsForwardWhatThePoolCommitted) {
    Metadata m = sample();
    m.pending = PendingOp{PendingOp::Op::Create, 5, "snapshot:web", {}};
    EXPECT_EQ(plan_recovery(m, 5), Recovery::RollForward);
    m.pending->op = PendingOp::Op::Delete;
    EXPECT_EQ(plan_recovery(m, 5), Recovery::RollForward);
}

TEST(DmThinRecovery, UndoesAnUncommittedCreateAndRedoesAnUncommittedDelete) {
    Metadata m = sample();
    m.pending = PendingOp{PendingOp::Op::Create, 5, "snapshot:web", {}};
    EXPECT_EQ(plan_recovery(m, 4), Recovery::UndoCreate);
    m.pending->op = PendingOp::Op::Delete;
    EXPECT_EQ(plan_recovery(m, 4), Recovery::RedoDelete);
    EXPECT_EQ(plan_recovery(m, 7), Recovery::Mismatch);
}

// ---- berthd.toml: the dm-thin keys (parse_store_options) and their mapping onto DmThinOptions ----

namespace {

using berth::store::parse_store_options;

// The error text of a config that must be refused; "" when it was accepted.
std::string refusal(const std::string& toml) {
    auto o = parse_store_options(toml, "berthd.toml");
    return o ? std::string() : o.error().message;
}

}  // namespace

TEST(DmThinConfig, ReadsEveryDmThinKeyFromTheStoreTable) {
    berth::test::TempDir dir("dmthin-config");
    std::string data = dir / "data.img", meta = dir / "meta.img";
    auto o = parse_store_options(
        "[store]\nbackend = \"dm-thin\"\nthin_pool = \"berth-test\"\n"
        "thin_data_device = \"" +
            data + "\"\nthin_metadata_device = \"" + meta +
            "\"\n"
            "thin_data_size = \"2G\"\nthin_metadata_size = \"64M\"\nthin_block_size = \"128K\"\n"
            "thin_fstype = \"xfs\"\nthin_volume_size = \"1G\"\n"
            "thin_mkfs_options = [\"-m\", \"crc=1\"]\nthin_mount_options = \"discard\"\n"
            "thin_min_free_data_percent = 12.5\nthin_min_free_metadata_percent = 5\n"
            "thin_discard = false\n",
        "berthd.toml");
    ASSERT_TRUE(o) << o.error().what();
    EXPECT_EQ(o->backend, "dm-thin");
    EXPECT_EQ(o->dm_thin.data_size, 2ull << 30);
    EXPECT_EQ(o->dm_thin.metadata_size, 64ull << 20);
    EXPECT_EQ(o->dm_thin.block_size, 128ull << 10);
    EXPECT_EQ(o->dm_thin.volume_size, 1ull << 30);
    EXPECT_EQ(o->dm_thin.mkfs_options, (std::vector<std::string>{"-m", "crc=1"}));
    EXPECT_DOUBLE_EQ(o->dm_thin.min_free_data_percent, 12.5);
    EXPECT_DOUBLE_EQ(o->dm_thin.min_free_metadata_percent, 5.0);
    EXPECT_FALSE(o->dm_thin.discard);

    // ... and every one of them reaches the backend; the missing files are created sparse.
    auto d = berth::store::dmthin_options_from_store(dir / "root", o->dm_thin);
    ASSERT_TRUE(d) << d.error().what();
    EXPECT_EQ(d->pool_name, "berth-test");
    EXPECT_EQ(d->data_device, data);
    EXPECT_EQ(d->metadata_device, meta);
    EXPECT_EQ(d->data_block_sectors, 256u);
    EXPECT_EQ(d->filesystem, "xfs");
    EXPECT_EQ(d->base_size, 1ull << 30);
    EXPECT_EQ(d->mkfs_options, o->dm_thin.mkfs_options);
    EXPECT_EQ(d->mount_options, "discard");
    EXPECT_DOUBLE_EQ(d->min_free_data_percent, 12.5);
    EXPECT_DOUBLE_EQ(d->min_free_metadata_percent, 5.0);
    EXPECT_FALSE(d->discard_on_delete);
    struct stat st {};
    ASSERT_EQ(::stat(data.c_str(), &st), 0);
    EXPECT_EQ(static_cast<uint64_t>(st.st_size), 2ull << 30);
    EXPECT_LT(static_cast<uint64_t>(st.st_blocks) * 512, 1ull << 20);  // sparse
    ASSERT_EQ(::stat(meta.c_str(), &st), 0);
    EXPECT_EQ(static_cast<uint64_t>(st.st_size), 64ull << 20);
}

TEST(DmThinConfig, DefaultsMatchTheBackendsDefaults) {
    auto o = parse_store_options("backend = \"dm-thin\"\nthin_pool = \"vg-berth-tpool\"\n", "berthd.toml");
    ASSERT_TRUE(o) << o.error().what();
    auto d = berth::store::dmthin_options_from_store("/var/lib/berth/dm-thin", o->dm_thin);
    ASSERT_TRUE(d) << d.error().what();
    berth::store::DmThinOptions defaults;
    EXPECT_EQ(d->pool_name, "vg-berth-tpool");
    EXPECT_TRUE(d->data_device.empty());  // an existing pool: berth never creates it
    EXPECT_EQ(d->data_block_sectors, defaults.data_block_sectors);
    EXPECT_EQ(d->filesystem, defaults.filesystem);
    EXPECT_EQ(d->base_size, defaults.base_size);
    EXPECT_DOUBLE_EQ(d->min_free_data_percent, defaults.min_free_data_percent);
    EXPECT_DOUBLE_EQ(d->min_free_metadata_percent, defaults.min_free_metadata_percent);
    EXPECT_EQ(d->discard_on_delete, defaults.discard_on_delete);
}

TEST(DmThinConfig, OwnPoolsGetAStableNamePerStoreRoot) {
    berth::test::TempDir dir("dmthin-config");
    auto o = parse_store_options("thin_data_device = \"" + dir / "d.img" + "\"\nthin_metadata_device = \"" +
                                     dir / "m.img" + "\"\nthin_data_size = \"1G\"\n",
                                 "berthd.toml");
    ASSERT_TRUE(o) << o.error().what();
    auto a = berth::store::dmthin_options_from_store("/srv/a/dm-thin", o->dm_thin);
    auto a2 = berth::store::dmthin_options_from_store("/srv/a/dm-thin", o->dm_thin);
    auto b = berth::store::dmthin_options_from_store("/srv/b/dm-thin", o->dm_thin);
    ASSERT_TRUE(a && a2 && b);
    EXPECT_EQ(a->pool_name, a2->pool_name);
    EXPECT_NE(a->pool_name, b->pool_name);
    EXPECT_EQ(a->pool_name.rfind("berth-", 0), 0u) << a->pool_name;
    struct stat st {};
    ASSERT_EQ(::stat((dir / "m.img").c_str(), &st), 0);
    EXPECT_EQ(static_cast<uint64_t>(st.st_size), 32ull << 20);  // data/256, at least 32 MiB
}

TEST(DmThinConfig, RefusesBadValuesWithFileLineAndColumn) {
    EXPECT_NE(refusal("[store]\nthin_fstype = \"btrfs\"\n").find("berthd.toml:2:"), std::string::npos);
    EXPECT_NE(refusal("thin_fstype = \"ntfs\"\n").find("ext4, xfs"), std::string::npos);
    EXPECT_NE(refusal("\nthin_block_size = \"100K\"\n").find("berthd.toml:2:"), std::string::npos);
    EXPECT_NE(refusal("thin_block_size = \"32K\"\n"), "");
    EXPECT_NE(refusal("thin_block_size = \"2G\"\n"), "");
    EXPECT_NE(refusal("thin_metadata_size = \"32G\"\n").find("16G"), std::string::npos);
    EXPECT_NE(refusal("thin_volume_size = \"1M\"\n").find("64M"), std::string::npos);
    EXPECT_NE(refusal("thin_volume_size = \"ten\"\n").find("invalid size 'ten'"), std::string::npos);
    EXPECT_NE(refusal("thin_min_free_data_percent = 100\n").find("berthd.toml:1:"), std::string::npos);
    EXPECT_NE(refusal("thin_min_free_metadata_percent = -1\n"), "");
    EXPECT_NE(refusal("thin_min_free_data_percent = \"10%\"\n"), "");
    EXPECT_NE(refusal("thin_discard = \"yes\"\n").find("true or false"), std::string::npos);
    EXPECT_NE(refusal("thin_mkfs_options = \"-m crc=1\"\n").find("array of strings"), std::string::npos);
    EXPECT_NE(refusal("thin_mkfs_options = [\"-m\", 1]\n").find("berthd.toml:1:"), std::string::npos);
    EXPECT_NE(refusal("thin_pool = \"vg/pool\"\n").find("device-mapper name"), std::string::npos);
    EXPECT_NE(refusal("thin_data_device = \"relative.img\"\n").find("absolute path"), std::string::npos);
}

TEST(DmThinConfig, RefusesIncompleteOrContradictoryPoolDevices) {
    EXPECT_NE(refusal("thin_data_device = \"/dev/vdb\"\n").find("must be set together"), std::string::npos);
    EXPECT_NE(refusal("thin_metadata_device = \"/dev/vda\"\n").find("must be set together"),
              std::string::npos);
    EXPECT_NE(
        refusal("thin_data_device = \"/nonexistent/d.img\"\nthin_metadata_device = \"/nonexistent/m.img\"\n")
            .find("thin_data_size"),
        std::string::npos);
    EXPECT_NE(refusal("pool = \"/tmp\"\nthin_data_device = \"/tmp\"\nthin_metadata_device = \"/tmp\"\n")
                  .find("exclude each other"),
              std::string::npos);
    // Neither an existing pool nor devices: the backend says what to set.
    auto o = parse_store_options("backend = \"dm-thin\"\n", "berthd.toml");
    ASSERT_TRUE(o);
    auto d = berth::store::dmthin_options_from_store("/var/lib/berth/dm-thin", o->dm_thin);
    ASSERT_FALSE(d);
    EXPECT_NE(d.error().message.find("thin_data_device"), std::string::npos) << d.error().message;
}

TEST(DmThinConfig, SuggestsTheKeyAMisspeltOneMeant) {
    std::string e = refusal("[store]\nthin_min_free_data_percnt = 5\n");
    EXPECT_NE(e.find("berthd.toml:2:1"), std::string::npos) << e;
    EXPECT_NE(e.find("did you mean 'thin_min_free_data_percent'"), std::string::npos) << e;
    e = refusal("thin_metadata_dev = \"/dev/vda\"\n");
    EXPECT_NE(e.find("did you mean 'thin_metadata_device'"), std::string::npos) << e;
    EXPECT_EQ(refusal("zzzzzzzzzzzz = 1\n").find("did you mean"), std::string::npos);
}
