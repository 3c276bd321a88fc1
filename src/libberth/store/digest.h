// Streaming sha256 (OpenSSL EVP) and the OCI digest helpers built on it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "basic/result.h"

namespace berth::store {

class Sha256 {
public:
    Sha256();
    ~Sha256();
    Sha256(Sha256&&) noexcept;
    Sha256& operator=(Sha256&&) noexcept;
    void update(const void* data, size_t size);
    void update(std::string_view s) { update(s.data(), s.size()); }
    // "sha256:<64 hex>"; the object is reset afterwards.
    std::string finish();
    uint64_t bytes() const { return bytes_; }

private:
    struct Ctx;
    std::unique_ptr<Ctx> ctx_;
    uint64_t bytes_ = 0;
};

std::string sha256_digest(std::string_view data);  // "sha256:<hex>"

// "sha256:<64 lowercase hex>" -> true.
bool valid_digest(std::string_view digest);
// The hex part of a valid digest ("" otherwise).
std::string_view digest_hex(std::string_view digest);

// chainID(0) = diffID(0); chainID(n) = sha256(chainID(n-1) + " " + diffID(n)).
std::vector<std::string> chain_ids(const std::vector<std::string>& diff_ids);
std::string chain_id_next(const std::string& parent_chain, const std::string& diff_id);

}  // namespace berth::store
