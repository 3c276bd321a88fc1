// The shared SnapshotBackend conformance suite (tests/privileged/store/backend-conformance.cpp).
//
// Every backend runs the same cases. A backend joins by registering a factory in any source file
// linked into a conformance executable:
//
//   #include "backend-conformance.h"
//   namespace {
//   class MyEnv : public berth::store::test::BackendEnv { ... };
//   BERTH_REGISTER_BACKEND_FACTORY(dm_thin, {
//       "dm-thin",
//       [] { return std::string(access("/dev/mapper/control", F_OK) ? "no device-mapper" : ""); },
//       []() -> berth::Result<std::unique_ptr<berth::store::test::BackendEnv>> { ... },
//   });
//   }
//
// and building an executable from `backend_conformance_sources` + that file (meson variables set
// by tests/privileged/store/meson.build). Run all available backends, or one:
//   backend-conformance [--backend=NAME] [gtest flags]    (or BERTH_TEST_BACKEND=NAME)
// A backend named explicitly that is unavailable FAILS instead of skipping.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "basic/result.h"
#include "store/backend.h"

namespace berth::store::test {

// One backend on fresh, private storage; the destructor removes everything it made (mounts, loop
// devices, dm devices, files).
class BackendEnv {
public:
    virtual ~BackendEnv() = default;
    virtual SnapshotBackend& backend() = 0;
    // Destroys the backend object and makes a new one on the same storage (persistence check).
    virtual Result<> reopen() = 0;
};

struct BackendFactory {
    std::string name;
    // "" when the backend can run on this host, else why not (the cases then skip).
    std::function<std::string()> unavailable_reason;
    std::function<Result<std::unique_ptr<BackendEnv>>()> make;
};

int register_backend_factory(BackendFactory factory);
std::vector<BackendFactory>& backend_factories();

}  // namespace berth::store::test

#define BERTH_REGISTER_BACKEND_FACTORY(id, ...)   \
    static const int berth_backend_factory_##id = \
        ::berth::store::test::register_backend_factory(::berth::store::test::BackendFactory __VA_ARGS__)
