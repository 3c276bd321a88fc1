// Internal to the bus client library: RemoteStorage over an already connected bus (the system bus,
// or the peer-to-peer connection to a private berthd).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "bus/bus-util.h"
#include "bus/storage.h"

namespace berth::bus {

// `mode`: what Storage::mode() says ("bus", "embedded"). `on_close` runs after the connection is
// closed, when the object is destroyed (a private berthd is reaped there).
std::unique_ptr<Storage> make_remote_storage(BusPtr bus, std::string mode, std::function<void()> on_close);

}  // namespace berth::bus
