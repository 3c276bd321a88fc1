// Pushes from a real store to a real registry (docker-registry), read back by other producers'
// tools (skopeo) and by berth's own pull: a committed container's image round-trips with the same
// diff_ids, config and image id. Token auth (token-issuer.py, the distribution token spec) for
// push and pull: anonymous refused, credentials work, a pull-only user cannot push, tokens are
// asked again when they expire, "token" and "access_token" answers.
#include "registry/push.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "basic/fs-util.h"
#include "registry-fixture.h"
#include "registry/auth-file.h"
#include "registry/client.h"
#include "registry/pull.h"
#include "store/store.h"
#include "store/tree-util.h"

namespace berth::registry {
namespace {

using store::test::capture;
using store::test::StoreRoot;
using test::Registry;
using test::RegistryAuth;

class Push : public test::RegistryTest {
protected:
    // "base:1" (busybox, one gzip layer) and a container on it committed with one more layer.
    store::ImageInfo committed_image() {
        auto base =
            store_->import_image_path(images_ + "/busybox-oci.tar", store::ImportFormat::Auto, "base:1");
        EXPECT_TRUE(base) << base.error().message;
        std::string name = "pushed-" + std::to_string(::getpid());
        auto c = store_->prepare_container(name, "base:1", false);
        EXPECT_TRUE(c) << c.error().message;
        if (!c) return {};
        EXPECT_TRUE(write_file(c->rootfs.upperdir + "/pushed-file", "made before the push\n"));
        EXPECT_TRUE(store_->release_container(name));
        auto img = store_->commit_container(name, "committed:1");
        EXPECT_TRUE(img) << img.error().message;
        return img ? *img : store::ImageInfo{};
    }

