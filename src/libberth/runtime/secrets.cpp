#include "runtime/secrets.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "basic/fs-util.h"
#include "basic/program.h"
#include "basic/string-util.h"

namespace berth::runtime {

namespace {

Result<std::string> from_credentials_directory(const std::string& id, std::string_view why_missing) {
    const char* dir = std::getenv("CREDENTIALS_DIRECTORY");
    if (!dir || !*dir) return fail(ENOENT, "$CREDENTIALS_DIRECTORY is not set ({})", why_missing);
    std::string path = path_join(dir, id);
    return BERTH_TRY_CTX(read_file(path), fmt::format("read '{}'", path));
}

Result<std::string> read_secret(const config::Secret& s, bool systemd) {
    if (systemd)
        return from_credentials_directory(s.name,
                                          "the unit has no LoadCredential= line for it: run 'systemctl "
                                          "daemon-reload' after changing the declaration");
    switch (s.kind) {
        case config::SecretSource::File:
            return BERTH_TRY_CTX(read_file(s.source), fmt::format("read '{}'", s.source));
        case config::SecretSource::Encrypted:
            // The name is checked against the one given at encryption, as LoadCredentialEncrypted=
            // does under systemd.
            return BERTH_TRY_CTX(run_program({"systemd-creds", "decrypt", "--name=" + s.name, s.source, "-"}),
                                 fmt::format("decrypt '{}'", s.source));
        case config::SecretSource::Credential:
            return from_credentials_directory(s.source,
                                              "a host credential reaches `berth run` only in a unit that "
                                              "passes it, e.g. with LoadCredential=");
    }
    return fail(EINVAL, "unknown secret source");
}

}  // namespace

Result<std::vector<SecretValue>> read_secrets(const config::Declaration& decl, bool systemd) {
    std::vector<SecretValue> out;
    for (const auto& s : decl.secrets) {
        std::string value = BERTH_TRY_CTX(read_secret(s, systemd), fmt::format("secret '{}'", s.name));
        out.push_back(SecretValue{s, std::move(value)});
    }
    return out;
}

void forget_secret_strings(std::vector<std::string>& strings) {
    for (auto& s : strings) ::explicit_bzero(s.data(), s.size());
    strings.clear();
}

void forget_secrets(std::vector<SecretValue>& secrets) {
    for (auto& s : secrets) ::explicit_bzero(s.value.data(), s.value.size());
    secrets.clear();
}

Result<ListenFds> take_listen_fds() {
    ListenFds out;
    const char* pid = std::getenv("LISTEN_PID");
    const char* count = std::getenv("LISTEN_FDS");
    if (!pid || !count) return out;
    // Meant for another process (a parent that did not unset them): not ours to take.
    auto listen_pid = parse_unsigned(pid);
    if (!listen_pid || *listen_pid != static_cast<uint64_t>(::getpid())) return out;
    auto n = parse_unsigned(count);
    if (!n || *n > 1024) return fail(EINVAL, "$LISTEN_FDS = '{}' is not a number of file descriptors", count);
    if (const char* names = std::getenv("LISTEN_FDNAMES")) out.names = names;
    for (int fd = 3; fd < 3 + static_cast<int>(*n); ++fd) {
        if (::fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
            return fail_errno("$LISTEN_FDS = {}: file descriptor {} is not open", *n, fd);
        out.fds.push_back(fd);
    }
    ::unsetenv("LISTEN_PID");
    ::unsetenv("LISTEN_FDS");
    ::unsetenv("LISTEN_FDNAMES");
    return out;
}

void order_listen_fds(ListenFds& listen, const std::vector<std::string>& order) {
    auto names = split(listen.names, ':', true);
    if (names.size() != listen.fds.size() || names.size() < 2) return;
    auto rank = [&](const std::string& name) {
        return static_cast<size_t>(std::find(order.begin(), order.end(), name) - order.begin());
    };
    std::vector<size_t> index(names.size());
    for (size_t i = 0; i < index.size(); ++i) index[i] = i;
    std::stable_sort(index.begin(), index.end(),
                     [&](size_t a, size_t b) { return rank(names[a]) < rank(names[b]); });
    ListenFds sorted;
    std::vector<std::string> sorted_names;
    for (size_t i : index) {
        sorted.fds.push_back(listen.fds[i]);
        sorted_names.push_back(names[i]);
    }
    sorted.names = join(sorted_names, ":");
    listen = std::move(sorted);
}

}  // namespace berth::runtime
