// A real registry for the pull tests: Debian's docker-registry (CNCF distribution) on 127.0.0.1
// with a free port and a config this fixture writes (plain HTTP, htpasswd Basic auth, TLS with a
// CA made here, or token auth with token-issuer.py), killed and reaped on destruction even when a test fails.
// Images are pushed with skopeo from the store's test images (tests/lib/make-test-images.sh).
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "../store/store-fixture.h"
#include "basic/fs-util.h"
#include "basic/string-util.h"
#include "registry/registries.h"
#include "store/store.h"
#include "test-util.h"

namespace berth::registry::test {

using berth::store::test::capture;
using berth::store::test::run;

inline int free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) < 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) < 0) {
        if (fd >= 0) ::close(fd);
        return -1;
    }
    ::close(fd);
    return ntohs(a.sin_port);
}

inline bool port_open(int port) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    if (fd >= 0) ::close(fd);
    return ok;
}

// A child process killed (SIGKILL) and reaped on destruction.
class Child {
public:
    Child() = default;
    // Runs argv with stdout and stderr appended to `log`.
    bool start(const std::vector<std::string>& argv, const std::string& log) {
        pid_ = ::fork();
        if (pid_ < 0) return false;
        if (pid_ == 0) {
            int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
            if (fd >= 0) {
                ::dup2(fd, 1);
                ::dup2(fd, 2);
            }
            std::vector<char*> args;
            for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
            args.push_back(nullptr);
            ::execvp(args[0], args.data());
            ::_exit(127);
        }
        return true;
    }
    ~Child() { stop(); }
    void stop() {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
            pid_ = -1;
        }
    }
    Child(const Child&) = delete;
    Child& operator=(const Child&) = delete;

private:
    pid_t pid_ = -1;
};

enum class RegistryAuth { None, Basic, Token };

class Registry {
public:
    // `tls`: serve HTTPS with a certificate for 127.0.0.1 signed by a CA made here (ca()).
    // Token auth: the issuer answers `expires_in` and names the JWT field `token_field`
    // ("token" or "access_token").
    explicit Registry(RegistryAuth auth = RegistryAuth::None, bool tls = false, int token_expires_in = 300,
                      const std::string& token_field = "token")
        : auth_(auth), tls_(tls) {
        port_ = free_port();
        if (port_ <= 0) return;
        std::string cfg =
            "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\n"
            "storage:\n  filesystem:\n    rootdirectory: " +
            dir_ / "data" + "\n  delete:\n    enabled: true\n" +
            "http:\n  addr: 127.0.0.1:" + std::to_string(port_) + "\n";
        if (tls) {
            if (!make_certs()) return;
            cfg += "  tls:\n    certificate: " + dir_ / "server.crt" + "\n    key: " + dir_ / "server.key" +
                   "\n";
        }
        if (auth == RegistryAuth::Basic) {
            if (run("htpasswd -Bbn " + user() + " " + password() + " > " + dir_ / "htpasswd") != 0) return;
            cfg += "auth:\n  htpasswd:\n    realm: berth-test\n    path: " + dir_ / "htpasswd" + "\n";
        }
        if (auth == RegistryAuth::Token) {
            // The issuer (token-issuer.py) signs with token.key; the registry trusts token.crt.
            issuer_port_ = free_port();
            if (issuer_port_ <= 0 ||
                run("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=berth-test-issuer -keyout " +
                    dir_ / "token.key" + " -out " + dir_ / "token.crt" + " >/dev/null 2>&1") != 0)
                return;
            if (!issuer_.start(
                    {"python3", berth::test::source_root() + "/tests/privileged/registry/token-issuer.py",
                     std::to_string(issuer_port_), dir_ / "token.key", dir_ / "token.crt", issuer_log(),
                     std::to_string(token_expires_in), token_field},
                    dir_ / "issuer.out"))
                return;
            cfg += "auth:\n  token:\n    realm: http://127.0.0.1:" + std::to_string(issuer_port_) +
                   "/token\n    service: berth-test-registry\n    issuer: berth-test-issuer\n"
                   "    rootcertbundle: " +
                   dir_ / "token.crt" + "\n";
        }
        if (!write_file(dir_ / "config.yml", cfg)) return;
        if (!child_.start({"docker-registry", "serve", dir_ / "config.yml"}, log())) return;
        for (int i = 0; i < 200 && !port_open(port_); ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(25));
        ready_ = port_open(port_);
        if (auth == RegistryAuth::Token) {
            // python3 can take seconds to start on a loaded machine (a pyenv shim, 2 CPUs shared).
            for (int i = 0; i < 1200 && !port_open(issuer_port_); ++i)
                std::this_thread::sleep_for(std::chrono::milliseconds(25));
            ready_ = ready_ && port_open(issuer_port_);
        }
    }
    // One line per token request: "token user=NAME|- scope=... auth=basic|none".
    std::string issuer_log() const { return dir_ / "issuer.log"; }
    bool ok() const { return ready_; }
    // The registry goes away (a host that cannot reach it).
    void stop() { child_.stop(); }
    std::string host() const { return "127.0.0.1:" + std::to_string(port_); }
    std::string log() const { return dir_ / "registry.log"; }
    std::string dir() const { return dir_.path(); }
    std::string ca() const { return dir_ / "ca.crt"; }
    static std::string user() { return "berth"; }
    static std::string password() { return "s3cret-pw"; }