    Result<PushResult> push(const std::string& image, const std::string& ref, const RegistriesConfig& c,
                            const std::atomic<bool>* cancel = nullptr) {
        return push_image(*store_, image, ref, c, {}, {}, cancel);
    }
};

std::vector<std::string> diff_ids(const store::ImageInfo& i) {
    std::vector<std::string> out;
    for (const auto& l : i.layers) out.push_back(l.diff_id);
    return out;
}

TEST_F(Push, ACommittedContainerRoundTripsWithTheSameDiffIdsConfigAndImageId) {
    Registry reg;
    ASSERT_TRUE(reg.ok()) << "docker-registry did not start: " << capture("cat " + reg.log());
    auto image = committed_image();
    ASSERT_EQ(image.layers.size(), 2u);
    auto c = config_for(reg);
    auto pushed = push("committed:1", reg.host() + "/team/app:v1", c);
    ASSERT_TRUE(pushed) << pushed.error().message;
    EXPECT_EQ(pushed->repo_digest, reg.host() + "/team/app@" + image.id);
    EXPECT_EQ(pushed->blobs_uploaded, 3u);  // config and two layers
    EXPECT_TRUE(store::list_dir(root_.root() + "/staging").empty());
    // The store remembers where the image went (berth image list, inspect).
    auto recorded = store_->get_image("committed:1");
    ASSERT_TRUE(recorded);
    EXPECT_EQ(recorded->repo_digests, std::vector<std::string>{pushed->repo_digest});

    // skopeo reads it back: the same manifest digest, diff_ids and config.
    std::string flags = " --tls-verify=false docker://" + reg.host() + "/team/app:v1";
    auto inspect = nlohmann::json::parse(capture("skopeo inspect" + flags), nullptr, false);
    ASSERT_TRUE(inspect.is_object()) << "skopeo inspect failed";
    EXPECT_EQ(inspect.value("Digest", ""), image.id);
    auto config = nlohmann::json::parse(capture("skopeo inspect --config" + flags), nullptr, false);
    ASSERT_TRUE(config.is_object()) << "skopeo inspect --config failed";
    EXPECT_EQ(config["rootfs"]["diff_ids"].get<std::vector<std::string>>(), diff_ids(image));
    EXPECT_EQ(config["config"]["Entrypoint"], nlohmann::json::array({"/bin/sh"}));
    // skopeo copy verifies every blob against its digest.
    EXPECT_EQ(store::test::run("skopeo copy -q --src-tls-verify=false docker://" + reg.host() +
                               "/team/app:v1 oci:" + tmp_ / "copy" + ":v1 >&2"),
              0);

    // Pulled back into another store: the same image, with the committed file.
    StoreRoot other_root{"overlay"};
    ASSERT_TRUE(other_root.ok());
    auto other = store::Store::open(other_root.options());
    ASSERT_TRUE(other) << other.error().message;
    auto back = pull_image(**other, reg.host() + "/team/app:v1", c, {}, {}, nullptr);
    ASSERT_TRUE(back) << back.error().message;
    EXPECT_EQ(back->image.id, image.id);
    EXPECT_EQ(diff_ids(back->image), diff_ids(image));
    EXPECT_EQ(back->image.config.entrypoint, std::vector<std::string>{"/bin/sh"});
    EXPECT_EQ(back->image.repo_digests, std::vector<std::string>{pushed->repo_digest});

    // Pushed again (another tag): every blob is there already, only the manifest goes.
    auto again = push("committed:1", reg.host() + "/team/app:v2", c);
    ASSERT_TRUE(again) << again.error().message;
    EXPECT_EQ(again->blobs_uploaded, 0u);
    EXPECT_EQ(again->blobs_skipped, 3u);
}

TEST_F(Push, AReferencePinningAnotherDigestOrAnUnknownImageIsRefused) {
    Registry reg;
    ASSERT_TRUE(reg.ok());
    auto c = config_for(reg);
    ASSERT_TRUE(store_->import_image_path(images_ + "/busybox-oci.tar", store::ImportFormat::Auto, "base:1"));
    std::string wrong = "sha256:" + std::string(64, 'a');
    auto pinned = push("base:1", reg.host() + "/team/app@" + wrong, c);
    ASSERT_FALSE(pinned);
    EXPECT_EQ(pinned.error().code, EINVAL);
    EXPECT_NE(pinned.error().message.find("the reference pins " + wrong), std::string::npos)
        << pinned.error().message;
    auto unknown = push("nope:1", reg.host() + "/team/app:v1", c);
    ASSERT_FALSE(unknown);
    EXPECT_EQ(unknown.error().code, ENOENT) << unknown.error().message;
}

TEST_F(Push, TokenAuthRefusesAnonymousAndAPullOnlyUserAndAcceptsTheWriter) {
    Registry reg(RegistryAuth::Token);
    ASSERT_TRUE(reg.ok()) << capture("cat " + reg.log() + " " + reg.dir() + "/issuer.out");
    ASSERT_TRUE(store_->import_image_path(images_ + "/busybox-oci.tar", store::ImportFormat::Auto, "base:1"));
    auto c = config_for(reg);
    auto anonymous = push("base:1", reg.host() + "/team/app:v1", c);
    ASSERT_FALSE(anonymous);
    EXPECT_EQ(anonymous.error().code, EACCES);
    EXPECT_NE(anonymous.error().message.find("the token service refused anonymous access"), std::string::npos)
        << anonymous.error().message;

    ASSERT_TRUE(store_credentials(c.auth_file, reg.host(), {"reader", "read-pw"}));
    auto reader = push("base:1", reg.host() + "/team/app:v1", c);
    ASSERT_FALSE(reader);
    EXPECT_EQ(reader.error().code, EACCES);
    EXPECT_NE(reader.error().message.find("access denied to 'team/app' for pull,push"), std::string::npos)
        << reader.error().message;
    EXPECT_EQ(reader.error().message.find("read-pw"), std::string::npos) << "a password in a message";
    // The scope asked was pull and push, the reader was granted pull only.
    EXPECT_NE(capture("cat " + reg.issuer_log()).find("user=reader scope=repository:team/app:pull,push"),
              std::string::npos);

    ASSERT_TRUE(store_credentials(c.auth_file, reg.host(), {Registry::user(), Registry::password()}));
    auto writer = push("base:1", reg.host() + "/team/app:v1", c);
    ASSERT_TRUE(writer) << writer.error().message;

    // Pull: anonymous refused, the reader may.
    StoreRoot other_root{"overlay"};
    ASSERT_TRUE(other_root.ok());
    auto other = store::Store::open(other_root.options());
    ASSERT_TRUE(other);
    auto no_creds = c;
    no_creds.auth_file = tmp_ / "none.json";
    auto refused = pull_image(**other, reg.host() + "/team/app:v1", no_creds, {}, {}, nullptr);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, EACCES) << refused.error().message;
    ASSERT_TRUE(store_credentials(c.auth_file, reg.host(), {"reader", "read-pw"}));
    auto pulled = pull_image(**other, reg.host() + "/team/app:v1", c, {}, {}, nullptr);
    ASSERT_TRUE(pulled) << pulled.error().message;
    EXPECT_EQ(pulled->image.id, writer->repo_digest.substr(writer->repo_digest.find('@') + 1));
}

// The issuer answers "access_token" (OAuth 2 style) with expires_in 10: berth renews a token 5 s
// before it runs out, so a second push 6 s later asks the issuer again.
TEST_F(Push, AnAccessTokenAnswerWorksAndAnExpiredTokenIsAskedAgain) {
    Registry reg(RegistryAuth::Token, false, 10, "access_token");
    ASSERT_TRUE(reg.ok()) << capture("cat " + reg.log() + " " + reg.dir() + "/issuer.out");
    ASSERT_TRUE(store_->import_image_path(images_ + "/busybox-oci.tar", store::ImportFormat::Auto, "base:1"));
    auto c = config_for(reg);
    ASSERT_TRUE(store_credentials(c.auth_file, reg.host(), {Registry::user(), Registry::password()}));
    auto ep = endpoints_for(*qualify(*parse_reference(reg.host() + "/team/app:v1"), c), c);
    ASSERT_TRUE(ep);
    RegistryClient client(ep->back(), Credentials{Registry::user(), Registry::password()}, {}, nullptr);
    client.set_actions("pull,push");
    ASSERT_TRUE(client.has_blob("sha256:" + std::string(64, 'b')));
    auto requests = [&] {
        std::string log = capture("grep -c '^token user=berth' " + reg.issuer_log() + " || true");
        return std::atoi(log.c_str());
    };
    EXPECT_EQ(requests(), 1);
    ASSERT_TRUE(client.has_blob("sha256:" + std::string(64, 'b')));
    EXPECT_EQ(requests(), 1) << "a valid token is used again";
    std::this_thread::sleep_for(std::chrono::milliseconds(5500));
    auto later = client.has_blob("sha256:" + std::string(64, 'b'));
    ASSERT_TRUE(later) << later.error().message;
    EXPECT_EQ(requests(), 2) << "an expired token is asked for again";
    auto pushed = push("base:1", reg.host() + "/team/app:v1", c);
    ASSERT_TRUE(pushed) << pushed.error().message;
}

}  // namespace
}  // namespace berth::registry
