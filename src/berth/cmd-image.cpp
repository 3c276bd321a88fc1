// berth image import|pull|push|list|inspect|rm|tag|export: the image store, through berthd when it is
// reachable on the system bus, otherwise embedded (see bus/storage.h).
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <map>

#include "basic/string-util.h"
#include "basic/unique.h"
#include "bus/storage.h"
#include "command.h"
#include "config/config.h"
#include "storage-cli.h"

namespace berth::cli {

Result<std::unique_ptr<bus::Storage>> open_storage_verbose(bool verbose) {
    const char* debug = std::getenv("BERTH_DEBUG");
    verbose |= debug && *debug && std::string_view(debug) != "0";
    auto storage = bus::open_storage();
    if (storage && verbose) {
        if ((*storage)->mode() == "bus")
            std::fprintf(stderr, "berth: using berthd on the system bus\n");
        else
            std::fprintf(stderr,
                         "berth: berthd not reachable on the bus; using a private berthd (embedded)\n");
    }
    return storage;
}

std::string human_size(uint64_t bytes) {
    const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = static_cast<double>(bytes);
    int u = 0;
    while (v >= 1024 && u < 4) v /= 1024, ++u;
    return u == 0 ? fmt::format("{} B", bytes) : fmt::format("{:.1f} {}", v, units[u]);
}

std::string short_id(const std::string& id) {
    std::string hex = id.rfind("sha256:", 0) == 0 ? id.substr(7) : id;
    return hex.substr(0, 12);
}

std::string format_time_usec(uint64_t usec) {
    if (usec == 0) return "-";
    time_t t = static_cast<time_t>(usec / 1000000);
    struct tm tm {};
    gmtime_r(&t, &tm);
    char buf[32];
    strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
    return buf;
}

namespace {

void print_json(const nlohmann::json& j) { std::printf("%s\n", j.dump(2).c_str()); }

// ---- import progress and cancellation ----
//
// The import runs in berthd (on the bus, or a private one when embedded); this process only waits. SIGINT and
// SIGTERM set a flag that the storage layer turns into Job.Cancel,
// then the import's real end is awaited so that "import cancelled" is only said once berthd has
// removed what it had staged. The handlers are one-shot (SA_RESETHAND): a second Ctrl-C kills
// the CLI at once; berthd still finishes the cancellation on its own.

std::atomic<bool> g_cancel{false};
std::atomic<int> g_cancel_signal{0};

void on_cancel_signal(int sig) {
    g_cancel_signal = sig;
    g_cancel = true;
}

class CancelOnSignals {
public:
    CancelOnSignals() {
        struct sigaction sa {};
        sa.sa_handler = on_cancel_signal;
        sa.sa_flags = SA_RESETHAND;  // no SA_RESTART: a blocking wait returns EINTR and looks at the flag
        sigemptyset(&sa.sa_mask);
        ::sigaction(SIGINT, &sa, &old_int_);
        ::sigaction(SIGTERM, &sa, &old_term_);
    }
    ~CancelOnSignals() {
        ::sigaction(SIGINT, &old_int_, nullptr);
        ::sigaction(SIGTERM, &old_term_, nullptr);
    }
    CancelOnSignals(const CancelOnSignals&) = delete;
    CancelOnSignals& operator=(const CancelOnSignals&) = delete;

private:
    struct sigaction old_int_ {
    }, old_term_{};
};

// Where progress goes: a line redrawn in place on a terminal; one plain final line on stderr when
// it is not a terminal; nothing with --json. BERTH_PROGRESS=tty|plain|lines|none overrides
// ("lines": one machine-readable line per change, for logs and tests).
class ProgressReporter {
public:
    enum class Mode { None, Tty, Plain, Lines };

    // `verb`: "import", "pull" or "push" (the lines say "import progress: ...", the terminal "Importing").
    ProgressReporter(bool json, std::string label, std::string verb = "import")
        : label_(std::move(label)), verb_(std::move(verb)) {
        const char* env = std::getenv("BERTH_PROGRESS");
        std::string_view e = env ? env : "";
        if (e == "tty")
            mode_ = Mode::Tty;
        else if (e == "plain")
            mode_ = Mode::Plain;
        else if (e == "lines")
            mode_ = Mode::Lines;
        else if (e == "none" || e == "0" || json)
            mode_ = Mode::None;
        else
            mode_ = ::isatty(STDERR_FILENO) ? Mode::Tty : Mode::Plain;
    }

