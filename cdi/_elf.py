"""Read a shared library's `DT_SONAME`, as Go's `debug/elf` `DynString` does.

The toolkit (v1.18+) adds `create-symlinks` links for a driver library's SONAME and its
`.so` name when those links exist on the host (docs/cdi.md#generate). It reads the
SONAME from the `.dynamic` section through the section headers; so does this, reading
only the few hundred bytes it needs rather than mapping the library.
"""

from __future__ import annotations

import os
import struct

__all__ = ["read_soname"]

_SHT_DYNAMIC = 6
_DT_NULL = 0
_DT_SONAME = 14


class _NotElf(ValueError):
    pass


def _read(fd: int, offset: int, size: int) -> bytes:
    data = os.pread(fd, size, offset)
    if len(data) != size:
        raise _NotElf("truncated")
    return data


def _sonames(fd: int) -> list[str]:
    ident = _read(fd, 0, 16)
    if ident[:4] != b"\x7fELF" or ident[4] not in (1, 2) or ident[5] not in (1, 2):
        raise _NotElf("not an ELF file")
    wide = ident[4] == 2
    end = "<" if ident[5] == 1 else ">"
    if wide:
        shoff, shentsize, shnum = (
            struct.unpack(end + "Q", _read(fd, 0x28, 8))[0],
            *struct.unpack(end + "HH", _read(fd, 0x3A, 4)),
        )
        shdr, dyn = end + "IIQQQQIIQQ", end + "qQ"
    else:
        shoff, shentsize, shnum = (
            struct.unpack(end + "I", _read(fd, 0x20, 4))[0],
            *struct.unpack(end + "HH", _read(fd, 0x2E, 4)),
        )
        shdr, dyn = end + "IIIIIIIIII", end + "iI"
    if not shoff or not shnum or shentsize < struct.calcsize(shdr):
        raise _NotElf("no section headers")
    table = _read(fd, shoff, shentsize * shnum)
    sections = [struct.unpack_from(shdr, table, i * shentsize) for i in range(shnum)]
    for _name, sh_type, _flags, _addr, offset, size, link, *_rest in sections:
        if sh_type != _SHT_DYNAMIC:
            continue
        if link >= len(sections):
            raise _NotElf("bad string table link")
        strtab = sections[link]
        strings = _read(fd, strtab[4], strtab[5])
        entry = struct.calcsize(dyn)
        names = []
        dynamic = _read(fd, offset, size - size % entry)
        for tag, value in struct.iter_unpack(dyn, dynamic):
            if tag == _DT_NULL:
                break
            if tag == _DT_SONAME:
                stop = strings.find(b"\0", value)
                names.append(strings[value : stop if stop >= 0 else None].decode())
        return names
    raise _NotElf("no dynamic section")


def read_soname(path: str) -> str | None:
    """The library's SONAME; its basename if it has none; None if it cannot be read.

    None also covers a file that is not ELF (the simulator's placeholder libraries) and
    a library with several SONAMEs: the toolkit logs a warning and adds no links then.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        names = _sonames(fd)
    except (OSError, _NotElf, struct.error, UnicodeDecodeError):
        return None
    finally:
        os.close(fd)
    if len(names) > 1:
        return None
    return names[0] if names else os.path.basename(path)
