// Small RAII wrappers and helpers around raw sd-bus (berthd and its client share them).
#pragma once

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include <string>
#include <vector>

#include "basic/result.h"
#include "basic/unique.h"

namespace berth::bus {

inline constexpr const char* kService = "org.berth.Storage1";
inline constexpr const char* kManagerPath = "/org/berth/Storage1";
inline constexpr const char* kManagerInterface = "org.berth.Storage1.Manager";
inline constexpr const char* kImageInterface = "org.berth.Storage1.Image";
inline constexpr const char* kContainerInterface = "org.berth.Storage1.Container";
inline constexpr const char* kJobInterface = "org.berth.Storage1.Job";
inline constexpr const char* kImagePrefix = "/org/berth/Storage1/image";
inline constexpr const char* kContainerPrefix = "/org/berth/Storage1/container";
inline constexpr const char* kJobPrefix = "/org/berth/Storage1/job";
// A private berthd (embedded mode, private-berthd.cpp): `berthd --peer-fd N` serves one client on
// the socket N, after one hello line: kPeerReady, or "ERROR <errno> <message>".
inline constexpr const char* kPeerFdOption = "--peer-fd";
inline constexpr const char* kPeerReady = "READY";
inline constexpr int kPeerChildFd = 3;
// Errors that carry no errno (parse errors and the like) travel under this name.
inline constexpr const char* kGenericError = "org.berth.Storage1.Error.Failed";

using BusPtr = CPtr<sd_bus, sd_bus_flush_close_unref>;
using MessagePtr = CPtr<sd_bus_message, sd_bus_message_unref>;
using SlotPtr = CPtr<sd_bus_slot, sd_bus_slot_unref>;
using EventPtr = CPtr<sd_event, sd_event_unref>;
using EventSourcePtr = CPtr<sd_event_source, sd_event_source_disable_unref>;
using CredsPtr = CPtr<sd_bus_creds, sd_bus_creds_unref>;

struct BusError {
    sd_bus_error error = SD_BUS_ERROR_NULL;
    BusError() = default;
    BusError(const BusError&) = delete;
    BusError& operator=(const BusError&) = delete;
    ~BusError() { sd_bus_error_free(&error); }
    sd_bus_error* get() { return &error; }
};

// A bus error as a berth Error: the errno travels in the error name (sd-bus maps them both ways),
// the message is the daemon's context chain.
Error error_from_bus(const sd_bus_error* error, int r, std::string_view context);

// Fills `ret` (for method handlers) from a berth Error.
int set_bus_error(sd_bus_error* ret, const Error& error);

// Appends / reads a string array ("as").
int append_strv(sd_bus_message* m, const std::vector<std::string>& v);
int read_strv(sd_bus_message* m, std::vector<std::string>& out);

// "/org/berth/Storage1/image" + "sha256:..." -> escaped object path, and back.
std::string object_path(const char* prefix, const std::string& id);
std::string object_id(const char* prefix, const char* path);  // "" if not under prefix

}  // namespace berth::bus
