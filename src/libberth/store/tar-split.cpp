#include "store/tar-split.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <vector>

#include "basic/chase.h"
#include "basic/io-util.h"
#include "basic/unique.h"
#include "store/digest.h"

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace berth::store {
namespace {

constexpr std::string_view kMagic = "BERTHTS1";
constexpr size_t kOutFlush = 1 << 20;

std::array<uint32_t, 256> make_crc_table() {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
        uint32_t c = i;
        for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        t[i] = c;
    }
    return t;
}

uint32_t crc32c_soft(uint32_t crc, const unsigned char* p, size_t n) {
    static const auto table = make_crc_table();
    crc = ~crc;
    while (n--) crc = table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) uint32_t crc32c_hw(uint32_t crc, const unsigned char* p, size_t n) {
    uint64_t c = ~crc;
    while (n >= 8) {
        uint64_t v;
        std::memcpy(&v, p, 8);
        c = _mm_crc32_u64(c, v);
        p += 8;
        n -= 8;
    }
    uint32_t c32 = static_cast<uint32_t>(c);
    while (n--) c32 = _mm_crc32_u8(c32, *p++);
    return ~c32;
}
#endif

void put_varint(std::string& out, uint64_t v) {
    while (v >= 0x80) {
        out.push_back(static_cast<char>((v & 0x7f) | 0x80));
        v >>= 7;
    }
    out.push_back(static_cast<char>(v));
}

// Buffered sequential reader of a split file.
class Reader {
public:
    Reader(int fd, std::string name) : fd_(fd), name_(std::move(name)) {}

    Result<bool> at_end() {
        BERTH_TRY_VOID(fill(1, true));
        return pos_ == len_;
    }
    Result<> bytes(void* dst, size_t n) {
        auto* d = static_cast<char*>(dst);
        while (n) {
            BERTH_TRY_VOID(fill(1, false));
            size_t m = std::min(n, len_ - pos_);
            std::memcpy(d, buf_.data() + pos_, m);
            pos_ += m;
            d += m;
            n -= m;
        }
        return {};
    }
    // Passes n bytes to f in pieces straight from the buffer.
    template <typename F>
    Result<> stream(uint64_t n, F&& f) {
        while (n) {
            BERTH_TRY_VOID(fill(1, false));
            size_t m = static_cast<size_t>(std::min<uint64_t>(n, len_ - pos_));
            BERTH_TRY_VOID(f(buf_.data() + pos_, m));
            pos_ += m;
            n -= m;
        }
        return {};
    }
    Result<uint64_t> varint() {
        uint64_t v = 0;
        for (int shift = 0; shift < 64; shift += 7) {
            unsigned char b;
            BERTH_TRY_VOID(bytes(&b, 1));
            v |= static_cast<uint64_t>(b & 0x7f) << shift;
            if (!(b & 0x80)) return v;
        }
        return fail(EBADMSG, "tar-split '{}': bad number", name_);
    }

private:
    Result<> fill(size_t, bool eof_ok) {
        if (pos_ < len_) return {};
        for (;;) {
            ssize_t n = ::read(fd_, buf_.data(), buf_.size());
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) return fail_errno("read tar-split '{}'", name_);
            pos_ = 0;
            len_ = static_cast<size_t>(n);
            if (n == 0 && !eof_ok) return fail(EBADMSG, "tar-split '{}' is truncated", name_);
            return {};
        }
    }
    int fd_;
    std::string name_;
    std::vector<char> buf_ = std::vector<char>(1 << 20);
    size_t pos_ = 0, len_ = 0;
};

}  // namespace

uint32_t crc32c(uint32_t crc, const void* data, size_t size) {
    auto* p = static_cast<const unsigned char*>(data);
#if defined(__x86_64__)
    static const bool hw = __builtin_cpu_supports("sse4.2");
    if (hw) return crc32c_hw(crc, p, size);
#endif
    return crc32c_soft(crc, p, size);
}

// ---- recording ----

SplitRecorder::SplitRecorder(int out_fd, size_t max_pending) : out_fd_(out_fd), max_pending_(max_pending) {
    out_.append(kMagic);
}

void SplitRecorder::apply(const char* data, size_t size, Kind kind) {
    if (kind == Kind::Raw && size) {
        raw_.append(data, size);
        if (raw_.size() >= kOutFlush) flush_raw();
    }
    done_ += size;
}

