// Hostile archives: every case is rejected with the offending entry named, nothing is written
// outside the store's staging area, and staging is empty afterwards. The corpus is generated
// here (tests/data/store/README says so) because most cases cannot be made with GNU tar.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <chrono>
#include <cstdio>

#include "store-fixture.h"
#include "store/digest.h"
#include "store/tree-util.h"

namespace berth::store::test {
namespace {

std::string read_all(int fd) {
    std::string out;
    char buf[65536];
    ::lseek(fd, 0, SEEK_SET);
    for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
    return out;
}

bool write_all_fd(int fd, std::string_view data) {
    while (!data.empty()) {
        ssize_t n = ::write(fd, data.data(), data.size());
        if (n <= 0) return false;
        data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
}

std::string gzip(const std::string& data, int level) {
    berth::test::TempDir t("berth-gz");
    EXPECT_TRUE(write_file(t / "in", data));
    return capture(fmt::format("gzip -{} -n -c {}", level, t / "in"));
}

// A gzip bomb: a tar of one file of `size` zeros (or, `trailing`, an empty tar followed by `size`
// zeros), gzip-compressed at `level`. Made of concatenated gzip members (RFC 1952; gzip -d and
// libarchive read them as one stream): 1 MiB of zeros is compressed once and repeated, so a 4 GiB
// bomb takes milliseconds to make (gzip itself needs ~30 s for 4 GiB here) and nothing is kept.
std::string make_gzip_bomb(uint64_t size, int level, bool trailing, const std::string& name = "zeros") {
    std::string header(512, '\0');
    if (!trailing) {
        auto put = [&](size_t off, const std::string& v) { header.replace(off, v.size(), v); };
        put(0, name);
        put(100, "0000644");
        put(108, "0000000");
        put(116, "0000000");
        put(124, fmt::format("{:011o}", size));
        put(136, fmt::format("{:011o}", 1700000000));
        put(148, "        ");
        header[156] = '0';
        put(257, std::string("ustar\0"
                             "00",
                             8));
        unsigned sum = 0;
        for (unsigned char c : header) sum += c;
        put(148, fmt::format("{:06o}", sum) + std::string("\0 ", 2));
    }
    std::string zeros = gzip(std::string(1 << 20, '\0'), level);
    std::string out = gzip(header + std::string(trailing ? 512 : 0, '\0'), level);
    out.reserve(out.size() + zeros.size() * (size >> 20) + 64);
    for (uint64_t i = 0; i < (size >> 20); ++i) out += zeros;
    out += gzip(std::string(1024, '\0'), level);  // end of archive
    return out;
}

// An OCI layout at `dir` with one image ("latest") of the given layer blobs. The diff_ids are
// the blobs' own digests: right for uncompressed layers, and a bomb is stopped before they are
// compared.
void write_oci_layout(const std::string& dir, const std::vector<std::string>& blobs) {
    ASSERT_TRUE(mkdir_p(dir + "/blobs/sha256"));
    auto put_blob = [&](const std::string& data) {
        std::string d = sha256_digest(data);
        EXPECT_TRUE(write_file(dir + "/blobs/sha256/" + std::string(digest_hex(d)), data));
        return d;
    };
    std::string diff_ids, layers;
    for (const auto& b : blobs) {
        std::string d = put_blob(b);
        diff_ids += (diff_ids.empty() ? "\"" : ",\"") + d + "\"";
        layers += fmt::format(
            "{}{{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar{}\",\"digest\":\"{}\",\"size\":{}}}",
            layers.empty() ? "" : ",", b.rfind("\x1f\x8b", 0) == 0 ? "+gzip" : "", d, b.size());
    }
    std::string config =
        R"({"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[)" + diff_ids + "]}}";
    std::string cd = put_blob(config);
    std::string manifest = fmt::format(
        R"({{"schemaVersion":2,"config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":{}}},"layers":[{}]}})",
        cd, config.size(), layers);
    std::string md = put_blob(manifest);
    ASSERT_TRUE(write_file(dir + "/oci-layout", R"({"imageLayoutVersion":"1.0.0"})"));
    ASSERT_TRUE(write_file(
        dir + "/index.json",
        fmt::format(
            R"({{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{}","size":{}}}]}})",
            md, manifest.size())));
}

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
        EXPECT_NE(r.error().message.find(entry), std::string::npos)
            << "error does not name '" << entry << "': " << r.error().what();
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
    auto fd = make_tar(
        {{"d/", 'd'}, {"d/up", 'l', "../../../../../../../../.." + outside_}, {"d/up/pwned", 'f', "x"}});
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

