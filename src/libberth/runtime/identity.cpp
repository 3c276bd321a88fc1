#include "runtime/identity.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "basic/fs-util.h"
#include "basic/string-util.h"

namespace berth::runtime {

namespace {

struct Entry {
    std::vector<std::string> fields;
};

std::vector<Entry> parse_colon_file(const std::string& text) {
    std::vector<Entry> out;
    for (const auto& line : split(text, '\n')) {
        if (line.empty() || line[0] == '#') continue;
        out.push_back(Entry{split(line, ':', true)});
    }
    return out;
}

// A uid or gid from the container's files: uid_t(-1) means "leave unchanged" to setresuid and
// setgroups refuses it, and anything wider than 32 bits would be truncated (2^32 becomes root).
std::optional<unsigned long long> parse_id(std::string_view text) {
    auto n = parse_unsigned(text);
    if (n && *n > 0xfffffffeULL) return std::nullopt;
    return n;
}

const char* file_type_name(mode_t mode) {
    switch (mode & S_IFMT) {
        case S_IFIFO:
            return "a FIFO";
        case S_IFSOCK:
            return "a socket";
        case S_IFCHR:
            return "a character device";
        case S_IFBLK:
            return "a block device";
        case S_IFDIR:
            return "a directory";
        default:
            return "not a regular file";
    }
}

}  // namespace

Result<std::string> read_container_file(int root_fd, const std::string& path) {
    constexpr size_t kLimit = 16u << 20;
    auto node = open_in_root(root_fd, path, O_PATH);
    if (!node) {
        if (node.error().code == ENOENT) return std::string();
        return fail(node.error().wrap("container's file"));
    }
    struct stat st {};
    if (::fstat(node->get(), &st) < 0) return fail_errno("stat container's '{}'", path);
    if (!S_ISREG(st.st_mode))
        return fail(EINVAL, "container's '{}' is {}, not a regular file", path, file_type_name(st.st_mode));
    // Reopen the very inode just checked (an O_PATH fd pins it; the path may change meanwhile).
    UniqueFd fd(::open(fd_path(node->get()).c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
    if (!fd) return fail_errno("open container's '{}'", path);
    if (static_cast<uint64_t>(st.st_size) > kLimit) return fail(EFBIG, "container's '{}' is too large", path);
    std::string out;
    char buf[8192];
    for (;;) {
        ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return fail_errno("read container's '{}'", path);
        if (n == 0) break;
        out.append(buf, static_cast<size_t>(n));
        if (out.size() > kLimit) return fail(EFBIG, "container's '{}' is too large", path);
    }
    return out;
}

std::string user_spec_string(const config::UserSpec& spec) {
    if (spec.group.empty()) return spec.user;
    return spec.user + ":" + spec.group;
}

Result<Identity> resolve_identity(const std::string& user, const std::vector<std::string>& extra_groups,
                                  const std::string& passwd_text, const std::string& group_text) {
    auto passwd = parse_colon_file(passwd_text);
    auto groups = parse_colon_file(group_text);
    std::string user_part = user, group_part;
    if (auto colon = user.find(':'); colon != std::string::npos) {
        user_part = user.substr(0, colon);
        group_part = user.substr(colon + 1);
    }
    if (user_part.empty())
        user_part.assign(1, '0');  // not = "0": g++ 12 -Wrestrict false positive (PR 105329)

    Identity id;
    bool have_primary_gid = false;
    const Entry* pw = nullptr;
    auto numeric = parse_unsigned(user_part);
    for (const auto& e : passwd) {
        if (e.fields.size() < 7) continue;
        if (numeric ? (parse_unsigned(e.fields[2]) == numeric) : (e.fields[0] == user_part)) {
            pw = &e;
            break;
        }
    }
    if (numeric) {
        if (*numeric > 0xfffffffeULL) return fail(EINVAL, "invalid uid '{}'", user_part);
        id.uid = static_cast<uid_t>(*numeric);
    } else if (!pw) {
        return fail(ENOENT, "unknown user '{}' (not in the container's /etc/passwd)", user_part);
    }
    if (pw) {
        auto uid = parse_id(pw->fields[2]);
        auto gid = parse_id(pw->fields[3]);
        if (!uid || !gid) return fail(EINVAL, "malformed /etc/passwd entry for '{}'", pw->fields[0]);
        id.uid = static_cast<uid_t>(*uid);
        id.gid = static_cast<gid_t>(*gid);
        have_primary_gid = true;
        id.user_name = pw->fields[0];
        if (!pw->fields[5].empty()) id.home = pw->fields[5];
    }
    auto lookup_group = [&](const std::string& g) -> Result<gid_t> {
        if (auto n = parse_unsigned(g)) {
            if (*n > 0xfffffffeULL) return fail(EINVAL, "invalid gid '{}'", g);
            return static_cast<gid_t>(*n);
        }
        for (const auto& e : groups)
            if (e.fields.size() >= 3 && e.fields[0] == g) {
                if (auto n = parse_id(e.fields[2])) return static_cast<gid_t>(*n);
                return fail(EINVAL, "malformed /etc/group entry for '{}'", g);
            }
        return fail(ENOENT, "unknown group '{}' (not in the container's /etc/group)", g);
    };
    if (!group_part.empty()) {
        id.gid = BERTH_TRY(lookup_group(group_part));
        have_primary_gid = true;
    }
    if (!have_primary_gid) id.gid = 0;
    // Supplementary groups: the user's memberships in /etc/group, then the declared extras.
    if (!id.user_name.empty()) {
        for (const auto& e : groups) {
            if (e.fields.size() < 4) continue;
            for (const auto& member : split(e.fields[3], ','))
                if (member == id.user_name)
                    if (auto n = parse_id(e.fields[2])) id.groups.push_back(static_cast<gid_t>(*n));
        }
    }
    for (const auto& g : extra_groups) id.groups.push_back(BERTH_TRY(lookup_group(g)));
    std::sort(id.groups.begin(), id.groups.end());
    id.groups.erase(std::unique(id.groups.begin(), id.groups.end()), id.groups.end());
    return id;
}

}  // namespace berth::runtime
