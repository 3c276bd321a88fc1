#!/usr/bin/env python3
# gen-stubs.py: lazy-binding stubs for a shared library, so that linking it costs nothing until
# one of its functions is first called.
#
# Why: every process start pays for every shared library in the executable's DT_NEEDED list
# (mapping it and its own dependencies, relocating, resolving symbols through a global scope that
# grows with each library, running constructors). `berth run` needs libc, libstdc++, libseccomp,
# libcap, libsystemd, fmt and toml++; the single `berth` executable also links libarchive (with
# libxml2, ICU, lzma, zstd, bz2...), libcrypto, libdevmapper, libbtrfsutil and libnftables for the
# store, image import and published ports. Those cost about 4 ms of CPU at every container start
# (measured: perf stat of an empty program linked with and without them) and are not used there.
# systemd solves this with dlopen() and hand-written `sym_*` function pointers at every call site.
# We get the same effect without touching the call sites: instead of -lX the link gets a small
# object that defines every function X exports as a one-jump trampoline
#
#     foo:        jmp *slot_foo(%rip)        # slot_foo starts out pointing at resolve_foo
#     resolve_foo: (save argument registers) call berth_lazy_resolve(lib, &slot_foo, "foo")
#                 (restore argument registers) jmp to the real foo
#
# berth_lazy_resolve (resolve.cpp) dlopen()s the library by its soname on first use, dlsym()s the
# function and stores it in the slot, so later calls cost one indirect jump. Every argument
# register of the x86-64 SysV ABI (rdi rsi rdx rcx r8 r9, rax for varargs, xmm0-7) is preserved
# across resolution, so any signature works, variadic ones included, and the real function is
# entered by a jump: it sees the caller's stack arguments and return address exactly as a direct
# call would have left them. Only functions are stubbed (the libraries export no data berth
# uses; a reference to exported data fails at link time instead of misbehaving).
#
# Usage: gen-stubs.py --library /usr/lib/.../libarchive.so --name archive --output stubs.cpp
import argparse
import json
import os
import re
import subprocess
import sys


def soname(path):
    out = subprocess.run(['readelf', '-d', path], check=True, capture_output=True, text=True).stdout
    m = re.search(r'\(SONAME\)\s+Library soname: \[([^\]]+)\]', out)
    if not m:
        sys.exit(f'gen-stubs.py: {path}: no DT_SONAME')
    return m.group(1)


