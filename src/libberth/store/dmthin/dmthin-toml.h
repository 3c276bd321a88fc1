// The dm-thin backend reads its own keys of berthd.toml: the store's parser (options.cpp) hands
// every key it does not know itself to parse_dmthin_key, and checks the whole with
// check_dmthin_config at the end. Errors carry file:line:col like the store's own.
#pragma once

#include <toml++/toml.h>

#include <span>
#include <string>
#include <string_view>

#include "basic/result.h"
#include "store/dmthin/dmthin-config.h"

namespace berth::store {

// The dm-thin keys, for "did you mean" suggestions.
std::span<const std::string_view> dmthin_config_keys();

// Reads `key` into `config` when it is a dm-thin key: true when it was, false when the key is not
// one of dm-thin's (the caller reports it as unknown), an error when its value is bad.
Result<bool> parse_dmthin_key(DmThinConfig& config, std::string_view key, const toml::node& node,
                              const std::string& source_name);

// Checks across keys: the two devices come as a pair, a missing data file needs a size.
// `btrfs_pool_set`: the loopback btrfs 'pool' key is set (they exclude each other).
Result<> check_dmthin_config(const DmThinConfig& config, bool btrfs_pool_set, const std::string& source_name);

}  // namespace berth::store
