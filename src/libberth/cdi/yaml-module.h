// The contract between cdi.cpp and the YAML module it dlopen()s (yaml-module.cpp): one C function
// that turns a YAML document into JSON text. Plain scalars that read as integers or booleans
// become JSON numbers and booleans; quoted scalars stay strings.
#pragma once

extern "C" {
// 0: *out is malloc()ed JSON; otherwise *out is a malloc()ed message ("line 3, column 5: ...").
typedef int (*YamlToJsonFn)(const char* yaml, char** out);
}

namespace berth::cdi {
inline constexpr const char* kYamlToJsonSymbol = "berth_cdi_yaml_to_json";
}