// Real images carry device nodes (debootstrap's /dev/console, older distribution images): the
// import keeps the image and leaves the nodes out, naming each in the layer's record; FIFOs stay;
// a hardlink to a skipped node goes with it.
TEST_P(HostileArchives, DeviceNodesAreSkippedAndRecordedAndFifosKept) {
    auto fd = make_tar({{"dev/", 'd'},
                        {"dev/console", 'c', "", 0600, 0, 0, makedev(5, 1)},
                        {"dev/mem", 'c', "", 0600, 0, 0, makedev(1, 1)},
                        {"dev/sda", 'b', "", 0600, 0, 0, makedev(8, 0)},
                        {"dev/mem2", 'h', "dev/mem"},
                        {"dev/initctl", 'p'},
                        {"etc/", 'd'},
                        {"etc/hostname", 'f', "box\n"}});
    auto r = store_->import_image(fd.get(), ImportFormat::RootfsTar, "devices");
    ASSERT_TRUE(r) << r.error().what();
    ASSERT_EQ(r->layers.size(), 1u);
    EXPECT_EQ(r->layers[0].skipped_device_nodes,
              (std::vector<std::string>{"dev/console (char 5:1)", "dev/mem (char 1:1)", "dev/sda (block 8:0)",
                                        "dev/mem2 (hardlink to 'dev/mem')"}));
    // The record survives a restart (it is in the image's metadata).
    store_.reset();
    auto s = Store::open(root_->options());
    ASSERT_TRUE(s) << s.error().what();
    store_ = std::move(*s);
    auto again = store_->get_image("devices");
    ASSERT_TRUE(again) << again.error().what();
    EXPECT_EQ(again->layers[0].skipped_device_nodes.size(), 4u);

    auto p = store_->prepare_container("devices", "devices", true);
    ASSERT_TRUE(p) << p.error().what();
    std::string mnt = root_->scratch("mnt-devices");
    ASSERT_TRUE(mkdir_p(mnt));
    {
        MountedSpec m(p->rootfs, mnt);
        ASSERT_TRUE(m.ok()) << m.error();
        struct stat st {};
        for (const char* gone : {"dev/console", "dev/mem", "dev/sda", "dev/mem2"})
            EXPECT_NE(::lstat((mnt + "/" + gone).c_str(), &st), 0) << gone << " was created";
        ASSERT_EQ(::lstat((mnt + "/dev/initctl").c_str(), &st), 0);
        EXPECT_TRUE(S_ISFIFO(st.st_mode));
        EXPECT_EQ(slurp(mnt + "/etc/hostname"), "box\n");
    }
    ASSERT_TRUE(store_->release_container("devices"));
}

// A char 0:0 is overlayfs's whiteout format, not a device: it hides the lower layer's file on
// every backend (it was refused as a device node before).
TEST_P(HostileArchives, CharZeroZeroIsAWhiteoutNotADevice) {
    auto lower = make_tar({{"etc/", 'd'}, {"etc/motd", 'f', "motd\n"}, {"etc/keep", 'f', "keep\n"}});
    auto upper = make_tar({{"etc/", 'd'}, {"etc/motd", 'c', "", 0600, 0, 0, makedev(0, 0)}});
    std::string dir = root_->scratch("oci-wh00");
    ASSERT_NO_FATAL_FAILURE(write_oci_layout(dir, {read_all(lower.get()), read_all(upper.get())}));
    UniqueFd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    auto r = store_->import_image(dfd.get(), ImportFormat::OciLayout, "wh00");
    ASSERT_TRUE(r) << r.error().what();
    EXPECT_TRUE(r->layers[1].skipped_device_nodes.empty());
    auto p = store_->prepare_container("wh00", "wh00", true);
    ASSERT_TRUE(p) << p.error().what();
    std::string mnt = root_->scratch("mnt-wh00");
    ASSERT_TRUE(mkdir_p(mnt));
    {
        MountedSpec m(p->rootfs, mnt);
        ASSERT_TRUE(m.ok()) << m.error();
        struct stat st {};
        EXPECT_NE(::lstat((mnt + "/etc/motd").c_str(), &st), 0) << "the whiteout did not hide etc/motd";
        EXPECT_EQ(slurp(mnt + "/etc/keep"), "keep\n");
    }
    ASSERT_TRUE(store_->release_container("wh00"));
}