    // skopeo copy SRC docker://host/REPO; `extra` are skopeo flags (--format v2s2, compression).
    bool push(const std::string& src, const std::string& repo, const std::string& extra = "") {
        std::string creds = auth_ == RegistryAuth::None ? "" : " --dest-creds " + user() + ":" + password();
        std::string tlsflag = tls_ ? " --dest-cert-dir " + dir_ / "push-certs" : " --dest-tls-verify=false";
        return run("skopeo copy -q" + tlsflag + creds + " " + extra + " " + src + " docker://" + host() +
                   "/" + repo + " >&2") == 0;
    }
    // Requests for manifests seen in the access log ("GET /v2/<repo>/manifests/...").
    int manifest_gets(const std::string& repo) const {
        std::string out = capture("grep -c '\"GET /v2/" + repo + "/manifests/' " + log() + " || true");
        return std::atoi(out.c_str());
    }
    int blob_gets(const std::string& repo) const {
        std::string out = capture("grep -c '\"GET /v2/" + repo + "/blobs/' " + log() + " || true");
        return std::atoi(out.c_str());
    }

private:
    bool make_certs() {
        std::string d = dir_.path();
        std::string ext = d + "/san.ext";
        if (!write_file(ext, "subjectAltName=IP:127.0.0.1\n")) return false;
        std::string q = " >/dev/null 2>&1";
        return run("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=berth-test-ca -keyout " + d +
                   "/ca.key -out " + d + "/ca.crt" + q) == 0 &&
               run("openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout " + d +
                   "/server.key -out " + d + "/server.csr" + q) == 0 &&
               run("openssl x509 -req -in " + d + "/server.csr -CA " + d + "/ca.crt -CAkey " + d +
                   "/ca.key -CAcreateserial -days 2 -extfile " + ext + " -out " + d + "/server.crt" + q) ==
                   0 &&
               run("mkdir -p " + d + "/push-certs && cp " + d + "/ca.crt " + d + "/push-certs/ca.crt") == 0;
    }
    static bool write_file(const std::string& p, const std::string& s) {
        return berth::write_file(p, s).has_value();
    }

    RegistryAuth auth_;
    bool tls_;
    berth::test::TempDir dir_{"berth-registry"};
    int port_ = -1;
    Child child_, issuer_;
    int issuer_port_ = -1;
    bool ready_ = false;
};

// hostile-registry.py on a free port: one small image under many repository names, each name a
// way to misbehave (the script's header lists them). Every request is logged with its Range
// header; slow/* answers wait for open_gate().
class HostileRegistry {
public:
    HostileRegistry() {
        port_ = free_port();
        if (port_ <= 0) return;
        std::string script = berth::test::source_root() + "/tests/privileged/registry/hostile-registry.py";
        if (!child_.start({"python3", script, std::to_string(port_), log(), gate(), dir_ / "digests.json"},
                          dir_ / "stderr.log"))
            return;
        // It builds its blobs first (a second of CPU; more on a loaded machine).
        for (int i = 0; i < 1200 && !(berth::path_exists(dir_ / "digests.json") && port_open(port_)); ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        ready_ = port_open(port_);
    }
    bool ok() const { return ready_; }
    std::string host() const { return "127.0.0.1:" + std::to_string(port_); }
    std::string log() const { return dir_ / "requests.log"; }
    std::string gate() const { return dir_ / "gate"; }
    std::string stderr_log() const { return capture("cat " + dir_ / "stderr.log"); }
    void open_gate() const { (void)berth::write_file(gate(), ""); }
    // "layer", "bomb" or "manifest:<repo>" (from the script's digests.json).
    std::string digest(const std::string& key) const {
        if (digests_.empty())
            if (auto text = berth::read_file(dir_ / "digests.json"))
                digests_ = nlohmann::json::parse(*text, nullptr, false);
        return digests_.is_object() ? digests_.value(key, "") : "";
    }
    // Lines of the request log that contain `text`.
    std::vector<std::string> requests(const std::string& text) const {
        std::vector<std::string> out;
        auto all = berth::read_file(log());
        if (!all) return out;
        for (auto& line : berth::split(*all, '\n'))
            if (line.find(text) != std::string::npos) out.push_back(line);
        return out;
    }
    // Waits (polls) until the log has a line containing `text`.
    bool wait_for(const std::string& text, int timeout_ms = 30000) const {
        for (int waited = 0; waited < timeout_ms; waited += 20) {
            if (!requests(text).empty()) return true;
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        return false;
    }

private:
    berth::test::TempDir dir_{"berth-hostile"};
    int port_ = -1;
    Child child_;
    bool ready_ = false;
    mutable nlohmann::json digests_;
};

// A test with a real store on a tmpfs (store_ at root_), the test images (images_) and a
// registries config for a fixture registry (config_for), for the pull and push tests.
class RegistryTest : public ::testing::Test {
protected:
    void SetUp() override {
        if (::geteuid() != 0) GTEST_SKIP() << "needs root (mounts a tmpfs for the store)";
        images_ = store::test::test_images();
        ASSERT_FALSE(images_.empty()) << "make-test-images.sh failed";
        ASSERT_TRUE(root_.ok());
        auto s = store::Store::open(root_.options());
        ASSERT_TRUE(s) << s.error().message;
        store_ = std::move(*s);
    }

    RegistriesConfig config_for(const Registry& r, bool insecure = true) {
        RegistriesConfig c;
        c.registries.push_back({r.host(), r.host(), insecure, false, {}});
        c.certs_dir = tmp_ / "certs.d";
        c.auth_file = tmp_ / "auth.json";
        return c;
    }

    std::string images_;
    store::test::StoreRoot root_{"overlay"};
    berth::test::TempDir tmp_{"berth-registry-test"};
    std::unique_ptr<store::Store> store_;
};

}  // namespace berth::registry::test
