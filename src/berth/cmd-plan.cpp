// berth plan [--output DIR]: what the generator would write now versus what DIR (default: systemd's
// generator directory) holds: new, changed (unified diff) and removed berth files. For
// provisioning tools: exit 0 = nothing would change, 2 = changes, 1 = error.
//
// Only berth's own files are compared (berth@*.service, their .wants/.requires links, berth/*):
// the directory is shared with every other generator.
#include <dirent.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <map>

#include "basic/fs-util.h"
#include "basic/process-util.h"
#include "bus/storage.h"
#include "cdi/cdi.h"
#include "command.h"
#include "config/config.h"
#include "config/unit.h"
#include "container-view.h"

extern char** environ;

namespace berth::cli {

namespace {

bool is_berth_unit(std::string_view name) {
    return name.rfind("berth@", 0) == 0 && name.size() > 14 && name.substr(name.size() - 8) == ".service";
}

bool ends_with(std::string_view s, std::string_view suffix) {
    return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

std::vector<std::string> entries(const std::string& dir) {
    std::vector<std::string> out;
    DIR* d = ::opendir(dir.c_str());
    if (!d) return out;
    while (auto* e = ::readdir(d))
        if (e->d_name[0] != '.') out.emplace_back(e->d_name);
    ::closedir(d);
    return out;
}

// Relative path -> content ("-> TARGET" for symlinks) of berth's files under `root`.
std::map<std::string, std::string> berth_files(const std::string& root) {
    std::map<std::string, std::string> out;
    for (const auto& name : entries(root)) {
        std::string path = path_join(root, name);
        struct stat st;
        if (::lstat(path.c_str(), &st) != 0) continue;
        if (S_ISREG(st.st_mode) && is_berth_unit(name)) {
            if (auto text = read_file(path)) out[name] = *text;
        } else if (S_ISDIR(st.st_mode) && name == "berth") {
            for (const auto& file : entries(path))
                if (auto text = read_file(path_join(path, file))) out["berth/" + file] = *text;
        } else if (S_ISDIR(st.st_mode) && (ends_with(name, ".wants") || ends_with(name, ".requires"))) {
            for (const auto& link : entries(path)) {
                if (!is_berth_unit(link)) continue;
                char target[4096];
                ssize_t n = ::readlink(path_join(path, link).c_str(), target, sizeof target - 1);
                if (n < 0) continue;
                out[name + "/" + link] = "-> " + std::string(target, static_cast<size_t>(n)) + "\n";
            }
        }
    }
    return out;
}

void print_diff(const std::string& rel, const std::string& old_text, const std::string& new_text,
                const std::string& scratch) {
    std::string a = path_join(scratch, ".plan-old"), b = path_join(scratch, ".plan-new");
    if (!write_file(a, old_text) || !write_file(b, new_text)) return;
    std::fflush(stdout);
    std::string la = "a/" + rel, lb = "b/" + rel;
    const char* argv[] = {"diff",     "-u",      "--label", la.c_str(), "--label",
                          lb.c_str(), a.c_str(), b.c_str(), nullptr};
    pid_t pid;
    if (posix_spawnp(&pid, "diff", nullptr, nullptr, const_cast<char**>(argv), environ) != 0) {
        std::printf("--- a/%s\n+++ b/%s\n(diff(1) is not available)\n", rel.c_str(), rel.c_str());
        return;
    }
    (void)wait_for_pid(pid, "diff");
}

// A pinned declaration (berth/NAME.toml, canonical TOML) whose image reference or pull policy
// changed gets one line before its diff: "container web: image 'a' -> 'b'".
void print_image_reference_change(const std::string& rel, const std::string& old_text,
                                  const std::string& new_text) {
    if (rel.rfind("berth/", 0) != 0 || !ends_with(rel, ".toml")) return;
    std::string name = rel.substr(6, rel.size() - 11);
    auto before = config::parse_declaration(name, config::SourceText{rel, old_text});
    auto after = config::parse_declaration(name, config::SourceText{rel, new_text});
    if (!before || !after) return;
    std::string change = config::describe_image_change(*before, *after);
    if (!change.empty()) std::printf("container %s: %s\n", name.c_str(), change.c_str());
}

// What the next start of each persistent image container does about an image that changed
// (issue #15 item 1: never silent). Recreating is a change (counted); keeping is said, not
// counted. The store is asked through berthd (bus, else a private one); unreachable: one note.
int print_image_changes() {
    auto set = config::load_all(config::SearchPaths::system());
    bool any_image = false;
    for (const auto& [_, d] : set.by_name) any_image = any_image || (d && !d->image.empty() && !d->ephemeral);
    if (!any_image) return 0;
    auto storage = bus::open_storage();
    if (!storage) {
        std::fprintf(stderr, "berth plan: image changes not checked (store: %s)\n",
                     storage.error().what().c_str());
        return 0;
    }
    auto snapshots = (*storage)->list_containers();
    if (!snapshots) return 0;
    int changes = 0;
    for (const auto& [name, d] : set.by_name) {
        if (!d) continue;
        for (const auto& s : *snapshots) {
            if (s.name != name) continue;
            auto note = image_change_note(*d, s, **storage);
            if (note.empty()) continue;
            std::printf("container %s: %s\n", name.c_str(), note.c_str());
            if (d->on_image_change == config::OnImageChange::Recreate) ++changes;
        }
    }
    return changes;
}

}  // namespace

void register_plan(CLI::App& app, CommandContext& ctx) {
    struct Options {
        std::string output = "/run/systemd/generator";
        std::string bindir;
    };
    auto options = std::make_shared<Options>();
    auto* sub =
        app.add_subcommand("plan", "Show what the generator would change (exit 0: nothing, 2: changes)");
    sub->add_option("--output,-o", options->output, "generator output directory to compare with")
        ->capture_default_str();
    sub->add_option("--bindir", options->bindir, "directory of the berth binary used in ExecStart=");
    sub->callback([&ctx, options] {
        char tmpl[] = "/tmp/berth-plan-XXXXXX";
        if (!::mkdtemp(tmpl)) {
            ctx.exit_code = report_error("plan", "cannot create a scratch directory");
            return;
        }
        std::string scratch = tmpl;
        std::string out = path_join(scratch, "out");
        config::UnitOptions unit_options;
        unit_options.bindir = options->bindir;
        unit_options.cdi_device_allow = cdi::device_allow_entries;
        unit_options.pinned_dir = path_join(options->output, "berth");
        auto report = config::generate(config::SearchPaths::system(), out, unit_options);
        if (!report) {
            (void)remove_tree(scratch);
            ctx.exit_code = report_error("plan", report.error().what());
            return;
        }
        for (const auto& error : report->errors) std::fprintf(stderr, "%s\n", error.c_str());
        auto wanted = berth_files(out);
        auto current = berth_files(options->output);
        int changes = 0;
        for (const auto& [rel, text] : wanted) {
            auto it = current.find(rel);
            if (it == current.end()) {
                std::printf("new: %s\n", rel.c_str());
                ++changes;
            } else if (it->second != text) {
                std::printf("changed: %s\n", rel.c_str());
                print_image_reference_change(rel, it->second, text);
                print_diff(rel, it->second, text, scratch);
                ++changes;
            }
        }
        for (const auto& [rel, text] : current)
            if (!wanted.count(rel)) {
                std::printf("removed: %s\n", rel.c_str());
                ++changes;
            }
        changes += print_image_changes();
        std::fflush(stdout);
        (void)remove_tree(scratch);
        ctx.exit_code = changes ? 2 : 0;
    });
}

}  // namespace berth::cli
