// berth auto-update [--dry-run] [--json] [--window SECONDS] [NAME...]: brings the containers whose
// declaration says `[container] auto_update` to the image their name has now, one at a time, and
// rolls one back when it does not come up (issue #18). The decisions are registry/auto-update.h's;
// this file asks the registry (berthd's ResolveImage: a HEAD request), the store and systemd, and
// acts:
//   - the image the container runs is pinned as its previous one, under the store name
//     localhost/berth-auto-update:NAME.1 (and .2 for the one before), so a gc or an image prune
//     cannot take the rollback target away, and `berth image list` shows what is kept;
//   - the unit is restarted through systemd (units that Require= it follow, as systemd does);
//   - on a rollback the declared name is tagged back to the previous image and the unit restarted
//     again; the reason goes to the journal (SYSLOG_IDENTIFIER=berth-auto-update, with
//     BERTH_CONTAINER=NAME) and the command exits 1.
// An unreachable registry changes nothing: that container is reported and skipped (exit 0 when
// nothing else failed: a timer must not fail for a registry's maintenance window).
#include <systemd/sd-journal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>

#include "auto-update-pins.h"
#include "command.h"
#include "config/config.h"
#include "container-view.h"
#include "registry/auto-update.h"
#include "runtime/state.h"
#include "storage-cli.h"
#include "systemd/systemd1.h"

