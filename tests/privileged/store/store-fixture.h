// A Store on private storage for the privileged store tests: a tmpfs (overlay backend) or a
// fresh btrfs on a loop device (btrfs backend, picked by "auto"), torn down on destruction.
#pragma once

#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>

#include "store-test-util.h"
#include "store/loop.h"
#include "store/store.h"
#include "test-util.h"

namespace berth::store::test {

// Builds (once, cached in the build tree) the umoci/skopeo test images.
inline std::string test_images() {
    static std::string dir;
    if (dir.empty()) {
        std::string d = berth::test::build_root() + "/test-images/store";
        std::string cmd =
            "bash " + berth::test::source_root() + "/tests/lib/make-test-images.sh " + d + " >&2";
        if (std::system(cmd.c_str()) == 0) dir = d;
    }
    return dir;
}

class StoreRoot {
public:
    explicit StoreRoot(const std::string& kind) : kind_(kind) {
        if (kind == "btrfs") {
            std::string img = dir_ / "pool.img";
            if (!create_sparse_file(img, 768ull << 20)) return;
            auto loop = attach_loop(img);
            if (!loop || !make_btrfs(loop->path, "berth-st")) return;
            if (!mount_btrfs(loop->path, dir_ / "mnt") &&
                !(mkdir_p(dir_ / "mnt") && mount_btrfs(loop->path, dir_ / "mnt")))
                return;
        } else {
            (void)mkdir_p(dir_ / "mnt");
            if (::mount("tmpfs", (dir_ / "mnt").c_str(), "tmpfs", 0, "size=1g,mode=0700") < 0) return;
        }
        mounted_ = true;
    }
    ~StoreRoot() {
        if (mounted_) ::umount2((dir_ / "mnt").c_str(), MNT_DETACH);
    }
    bool ok() const { return mounted_; }
    std::string root() const { return dir_ / "mnt/store"; }
    StoreOptions options() const {
        StoreOptions o;
        o.root = root();
        return o;
    }
    std::string scratch(std::string_view name) const { return dir_ / name; }

private:
    std::string kind_;
    berth::test::TempDir dir_{"berth-store"};
    bool mounted_ = false;
};

inline int run(const std::string& cmd) {
    int st = std::system(cmd.c_str());
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

inline std::string capture(const std::string& cmd) {
    std::string out;
    FILE* p = ::popen(cmd.c_str(), "r");
    if (!p) return out;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    ::pclose(p);
    return out;
}

}  // namespace berth::store::test
