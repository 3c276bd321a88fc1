#include "basic/result.h"

namespace berth {

std::string Error::what() const {
    if (code == 0) return message;
    if (message.empty()) return std::strerror(code);
    return message + ": " + std::strerror(code);
}

Error Error::wrap(std::string_view context) const& {
    return Error{code, message.empty() ? std::string(context) : fmt::format("{}: {}", context, message)};
}

Error Error::wrap(std::string_view context) && {
    message = message.empty() ? std::string(context) : fmt::format("{}: {}", context, message);
    return std::move(*this);
}

}  // namespace berth
