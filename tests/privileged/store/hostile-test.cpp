// Hostile archives: every case is rejected with the offending entry named, nothing is written
// outside the store's staging area, and staging is empty afterwards. The corpus is generated
// here (tests/data/store/README says so) because most cases cannot be made with GNU tar.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "store-fixture.h"
#include "store/digest.h"
#include "store/tree-util.h"

namespace berth::store::test {
namespace {

class HostileArchives : public ::testing::TestWithParam<std::string> {
protected:
    void SetUp() override {
        BERTH_REQUIRE_ROOT();
        root_ = std::make_unique<StoreRoot>(GetParam());
        ASSERT_TRUE(root_->ok());
        auto s = Store::open(root_->options());
        ASSERT_TRUE(s) << s.error().what();
        store_ = std::move(*s);
        outside_ = "/tmp/berth-hostile-" + std::to_string(::getpid());
        (void)remove_tree(outside_);
        ASSERT_TRUE(mkdir_p(outside_));
    }
    void TearDown() override {
        store_.reset();
        root_.reset();
        (void)remove_tree(outside_);
    }

    // Imports `fd` and expects a failure whose message names `entry`; checks nothing leaked.
    void expect_rejected(int fd, ImportFormat format, const std::string& entry) {
        auto r = store_->import_image(fd, format, "hostile");
        ASSERT_FALSE(r) << "a hostile archive was accepted";
        EXPECT_NE(r.error().message.find(entry), std::string::npos) << "error does not name '" << entry << "': " << r.error().what();
        expect_clean();
    }
    void expect_clean() {
        EXPECT_TRUE(store_->list_images().empty());
        EXPECT_TRUE(list_dir(root_->root() + "/staging").empty()) << "store staging left behind";
        std::string b = root_->root() + "/" + store_->backend_name();
        EXPECT_TRUE(list_dir(b + "/staging").empty()) << "backend staging left behind";
        EXPECT_TRUE(list_dir(b + "/layers").empty()) << "a layer of a rejected image was kept";
        EXPECT_TRUE(list_dir(outside_).empty()) << "something was written outside the store";
    }