    bus::ProgressFn fn() {
        if (mode_ == Mode::None) return {};
        return [this](double fraction, uint64_t bytes) { update(fraction, bytes); };
    }

    // A pull's layers: on a terminal one line per layer, redrawn in place above the total; plain
    // output says each layer's state change on a line of its own ("layer sha256:0123456789ab
    // (3.2 MiB): downloading"); "lines" mode the same as key=value.
    bus::LayersFn layers_fn() {
        if (mode_ == Mode::None) return {};
        return [this](const std::vector<bus::LayerStatus>& now) { update_layers(now); };
    }

    void update_layers(const std::vector<bus::LayerStatus>& now) {
        if (mode_ == Mode::Tty) {
            layers_ = now;
            update(fraction_, bytes_, true);
            return;
        }
        for (size_t i = 0; i < now.size(); ++i) {
            if (i < layers_.size() && layers_[i].digest == now[i].digest && layers_[i].state == now[i].state)
                continue;
            const auto& l = now[i];
            if (mode_ == Mode::Lines)
                std::fprintf(stderr, "%s layer: digest=%s state=%s done=%llu total=%llu\n", verb_.c_str(),
                             l.digest.c_str(), l.state.c_str(), static_cast<unsigned long long>(l.done),
                             static_cast<unsigned long long>(l.total));
            else
                std::fprintf(stderr, "layer %s (%s): %s\n", short_digest(l.digest).c_str(),
                             human_size(l.total).c_str(), l.state.c_str());
        }
        layers_ = now;
    }

    void update(double fraction, uint64_t bytes, bool force = false) {
        fraction_ = fraction;
        bytes_ = bytes;
        // Progress may arrive often: redraw at most ten times a second.
        auto now = std::chrono::steady_clock::now();
        if (!force && now - last_draw_ < std::chrono::milliseconds(100)) return;
        last_draw_ = now;
        if (mode_ == Mode::Tty && !layers_.empty()) {
            draw_block();
            return;
        }
        if (mode_ == Mode::Lines) {
            std::string line = fmt::format("{} progress: fraction={:.3f} bytes={}", verb_, fraction, bytes);
            if (line != last_) std::fprintf(stderr, "%s\n", line.c_str());
            last_ = std::move(line);
        } else if (mode_ == Mode::Tty) {
            std::string line = text();
            if (line != last_) std::fprintf(stderr, "\r\033[K%s", line.c_str());
            last_ = std::move(line);
            drawn_ = true;
        }
    }

    // The import ended (`ok`: it succeeded): finish the in-place line, or print the plain one.
    void finish(bool ok) {
        if (ok) fraction_ = 1.0;
        if (mode_ == Mode::Tty && !layers_.empty()) {
            draw_block();
            return;
        }
        if (mode_ == Mode::Tty && (drawn_ || ok)) std::fprintf(stderr, "\r\033[K%s\n", text().c_str());
        if (mode_ == Mode::Plain && ok) std::fprintf(stderr, "%s\n", text().c_str());
        if (mode_ == Mode::Lines && ok) update(1.0, bytes_, true);
    }

private:
    static std::string short_digest(const std::string& digest) { return digest.substr(0, 19); }

    // The layers and the total, each on its line, over what was drawn before.
    void draw_block() {
        std::string out;
        if (block_lines_ > 0) out += fmt::format("\033[{}F", block_lines_);  // up, to column 0
        for (const auto& l : layers_) {
            // A layer extracted while it still downloads shows its bytes coming too.
            bool arriving = l.state == "downloading" || l.state == "verifying" ||
                            (l.state == "extracting" && l.done < l.total);
            std::string size = arriving ? fmt::format("{} / {}", human_size(l.done), human_size(l.total))
                                        : human_size(l.total);
            out += fmt::format("\033[K{}  {:<11}  {}\n", short_digest(l.digest), l.state, size);
        }
        out += "\033[K" + text() + "\n";
        std::fputs(out.c_str(), stderr);
        block_lines_ = layers_.size() + 1;
        drawn_ = true;
    }

