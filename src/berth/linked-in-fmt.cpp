// fmt's compiled part (fmt::vformat and what it calls), built into the `berth` executable
// instead of linking libfmt.so: see "Start latency" in meson.build of this directory. Debian
// ships fmt only as a shared library; its implementation header is what libfmt.so is built from.
// FMT_FUNC is empty here (not header-only), so these are the ordinary out-of-line definitions
// the rest of berth was compiled to call.
#include <fmt/format-inl.h>

// format.h declares these `extern template` (unless header-only), so no other translation unit
// instantiates them: libfmt.so's do, and so must this replacement.
FMT_BEGIN_NAMESPACE
namespace detail {
template FMT_API auto thousands_sep_impl<char>(locale_ref) -> thousands_sep_result<char>;
template FMT_API auto decimal_point_impl<char>(locale_ref) -> char;
}  // namespace detail
FMT_END_NAMESPACE
