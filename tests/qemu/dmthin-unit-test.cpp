// Pure parts of the dm-thin backend: pool status parsing, table lines, the metadata file and the
// crash-recovery decision. No kernel needed.
#include <gtest/gtest.h>

#include "store/dmthin/dm-ops.h"
#include "store/dmthin/dmthin-metadata.h"

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
    EXPECT_TRUE(parse_thin_pool_status("3 1/2 16384/16384 - out_of_data_space discard_passdown error_if_no_space -")->out_of_data_space);
    EXPECT_TRUE(parse_thin_pool_status("Fail")->failed);
    EXPECT_TRUE(parse_thin_pool_status("3 1/2 3/4 - rw discard_passdown error_if_no_space needs_check")->read_only);
    EXPECT_TRUE(parse_thin_pool_status("3 1/2 3/4 - ro")->read_only);
}

TEST(DmThinStatus, RejectsGarbage) {
    EXPECT_FALSE(parse_thin_pool_status(""));
    EXPECT_FALSE(parse_thin_pool_status("x 1/2 3/4"));
    EXPECT_FALSE(parse_thin_pool_status("1 12 3/4"));
}

TEST(DmThinTables, PoolTableErrorsInsteadOfQueueingWhenFull) {
    EXPECT_EQ(thin_pool_params("/dev/vda", "/dev/vdb", 128, 10, true), "/dev/vda /dev/vdb 128 10 1 error_if_no_space");
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
