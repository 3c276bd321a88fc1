// The auth file: containers-auth.json / docker config.json, 0600, atomic, refused when others can
// read it; and the base64 it stores credentials in (RFC 4648).
#include "registry/auth-file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "basic/fs-util.h"
#include "basic/string-util.h"
#include "test-util.h"

using namespace berth;
using namespace berth::registry;

TEST(Base64, EncodesAndDecodesTheRfc4648Vectors) {
    const std::pair<std::string, std::string> vectors[] = {
        {"", ""},
        {"f", "Zg=="},
        {"fo", "Zm8="},
        {"foo", "Zm9v"},
        {"foob", "Zm9vYg=="},
        {"fooba", "Zm9vYmE="},
        {"foobar", "Zm9vYmFy"},
    };
    for (const auto& [plain, encoded] : vectors) {
        EXPECT_EQ(base64_encode(plain), encoded);
        auto decoded = base64_decode(encoded);
        ASSERT_TRUE(decoded) << encoded;
        EXPECT_EQ(*decoded, plain);
    }
    std::string all;
    for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
    EXPECT_EQ(base64_decode(base64_encode(all)), all);
    EXPECT_EQ(base64_encode("user:p@ss:w0rd"), "dXNlcjpwQHNzOncwcmQ=");
    EXPECT_EQ(base64_decode("+/+/"), std::string("\xfb\xff\xbf", 3));
}

TEST(Base64, RefusesWhatIsNotCanonicalBase64) {
    for (std::string_view bad : {"Zg", "Zg=", "Zg===", "Z===", "====", "Zm9v\n", " Zm9v",
                                 "Zm9v=", "Z@==", "Zm-_", "Zg==Zg==", "Zm=v", "Zh==", "Zm9=", "Zg=a"})
        EXPECT_FALSE(base64_decode(bad)) << "'" << bad << "' decoded";
}

namespace {

std::string mode_of(const std::string& path) {
    struct stat st {};
    if (stat(path.c_str(), &st) < 0) return "missing";
    return fmt::format("{:o}", st.st_mode & 07777);
}

}  // namespace

TEST(AuthFile, StoresLooksUpAndRemovesCredentialsIn0600) {
    test::TempDir tmp;
    std::string file = tmp / "etc/berth/auth.json";
    auto none = lookup_credentials(file, "quay.io");
    ASSERT_TRUE(none) << none.error().what();
    EXPECT_FALSE(*none) << "no file is no credentials";

    ASSERT_TRUE(store_credentials(file, "quay.io", {"alice", "s3cr:et"}));
    EXPECT_EQ(mode_of(file), "600");
    ASSERT_TRUE(store_credentials(file, "localhost:5000", {"bob", ""}));
    auto alice = lookup_credentials(file, "quay.io");
    ASSERT_TRUE(alice && *alice);
    EXPECT_EQ(**alice, (Credentials{"alice", "s3cr:et"}));
    auto bob = lookup_credentials(file, "localhost:5000");
    ASSERT_TRUE(bob && *bob);
    EXPECT_EQ(**bob, (Credentials{"bob", ""}));

    auto removed = remove_credentials(file, "quay.io");
    ASSERT_TRUE(removed);
    EXPECT_TRUE(*removed);
    removed = remove_credentials(file, "quay.io");
    ASSERT_TRUE(removed);
    EXPECT_FALSE(*removed) << "nothing left to remove";
    EXPECT_FALSE(*lookup_credentials(file, "quay.io"));
    EXPECT_TRUE(*lookup_credentials(file, "localhost:5000"));
    EXPECT_EQ(mode_of(file), "600");
    // Nothing else left behind in the directory (the temporary file was renamed over).
    size_t entries = 0;
    for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(tmp / "etc/berth")) ++entries;
    EXPECT_EQ(entries, 1u);
}

TEST(AuthFile, RefusesAFileGroupOrOthersCanRead) {
    test::TempDir tmp;
    std::string file = tmp / "auth.json";
    ASSERT_TRUE(store_credentials(file, "quay.io", {"alice", "pw"}));
    for (mode_t mode : {0640, 0604, 0660, 0620}) {
        ASSERT_EQ(chmod(file.c_str(), mode), 0);
        auto r = lookup_credentials(file, "quay.io");
        ASSERT_FALSE(r) << fmt::format("{:o}", mode);
        EXPECT_NE(r.error().what().find("chmod 600"), std::string::npos) << r.error().what();
        EXPECT_FALSE(store_credentials(file, "x.io", {"a", "b"})) << "nor written to";
    }
    ASSERT_EQ(chmod(file.c_str(), 0400), 0);
    EXPECT_TRUE(lookup_credentials(file, "quay.io"));
}

