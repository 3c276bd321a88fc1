// The runtime's seam to the store: berthd over the bus when reachable, else a private berthd.
#include "bus/storage-client.h"

#include <dirent.h>
#include <signal.h>
#include <string.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "bus/storage.h"
#include "config/config.h"
#include "registry/pull-policy.h"
#include "registry/registries.h"

namespace berth::bus {

namespace {

// Like open_storage(), but a store that another private berthd holds for a moment (another
// container starting, `berth image list`) is waited for instead of failing the start: units start
// together at boot. The private berthd reports the store's EWOULDBLOCK as it is. Bounded, so a
// store held for good (a berthd that is not reachable on the bus) still ends in its clear
// "locked" error.
constexpr auto kStoreLockWait = std::chrono::seconds(30);

Result<std::unique_ptr<Storage>> open_storage_waiting() {
    const auto deadline = std::chrono::steady_clock::now() + kStoreLockWait;
    for (;;) {
        auto storage = open_storage();
        if (storage || storage.error().code != EWOULDBLOCK || std::chrono::steady_clock::now() >= deadline)
            return storage;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));  // each try spawns a berthd
    }
}

// Asks PullHooks::stop_requested every 50 ms on a thread of its own while a pull waits for its
// job (the waiting thread is inside the bus client's loop, which looks at the flag every 100 ms
// and sends Cancel). Ends at once on destruction (no poll interval is waited out).
class StopWatch {
public:
    explicit StopWatch(std::function<int()> asked) {
        if (!asked) return;
        thread_ = std::thread([this, asked = std::move(asked)] {
            std::unique_lock lock(mutex_);
            while (!done_) {
                if (int sig = asked()) {
                    signal_ = sig;
                    cancel_ = true;
                    return;
                }
                wake_.wait_for(lock, std::chrono::milliseconds(50));
            }
        });
    }
    ~StopWatch() {
        {
            std::lock_guard lock(mutex_);
            done_ = true;
        }
        wake_.notify_all();
        if (thread_.joinable()) thread_.join();
    }
    StopWatch(const StopWatch&) = delete;
    StopWatch& operator=(const StopWatch&) = delete;

    const std::atomic<bool>& cancel() const { return cancel_; }
    int signal() const { return cancel_ ? signal_.load() : 0; }

private:
    std::mutex mutex_;
    std::condition_variable wake_;
    bool done_ = false;
    std::atomic<bool> cancel_{false};
    std::atomic<int> signal_{0};
    std::thread thread_;
};

}  // namespace

Result<Storage*> StorageSession::get() {
    if (!storage_) storage_ = BERTH_TRY(open_storage_waiting());
    return storage_.get();
}

void StorageSession::idle() {
    if (storage_) storage_->release_store();
}

Result<std::string> resolve_declared_image(Storage& storage, const config::Declaration& decl,
                                           const PullHooks& hooks) {
    if (!config::pulls_from_registry(decl)) return decl.image;
    // The same qualification berthd applies when it pulls (the same registries.toml), so the
    // name looked up here is the name the pull gives the image.
    const auto context = fmt::format("image '{}'", decl.image);
    auto parsed = BERTH_TRY_CTX(registry::parse_reference(decl.image), context);
    auto registries = BERTH_TRY(registry::load_registries(registry::RegistriesSearchPath::system()));
    auto ref = BERTH_TRY_CTX(registry::qualify(parsed, registries), context);
    const std::string text = ref.str();
    // A pin is looked up by its digest (a pulled image's id is its platform manifest's digest;
    // a pinned index is not stored under its own digest, so it costs the one manifest request of
    // a pull that finds everything present).
    auto stored = storage.get_image(ref.digest.empty() ? text : ref.digest);
    if (!stored && stored.error().code != ENOENT)
        return fail(std::move(stored.error()).wrap(fmt::format("look up '{}'", text)));
    registry::LocalImage local;
    if (stored) local = {true, stored->id};
    auto decision = BERTH_TRY(registry::decide_pull(decl.pull, ref, local));
    if (decision.action == registry::PullAction::UseLocal) return stored->id;
    if (hooks.started) hooks.started(text);
    StopWatch watch(hooks.stop_requested);
    auto pulled = storage.pull_image(text, {}, hooks.progress, watch.cancel());
    if (pulled) return pulled->id;
    if (int sig = watch.signal())
        return fail(
            EINTR,
            "start interrupted by SIG{} while pulling '{}': the pull was cancelled, nothing was published",
            sigabbrev_np(sig), text);
    if (decision.local_fallback && stored) {
        // "newer" and the registry cannot answer: the image the store has still runs.
        if (hooks.warn)
            hooks.warn(fmt::format("{}: {}; running the stored image {}", decision.reason,
                                   pulled.error().what(), stored->id));
        return stored->id;
    }
    // berthd's message already names the reference ("pull 'REF': ...").
    return fail(std::move(pulled.error()));
}

