// Pulls from a real registry (docker-registry) into a real store: OCI and Docker schema 2 images,
// gzip and zstd layers, Basic auth, a TLS registry with its own CA, cancel, and the errors a pull
// must name clearly while publishing nothing.
#include "registry/pull.h"

#include <gtest/gtest.h>

#include <atomic>

#include "basic/fs-util.h"
#include "registry-fixture.h"
#include "registry/auth-file.h"
#include "registry/http.h"
#include "store/digest.h"
#include "store/store.h"
#include "store/tree-util.h"

namespace berth::registry {
namespace {

using store::test::StoreRoot;
using test::Registry;
using test::RegistryAuth;

class Pull : public test::RegistryTest {
protected:
    Result<PullResult> pull(const std::string& ref, const RegistriesConfig& c, const PullOptions& o = {},
                            const store::ProgressFn& progress = {},
                            const std::atomic<bool>* cancel = nullptr) {
        return pull_image(*store_, ref, c, o, progress, cancel);
    }

    static void expect_failure(const Result<PullResult>& r, int code, const std::string& fragment) {
        ASSERT_FALSE(r);
        if (code) {
            EXPECT_EQ(r.error().code, code) << r.error().message;
        }
        EXPECT_NE(r.error().message.find(fragment), std::string::npos) << r.error().message;
    }

