#include "store/libarchive-dl.h"

BERTH_LIBARCHIVE_SYMBOLS(BERTH_DL_DEFINE)
BERTH_ELF_NOTE_DLOPEN(libarchive_note, "image archives", "libarchive.so.13")

namespace berth::store {

DlLibrary libarchive{"libarchive.so.13", {BERTH_LIBARCHIVE_SYMBOLS(BERTH_DL_ENTRY)}};

}  // namespace berth::store
