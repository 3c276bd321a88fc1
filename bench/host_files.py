# bench/host_files.py: the host's own files as layer content with real compressibility, for the
# pull and decoder benchmarks (imported by their Python steps, which run from the repository top).
import os


def host_files():
    """Regular files under /usr/lib, /usr/share and /usr/bin (under 16 MiB each), lazily: a small
    benchmark reads little of /usr."""
    for d in ("/usr/lib", "/usr/share", "/usr/bin"):
        for root, _, names in os.walk(d):
            for n in sorted(names):
                p = os.path.join(root, n)
                if os.path.isfile(p) and not os.path.islink(p) and os.path.getsize(p) < (16 << 20):
                    yield p
