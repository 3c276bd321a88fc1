#include "store/libarchive-dl.h"

BERTH_LIBARCHIVE_SYMBOLS(BERTH_DL_DEFINE)

namespace berth::store {

DlLibrary libarchive{"libarchive.so.13", {BERTH_LIBARCHIVE_SYMBOLS(BERTH_DL_ENTRY)}};

}  // namespace berth::store
