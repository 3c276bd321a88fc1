#include "store/gzip-isal.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <vector>

// Built without ISA-L's headers (Debian's libisal-dev), gzip stays with libarchive's zlib; built
// with them, the library is loaded only where a gzip layer is read, and only if installed.
#if __has_include(<isa-l/igzip_lib.h>)
#include <isa-l/igzip_lib.h>
#define BERTH_HAVE_ISAL 1
#else
#define BERTH_HAVE_ISAL 0
struct inflate_state {};
#endif

#if BERTH_HAVE_ISAL
#define BERTH_LIBISAL_SYMBOLS(X) \
    X(isal_inflate)              \
    X(isal_inflate_init)         \
    X(isal_inflate_reset)

BERTH_LIBISAL_SYMBOLS(BERTH_DL_DECLARE)
BERTH_LIBISAL_SYMBOLS(BERTH_DL_DEFINE)
BERTH_ELF_NOTE_DLOPEN(libisal_note, "fast gzip layer decompression", "libisal.so.2")
#endif

namespace berth::store {

namespace {

// A gzip member header as libarchive's gzip filter accepts one: magic, deflate, no reserved flag.
constexpr size_t kGzipHeaderPeek = 4;

}  // namespace

bool is_gzip_header(const void* data, size_t size) {
    const auto* b = static_cast<const unsigned char*>(data);
    return size >= kGzipHeaderPeek && b[0] == 0x1f && b[1] == 0x8b && b[2] == 8 && (b[3] & 0xe0) == 0;
}

#if !BERTH_HAVE_ISAL

// No ISA-L at build time: never loaded, never constructed; definitions for the linker only.
DlLibrary libisal{"libisal.so.2", {}};

bool use_isal_for_gzip() { return false; }

IsalGunzip::IsalGunzip(ReadInput read, const void*, size_t) : read_(std::move(read)) { std::abort(); }
IsalGunzip::~IsalGunzip() = default;
ssize_t IsalGunzip::read(void*, size_t) { std::abort(); }
bool IsalGunzip::refill() { std::abort(); }
ssize_t IsalGunzip::fail(std::string) { std::abort(); }

#else

DlLibrary libisal{"libisal.so.2", {BERTH_LIBISAL_SYMBOLS(BERTH_DL_ENTRY)}};

namespace {

const char* isal_error(int r) {
    switch (r) {
        case ISAL_INVALID_BLOCK:
            return "invalid deflate block";
        case ISAL_INVALID_SYMBOL:
            return "invalid deflate symbol";
        case ISAL_INVALID_LOOKBACK:
            return "invalid lookback distance";
        case ISAL_INVALID_WRAPPER:
            return "invalid gzip header";
        case ISAL_UNSUPPORTED_METHOD:
            return "unsupported compression method";
        case ISAL_INCORRECT_CHECKSUM:
            return "CRC-32 or size in the gzip trailer does not match";
        case ISAL_NEED_DICT:
            return "a preset dictionary is required";
        default:
            return "unknown ISA-L error";
    }
}

}  // namespace

bool use_isal_for_gzip() {
    const char* e = std::getenv("BERTH_GZIP_DECODER");
    if (e && std::strcmp(e, "zlib") == 0) return false;
    return libisal.load().has_value();
}

IsalGunzip::IsalGunzip(ReadInput read, const void* first, size_t first_size)
    : read_(std::move(read)), state_(std::make_unique<inflate_state>()) {
    sym_isal_inflate_init(state_.get());
    state_->crc_flag = ISAL_GZIP;
    state_->next_in = static_cast<uint8_t*>(const_cast<void*>(first));
    state_->avail_in = static_cast<uint32_t>(first_size);
}

IsalGunzip::~IsalGunzip() = default;

ssize_t IsalGunzip::fail(std::string message) {
    error_ = std::move(message);
    return -1;
}

// More input for the decoder: false at end of input or when the read failed.
bool IsalGunzip::refill() {
    if (input_eof_) return false;
    const void* data = nullptr;
    ssize_t n = read_(&data);
    if (n < 0) {
        input_failed_ = true;
        return false;
    }
    if (n == 0) {
        input_eof_ = true;
        return false;
    }
    state_->next_in = static_cast<uint8_t*>(const_cast<void*>(data));
    state_->avail_in = static_cast<uint32_t>(n);
    return true;
}

ssize_t IsalGunzip::read(void* out, size_t size) {
    if (!error_.empty() || input_failed_) return -1;
    auto* dst = static_cast<uint8_t*>(out);
    size_t produced = 0;
    while (produced < size && !done_) {
        if (state_->block_state == ISAL_BLOCK_FINISH) {
            // A member ended: another one follows, or the stream ends here (anything else after
            // it is trailing bytes, left to the caller's blob digest, as libarchive does).
            // The peek may straddle two input buffers: then the few bytes are carried over.
            if (state_->avail_in < kGzipHeaderPeek && !input_eof_) {
                std::vector<uint8_t> carry(state_->next_in, state_->next_in + state_->avail_in);
                if (refill()) {
                    carry_.assign(carry.begin(), carry.end());
                    carry_.insert(carry_.end(), state_->next_in, state_->next_in + state_->avail_in);
                    state_->next_in = carry_.data();
                    state_->avail_in = static_cast<uint32_t>(carry_.size());
                } else if (input_failed_) {
                    return -1;
                } else {
                    carry_ = std::move(carry);
                    state_->next_in = carry_.data();
                    state_->avail_in = static_cast<uint32_t>(carry_.size());
                }
            }
            if (!is_gzip_header(state_->next_in, state_->avail_in)) {
                done_ = true;
                break;
            }
            uint8_t* next = state_->next_in;
            uint32_t avail = state_->avail_in;
            sym_isal_inflate_reset(state_.get());
            state_->crc_flag = ISAL_GZIP;
            state_->next_in = next;
            state_->avail_in = avail;
        }
        if (state_->avail_in == 0 && !refill()) {
            if (input_failed_) return -1;
            return fail("truncated gzip input");
        }
        state_->next_out = dst + produced;
        state_->avail_out = static_cast<uint32_t>(size - produced);
        int r = sym_isal_inflate(state_.get());
        if (r != ISAL_DECOMP_OK) return fail(std::string("gzip decompression failed: ") + isal_error(r));
        produced = size - state_->avail_out;
        // Some output is enough for the caller (the limits look at every chunk).
        if (produced > 0 && state_->block_state != ISAL_BLOCK_FINISH) break;
    }
    return static_cast<ssize_t>(produced);
}

#endif  // BERTH_HAVE_ISAL

}  // namespace berth::store
