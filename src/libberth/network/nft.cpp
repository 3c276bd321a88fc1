#include "network/nft.h"

#include <dlfcn.h>
#include <nftables/libnftables.h>

#include "basic/string-util.h"

namespace berth::network {

namespace {

// The few libnftables functions berth calls, resolved once from libnftables.so.1.
struct NftLibrary {
    decltype(&::nft_ctx_new) ctx_new = nullptr;
    decltype(&::nft_ctx_free) ctx_free = nullptr;
    decltype(&::nft_ctx_buffer_output) buffer_output = nullptr;
    decltype(&::nft_ctx_buffer_error) buffer_error = nullptr;
    decltype(&::nft_ctx_output_set_flags) output_set_flags = nullptr;
    decltype(&::nft_run_cmd_from_buffer) run_cmd_from_buffer = nullptr;
    decltype(&::nft_ctx_get_output_buffer) get_output_buffer = nullptr;
    decltype(&::nft_ctx_get_error_buffer) get_error_buffer = nullptr;
    std::string error;  // why it could not be loaded ("" when loaded)
};

template <typename F>
bool resolve(void* handle, const char* name, F& out, std::string& error) {
    out = reinterpret_cast<F>(::dlsym(handle, name));
    if (!out && error.empty()) error = fmt::format("{}: {}", name, ::dlerror());
    return out != nullptr;
}

const NftLibrary& nft_library() {
    static const NftLibrary lib = [] {
        NftLibrary l;
        // Never closed: the functions stay valid for the life of the process.
        void* h = ::dlopen("libnftables.so.1", RTLD_NOW | RTLD_LOCAL);
        if (!h) {
            const char* e = ::dlerror();
            l.error = e ? e : "dlopen failed";
            return l;
        }
        resolve(h, "nft_ctx_new", l.ctx_new, l.error);
        resolve(h, "nft_ctx_free", l.ctx_free, l.error);
        resolve(h, "nft_ctx_buffer_output", l.buffer_output, l.error);
        resolve(h, "nft_ctx_buffer_error", l.buffer_error, l.error);
        resolve(h, "nft_ctx_output_set_flags", l.output_set_flags, l.error);
        resolve(h, "nft_run_cmd_from_buffer", l.run_cmd_from_buffer, l.error);
        resolve(h, "nft_ctx_get_output_buffer", l.get_output_buffer, l.error);
        resolve(h, "nft_ctx_get_error_buffer", l.get_error_buffer, l.error);
        return l;
    }();
    return lib;
}

}  // namespace

void free_nft_ctx(struct nft_ctx* ctx) {
    if (ctx) nft_library().ctx_free(ctx);  // a context exists only when the library loaded
}

Result<Nft> Nft::open(bool json) {
    const auto& lib = nft_library();
    if (!lib.error.empty()) return fail(ELIBACC, "published ports need libnftables.so.1: {}", lib.error);
    Nft nft;
    nft.ctx_.reset(lib.ctx_new(NFT_CTX_DEFAULT));
    if (!nft.ctx_) return fail(ENOMEM, "create nftables context");
    if (lib.buffer_output(nft.ctx_.get()) < 0 || lib.buffer_error(nft.ctx_.get()) < 0)
        return fail(ENOMEM, "buffer nftables output");
    if (json) lib.output_set_flags(nft.ctx_.get(), NFT_CTX_OUTPUT_JSON | NFT_CTX_OUTPUT_HANDLE);
    return nft;
}

Result<std::string> Nft::run(const std::string& script) {
    const auto& lib = nft_library();
    int rc = lib.run_cmd_from_buffer(ctx_.get(), script.c_str());
    std::string out = lib.get_output_buffer(ctx_.get());
    std::string err = lib.get_error_buffer(ctx_.get());
    if (rc != 0) {
        // nft's messages are "Error: Could not process rule: File exists\n<the command>\n<carets>".
        auto lines = split(err, '\n');
        std::string first = lines.empty() ? "failed" : std::string(trim(lines[0]));
        if (first.rfind("Error: ", 0) == 0) first = first.substr(7);
        std::string command = lines.size() > 1 ? std::string(trim(lines[1])) : std::string();
        int code = first.find("File exists") != std::string::npos                 ? EEXIST
                   : first.find("No such file or directory") != std::string::npos ? ENOENT
                   : first.find("Operation not permitted") != std::string::npos   ? EPERM
                                                                                  : EIO;
        // what() appends strerror(code) once; drop nft's copy of it.
        if (code != EIO) {
            auto colon = first.rfind(": ");
            if (colon != std::string::npos) first.resize(colon);
        }
        return fail(code, "nftables: {}{}", first, command.empty() ? "" : " (in '" + command + "')");
    }
    return out;
}

}  // namespace berth::network
