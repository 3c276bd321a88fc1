// Result<T>: the error currency of every berth API.
//
// An Error carries a positive errno (0 when the failure is not a system error, e.g. a parse error)
// and a human message that is built outer-to-inner as the error travels up:
//   "prepare container 'web': mount '/proc': Operation not permitted"
// Library code never logs and never throws across its API; programs print error.what() once.
#pragma once

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <tl/expected.hpp>
#include <utility>

namespace berth {

struct Error {
    int code = 0;         // positive errno, or 0 for a non-system error
    std::string message;  // context, outermost first

    // "message: strerror(code)" (the errno text is appended once, at the innermost point).
    std::string what() const;

    // Prepends context: Error{EPERM,"mount '/proc'"}.wrap("start 'web'") -> "start 'web': mount '/proc'".
    Error wrap(std::string_view context) const&;
    Error wrap(std::string_view context) &&;
};

template <class T = void>
using Result = tl::expected<T, Error>;

using Unexpected = tl::unexpected<Error>;

// A failure with an explicit errno (positive) and a formatted message.
template <class... Args>
Unexpected fail(int code, fmt::format_string<Args...> format, Args&&... args) {
    return Unexpected(Error{code, fmt::format(format, std::forward<Args>(args)...)});
}

// A failure that captures the current errno; call right after the failing system call.
template <class... Args>
Unexpected fail_errno(fmt::format_string<Args...> format, Args&&... args) {
    int saved = errno;
    return Unexpected(Error{saved > 0 ? saved : EIO, fmt::format(format, std::forward<Args>(args)...)});
}

inline Unexpected fail(Error error) { return Unexpected(std::move(error)); }

// Adds context to the error of a Result, leaving a value untouched.
template <class T>
Result<T> with_context(Result<T> result, std::string_view context) {
    if (!result) return Unexpected(std::move(result.error()).wrap(context));
    return result;
}

}  // namespace berth

// Propagate an error from a Result-returning expression; evaluates to the value (GNU statement
// expression, supported by g++ and clang). Each expansion names its temporary with __COUNTER__, so
// nested uses (BERTH_TRY(parse(BERTH_TRY(read())))) do not shadow one another.
#define BERTH_TRY_CONCAT_(a, b) a##b
#define BERTH_TRY_NAME_(n) BERTH_TRY_CONCAT_(berth_try_result_, n)

#define BERTH_TRY(expr) BERTH_TRY_IMPL_(BERTH_TRY_NAME_(__COUNTER__), expr)
#define BERTH_TRY_IMPL_(r, ...)                                   \
    ({                                                            \
        auto r = (__VA_ARGS__);                                   \
        if (!r) return ::berth::Unexpected(std::move(r.error())); \
        std::move(*r);                                            \
    })

// Same for Result<void>.
#define BERTH_TRY_VOID(expr) BERTH_TRY_VOID_IMPL_(BERTH_TRY_NAME_(__COUNTER__), expr)
#define BERTH_TRY_VOID_IMPL_(r, ...)                              \
    do {                                                          \
        auto r = (__VA_ARGS__);                                   \
        if (!r) return ::berth::Unexpected(std::move(r.error())); \
    } while (0)

// Propagate with added context: BERTH_TRY_CTX(mount_proc(), "set up '/proc'").
#define BERTH_TRY_CTX(expr, context) BERTH_TRY_CTX_IMPL_(BERTH_TRY_NAME_(__COUNTER__), expr, context)
#define BERTH_TRY_CTX_IMPL_(r, expr, context)                                   \
    ({                                                                          \
        auto r = (expr);                                                        \
        if (!r) return ::berth::Unexpected(std::move(r.error()).wrap(context)); \
        std::move(*r);                                                          \
    })

#define BERTH_TRY_VOID_CTX(expr, context) \
    BERTH_TRY_VOID_CTX_IMPL_(BERTH_TRY_NAME_(__COUNTER__), expr, context)
#define BERTH_TRY_VOID_CTX_IMPL_(r, expr, context)                              \
    do {                                                                        \
        auto r = (expr);                                                        \
        if (!r) return ::berth::Unexpected(std::move(r.error()).wrap(context)); \
    } while (0)
