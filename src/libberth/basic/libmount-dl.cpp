#include "basic/libmount-dl.h"

namespace berth {

BERTH_LIBMOUNT_SYMBOLS(BERTH_DL_DEFINE)
DlLibrary libmount{"libmount.so.1", {BERTH_LIBMOUNT_SYMBOLS(BERTH_DL_ENTRY)}};

}  // namespace berth

BERTH_ELF_NOTE_DLOPEN(libmount_note, "mount table", "libmount.so.1")
