// tar-split end to end as root, on overlay (tmpfs) and btrfs (loop device): an uncompressed layer
// is stored as a split, not a copy, and still exports byte for byte (cmp against the tar that was
// imported), re-imports to the same image, survives gc and fsck; layers whose files a later entry
// replaces keep the full blob; a damaged or missing layer file fails export and fsck naming it.
// The tars are made by GNU tar (pax and gnu formats) from a tree with long names, hardlinks,
// symlinks, empty and 512-multiple files and whiteouts.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include "store-fixture.h"
#include "store/digest.h"
#include "store/fsck.h"
#include "store/tree-util.h"

namespace berth::store::test {
namespace {

std::string hex(const std::string& digest) { return digest.substr(7); }

class TarSplitTest : public ::testing::TestWithParam<std::string> {
protected:
    void SetUp() override {
        BERTH_REQUIRE_ROOT();
        root_ = std::make_unique<StoreRoot>(GetParam());
        ASSERT_TRUE(root_->ok()) << "could not make a " << GetParam() << " store root";
        auto s = Store::open(root_->options());
        ASSERT_TRUE(s) << s.error().what();
        store_ = std::move(*s);
        tree_ = root_->scratch("tree");
        // A tree with what makes tar headers interesting.
        std::string long_dir = tree_ + "/" + std::string(120, 'd');
        std::string cmd =
            "set -e; mkdir -p " + tree_ + "/etc " + tree_ + "/opq " + long_dir + "; cd " + tree_ +
            "; echo hello > etc/hello; : > etc/empty; head -c 512 /dev/urandom > etc/five12;"
            " head -c 4096 /dev/urandom > etc/four-k; head -c 3145728 /dev/urandom > big;"
            " head -c 70000 /dev/urandom > " +
            long_dir + "/" + std::string(150, 'f') +
            ";"
            " ln etc/hello etc/hello-link; ln -s hello etc/hello-sym; : > etc/.wh.gone; : > opq/.wh..wh..opq;"
            " echo kept > opq/kept; chmod 4755 big; touch -d @1700000000.123456789 etc/hello";
        ASSERT_EQ(run(cmd), 0);
    }
    void TearDown() override {
        store_.reset();
        root_.reset();
    }
    // GNU tar of the tree in `format`, at a scratch path.
    std::string make_tar(const std::string& format, const std::string& extra = "") {
        std::string out = root_->scratch("layer-" + format + ".tar");
        EXPECT_EQ(run("tar -C " + tree_ + " --format=" + format + " " + extra + " -cf " + out + " ."), 0);
        return out;
    }
    std::string split_of(const ImageInfo& img) {
        return root_->root() + "/splits/" + hex(img.layers.at(0).chain_id);
    }
    std::string blob_of(const ImageInfo& img) {
        return root_->root() + "/blobs/sha256/" + hex(img.layers.at(0).digest);
    }
    // Exports `ref` and returns the path of the exported layer blob (extracted from the archive).
    std::string export_layer(const std::string& ref, const ImageInfo& img, const std::string& tag) {
        std::string out = root_->scratch("export-" + tag + ".tar");
        UniqueFd fd(::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
        auto r = store_->export_image(ref, fd.get());
        EXPECT_TRUE(r) << r.error().what();
        std::string blob = root_->scratch("exported-blob-" + tag);
        EXPECT_EQ(run("tar -xOf " + out + " blobs/sha256/" + hex(img.layers.at(0).digest) + " > " + blob), 0);
        return blob;
    }
    uint64_t size_of(const std::string& p) {
        struct stat st {};
        return ::stat(p.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
    }

    std::unique_ptr<StoreRoot> root_;
    std::unique_ptr<Store> store_;
    std::string tree_;
};

TEST_P(TarSplitTest, AnUncompressedLayerIsKeptAsASplitAndExportsByteForByte) {
    for (std::string format : {"pax", "gnu"}) {
        SCOPED_TRACE(format);
        std::string tar = make_tar(format);
        auto img = store_->import_image_path(tar, ImportFormat::RootfsTar, "split-" + format);
        ASSERT_TRUE(img) << img.error().what();
        EXPECT_EQ(img->layers.at(0).digest, sha256_digest(*read_file(tar)));
        EXPECT_TRUE(path_exists(split_of(*img))) << "the layer is kept as a tar-split";
        EXPECT_FALSE(path_exists(blob_of(*img))) << "and not as a second copy of the tar";
        EXPECT_LT(size_of(split_of(*img)) * 10, size_of(tar)) << "the split holds headers, not contents";
        std::string blob = export_layer("split-" + format, *img, format);
        EXPECT_EQ(run("cmp " + tar + " " + blob), 0)
            << "the exported layer blob is the imported tar, byte for byte";
        auto report = fsck(*store_, false);
        ASSERT_TRUE(report);
        EXPECT_EQ(report->damage(), 0u);
        EXPECT_GE(report->bytes_hashed, size_of(tar)) << "fsck rebuilt and hashed the split layer";

        // Through the OCI importer (a staged archive member, not a rootfs): remove, gc, re-import.
        std::string exported = root_->scratch("export-" + format + ".tar");
        ASSERT_TRUE(store_->remove_image(img->id));
        auto gc = store_->gc();
        ASSERT_TRUE(gc) << gc.error().what();
        EXPECT_FALSE(path_exists(split_of(*img))) << "the split goes with its layer";
        auto again = store_->import_image_path(exported, ImportFormat::Auto, "again-" + format);
        ASSERT_TRUE(again) << again.error().what();
        EXPECT_EQ(again->id, img->id) << "the export re-imports as the same image";
        EXPECT_TRUE(path_exists(split_of(*again)));
        EXPECT_FALSE(path_exists(blob_of(*again)));
        std::string blob2 = export_layer(again->id, *again, format + "-2");
        EXPECT_EQ(run("cmp " + tar + " " + blob2), 0);
        EXPECT_EQ(run("skopeo inspect --raw oci-archive:" + root_->scratch("export-" + format + "-2.tar") +
                      " >/dev/null"),
                  0)
            << "skopeo reads the export";
        ASSERT_TRUE(store_->remove_image(again->id));
        ASSERT_TRUE(store_->gc());
    }
}

TEST_P(TarSplitTest, ASecondImageOfTheSameLayerReusesTheSplit) {
    std::string tar = make_tar("pax");
    auto a = store_->import_image_path(tar, ImportFormat::RootfsTar, "a");
    ASSERT_TRUE(a) << a.error().what();
    auto b = store_->import_image_path(tar, ImportFormat::Auto, "b");  // detected as a rootfs
    ASSERT_TRUE(b) << b.error().what();
    EXPECT_EQ(a->id, b->id);
    EXPECT_EQ(list_dir(root_->root() + "/splits").size(), 1u);
    auto df = store_->df();
    ASSERT_TRUE(df);
    EXPECT_GE(df->blobs_size, size_of(split_of(*a))) << "df counts the split";
    EXPECT_LT(df->blobs_size, size_of(tar)) << "and no full copy";
}

TEST_P(TarSplitTest, LayersTheTreeCannotReproduceKeepTheFullBlob) {
    // The same path twice: the first content is gone from the tree. A file replaced by a
    // directory, and a directory (with a referenced file) replaced by a file: same.
    std::vector<std::pair<std::string, std::string>> cases = {
        {"twice", "cd " + tree_ +
                      " && tar --format=pax -cf {} . && echo changed > etc/hello && tar --format=pax -rf {} "
                      "./etc/hello"},
        {"file-then-dir",
         "d=$(mktemp -d) && cd $d && echo x > a && tar -cf {} a && rm a && mkdir a && echo y > a/b && tar "
         "--no-recursion -rf {} a a/b; rm -rf $d"},
        {"dir-then-file",
         "d=$(mktemp -d) && cd $d && mkdir a && echo x > a/b && tar --no-recursion -cf {} a a/b && rm -r a "
         "&& echo z > a && tar -rf {} a; rm -rf $d"},
    };
    for (const auto& [name, recipe] : cases) {
        SCOPED_TRACE(name);
        std::string tar = root_->scratch("fallback-" + name + ".tar");
        std::string cmd = recipe;
        for (size_t p; (p = cmd.find("{}")) != std::string::npos;) cmd.replace(p, 2, tar);
        ASSERT_EQ(run(cmd), 0);
        auto img = store_->import_image_path(tar, ImportFormat::RootfsTar, "fb-" + name);
        ASSERT_TRUE(img) << img.error().what();
        EXPECT_FALSE(path_exists(split_of(*img)));
        EXPECT_TRUE(path_exists(blob_of(*img))) << "the full blob is kept";
        EXPECT_EQ(run("cmp " + tar + " " + blob_of(*img)), 0);
        std::string blob = export_layer("fb-" + name, *img, name);
        EXPECT_EQ(run("cmp " + tar + " " + blob), 0);
    }
}

TEST_P(TarSplitTest, SparseFilesAndAStreamedTarStillRoundTrip) {
    // A GNU sparse entry's stored bytes stay in the split verbatim (no reference).
    ASSERT_EQ(
        run("cd " + tree_ +
            " && truncate -s 8M sparse && printf data | dd of=sparse bs=1 seek=4M conv=notrunc status=none"),
        0);
    std::string tar = make_tar("gnu", "--sparse");
    auto img = store_->import_image_path(tar, ImportFormat::RootfsTar, "sparse");
    ASSERT_TRUE(img) << img.error().what();
    EXPECT_TRUE(path_exists(split_of(*img)) || path_exists(blob_of(*img)));
    EXPECT_EQ(run("cmp " + tar + " " + export_layer("sparse", *img, "sparse")), 0);
    // A pipe cannot be read twice: the layer is teed into a full blob as before.
    ASSERT_TRUE(store_->remove_image("sparse"));
    ASSERT_TRUE(store_->gc());
    FILE* p = ::popen(("cat " + tar).c_str(), "r");
    ASSERT_NE(p, nullptr);
    auto piped = store_->import_image(fileno(p), ImportFormat::RootfsTar, "piped");
    ::pclose(p);
    ASSERT_TRUE(piped) << piped.error().what();
    EXPECT_TRUE(path_exists(blob_of(*piped)));
    EXPECT_EQ(run("cmp " + tar + " " + export_layer("piped", *piped, "piped")), 0);
}

TEST_P(TarSplitTest, ADamagedOrMissingLayerFileFailsExportAndFsckNamingIt) {
    std::string tar = make_tar("pax");
    auto img = store_->import_image_path(tar, ImportFormat::RootfsTar, "victim");
    ASSERT_TRUE(img) << img.error().what();
    ASSERT_TRUE(path_exists(split_of(*img)));
    auto view = store_->backend().layer_view(img->top_layer);
    ASSERT_TRUE(view) << view.error().what();
    std::string tree = *view;
    if (GetParam() == "btrfs") {
        ASSERT_EQ(run("btrfs property set -f -ts " + tree + " ro false"), 0);
    }
    auto expect_failure = [&](const std::string& file) {
        std::string out = root_->scratch("broken.tar");
        UniqueFd fd(::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
        auto r = store_->export_image("victim", fd.get());
        ASSERT_FALSE(r) << "export of a damaged layer must fail";
        EXPECT_NE(r.error().what().find("'" + file + "'"), std::string::npos) << r.error().what();
        auto report = fsck(*store_, false);
        ASSERT_TRUE(report);
        EXPECT_EQ(report->damage(), 1u);
        bool named = false;
        for (const auto& pr : report->problems)
            if (pr.kind == FsckProblem::Kind::CorruptBlob &&
                pr.detail.find("'" + file + "'") != std::string::npos)
                named = true;
        EXPECT_TRUE(named) << "fsck names the damaged file";
    };
    // Same size, one byte changed.
    ASSERT_EQ(run("printf X | dd of=" + tree + "/big bs=1 seek=1000 conv=notrunc status=none"), 0);
    expect_failure("big");
    // Restore it from the original tar, then remove another file.
    ASSERT_EQ(run("tar -C " + tree + " -xf " + tar + " ./big"), 0);
    ASSERT_TRUE(store_->export_image("victim", UniqueFd(::open("/dev/null", O_WRONLY | O_CLOEXEC)).get()));
    ASSERT_EQ(::unlink((tree + "/etc/four-k").c_str()), 0);
    expect_failure("etc/four-k");
    (void)store_->backend().release_layer_view(img->top_layer);
}

INSTANTIATE_TEST_SUITE_P(Backends, TarSplitTest, ::testing::Values("overlay", "btrfs"),
                         [](const auto& backend) { return backend.param; });

}  // namespace
}  // namespace berth::store::test
