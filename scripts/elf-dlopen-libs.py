#!/usr/bin/env python3
# elf-dlopen-libs.py FILE...: prints the sonames an ELF file declares it dlopen()s, from its
# freedesktop.org dlopen notes (section .note.dlopen, owner "FDO", type 0x407c0c0a, a JSON array
# of {"soname": [...], ...}), one per line. berth's lazily bound libraries (src/lazy-link) are
# declared this way because ldd cannot see them; tools that copy a binary with its libraries
# (the qemu test's initramfs) use this to copy them too. Only 64-bit little-endian ELF.
import json
import struct
import sys

NOTE_TYPE = 0x407c0c0a


def dlopen_sonames(path):
    with open(path, 'rb') as f:
        data = f.read()
    if data[:4] != b'\x7fELF' or data[4] != 2 or data[5] != 1:
        sys.exit(f'elf-dlopen-libs.py: {path}: not a 64-bit little-endian ELF file')
    shoff, = struct.unpack_from('<Q', data, 0x28)
    shentsize, shnum = struct.unpack_from('<HH', data, 0x3a)
    out = []
    for i in range(shnum):
        sh_type, = struct.unpack_from('<I', data, shoff + i * shentsize + 4)
        if sh_type != 7:  # SHT_NOTE
            continue
        off, size = struct.unpack_from('<QQ', data, shoff + i * shentsize + 0x18)
        pos, end = off, off + size
        while pos + 12 <= end:
            namesz, descsz, ntype = struct.unpack_from('<III', data, pos)
            name = data[pos + 12:pos + 12 + namesz].rstrip(b'\0')
            dpos = pos + 12 + ((namesz + 3) & ~3)
            desc = data[dpos:dpos + descsz].rstrip(b'\0')
            pos = dpos + ((descsz + 3) & ~3)
            if name != b'FDO' or ntype != NOTE_TYPE:
                continue
            for entry in json.loads(desc):
                out += [s for s in entry.get('soname', []) if s not in out]
    return out


if __name__ == '__main__':
    if len(sys.argv) < 2:
        sys.exit('usage: elf-dlopen-libs.py FILE...')
    seen = []
    for p in sys.argv[1:]:
        seen += [s for s in dlopen_sonames(p) if s not in seen]
    print('\n'.join(seen))
