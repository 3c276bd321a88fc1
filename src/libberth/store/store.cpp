// Store: metadata, locking, containers, volumes, gc and df. Imports live in image-import.cpp.
//
// Metadata lives in small JSON files, each replaced atomically (write_file_atomic):
//   ROOT/lock                  flock; a random token each writable open replaces (Store::resume)
//   ROOT/store.json            {"version":1,"backend":"overlay"} — the backend never flips
//   ROOT/images/<hex>.json     ImageInfo (names excluded)
//   ROOT/refs.json             {"name:tag": "sha256:<id>"} — the only place names live
//   ROOT/containers/<name>.json, ROOT/volumes/<name>.json
//   ROOT/volumes/<name>.users   the containers using the volume (pid + start time; not fsynced)
//   ROOT/blobs/sha256/<hex>    manifests, configs and layer blobs, as imported
//   ROOT/splits/<chain hex>    tar-split of an uncompressed layer blob kept instead of the blob
//                              (tar-split.h); published with the blobs, removed with its layer
// Ordering makes every crash safe: an import publishes blobs, then the image file, then refs; a
// removal drops refs, then the image file; containers and volumes drop their file before the
// backend object. What a crash leaves unreferenced is removed by open() (backend reconcile,
// staging) or gc() (blobs).
#include "store/store.h"

#include <fcntl.h>
#include <fmt/ranges.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <sstream>

#include "basic/fs-private.h"
#include "basic/fs-util.h"
#include "basic/io-util.h"
#include "basic/mount-util.h"
#include "basic/names.h"
#include "basic/probe-util.h"
#include "basic/string-util.h"
#include "basic/unique.h"
#include "store/backend-factory.h"
#include "store/digest.h"
#include "store/loop.h"
#include "store/store-impl.h"
#include "store/store-json.h"
#include "store/tar-split.h"
#include "store/tree-tar.h"
#include "store/tree-util.h"

