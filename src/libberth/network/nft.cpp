#include "network/nft.h"

#include <nftables/libnftables.h>

#include "basic/dlopen-util.h"
#include "basic/string-util.h"

namespace berth::network {

namespace {

// The few libnftables functions berth calls, resolved from libnftables.so.1 at the first Nft::open
// (basic/dlopen-util.h): only published ports need the library.
#define BERTH_LIBNFTABLES_SYMBOLS(X) \
    X(nft_ctx_new)                   \
    X(nft_ctx_free)                  \
    X(nft_ctx_buffer_output)         \
    X(nft_ctx_buffer_error)          \
    X(nft_ctx_output_set_flags)      \
    X(nft_run_cmd_from_buffer)       \
    X(nft_ctx_get_output_buffer)     \
    X(nft_ctx_get_error_buffer)
BERTH_LIBNFTABLES_SYMBOLS(BERTH_DL_DECLARE)
BERTH_LIBNFTABLES_SYMBOLS(BERTH_DL_DEFINE)
}  // namespace
BERTH_ELF_NOTE_DLOPEN(libnftables_note, "published ports", "libnftables.so.1")
namespace {

DlLibrary libnftables{"libnftables.so.1", {BERTH_LIBNFTABLES_SYMBOLS(BERTH_DL_ENTRY)}};

}  // namespace

void free_nft_ctx(struct nft_ctx* ctx) {
    if (ctx) sym_nft_ctx_free(ctx);  // a context exists only when the library loaded
}

Result<Nft> Nft::open(bool json) {
    if (auto loaded = libnftables.load(); !loaded)
        return fail(loaded.error().code, "published ports need libnftables.so.1: {}", loaded.error().message);
    Nft nft;
    nft.ctx_.reset(sym_nft_ctx_new(NFT_CTX_DEFAULT));
    if (!nft.ctx_) return fail(ENOMEM, "create nftables context");
    if (sym_nft_ctx_buffer_output(nft.ctx_.get()) < 0 || sym_nft_ctx_buffer_error(nft.ctx_.get()) < 0)
        return fail(ENOMEM, "buffer nftables output");
    if (json) sym_nft_ctx_output_set_flags(nft.ctx_.get(), NFT_CTX_OUTPUT_JSON | NFT_CTX_OUTPUT_HANDLE);
    return nft;
}

Result<std::string> Nft::run(const std::string& script) {
    int rc = sym_nft_run_cmd_from_buffer(ctx_.get(), script.c_str());
    std::string out = sym_nft_ctx_get_output_buffer(ctx_.get());
    std::string err = sym_nft_ctx_get_error_buffer(ctx_.get());
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
