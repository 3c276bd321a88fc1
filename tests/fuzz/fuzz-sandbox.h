// A filesystem sandbox for fuzz targets that write files (the layer extractor). The fuzzers run
// as root in CI, and an extractor bug is exactly what they hunt: a bad input that writes through
// a symlink to /etc must not reach the host. So, once at start-up, the process enters a private
// mount namespace in which every mount is read-only, except a fresh tmpfs at /mnt (the sandbox)
// and the directories libFuzzer writes to (corpus and artifact directories from argv, bind-mounted
// writable onto themselves). The namespace dies with the process: nothing to clean up.
#pragma once

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

namespace berth::fuzz {

inline std::string unescape_mountinfo(const std::string& s) {
    std::string out;
    for (size_t i = 0; i < s.size(); i++) {
        if (s[i] == '\\' && i + 3 < s.size()) {
            out += static_cast<char>(strtol(s.substr(i + 1, 3).c_str(), nullptr, 8));
            i += 3;
        } else {
            out += s[i];
        }
    }
    return out;
}

// Returns the sandbox directory ("/mnt/berth-fuzz"), or aborts: fuzzing a writer without the
// sandbox is not allowed.
inline std::string enter_sandbox(int argc, char** argv) {
    std::vector<std::string> writable;
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        if (a.rfind("-artifact_prefix=", 0) == 0) {
            std::string p = a.substr(strlen("-artifact_prefix="));
            p = p.substr(0, p.rfind('/') == std::string::npos ? 0 : p.rfind('/'));
            if (!p.empty()) writable.push_back(p);
        } else if (a[0] != '-') {
            struct stat st {};
            if (stat(a.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) writable.push_back(a);
        }
    }
    if (unshare(CLONE_NEWNS) != 0 || mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
        fprintf(stderr, "fuzz sandbox: private mount namespace: %s (run as root)\n", strerror(errno));
        abort();
    }
    // Writable binds first (they must be mounts of their own before everything turns read-only).
    std::vector<std::string> binds;
    for (const auto& w : writable) {
        char* real = realpath(w.c_str(), nullptr);
        if (!real) continue;
        if (mount(real, real, nullptr, MS_BIND, nullptr) == 0) binds.push_back(real);
        free(real);
    }
    std::ifstream mi("/proc/self/mountinfo");
    std::string line;
    std::vector<std::string> points;
    while (std::getline(mi, line)) {
        // id parent maj:min root mountpoint ...
        size_t p = 0;
        for (int f = 0; f < 4 && p != std::string::npos; f++) p = line.find(' ', p + 1);
        if (p == std::string::npos) continue;
        size_t e = line.find(' ', p + 1);
        points.push_back(unescape_mountinfo(line.substr(p + 1, e - p - 1)));
    }
    for (const auto& m : points) {
        bool keep = false;
        for (const auto& b : binds) keep |= (m == b);
        if (keep || m.rfind("/proc", 0) == 0 || m.rfind("/sys", 0) == 0 || m.rfind("/dev", 0) == 0) continue;
        mount(nullptr, m.c_str(), nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY, nullptr);  // best effort
    }
    // The root must be read-only, or the sandbox is not worth its name.
    if (access("/etc", W_OK) == 0 && mkdir("/etc/berth-fuzz-probe", 0700) == 0) {
        rmdir("/etc/berth-fuzz-probe");
        fprintf(stderr, "fuzz sandbox: / is still writable\n");
        abort();
    }
    if (mount("tmpfs", "/mnt", "tmpfs", 0, "size=512m,mode=0755") != 0) {
        fprintf(stderr, "fuzz sandbox: tmpfs on /mnt: %s\n", strerror(errno));
        abort();
    }
    mkdir("/mnt/berth-fuzz", 0755);
    return "/mnt/berth-fuzz";
}

}  // namespace berth::fuzz