void SplitRecorder::feed(const char* data, size_t size) {
    if (abandoned_) return;
    fed_ += size;
    if (done_ < region_end_) {
        // Only possible with nothing pending: the region was classified ahead of the stream.
        size_t m = static_cast<size_t>(std::min<uint64_t>(size, region_end_ - done_));
        apply(data, m, region_kind_);
        data += m;
        size -= m;
    }
    if (!size) return;
    if (pending_head_ > 0 && pending_head_ >= pending_.size() / 2) {
        pending_.erase(0, pending_head_);
        pending_head_ = 0;
    }
    pending_.append(data, size);
    if (pending_.size() - pending_head_ > max_pending_)
        abandon("an entry's unreferenced data is larger than the split's buffer");
}

void SplitRecorder::classify(uint64_t end, Kind kind) {
    if (abandoned_ || end <= done_) return;
    size_t avail = pending_.size() - pending_head_;
    size_t m = static_cast<size_t>(std::min<uint64_t>(end - done_, avail));
    apply(pending_.data() + pending_head_, m, kind);
    pending_head_ += m;
    if (pending_head_ == pending_.size()) {
        pending_.clear();
        pending_head_ = 0;
    }
    if (end > done_) {
        region_end_ = end;
        region_kind_ = kind;
    }
}

void SplitRecorder::header(uint64_t data_start) {
    if (abandoned_) return;
    if (data_start < done_) return abandon("the tar reader's position went backwards");
    classify(data_start, Kind::Raw);
}

void SplitRecorder::begin_file(uint64_t data_start, uint64_t size) {
    if (abandoned_) return;
    if (data_start != done_) return abandon("file data does not start where its header ends");
    flush_raw();  // the 'F' record goes after the header bytes, before anything that follows
    classify(data_start + size, Kind::Skip);
}

void SplitRecorder::end_file(std::string_view path, uint64_t size, uint32_t crc) {
    if (abandoned_) return;
    out_.push_back('F');
    put_varint(out_, size);
    for (int i = 0; i < 4; ++i) out_.push_back(static_cast<char>((crc >> (8 * i)) & 0xff));
    put_varint(out_, path.size());
    out_.append(path);
    flush_out(false);
}

void SplitRecorder::abandon(std::string reason) {
    if (abandoned_) return;
    abandoned_ = true;
    reason_ = std::move(reason);
    pending_.clear();
    pending_.shrink_to_fit();
    raw_.clear();
    out_.clear();
}

void SplitRecorder::flush_raw() {
    if (raw_.empty()) return;
    out_.push_back('R');
    put_varint(out_, raw_.size());
    out_.append(raw_);
    raw_.clear();
    flush_out(false);
}

void SplitRecorder::flush_out(bool force) {
    if (out_.empty() || (!force && out_.size() < kOutFlush) || write_failed_) return;
    auto r = write_all(out_fd_, out_, "tar-split");
    if (!r) {
        write_failed_ = true;
        write_error_ = r.error();
    }
    out_.clear();
}

Result<> SplitRecorder::error() const {
    if (write_failed_) return fail(write_error_);
    return {};
}

Result<> SplitRecorder::finish(uint64_t tar_size, const std::string& digest) {
    if (abandoned_) return {};
    if (fed_ != tar_size) {
        abandon("the recorded stream is shorter than the tar");
        return {};
    }
    classify(fed_, Kind::Raw);
    flush_raw();
    out_.push_back('E');
    put_varint(out_, tar_size);
    put_varint(out_, digest.size());
    out_.append(digest);
    flush_out(true);
    return error();
}

// ---- rebuilding ----

