// The external programs the dm-thin backend relies on (mkfs.<fs>, thin_ls): run through
// basic/program.h, the one helper for running a program and reading its output.
#pragma once

#include "basic/program.h"

namespace berth::store::dmthin {

using berth::find_program;
using berth::run_program;

}  // namespace berth::store::dmthin
