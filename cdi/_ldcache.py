"""Read glibc's `ld.so.cache`: the library locator's fallback after its standard directories.

Two layouts exist: the old `ld.so-1.7.0` table (optionally followed, 8-byte aligned, by
the new one) and the new `glibc-ld.so.cache1.1` table alone, which Debian's `ldconfig`
writes. Only the new table carries the architecture flags that tell 64-bit entries from
32-bit ones, so an old-only cache yields its entries as 64-bit: that is what the
toolkit's reader does with the flags it finds there (the same bit layout).
"""

from __future__ import annotations

import struct

__all__ = ["LdCacheError", "parse_ld_cache"]

_OLD_MAGIC = b"ld.so-1.7.0"
_NEW_MAGIC = b"glibc-ld.so.cache"
_NEW_VERSION = b"1.1"
_OLD_HEADER = 16  # magic (11) + NUL pad to 12 + u32 count
_OLD_ENTRY = 12  # i32 flags, u32 key, u32 value
_NEW_HEADER = 48  # magic+version (20), u32 nlibs, u32 strtab size, 3 x u32, u64 pad
_NEW_ENTRY = 24  # i32 flags, u32 key, u32 value, u32 osversion, u64 hwcap

_FLAG_ELF = 0x0001
_ARCH_MASK = 0xFF00
# flags & 0xff00 -> bitness (glibc's FLAG_* constants)
_ARCH_64 = {0x0300, 0x0500, 0x0A00}  # x86-64, ppc64le, aarch64
_ARCH_32 = {0x0000, 0x0800, 0x0900}  # i386, x32, ARM hard-float


class LdCacheError(ValueError):
    """The file is not an ld.so.cache this reader understands."""


def _cstring(data: bytes, offset: int) -> str:
    end = data.find(b"\0", offset)
    if offset >= len(data) or end < 0:
        raise LdCacheError(f"string offset {offset} outside the cache")
    return data[offset:end].decode("utf-8", "surrogateescape")


def _new_table(data: bytes, start: int) -> tuple[list[str], list[str]]:
    if len(data) < start + _NEW_HEADER or data[start : start + 17] != _NEW_MAGIC:
        raise LdCacheError("missing glibc-ld.so.cache header")
    if data[start + 17 : start + 20] != _NEW_VERSION:
        raise LdCacheError("unsupported ld.so.cache version")
    (count,) = struct.unpack_from("<I", data, start + 20)
    if len(data) < start + _NEW_HEADER + count * _NEW_ENTRY:
        raise LdCacheError("truncated ld.so.cache")
    libs32: list[str] = []
    libs64: list[str] = []
    for i in range(count):
        flags, _key, value, _os, _hwcap = struct.unpack_from(
            "<iIIIQ", data, start + _NEW_HEADER + i * _NEW_ENTRY
        )
        if not flags & _FLAG_ELF:
            continue
        arch = flags & _ARCH_MASK
        # String offsets in the new format count from the start of its header.
        if arch in _ARCH_64:
            libs64.append(_cstring(data, start + value))
        elif arch in _ARCH_32:
            libs32.append(_cstring(data, start + value))
    return libs32, libs64


def parse_ld_cache(data: bytes) -> tuple[list[str], list[str]]:
    """(32-bit paths, 64-bit paths), each in cache order. Raises LdCacheError."""
    if data.startswith(_NEW_MAGIC):
        return _new_table(data, 0)
    if not data.startswith(_OLD_MAGIC):
        raise LdCacheError("not an ld.so.cache file")
    (count,) = struct.unpack_from("<I", data, 12)
    end_old = _OLD_HEADER + count * _OLD_ENTRY
    new_start = (end_old + 7) & ~7
    if data[new_start : new_start + 17] == _NEW_MAGIC:
        return _new_table(data, new_start)
    if len(data) < end_old:
        raise LdCacheError("truncated ld.so.cache")
    libs64 = []
    for i in range(count):
        flags, _key, value = struct.unpack_from("<iII", data, _OLD_HEADER + i * _OLD_ENTRY)
        if flags & _FLAG_ELF:
            # old-format offsets count from the string table after the entries
            libs64.append(_cstring(data, end_old + value))
    return [], libs64
