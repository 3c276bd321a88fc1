// libFuzzer target: the store's OCI JSON parsers (index.json, image manifest, image config) on
// the real import path. One input holds three JSON documents separated by a line "--":
//   INDEX \n--\n MANIFEST \n--\n CONFIG
// and the target writes them as an OCI layout directory (oci-layout, index.json, blobs) that
// Store::import_image_path() imports into an overlay store on the sandbox tmpfs. A fuzzer cannot
// compute sha256, so placeholders stand for digests the target fills in: "@M@" (in the index)
// the manifest's digest, "@C@" (in the manifest) the config's, "@L@" (in the manifest) a real
// empty layer blob's and "@D@" (in the config) its diff ID. Inputs without them still exercise
// every parser on its own; with them the fuzzer reaches the whole chain to a published image.
// Oracles beyond "no crash / no sanitizer report / no exception escaping the store":
//   - a published image's id is sha256 of the manifest bytes and its config digest that of the
//     config bytes; removing it and running gc leaves the store with no images and no staging;
//   - a failed import publishes nothing.
// The image config parser (parse_image_config) also runs on the third document directly.
// Seeds: tests/fuzz/corpus/oci-json/.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>

#include "basic/fs-util.h"
#include "fuzz-sandbox.h"
#include "store/digest.h"
#include "store/store-impl.h"
#include "store/store.h"

namespace {
std::string g_sandbox;
std::unique_ptr<berth::store::Store> g_store;
const std::string g_empty_layer(1024, '\0');  // an empty tar: two zero blocks

void replace_all(std::string& s, const std::string& from, const std::string& to) {
    for (size_t pos = 0; (pos = s.find(from, pos)) != std::string::npos; pos += to.size())
        s.replace(pos, from.size(), to);
}

void write_or_die(const std::string& path, const std::string& text) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || ::write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size())) abort();
    ::close(fd);
}

std::string blob_path(const std::string& layout, const std::string& digest) {
    return layout + "/blobs/sha256/" + digest.substr(7);
}
}  // namespace

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
    (void)berth::store::sha256_digest("warm up OpenSSL before / turns read-only");
    g_sandbox = berth::fuzz::enter_sandbox(*argc, *argv);
    berth::store::StoreOptions o;
    o.root = g_sandbox + "/store";
    o.backend = "overlay";
    auto s = berth::store::Store::open(o);
    if (!s) {
        fprintf(stderr, "fuzz-oci-json: open store: %s\n", s.error().what().c_str());
        abort();
    }
    g_store = std::move(*s);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace berth::store;
    if (size > (256u << 10)) return -1;
    std::string in(reinterpret_cast<const char*>(data), size);
    std::string parts[3];
    for (int i = 0, pos = 0; i < 3; ++i) {
        size_t sep = i < 2 ? in.find("\n--\n", pos) : std::string::npos;
        parts[i] = in.substr(pos, sep == std::string::npos ? std::string::npos : sep - pos);
        if (sep == std::string::npos) break;
        pos = static_cast<int>(sep + 4);
    }
    std::string& index = parts[0];
    std::string& manifest = parts[1];
    std::string& config = parts[2];

    // The config parser on its own (the store calls it on every imported config).
    try {
        auto j = nlohmann::json::parse(config);
        (void)parse_image_config(j);
    } catch (const nlohmann::json::exception&) {
        // Not JSON (or a type the caller checks first): the import below must still fail cleanly.
    }

    std::string layer_digest = sha256_digest(g_empty_layer);
    replace_all(config, "@D@", layer_digest);
    std::string config_digest = sha256_digest(config);
    replace_all(manifest, "@C@", config_digest);
    replace_all(manifest, "@L@", layer_digest);
    std::string manifest_digest = sha256_digest(manifest);
    replace_all(index, "@M@", manifest_digest);

    std::string layout = g_sandbox + "/layout";
    (void)berth::remove_tree(layout);
    if (berth::mkdir_p(layout + "/blobs/sha256", 0755).has_value() == false) abort();
    write_or_die(layout + "/oci-layout", R"({"imageLayoutVersion":"1.0.0"})");
    write_or_die(layout + "/index.json", index);
    write_or_die(blob_path(layout, manifest_digest), manifest);
    write_or_die(blob_path(layout, config_digest), config);
    write_or_die(blob_path(layout, layer_digest), g_empty_layer);

    auto r = g_store->import_image_path(layout, ImportFormat::OciLayout, "");
    if (r) {
        if (r->id != manifest_digest || r->config_digest != config_digest) {
            fprintf(stderr, "fuzz-oci-json: imported id %s config %s, want %s %s\n", r->id.c_str(),
                    r->config_digest.c_str(), manifest_digest.c_str(), config_digest.c_str());
            abort();
        }
        auto rm = g_store->remove_image(r->id);
        if (!rm) {
            fprintf(stderr, "fuzz-oci-json: remove %s: %s\n", r->id.c_str(), rm.error().what().c_str());
            abort();
        }
        auto gc = g_store->gc();
        if (!gc) {
            fprintf(stderr, "fuzz-oci-json: gc: %s\n", gc.error().what().c_str());
            abort();
        }
    }
    if (!g_store->list_images().empty()) {
        fprintf(stderr, "fuzz-oci-json: a failed import left an image behind\n");
        abort();
    }
    (void)berth::remove_tree(layout);
    return 0;
}
