// Per-image (/org/berth/Storage1/image/<escaped id>), per-container
// (/org/berth/Storage1/container/<escaped name>) and per-job (/org/berth/Storage1/job/<n>)
// objects. Images and containers are fallback vtables looked up on demand (like machined's
// images), so the object tree is always exactly the store's content.
#include "bus/wire.h"
#include "daemon.h"

namespace berth::berthd {

namespace {

using namespace berth::bus;

Daemon& D(void* userdata) { return *static_cast<Daemon*>(userdata); }

// ---- images ----

int image_find(sd_bus*, const char* path, const char*, void* userdata, void** found, sd_bus_error*) noexcept {
    // One path per image: its full id. A name or an id prefix that resolves is not an object
    // (issue #16: /image/busybox_3alatest answered like the image's own path).
    std::string id = object_id(kImagePrefix, path);
    if (id.empty() || !validate_image_ref(id)) return 0;
    auto image = D(userdata).storage().get_image(id);
    if (!image || image->id != id) return 0;
    *found = userdata;
    return 1;
}

int image_enumerate(sd_bus*, const char*, void* userdata, char*** nodes, sd_bus_error* ret_error) noexcept {
    auto images = D(userdata).storage().list_images();
    if (!images) return set_bus_error(ret_error, images.error());
    char** list = static_cast<char**>(calloc(images->size() + 1, sizeof(char*)));
    if (!list) return -ENOMEM;
    for (size_t i = 0; i < images->size(); ++i)
        list[i] = strdup(object_path(kImagePrefix, (*images)[i].id).c_str());
    *nodes = list;
    return 1;
}

int image_property(sd_bus* bus, const char* path, const char*, const char* property, sd_bus_message* reply,
                   void* userdata, sd_bus_error* ret_error) noexcept {
    auto image = D(userdata).storage().get_image(object_id(kImagePrefix, path));
    if (!image) return set_bus_error(ret_error, image.error());
    // Get, GetAll and GetManagedObjects all land here: the call being answered is the bus's
    // current message.
    if (std::string_view(property) == "Config" && !caller_is_root(sd_bus_get_current_message(bus)))
        withhold_secrets(*image);
    std::string_view p = property;
    if (p == "Id") return sd_bus_message_append(reply, "s", image->id.c_str());
    if (p == "Names") return append_strv(reply, image->names);
    if (p == "Size") return sd_bus_message_append(reply, "t", image->size);
    if (p == "Created") return sd_bus_message_append(reply, "t", image->created_usec);
    if (p == "Layers") return append_strv(reply, image->layers);
    return wire::append_config(reply, image->config);
}

int image_remove(sd_bus_message* m, void* userdata, sd_bus_error* ret_error) noexcept {
    std::string id = object_id(kImagePrefix, sd_bus_message_get_path(m));
    if (int r = require_root(m, ret_error); r < 0) return r;
    Daemon& d = D(userdata);
    return d.reply_async(m, [&d, id]() -> Result<Appender> {
        BERTH_TRY_VOID(d.storage().remove_image(id));
        return Appender();
    });
}

int image_tag(sd_bus_message* m, void* userdata, sd_bus_error* ret_error) noexcept {
    const char* name;
    int r = sd_bus_message_read(m, "s", &name);
    if (r < 0) return r;
    if (auto v = validate_image_name(name); !v) return set_bus_error(ret_error, v.error());
    if ((r = require_root(m, ret_error)) < 0) return r;
    std::string id = object_id(kImagePrefix, sd_bus_message_get_path(m)), name_s = name;
    Daemon& d = D(userdata);
    return d.reply_async(m, [&d, id, name_s]() -> Result<Appender> {
        BERTH_TRY_VOID(d.storage().tag_image(id, name_s));
        return Appender();
    });
}

const sd_bus_vtable image_vtable[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_PROPERTY("Id", "s", image_property, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_PROPERTY("Names", "as", image_property, 0, 0),
    SD_BUS_PROPERTY("Size", "t", image_property, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_PROPERTY("Created", "t", image_property, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_PROPERTY("Layers", "as", image_property, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_PROPERTY("Config", "(asasassss(asttttu))", image_property, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_METHOD("Remove", "", "", image_remove, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("Tag", "s", SD_BUS_PARAM(name), "", , image_tag, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_VTABLE_END,
};

// ---- containers ----

Result<ContainerInfo> find_container(Daemon& d, const std::string& name) {
    auto all = BERTH_TRY(d.storage().list_containers());
    for (auto& c : all)
        if (c.name == name) return c;
    return fail(ENOENT, "no container snapshot '{}'", name);
}

int container_find(sd_bus*, const char* path, const char*, void* userdata, void** found,
                   sd_bus_error*) noexcept {
    std::string name = object_id(kContainerPrefix, path);
    if (name.empty() || !find_container(D(userdata), name)) return 0;
    *found = userdata;
    return 1;
}

int container_enumerate(sd_bus*, const char*, void* userdata, char*** nodes,
                        sd_bus_error* ret_error) noexcept {
    auto items = D(userdata).storage().list_containers();
    if (!items) return set_bus_error(ret_error, items.error());
    char** list = static_cast<char**>(calloc(items->size() + 1, sizeof(char*)));
    if (!list) return -ENOMEM;
    for (size_t i = 0; i < items->size(); ++i)
        list[i] = strdup(object_path(kContainerPrefix, (*items)[i].name).c_str());
    *nodes = list;
    return 1;
}

int container_property(sd_bus*, const char* path, const char*, const char* property, sd_bus_message* reply,
                       void* userdata, sd_bus_error* ret_error) noexcept {
    auto c = find_container(D(userdata), object_id(kContainerPrefix, path));
    if (!c) return set_bus_error(ret_error, c.error());
    std::string_view p = property;
    if (p == "Name") return sd_bus_message_append(reply, "s", c->name.c_str());
    if (p == "Image") return sd_bus_message_append(reply, "s", c->image.c_str());
    if (p == "Layer") return sd_bus_message_append(reply, "s", c->layer.c_str());
    if (p == "Ephemeral") return sd_bus_message_append(reply, "b", static_cast<int>(c->ephemeral));
    return sd_bus_message_append(reply, "t", c->size);
}

template <Result<> (Storage::*Fn)(const std::string&)>
int container_simple(sd_bus_message* m, void* userdata, sd_bus_error* ret_error) noexcept {
    if (int r = require_root(m, ret_error); r < 0) return r;
    std::string name = object_id(kContainerPrefix, sd_bus_message_get_path(m));
    Daemon& d = D(userdata);
    return d.reply_async(m, [&d, name]() -> Result<Appender> {
        BERTH_TRY_VOID((d.storage().*Fn)(name));
        return Appender();
    });
}

const sd_bus_vtable container_vtable[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_PROPERTY("Name", "s", container_property, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_PROPERTY("Image", "s", container_property, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_PROPERTY("Layer", "s", container_property, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_PROPERTY("Ephemeral", "b", container_property, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_PROPERTY("Size", "t", container_property, 0, 0),
    SD_BUS_METHOD("Release", "", "", container_simple<&Storage::release_container>,
                  SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD("Remove", "", "", container_simple<&Storage::remove_container>, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_VTABLE_END,
};

// ---- jobs ----

int job_property(sd_bus*, const char*, const char*, const char* property, sd_bus_message* reply,
                 void* userdata, sd_bus_error*) noexcept {
    auto& job = *static_cast<Job*>(userdata);
    std::string_view p = property;
    if (p == "Id") return sd_bus_message_append(reply, "u", job.id);
    if (p == "Type") return sd_bus_message_append(reply, "s", job.type.c_str());
    if (p == "Description") return sd_bus_message_append(reply, "s", job.description.c_str());
    if (p == "BytesRead") return sd_bus_message_append(reply, "t", job.bytes_read.load());
    if (p == "Layers") {
        std::lock_guard lock(job.layers_mutex);
        int r = sd_bus_message_open_container(reply, 'a', "(sstt)");
        for (const auto& l : job.layers)
            if (r >= 0)
                r = sd_bus_message_append(reply, "(sstt)", l.digest.c_str(), l.state.c_str(), l.done,
                                          l.total);
        return r < 0 ? r : sd_bus_message_close_container(reply);
    }
    return sd_bus_message_append(reply, "d", job.progress.load());
}

int job_cancel(sd_bus_message* m, void* userdata, sd_bus_error* ret_error) noexcept {
    if (int r = require_root(m, ret_error); r < 0) return r;
    auto* job = static_cast<Job*>(userdata);
    job->daemon->cancel_job(*job);
    return sd_bus_reply_method_return(m, "");
}

const sd_bus_vtable job_vtable[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_PROPERTY("Id", "u", job_property, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_PROPERTY("Type", "s", job_property, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_PROPERTY("Description", "s", job_property, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_PROPERTY("Progress", "d", job_property, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("BytesRead", "t", job_property, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("Layers", "a(sstt)", job_property, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_METHOD("Cancel", "", "", job_cancel, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_VTABLE_END,
};

}  // namespace

Result<> add_image_and_container_objects(Daemon& daemon, sd_bus* bus, std::vector<SlotPtr>& slots) {
    sd_bus_slot* slot = nullptr;
    int r = sd_bus_add_fallback_vtable(bus, &slot, kImagePrefix, kImageInterface, image_vtable, image_find,
                                       &daemon);
    if (r < 0) return fail(-r, "add image objects");
    slots.emplace_back(slot);
    r = sd_bus_add_node_enumerator(bus, &slot, kImagePrefix, image_enumerate, &daemon);
    if (r < 0) return fail(-r, "add image enumerator");
    slots.emplace_back(slot);
    r = sd_bus_add_fallback_vtable(bus, &slot, kContainerPrefix, kContainerInterface, container_vtable,
                                   container_find, &daemon);
    if (r < 0) return fail(-r, "add container objects");
    slots.emplace_back(slot);
    r = sd_bus_add_node_enumerator(bus, &slot, kContainerPrefix, container_enumerate, &daemon);
    if (r < 0) return fail(-r, "add container enumerator");
    slots.emplace_back(slot);
    return {};
}

Result<> add_job_object(Daemon&, sd_bus* bus, Job& job) {
    sd_bus_slot* slot = nullptr;
    int r = sd_bus_add_object_vtable(bus, &slot, job.path.c_str(), kJobInterface, job_vtable, &job);
    if (r < 0) return fail(-r, "add job object");
    job.slot.reset(slot);
    return {};
}

}  // namespace berth::berthd
