// runtime-probe: a tiny static program run inside test containers. Each argument names a check;
// it prints "NAME=OK" when the operation succeeded or "NAME=ERRNO_NAME" when it failed, so tests
// assert what the kernel answered from inside the container.
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

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
        } else
            std::printf("%s=UNKNOWN\n", c);
    }
    return 0;
}