// Errors name the image; the caller (run_container) names the container. A missing image is the
// common case and says what to do: the store's own wording came back wrapped three times
// ("container 'x': image 'i': prepare container 'x': image 'i' not found", issue #15).
Result<PreparedSnapshot> prepare_container_snapshot(StorageSession& session,
                                                    const config::Declaration& decl) {
    auto context = fmt::format("image '{}'", decl.image);
    Storage* storage = BERTH_TRY_CTX(session.get(), context);
    auto policy = decl.on_image_change == config::OnImageChange::Keep ? store::ImageChangePolicy::Keep
                                                                      : store::ImageChangePolicy::Recreate;
    // Its errors name the reference already.
    auto resolved = BERTH_TRY(resolve_declared_image(*storage, decl, session.pull_hooks));
    auto p = storage->prepare_container(decl.name, resolved, decl.ephemeral, 0, policy);
    if (!p) {
        if (p.error().code == ENOENT)
            if (auto image = storage->get_image(decl.image); !image && image.error().code == ENOENT)
                return fail(0, "{}", missing_image_message(decl.image));  // no strerror after the hint
        return fail(std::move(p.error()).wrap(context));
    }
    std::string id = resolved.rfind("sha256:", 0) == 0 ? resolved : p->image_change.new_image_id;
    return PreparedSnapshot{p->snapshot_id, p->rootfs, p->config, p->image_change, std::move(id)};
}

std::string missing_image_message(const std::string& image) {
    return fmt::format("image '{}' is not in the store; import it first: berth image import FILE --name {}",
                       image, image);
}

std::string describe_image_change(const config::Declaration& decl, const store::ImageChange& change) {
    if (!change.changed) return {};
    auto short_id = [](const std::string& id) {
        return id.empty() ? std::string("scratch") : id.substr(0, 19);
    };
    std::string what = fmt::format("image changed: '{}' is now {}, the writable layer was made from {}",
                                   decl.image, short_id(change.new_image_id), short_id(change.old_image_id));
    if (change.recreated)
        return what + fmt::format(
                          "; the writable layer was recreated (the old one is retained as '{}' until "
                          "'berth rm {}' or 'berth gc'; on_image_change = \"keep\" would have stayed on it)",
                          change.retained_snapshot, decl.name);
    return what + "; the writable layer is kept on the old image ID (on_image_change = \"keep\")";
}

Result<> release_container_snapshot(StorageSession& session, const config::Declaration& decl) {
    auto context = fmt::format("container '{}': release snapshot", decl.name);
    Storage* storage = BERTH_TRY_CTX(session.get(), context);
    return with_context(storage->release_container(decl.name), context);
}

namespace {

bool is_empty_directory(const std::string& path) {
    DIR* d = ::opendir(path.c_str());
    if (!d) return false;
    bool empty = true;
    while (auto* e = ::readdir(d))
        if (std::string_view(e->d_name) != "." && std::string_view(e->d_name) != "..") {
            empty = false;
            break;
        }
    ::closedir(d);
    return empty;
}

Result<> remove_created(Storage& storage, const std::vector<PreparedVolume>& volumes) {
    Result<> first;
    for (const auto& v : volumes) {
        if (!v.created) continue;
        // This process is a user of the volume: let go first, or the store refuses (EBUSY).
        (void)storage.release_volume(v.name, v.container);
        auto r = with_context(storage.remove_volume(v.name), fmt::format("remove new volume '{}'", v.name));
        if (!r && r.error().code != ENOENT && first) first = std::move(r);
    }
    return first;
}

}  // namespace

Result<std::vector<PreparedVolume>> prepare_volumes(StorageSession& session,
                                                    const config::Declaration& decl) {
    std::vector<std::string> names;
    for (const auto& m : decl.mounts) {
        if (m.type != config::MountType::Volume) continue;
        // Checked here before anything is created (the store checks again: it is the authority);
        // a name is one path component, never '/' or '..'.
        BERTH_TRY_VOID_CTX(validate_object_name("volume", m.source), fmt::format("volume '{}'", m.source));
        if (std::find(names.begin(), names.end(), m.source) == names.end()) names.push_back(m.source);
    }
    std::vector<PreparedVolume> out;
    if (names.empty()) return out;
    Storage* storage = BERTH_TRY_CTX(session.get(), fmt::format("volume '{}'", names.front()));
    for (const auto& name : names) {
        // Recorded as a user of the volume, held by this process (the runtime, which lives as
        // long as the container: berth-supervise is exec'd in its place), so the volume cannot
        // be removed under the container.
        auto use = storage->use_volume(name, decl.name);
        if (!use) {
            (void)remove_created(*storage, out);
            for (const auto& v : out)
                if (!v.created) (void)storage->release_volume(v.name, v.container);
            return fail(std::move(use.error()).wrap(fmt::format("volume '{}'", name)));
        }
        PreparedVolume v;
        v.name = name;
        v.container = decl.name;
        v.created = use->created;
        v.mount = std::move(use->mount);
        out.push_back(std::move(v));
    }
    return out;
}

Result<> discard_new_volumes(StorageSession& session, const std::vector<PreparedVolume>& volumes) {
    // Only what is provably unused data: an empty directory. The store does not track who mounts
    // a volume, so a container that started in between with the same volume could have written
    // to it; its data is never thrown away. (A dm-thin volume's content cannot be seen without
    // mounting it: kept.)
    std::vector<PreparedVolume> discard;
    for (const auto& v : volumes)
        if (v.created && v.mount.kind == store::MountSpec::Kind::Bind && is_empty_directory(v.mount.source))
            discard.push_back(v);
    if (volumes.empty()) return {};
    Storage* storage = BERTH_TRY_CTX(session.get(), "remove new volumes");
    // The container never ran: it uses none of its volumes any more.
    for (const auto& v : volumes) (void)storage->release_volume(v.name, v.container);
    return remove_created(*storage, discard);
}

}  // namespace berth::bus