// ---- import limits: decompression and entry-count bombs ----

// Reopens the store with berthd.toml's import limits set as given.
#define REOPEN_WITH(...)                    \
    do {                                    \
        store_.reset();                     \
        StoreOptions o = root_->options();  \
        __VA_ARGS__;                        \
        auto s = Store::open(o);            \
        ASSERT_TRUE(s) << s.error().what(); \
        store_ = std::move(*s);             \
    } while (0)

TEST_P(HostileArchives, GzipBombStopsAtTheConfiguredSizeLimit) {
    REOPEN_WITH(o.max_layer_size = 256ull << 20, o.max_layer_ratio = 0);
    // 4 GiB of zeros in one file, and (second case) a small tar followed by 4 GiB of zeros in the
    // same gzip stream (read after the tar's end, for the blob digest): both stop at 256 MiB.
    for (bool trailing : {false, true}) {
        SCOPED_TRACE(trailing ? "zeros after the end of the tar" : "one 4 GiB file");
        std::string bomb = make_gzip_bomb(4ull << 30, 9, trailing);
        std::string dir = root_->scratch(trailing ? "oci-bomb-trailing" : "oci-bomb");
        ASSERT_NO_FATAL_FAILURE(write_oci_layout(dir, {bomb}));
        std::string hex(digest_hex(sha256_digest(bomb)));
        UniqueFd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        auto t0 = std::chrono::steady_clock::now();
        auto r = store_->import_image(dfd.get(), ImportFormat::OciLayout, "bomb");
        double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        ASSERT_FALSE(r) << "a 4 GiB gzip bomb was imported";
        EXPECT_EQ(r.error().code, EFBIG) << r.error().what();
        EXPECT_NE(r.error().message.find("max_layer_size"), std::string::npos) << r.error().what();
        EXPECT_NE(r.error().message.find(hex), std::string::npos)
            << "error does not name the layer: " << r.error().what();
        std::fprintf(stderr, "size limit stopped the bomb in %.2f s: %s\n", secs, r.error().what().c_str());
        expect_clean();
    }
}

TEST_P(HostileArchives, GzipBombIsStoppedByTheDefaultRatioLimit) {
    // The default settings, and the least compressed (gzip -1, ~229:1) form of the bomb: the
    // store is 1 GiB (tmpfs) or 768 MiB (btrfs), so only an early stop keeps it from filling.
    std::string bomb = make_gzip_bomb(4ull << 30, 1, false);
    for (auto format : {ImportFormat::RootfsTar, ImportFormat::Auto}) {
        UniqueFd fd(::memfd_create("bomb", MFD_CLOEXEC));
        ASSERT_TRUE(write_all_fd(fd.get(), bomb));
        ::lseek(fd.get(), 0, SEEK_SET);
        auto t0 = std::chrono::steady_clock::now();
        auto r = store_->import_image(fd.get(), format, "bomb");
        double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        ASSERT_FALSE(r) << "a 4 GiB gzip bomb was imported";
        EXPECT_EQ(r.error().code, EFBIG) << r.error().what();
        EXPECT_NE(r.error().message.find("max_layer_ratio"), std::string::npos) << r.error().what();
        EXPECT_NE(r.error().message.find("rootfs tarball"), std::string::npos) << r.error().what();
        EXPECT_LT(secs, 20.0) << "the ratio check did not stop the bomb early";
        std::fprintf(stderr, "default ratio limit stopped the bomb in %.2f s: %s\n", secs,
                     r.error().what().c_str());
        expect_clean();
    }
}

// The same bomb one level up: an image archive (oci-archive) that is itself gzip-compressed, its
// blob member 4 GiB of zeros, stopped while the member is staged.
TEST_P(HostileArchives, CompressedImageArchiveBombIsStoppedByTheDefaultRatioLimit) {
    std::string member = "blobs/sha256/" + std::string(64, '0');
    std::string bomb = make_gzip_bomb(4ull << 30, 1, false, member);
    UniqueFd fd(::memfd_create("bomb", MFD_CLOEXEC));
    ASSERT_TRUE(write_all_fd(fd.get(), bomb));
    ::lseek(fd.get(), 0, SEEK_SET);
    auto r = store_->import_image(fd.get(), ImportFormat::Auto, "bomb");
    ASSERT_FALSE(r) << "a 4 GiB archive bomb was imported";
    EXPECT_EQ(r.error().code, EFBIG) << r.error().what();
    EXPECT_NE(r.error().message.find("max_layer_ratio"), std::string::npos) << r.error().what();
    EXPECT_NE(r.error().message.find(member), std::string::npos) << r.error().what();
    expect_clean();
}

