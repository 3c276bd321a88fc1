#include "basic/dlopen-util.h"

#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>

namespace berth {

Result<> DlLibrary::load() {
    std::call_once(once_, [this] {
        void* handle = ::dlopen(soname_, RTLD_NOW | RTLD_LOCAL);
        if (!handle) {
            const char* e = ::dlerror();
            error_ = e ? e : "dlopen failed";
            return;
        }
        for (const DlSymbol& s : symbols_) {
            *s.slot = ::dlsym(handle, s.name);
            if (!*s.slot) {
                const char* e = ::dlerror();
                error_ = fmt::format("{}: {}", s.name, e ? e : "not found");
                return;
            }
        }
    });
    if (!error_.empty()) return fail(ELIBACC, "load {}: {}", soname_, error_);
    return {};
}

void load_or_die(DlLibrary& library) {
    if (auto r = library.load(); !r) {
        std::fprintf(stderr, "%s (a library this program needs is missing: reinstall it)\n",
                     r.error().what().c_str());
        std::abort();
    }
}

}  // namespace berth
