// bench/gzip-decoders.cpp: inflate the same gzip files with each decoder berth could use for gzip
// layers (issue #17, "Measure: zlib vs libdeflate or ISA-L"), in one process, round-robin, and
// print the median MB/s of uncompressed output per decoder. Built and run by
// bench/gzip-decoders.sh; not part of the build.
//
// Decoders, each from memory (the files are read first, so the disk does not decide) into a
// 1 MiB output buffer that is thrown away, as berth's layer pipeline hands 1 MiB to the tar reader:
//   libarchive   berth's path today: archive_read_support_filter_all + format_raw,
//                archive_read_data (libarchive's gzip filter, which inflates with zlib)
//   zlib         inflate() streaming, 1 MiB input chunks (the decoder under libarchive, bare)
//   isal         ISA-L isal_inflate() streaming with the gzip wrapper, 1 MiB input chunks
//   libdeflate   libdeflate_gzip_decompress() of the whole file into a buffer of its full
//                uncompressed size: no streaming API, so this is its best case, not a way berth
//                could use it for a multi-GB layer
// Each decoder's output is checked: same size, same CRC-32 of the output as zlib's.
//
// Usage: gzip-decoders RUNS FILE.gz...
#include <archive.h>
#include <isa-l/igzip_lib.h>
#include <libdeflate.h>
#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace {

constexpr size_t kChunk = 1 << 20;

struct Output {
    uint64_t size = 0;
    uLong crc = crc32(0, nullptr, 0);
    void take(const unsigned char* p, size_t n, bool check) {
        size += n;
        if (check) crc = crc32(crc, p, static_cast<uInt>(n));
    }
};

[[noreturn]] void die(const std::string& what) {
    std::fprintf(stderr, "gzip-decoders: %s\n", what.c_str());
    std::exit(1);
}

Output run_zlib(const std::vector<unsigned char>& in, bool check) {
    Output out;
    std::vector<unsigned char> buf(kChunk);
    z_stream z{};
    if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) die("inflateInit2");
    size_t pos = 0;
    for (;;) {
        if (z.avail_in == 0 && pos < in.size()) {
            size_t n = std::min(kChunk, in.size() - pos);
            z.next_in = const_cast<unsigned char*>(in.data() + pos);
            z.avail_in = static_cast<uInt>(n);
            pos += n;
        }
        z.next_out = buf.data();
        z.avail_out = static_cast<uInt>(buf.size());
        int r = inflate(&z, Z_NO_FLUSH);
        out.take(buf.data(), buf.size() - z.avail_out, check);
        if (r == Z_STREAM_END) {
            if (z.avail_in == 0 && pos == in.size()) break;
            inflateReset(&z);  // another gzip member
        } else if (r != Z_OK && r != Z_BUF_ERROR) {
            die("zlib inflate failed");
        }
    }
    inflateEnd(&z);
    return out;
}

Output run_isal(const std::vector<unsigned char>& in, bool check) {
    Output out;
    std::vector<unsigned char> buf(kChunk);
    auto state = std::make_unique<inflate_state>();
    isal_inflate_init(state.get());
    state->crc_flag = ISAL_GZIP;
    size_t pos = 0;
    for (;;) {
        if (state->avail_in == 0 && pos < in.size()) {
            size_t n = std::min(kChunk, in.size() - pos);
            state->next_in = const_cast<unsigned char*>(in.data() + pos);
            state->avail_in = static_cast<uint32_t>(n);
            pos += n;
        }
        state->next_out = buf.data();
        state->avail_out = static_cast<uint32_t>(buf.size());
        int r = isal_inflate(state.get());
        if (r != ISAL_DECOMP_OK) die("isal_inflate failed: " + std::to_string(r));
        out.take(buf.data(), buf.size() - state->avail_out, check);
        if (state->block_state == ISAL_BLOCK_FINISH) {
            if (state->avail_in == 0 && pos == in.size()) break;
            // Another gzip member: keep the unread input.
            auto* next = state->next_in;
            auto avail = state->avail_in;
            isal_inflate_reset(state.get());
            state->crc_flag = ISAL_GZIP;
            state->next_in = next;
            state->avail_in = avail;
        }
    }
    return out;
}