TEST_P(HostileArchives, EntryCountBombStopsAtTheConfiguredLimit) {
    REOPEN_WITH(o.max_layer_entries = 1000);
    std::vector<TarEntry> entries{{"d/", 'd'}};
    for (int i = 0; i < 5000; ++i) entries.push_back({"d/" + std::to_string(i), 'f', ""});
    auto fd = make_tar(entries, "gzip");
    auto r = store_->import_image(fd.get(), ImportFormat::RootfsTar, "many");
    ASSERT_FALSE(r) << "a layer over max_layer_entries was imported";
    EXPECT_EQ(r.error().code, E2BIG) << r.error().what();
    EXPECT_NE(r.error().message.find("max_layer_entries (1000)"), std::string::npos) << r.error().what();
    EXPECT_NE(r.error().message.find("rootfs tarball"), std::string::npos) << r.error().what();
    expect_clean();
    // Within the limit the same shape imports.
    entries.resize(900);
    auto ok = make_tar(entries, "gzip");
    auto r2 = store_->import_image(ok.get(), ImportFormat::RootfsTar, "fewer");
    EXPECT_TRUE(r2) << r2.error().what();
}

TEST_P(HostileArchives, OversizeHeaderIsRejected) {
    std::string longname(5000, 'n');
    auto fd = make_tar({{"d/" + longname, 'f', "x"}});
    expect_rejected(fd.get(), ImportFormat::RootfsTar, "d/nnnn");
}

TEST_P(HostileArchives, TruncatedStreamIsRejected) {
    std::vector<TarEntry> entries;
    for (int i = 0; i < 64; ++i)
        entries.push_back({"f" + std::to_string(i), 'f', std::string(8192, static_cast<char>('a' + i % 26))});
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
    ASSERT_EQ(run("tar -C " + root_->scratch("") + " -czf " + copy + "/blobs/sha256/" + blob + " tampered"),
              0);
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
    std::string manifest =
        R"({"schemaVersion":2,"config":{"digest":")" + config_digest + R"("},"layers":[]})";
    std::string manifest_digest = sha256_digest(manifest);
    std::string typed_manifest = R"({"schemaVersion":2,"config":{"digest":")" + config_digest +
                                 R"("},"layers":[{"digest":5,"mediaType":[]}]})";
    std::string typed_digest = sha256_digest(typed_manifest);
    const std::vector<std::string> indexes = {
        R"({"manifests":[1,{"digest":")" + manifest_digest + R"("}]})",  // an entry that is a number
        R"({"manifests":[{"mediaType":5,"digest":")" + manifest_digest + R"("}]})",  // mediaType a number
        R"({"manifests":[{"digest":")" + typed_digest + R"("}]})",  // layer fields of the wrong type
        R"({"manifests":[{"digest":7}]})",
    };
    for (size_t i = 0; i < indexes.size(); ++i) {
        SCOPED_TRACE(indexes[i]);
        std::string dir = root_->scratch("oci-typed-" + std::to_string(i));
        ASSERT_TRUE(mkdir_p(dir + "/blobs/sha256"));
        ASSERT_TRUE(write_file(dir + "/oci-layout", R"({"imageLayoutVersion":"1.0.0"})"));
        ASSERT_TRUE(write_file(dir + "/index.json", indexes[i]));
        for (auto* text : {&config, &manifest, &typed_manifest})
            ASSERT_TRUE(
                write_file(dir + "/blobs/sha256/" + std::string(digest_hex(sha256_digest(*text))), *text));
        UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        auto r = store_->import_image(fd.get(), ImportFormat::OciLayout, "typed");
        ASSERT_FALSE(r) << "a layout with mistyped metadata was accepted";
        EXPECT_EQ(r.error().code, EBADMSG) << r.error().what();
        expect_clean();
    }
}

TEST_P(HostileArchives, ArchiveMembersEscapingAreRejected) {
    auto fd =
        make_tar({{"oci-layout", 'f', "{\"imageLayoutVersion\":\"1.0.0\"}"}, {"../index.json", 'f', "{}"}});
    expect_rejected(fd.get(), ImportFormat::OciLayout, "../index.json");
}

INSTANTIATE_TEST_SUITE_P(Backends, HostileArchives, ::testing::Values("overlay", "btrfs"));

}  // namespace
}  // namespace berth::store::test
