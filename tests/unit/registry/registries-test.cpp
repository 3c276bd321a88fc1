// registries.toml: the search path and drop-ins, strict errors with file:line:col, and
// endpoints_for (prefix match, mirrors, blocked, location rewriting, certs.d).
#include "registry/registries.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <string>

#include "basic/fs-util.h"
#include "test-util.h"

using namespace berth;
using namespace berth::registry;

namespace {

void write(const std::string& path, const std::string& text) {
    ASSERT_TRUE(mkdir_p(split_parent(path).first, 0755));
    ASSERT_TRUE(write_file_atomic(path, text, 0644)) << path;
}

std::string load_error(const test::TempDir& tmp) {
    auto config = load_registries(RegistriesSearchPath{{tmp.path()}});
    return config ? std::string("(loaded)") : config.error().what();
}

Reference qualified(const std::string& text, const RegistriesConfig& config) {
    auto ref = parse_reference(text);
    EXPECT_TRUE(ref) << text;
    auto q = qualify(*ref, config);
    EXPECT_TRUE(q) << text;
    return *q;
}

}  // namespace

TEST(Registries, NoFileGivesTheDefaults) {
    test::TempDir tmp;
    auto config = load_registries(RegistriesSearchPath{{tmp.path(), tmp / "missing"}});
    ASSERT_TRUE(config) << config.error().what();
    EXPECT_EQ(config->default_domain, "docker.io");
    EXPECT_TRUE(config->registries.empty());
    EXPECT_EQ(config->certs_dir, "/etc/berth/certs.d");
    EXPECT_EQ(config->auth_file, "/etc/berth/auth.json");
}

TEST(Registries, TheFirstMainFileWinsAndDropInsFromEveryDirectoryApplyInNameOrder) {
    test::TempDir etc, run, lib;
    write(run / "registries.toml", "default_registry = \"quay.io\"\n");
    write(lib / "registries.toml", "default_registry = \"ignored.example.com\"\n");
    write(lib / "registries.toml.d/10-mirror.toml",
          "[[registry]]\nprefix = \"docker.io\"\n[[registry.mirror]]\nlocation = \"lib-mirror.local\"\n");
    write(etc / "registries.toml.d/10-mirror.toml",
          "[[registry]]\nprefix = \"docker.io\"\n[[registry.mirror]]\nlocation = \"etc-mirror.local\"\n");
    write(lib / "registries.toml.d/20-local.toml",
          "[[registry]]\nprefix = \"localhost:5000\"\ninsecure = true\n");
    write(run / "registries.toml.d/30-default.toml", "default_registry = \"registry.example.com\"\n");
    write(run / "registries.toml.d/README", "not a drop-in");
    auto config = load_registries(RegistriesSearchPath{{etc.path(), run.path(), lib.path()}});
    ASSERT_TRUE(config) << config.error().what();
    EXPECT_EQ(config->default_domain, "registry.example.com") << "a later drop-in overrides the main file";
    ASSERT_EQ(config->registries.size(), 2u);
    EXPECT_EQ(config->registries[0].prefix, "docker.io");
    ASSERT_EQ(config->registries[0].mirrors.size(), 1u);
    EXPECT_EQ(config->registries[0].mirrors[0].location, "etc-mirror.local")
        << "the same drop-in name in an earlier directory masks the later one";
    EXPECT_EQ(config->registries[1].prefix, "localhost:5000");
    EXPECT_TRUE(config->registries[1].insecure);
}

TEST(Registries, ADropInReplacesTheEntryForTheSamePrefix) {
    test::TempDir tmp;
    write(tmp / "registries.toml",
          "[[registry]]\nprefix = \"quay.io\"\nblocked = true\n[[registry]]\nprefix = \"ghcr.io\"\n");
    write(tmp / "registries.toml.d/50-unblock.toml",
          "[[registry]]\nprefix = \"quay.io\"\nlocation = \"quay-mirror.local:8443/quay\"\n");
    auto config = load_registries(RegistriesSearchPath{{tmp.path()}});
    ASSERT_TRUE(config) << config.error().what();
    ASSERT_EQ(config->registries.size(), 2u);
    EXPECT_EQ(config->registries[0].prefix, "ghcr.io");
    EXPECT_EQ(config->registries[1].prefix, "quay.io");
    EXPECT_FALSE(config->registries[1].blocked);
    EXPECT_EQ(config->registries[1].location, "quay-mirror.local:8443/quay");
}

