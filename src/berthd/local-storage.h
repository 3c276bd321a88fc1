// berthd's side of bus/storage.h: the Storage served over org.berth.Storage1 is the store library
// in this process (LocalStorage). Only berthd links the store; its clients use RemoteStorage.
#pragma once

#include <memory>
#include <string>

#include "basic/result.h"
#include "bus/storage.h"
#include "store/store.h"

namespace berth::berthd {

// Where the store lives and how it is built: /etc/berth/berthd.toml (the store library parses it),
// then BERTH_STORE_ROOT / BERTH_STORE_BACKEND from the environment (so tests use temp dirs).
using StorageOptions = store::StoreOptions;
Result<StorageOptions> load_storage_options(const std::string& path);
std::string default_config_path();  // $BERTH_DAEMON_CONFIG or /etc/berth/berthd.toml

// The store, opened (and locked) in this process.
Result<std::unique_ptr<bus::Storage>> open_local_storage(const StorageOptions& options);

}  // namespace berth::berthd