namespace berth::cli {

namespace {

using registry::AutoUpdateMode;
using registry::AutoUpdateVerdict;
using registry::UpdateOutcome;

struct Options {
    std::vector<std::string> names;  // empty: every declaration
    bool dry_run = false;
    bool json = false;
    double window_s = 120;
};

constexpr const char* kHistoryRepository = "localhost/berth-auto-update";

// The store name that pins NAME's i-th previous image (1 = the last one).
std::string history_name(const std::string& name, size_t i) {
    return fmt::format("{}:{}.{}", kHistoryRepository, name, i);
}

// One line to the journal (and stderr, which is the journal under the timer's service).
void log_event(int priority, const std::string& name, const std::string& message) {
    std::fprintf(stderr, "berth auto-update: %s: %s\n", name.c_str(), message.c_str());
    sd_journal_send("MESSAGE=berth auto-update: %s: %s", name.c_str(), message.c_str(), "PRIORITY=%i",
                    priority, "SYSLOG_IDENTIFIER=berth-auto-update", "BERTH_CONTAINER=%s", name.c_str(),
                    nullptr);
}

// Pins `running` as NAME's previous image, shifting the older ones down: the pin names move (a
// tag names one image), so the image that falls off the history loses its pin.
Result<> pin_previous(bus::Storage& storage, const std::string& name, const std::string& running) {
    auto history = registry::push_history(auto_update_previous(storage, name), running, nullptr);
    for (size_t i = 0; i < history.size(); ++i)
        BERTH_TRY_VOID_CTX(storage.tag_image(history[i], history_name(name, i + 1)),
                           "pin the previous image");
    return {};
}

struct Watched {
    registry::UpdateJudgement judgement;
    std::string active_state;
    std::string health;
};

// Restarts the unit and watches it until judge_update decides (or the window closes).
Watched restart_and_watch(systemd::Manager& manager, const std::string& name, double window_s) {
    const std::string unit = systemd::container_unit(name);
    const uint64_t asked_us = now_usec(CLOCK_REALTIME);
    const uint64_t window_us = static_cast<uint64_t>(window_s * 1e6);
    uint32_t restarts_before = 0;
    if (auto st = manager.unit_state(unit)) restarts_before = st->n_restarts;
    systemd::JobOptions jo;
    jo.timeout_us = window_us;
    Watched w;
    // A failed start job is not the verdict yet: the unit's state after it is (failed, or
    // auto-restart when Restart= tries again).
    (void)manager.restart(unit, jo);
    for (;;) {
        registry::UpdateObservation seen;
        seen.window_us = window_us;
        const uint64_t now = now_usec(CLOCK_REALTIME);
        seen.elapsed_us = now > asked_us ? now - asked_us : 0;
        if (auto st = manager.unit_state(unit)) {
            seen.active_state = st->active_state;
            seen.restarts = st->n_restarts > restarts_before ? st->n_restarts - restarts_before : 0;
        }
        // Only what the new start wrote counts: until then the records may still be the old
        // run's (a "healthy" from before the restart must not keep a broken update).
        auto running = runtime::read_state(name);
        if (running && running->started_at_usec >= asked_us) {
            seen.has_health_check = running->health.has_value();
            auto health = runtime::read_health_status(name);
            seen.health = health && health->changed_at_usec >= asked_us ? health->status : "starting";
        } else if (seen.active_state == "active") {
            seen.active_state = "activating";  // systemd is ahead of the state record
        }
        w.judgement = registry::judge_update(seen);
        w.active_state = seen.active_state;
        w.health = seen.health;
        if (w.judgement.outcome != UpdateOutcome::Wait) return w;
        ::usleep(200 * 1000);
    }
}

struct Outcome {
    registry::AutoUpdateStep step;
    std::string outcome;  // "up to date", "updated", "rolled back", "unreachable", "would update", ...
    std::string message;
    bool failed = false;
};

// The update of one container whose plan says Update.
Outcome apply_update(bus::Storage& storage, systemd::Manager& manager, const config::Declaration& decl,
                     registry::AutoUpdateStep step, double window_s) {
    Outcome r{step, "", "", false};
    const std::string& name = decl.name;
    std::string target = step.to;
    // First the pin: a failure here leaves the store and the unit as they were.
    if (auto pinned = pin_previous(storage, name, step.from); !pinned) {
        r.outcome = "failed";
        r.failed = true;
        r.message = fmt::format("nothing changed: {}", pinned.error().what());
        log_event(LOG_ERR, name, r.message);
        return r;
    }
    if (decl.auto_update == AutoUpdateMode::Registry) {
        std::atomic<bool> cancel{false};
        auto pulled = storage.pull_image(decl.image, {}, nullptr, cancel);
        if (!pulled) {
            r.outcome = "unreachable";
            r.message =
                fmt::format("pull '{}' failed: {}; nothing changed", decl.image, pulled.error().what());
            log_event(LOG_WARNING, name, r.message);
            return r;
        }
        target = pulled->id;
        // A multi-platform tag names an index: its digest is not the image's id, the pull says
        // which image it means here.
        if (target == step.from) {
            r.outcome = "up to date";
            r.message = fmt::format("runs {}, the image '{}' names for this platform", step.from, decl.image);
            return r;
        }
    }
    log_event(LOG_NOTICE, name, fmt::format("updating from {} to {} ('{}')", step.from, target, decl.image));
    Watched w = restart_and_watch(manager, name, window_s);
    if (w.judgement.outcome == UpdateOutcome::Keep) {
        r.outcome = "updated";
        r.step.to = target;
        r.message = fmt::format("updated to {}: {}", target, w.judgement.reason);
        log_event(LOG_NOTICE, name, r.message);
        return r;
    }
    // Roll back: the declared name names the previous image again, and the unit restarts on it.
    r.failed = true;
    r.outcome = "rolled back";
    std::string why = w.judgement.reason;
    if (auto tagged = storage.tag_image(step.from, decl.image); !tagged) {
        r.message = fmt::format("update to {} failed ({}), and the rollback to {} failed: {}", target, why,
                                step.from, tagged.error().what());
        log_event(LOG_ERR, name, r.message);
        return r;
    }
    Watched back = restart_and_watch(manager, name, window_s);
    r.message = fmt::format("rolled back from {} to {}: {}; after the rollback: {}", target, step.from, why,
                            back.judgement.outcome == UpdateOutcome::Keep
                                ? back.judgement.reason
                                : "still not good: " + back.judgement.reason);
    log_event(LOG_ERR, name, r.message);
    return r;
}

int run(CommandContext& ctx, const Options& o) {
    if (!require_root(ctx, "auto-update", "it pulls images and restarts units", 1)) return ctx.exit_code;
    std::vector<config::Declaration> decls;
    int rc = 0;
    if (o.names.empty()) {
        auto all = config::load_all(config::SearchPaths::system());
        for (auto& [name, d] : all.by_name)
            if (d && d->auto_update != AutoUpdateMode::Off) decls.push_back(std::move(*d));
    } else {
        for (const auto& arg : o.names) {
            auto d = load_container_declaration(arg);
            if (!d) {
                rc = report_error("auto-update", d.error().what());
                continue;
            }
            if (d->auto_update == AutoUpdateMode::Off)
                std::fprintf(stderr, "berth auto-update: %s: auto_update is \"off\"\n", d->name.c_str());
            else
                decls.push_back(std::move(*d));
        }
    }
    auto storage = open_storage_verbose(false);
    if (!storage) return report_error("auto-update", storage.error().what());
    std::map<std::string, std::string> running;  // container -> image id of its layer
    if (auto list = (*storage)->list_containers())
        for (const auto& c : *list) running[c.name] = c.image;
    else
        return report_error("auto-update",
                            fmt::format("list the store's containers: {}", list.error().what()));

    std::vector<registry::AutoUpdateCandidate> candidates;
    for (const auto& d : decls) {
        registry::AutoUpdateCandidate c;
        c.name = d.name;
        c.mode = d.auto_update;
        c.image = d.image;
        c.running = running.count(d.name) ? running[d.name] : "";
        std::atomic<bool> cancel{false};
        auto available =
            d.auto_update == AutoUpdateMode::Registry
                ? (*storage)->resolve_image(d.image, cancel)
                : (*storage)->get_image(d.image).map([](const bus::ImageInfo& i) { return i.id; });
        if (available)
            c.available = *available;
        else
            c.error = available.error().what();
        candidates.push_back(std::move(c));
    }
    auto steps = registry::plan_auto_update(candidates);

    std::optional<systemd::Manager> manager;
    nlohmann::json out = nlohmann::json::array();
    for (size_t i = 0; i < steps.size(); ++i) {
        const auto& step = steps[i];
        Outcome r{step, std::string(registry::auto_update_verdict_name(step.verdict)), step.reason, false};
        if (step.verdict == AutoUpdateVerdict::Unreachable) log_event(LOG_WARNING, step.name, step.reason);
        // Not created yet: its next start takes the store's image for the name, so a registry
        // container gets the new one into the store now (no restart: nothing runs).
        if (step.verdict == AutoUpdateVerdict::NotCreated && step.mode == AutoUpdateMode::Registry &&
            !o.dry_run) {
            std::atomic<bool> cancel{false};
            auto pulled = (*storage)->pull_image(decls[i].image, {}, nullptr, cancel);
            r.outcome = pulled ? "pulled" : "unreachable";
            r.message = pulled ? fmt::format("pulled {} for its next start", pulled->id)
                               : fmt::format("pull '{}' failed: {}", decls[i].image, pulled.error().what());
        }
        if (step.verdict == AutoUpdateVerdict::Update) {
            if (o.dry_run) {
                r.outcome = "would update";
            } else {
                if (!manager) {
                    auto m = systemd::Manager::open_system();
                    if (!m)
                        return report_error("auto-update",
                                            fmt::format("cannot restart units: {}", m.error().what()));
                    manager.emplace(std::move(*m));
                }
                r = apply_update(**storage, *manager, decls[i], step, o.window_s);
            }
        }
        if (r.failed) rc = 1;
        if (o.json) {
            out.push_back({{"name", step.name},
                           {"mode", registry::auto_update_mode_name(step.mode)},
                           {"image", step.image},
                           {"running", step.from},
                           {"available", step.to},
                           {"outcome", r.outcome},
                           {"message", r.message}});
        } else {
            std::printf("%s: %s: %s\n", step.name.c_str(), r.outcome.c_str(), r.message.c_str());
        }
    }
    if (o.json) std::printf("%s\n", out.dump(2).c_str());
    return rc;
}

}  // namespace

std::vector<std::string> auto_update_previous(bus::Storage& storage, const std::string& name) {
    std::vector<std::string> out;
    for (size_t i = 1; i <= registry::kAutoUpdateHistory; ++i)
        if (auto image = storage.get_image(history_name(name, i))) out.push_back(image->id);
    return out;
}

void register_auto_update(CLI::App& app, CommandContext& ctx) {
    auto o = std::make_shared<Options>();
    auto* sub = app.add_subcommand("auto-update",
                                   "Update containers declared with auto_update to their image's new digest, "
                                   "rolling back one that does not become healthy");
    sub->add_option("names", o->names, "containers (default: every one with auto_update)");
    sub->add_flag("--dry-run", o->dry_run, "say what would change, change nothing");
    sub->add_flag("--json", o->json, "JSON output");
    sub->add_option("--window", o->window_s,
                    "seconds an updated container has to become healthy (default 120)")
        ->check(CLI::Range(1.0, 3600.0));
    sub->callback([&ctx, o] { ctx.exit_code = run(ctx, *o); });
}

}  // namespace berth::cli
