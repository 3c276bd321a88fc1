// How Storage's types travel on org.berth.Storage1 (the signatures documented in
// dbus/org.berth.Storage1.xml). Each append_X/read_X pair is the single definition of a shape.
#pragma once

#include <systemd/sd-bus.h>

#include "bus/storage.h"

namespace berth::bus::wire {

inline constexpr const char* kConfig = "(asasassss(asttttu))";
inline constexpr const char* kImage = "(sasttas(asasassss(asttttu)))";
inline constexpr const char* kContainer = "(sssbt)";
inline constexpr const char* kVolume = "(st)";
inline constexpr const char* kMount = "(ssasssssb)";
inline constexpr const char* kPool = "(ssstttt)";
// PrepareContainer's image change: changed, recreated, old image id, new image id, retained
// snapshot id (store::ImageChange).
inline constexpr const char* kImageChange = "(bbsss)";
// GarbageCollect's and PruneContainers' report: removed, bytes_freed, bytes per removed entry.
inline constexpr const char* kGcReport = "asta{st}";
// DiskUsage's file system: type, source, mount point, the store's own bytes.
inline constexpr const char* kFilesystem = "(ssst)";

int append_config(sd_bus_message* m, const store::ImageConfig& c);
int read_config(sd_bus_message* m, store::ImageConfig& c);
int append_image(sd_bus_message* m, const ImageInfo& i);
int read_image(sd_bus_message* m, ImageInfo& i);
int append_container(sd_bus_message* m, const ContainerInfo& c);
int read_container(sd_bus_message* m, ContainerInfo& c);
int append_volume(sd_bus_message* m, const VolumeInfo& v);
int read_volume(sd_bus_message* m, VolumeInfo& v);
int append_mount(sd_bus_message* m, const store::MountSpec& s);
int read_mount(sd_bus_message* m, store::MountSpec& s);
int append_pool(sd_bus_message* m, const PoolStatus& p);
int read_pool(sd_bus_message* m, PoolStatus& p);
int append_image_change(sd_bus_message* m, const store::ImageChange& c);
int read_image_change(sd_bus_message* m, store::ImageChange& c);
int append_gc_report(sd_bus_message* m, const GcReport& g);  // kGcReport (three arguments)
int read_gc_report(sd_bus_message* m, GcReport& g);
int append_filesystem(sd_bus_message* m, const DiskUsage& u);  // u.fs_*, u.store_used
int read_filesystem(sd_bus_message* m, DiskUsage& u);

// Arrays of the above: append_array(m, kImage, images, append_image).
template <class T, class F>
int append_array(sd_bus_message* m, const char* element, const std::vector<T>& items, F append) {
    std::string contents(element);
    int r = sd_bus_message_open_container(m, 'a', contents.c_str());
    if (r < 0) return r;
    for (auto& item : items)
        if ((r = append(m, item)) < 0) return r;
    return sd_bus_message_close_container(m);
}

template <class T, class F>
int read_array(sd_bus_message* m, const char* element, std::vector<T>& items, F read) {
    int r = sd_bus_message_enter_container(m, 'a', element);
    if (r < 0) return r;
    items.clear();
    for (;;) {
        T item;
        r = read(m, item);
        if (r < 0) return r;
        if (r == 0) break;
        items.push_back(std::move(item));
    }
    return sd_bus_message_exit_container(m);
}

}  // namespace berth::bus::wire
