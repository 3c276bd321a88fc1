// runtime-probe: a tiny static program run inside test containers. Each argument names a check;
// it prints "NAME=OK" when the operation succeeded or "NAME=ERRNO_NAME" when it failed, so tests
// assert what the kernel answered from inside the container.
#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

static void report(const char* name, long rc) {
    if (rc >= 0)
        std::printf("%s=OK\n", name);
    else
        std::printf("%s=%s\n", name, strerrorname_np(errno));
}

int main(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
        const char* c = argv[i];
        if (!std::strcmp(c, "mount"))
            report(c, ::mount("tmpfs", "/tmp", "tmpfs", 0, nullptr));
        else if (!std::strcmp(c, "unshare-user"))
            report(c, ::unshare(CLONE_NEWUSER));
        else if (!std::strcmp(c, "kexec_load"))
            report(c, ::syscall(SYS_kexec_load, 0, 0, nullptr, 0));
        else if (!std::strcmp(c, "init_module"))
            report(c, ::syscall(SYS_init_module, nullptr, 0, ""));
        else if (!std::strcmp(c, "clone3"))
            report(c, ::syscall(SYS_clone3, nullptr, 0));
        else if (!std::strcmp(c, "write-proc-sys"))
            report(c, ::open("/proc/sys/kernel/domainname", O_WRONLY));
        else if (!std::strcmp(c, "sethostname"))
            report(c, ::sethostname("x", 1));
        else if (!std::strcmp(c, "chroot"))
            report(c, ::chroot("/"));
        else if (!std::strcmp(c, "notify")) {
            // sd_notify by hand: READY=1 to $NOTIFY_SOCKET.
            const char* path = std::getenv("NOTIFY_SOCKET");
            int fd = ::socket(AF_UNIX, SOCK_DGRAM, 0);
            struct sockaddr_un sa {};
            sa.sun_family = AF_UNIX;
            std::strncpy(sa.sun_path, path ? path : "", sizeof sa.sun_path - 1);
            const char msg[] = "READY=1\nSTATUS=payload ready\nMAINPID=1";
            report(c, ::sendto(fd, msg, sizeof msg - 1, 0, reinterpret_cast<sockaddr*>(&sa), sizeof sa));
        } else if (!std::strcmp(c, "linger")) {
            // Stays a moment (after "notify": the relay looks the sender up in /proc while it lives).
            ::usleep(500000);
        } else if (!std::strcmp(c, "ignore-term")) {
            // Ignores SIGTERM, exits 42 on SIGUSR1 (stop_signal tests).
            ::signal(SIGTERM, SIG_IGN);
            struct sigaction sa {};
            sa.sa_handler = [](int) { ::_exit(42); };
            ::sigaction(SIGUSR1, &sa, nullptr);
            std::printf("ready\n");
            std::fflush(stdout);
            for (;;) ::pause();
        } else if (!std::strcmp(c, "serve-listen")) {
            // Socket activation (sd_listen_fds(3)): says which fds it has and what the variables
            // are, then answers one connection on fd 3 with "served".
            std::string fds;
            if (DIR* dir = ::opendir("/proc/self/fd")) {
                const int own = ::dirfd(dir);
                std::vector<int> seen;
                while (struct dirent* e = ::readdir(dir))
                    if (e->d_name[0] != '.' && std::atoi(e->d_name) != own)
                        seen.push_back(std::atoi(e->d_name));
                ::closedir(dir);
                std::sort(seen.begin(), seen.end());
                for (int fd : seen) fds += (fds.empty() ? "" : ",") + std::to_string(fd);
            }
            const char* n = std::getenv("LISTEN_FDS");
            const char* pid = std::getenv("LISTEN_PID");
            const char* names = std::getenv("LISTEN_FDNAMES");
            std::printf("fds=%s\nLISTEN_FDS=%s\nLISTEN_PID=%s\nLISTEN_FDNAMES=%s\ngetpid=%d\n", fds.c_str(),
                        n ? n : "", pid ? pid : "", names ? names : "", ::getpid());
            std::fflush(stdout);
            int conn = ::accept4(3, nullptr, nullptr, SOCK_CLOEXEC);
            report("accept", conn);
            if (conn >= 0) {
                (void)!::write(conn, "served\n", 7);
                ::close(conn);
            }
        } else
            std::printf("%s=UNKNOWN\n", c);
    }
    return 0;
}