    std::string text() const {
        // While a pipe is read its size is unknown: only the bytes read so far mean something.
        std::string doing = verb_ == "pull" ? "Pulling" : verb_ == "push" ? "Pushing" : "Importing";
        if (fraction_ <= 0 && bytes_ > 0)
            return fmt::format("{} {}: {} read", doing, label_, human_size(bytes_));
        return fmt::format("{} {}: {:3.0f}%{}", doing, label_, fraction_ * 100,
                           bytes_ ? fmt::format(" ({})", human_size(bytes_)) : std::string());
    }

    Mode mode_ = Mode::None;
    std::string label_, verb_, last_;
    double fraction_ = 0;
    uint64_t bytes_ = 0;
    bool drawn_ = false;
    std::chrono::steady_clock::time_point last_draw_{};
    std::vector<bus::LayerStatus> layers_;
    size_t block_lines_ = 0;
};

struct ImageOptions {
    bool json = false, verbose = false, declared = false;
    std::string source, name, format, ref, new_name, output, platform;
    std::vector<std::string> refs;
};

// "Imported <id> as <names>" (or the image as JSON): the last words of an import or a pull.
int print_image_result(const ImageOptions& o, const bus::ImageInfo& image, const char* verb) {
    if (o.json)
        print_json(bus::to_json(image));
    else
        std::printf("%s %s%s%s\n", verb, image.id.c_str(), image.names.empty() ? "" : " as ",
                    join(image.names, ", ").c_str());
    return 0;
}

int do_import(ImageOptions& o) {
    if (!o.name.empty())
        if (auto v = bus::validate_image_name(o.name); !v)
            return report_error("image import", v.error().what());
    if (auto v = bus::validate_import_format(o.format); !v)
        return report_error("image import", v.error().what());
    UniqueFd fd;
    if (o.source == "-") {
        fd.reset(::fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 3));
    } else {
        // Opened here, with the caller's permissions: berthd only reads what we could read.
        fd.reset(::open(o.source.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
    }
    if (!fd)
        return report_error("image import", fmt::format("open '{}': {}", o.source, std::strerror(errno)));
    auto storage = open_storage_verbose(o.verbose);
    if (!storage) return report_error("image import", storage.error().what());
    ProgressReporter progress(o.json, o.name.empty() ? "'" + o.source + "'" : "'" + o.name + "'");
    Result<bus::ImageInfo> image = fail(EINVAL, "not started");
    {
        CancelOnSignals signals;
        image = (*storage)->import_image(fd.get(), o.format, o.name, progress.fn(), g_cancel);
    }
    progress.finish(static_cast<bool>(image));
    if (!image && g_cancel) {
        // Whatever the import's last error was, the user asked it to stop, and it has stopped.
        report_error("image import", "import cancelled");
        return 128 + (g_cancel_signal.load() ? g_cancel_signal.load() : SIGINT);
    }
    if (!image) return report_error("image import", fmt::format("'{}': {}", o.source, image.error().what()));
    return print_image_result(o, *image, "Imported");
}

// The pull runs in berthd as a job (PullImage), cancelled like an import on SIGINT/SIGTERM.
Result<bus::ImageInfo> pull_with_progress(bus::Storage& storage, const ImageOptions& o,
                                          const std::string& ref) {
    std::map<std::string, std::string> options;
    if (!o.platform.empty()) options["platform"] = o.platform;
    ProgressReporter progress(o.json, "'" + ref + "'", "pull");
    Result<bus::ImageInfo> image = fail(EINVAL, "not started");
    {
        CancelOnSignals signals;
        image = storage.pull_image(ref, options, progress.fn(), g_cancel, progress.layers_fn());
    }
    progress.finish(static_cast<bool>(image));
    return image;
}

int pull_cancelled() {
    report_error("image pull", "pull cancelled");
    return 128 + (g_cancel_signal.load() ? g_cancel_signal.load() : SIGINT);
}

int do_pull(ImageOptions& o) {
    auto storage = open_storage_verbose(o.verbose);
    if (!storage) return report_error("image pull", storage.error().what());
    auto image = pull_with_progress(**storage, o, o.ref);
    if (!image && g_cancel) return pull_cancelled();
    if (!image) return report_error("image pull", image.error().what());
    return print_image_result(o, *image, "Pulled");
}

// The push runs in berthd as a job (PushImage), cancelled like a pull. Prints the repository
// digest ("Pushed <image> to <repository>@sha256:...").
int do_push(ImageOptions& o) {
    auto storage = open_storage_verbose(o.verbose);
    if (!storage) return report_error("image push", storage.error().what());
    ProgressReporter progress(o.json, "'" + o.ref + "'", "push");
    Result<std::string> digest = fail(EINVAL, "not started");
    {
        CancelOnSignals signals;
        digest = (*storage)->push_image(o.ref, o.new_name, {}, progress.fn(), g_cancel);
    }
    progress.finish(static_cast<bool>(digest));
    if (!digest && g_cancel) {
        report_error("image push", "push cancelled");
        return 128 + (g_cancel_signal.load() ? g_cancel_signal.load() : SIGINT);
    }
    if (!digest) return report_error("image push", digest.error().what());
    if (o.json)
        print_json({{"image", o.ref}, {"reference", o.new_name}, {"repo_digest", *digest}});
    else
        std::printf("Pushed %s to %s\n", o.ref.c_str(), digest->c_str());
    return 0;
}

// `berth image pull --declared`: every registry image the declarations name, each once, so that
// a host is provisioned before its units start (a start would pull too, but one at a time and
// inside its unit's start). An invalid declaration is named on stderr and skipped (`berth
// validate` is where it is fixed); the status is 1 when a pull failed.
int do_pull_declared(ImageOptions& o) {
    std::map<std::string, std::vector<std::string>> wanted;  // reference -> the containers naming it
    for (const auto& [name, decl] : config::load_all(config::SearchPaths::system()).by_name) {
        if (!decl)
            std::fprintf(stderr, "berth image pull: skipping container '%s': %s\n", name.c_str(),
                         decl.error().what().c_str());
        else if (config::pulls_from_registry(*decl))
            wanted[decl->image].push_back(name);
    }
    auto results = nlohmann::json::array();
    int status = 0;
    std::unique_ptr<bus::Storage> storage;
    if (!wanted.empty()) {
        auto opened = open_storage_verbose(o.verbose);
        if (!opened) return report_error("image pull", opened.error().what());
        storage = std::move(*opened);
    }
    for (const auto& [ref, containers] : wanted) {
        auto image = pull_with_progress(*storage, o, ref);
        if (!image && g_cancel) return pull_cancelled();
        nlohmann::json entry{{"reference", ref}, {"containers", containers}};
        if (image) {
            entry["image"] = bus::to_json(*image);
            if (!o.json)
                std::printf("Pulled %s as %s (for %s)\n", image->id.c_str(), join(image->names, ", ").c_str(),
                            join(containers, ", ").c_str());
        } else {
            entry["error"] = image.error().what();
            status = report_error("image pull", image.error().what());
        }
        results.push_back(std::move(entry));
    }
    if (o.json)
        print_json(results);
    else if (wanted.empty())
        std::printf("No declaration names a registry image.\n");
    return status;
}

int do_list(ImageOptions& o) {
    auto storage = open_storage_verbose(o.verbose);
    if (!storage) return report_error("image list", storage.error().what());
    auto images = (*storage)->list_images();
    if (!images) return report_error("image list", images.error().what());
    if (o.json) {
        auto arr = nlohmann::json::array();
        for (auto& i : *images) arr.push_back(bus::to_json(i));
        print_json(arr);
        return 0;
    }
    std::vector<std::vector<std::string>> rows;
    for (auto& i : *images)
        rows.push_back({short_id(i.id), i.names.empty() ? "<none>" : join(i.names, ","), human_size(i.size),
                        format_time_usec(i.created_usec),
                        i.repo_digests.empty() ? "<none>" : join(i.repo_digests, ",")});
    std::fputs(render_table({"ID", "NAMES", "SIZE", "CREATED", "REPO DIGESTS"}, rows, {2}).c_str(), stdout);
    return 0;
}

int do_inspect(ImageOptions& o) {
    if (auto v = bus::validate_image_ref(o.ref); !v) return report_error("image inspect", v.error().what());
    auto storage = open_storage_verbose(o.verbose);
    if (!storage) return report_error("image inspect", storage.error().what());
    auto image = (*storage)->get_image(o.ref);
    if (!image) return report_error("image inspect", image.error().what());
    print_json(bus::to_json(*image));  // inspect output is JSON either way, like docker inspect
    return 0;
}

int do_rm(ImageOptions& o) {
    for (auto& ref : o.refs)
        if (auto v = bus::validate_image_ref(ref); !v) return report_error("image rm", v.error().what());
    auto storage = open_storage_verbose(o.verbose);
    if (!storage) return report_error("image rm", storage.error().what());
    // As docker rmi: a name is untagged, and the image is deleted only with its last name.
    int status = 0;
    auto results = nlohmann::json::array();
    for (auto& ref : o.refs) {
        auto r = (*storage)->remove_image(ref);
        if (!r) {
            status = report_error("image rm", fmt::format("'{}': {}", ref, r.error().what()));
            continue;
        }
        results.push_back({{"ref", ref},
                           {"untagged", r->untagged},
                           {"deleted", r->deleted.empty() ? nlohmann::json() : nlohmann::json(r->deleted)}});
        if (o.json) continue;
        for (auto& name : r->untagged) std::printf("Untagged: %s\n", name.c_str());
        if (!r->deleted.empty()) std::printf("Deleted: %s\n", r->deleted.c_str());
    }
    if (o.json) print_json({{"images", results}});
    return status;
}

int do_tag(ImageOptions& o) {
    if (auto v = bus::validate_image_ref(o.ref); !v) return report_error("image tag", v.error().what());
    if (auto v = bus::validate_image_name(o.new_name); !v) return report_error("image tag", v.error().what());
    auto storage = open_storage_verbose(o.verbose);
    if (!storage) return report_error("image tag", storage.error().what());
    if (auto r = (*storage)->tag_image(o.ref, o.new_name); !r)
        return report_error("image tag", r.error().what());
    auto image = (*storage)->get_image(o.new_name);
    if (o.json && image)
        print_json(bus::to_json(*image));
    else if (!o.json)
        std::printf("Tagged %s as %s\n", o.ref.c_str(), o.new_name.c_str());
    return 0;
}

int do_export(ImageOptions& o) {
    if (auto v = bus::validate_image_ref(o.ref); !v) return report_error("image export", v.error().what());
    UniqueFd fd;
    std::string tmp;
    if (o.output.empty() || o.output == "-") {
        if (::isatty(STDOUT_FILENO))
            return report_error("image export", "refusing to write an archive to a terminal (use -o FILE)");
        fd.reset(::fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3));
    } else {
        // Written next to the target and renamed at the end: no half archive under the real name.
        tmp = o.output + ".berth-tmp";
        fd.reset(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    }
    if (!fd)
        return report_error("image export", fmt::format("open '{}': {}", o.output, std::strerror(errno)));
    auto storage = open_storage_verbose(o.verbose);
    auto cleanup = [&] {
        if (!tmp.empty()) ::unlink(tmp.c_str());
    };
    if (!storage) return cleanup(), report_error("image export", storage.error().what());
    // SIGINT/SIGTERM cancel the export (Job.Cancel, or the in-process export's flag) and its end
    // is awaited; the temporary file goes, so no file that looks complete is left. On stdout
    // the reader gets a tar without its end-of-archive blocks, which tar reports as truncated.
    // A reader that closes the pipe early (`| head -c 100`) ends the export with a clear EPIPE
    // error and exit status 1, not a death by SIGPIPE: in-process the write fails with EPIPE,
    // through berthd the job does (issue #16). Only this command ignores the signal, so other
    // commands piped into head keep the usual quiet ending.
    Result<> r;
    {
        CancelOnSignals signals;
        struct sigaction ignore = {};
        struct sigaction old = {};
        ignore.sa_handler = SIG_IGN;
        ::sigaction(SIGPIPE, &ignore, &old);
        r = (*storage)->export_image(o.ref, fd.get(), "oci-archive", &g_cancel);
        ::sigaction(SIGPIPE, &old, nullptr);
    }
    if (!r && g_cancel) {
        cleanup();
        report_error("image export", "export cancelled");
        return 128 + (g_cancel_signal.load() ? g_cancel_signal.load() : SIGINT);
    }
    if (!r) return cleanup(), report_error("image export", r.error().what());
    if (!tmp.empty()) {
        if (::fsync(fd.get()) < 0 || ::rename(tmp.c_str(), o.output.c_str()) < 0)
            return cleanup(), report_error("image export",
                                           fmt::format("write '{}': {}", o.output, std::strerror(errno)));
        if (o.json) print_json({{"image", o.ref}, {"output", o.output}, {"format", "oci-archive"}});
    }
    return 0;
}

}  // namespace

void register_image(CLI::App& app, CommandContext& ctx) {
    auto o = std::make_shared<ImageOptions>();
    auto* image = app.add_subcommand(
        "image", "Manage images in the store (import, pull, push, list, inspect, rm, tag, export)");
    image->require_subcommand(1);
    auto common = [o](CLI::App* sub) {
        sub->add_flag("--json", o->json, "Print JSON");
        sub->add_flag("-v,--verbose", o->verbose, "Say whether berthd or the embedded store is used");
    };

    auto* imp = image->add_subcommand("import",
                                      "Import an OCI layout (dir or tar), docker-archive or rootfs tarball");
    imp->add_option("source", o->source, "FILE, DIR, or - for stdin")->required();
    imp->add_option("-n,--name", o->name, "NAME[:TAG] to give the image");
    imp->add_option("-f,--format", o->format, "oci, oci-archive, docker-archive or rootfs (default: detect)");
    common(imp);
    imp->callback([&ctx, o] { ctx.exit_code = do_import(*o); });

    auto* pull = image->add_subcommand("pull", "Pull an image from a registry (registries.toml)");
    auto* ref = pull->add_option("reference", o->ref, "[REGISTRY/]REPOSITORY[:TAG][@DIGEST]");
    auto* declared = pull->add_flag("--declared", o->declared,
                                    "Pull every registry image the container declarations name");
    ref->excludes(declared);
    pull->add_option("--platform", o->platform, "OS/ARCH[/VARIANT] (default: this host's)");
    common(pull);
    pull->callback([&ctx, o] {
        if (!o->declared && o->ref.empty()) {
            ctx.exit_code = report_error("image pull", "a reference or --declared is required");
            return;
        }
        ctx.exit_code = o->declared ? do_pull_declared(*o) : do_pull(*o);
    });

    auto* push = image->add_subcommand("push", "Push an image to a registry (registries.toml, auth file)");
    push->add_option("image", o->ref, "NAME[:TAG], ID or ID prefix")->required();
    push->add_option("reference", o->new_name, "REGISTRY/REPOSITORY[:TAG]")->required();
    common(push);
    push->callback([&ctx, o] { ctx.exit_code = do_push(*o); });

    auto* list = image->add_subcommand("list", "List images");
    list->alias("ls");
    common(list);
    list->callback([&ctx, o] { ctx.exit_code = do_list(*o); });

    auto* inspect = image->add_subcommand("inspect", "Show an image as JSON");
    inspect->add_option("image", o->ref, "NAME[:TAG], ID or ID prefix")->required();
    common(inspect);
    inspect->callback([&ctx, o] { ctx.exit_code = do_inspect(*o); });

    auto* rm = image->add_subcommand(
        "rm", "Remove image names; an image goes with its last name (space: `berth gc`)");
    rm->add_option("images", o->refs, "NAME[:TAG], ID or ID prefix")->required();
    common(rm);
    rm->callback([&ctx, o] { ctx.exit_code = do_rm(*o); });

    auto* tag = image->add_subcommand("tag", "Give an image another NAME[:TAG]");
    tag->add_option("image", o->ref, "existing image")->required();
    tag->add_option("name", o->new_name, "new NAME[:TAG]")->required();
    common(tag);
    tag->callback([&ctx, o] { ctx.exit_code = do_tag(*o); });

    auto* exp = image->add_subcommand("export", "Write an image as an OCI layout tar");
    exp->add_option("image", o->ref, "NAME[:TAG], ID or ID prefix")->required();
    exp->add_option("-o,--output", o->output, "output file (default: stdout)");
    common(exp);
    exp->callback([&ctx, o] { ctx.exit_code = do_export(*o); });
}

}  // namespace berth::cli