TEST(Registries, EveryErrorNamesFileLineAndColumn) {
    const std::pair<std::string, std::string> table[] = {
        {"default_registry = 5\n", "registries.toml:1:20: default_registry must be a string"},
        {"\n\n  deafult_registry = \"x.io\"\n",
         "registries.toml:3:3: unknown key 'deafult_registry' at the top level, expected a known key; "
         "did you mean 'default_registry'?"},
        {"[[registry]]\nprefix = \"quay.io\"\ninsecur = true\n",
         "registries.toml:3:1: unknown key 'insecur' in [[registry]], expected a known key; did you mean "
         "'insecure'?"},
        {"[[registry]]\nprefix = \"quay.io\"\ncolour = 1\n",
         "registries.toml:3:1: unknown key 'colour' in [[registry]], expected one of: prefix, location, "
         "insecure, blocked, mirror"},
        {"[[registry]]\nprefix = \"quay.io\"\n[[registry.mirror]]\nlocaton = \"m.local\"\n",
         "registries.toml:4:1: unknown key 'locaton' in [[registry.mirror]], expected a known key; did you "
         "mean 'location'?"},
        {"[[registry]]\nlocation = \"x.io\"\n", "registries.toml:1:1: [[registry]] needs prefix"},
        {"[[registry]]\nprefix = \"Quay.io/Team\"\n",
         "registries.toml:2:10: prefix 'Quay.io/Team' is not a registry[/repository]"},
        {"[[registry]]\nprefix = \"quay.io/team:v1\"\n",
         "registries.toml:2:10: prefix 'quay.io/team:v1' is not a registry[/repository]"},
        {"[[registry]]\nprefix = \"quay.io\"\nlocation = \"https://quay.io\"\n",
         "registries.toml:3:12: location 'https://quay.io' is not host[:port][/path]"},
        {"[[registry]]\nprefix = \"quay.io\"\nlocation = \"mirror.local/../x\"\n",
         "registries.toml:3:12: location 'mirror.local/../x' is not host[:port][/path]"},
        {"[[registry]]\nprefix = \"quay.io\"\n[[registry.mirror]]\nlocation = \"bad host\"\n",
         "registries.toml:4:12: location 'bad host' is not host[:port][/path]"},
        {"[[registry]]\nprefix = \"quay.io\"\ninsecure = \"yes\"\n",
         "registries.toml:3:12: insecure must be true or false"},
        {"[[registry]]\nprefix = \"quay.io\"\n[[registry]]\nprefix = \"quay.io\"\n",
         "registries.toml:4:10: prefix 'quay.io' is declared twice (first at line 2)"},
        {"default_registry = \"docker.io/library\"\n",
         "registries.toml:1:20: default_registry 'docker.io/library' is not a registry host[:port]"},
        {"default_registry = \"-bad\"\n",
         "registries.toml:1:20: default_registry '-bad' is not a registry host[:port]"},
        {"certs_dir = \"certs.d\"\n", "registries.toml:1:13: certs_dir 'certs.d' must be an absolute path"},
        {"auth_file = \"\"\n", "registries.toml:1:13: auth_file '' must be an absolute path"},
        {"registry = 1\n", "registries.toml:1:12: registry must be an array of tables ([[registry]])"},
        {"[registry]\nprefix = \"x.io\"\n", "registries.toml:1:1: registry must be an array of tables"},
        {"default_registry = \"x\n", "registries.toml:1:"},
    };
    for (const auto& [text, expected] : table) {
        test::TempDir tmp;
        write(tmp / "registries.toml", text);
        std::string error = load_error(tmp);
        EXPECT_NE(error.find(tmp / expected), std::string::npos)
            << "for:\n"
            << text << "expected: " << expected << "\ngot: " << error;
    }
}

