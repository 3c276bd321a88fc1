// Helpers shared by berth's C++ tests: temporary directories that always go away, root checks
// that skip with a reason, paths of the build and source trees.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <string>

#include "basic/fs-util.h"
#include "berth-config.h"

namespace berth::test {

class TempDir {
public:
    explicit TempDir(const char* tag = "berth-test") {
        std::string tmpl = std::string("/tmp/") + tag + "-XXXXXX";
        char* p = ::mkdtemp(tmpl.data());
        if (p) path_ = p;
    }
    ~TempDir() {
        if (!path_.empty()) (void)remove_tree(path_);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::string& path() const { return path_; }
    std::string operator/(std::string_view rel) const { return path_join(path_, rel); }

private:
    std::string path_;
};

inline std::string source_root() { return BERTH_SOURCE_ROOT; }
inline std::string build_root() { return BERTH_BUILD_ROOT; }

}  // namespace berth::test

// Privileged tests run as root in CI; elsewhere they skip and say why.
#define BERTH_REQUIRE_ROOT()                                                    \
    do {                                                                        \
        if (::geteuid() != 0) GTEST_SKIP() << "needs root (run as root in CI)"; \
    } while (0)
