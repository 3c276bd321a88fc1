#include "store/digest.h"

#include <openssl/evp.h>

#include "basic/dlopen-util.h"

// libcrypto, loaded by dlopen() at the first digest (basic/dlopen-util.h): a private berthd that
// only prepares a snapshot never maps it.
#define BERTH_LIBCRYPTO_SYMBOLS(X) \
    X(EVP_MD_CTX_new)              \
    X(EVP_MD_CTX_free)             \
    X(EVP_DigestInit_ex)           \
    X(EVP_DigestUpdate)            \
    X(EVP_DigestFinal_ex)          \
    X(EVP_sha256)
BERTH_LIBCRYPTO_SYMBOLS(BERTH_DL_DECLARE)
BERTH_LIBCRYPTO_SYMBOLS(BERTH_DL_DEFINE)
BERTH_ELF_NOTE_DLOPEN(libcrypto_note, "digests", "libcrypto.so.3")

namespace berth::store {

namespace {
DlLibrary libcrypto{"libcrypto.so.3", {BERTH_LIBCRYPTO_SYMBOLS(BERTH_DL_ENTRY)}};
}  // namespace

struct Sha256::Ctx {
    EVP_MD_CTX* md = nullptr;
    // A value type cannot fail: a missing libcrypto is a broken install (as at exec time before).
    Ctx() {
        load_or_die(libcrypto);
        md = sym_EVP_MD_CTX_new();
        sym_EVP_DigestInit_ex(md, sym_EVP_sha256(), nullptr);
    }
    ~Ctx() { sym_EVP_MD_CTX_free(md); }
};

Sha256::Sha256() : ctx_(std::make_unique<Ctx>()) {}
Sha256::~Sha256() = default;
Sha256::Sha256(Sha256&&) noexcept = default;
Sha256& Sha256::operator=(Sha256&&) noexcept = default;

void Sha256::update(const void* data, size_t size) {
    sym_EVP_DigestUpdate(ctx_->md, data, size);
    bytes_ += size;
}

std::string Sha256::finish() {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    sym_EVP_DigestFinal_ex(ctx_->md, out, &len);
    sym_EVP_DigestInit_ex(ctx_->md, sym_EVP_sha256(), nullptr);
    bytes_ = 0;
    static const char hex[] = "0123456789abcdef";
    std::string s = "sha256:";
    for (unsigned i = 0; i < len; ++i) {
        s += hex[out[i] >> 4];
        s += hex[out[i] & 15];
    }
    return s;
}

std::string sha256_digest(std::string_view data) {
    Sha256 h;
    h.update(data);
    return h.finish();
}

bool valid_digest(std::string_view d) {
    if (d.size() != 7 + 64 || d.substr(0, 7) != "sha256:") return false;
    for (char c : d.substr(7))
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    return true;
}

std::string_view digest_hex(std::string_view d) { return valid_digest(d) ? d.substr(7) : std::string_view{}; }

std::string chain_id_next(const std::string& parent_chain, const std::string& diff_id) {
    if (parent_chain.empty()) return diff_id;
    return sha256_digest(parent_chain + " " + diff_id);
}

std::vector<std::string> chain_ids(const std::vector<std::string>& diff_ids) {
    std::vector<std::string> out;
    std::string prev;
    for (const auto& d : diff_ids) {
        prev = chain_id_next(prev, d);
        out.push_back(prev);
    }
    return out;
}

}  // namespace berth::store