TEST(AuthFile, ReadsAndKeepsPodmanAndDockerFiles) {
    test::TempDir tmp;
    std::string file = tmp / "config.json";
    // docker login writes Docker Hub under its v1 URL and keeps other keys (credHelpers, ...);
    // podman writes "docker.io" and may key by repository.
    std::string docker = R"({
	"auths": {
		"https://index.docker.io/v1/": {"auth": "ZGhfdXNlcjpkaF9wdw=="},
		"http://legacy.local:5000": {"auth": "bGVnOnB3"},
		"ghcr.io": {},
		"quay.io/team": {"auth": "dGVhbTpwdw=="}
	},
	"credHelpers": {"gcr.io": "gcloud"},
	"HttpHeaders": {"User-Agent": "Docker-Client/24"}
})";
    ASSERT_TRUE(write_file_atomic(file, docker, 0600));
    auto hub = lookup_credentials(file, "docker.io");
    ASSERT_TRUE(hub) << hub.error().what();
    ASSERT_TRUE(*hub) << "Docker Hub's legacy key is docker.io";
    EXPECT_EQ(**hub, (Credentials{"dh_user", "dh_pw"}));
    auto legacy = lookup_credentials(file, "legacy.local:5000");
    ASSERT_TRUE(legacy && *legacy) << "a key with a scheme names its host";
    EXPECT_EQ((*legacy)->username, "leg");
    EXPECT_FALSE(*lookup_credentials(file, "ghcr.io")) << "an entry without auth (a helper's) is none";
    auto team = lookup_credentials(file, "quay.io/team");
    ASSERT_TRUE(team && *team);
    EXPECT_EQ((*team)->username, "team");

    ASSERT_TRUE(store_credentials(file, "ghcr.io", {"gh", "tok"}));
    auto doc = nlohmann::json::parse(*read_file(file));
    EXPECT_EQ(doc["credHelpers"]["gcr.io"], "gcloud") << "keys berth does not use survive";
    EXPECT_EQ(doc["HttpHeaders"]["User-Agent"], "Docker-Client/24");
    EXPECT_EQ(doc["auths"]["ghcr.io"]["auth"], "Z2g6dG9r");
    EXPECT_EQ(doc["auths"]["https://index.docker.io/v1/"]["auth"], "ZGhfdXNlcjpkaF9wdw==");

    // Logging out of docker.io removes the legacy key too, or the next lookup would find it.
    auto removed = remove_credentials(file, "docker.io");
    ASSERT_TRUE(removed);
    EXPECT_TRUE(*removed);
    EXPECT_FALSE(*lookup_credentials(file, "docker.io"));
}

TEST(AuthFile, ReportsABrokenFileAndBadInput) {
    test::TempDir tmp;
    std::string file = tmp / "auth.json";
    // The last bool: the whole file is broken, so nothing may be written to it either.
    const std::tuple<std::string, std::string, bool> table[] = {
        {"not json", "is not a JSON object", true},
        {"[]", "is not a JSON object", true},
        {R"({"auths": []})", "\"auths\" must be an object", true},
        {R"({"auths": {"q.io": []}})", "the entry for 'q.io' is not an object", true},
        {R"({"auths": {"q.io": {"auth": "!!!"}}})", "not base64 of user:password", false},
        {R"({"auths": {"q.io": {"auth": "bm9jb2xvbg=="}}})", "not base64 of user:password", false},
        {R"({"auths": {"q.io": {"auth": 5}}})", "not base64 of user:password", false},
    };
    for (const auto& [text, why, whole_file] : table) {
        ASSERT_TRUE(write_file_atomic(file, text, 0600));
        auto r = lookup_credentials(file, "q.io");
        ASSERT_FALSE(r) << text;
        EXPECT_NE(r.error().what().find(why), std::string::npos) << r.error().what();
        EXPECT_NE(r.error().what().find(file), std::string::npos) << "names the file";
        if (!whole_file) continue;
        EXPECT_FALSE(store_credentials(file, "q.io", {"a", "b"})) << "a broken file is not overwritten";
        EXPECT_EQ(*read_file(file), text);
    }
    std::string fresh = tmp / "fresh.json";
    EXPECT_FALSE(store_credentials(fresh, "q.io", {"a:b", "c"})) << "':' ends the user name";
    EXPECT_FALSE(store_credentials(fresh, "", {"a", "c"}));
    EXPECT_FALSE(store_credentials(fresh, "bad host", {"a", "c"}));
    EXPECT_FALSE(store_credentials(fresh, std::string("q.io\xff", 5), {"a", "c"}));
    EXPECT_EQ(mode_of(fresh), "missing") << "nothing written for bad input";
}
