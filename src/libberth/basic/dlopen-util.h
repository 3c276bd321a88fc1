// Explicit dlopen() of a library that only some paths need (as systemd does for its optional
// libraries): a library an executable does not need on its hot path is not mapped at its start.
// berthd's private instance serves one `berth run` (embedded mode) and must start fast; libarchive
// (with libxml2 and ICU behind it), libcrypto, libdevmapper and libbtrfsutil are loaded only by
// the import/export/digest paths and the dm-thin and btrfs backends.
//
// One list per library names the functions used, and gives three expansions:
//   #define BERTH_LIBFOO_SYMBOLS(X) X(foo_new) X(foo_free)
//   BERTH_LIBFOO_SYMBOLS(BERTH_DL_DECLARE)          // header: extern decltype(&foo_new) sym_foo_new; ...
//   BERTH_LIBFOO_SYMBOLS(BERTH_DL_DEFINE)           // one .cpp: the pointers
//   DlLibrary libfoo{"libfoo.so.1", {BERTH_LIBFOO_SYMBOLS(BERTH_DL_ENTRY)}};
// Call sites call sym_foo_new(...) after libfoo.load() succeeded (an object of the library exists
// only then, so the calls that take one need no check of their own).
#pragma once

#include <initializer_list>
#include <mutex>
#include <string>
#include <vector>

#include "basic/result.h"

namespace berth {

struct DlSymbol {
    void** slot;
    const char* name;
};

class DlLibrary {
public:
    DlLibrary(const char* soname, std::initializer_list<DlSymbol> symbols)
        : soname_(soname), symbols_(symbols) {}
    DlLibrary(const DlLibrary&) = delete;
    DlLibrary& operator=(const DlLibrary&) = delete;

    // Loads the library and resolves every symbol, once per process (thread-safe); a failure
    // (missing library or symbol) is remembered and returned by every call. Never unloaded.
    Result<> load();
    const char* soname() const { return soname_; }

private:
    const char* soname_;
    std::vector<DlSymbol> symbols_;
    std::once_flag once_;
    std::string error_;  // "" when loaded
};

// Loads `library` or ends the process with a message naming it: for the few places (constructors
// of value types) that cannot return an error; a missing shared library there is a broken install,
// as it would be had the executable been linked against it.
void load_or_die(DlLibrary& library);

}  // namespace berth

// Declares in the binary that it dlopen()s `soname` (the freedesktop.org .note.dlopen ELF note,
// docs/ELF_DLOPEN_METADATA.md of systemd): ldd cannot see such a library, tools that copy a binary
// with its libraries can (scripts/elf-dlopen-libs.py, used for the qemu test's initramfs).
#define BERTH_DLOPEN_NOTE_JSON_(feature, soname) "[{\"feature\":\"" feature "\",\"soname\":[\"" soname "\"]}]"
#define BERTH_ELF_NOTE_DLOPEN(id, feature, soname)                                      \
    namespace {                                                                         \
    struct id##_note {                                                                  \
        unsigned namesz, descsz, type;                                                  \
        char name[4];                                                                   \
        char desc[(sizeof(BERTH_DLOPEN_NOTE_JSON_(feature, soname)) + 3) & ~size_t{3}]; \
    };                                                                                  \
    [[gnu::section(".note.dlopen"), gnu::used, gnu::aligned(4)]] const id##_note id = { \
        4, sizeof(BERTH_DLOPEN_NOTE_JSON_(feature, soname)), 0x407c0c0a, "FDO",         \
        BERTH_DLOPEN_NOTE_JSON_(feature, soname)};                                      \
    }

#define BERTH_DL_DECLARE(fn) extern decltype(&::fn) sym_##fn;
#define BERTH_DL_DEFINE(fn) decltype(&::fn) sym_##fn = nullptr;
#define BERTH_DL_ENTRY(fn) ::berth::DlSymbol{reinterpret_cast<void**>(&sym_##fn), #fn},
