// The previous images `berth auto-update` keeps pinned per container (cmd-auto-update.cpp), for
// `berth status`.
#pragma once

#include <string>
#include <vector>

#include "bus/storage.h"

namespace berth::cli {

// NAME's pinned previous images, newest first (image ids); empty when none or the store says no.
std::vector<std::string> auto_update_previous(bus::Storage& storage, const std::string& name);

}  // namespace berth::cli