TEST(Registries, AnErrorInADropInNamesTheDropIn) {
    test::TempDir tmp;
    write(tmp / "registries.toml", "default_registry = \"docker.io\"\n");
    write(tmp / "registries.toml.d/10-bad.toml", "[[registry]]\nprefix = \"ok.io\"\nblokced = true\n");
    EXPECT_NE(load_error(tmp).find(tmp / "registries.toml.d/10-bad.toml:3:1: unknown key 'blokced'"),
              std::string::npos)
        << load_error(tmp);
}

TEST(Registries, NormalizesDockerHubAliasesInPrefixes) {
    test::TempDir tmp;
    write(tmp / "registries.toml",
          "[[registry]]\nprefix = \"index.docker.io\"\n[[registry.mirror]]\nlocation = \"m.local\"\n");
    auto config = load_registries(RegistriesSearchPath{{tmp.path()}});
    ASSERT_TRUE(config) << config.error().what();
    auto eps = endpoints_for(qualified("nginx", *config), *config);
    ASSERT_TRUE(eps) << eps.error().what();
    ASSERT_EQ(eps->size(), 2u) << "index.docker.io is docker.io: the mirror applies";
    EXPECT_EQ((*eps)[0].host, "m.local");
}

TEST(Endpoints, DockerHubGoesToRegistry1WithOrWithoutAnEntry) {
    RegistriesConfig config;
    auto eps = endpoints_for(qualified("nginx:1.27", config), config);
    ASSERT_TRUE(eps);
    ASSERT_EQ(eps->size(), 1u);
    EXPECT_EQ((*eps)[0].host, "registry-1.docker.io");
    EXPECT_EQ((*eps)[0].path, "library/nginx");
    EXPECT_EQ((*eps)[0].base_url(), "https://registry-1.docker.io");
    EXPECT_FALSE((*eps)[0].mirror);

    // An entry for docker.io that only adds a mirror must not send the rest to "docker.io".
    config.registries.push_back(
        RegistryEntry{"docker.io", "docker.io", false, false, {{"mirror.local:5000", true}}});
    eps = endpoints_for(qualified("nginx:1.27", config), config);
    ASSERT_TRUE(eps);
    ASSERT_EQ(eps->size(), 2u);
    EXPECT_EQ((*eps)[0].host, "mirror.local:5000");
    EXPECT_EQ((*eps)[0].path, "library/nginx");
    EXPECT_TRUE((*eps)[0].mirror);
    EXPECT_EQ((*eps)[0].base_url(), "http://mirror.local:5000");
    EXPECT_EQ((*eps)[1].host, "registry-1.docker.io");
    EXPECT_FALSE((*eps)[1].mirror);
}

TEST(Endpoints, TheLongestPrefixOnAPathBoundaryWins) {
    RegistriesConfig config;
    config.registries = {
        RegistryEntry{"quay.io", "quay.io", false, false, {}},
        RegistryEntry{"quay.io/team",
                      "internal.local/quay-team",
                      true,
                      false,
                      {{"m1.local/a", false}, {"m2.local", false}}},
        RegistryEntry{"quay.io/team/secret", "quay.io/team/secret", false, true, {}},
    };
    auto eps = endpoints_for(qualified("quay.io/team/app:v1", config), config);
    ASSERT_TRUE(eps) << eps.error().what();
    ASSERT_EQ(eps->size(), 3u);
    EXPECT_EQ((*eps)[0].host, "m1.local");
    EXPECT_EQ((*eps)[0].path, "a/app") << "the location's path replaces the prefix";
    EXPECT_EQ((*eps)[1].host, "m2.local");
    EXPECT_EQ((*eps)[1].path, "app");
    EXPECT_EQ((*eps)[2].host, "internal.local");
    EXPECT_EQ((*eps)[2].path, "quay-team/app");
    EXPECT_TRUE((*eps)[2].insecure);

    eps = endpoints_for(qualified("quay.io/teams/app", config), config);
    ASSERT_TRUE(eps);
    ASSERT_EQ(eps->size(), 1u) << "quay.io/team is no prefix of quay.io/teams";
    EXPECT_EQ((*eps)[0].host, "quay.io");
    EXPECT_EQ((*eps)[0].path, "teams/app");

    eps = endpoints_for(qualified("quay.io/team/secret/x", config), config);
    ASSERT_FALSE(eps);
    EXPECT_EQ(eps.error().code, EACCES);
    EXPECT_NE(eps.error().what().find("'quay.io/team/secret' is blocked"), std::string::npos)
        << eps.error().what();

    eps = endpoints_for(qualified("ghcr.io/x/y", config), config);
    ASSERT_TRUE(eps);
    EXPECT_EQ((*eps)[0].host, "ghcr.io");
    EXPECT_EQ((*eps)[0].path, "x/y");
}

