// A real registry for the pull tests: Debian's docker-registry (CNCF distribution) on 127.0.0.1
// with a free port and a config this fixture writes (plain HTTP, htpasswd Basic auth, TLS with a
// CA made here, or token auth), killed and reaped on destruction even when a test fails. Images
// are pushed with skopeo from the store's test images (tests/lib/make-test-images.sh).
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

#include "../store/store-fixture.h"
#include "basic/fs-util.h"
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
    explicit Registry(RegistryAuth auth = RegistryAuth::None, bool tls = false) : auth_(auth), tls_(tls) {
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
        if (!write_file(dir_ / "config.yml", cfg)) return;
        if (!child_.start({"docker-registry", "serve", dir_ / "config.yml"}, log())) return;
        for (int i = 0; i < 200 && !port_open(port_); ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(25));
        ready_ = port_open(port_);
    }
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
    Child child_;
    bool ready_ = false;
};

}  // namespace berth::registry::test
