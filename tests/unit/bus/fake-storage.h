// An in-memory Storage for testing the bus layer without the store library: imports read the fd
// to EOF (so a test holding a pipe open keeps an import running) and name the image by a hash of
// the bytes. Thread-safe like the real store.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <map>
#include <mutex>

#include "bus/storage.h"

namespace berth::test {

class FakeStorage final : public bus::Storage {
public:
    std::string mode() const override { return "fake"; }

    Result<bus::ImageInfo> import_image(int fd, const std::string&, const std::string& name,
                                        const bus::ProgressFn& progress,
                                        const std::atomic<bool>& cancel) override {
        std::string data;
        char buf[4096];
        for (;;) {
            if (cancel) return fail(ECANCELED, "import cancelled");
            ssize_t n = ::read(fd, buf, sizeof buf);
            if (n < 0) return fail_errno("read image");
            if (n == 0) break;
            data.append(buf, static_cast<size_t>(n));
            if (progress) progress(0.5, data.size());
        }
        if (data.rfind("BAD", 0) == 0)
            return fail(EBADMSG, "archive entry '../etc/passwd': path escapes the layer");
        bus::ImageInfo info;
        info.id = fmt::format("sha256:{:064x}", std::hash<std::string>{}(data));
        if (!name.empty())
            info.names.push_back(name.find(':') == std::string::npos ? name + ":latest" : name);
        info.size = data.size();
        info.created_usec = 1700000000000000ull;
        info.layers = {info.id};
        info.config.cmd = {"/bin/sh"};
        std::lock_guard lock(mutex_);
        images_[info.id] = info;
        return info;
    }

    Result<std::vector<bus::ImageInfo>> list_images() override {
        std::lock_guard lock(mutex_);
        std::vector<bus::ImageInfo> out;
        for (auto& [id, i] : images_) out.push_back(i);
        return out;
    }

    Result<bus::ImageInfo> get_image(const std::string& ref) override {
        std::lock_guard lock(mutex_);
        auto* i = find(ref);
        if (!i) return fail(ENOENT, "no image '{}'", ref);
        return *i;
    }

    Result<store::ImageRemoval> remove_image(const std::string& ref) override {
        std::lock_guard lock(mutex_);
        auto* i = find(ref);
        if (!i) return fail(ENOENT, "no image '{}'", ref);
        store::ImageRemoval done{i->names, i->id};
        images_.erase(i->id);
        return done;
    }

    Result<> tag_image(const std::string& ref, const std::string& name) override {
        std::lock_guard lock(mutex_);
        auto* i = find(ref);
        if (!i) return fail(ENOENT, "no image '{}'", ref);
        i->names.push_back(name);
        return {};
    }

    Result<> export_image(const std::string& ref, int fd, const std::string&,
                          const std::atomic<bool>* = nullptr) override {
        auto i = BERTH_TRY(get_image(ref));
        std::string text = "exported " + i.id + "\n";
        if (::write(fd, text.data(), text.size()) < 0) return fail_errno("write export");
        return {};
    }

    Result<bus::PreparedContainer> prepare_container(
        const std::string& name, const std::string& image, bool ephemeral, int = 0,
        store::ImageChangePolicy = store::ImageChangePolicy::Recreate) override {
        auto i = BERTH_TRY(get_image(image));
        std::lock_guard lock(mutex_);
        containers_[name] = bus::ContainerInfo{name, i.id, i.layers.back(), ephemeral, 0};
        bus::PreparedContainer p;
        p.snapshot_id = name;
        p.rootfs.kind = store::MountSpec::Kind::Overlay;
        p.rootfs.lowerdirs = {"/fake/layers/1", "/fake/layers/0"};
        p.rootfs.upperdir = "/fake/containers/" + name + "/upper";
        p.rootfs.workdir = "/fake/containers/" + name + "/work";
        p.config = i.config;
        return p;
    }
    Result<> release_container(const std::string& name) override { return exists(name); }
    Result<> remove_container(const std::string& name) override {
        BERTH_TRY_VOID(exists(name));
        std::lock_guard lock(mutex_);
        containers_.erase(name);
        return {};
    }
    Result<bus::GcReport> prune_containers(const std::vector<std::string>& keep) override {
        std::lock_guard lock(mutex_);
        bus::GcReport report;
        for (auto it = containers_.begin(); it != containers_.end();)
            if (std::find(keep.begin(), keep.end(), it->first) == keep.end()) {
                report.removed.push_back(it->first);
                it = containers_.erase(it);
            } else {
                ++it;
            }
        return report;
    }
    Result<bus::ImageInfo> commit_container(const std::string& name, const std::string&) override {
        return fail(ENOTSUP, "fake: cannot commit '{}'", name);
    }
    Result<std::vector<bus::ContainerInfo>> list_containers() override {
        std::lock_guard lock(mutex_);
        std::vector<bus::ContainerInfo> out;
        for (auto& [n, c] : containers_) out.push_back(c);
        return out;
    }
    Result<store::MountSpec> create_volume(const std::string& name) override {
        std::lock_guard lock(mutex_);
        volumes_[name] = 0;
        store::MountSpec s;
        s.source = "/fake/volumes/" + name;
        return s;
    }
    Result<> remove_volume(const std::string& name) override {
        std::lock_guard lock(mutex_);
        if (!volumes_.erase(name)) return fail(ENOENT, "no volume '{}'", name);
        return {};
    }
    Result<std::vector<bus::VolumeInfo>> list_volumes() override {
        std::lock_guard lock(mutex_);
        std::vector<bus::VolumeInfo> out;
        for (auto& [n, s] : volumes_) out.push_back({n, s});
        return out;
    }
    Result<bus::VolumeDetail> get_volume(const std::string& name) override {
        std::lock_guard lock(mutex_);
        if (!volumes_.count(name)) return fail(ENOENT, "no volume '{}'", name);
        bus::VolumeDetail d;
        d.name = name;
        d.mount.source = "/fake/volumes/" + name;
        return d;
    }
    Result<bus::VolumeUse> use_volume(const std::string& name, const std::string&, int = 0) override {
        bool created = !volumes_.count(name);
        return bus::VolumeUse{BERTH_TRY(create_volume(name)), created};
    }
    Result<> release_volume(const std::string&, const std::string&) override { return {}; }
    Result<bus::GcReport> garbage_collect() override { return bus::GcReport{{"sha256:leftover"}, 4096}; }
    Result<bus::DiskUsage> disk_usage() override {
        bus::DiskUsage u;
        u.pool = BERTH_TRY(pool_status());
        u.images = BERTH_TRY(list_images());
        u.containers = BERTH_TRY(list_containers());
        u.volumes = BERTH_TRY(list_volumes());
        return u;
    }
    Result<bus::PoolStatus> pool_status() override {
        return bus::PoolStatus{"fake", "/fake", "", 1024, 1 << 20};
    }

private:
    Result<> exists(const std::string& name) {
        std::lock_guard lock(mutex_);
        if (!containers_.count(name)) return fail(ENOENT, "no container '{}'", name);
        return {};
    }
    bus::ImageInfo* find(const std::string& ref) {
        for (auto& [id, i] : images_) {
            if (id == ref || id.compare(7, ref.size(), ref) == 0) return &i;
            for (auto& n : i.names)
                if (n == ref || n == ref + ":latest") return &i;
        }
        return nullptr;
    }

    std::mutex mutex_;
    std::map<std::string, bus::ImageInfo> images_;
    std::map<std::string, bus::ContainerInfo> containers_;
    std::map<std::string, uint64_t> volumes_;
};

}  // namespace berth::test
