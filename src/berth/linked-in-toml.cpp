// toml++'s compiled part (parser, node/table/array members), built into the `berth` executable
// instead of linking libtomlplusplus.so: see "Start latency" in meson.build of this directory.
// Same configuration macros as the shared library (TOML_HEADER_ONLY=0 from tomlplusplus.pc), so
// the declarations the config library was compiled against are defined here, once.
#define TOML_IMPLEMENTATION
#include <toml++/toml.h>