namespace berth::store {

using nlohmann::json;

int64_t now_seconds() { return static_cast<int64_t>(::time(nullptr)); }

// Crash tests: BERTH_STORE_CRASH_AT=POINT makes the process SIGKILL itself when a removal or an
// import reaches POINT, between two of its durable steps, like a power cut there. Read once;
// costs one comparison per step otherwise.
void crash_point(std::string_view point) {
    static const std::string wanted = [] {
        const char* e = std::getenv("BERTH_STORE_CRASH_AT");
        return std::string(e ? e : "");
    }();
    if (!wanted.empty() && wanted == point) ::raise(SIGKILL);
}

std::string Store::Impl::path(std::string_view rel) const { return path_join(root, rel); }
std::string Store::Impl::blob_path(const std::string& digest) const {
    return path("blobs/sha256/" + std::string(digest_hex(digest)));
}
std::string Store::Impl::split_path(const std::string& chain_id) const {
    return path("splits/" + std::string(digest_hex(chain_id)));
}

Result<uint64_t> Store::Impl::stream_layer_blob(const LayerInfo& l,
                                                const std::function<Result<>(const char*, size_t)>& sink) {
    std::string file = blob_path(l.digest);
    if (path_exists(file) || l.digest != l.diff_id || !path_exists(split_path(l.chain_id))) {
        UniqueFd in(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
        if (!in) return fail_errno("open blob '{}'", l.digest);
        std::vector<char> buf(1 << 20);
        uint64_t total = 0;
        for (;;) {
            ssize_t n = ::read(in.get(), buf.data(), buf.size());
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) return fail_errno("read blob '{}'", l.digest);
            if (n == 0) return total;
            BERTH_TRY_VOID(sink(buf.data(), static_cast<size_t>(n)));
            total += static_cast<uint64_t>(n);
        }
    }
    auto view = BERTH_TRY_CTX(backend->layer_view(l.chain_id), fmt::format("layer blob '{}'", l.digest));
    ScopeExit release([&] { (void)backend->release_layer_view(l.chain_id); });
    return with_context(rebuild_tar(split_path(l.chain_id), view, l.digest, sink),
                        fmt::format("layer blob '{}' (layer '{}')", l.digest, l.chain_id));
}

ImageInfo Store::Impl::with_names(const ImageInfo& i) const {
    ImageInfo out = i;
    out.names.clear();
    for (const auto& [name, id] : refs)
        if (id == i.id) out.names.push_back(name);
    return out;
}

static bool all_hex(std::string_view s) {
    for (char c : s)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    return true;
}

Result<std::string> Store::Impl::resolve_locked(std::string_view ref) const {
    if (ref.empty()) return fail(EINVAL, "empty image reference");
    std::string_view hex = ref;
    if (ref.substr(0, 7) == "sha256:")
        hex = ref.substr(7);
    else {
        auto n = normalize_name_tag(ref);
        if (n) {
            auto it = refs.find(*n);
            if (it != refs.end()) return it->second;
        }
    }
    if (hex.size() >= 4 && hex.size() <= 64 && all_hex(hex)) {
        std::vector<std::string> hits;
        for (const auto& [id, _] : images)
            if (id.compare(7, hex.size(), hex) == 0) hits.push_back(id);
        if (hits.size() == 1) return hits[0];
        if (hits.size() > 1)
            return fail(EINVAL, "image reference '{}' is ambiguous ({} images)", ref, hits.size());
    }
    return fail(ENOENT, "image '{}' not found", ref);
}

Result<> Store::Impl::save_gc_pending_locked() {
    std::string file = path("gc-pending.json");
    if (gc_pending.empty()) {
        if (::unlink(file.c_str()) < 0 && errno != ENOENT) return fail_errno("remove '{}'", file);
        return {};
    }
    return write_file_atomic(file, json(gc_pending).dump(2) + "\n");
}

Result<> Store::Impl::save_refs_locked(const std::map<std::string, std::string>& next) const {
    std::string file = path("refs.json");
    if (std::any_of(bad_records.begin(), bad_records.end(),
                    [&](const BadRecord& b) { return b.path == file; }))
        return fail(EUCLEAN,
                    "'{}' is damaged: names cannot change until 'berth fsck --repair' quarantines it", file);
    json j = json::object();
    for (const auto& [n, id] : kept_refs) j[n] = id;  // names of left-out images survive a rewrite
    for (const auto& [n, id] : next) j[n] = id;
    return write_file_atomic(file, j.dump(2) + "\n");
}

Result<> Store::Impl::writable() const {
    if (read_only) return fail(EROFS, "store '{}' is open read-only", root);
    if (suspended) return fail(ENOLCK, "store '{}' let go of its lock (suspended)", root);
    return {};
}

std::string_view import_phase_name(ImportPhase phase) {
    // In ImportPhase's order.
    constexpr std::string_view kNames[] = {"reading", "layer", "layer committed", "publishing", "done"};
    auto i = static_cast<size_t>(phase);
    return i < std::size(kNames) ? kNames[i] : "unknown";
}

Result<> Store::Impl::claim(const std::string& chain, const std::atomic<bool>* cancel) {
    std::unique_lock lock(mu);
    // The holder may be an import stalled on its pipe: wake now and then to honour a cancel.
    while (claimed_layers.count(chain)) {
        if (cancel && cancel->load()) return fail(ECANCELED, "import cancelled");
        cv.wait_for(lock, std::chrono::milliseconds(100));
    }
    claimed_layers.insert(chain);
    return {};
}

ImportGuard::ImportGuard(Store::Impl& s, const std::atomic<bool>* cancel) : s_(s), cancel_(cancel) {
    std::lock_guard lock(s_.mu);
    ++s_.active_imports;
}
ImportGuard::~ImportGuard() {
    std::lock_guard lock(s_.mu);
    for (const auto& c : claimed_) s_.claimed_layers.erase(c);
    --s_.active_imports;
    s_.cv.notify_all();
}
Result<> ImportGuard::claim(const std::string& chain) {
    for (const auto& c : claimed_)
        if (c == chain) return {};
    BERTH_TRY_VOID(s_.claim(chain, cancel_));
    claimed_.push_back(chain);
    return {};
}

PinGuard::PinGuard(Store::Impl& s, const ImageInfo& image) : s_(s) {
    pins_ = {image.id, image.config_digest};
    for (const auto& l : image.layers) {
        pins_.push_back(l.chain_id);
        pins_.push_back(l.digest);
    }
    std::lock_guard lock(s_.mu);
    for (const auto& p : pins_) s_.pinned.insert(p);
}
PinGuard::~PinGuard() {
    std::lock_guard lock(s_.mu);
    for (const auto& p : pins_) s_.pinned.erase(s_.pinned.find(p));
}

Result<ImageInfo> Store::Impl::publish_locked(const std::string& stage, ImageInfo info,
                                              const std::vector<std::string>& names,
                                              const ProgressFn& progress) {
    auto step = [&](uint64_t n) {
        if (progress) progress(ImportProgress{ImportPhase::Publishing, 0, info.layers.size(), n, 0});
    };
    step(0);
    std::string blobs = stage + "/blobs";
    bool moved = false;
    for (const auto& hex : list_dir(blobs)) {
        std::string dst = path("blobs/sha256/" + hex);
        if (path_exists(dst)) continue;
        if (::rename((blobs + "/" + hex).c_str(), dst.c_str()) < 0)
            return fail_errno("publish blob 'sha256:{}'", hex);
        moved = true;
        step(1);
    }
    if (moved) BERTH_TRY_VOID(fsync_directory(path("blobs/sha256")));
    moved = false;
    for (const auto& hex : list_dir(stage + "/splits")) {
        std::string dst = path("splits/" + hex);
        if (path_exists(dst)) continue;
        if (::rename((stage + "/splits/" + hex).c_str(), dst.c_str()) < 0)
            return fail_errno("publish tar-split '{}'", hex);
        moved = true;
    }
    if (moved) BERTH_TRY_VOID(fsync_directory(path("splits")));
    crash_point("publish:blobs-moved");
    step(2);
    // The record, then the names; memory learns both only when both are on disk. A failed names
    // write takes the new record back with it: the import fails and leaves no nameless image to
    // appear after a restart (issue #16). Blobs already moved are garbage for gc.
    auto it = images.find(info.id);
    bool created = it == images.end();
    std::string file = path("images/" + std::string(digest_hex(info.id)) + ".json");
    if (created) {
        json j = info;
        j.erase("names");
        BERTH_TRY_VOID(write_file_atomic(file, j.dump(2) + "\n"));
        crash_point("publish:record-written");
    } else {
        info = it->second;  // same manifest digest: the same image, keep its first import time
    }
    step(3);
    auto next = refs;
    bool refs_changed = false;
    for (const auto& n : names) {
        auto& slot = next[n];
        if (slot != info.id) {
            slot = info.id;
            refs_changed = true;
        }
    }
    // A re-import replaces a damaged record of the same image: its names kept from refs.json
    // resolve again.
    if (created)
        for (const auto& [n, id] : kept_refs)
            if (id == info.id) next.emplace(n, id);
    if (refs_changed) {
        if (auto saved = save_refs_locked(next); !saved) {
            if (created && ::unlink(file.c_str()) < 0 && errno != ENOENT)
                images[info.id] = info;  // the record stays on disk: memory says so too
            return fail(std::move(saved.error()));
        }
    }
    if (created) {
        images[info.id] = info;
        std::erase_if(bad_records, [&](const BadRecord& b) { return b.path == file; });
        std::erase_if(kept_refs, [&](const auto& r) { return r.second == info.id; });
    }
    refs = std::move(next);
    step(4);
    return with_names(info);
}

// ---- open ----

Store::Store(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Store::~Store() = default;

static Result<> setup_pool(Store::Impl& s) {
    std::string mnt = s.path("btrfs");
    BERTH_TRY_VOID(mkdir_p(mnt, 0700));
    if (is_mount_point(mnt) && is_on_btrfs(mnt)) return {};  // berthd or an earlier command mounted it
    const auto& o = s.options;
    bool created = false;
    if (!path_exists(o.pool)) {
        if (o.pool_size < (256ull << 20))
            return fail(EINVAL, "pool '{}': pool_size must be at least 256M", o.pool);
        BERTH_TRY_VOID(create_sparse_file(o.pool, o.pool_size));
        created = true;
    }
    // What the file holds, from its superblock, not assumed: a pool option pointing at another
    // file system's image, or at a file a crash left half-formatted, must be refused, never
    // mounted as btrfs or formatted over. Only a file with no data at all (just created, or left
    // by a crash before mkfs wrote anything) is formatted.
    std::string fstype = BERTH_TRY_CTX(probe_filesystem(o.pool), fmt::format("pool '{}'", o.pool));
    if (fstype.empty()) {
        struct stat st {};
        if (::stat(o.pool.c_str(), &st) < 0) return fail_errno("stat pool '{}'", o.pool);
        if (st.st_blocks != 0)
            return fail(EMEDIUMTYPE,
                        "pool '{}' holds data but no file system (an interrupted mkfs?); remove it and berth "
                        "creates it again",
                        o.pool);
        auto made = make_btrfs(o.pool, "berth-pool");
        if (!made) {
            if (created) ::unlink(o.pool.c_str());
            return fail(std::move(made.error()));
        }
    } else if (fstype != "btrfs") {
        return fail(EMEDIUMTYPE, "pool '{}' holds a {} file system, not btrfs; not touching it", o.pool,
                    fstype);
    }
    auto loop = BERTH_TRY_CTX(attach_loop(o.pool), fmt::format("pool '{}'", o.pool));
    // With LO_FLAGS_AUTOCLEAR the mount keeps the loop device; unmounting frees it.
    BERTH_TRY_VOID_CTX(mount_btrfs(loop.path, mnt), fmt::format("pool '{}'", o.pool));
    return {};
}

// Validation of records read from disk, beyond their JSON shape (store-json.cpp's get_opt checks
// types): the fields later code trusts. An image's id is a digest matching its file name (the
// resolver slices ids as "sha256:<hex>"), its layers name digests (they become backend paths); a
// container's or volume's name is its file name and a valid object name, and a container's
// snapshot id is the one prepare_container() derives from it (it becomes a backend path too).
static std::string file_stem(const std::string& file) { return file.substr(0, file.size() - 5); }

static Result<> validate_record(const ImageInfo& i, const std::string& file) {
    if (i.id != "sha256:" + file_stem(file) || !valid_digest(i.id))
        return fail(EBADMSG, "id '{}' is not the digest its file name says", i.id);
    if (!i.config_digest.empty() && !valid_digest(i.config_digest))
        return fail(EBADMSG, "config_digest '{}' is not a digest", i.config_digest);
    if (!i.top_layer.empty() && !valid_digest(i.top_layer))
        return fail(EBADMSG, "top_layer '{}' is not a digest", i.top_layer);
    for (size_t n = 0; n < i.layers.size(); n++) {
        const auto& l = i.layers[n];
        if (!valid_digest(l.chain_id) || !valid_digest(l.diff_id) ||
            (!l.digest.empty() && !valid_digest(l.digest)))
            return fail(EBADMSG, "layer {}: chain_id, diff_id and digest must be digests", n);
    }
    return {};
}

static std::string snapshot_id_for(std::string_view name, bool ephemeral);

// "c-NAME" (the first layer), or "c-NAME-<16 hex>" (one made when the image changed).
static bool snapshot_belongs(const std::string& id, std::string_view name, bool ephemeral) {
    std::string base = snapshot_id_for(name, ephemeral);
    if (id == base) return true;
    if (ephemeral || id.size() != base.size() + 17 || id.compare(0, base.size(), base) != 0 ||
        id[base.size()] != '-')
        return false;
    return std::all_of(id.begin() + static_cast<std::ptrdiff_t>(base.size()) + 1, id.end(),
                       [](char ch) { return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f'); });
}

static Result<> validate_record(const ContainerInfo& c, const std::string& file) {
    if (c.name != file_stem(file) || !valid_object_name(c.name))
        return fail(EBADMSG, "name '{}' is not its file name or not a valid name", c.name);
    if (!snapshot_belongs(c.snapshot_id, c.name, c.ephemeral))
        return fail(EBADMSG, "snapshot_id '{}' does not belong to container '{}'", c.snapshot_id, c.name);
    if (!c.image_id.empty() && !valid_digest(c.image_id))
        return fail(EBADMSG, "image_id '{}' is not a digest", c.image_id);
    for (const auto& r : c.retained) {
        if (!snapshot_belongs(r.snapshot_id, c.name, false) || r.snapshot_id == c.snapshot_id)
            return fail(EBADMSG, "retained snapshot_id '{}' does not belong to container '{}'", r.snapshot_id,
                        c.name);
        if (!r.image_id.empty() && !valid_digest(r.image_id))
            return fail(EBADMSG, "retained image_id '{}' is not a digest", r.image_id);
    }
    return {};
}

// Every snapshot the container's record owns: its layer and the retained earlier ones.
static void append_snapshots(const ContainerInfo& c, std::vector<std::string>& out) {
    out.push_back(c.snapshot_id);
    for (const auto& r : c.retained) out.push_back(r.snapshot_id);
}

static Result<> validate_record(const VolumeInfo& v, const std::string& file) {
    if (v.name != file_stem(file) || !valid_object_name(v.name))
        return fail(EBADMSG, "name '{}' is not its file name or not a valid name", v.name);
    return {};
}

// Loads every record of a directory. One that cannot be read, parsed or validated goes to `bad`
// (issue #16): the rest of the store stays usable and `berth fsck` can name the file.
template <class T>
static std::map<std::string, T> load_dir(const std::string& dir, auto key_of, std::vector<BadRecord>& bad,
                                         bool clean) {
    std::map<std::string, T> out;
    for (const auto& n : list_dir(dir)) {
        std::string p = path_join(dir, n);
        if (n.find(".tmp-") != std::string::npos) {  // a write_file_atomic interrupted by a crash
            if (clean) ::unlink(p.c_str());
            continue;
        }
        if (n.size() < 6 || n.substr(n.size() - 5) != ".json") continue;
        auto v = read_file(p).and_then([&](const std::string& text) { return parse_json_as<T>(text, p); });
        if (v) {
            if (auto ok = validate_record(*v, n); !ok) v = tl::unexpected(ok.error());
        }
        if (!v) {
            std::string why = v.error().what();
            if (why.find(p) == std::string::npos) why = fmt::format("'{}': {}", p, why);
            bad.push_back({p, std::move(why)});
            continue;
        }
        auto key = key_of(*v);
        out.emplace(std::move(key), std::move(*v));
    }
    return out;
}

static std::vector<VolumeUser> load_users(const Store::Impl& s, const std::string& key);

using RefMap = std::map<std::string, std::string>;

// ROOT/refs.json as a map (empty when there is none); an error names the file.
static Result<RefMap> read_refs_file(const std::string& file) {
    if (!path_exists(file)) return RefMap{};
    auto text = read_file(file);
    if (!text) return fail(text.error().code, "'{}': {}", file, text.error().what());
    return parse_json_as<RefMap>(*text, file);
}

// ROOT/lock holds a token that each writable open() replaces with a new random one right after
// it takes the lock, before it changes anything: a Store that let go of the lock (suspend) and
// finds its own token there again knows that no other writer had the store in between. A
// random token, not a counter: a writer that cannot write it (a full disk) empties the file,
// and the next one's value must still differ from every token a suspended Store remembers.
static constexpr size_t kLockTokenSize = 16;

static std::string read_lock_token(int lock_fd) {
    char buf[kLockTokenSize + 1];
    ssize_t n = ::pread(lock_fd, buf, sizeof buf, 0);
    if (n != static_cast<ssize_t>(sizeof buf) || buf[kLockTokenSize] != '\n') return "";
    return std::string(buf, kLockTokenSize);
}

// The new token, or "" when it could not be written (the file is emptied then, so that no
// suspended Store finds its own token).
static std::string renew_lock_token(int lock_fd) {
    std::string token = random_token();
    std::string text = token + "\n";
    if (token.size() == kLockTokenSize &&
        ::pwrite(lock_fd, text.data(), text.size(), 0) == static_cast<ssize_t>(text.size()) &&
        ::ftruncate(lock_fd, static_cast<off_t>(text.size())) == 0)
        return token;
    (void)::ftruncate(lock_fd, 0);
    return "";
}

// What the records' directories and files look like (inode and change time): a writer from
// before the lock token changes them when it writes a record (each is replaced by a rename).
static std::vector<std::array<int64_t, 3>> record_fingerprint(const Store::Impl& s) {
    std::vector<std::array<int64_t, 3>> out;
    for (const char* rel :
         {"images", "containers", "volumes", "refs.json", "gc-pending.json", "store.json"}) {
        struct stat st {};
        if (::stat(s.path(rel).c_str(), &st) < 0)
            out.push_back({-1, errno, 0});
        else
            out.push_back({static_cast<int64_t>(st.st_ino), st.st_ctim.tv_sec, st.st_ctim.tv_nsec});
    }
    return out;
}

void Store::suspend() {
    auto& s = *impl_;
    std::lock_guard lock(s.mu);
    if (s.suspended) return;
    s.suspended_fingerprint = record_fingerprint(s);
    s.lock_fd.reset();
    s.suspended = true;
}

Result<bool> Store::resume() {
    auto& s = *impl_;
    std::lock_guard lock(s.mu);
    if (!s.suspended) return true;
    if (s.read_only || s.lock_token.empty()) return false;
    UniqueFd fd(::open(s.path("lock").c_str(), O_RDWR | O_CLOEXEC));
    if (!fd) {
        if (errno == ENOENT) return false;  // the store was removed: open() makes it again
        return fail_errno("open store lock '{}'", s.path("lock"));
    }
    if (::flock(fd.get(), LOCK_EX | (s.options.wait_for_lock ? 0 : LOCK_NB)) < 0) {
        if (errno == EWOULDBLOCK)
            return fail(EWOULDBLOCK, "store '{}' is locked by another process (berthd?)", s.root);
        return fail_errno("lock store '{}'", s.root);
    }
    if (read_lock_token(fd.get()) != s.lock_token || record_fingerprint(s) != s.suspended_fingerprint)
        return false;  // `fd` closes: the lock goes with it
    s.lock_fd = std::move(fd);
    s.suspended = false;
    return true;
}

Result<std::unique_ptr<Store>> Store::open(const StoreOptions& options) {
    auto impl = std::make_unique<Impl>();
    impl->options = options;
    impl->root = options.root;
    Impl& s = *impl;
    if (s.root.empty() || s.root[0] != '/')
        return fail(EINVAL, "store root '{}' must be an absolute path", s.root);
    // A store on a read-only file system (a ro mount or ro bind) can still be listed and checked:
    // it is opened read-only by itself.
    struct statvfs vfs {};
    s.read_only = options.read_only || (::statvfs(s.root.c_str(), &vfs) == 0 && (vfs.f_flag & ST_RDONLY));
    if (s.read_only) {
        // Readers share the lock (they exclude a writer, and a writer them) and never create it:
        // a store nobody ever opened for writing has nothing to exclude.
        if (!is_directory(s.root)) return fail(ENOENT, "store '{}' does not exist", s.root);
        s.lock_fd.reset(::open(s.path("lock").c_str(), O_RDONLY | O_CLOEXEC));
        if (!s.lock_fd && errno != ENOENT) return fail_errno("open store lock '{}'", s.path("lock"));
    } else {
        // Layers and containers hold setuid files: the root is root's alone (0700, as tmpfiles
        // makes /var/lib/berth), whoever creates it first, and an existing wider one is tightened.
        BERTH_TRY_VOID(make_private_directory(s.root, 0700));
        s.lock_fd.reset(::open(s.path("lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
        if (!s.lock_fd) return fail_errno("open store lock '{}'", s.path("lock"));
    }
    int lock_op = (s.read_only ? LOCK_SH : LOCK_EX) | (options.wait_for_lock ? 0 : LOCK_NB);
    if (s.lock_fd && ::flock(s.lock_fd.get(), lock_op) < 0) {
        if (errno == EWOULDBLOCK)
            return fail(EWOULDBLOCK, "store '{}' is locked by another process (berthd?)", s.root);
        return fail_errno("lock store '{}'", s.root);
    }
    if (!s.read_only) s.lock_token = renew_lock_token(s.lock_fd.get());
    if (!s.read_only)
        for (const char* d : {"blobs/sha256", "splits", "images", "containers", "volumes", "staging"})
            BERTH_TRY_VOID(mkdir_p(s.path(d), 0700));

    // Backend: the recorded one wins; "auto" is decided once. A store.json that cannot be read is
    // a bad record (fsck names it, --repair quarantines it) and is never written over; the
    // backend is then the one whose directory the store has.
    std::string recorded;
    bool store_json_bad = false;
    if (path_exists(s.path("store.json"))) {
        auto bad = [&](std::string why) {
            s.bad_records.push_back(
                {s.path("store.json"), fmt::format("'{}': {}", s.path("store.json"), why)});
            store_json_bad = true;
        };
        if (auto text = read_file(s.path("store.json")); !text) {
            bad(text.error().what());
        } else {
            try {
                auto j = json::parse(*text);
                if (!j.is_object() || !j.value("backend", json("")).is_string())
                    bad("not an object with a string \"backend\"");
                else
                    recorded = j.value("backend", "");
            } catch (const std::exception& e) {
                bad(e.what());
            }
        }
        if (store_json_bad && options.backend == "auto" && options.pool.empty())
            for (const char* b : {"overlay", "dm-thin", "btrfs"})
                if (recorded.empty() && is_directory(s.path(b))) recorded = b;
    }
    std::string chosen = options.backend;
    if (!options.pool.empty()) {
        if (chosen != "auto" && chosen != "btrfs")
            return fail(EINVAL, "a loopback 'pool' needs backend 'btrfs' or 'auto'");
        chosen = "btrfs";
    }
    if (!recorded.empty()) {
        if (chosen != "auto" && chosen != recorded)
            return fail(EINVAL, "store '{}' uses backend '{}', not '{}' (remove the store to switch)", s.root,
                        recorded, chosen);
        chosen = recorded;
    } else if (chosen == "auto" && options.dm_thin.configured()) {
        chosen = "dm-thin";  // a configured thin pool is a choice, not a hint to ignore
    } else if (chosen == "auto") {
        chosen = is_on_btrfs(s.root) ? "btrfs" : "overlay";
    }
    if (!options.pool.empty()) {
        BERTH_TRY_VOID(setup_pool(s));
        s.pool_path = options.pool;
    }
    if (chosen == "overlay")
        s.backend = BERTH_TRY(make_overlay_backend(s.path("overlay")));
    else if (chosen == "btrfs")
        s.backend = BERTH_TRY(make_btrfs_backend(s.path("btrfs")));
    else if (chosen == "dm-thin") {
#ifdef BERTH_HAVE_DMTHIN
        s.backend = BERTH_TRY(make_dmthin_backend(s.path("dm-thin"), options.dm_thin));
#else
        return fail(ENOTSUP, "backend 'dm-thin' is not built into this berth");
#endif
    } else {
        return fail(EINVAL, "unknown backend '{}'", chosen);
    }
    if (recorded.empty() && !store_json_bad && !s.read_only)
        BERTH_TRY_VOID(
            write_file_atomic(s.path("store.json"), json{{"version", 1}, {"backend", chosen}}.dump() + "\n"));

    // Metadata.
    bool clean = !s.read_only;
    s.images = load_dir<ImageInfo>(
        s.path("images"), [](const ImageInfo& i) { return i.id; }, s.bad_records, clean);
    s.containers = load_dir<ContainerInfo>(
        s.path("containers"), [](const ContainerInfo& c) { return c.name; }, s.bad_records, clean);
    s.volumes = load_dir<VolumeInfo>(
        s.path("volumes"), [](const VolumeInfo& v) { return v.name; }, s.bad_records, clean);
    for (auto& [key, v] : s.volumes) v.users = load_users(s, key);
    for (const auto& n : list_dir(s.root))
        if (clean && (n.rfind("refs.json.tmp-", 0) == 0 || n.rfind("store.json.tmp-", 0) == 0))
            ::unlink(s.path(n).c_str());
    // A refs.json that cannot be read is a bad record like any other: no names resolve, and none
    // can change (save_refs_locked refuses) until fsck --repair quarantines it.
    auto refs_file = read_refs_file(s.path("refs.json"));
    if (!refs_file) s.bad_records.push_back({s.path("refs.json"), refs_file.error().what()});
    if (refs_file) {
        for (auto& entry : *refs_file) {
            // Not a structured binding: clang 14 (the fuzz build) cannot capture one in a lambda.
            const std::string& n = entry.first;
            const std::string& id = entry.second;
            if (s.images.count(id))
                s.refs[n] = id;  // a name whose image a crash removed goes too
            else if (std::any_of(s.bad_records.begin(), s.bad_records.end(), [&](const BadRecord& b) {
                         return valid_digest(id) &&
                                b.path == s.path("images/" + std::string(digest_hex(id)) + ".json");
                     }))
                s.kept_refs[n] = id;  // the image's record was left out: keep its name on disk
        }
    }

    if (s.read_only) return std::unique_ptr<Store>(new Store(std::move(impl)));
    // Crash leftovers: staged imports, then whatever the backend holds that metadata doesn't know.
    for (const auto& n : list_dir(s.path("staging"))) BERTH_TRY_VOID(remove_tree(s.path("staging/" + n)));
    for (const auto& n : list_dir(s.path("blobs/sha256")))
        if (n.find(".tmp") != std::string::npos) ::unlink(s.path("blobs/sha256/" + n).c_str());
    // With a record left out, what it referenced (layers, a snapshot) looks orphaned: removing
    // that would destroy what the record may still be repaired to use, so nothing goes until
    // `berth fsck --repair` has quarantined the record.
    if (!s.bad_records.empty()) return std::unique_ptr<Store>(new Store(std::move(impl)));
    std::set<std::string> layers;
    for (const auto& [_, i] : s.images)
        for (const auto& l : i.layers) layers.insert(l.chain_id);
    // Layers of removed images wait for gc (which reports them); an unreadable list is no loss:
    // its layers go here, unreported.
    if (auto pending = read_file(s.path("gc-pending.json")))
        if (auto list = parse_json_as<std::set<std::string>>(*pending, s.path("gc-pending.json")))
            for (const auto& l : *list)
                if (valid_digest(l)) s.gc_pending.insert(l);
    layers.insert(s.gc_pending.begin(), s.gc_pending.end());
    std::vector<std::string> snaps;
    for (const auto& [_, c] : s.containers) append_snapshots(c, snaps);
    for (const auto& [n, _] : s.volumes) snaps.push_back("v-" + n);
    BERTH_TRY_VOID_CTX(s.backend->reconcile({layers.begin(), layers.end()}, snaps), "reconcile backend");
    // A tar-split goes with its layer (a crash between the two removals leaves it behind).
    for (const auto& hex : list_dir(s.path("splits")))
        if (!layers.count("sha256:" + hex)) ::unlink(s.path("splits/" + hex).c_str());
    return std::unique_ptr<Store>(new Store(std::move(impl)));
}

std::vector<BadRecord> Store::bad_records() const {
    std::lock_guard lock(impl_->mu);
    return impl_->bad_records;
}

Result<std::string> Store::quarantine_record(const std::string& path) {
    auto& s = *impl_;
    BERTH_TRY_VOID(s.writable());
    std::lock_guard lock(s.mu);
    auto it = std::find_if(s.bad_records.begin(), s.bad_records.end(),
                           [&](const BadRecord& b) { return b.path == path; });
    if (it == s.bad_records.end()) return fail(ENOENT, "'{}' is not a record the store left out", path);
    // ROOT/<dir>/<file> -> ROOT/quarantine/<dir>/<file>: same filesystem, so rename() moves it
    // whole; an earlier quarantined file of that name is kept too (".1", ".2", ...).
    // The file may have been rewritten since open (a container or volume of that name created
    // again): a record that reads and validates now is no longer bad and stays where it is.
    std::string rel = path.substr(s.root.size() + 1);
    std::string name = rel.substr(rel.rfind('/') + 1);
    auto text = read_file(path);
    bool good_now = false;
    if (text && rel.rfind("images/", 0) == 0) {
        auto v = parse_json_as<ImageInfo>(*text, path);
        good_now = v && validate_record(*v, name);
    } else if (text && rel.rfind("containers/", 0) == 0) {
        auto v = parse_json_as<ContainerInfo>(*text, path);
        good_now = v && validate_record(*v, name);
    } else if (text && rel.rfind("volumes/", 0) == 0) {
        auto v = parse_json_as<VolumeInfo>(*text, path);
        good_now = v && validate_record(*v, name);
    } else if (text && rel == "refs.json") {
        good_now = read_refs_file(path).has_value();
    }
    if (good_now) {
        s.bad_records.erase(it);
        return fail(EALREADY, "'{}' reads as a valid record now; it was not moved", path);
    }
    auto slash = rel.rfind('/');
    std::string dir =
        s.path(slash == std::string::npos ? "quarantine" : "quarantine/" + rel.substr(0, slash));
    BERTH_TRY_VOID(mkdir_p(dir, 0700));
    std::string target = s.path("quarantine/" + rel);
    for (int n = 1; path_exists(target); n++) target = fmt::format("{}.{}", s.path("quarantine/" + rel), n);
    if (::rename(path.c_str(), target.c_str()) < 0)
        return fail_errno("quarantine '{}' to '{}'", path, target);
    s.bad_records.erase(it);
    if (rel.rfind("images/", 0) == 0)
        std::erase_if(s.kept_refs, [&](const auto& r) {
            return "images/" + std::string(digest_hex(r.second)) + ".json" == rel;
        });
    BERTH_TRY_VOID(fsync_directory(dir));
    BERTH_TRY_VOID(fsync_directory(path.substr(0, path.rfind('/'))));
    return target;
}

std::string Store::backend_name() const { return impl_->backend->name(); }
const StoreOptions& Store::options() const { return impl_->options; }
const std::string& Store::root() const { return impl_->root; }
std::string Store::pool_path() const { return impl_->pool_path; }
SnapshotBackend& Store::backend() { return *impl_->backend; }

// ---- images ----

Result<ImageInfo> Store::import_image(int fd, ImportFormat format, std::string_view name_tag,
                                      const ProgressFn& progress, const std::atomic<bool>* cancel) {
    BERTH_TRY_VOID(impl_->writable());
    struct stat st {};
    if (::fstat(fd, &st) < 0) return fail_errno("stat import input");
    if (S_ISDIR(st.st_mode) && format != ImportFormat::Auto && format != ImportFormat::OciLayout)
        return fail(EINVAL, "a directory can only be an OCI image layout");
    // The importers read index, manifest and config with nlohmann::json accessors that throw on
    // a value of the wrong type ({"mediaType": 5}, a manifest list entry that is a number): this
    // is their one exception boundary, so hostile metadata is a clean EBADMSG, not a dead berthd
    // (found by tests/fuzz/fuzz-oci-json). Staging and claims are RAII and unwind with the throw.
    try {
        if (S_ISDIR(st.st_mode))
            return with_context(import_from_dir(*impl_, fd, name_tag, progress, cancel),
                                "import OCI layout directory");
        return with_context(import_from_fd(*impl_, fd, format, name_tag, progress, cancel), "import image");
    } catch (const json::exception& e) {
        return fail(EBADMSG, "import image: invalid image metadata: {}", e.what());
    }
}

Result<ImageInfo> Store::import_image_path(const std::string& path, ImportFormat format,
                                           std::string_view name_tag, const ProgressFn& progress,
                                           const std::atomic<bool>* cancel) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return fail_errno("open '{}'", path);
    return with_context(import_image(fd.get(), format, name_tag, progress, cancel),
                        fmt::format("'{}'", path));
}

Result<ImageInfo> Store::import_arriving_layout(const std::string& dir, BlobFeed& arriving,
                                                std::string_view name_tag, const ProgressFn& progress,
                                                const std::atomic<bool>* cancel) {
    BERTH_TRY_VOID(impl_->writable());
    UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd) return fail_errno("open '{}'", dir);
    try {  // the exception boundary of import_image (above), for the same reason
        return with_context(import_from_dir(*impl_, fd.get(), name_tag, progress, cancel, &arriving),
                            fmt::format("'{}': import OCI layout directory", dir));
    } catch (const json::exception& e) {
        return fail(EBADMSG, "import image: invalid image metadata: {}", e.what());
    }
}

std::vector<ImageInfo> Store::list_images() const {
    std::lock_guard lock(impl_->mu);
    std::vector<ImageInfo> out;
    for (const auto& [_, i] : impl_->images) out.push_back(impl_->with_names(i));
    return out;
}

Result<ImageInfo> Store::get_image(std::string_view ref) const {
    std::lock_guard lock(impl_->mu);
    auto id = BERTH_TRY(impl_->resolve_locked(ref));
    return impl_->with_names(impl_->images.at(id));
}

Result<ImageRemoval> Store::remove_image(std::string_view ref, bool untag_only) {
    BERTH_TRY_VOID(impl_->writable());
    auto& s = *impl_;
    std::lock_guard lock(s.mu);
    auto id = BERTH_TRY(s.resolve_locked(ref));
    // A ref that is one of the image's names removes that name (Docker's untag); any other ref
    // (an id, an id prefix) names the image itself. resolve_locked tried names first too.
    std::optional<std::string> name;
    if (auto n = normalize_name_tag(ref); n && s.refs.count(*n)) name = *n;
    ImageRemoval done;
    std::vector<std::string> names;
    for (const auto& [n, target] : s.refs)
        if (target == id) names.push_back(n);
    if (untag_only && !name) return fail(EINVAL, "'{}' is not a name of an image", ref);
    std::vector<std::string> users;
    for (const auto& [container, c] : s.containers) {
        if (c.image_id == id) users.push_back(container);
        for (const auto& r : c.retained)
            if (r.image_id == id && c.image_id != id) {
                // Its earlier layer, kept for a roll-back, still needs the image.
                users.push_back(container + " (its retained earlier layer: 'berth rm " + container +
                                "' or 'berth gc' removes it)");
                break;
            }
    }
    // Every step changes memory only after the disk (issue #16): a names write that fails leaves
    // the names, a record that cannot go gets its names back.
    auto next = s.refs;
    if (name && (untag_only || names.size() > 1)) {
        next.erase(*name);
        BERTH_TRY_VOID(s.save_refs_locked(next));
        s.refs = std::move(next);
        done.untagged.push_back(*name);
        return done;
    }
    if (!users.empty())
        return fail(EBUSY, "image '{}' is used by container{} {}", ref, users.size() > 1 ? "s" : "",
                    join(users, ", "));
    if (!names.empty()) {
        for (const auto& n : names) next.erase(n);
        BERTH_TRY_VOID(s.save_refs_locked(next));
    }
    auto old_refs = std::exchange(s.refs, std::move(next));
    done.untagged = names;
    crash_point("remove-image:names-gone");
    // Its layers no other image uses wait for gc, which removes and reports them.
    std::set<std::string> still_used;
    for (const auto& [other, i] : s.images)
        if (other != id)
            for (const auto& l : i.layers) still_used.insert(l.chain_id);
    for (const auto& l : s.images.at(id).layers)
        if (!still_used.count(l.chain_id)) s.gc_pending.insert(l.chain_id);
    BERTH_TRY_VOID(s.save_gc_pending_locked());
    std::string file = s.path("images/" + std::string(digest_hex(id)) + ".json");
    if (::unlink(file.c_str()) < 0 && errno != ENOENT) {
        auto failed = fail_errno("remove '{}'", file);
        if (!names.empty() && s.save_refs_locked(old_refs)) s.refs = std::move(old_refs);
        return failed;
    }
    crash_point("remove-image:record-unlinked");
    s.images.erase(id);  // gone from the directory: gone from memory, even if the fsync fails
    BERTH_TRY_VOID(fsync_directory(s.path("images")));
    crash_point("remove-image:done");
    done.deleted = id;
    return done;
}

Result<> Store::tag_image(std::string_view ref, std::string_view name_tag) {
    BERTH_TRY_VOID(impl_->writable());
    auto& s = *impl_;
    auto name = BERTH_TRY(normalize_name_tag(name_tag));
    std::lock_guard lock(s.mu);
    auto id = BERTH_TRY(s.resolve_locked(ref));
    auto next = s.refs;
    next[name] = id;
    BERTH_TRY_VOID(s.save_refs_locked(next));
    s.refs = std::move(next);
    return {};
}

Result<> Store::add_repo_digest(std::string_view ref, std::string_view repo_digest) {
    BERTH_TRY_VOID(impl_->writable());
    auto& s = *impl_;
    std::lock_guard lock(s.mu);
    auto id = BERTH_TRY(s.resolve_locked(ref));
    ImageInfo info = s.images.at(id);
    auto& list = info.repo_digests;
    if (std::find(list.begin(), list.end(), repo_digest) != list.end()) return {};
    list.emplace_back(repo_digest);
    std::sort(list.begin(), list.end());
    json j = info;
    j.erase("names");
    BERTH_TRY_VOID(
        write_file_atomic(s.path("images/" + std::string(digest_hex(id)) + ".json"), j.dump(2) + "\n"));
    s.images[id] = std::move(info);
    return {};
}

Result<> Store::export_image(std::string_view ref, int fd, const std::atomic<bool>* cancel) {
    // Blobs are immutable and only gc removes them (never those of a listed image), so the
    // export streams without the metadata lock. Its layers and blobs are pinned: gc keeps them
    // (a layer rebuilt from its tar-split must not go while its files are read) without waiting
    // for an export that may stall on its reader.
    ImageInfo info = BERTH_TRY(get_image(ref));
    PinGuard pins(*impl_, info);
    return with_context(write_oci_archive(*impl_, info, fd, cancel), fmt::format("export image '{}'", ref));
}

Result<uint64_t> Store::write_image_blob(std::string_view ref, std::string_view digest, int fd) {
    ImageInfo info = BERTH_TRY(get_image(ref));
    PinGuard pins(*impl_, info);
    auto ctx = fmt::format("image '{}' blob '{}'", ref, digest);
    Sha256 hash;
    auto sink = [&](const char* data, size_t len) -> Result<> {
        hash.update(data, len);
        return write_all(fd, std::string_view(data, len), "the output");
    };
    Result<uint64_t> n = fail(ENOENT, "not a blob of this image");
    auto layer = std::find_if(info.layers.begin(), info.layers.end(),
                              [&](const LayerInfo& l) { return l.digest == digest; });
    if (layer != info.layers.end()) {
        n = impl_->stream_layer_blob(*layer, sink);
    } else if (digest == info.id || digest == info.config_digest) {
        LayerInfo whole;  // a manifest or config: always a kept blob
        whole.digest = std::string(digest);
        n = impl_->stream_layer_blob(whole, sink);
    }
    if (!n) return with_context(std::move(n), ctx);
    if (std::string got = hash.finish(); got != digest)
        return fail(EBADMSG, "{}: damaged in the store (its content hashes to '{}'): run 'berth fsck'", ctx,
                    got);
    return n;
}

// ---- containers ----

static Result<> remove_container_locked(Store::Impl& s, std::string_view name);
static Result<> remove_container_checked(Store::Impl& s, std::string_view name);

static std::string snapshot_id_for(std::string_view name, bool ephemeral) {
    return std::string(ephemeral ? "e-" : "c-") + std::string(name);
}

Result<uint64_t> process_start_time(int pid) {
    auto stat = read_file(fmt::format("/proc/{}/stat", pid));
    if (!stat) return fail(stat.error().code, "read the start time of process {}", pid);
    // "PID (COMM) STATE PPID ...": COMM may hold spaces and parentheses, so count fields after
    // the last ')'. STATE is field 3; starttime is field 22.
    auto close = stat->rfind(')');
    if (close == std::string::npos) return fail(EINVAL, "unexpected /proc/{}/stat", pid);
    std::istringstream fields(stat->substr(close + 1));
    std::string field;
    for (int i = 3; i <= 22; ++i)
        if (!(fields >> field)) return fail(EINVAL, "unexpected /proc/{}/stat", pid);
    return std::strtoull(field.c_str(), nullptr, 10);
}

bool container_in_use(const ContainerInfo& c) {
    if (!c.in_use) return false;
    if (c.holder_pid <= 0) return true;  // holder unknown (old record): in use until released
    auto start = process_start_time(c.holder_pid);
    return start && *start == c.holder_start_time;
}

// Marks `c` in use by `holder` (0 = this process).
static void set_holder(ContainerInfo& c, int holder) {
    c.in_use = true;
    c.holder_pid = holder > 0 ? holder : static_cast<int>(::getpid());
    // A holder already gone gets start time 0, which no live process has: the mark is stale.
    c.holder_start_time = process_start_time(c.holder_pid).value_or(0);
}

static Result<> save_container(Store::Impl& s, const ContainerInfo& c) {
    return write_file_atomic(s.path("containers/" + c.name + ".json"), json(c).dump(2) + "\n");
}

Result<PreparedContainer> Store::prepare_container(std::string_view name, std::string_view image_ref,
                                                   bool ephemeral, int holder, ImageChangePolicy on_change) {
    BERTH_TRY_VOID(impl_->writable());
    auto& s = *impl_;
    BERTH_TRY_VOID(check_object_name(NameKind::Container, name));
    std::lock_guard lock(s.mu);
    std::string key(name);
    std::optional<ImageInfo> image;
    if (!image_ref.empty())
        image = s.images.at(
            BERTH_TRY_CTX(s.resolve_locked(image_ref), fmt::format("prepare container '{}'", name)));
    const std::string image_id = image ? image->id : "";
    auto it = s.containers.find(key);
    PreparedContainer out;
    std::vector<RetainedLayer> retained;
    std::string snapshot_id = snapshot_id_for(name, ephemeral);
    if (it != s.containers.end() && !ephemeral && !it->second.ephemeral) {
        // Image ids, not names: a tag re-imported onto another image is a change too.
        ImageChange change;
        change.changed = it->second.image_id != image_id;
        change.old_image_id = it->second.image_id;
        change.new_image_id = image_id;
        if (!change.changed || on_change == ImageChangePolicy::Keep) {
            // A persistent container keeps its tree (and the image it was made from).
            out.snapshot_id = it->second.snapshot_id;
            out.image_id = it->second.image_id;
            out.image_change = change;
            out.rootfs = BERTH_TRY_CTX(s.backend->snapshot_mount(out.snapshot_id),
                                       fmt::format("prepare container '{}'", name));
            // The latest preparer holds it (a restarted runtime replaces a dead one).
            ContainerInfo c = it->second;
            set_holder(c, holder);
            if (!it->second.in_use || c.holder_pid != it->second.holder_pid ||
                c.holder_start_time != it->second.holder_start_time) {
                BERTH_TRY_VOID(save_container(s, c));
                it->second = c;
            }
            auto img = s.images.find(out.image_id);
            if (img != s.images.end()) out.config = img->second.config;
            return out;
        }
        // Recreate: a fresh layer under a new snapshot id; the old one is retained (deactivated,
        // its data untouched) until `berth rm` or gc, so an update can be rolled back to it.
        const ContainerInfo& old = it->second;
        if (container_in_use(old) && old.holder_pid != (holder > 0 ? holder : ::getpid()))
            return fail(EBUSY,
                        "prepare container '{}': its image changed, but its layer is in use by process {}; "
                        "stop the container first",
                        name, old.holder_pid);
        BERTH_TRY_VOID_CTX(s.backend->release_snapshot(old.snapshot_id),
                           fmt::format("prepare container '{}': retain the old layer", name));
        retained = old.retained;
        retained.push_back({old.snapshot_id, old.image_id, old.created, now_seconds()});
        snapshot_id += "-" + random_token();
        change.recreated = true;
        change.retained_snapshot = old.snapshot_id;
        out.image_change = change;
    } else if (it != s.containers.end()) {
        // Ephemeral (or switching kind): a fresh tree each start.
        BERTH_TRY_VOID(with_context(remove_container_locked(s, name), "replace previous snapshot"));
    }
    ContainerInfo c;
    c.name = key;
    c.image_id = image_id;
    c.snapshot_id = snapshot_id;
    c.ephemeral = ephemeral;
    c.created = now_seconds();
    c.retained = std::move(retained);
    set_holder(c, holder);
    std::optional<std::string> layer;
    if (image && !image->top_layer.empty()) layer = image->top_layer;
    // The new snapshot first, then the record naming it: a crash in between leaves an orphan
    // snapshot that reconcile() removes, and the old record (old layer) intact.
    out.rootfs = BERTH_TRY_CTX(s.backend->prepare_snapshot(c.snapshot_id, layer),
                               fmt::format("prepare container '{}'", name));
    crash_point("prepare-container:snapshot-made");
    auto saved = save_container(s, c);
    if (!saved) {
        (void)s.backend->remove_snapshot(c.snapshot_id);
        return fail(std::move(saved.error()));
    }
    s.containers[key] = c;
    out.snapshot_id = c.snapshot_id;
    out.image_id = c.image_id;
    if (image) out.config = image->config;
    return out;
}

// Caller holds s.mu. Metadata goes first: a crash then leaves an orphan snapshot that
// reconcile() removes, never a container whose tree is gone. A removal answers for what it did
// (issue #16): when the snapshot cannot go, the record is written back and the container stays,
// whole; only when even that fails is the container gone, and its snapshot is then an orphan that
// the next open (reconcile) or gc removes, so the removal succeeded as far as a client can tell.
static Result<> remove_container_locked(Store::Impl& s, std::string_view name) {
    auto it = s.containers.find(std::string(name));
    if (it == s.containers.end()) return fail(ENOENT, "container '{}' not found", name);
    ContainerInfo c = it->second;
    std::string file = s.path("containers/" + c.name + ".json");
    if (::unlink(file.c_str()) < 0 && errno != ENOENT) return fail_errno("remove '{}'", file);
    s.containers.erase(it);
    BERTH_TRY_VOID(fsync_directory(s.path("containers")));
    crash_point("remove-container:record-gone");
    std::vector<std::string> snaps;
    append_snapshots(c, snaps);
    for (const auto& id : snaps) {
        auto r = s.backend->remove_snapshot(id);
        if (!r && r.error().code != ENOENT) {
            if (!write_file_atomic(file, json(c).dump(2) + "\n")) return {};
            s.containers[c.name] = c;
            return fail(std::move(r.error()).wrap(
                fmt::format("remove container '{}' (kept: its snapshot could not be removed)", name)));
        }
    }
    crash_point("remove-container:done");
    return {};
}

Result<> Store::release_container(std::string_view name) {
    BERTH_TRY_VOID(impl_->writable());
    auto& s = *impl_;
    std::lock_guard lock(s.mu);
    auto it = s.containers.find(std::string(name));
    if (it == s.containers.end()) return fail(ENOENT, "container '{}' not found", name);
    if (it->second.ephemeral) return remove_container_locked(s, name);
    BERTH_TRY_VOID(s.backend->release_snapshot(it->second.snapshot_id));
    if (it->second.in_use) {
        ContainerInfo c = it->second;
        c.in_use = false;
        c.holder_pid = 0;
        c.holder_start_time = 0;
        BERTH_TRY_VOID(save_container(s, c));
        it->second = c;
    }
    return {};
}

// The writable layer the runtime makes for a `rootfs =` container (runtime/container-rootfs.cpp:
// STATE_DIR/rootfs-layers/NAME, the store root by default). No record: the directory is all.
static std::string rootfs_layer_path(const Store::Impl& s, std::string_view name) {
    return s.path("rootfs-layers/" + std::string(name));
}

Result<> Store::remove_container(std::string_view name) {
    BERTH_TRY_VOID(impl_->writable());
    BERTH_TRY_VOID(check_object_name(NameKind::Container, name));
    std::lock_guard lock(impl_->mu);
    const std::string rootfs_layer = rootfs_layer_path(*impl_, name);
    if (!impl_->containers.count(std::string(name)) && is_directory(rootfs_layer))
        return with_context(remove_tree(rootfs_layer), fmt::format("remove container '{}'", name));
    BERTH_TRY_VOID(remove_container_checked(*impl_, name));
    if (is_directory(rootfs_layer))
        BERTH_TRY_VOID_CTX(remove_tree(rootfs_layer), fmt::format("remove container '{}'", name));
    return {};
}

Result<GcReport> Store::prune_containers(const std::vector<std::string>& keep) {
    auto& s = *impl_;
    std::set<std::string> declared(keep.begin(), keep.end());
    std::map<std::string, uint64_t> sizes;
    for (const auto& sn : s.backend->list_snapshots())
        if (sn.exclusive_bytes != kSizeUnknown) sizes[sn.id] = sn.exclusive_bytes;
    std::lock_guard lock(s.mu);
    GcReport report;
    std::vector<std::string> names;
    for (const auto& [n, c] : s.containers)
        if (!declared.count(n) && !container_in_use(c)) names.push_back(n);
    for (const auto& n : names) {
        std::vector<std::string> ids;
        append_snapshots(s.containers.at(n), ids);
        BERTH_TRY_VOID(remove_container_locked(s, n));
        uint64_t bytes = 0;
        for (const auto& id : ids)
            if (auto sz = sizes.find(id); sz != sizes.end()) bytes += sz->second;
        report.sizes[n] = bytes;
        report.bytes_freed += bytes;
        report.removed_containers.push_back(n);
    }
    // rootfs layers: a live run holds an overlay on it; the runtime's lock tells, not the store.
    // The caller (berth prune) checks that no declared-or-not container of that name runs.
    for (const auto& n : list_dir(s.path("rootfs-layers"))) {
        if (declared.count(n) || !valid_object_name(n)) continue;
        std::string path = rootfs_layer_path(s, n);
        uint64_t bytes = disk_usage(path);
        BERTH_TRY_VOID_CTX(remove_tree(path), fmt::format("prune container '{}'", n));
        std::string what = "rootfs-layers/" + n;
        report.sizes[what] = bytes;
        report.bytes_freed += bytes;
        report.removed_containers.push_back(what);
    }
    return report;
}

// Caller holds s.mu.
static Result<> remove_container_checked(Store::Impl& s, std::string_view name) {
    auto it = s.containers.find(std::string(name));
    if (it != s.containers.end() && container_in_use(it->second))
        return fail(
            EBUSY,
            "cannot remove container '{}': its snapshot is in use (prepared by {}, still running); "
            "stop the container (or release its snapshot) first",
            name,
            it->second.holder_pid > 0 ? fmt::format("process {}", it->second.holder_pid) : "a container");
    return remove_container_locked(s, name);
}

std::vector<ContainerInfo> Store::list_containers() const {
    std::lock_guard lock(impl_->mu);
    std::vector<ContainerInfo> out;
    for (const auto& [_, c] : impl_->containers) {
        out.push_back(c);
        out.back().in_use = container_in_use(c);  // a stale mark reads as not in use
    }
    return out;
}

Result<ContainerInfo> Store::get_container(std::string_view name) const {
    std::lock_guard lock(impl_->mu);
    auto it = impl_->containers.find(std::string(name));
    if (it == impl_->containers.end()) return fail(ENOENT, "container '{}' not found", name);
    ContainerInfo c = it->second;
    c.in_use = container_in_use(c);
    return c;
}

Result<ImageInfo> Store::commit_container(std::string_view name, std::string_view name_tag) {
    BERTH_TRY_VOID(impl_->writable());
    auto c = BERTH_TRY(get_container(name));
    return with_context(commit_to_image(*impl_, c, name_tag), fmt::format("commit container '{}'", name));
}

Result<> Store::export_container(std::string_view name, int fd) {
    auto c = BERTH_TRY(get_container(name));
    auto view = BERTH_TRY_CTX(impl_->backend->snapshot_view(c.snapshot_id),
                              fmt::format("export container '{}'", name));
    auto r = write_tree_tar(view, fd);
    (void)impl_->backend->release_snapshot_view(c.snapshot_id);
    if (!r) return fail(std::move(r.error()).wrap(fmt::format("export container '{}'", name)));
    return {};
}

// ---- volumes ----

Result<VolumeInfo> Store::create_volume(std::string_view name) {
    BERTH_TRY_VOID(impl_->writable());
    auto& s = *impl_;
    BERTH_TRY_VOID(check_object_name(NameKind::Volume, name));
    std::lock_guard lock(s.mu);
    std::string key(name);
    auto mount = BERTH_TRY_CTX(s.backend->create_volume("v-" + key), fmt::format("create volume '{}'", name));
    auto it = s.volumes.find(key);
    if (it != s.volumes.end()) {
        it->second.mount = mount;
        return it->second;
    }
    VolumeInfo v;
    v.name = key;
    v.created = now_seconds();
    v.mount = mount;
    BERTH_TRY_VOID(write_file_atomic(s.path("volumes/" + key + ".json"), json(v).dump(2) + "\n"));
    s.volumes[key] = v;
    return v;
}

// A volume's users live beside its record, in ROOT/volumes/<name>.users, replaced with a rename
// but never fsynced: they describe running processes, which a power loss ends anyway, so losing
// the file costs nothing, while an fsync would put one flush of the store's file system into
// every container start (about 8 ms here). The record itself stays write_file_atomic.
static std::string users_file(const Store::Impl& s, const std::string& key) {
    return s.path("volumes/" + key + ".users");
}

static Result<> save_users(const Store::Impl& s, const std::string& key,
                           const std::vector<VolumeUser>& users) {
    std::string path = users_file(s, key);
    if (users.empty()) {
        if (::unlink(path.c_str()) < 0 && errno != ENOENT) return fail_errno("remove '{}'", path);
        return {};
    }
    std::string tmp = fmt::format("{}.tmp-{}", path, ::getpid());  // open() removes a leftover
    BERTH_TRY_VOID(write_file(tmp, json(users).dump() + "\n"));
    if (::rename(tmp.c_str(), path.c_str()) < 0) {
        int e = errno;
        ::unlink(tmp.c_str());
        return fail(e, "replace '{}'", path);
    }
    return {};
}

// Unreadable or damaged: no users (they would be processes of a boot that ended in a crash).
static std::vector<VolumeUser> load_users(const Store::Impl& s, const std::string& key) {
    auto text = read_file(users_file(s, key));
    if (!text) return {};
    auto users = parse_json_as<std::vector<VolumeUser>>(*text, users_file(s, key));
    return users ? std::move(*users) : std::vector<VolumeUser>{};
}

bool volume_user_alive(const VolumeUser& u) {
    if (u.pid <= 0) return false;
    auto start = process_start_time(u.pid);
    return start && *start == u.start_time;
}

// `v` with only its live users.
static VolumeInfo with_live_users(VolumeInfo v) {
    std::erase_if(v.users, [](const VolumeUser& u) { return !volume_user_alive(u); });
    return v;
}

std::vector<VolumeInfo> Store::list_volumes() const {
    std::lock_guard lock(impl_->mu);
    std::vector<VolumeInfo> out;
    for (const auto& [_, v] : impl_->volumes) out.push_back(with_live_users(v));
    return out;
}

Result<VolumeInfo> Store::get_volume(std::string_view name) const {
    std::lock_guard lock(impl_->mu);
    auto it = impl_->volumes.find(std::string(name));
    if (it == impl_->volumes.end()) return fail(ENOENT, "volume '{}' not found", name);
    return with_live_users(it->second);
}

Result<Store::VolumeUse> Store::use_volume(std::string_view name, std::string_view container, int holder) {
    BERTH_TRY_VOID(impl_->writable());
    auto& s = *impl_;
    BERTH_TRY_VOID(check_object_name(NameKind::Volume, name));
    BERTH_TRY_VOID(check_object_name(NameKind::Container, container));
    std::lock_guard lock(s.mu);
    std::string key(name);
    auto mount = BERTH_TRY_CTX(s.backend->create_volume("v-" + key), fmt::format("create volume '{}'", name));
    VolumeUse use;
    auto it = s.volumes.find(key);
    use.created = it == s.volumes.end();
    VolumeInfo v;
    if (use.created) {
        v.name = key;
        v.created = now_seconds();
    } else {
        v = it->second;
    }
    v.mount = mount;
    VolumeUser u;
    u.container = std::string(container);
    u.pid = holder > 0 ? holder : static_cast<int>(::getpid());
    // A holder already gone gets start time 0, which no live process has: the entry is stale.
    u.start_time = process_start_time(u.pid).value_or(0);
    std::erase_if(v.users,
                  [&](const VolumeUser& e) { return e.container == u.container || !volume_user_alive(e); });
    v.users.push_back(std::move(u));
    // Written before the volume is handed out: a crash after this leaves a user entry that goes
    // stale with its process, never a user the store does not know about.
    std::string file = s.path("volumes/" + key + ".json");
    if (use.created) BERTH_TRY_VOID(write_file_atomic(file, json(v).dump(2) + "\n"));
    if (auto saved = save_users(s, key, v.users); !saved) {
        // Not handed out: a volume this call created goes again (its backend data is an orphan
        // for reconcile), so memory and disk agree on whether it exists.
        if (use.created && ::unlink(file.c_str()) < 0 && errno != ENOENT) {
            v.users.clear();
            s.volumes[key] = v;
        }
        return fail(std::move(saved.error()));
    }
    s.volumes[key] = v;
    use.volume = with_live_users(std::move(v));
    return use;
}

Result<> Store::release_volume(std::string_view name, std::string_view container) {
    BERTH_TRY_VOID(impl_->writable());
    auto& s = *impl_;
    std::lock_guard lock(s.mu);
    auto it = s.volumes.find(std::string(name));
    if (it == s.volumes.end()) return fail(ENOENT, "volume '{}' not found", name);
    VolumeInfo v = it->second;
    auto n = std::erase_if(
        v.users, [&](const VolumeUser& e) { return e.container == container || !volume_user_alive(e); });
    if (n == 0) return {};
    BERTH_TRY_VOID(save_users(s, it->first, v.users));
    it->second = std::move(v);
    return {};
}

Result<> Store::remove_volume(std::string_view name) {
    BERTH_TRY_VOID(impl_->writable());
    auto& s = *impl_;
    std::lock_guard lock(s.mu);
    auto it = s.volumes.find(std::string(name));
    if (it == s.volumes.end()) return fail(ENOENT, "volume '{}' not found", name);
    // Deleting a volume under a running container would pull its data away mid-run (and a
    // mounted btrfs subvolume or thin device cannot be deleted cleanly anyway): refused while a
    // process that mounted it lives. There is no force: nothing makes that safe.
    std::vector<std::string> users;
    for (const auto& u : it->second.users)
        if (volume_user_alive(u)) users.push_back(fmt::format("'{}' (process {})", u.container, u.pid));
    if (!users.empty())
        return fail(EBUSY, "volume '{}' is in use by container{} {}", name, users.size() > 1 ? "s" : "",
                    fmt::join(users, ", "));
    // As remove_container_locked: record first, memory with it, the record back when the data
    // cannot go.
    std::string file = s.path("volumes/" + it->first + ".json");
    if (::unlink(file.c_str()) < 0 && errno != ENOENT) return fail_errno("remove '{}'", file);
    (void)::unlink(users_file(s, it->first).c_str());
    VolumeInfo v = std::move(it->second);
    s.volumes.erase(it);
    BERTH_TRY_VOID(fsync_directory(s.path("volumes")));
    auto r = s.backend->remove_volume("v-" + v.name);
    if (!r && r.error().code != ENOENT) {
        VolumeInfo record = v;
        record.users.clear();  // users live in their own file, which is gone
        if (!write_file_atomic(file, json(record).dump(2) + "\n")) return {};
        s.volumes[v.name] = std::move(record);
        return fail(std::move(r.error()).wrap(
            fmt::format("remove volume '{}' (kept: its data could not be removed)", name)));
    }
    return {};
}

// ---- gc / df ----

// A file gc removes: the space it takes on disk (st_blocks: a sparse or small file frees what it
// had allocated, not its length).
static void add_size(GcReport& report, const std::string& what, const struct stat& st) {
    uint64_t bytes = static_cast<uint64_t>(st.st_blocks) * 512;
    report.sizes[what] = bytes;
    report.bytes_freed += bytes;
}

// Caller holds s.mu. gc's first step: every retained earlier layer (prepare_container's Recreate)
// goes, and with it what pinned the images it was made from. The record is rewritten first, so a
// crash leaves an orphan snapshot for reconcile(), never a record naming a missing one.
static Result<> remove_retained_locked(Store::Impl& s, GcReport& report) {
    std::map<std::string, uint64_t> sizes;
    bool any = false;
    for (const auto& [_, c] : s.containers) any = any || !c.retained.empty();
    if (!any) return {};
    for (const auto& sn : s.backend->list_snapshots())
        if (sn.exclusive_bytes != kSizeUnknown) sizes[sn.id] = sn.exclusive_bytes;
    for (auto& [name, c] : s.containers) {
        if (c.retained.empty()) continue;
        ContainerInfo updated = c;
        updated.retained.clear();
        BERTH_TRY_VOID(save_container(s, updated));
        auto gone = std::move(c.retained);
        c = std::move(updated);
        for (const auto& r : gone) {
            auto removed = s.backend->remove_snapshot(r.snapshot_id);
            if (!removed && removed.error().code != ENOENT)
                return fail(std::move(removed.error())
                                .wrap(fmt::format("remove retained layer '{}' of container '{}'",
                                                  r.snapshot_id, name)));
            std::string what = name + " " + r.snapshot_id;
            report.removed_retained.push_back(what);
            if (auto sz = sizes.find(r.snapshot_id); sz != sizes.end()) {
                report.sizes[what] = sz->second;
                report.bytes_freed += sz->second;
            }
        }
    }
    return {};
}

// gc plans under the store mutex and deletes the bulk outside it (issue #16: a layer of 100k files
// held the mutex for 8-9 s and froze every caller, even Peer.Ping):
//   - under the mutex: what to keep (images' layers and blobs, plus what imports have claimed and
//     exports have pinned: gc never waits for them, a stalled one must not stall gc); unreferenced
//     blobs and tar-splits are unlinked there (a few files); unreferenced layers are *claimed* by
//     gc, so an import wanting one waits until it is gone and then builds it afresh;
//   - outside it: the claimed layers are removed, children before parents, then unclaimed.
// The backend's reconcile() (staging, views, orphan snapshots) sweeps in-flight work, so it runs
// only when no import or commit is in flight; the next gc or open() catches what it leaves.
Result<GcReport> Store::gc() {
    BERTH_TRY_VOID(impl_->writable());
    auto& s = *impl_;
    std::unique_lock lock(s.mu);
    s.cv.wait(lock, [&] { return !s.gc_running; });
    if (!s.bad_records.empty())
        return fail(EUCLEAN, "store has {} unreadable metadata record{} ({}): run 'berth fsck' first",
                    s.bad_records.size(), s.bad_records.size() > 1 ? "s" : "", s.bad_records.front().path);
    s.gc_running = true;              // one gc at a time
    std::vector<std::string> doomed;  // layers this gc claimed: removed outside the lock
    ScopeExit done([&] {
        if (!lock.owns_lock()) lock.lock();
        for (const auto& l : doomed) s.claimed_layers.erase(l);
        s.gc_running = false;
        s.cv.notify_all();
    });
    GcReport report;
    BERTH_TRY_VOID_CTX(remove_retained_locked(s, report), "gc");
    std::set<std::string> layers, blobs;
    for (const auto& [id, i] : s.images) {
        blobs.insert(id);
        blobs.insert(i.config_digest);
        for (const auto& l : i.layers) {
            layers.insert(l.chain_id);
            blobs.insert(l.digest);
        }
    }
    layers.insert(s.claimed_layers.begin(), s.claimed_layers.end());
    for (const auto& p : s.pinned) {
        layers.insert(p);
        blobs.insert(p);
    }
    if (auto all = s.backend->list_layers())
        for (auto& l : *all)
            if (!layers.count(l)) doomed.push_back(std::move(l));
    for (const auto& l : doomed) s.claimed_layers.insert(l);
    // Nothing in flight: no import or commit (their staging, backend writers) and no export (its
    // layer views, which reconcile() unmounts).
    const bool quiet = s.active_imports == 0 && s.pinned.empty();
    std::vector<std::string> snaps;
    for (const auto& [_, c] : s.containers) append_snapshots(c, snaps);
    for (const auto& [n, _] : s.volumes) snaps.push_back("v-" + n);
    crash_point("gc:start");
    if (quiet) {
        // Leaves the doomed layers to the removal below, outside the lock.
        std::vector<std::string> keep(layers.begin(), layers.end());
        keep.insert(keep.end(), doomed.begin(), doomed.end());
        auto removed = BERTH_TRY_CTX(s.backend->reconcile(keep, snaps), "gc");
        for (const auto& [what, bytes] : removed.bytes) {
            report.sizes[what] = bytes;
            report.bytes_freed += bytes;
        }
        report.removed_layers = std::move(removed.layers);
        report.removed_containers = std::move(removed.snapshots);
        for (auto& v : removed.volumes)  // the backend knows a volume as "v-<name>" (see above)
            report.removed_volumes.push_back(v.rfind("v-", 0) == 0 ? v.substr(2) : std::move(v));
        report.removed_other = std::move(removed.other);
    }
    // A tar-split lives as long as its layer is referenced (it rebuilds from that layer).
    for (const auto& hex : list_dir(s.path("splits"))) {
        if (layers.count("sha256:" + hex)) continue;
        std::string p = s.path("splits/" + hex);
        struct stat st {};
        if (::lstat(p.c_str(), &st) == 0) add_size(report, "tar-split sha256:" + hex, st);
        if (::unlink(p.c_str()) < 0 && errno != ENOENT) return fail_errno("gc: remove tar-split '{}'", hex);
        report.removed_other.push_back("tar-split sha256:" + hex);
    }
    for (const auto& hex : list_dir(s.path("blobs/sha256"))) {
        std::string d = "sha256:" + hex;
        if (blobs.count(d)) continue;
        std::string p = s.path("blobs/sha256/" + hex);
        struct stat st {};
        if (::lstat(p.c_str(), &st) == 0) add_size(report, d, st);
        if (::unlink(p.c_str()) < 0 && errno != ENOENT) return fail_errno("gc: remove blob '{}'", d);
        report.removed_blobs.push_back(d);
        crash_point("gc:one-blob-gone");
    }
    // Staging areas of crashed imports; an import started after this list makes a new one.
    std::vector<std::string> stale = quiet ? list_dir(s.path("staging")) : std::vector<std::string>{};
    lock.unlock();

    for (const auto& n : stale) {
        BERTH_TRY_VOID(remove_tree(s.path("staging/" + n)));
        report.removed_other.push_back("staging " + n);
    }
    // Children before parents: a pass removes what has no child left, until none goes.
    std::vector<std::string> left = doomed;
    for (bool progress = true; progress && !left.empty();) {
        progress = false;
        std::vector<std::string> next;
        for (const auto& l : left) {
            // Measured before it goes: gc reports what it freed (issue #15 item 6).
            auto bytes = s.backend->layer_bytes(l);
            auto r = s.backend->remove_layer(l);
            if (r || r.error().code == ENOENT) {
                report.removed_layers.push_back(l);
                if (r && bytes) {
                    report.sizes[l] = *bytes;
                    report.bytes_freed += *bytes;
                }
                progress = true;
            } else if (r.error().code == EBUSY) {
                next.push_back(l);  // a child (or a snapshot) still uses it
            } else {
                return fail(std::move(r.error()).wrap("gc"));
            }
        }
        left = std::move(next);
    }
    crash_point("gc:layers-gone");
    // Layers an image removal left for gc (gc-pending.json) are reported now: forget them.
    lock.lock();
    size_t pending = s.gc_pending.size();
    for (const auto& l : report.removed_layers) s.gc_pending.erase(l);
    if (s.gc_pending.size() != pending) BERTH_TRY_VOID_CTX(s.save_gc_pending_locked(), "gc");
    return report;
}

// The mount holding `path` (the deepest whose target is `path` or above it, whole components).
static void describe_filesystem(const std::string& path, DfReport& r) {
    char* real = ::realpath(path.c_str(), nullptr);
    std::string where = real ? real : path;
    std::free(real);
    auto table = read_mount_table();
    if (!table) return;
    size_t best = 0;
    for (const auto& m : *table) {
        bool above = m.target == "/" || where == m.target ||
                     (where.compare(0, m.target.size(), m.target) == 0 && where[m.target.size()] == '/');
        if (above && m.target.size() >= best) {  // later mounts over the same target win
            best = m.target.size();
            r.fs_type = m.fstype;
            r.fs_source = m.source;
            r.fs_mount = m.target;
        }
    }
}

Result<DfReport> Store::df() const {
    auto& s = *impl_;
    DfReport r;
    r.backend = s.backend->name();
    describe_filesystem(s.root, r);
    r.pool = BERTH_TRY(s.backend->usage());
    // A backend whose list reads state that prepare/release/remove change under s.mu (dm-thin's
    // device map, one thin_ls, tens of ms) is listed under the lock; btrfs and overlay walk their
    // trees, which can take long, so they are listed outside it and never hold up other calls.
    std::unique_lock lock(s.mu, std::defer_lock);
    if (s.backend->capabilities().list_under_store_lock) lock.lock();
    auto snaps = s.backend->list_snapshots();
    r.size_note = s.backend->size_note();
    if (!lock.owns_lock()) lock.lock();
    std::map<std::string, int> layer_users;
    for (const auto& [_, i] : s.images)
        for (const auto& l : i.layers) ++layer_users[l.chain_id];
    for (const auto& [id, i] : s.images) {
        DfEntry e;
        auto named = s.with_names(i);
        e.name = named.names.empty() ? id.substr(0, 19) : named.names.front();
        e.id = id;
        e.size = i.size;
        for (const auto& l : i.layers)
            (layer_users[l.chain_id] > 1 ? e.shared_size : e.unique_size) += l.size;
        for (const auto& [_, c] : s.containers)
            if (c.image_id == id) ++e.containers;
        r.images.push_back(std::move(e));
    }
    for (const auto& [n, c] : s.containers) {
        std::vector<std::string> ids;
        append_snapshots(c, ids);  // its layer, then retained earlier ones (same name, own id)
        for (const auto& id : ids) {
            DfEntry e;
            e.name = n;
            e.id = id;
            for (const auto& sn : snaps)
                if (sn.id == id) e.size = sn.exclusive_bytes;
            r.containers.push_back(std::move(e));
        }
    }
    for (const auto& n : list_dir(s.path("rootfs-layers"))) {  // `rootfs =` containers' layers
        if (!valid_object_name(n)) continue;
        DfEntry e;
        e.name = n;
        e.id = "rootfs-layers/" + n;
        e.size = disk_usage(rootfs_layer_path(s, n));
        r.containers.push_back(std::move(e));
    }
    for (const auto& [n, v] : s.volumes) {
        DfEntry e;
        e.name = n;
        e.id = n;
        for (const auto& sn : snaps)
            if (sn.id == "v-" + n) e.size = sn.exclusive_bytes;
        r.volumes.push_back(std::move(e));
    }
    for (const auto& hex : list_dir(s.path("blobs/sha256"))) {
        struct stat st {};
        if (::lstat(s.path("blobs/sha256/" + hex).c_str(), &st) == 0)
            r.blobs_size += static_cast<uint64_t>(st.st_size);
    }
    for (const auto& hex : list_dir(s.path("splits"))) {  // what the store keeps of split layer blobs
        struct stat st {};
        if (::lstat(s.path("splits/" + hex).c_str(), &st) == 0)
            r.blobs_size += static_cast<uint64_t>(st.st_size);
    }
    return r;
}

Result<PoolUsage> Store::pool_usage() const { return impl_->backend->usage(); }

// ---- helpers ----

Result<ImportFormat> parse_import_format(std::string_view text) {
    if (text == "auto") return ImportFormat::Auto;
    if (text == "oci" || text == "oci-layout" || text == "oci-archive") return ImportFormat::OciLayout;
    if (text == "docker-archive" || text == "docker") return ImportFormat::DockerArchive;
    if (text == "rootfs" || text == "tar" || text == "rootfs-tar") return ImportFormat::RootfsTar;
    return fail(EINVAL, "unknown image format '{}' (auto, oci, docker-archive, rootfs)", text);
}

std::string_view to_string(ImportFormat format) {
    switch (format) {
        case ImportFormat::Auto:
            return "auto";
        case ImportFormat::OciLayout:
            return "oci";
        case ImportFormat::DockerArchive:
            return "docker-archive";
        case ImportFormat::RootfsTar:
            return "rootfs";
    }
    return "auto";
}

Result<std::string> normalize_name_tag(std::string_view name_tag) { return normalize_image_name(name_tag); }

// Snapshot ids: "c-NAME" of a template's instance "web@1" holds its '@'.
bool valid_object_name(std::string_view name) {
    return is_plain_name(name, kSnapshotIdMax) || is_instance_name(name, kSnapshotIdMax);
}

}  // namespace berth::store