Output run_libdeflate(const std::vector<unsigned char>& in, bool check) {
    if (in.size() < 4) die("short gzip");
    // ISIZE (the last member's size mod 2^32): enough for these test files, which are one member
    // under 4 GiB; a real layer gives no such promise, which is part of why libdeflate does not fit.
    uint32_t isize;
    std::memcpy(&isize, in.data() + in.size() - 4, 4);
    std::vector<unsigned char> buf(isize);
    static libdeflate_decompressor* d = libdeflate_alloc_decompressor();
    size_t actual = 0;
    if (libdeflate_gzip_decompress(d, in.data(), in.size(), buf.data(), buf.size(), &actual) !=
        LIBDEFLATE_SUCCESS)
        die("libdeflate_gzip_decompress failed");
    Output out;
    out.take(buf.data(), actual, check);
    return out;
}

Output run_libarchive(const std::vector<unsigned char>& in, bool check) {
    Output out;
    std::vector<unsigned char> buf(kChunk);
    struct archive* a = archive_read_new();
    archive_read_support_filter_all(a);
    archive_read_support_format_raw(a);
    if (archive_read_open_memory(a, in.data(), in.size()) != ARCHIVE_OK) die("archive_read_open_memory");
    struct archive_entry* e = nullptr;
    if (archive_read_next_header(a, &e) != ARCHIVE_OK) die("archive_read_next_header");
    for (;;) {
        la_ssize_t n = archive_read_data(a, buf.data(), buf.size());
        if (n < 0) die(std::string("archive_read_data: ") + archive_error_string(a));
        if (n == 0) break;
        out.take(buf.data(), static_cast<size_t>(n), check);
    }
    archive_read_free(a);
    return out;
}

double thread_cpu_seconds() {
    timespec t{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) / 1e9;
}

// Wall and CPU seconds of f(): on a shared machine the CPU time is the steadier of the two.
std::pair<double, double> seconds(const std::function<void()>& f) {
    auto t0 = std::chrono::steady_clock::now();
    double c0 = thread_cpu_seconds();
    f();
    return {std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(),
            thread_cpu_seconds() - c0};
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 3) die("usage: gzip-decoders RUNS FILE.gz...");
    int runs = std::atoi(argv[1]);
    std::vector<std::vector<unsigned char>> files;
    uint64_t compressed = 0;
    for (int i = 2; i < argc; ++i) {
        std::ifstream f(argv[i], std::ios::binary);
        if (!f) die(std::string("cannot read ") + argv[i]);
        files.emplace_back(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
        compressed += files.back().size();
    }
    using Fn = Output (*)(const std::vector<unsigned char>&, bool);
    const std::vector<std::pair<std::string, Fn>> decoders{{"zlib", run_zlib},
                                                           {"libarchive", run_libarchive},
                                                           {"isal", run_isal},
                                                           {"libdeflate", run_libdeflate}};

    // Correctness first: every decoder gives zlib's bytes (size and CRC-32) for every file.
    uint64_t uncompressed = 0;
    for (const auto& in : files) {
        Output ref = run_zlib(in, true);
        uncompressed += ref.size;
        for (const auto& [name, fn] : decoders) {
            Output o = fn(in, true);
            if (o.size != ref.size || o.crc != ref.crc) die(name + " disagrees with zlib");
        }
    }
    // Timed: round-robin, so a change in the machine's load hits every decoder alike.
    std::map<std::string, std::vector<double>> times, cpu;
    for (int r = 0; r < runs; ++r)
        for (const auto& [name, fn] : decoders) {
            auto [wall, c] = seconds([&, fn = fn] {
                for (const auto& in : files) fn(in, false);
            });
            times[name].push_back(wall);
            cpu[name].push_back(c);
        }
    auto median = [](std::vector<double> v) {
        std::sort(v.begin(), v.end());
        return v[v.size() / 2];
    };
    double base = median(times["zlib"]), base_cpu = median(cpu["zlib"]);
    std::printf("%zu files, %.1f MB gzip -> %.1f MB (ratio %.2f), median of %d runs\n", files.size(),
                static_cast<double>(compressed) / 1e6, static_cast<double>(uncompressed) / 1e6,
                static_cast<double>(uncompressed) / static_cast<double>(compressed), runs);
    std::printf(
        "| decoder | median wall s | MB/s out (wall) | x zlib (wall) | median CPU s | MB/s out (CPU) | x "
        "zlib (CPU) |\n"
        "|---|---:|---:|---:|---:|---:|---:|\n");
    for (const auto& [name, fn] : decoders) {
        double m = median(times[name]), c = median(cpu[name]);
        double mb = static_cast<double>(uncompressed) / 1e6;
        std::printf("| %s | %.3f | %.0f | %.2f | %.3f | %.0f | %.2f |\n", name.c_str(), m, mb / m, base / m,
                    c, mb / c, base_cpu / c);
    }
    return 0;
}