def functions(path):
    out = subprocess.run(['nm', '-D', '--defined-only', path], check=True, capture_output=True,
                         text=True).stdout
    names = set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) != 3 or parts[1] not in ('T', 'W', 'i'):
            continue
        name = parts[2]
        if '@' in name and '@@' not in name:
            continue  # a non-default symbol version: dlsym() would not return it
        names.add(name.split('@')[0])
    return sorted(n for n in names if re.fullmatch(r'[A-Za-z_][A-Za-z0-9_]*', n))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--library', required=True, help='path of the shared library (libX.so)')
    ap.add_argument('--name', required=True, help='short identifier used in generated symbols')
    ap.add_argument('--output', required=True)
    a = ap.parse_args()
    lib = os.path.realpath(a.library)
    so = soname(lib)
    names = functions(lib)
    if not names:
        sys.exit(f'gen-stubs.py: {lib}: no exported functions')
    tag = re.sub(r'[^A-Za-z0-9_]', '_', a.name)
    common = f'berth_lazy_common_{tag}'
    desc = f'berth_lazy_library_{tag}'

    s = []
    s.append('\t.pushsection .text')
    for i, n in enumerate(names):
        s += [f'\t.globl {n}', f'\t.type {n}, @function', '\t.p2align 4', f'{n}:',
              f'\tjmp *.Lslot{i}(%rip)',
              f'.Lresolve{i}:',
              f'\tleaq .Lslot{i}(%rip), %r11',
              f'\tleaq .Lname{i}(%rip), %r10',
              f'\tjmp {common}',
              f'\t.size {n}, .-{n}']
    # On entry (after the caller's call) %rsp is 8 mod 16; seven pushes make it 0 mod 16, as the
    # call to the resolver needs. %r10/%r11 are scratch in the ABI, never argument registers.
    s += ['\t.p2align 4', f'\t.type {common}, @function', f'{common}:',
          '\tpushq %rdi', '\tpushq %rsi', '\tpushq %rdx', '\tpushq %rcx', '\tpushq %r8',
          '\tpushq %r9', '\tpushq %rax', '\tsubq $128, %rsp']
    s += [f'\tmovdqu %xmm{k}, {16 * k}(%rsp)' for k in range(8)]
    s += [f'\tleaq {desc}(%rip), %rdi', '\tmovq %r11, %rsi', '\tmovq %r10, %rdx',
          '\tcall berth_lazy_resolve@PLT', '\tmovq %rax, %r11']
    s += [f'\tmovdqu {16 * k}(%rsp), %xmm{k}' for k in range(8)]
    s += ['\taddq $128, %rsp', '\tpopq %rax', '\tpopq %r9', '\tpopq %r8', '\tpopq %rcx',
          '\tpopq %rdx', '\tpopq %rsi', '\tpopq %rdi', '\tjmp *%r11', f'\t.size {common}, .-{common}',
          '\t.popsection']
    s.append('\t.pushsection .rodata.berth_lazy,"a",@progbits')
    s.append(f'.Lsoname: .asciz "{so}"')
    for i, n in enumerate(names):
        s.append(f'.Lname{i}: .asciz "{n}"')
    s.append('\t.popsection')
    s.append('\t.pushsection .data.rel.local.berth_lazy,"aw",@progbits')
    s.append('\t.p2align 3')
    for i in range(len(names)):
        s.append(f'.Lslot{i}: .quad .Lresolve{i}')
    # struct berth_lazy_library { const char* soname; void* handle; } (resolve.cpp)
    s += [f'\t.globl {desc}', f'\t.hidden {desc}', f'\t.type {desc}, @object', f'{desc}:',
          '\t.quad .Lsoname', '\t.quad 0', f'\t.size {desc}, 16', '\t.popsection']

    # The library is a dependency the dynamic linker no longer sees (it is not in DT_NEEDED), so
    # say so where packaging and image tools look: an ELF note in the freedesktop.org dlopen
    # metadata format (owner "FDO", type 0x407c0c0a, a JSON array), as systemd's binaries carry.
    # scripts/elf-dlopen-libs.py reads it, e.g. for the qemu test's initramfs. The note sits in the
    # stub object, so a binary carries it exactly when it links a stub of this library.
    payload = json.dumps([{'feature': a.name, 'description': f'{so}, bound on first use by berth',
                           'priority': 'required', 'soname': [so]}], separators=(',', ':'))
    desc_bytes = payload.encode() + b'\0'
    desc_bytes += b'\0' * (-len(desc_bytes) % 4)
    s += ['\t.pushsection .note.dlopen,"a",@note', '\t.p2align 2', '\t.long 4',
          f'\t.long {len(desc_bytes)}', '\t.long 0x407c0c0a', '\t.asciz "FDO"',
          '\t.byte ' + ','.join(str(b) for b in desc_bytes), '\t.p2align 2', '\t.popsection']

    body = '\n'.join(s)
    with open(a.output, 'w') as f:
        f.write(f'// Generated by src/lazy-link/gen-stubs.py from {lib} ({so}): {len(names)} functions.\n')
        f.write('// Do not edit.\n')
        f.write('#if !defined(__x86_64__)\n#error "lazy-link stubs are x86-64 only"\n#endif\n')
        f.write('asm(R"BERTHLAZY(\n')
        f.write(body)
        f.write('\n)BERTHLAZY");\n')


if __name__ == '__main__':
    main()
