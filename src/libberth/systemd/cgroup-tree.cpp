#include "systemd/cgroup-tree.h"

#include <dirent.h>

#include <algorithm>

#include "basic/fs-util.h"
#include "basic/string-util.h"

namespace berth::systemd {

namespace {

Result<CgroupNode> read_node(const std::string& dir, const std::string& rel, const std::string& proc_root) {
    CgroupNode node;
    node.path = rel;
    auto procs =
        BERTH_TRY_CTX(read_file(path_join(dir, "cgroup.procs")), fmt::format("read cgroup '{}'", rel));
    for (auto& line : split(procs, '\n')) {
        auto pid = parse_unsigned(trim(line));
        if (!pid) continue;
        node.pids.push_back(uint32_t(*pid));
        std::string cmd;
        if (auto c = read_file(fmt::format("{}/{}/cmdline", proc_root, *pid))) {
            cmd = *c;
            while (!cmd.empty() && cmd.back() == '\0') cmd.pop_back();
            std::replace(cmd.begin(), cmd.end(), '\0', ' ');
            // One line per process: newlines and tabs inside arguments become spaces.
            for (char& ch : cmd)
                if (ch == '\n' || ch == '\t' || ch == '\r') ch = ' ';
        }
        node.commands.push_back(std::move(cmd));
    }
    std::vector<std::string> subdirs;
    if (DIR* d = opendir(dir.c_str())) {
        while (struct dirent* de = readdir(d)) {
            std::string name = de->d_name;
            if (name == "." || name == ".." || de->d_type != DT_DIR) continue;
            subdirs.push_back(name);
        }
        closedir(d);
    }
    std::sort(subdirs.begin(), subdirs.end());
    for (auto& s : subdirs) {
        auto child = read_node(path_join(dir, s), rel == "/" ? "/" + s : rel + "/" + s, proc_root);
        if (child) node.children.push_back(std::move(*child));  // a cgroup may vanish meanwhile
    }
    return node;
}

void render(const CgroupNode& node, const std::string& prefix, std::vector<std::string>& out) {
    size_t total = node.pids.size() + node.children.size(), i = 0;
    for (size_t p = 0; p < node.pids.size(); ++p, ++i) {
        bool last = i + 1 == total;
        out.push_back(fmt::format("{}{}{} {}", prefix, last ? "└─" : "├─", node.pids[p],
                                  node.commands[p].empty() ? "(gone)" : node.commands[p]));
    }
    for (auto& child : node.children) {
        bool last = ++i == total;
        auto slash = child.path.rfind('/');
        out.push_back(fmt::format("{}{}{}", prefix, last ? "└─" : "├─", child.path.substr(slash + 1)));
        render(child, prefix + (last ? "  " : "│ "), out);
    }
}

}  // namespace

Result<CgroupNode> read_cgroup_tree(const std::string& cgroup_root, const std::string& control_group,
                                    const std::string& proc_root) {
    if (control_group.empty() || control_group[0] != '/')
        return fail(EINVAL, "invalid control group '{}'", control_group);
    return read_node(cgroup_root + (control_group == "/" ? "" : control_group), control_group, proc_root);
}

std::vector<std::string> render_cgroup_tree(const CgroupNode& root) {
    std::vector<std::string> out{fmt::format("CGroup: {}", root.path)};
    render(root, "  ", out);
    return out;
}

}  // namespace berth::systemd