    std::unique_ptr<StoreRoot> root_;
    std::unique_ptr<Store> store_;
    std::string outside_;
};

TEST_P(HostileArchives, AbsolutePathIsRejected) {
    auto fd = make_tar({{"ok", 'f', "1"}, {outside_ + "/abs", 'f', "pwned"}});
    expect_rejected(fd.get(), ImportFormat::RootfsTar, outside_ + "/abs");
}

TEST_P(HostileArchives, DotDotIsRejected) {
    std::string p = "../../../../../../../.." + outside_ + "/dotdot";
    auto fd = make_tar({{"a/", 'd'}, {"a/" + p, 'f', "pwned"}});
    expect_rejected(fd.get(), ImportFormat::RootfsTar, "a/" + p);
}

TEST_P(HostileArchives, PathThroughAnAbsoluteSymlinkIsRejected) {
    auto fd = make_tar({{"evil", 'l', outside_}, {"evil/pwned", 'f', "pwned"}});
    expect_rejected(fd.get(), ImportFormat::RootfsTar, "evil/pwned");
}

TEST_P(HostileArchives, PathThroughARelativeSymlinkIsRejected) {
    auto fd = make_tar({{"d/", 'd'}, {"d/up", 'l', "../../../../../../../../.." + outside_}, {"d/up/pwned", 'f', "x"}});
    expect_rejected(fd.get(), ImportFormat::RootfsTar, "d/up/pwned");
}

TEST_P(HostileArchives, SymlinkReplacedByFileIsNotFollowed) {
    // A later entry with the symlink's own name replaces the link, never writes through it.
    ASSERT_TRUE(write_file(outside_ + "/target", "original"));
    auto fd = make_tar({{"link", 'l', outside_ + "/target"}, {"link", 'f', "replaced"}});
    auto r = store_->import_image(fd.get(), ImportFormat::RootfsTar, "replaced");
    ASSERT_TRUE(r) << r.error().what();
    EXPECT_EQ(slurp(outside_ + "/target"), "original");
    ASSERT_TRUE(store_->remove_image("replaced"));
    ASSERT_TRUE(store_->gc());
    ::unlink((outside_ + "/target").c_str());
    expect_clean();
}

TEST_P(HostileArchives, HardlinkOutsideTheLayerIsRejected) {
    auto abs = make_tar({{"passwd", 'h', "/etc/passwd"}});
    expect_rejected(abs.get(), ImportFormat::RootfsTar, "passwd");
    auto up = make_tar({{"passwd2", 'h', "../../../../../../etc/passwd"}});
    expect_rejected(up.get(), ImportFormat::RootfsTar, "passwd2");
    auto via = make_tar({{"etcl", 'l', "/etc"}, {"passwd3", 'h', "etcl/passwd"}});
    expect_rejected(via.get(), ImportFormat::RootfsTar, "passwd3");
}

TEST_P(HostileArchives, DeviceNodesAreRejected) {
    auto fd = make_tar({{"dev/", 'd'}, {"dev/mem", 'c', "", 0600, 0, 0, makedev(1, 1)}});
    expect_rejected(fd.get(), ImportFormat::RootfsTar, "dev/mem");
}

TEST_P(HostileArchives, OversizeHeaderIsRejected) {
    std::string longname(5000, 'n');
    auto fd = make_tar({{"d/" + longname, 'f', "x"}});
    expect_rejected(fd.get(), ImportFormat::RootfsTar, "d/nnnn");
}

TEST_P(HostileArchives, TruncatedStreamIsRejected) {
    std::vector<TarEntry> entries;
    for (int i = 0; i < 64; ++i) entries.push_back({"f" + std::to_string(i), 'f', std::string(8192, static_cast<char>('a' + i % 26))});
    for (const char* filter : {"gzip", "zstd", static_cast<const char*>(nullptr)}) {
        SCOPED_TRACE(filter ? filter : "none");
        auto full = make_tar(entries, filter);
        struct stat st {};
        ASSERT_EQ(::fstat(full.get(), &st), 0);
        ASSERT_EQ(::ftruncate(full.get(), st.st_size / 2), 0);
        auto r = store_->import_image(full.get(), ImportFormat::RootfsTar, "truncated");
        ASSERT_FALSE(r);
        EXPECT_NE(r.error().message.find("rootfs tarball"), std::string::npos) << r.error().what();
        expect_clean();
    }
}

TEST_P(HostileArchives, DigestMismatchInAnOciLayoutIsRejected) {
    std::string images = test_images();
    ASSERT_FALSE(images.empty());
    std::string copy = root_->scratch("oci-bad");
    ASSERT_EQ(run("cp -a " + images + "/oci " + copy), 0);
    // Replace the busybox layer blob's content (keeping its name): a gzip of something else.
    std::string manifest_list = capture("cd " + copy + " && ls -S blobs/sha256 | head -1");
    std::string blob = std::string(trim(manifest_list));
    ASSERT_FALSE(blob.empty());
    ASSERT_TRUE(write_file(root_->scratch("tampered"), "tampered"));
    ASSERT_EQ(run("tar -C " + root_->scratch("") + " -czf " + copy + "/blobs/sha256/" + blob + " tampered"), 0);
    UniqueFd dir(::open(copy.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    auto r = store_->import_image(dir.get(), ImportFormat::Auto, "busybox");
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find(blob), std::string::npos) << r.error().what();
    EXPECT_NE(r.error().message.find("mismatch"), std::string::npos) << r.error().what();
    expect_clean();
    // The same layout as a tar: caught while the member is read.
    std::string tar = root_->scratch("oci-bad.tar");
    ASSERT_EQ(run("tar -C " + copy + " -cf " + tar + " ."), 0);
    UniqueFd t(::open(tar.c_str(), O_RDONLY | O_CLOEXEC));
    expect_rejected(t.get(), ImportFormat::Auto, "blobs/sha256/" + blob);
}

// Regressions from tests/fuzz/fuzz-oci-json: JSON values of the wrong type in an OCI layout's
// index, manifest or config threw out of the store (a dead berthd) instead of failing the import.
TEST_P(HostileArchives, OciMetadataOfTheWrongTypeIsRejected) {
    std::string config = R"({"rootfs":{"type":"layers","diff_ids":[]}})";
    std::string config_digest = sha256_digest(config);
    std::string manifest = R"({"schemaVersion":2,"config":{"digest":")" + config_digest + R"("},"layers":[]})";
    std::string manifest_digest = sha256_digest(manifest);
    std::string typed_manifest = R"({"schemaVersion":2,"config":{"digest":")" + config_digest +
                                 R"("},"layers":[{"digest":5,"mediaType":[]}]})";
    std::string typed_digest = sha256_digest(typed_manifest);
    const std::vector<std::string> indexes = {
        R"({"manifests":[1,{"digest":")" + manifest_digest + R"("}]})",         // an entry that is a number
        R"({"manifests":[{"mediaType":5,"digest":")" + manifest_digest + R"("}]})",  // mediaType a number
        R"({"manifests":[{"digest":")" + typed_digest + R"("}]})",             // layer fields of the wrong type
        R"({"manifests":[{"digest":7}]})",
    };
    for (size_t i = 0; i < indexes.size(); ++i) {
        SCOPED_TRACE(indexes[i]);
        std::string dir = root_->scratch("oci-typed-" + std::to_string(i));
        ASSERT_TRUE(mkdir_p(dir + "/blobs/sha256"));
        ASSERT_TRUE(write_file(dir + "/oci-layout", R"({"imageLayoutVersion":"1.0.0"})"));
        ASSERT_TRUE(write_file(dir + "/index.json", indexes[i]));
        for (auto* text : {&config, &manifest, &typed_manifest})
            ASSERT_TRUE(write_file(dir + "/blobs/sha256/" + std::string(digest_hex(sha256_digest(*text))), *text));
        UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        auto r = store_->import_image(fd.get(), ImportFormat::OciLayout, "typed");
        ASSERT_FALSE(r) << "a layout with mistyped metadata was accepted";
        EXPECT_EQ(r.error().code, EBADMSG) << r.error().what();
        expect_clean();
    }
}

TEST_P(HostileArchives, ArchiveMembersEscapingAreRejected) {
    auto fd = make_tar({{"oci-layout", 'f', "{\"imageLayoutVersion\":\"1.0.0\"}"}, {"../index.json", 'f', "{}"}});
    expect_rejected(fd.get(), ImportFormat::OciLayout, "../index.json");
}

INSTANTIATE_TEST_SUITE_P(Backends, HostileArchives, ::testing::Values("overlay", "btrfs"));

}  // namespace
}  // namespace berth::store::test