    // Nothing half-made: no image appeared and staging holds nothing.
    void expect_nothing_published(size_t images_before) {
        EXPECT_EQ(store_->list_images().size(), images_before);
        EXPECT_TRUE(store::list_dir(root_.root() + "/staging").empty()) << "staging is not empty";
    }
};

TEST_F(Pull, AnOciImageByTagAndByDigestIsTheSameImageAndTheSecondPullIsOneManifestRequest) {
    Registry reg;
    ASSERT_TRUE(reg.ok()) << "docker-registry did not start: " << store::test::capture("cat " + reg.log());
    ASSERT_TRUE(reg.push("oci:" + images_ + "/oci:layered", "test/layered:v1"));
    auto c = config_for(reg);
    auto first = pull(reg.host() + "/test/layered:v1", c);
    ASSERT_TRUE(first) << first.error().message;
    EXPECT_FALSE(first->already_present);
    EXPECT_EQ(first->image.layers.size(), 2u);
    EXPECT_EQ(first->image.names, std::vector<std::string>{reg.host() + "/test/layered:v1"});
    EXPECT_EQ(first->repo_digest, reg.host() + "/test/layered@" + first->image.id);
    // The config survived: the busybox test image's entrypoint.
    EXPECT_EQ(first->image.config.entrypoint, std::vector<std::string>{"/bin/sh"});

    int manifests_before = reg.manifest_gets("test/layered");
    int blobs_before = reg.blob_gets("test/layered");
    auto by_digest = pull(reg.host() + "/test/layered@" + first->image.id, c);
    ASSERT_TRUE(by_digest) << by_digest.error().message;
    EXPECT_EQ(by_digest->image.id, first->image.id);
    EXPECT_TRUE(by_digest->already_present);
    auto again = pull(reg.host() + "/test/layered:v1", c);
    ASSERT_TRUE(again) << again.error().message;
    EXPECT_TRUE(again->already_present);
    EXPECT_EQ(again->requests, 1u);
    EXPECT_EQ(reg.manifest_gets("test/layered"), manifests_before + 2) << "one manifest request per pull";
    EXPECT_EQ(reg.blob_gets("test/layered"), blobs_before) << "nothing but the manifest was fetched";
    EXPECT_EQ(store_->list_images().size(), 1u);
    EXPECT_TRUE(store::list_dir(root_.root() + "/staging").empty());
}

TEST_F(Pull, DockerSchema2AndZstdImagesHaveTheSameLayersAsTheOciOne) {
    Registry reg;
    ASSERT_TRUE(reg.ok());
    ASSERT_TRUE(reg.push("oci:" + images_ + "/oci:busybox", "test/oci:v1"));
    ASSERT_TRUE(reg.push("oci:" + images_ + "/oci:busybox", "test/docker:v1", "--format v2s2"));
    // skopeo 1.9 does not recompress a blob the registry has: push the zstd layout as it is.
    ASSERT_TRUE(reg.push("oci:" + images_ + "/oci-zstd:busybox", "test/zstd:v1"));
    auto c = config_for(reg);
    // The Docker one first: a layer the store has already keeps the record it was stored with.
    auto docker = pull(reg.host() + "/test/docker:v1", c);
    ASSERT_TRUE(docker) << docker.error().message;
    auto zstd = pull(reg.host() + "/test/zstd:v1", c);
    ASSERT_TRUE(zstd) << zstd.error().message;
    auto oci = pull(reg.host() + "/test/oci:v1", c);
    ASSERT_TRUE(oci) << oci.error().message;
    ASSERT_EQ(oci->image.layers.size(), 1u);
    ASSERT_EQ(docker->image.layers.size(), 1u);
    ASSERT_EQ(zstd->image.layers.size(), 1u);
    EXPECT_EQ(docker->image.layers[0].media_type, "application/vnd.docker.image.rootfs.diff.tar.gzip");
    EXPECT_EQ(zstd->image.layers[0].media_type, "application/vnd.oci.image.layer.v1.tar+zstd");
    EXPECT_EQ(docker->image.layers[0].diff_id, oci->image.layers[0].diff_id);
    EXPECT_EQ(zstd->image.layers[0].diff_id, oci->image.layers[0].diff_id);
    EXPECT_NE(zstd->image.layers[0].digest, oci->image.layers[0].digest);
    EXPECT_NE(docker->image.id, oci->image.id);
}

TEST_F(Pull, AnUnknownTagOrAWrongPinnedDigestIsAClearErrorAndPublishesNothing) {
    Registry reg;
    ASSERT_TRUE(reg.ok());
    ASSERT_TRUE(reg.push("oci:" + images_ + "/oci:busybox", "test/bb:v1"));
    auto c = config_for(reg);
    expect_failure(pull(reg.host() + "/test/bb:nope", c), ENOENT,
                   "pull '" + reg.host() + "/test/bb:nope': manifest 'nope' not found in '" + reg.host() +
                       "/test/bb' (HTTP 404 (MANIFEST_UNKNOWN");
    std::string wrong = "sha256:" + std::string(64, 'a');
    expect_failure(pull(reg.host() + "/test/bb@" + wrong, c), 0, wrong);
    auto nothing = pull(reg.host() + "/test/none:v1", c);
    ASSERT_FALSE(nothing);
    expect_nothing_published(0);
}

TEST_F(Pull, BasicAuthUsesTheAuthFileAndWrongCredentialsAreRefused) {
    Registry reg(RegistryAuth::Basic);
    ASSERT_TRUE(reg.ok());
    ASSERT_TRUE(reg.push("oci:" + images_ + "/oci:busybox", "test/bb:v1"));
    auto c = config_for(reg);
    expect_failure(pull(reg.host() + "/test/bb:v1", c), EACCES, "no credentials");
    ASSERT_TRUE(store_credentials(c.auth_file, reg.host(), {Registry::user(), "wrong"}));
    expect_failure(pull(reg.host() + "/test/bb:v1", c), EACCES, "access denied to 'test/bb'");
    expect_nothing_published(0);
    ASSERT_TRUE(store_credentials(c.auth_file, reg.host(), {Registry::user(), Registry::password()}));
    auto right = pull(reg.host() + "/test/bb:v1", c);
    ASSERT_TRUE(right) << right.error().message;
    EXPECT_EQ(right->image.layers.size(), 1u);
}

TEST_F(Pull, ATlsRegistryIsTrustedThroughItsCertsDirAndNotWithout) {
    Registry reg(RegistryAuth::None, true);
    ASSERT_TRUE(reg.ok()) << store::test::capture("cat " + reg.log());
    ASSERT_TRUE(reg.push("oci:" + images_ + "/oci:busybox", "test/bb:v1"));
    auto c = config_for(reg, false);
    expect_failure(pull(reg.host() + "/test/bb:v1", c), 0, "certificate");
    ASSERT_TRUE(mkdir_p(c.certs_dir + "/" + reg.host()));
    ASSERT_EQ(store::test::run("cp " + reg.ca() + " " + c.certs_dir + "/" + reg.host() + "/ca.crt"), 0);
    auto trusted = pull(reg.host() + "/test/bb:v1", c);
    ASSERT_TRUE(trusted) << trusted.error().message;
}

TEST_F(Pull, ACancelDuringTheDownloadLeavesStagingEmptyAndPublishesNothing) {
    Registry reg;
    ASSERT_TRUE(reg.ok());
    ASSERT_TRUE(reg.push("oci:" + images_ + "/oci:layered", "test/layered:v1"));
    auto c = config_for(reg);
    std::atomic<bool> cancel{false};
    bool saw_download = false;
    auto r = pull(
        reg.host() + "/test/layered:v1", c, {},
        [&](const store::ImportProgress& p) {
            if (p.bytes_total > 0) {
                saw_download = true;
                cancel = true;
            }
        },
        &cancel);
    ASSERT_FALSE(r);
    EXPECT_TRUE(saw_download);
    EXPECT_EQ(r.error().code, ECANCELED) << r.error().message;
    expect_nothing_published(0);
}

TEST_F(Pull, AnIndexGivesTheHostPlatformSkipsAttestationsAndNamesWhatItOffers) {
    EXPECT_FALSE(parse_platform("linux"));
    EXPECT_FALSE(parse_platform("linux/"));
    EXPECT_FALSE(parse_platform("linux/arm64/v8/x"));
    EXPECT_EQ(parse_platform("linux/arm64/v8")->str(), "linux/arm64/v8");
    Registry reg;
    ASSERT_TRUE(reg.ok());
    ASSERT_TRUE(reg.push("oci:" + images_ + "/oci:busybox", "test/bb:v1"));
    // An index (PUT by hand) with the image for this host first listed as an attestation
    // (unknown/unknown, as buildx writes them), then as the host's platform.
    std::string m = tmp_ / "manifest.json";
    std::string base = "http://" + reg.host() + "/v2/test/bb/manifests/";
    ASSERT_EQ(store::test::run("curl -sf -H 'Accept: application/vnd.oci.image.manifest.v1+json' -o " + m +
                               " " + base + "v1"),
              0);
    std::string digest = "sha256:" + store::test::capture("sha256sum < " + m + " | cut -c1-64 | tr -d '\\n'");
    std::string size = store::test::capture("stat -c %s " + m + " | tr -d '\\n'");
    Platform host = host_platform();
    std::string entry = R"({"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":")" + digest +
                        R"(","size":)" + size;
    std::string index =
        R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[)" + entry +
        R"(,"platform":{"os":"unknown","architecture":"unknown"},"annotations":{"vnd.docker.reference.type":"attestation-manifest"}},)" +
        entry + R"(,"platform":{"os":"linux","architecture":")" + host.architecture + R"("}}]})";
    ASSERT_TRUE(write_file(tmp_ / "index.json", index));
    ASSERT_EQ(store::test::run("curl -sf -X PUT -H 'Content-Type: application/vnd.oci.image.index.v1+json' "
                               "--data-binary @" +
                               tmp_ / "index.json" + " " + base + "multi >&2"),
              0);
    auto c = config_for(reg);
    expect_failure(pull(reg.host() + "/test/bb:multi", c, {"linux/s390x", {}}), ENOENT,
                   "no image for platform linux/s390x (the index offers: linux/" + host.architecture + ")");
    auto r = pull(reg.host() + "/test/bb:multi", c);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->image.id, digest);
    EXPECT_EQ(r->repo_digest, reg.host() + "/test/bb@" + store::sha256_digest(index));
}

// The Authorization header is kept only while the origin stays the same (http.cpp): these decide it.
TEST(Http, ARedirectToAnotherHostOrPortIsAnotherOrigin) {
    EXPECT_EQ(url_origin("https://Reg.example:5000/v2/x/blobs/sha256:1"), "https://reg.example:5000");
    EXPECT_NE(url_origin("https://reg.example:5000/v2/"), url_origin("https://reg.example:5001/v2/"));
    EXPECT_NE(url_origin("https://reg.example/v2/"), url_origin("http://reg.example/v2/"));
    EXPECT_EQ(url_origin("not a url"), "");
    EXPECT_EQ(resolve_location("https://a.example/v2/x/blobs/d", "https://cdn.example/b?sig=1"),
              "https://cdn.example/b?sig=1");
    EXPECT_EQ(resolve_location("https://a.example/v2/x/blobs/d", "/other/place"),
              "https://a.example/other/place");
    EXPECT_EQ(resolve_location("https://a.example/v2/x/blobs/d", "//cdn.example/b"), "https://cdn.example/b");
    EXPECT_EQ(resolve_location("https://a.example/v2/x/blobs/d?q=1", "e"), "https://a.example/v2/x/blobs/e");
}

}  // namespace
}  // namespace berth::registry