Result<uint64_t> rebuild_tar(const std::string& split_path, const std::string& tree_root,
                             const std::string& expect_digest,
                             const std::function<Result<>(const char*, size_t)>& sink) {
    UniqueFd fd(::open(split_path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return fail_errno("open tar-split '{}'", split_path);
    UniqueFd root(::open(tree_root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!root) return fail_errno("open layer tree '{}'", tree_root);
    Reader r(fd.get(), split_path);
    char magic[8];
    BERTH_TRY_VOID(r.bytes(magic, sizeof magic));
    if (std::string_view(magic, 8) != kMagic)
        return fail(EBADMSG, "'{}' is not a tar-split file", split_path);
    Sha256 hash;
    uint64_t total = 0;
    auto out = [&](const char* p, size_t n) -> Result<> {
        hash.update(p, n);
        total += n;
        return sink(p, n);
    };
    std::vector<char> buf(1 << 20);
    for (;;) {
        if (BERTH_TRY(r.at_end()))
            return fail(EBADMSG, "tar-split '{}' is truncated (no end record)", split_path);
        char type;
        BERTH_TRY_VOID(r.bytes(&type, 1));
        if (type == 'R') {
            uint64_t n = BERTH_TRY(r.varint());
            BERTH_TRY_VOID(r.stream(n, out));
        } else if (type == 'F') {
            uint64_t size = BERTH_TRY(r.varint());
            unsigned char c[4];
            BERTH_TRY_VOID(r.bytes(c, 4));
            uint32_t want_crc = c[0] | (c[1] << 8) | (c[2] << 16) | (static_cast<uint32_t>(c[3]) << 24);
            uint64_t len = BERTH_TRY(r.varint());
            if (len == 0 || len >= 4096) return fail(EBADMSG, "tar-split '{}': bad path length", split_path);
            std::string path(len, '\0');
            BERTH_TRY_VOID(r.bytes(path.data(), len));
            UniqueFd f(chase_raw(root.get(), path.c_str(), O_RDONLY | O_NOFOLLOW, kResolveStrictlyBeneath));
            if (!f) return fail_errno("layer file '{}' (needed to rebuild the layer blob)", path);
            struct stat st {};
            if (::fstat(f.get(), &st) < 0) return fail_errno("stat layer file '{}'", path);
            if (!S_ISREG(st.st_mode))
                return fail(EBADMSG, "layer file '{}' is no longer a regular file", path);
            if (static_cast<uint64_t>(st.st_size) != size)
                return fail(EBADMSG, "layer file '{}' has {} bytes, the layer blob needs {}", path,
                            st.st_size, size);
            uint32_t crc = 0;
            uint64_t left = size;
            while (left) {
                ssize_t n =
                    ::read(f.get(), buf.data(), static_cast<size_t>(std::min<uint64_t>(left, buf.size())));
                if (n < 0 && errno == EINTR) continue;
                if (n < 0) return fail_errno("read layer file '{}'", path);
                if (n == 0) return fail(EBADMSG, "layer file '{}' is shorter than {} bytes", path, size);
                crc = crc32c(crc, buf.data(), static_cast<size_t>(n));
                left -= static_cast<uint64_t>(n);
                // The file is checked before its last piece goes out, so a damaged file is named
                // here rather than found only by the final digest.
                if (left == 0 && crc != want_crc)
                    return fail(EBADMSG,
                                "layer file '{}' does not match the layer blob (content changed or damaged)",
                                path);
                BERTH_TRY_VOID(out(buf.data(), static_cast<size_t>(n)));
            }
            if (size == 0 && crc != want_crc)
                return fail(EBADMSG, "layer file '{}' does not match the layer blob", path);
        } else if (type == 'E') {
            uint64_t size = BERTH_TRY(r.varint());
            uint64_t len = BERTH_TRY(r.varint());
            if (len > 200) return fail(EBADMSG, "tar-split '{}': bad digest", split_path);
            std::string digest(len, '\0');
            BERTH_TRY_VOID(r.bytes(digest.data(), len));
            if (!BERTH_TRY(r.at_end()))
                return fail(EBADMSG, "tar-split '{}': data after the end record", split_path);
            if (size != total)
                return fail(EBADMSG, "tar-split '{}': rebuilt {} bytes, the layer blob has {}", split_path,
                            total, size);
            std::string got = hash.finish();
            if (got != digest || (!expect_digest.empty() && got != expect_digest))
                return fail(EBADMSG, "tar-split '{}': rebuilt blob is {}, expected {}", split_path, got,
                            expect_digest.empty() ? digest : expect_digest);
            return total;
        } else {
            return fail(EBADMSG, "tar-split '{}': unknown record type {:#x}", split_path,
                        static_cast<unsigned>(static_cast<unsigned char>(type)));
        }
    }
}

}  // namespace berth::store
