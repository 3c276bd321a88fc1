// First-call resolution for the lazy-link stubs (see gen-stubs.py for why and how). Runs in
// whatever thread first calls a function of a lazily linked library; dlopen() and dlsym() are
// thread-safe and two racing threads store the same pointer, so no lock is needed.
#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>

extern "C" {

struct berth_lazy_library {
    const char* soname;
    void* handle;
};

// Called by the stubs with every argument register saved. Returns the real function. A library
// that cannot be loaded is as fatal as a missing DT_NEEDED library would have been at start.
[[gnu::visibility("hidden")]] void* berth_lazy_resolve(berth_lazy_library* lib, void** slot,
                                                       const char* name) noexcept {
    void* handle = __atomic_load_n(&lib->handle, __ATOMIC_ACQUIRE);
    if (!handle) {
        // RTLD_LOCAL: the library's symbols stay out of the global scope, as with a plain -lX
        // they would only have served our own references.
        handle = ::dlopen(lib->soname, RTLD_NOW | RTLD_LOCAL);
        if (!handle) {
            std::fprintf(stderr, "berth: cannot load %s: %s\n", lib->soname, ::dlerror());
            std::abort();
        }
        void* expected = nullptr;
        if (!__atomic_compare_exchange_n(&lib->handle, &expected, handle, false, __ATOMIC_ACQ_REL,
                                         __ATOMIC_ACQUIRE)) {
            ::dlclose(handle);  // another thread won; drop our extra reference
            handle = expected;
        }
    }
    void* fn = ::dlsym(handle, name);
    if (!fn) {
        std::fprintf(stderr, "berth: %s has no function '%s': %s\n", lib->soname, name, ::dlerror());
        std::abort();
    }
    __atomic_store_n(slot, fn, __ATOMIC_RELEASE);
    return fn;
}

}  // extern "C"