TEST(Endpoints, TakesCasAndClientPairsFromCertsD) {
    test::TempDir tmp;
    RegistriesConfig config;
    config.certs_dir = tmp / "certs.d";
    write(tmp / "certs.d/reg.local:5000/ca.crt", "ca");
    write(tmp / "certs.d/reg.local:5000/b-extra.crt", "ca2");
    write(tmp / "certs.d/reg.local:5000/client.cert", "cert");
    write(tmp / "certs.d/reg.local:5000/client.key", "key");
    write(tmp / "certs.d/reg.local:5000/notes.txt", "x");
    auto eps = endpoints_for(qualified("reg.local:5000/app", config), config);
    ASSERT_TRUE(eps) << eps.error().what();
    const TlsFiles& tls = (*eps)[0].tls;
    ASSERT_EQ(tls.ca_files.size(), 2u);
    EXPECT_EQ(tls.ca_files[0], tmp / "certs.d/reg.local:5000/b-extra.crt");
    EXPECT_EQ(tls.ca_files[1], tmp / "certs.d/reg.local:5000/ca.crt");
    EXPECT_EQ(tls.client_cert, tmp / "certs.d/reg.local:5000/client.cert");
    EXPECT_EQ(tls.client_key, tmp / "certs.d/reg.local:5000/client.key");

    auto other = endpoints_for(qualified("other.local/app", config), config);
    ASSERT_TRUE(other);
    EXPECT_TRUE((*other)[0].tls.ca_files.empty());
    EXPECT_EQ((*other)[0].tls.client_cert, "");

    // A certificate without its key (or a key without its certificate) is a mistake to report, as
    // Docker does, not a client certificate silently left out.
    write(tmp / "certs.d/half.local/client.cert", "cert");
    auto half = endpoints_for(qualified("half.local/app", config), config);
    ASSERT_FALSE(half);
    EXPECT_NE(half.error().what().find("client.cert"), std::string::npos) << half.error().what();
    EXPECT_NE(half.error().what().find("client.key"), std::string::npos) << half.error().what();
    write(tmp / "certs.d/key.local/client.key", "key");
    EXPECT_FALSE(endpoints_for(qualified("key.local/app", config), config));
}

TEST(Registries, TheShippedExampleLoadsAndResolves) {
    test::TempDir tmp;
    auto text = read_file(test::source_root() + "/configs/registries.toml");
    ASSERT_TRUE(text) << text.error().what();
    write(tmp / "registries.toml", *text);
    auto config = load_registries(RegistriesSearchPath{{tmp.path()}});
    ASSERT_TRUE(config) << config.error().what();
    EXPECT_EQ(config->registries.size(), 4u);
    auto eps = endpoints_for(qualified("nginx", *config), *config);
    ASSERT_TRUE(eps) << eps.error().what();
    ASSERT_EQ(eps->size(), 2u);
    EXPECT_EQ((*eps)[0].base_url() + "/" + (*eps)[0].path,
              "http://mirror.internal:5000/dockerhub/library/nginx");
    EXPECT_EQ((*eps)[1].base_url() + "/" + (*eps)[1].path, "https://registry-1.docker.io/library/nginx");
    EXPECT_FALSE(endpoints_for(qualified("quay.io/untrusted/x", *config), *config));
}
