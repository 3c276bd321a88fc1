// libnftables, the library behind nft(8): berth hands it nft scripts (rendered by plan()) and
// reads its JSON listing. No shelling out.
#pragma once

#include <string>

#include "basic/result.h"
#include "basic/unique.h"

struct nft_ctx;
extern "C" void nft_ctx_free(struct nft_ctx*);

namespace berth::network {

class Nft {
public:
    // json: listings come back as JSON (NFT_CTX_OUTPUT_JSON).
    static Result<Nft> open(bool json = false);
    // Runs a script as one transaction: all of it or nothing. Returns nft's output; on failure the
    // error carries nft's own message (first line).
    Result<std::string> run(const std::string& script);

private:
    CPtr<struct nft_ctx, nft_ctx_free> ctx_;
};

}  // namespace berth::network
