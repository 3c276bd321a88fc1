// libnftables, the library behind nft(8): berth hands it nft scripts (rendered by plan()) and
// reads its JSON listing. No shelling out. Only published ports need it, so it is dlopen()ed there
// (as systemd does for its optional libraries), not linked: a `berth run` without ports never maps
// it, and a host without it fails only that path, with a clear error.
#pragma once

#include <string>

#include "basic/result.h"
#include "basic/unique.h"

struct nft_ctx;

namespace berth::network {

void free_nft_ctx(struct nft_ctx* ctx);  // through the dlopen()ed library

class Nft {
public:
    // json: listings come back as JSON (NFT_CTX_OUTPUT_JSON). Loads libnftables.so.1 on first use
    // (ELIBACC "published ports need libnftables.so.1: ..." when it cannot).
    static Result<Nft> open(bool json = false);
    // Runs a script as one transaction: all of it or nothing. Returns nft's output; on failure the
    // error carries nft's own message (first line).
    Result<std::string> run(const std::string& script);

private:
    CPtr<struct nft_ctx, free_nft_ctx> ctx_;
};

}  // namespace berth::network
