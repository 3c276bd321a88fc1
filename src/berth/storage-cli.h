// Shared by cmd-image.cpp and cmd-storage.cpp: opening the store (bus or embedded) and formatting.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "basic/result.h"
#include "bus/storage.h"

namespace berth::cli {

// open_storage(), saying which mode was chosen when `verbose` (or $BERTH_DEBUG) is set.
Result<std::unique_ptr<bus::Storage>> open_storage_verbose(bool verbose);

std::string human_size(uint64_t bytes);
std::string short_id(const std::string& id);  // "sha256:abcdef..." -> "abcdef012345"
std::string format_time_usec(uint64_t usec);

// What gc or prune removed: JSON, or "Removed <what> (<size>)" lines and a total naming `items`
// ("item(s)", "container(s)"). Returns 0.
int print_removal_report(const bus::GcReport& report, bool json, const char* what, const char* items);

}  // namespace berth::cli
