"""Noticing a kubelet restart: its socket file is created anew.

Python has no fsnotify, so a tiny ctypes binding of Linux inotify watches the socket's
directory for a file of that name being created or moved in; the daemon reads it
without blocking on every 100 ms tick. inotify is what makes this reliable: a socket
removed and re-created within one timestamp tick can get back the same inode and
ctime, which a `stat()` poll alone would miss. The poll stays as the fallback (no
inotify, or the directory itself replaced). The same tick also fingerprints the CDI
spec directories.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import struct
from collections.abc import Iterable
from pathlib import Path

POLL_SECONDS = 0.1

_IN_NONBLOCK = os.O_NONBLOCK
_IN_CLOEXEC = os.O_CLOEXEC
_IN_CREATE = 0x00000100
_IN_MOVED_TO = 0x00000080
_IN_DELETE_SELF = 0x00000400
_IN_MOVE_SELF = 0x00000800
_IN_IGNORED = 0x00008000
_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len; the name follows

Identity = tuple[int, int] | None


def identity(path: str | Path) -> Identity:
    """(device, inode) of the file itself, or None when it does not exist.

    Not the ctime: a chmod changes it on the same file.
    """
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


class _Inotify:
    """A non-blocking inotify descriptor watching one directory; None-safe on failure."""

    def __init__(self, directory: Path) -> None:
        self.fd = -1
        self.directory = directory
        name = ctypes.util.find_library("c")
        try:
            libc = ctypes.CDLL(name or "libc.so.6", use_errno=True)
            fd = libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
            if fd < 0:
                return
            mask = _IN_CREATE | _IN_MOVED_TO | _IN_DELETE_SELF | _IN_MOVE_SELF
            if libc.inotify_add_watch(fd, os.fsencode(directory), mask) < 0:
                os.close(fd)
                return
        except (OSError, AttributeError):
            return
        self.fd = fd

    def names(self) -> tuple[list[str], bool]:
        """Names created since the last call, and whether the watch itself is gone."""
        created: list[str] = []
        gone = False
        while self.fd >= 0:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                break
            except OSError as err:
                if err.errno == errno.EINTR:
                    continue
                gone = True
                break
            offset = 0
            while offset + _EVENT.size <= len(data):
                _wd, mask, _cookie, length = _EVENT.unpack_from(data, offset)
                raw = data[offset + _EVENT.size : offset + _EVENT.size + length]
                offset += _EVENT.size + length
                if mask & (_IN_DELETE_SELF | _IN_MOVE_SELF | _IN_IGNORED):
                    gone = True
                elif mask & (_IN_CREATE | _IN_MOVED_TO):
                    created.append(os.fsdecode(raw.split(b"\0", 1)[0]))
        return created, gone

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class CreationWatch:
    """Reports, once per re-creation, that `path` appeared or was replaced."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._seen = identity(self.path)
        self._inotify = _Inotify(self.path.parent)

    def created(self) -> bool:
        fresh = False
        if self._inotify.fd >= 0:
            names, gone = self._inotify.names()
            fresh = self.path.name in names
            if gone:  # the directory was removed or moved: watch its successor
                self._inotify.close()
                self._inotify = _Inotify(self.path.parent)
        now = identity(self.path)
        if now is not None and now != self._seen:
            fresh = True  # the fallback: appeared, or a new inode
        self._seen = now
        return fresh and now is not None

    def close(self) -> None:
        self._inotify.close()


# (directory, file name, size, mtime in ns) for each matching file, sorted
DirectorySignature = tuple[tuple[str, str, int, int], ...]


def directory_signature(
    dirs: Iterable[str | Path], suffixes: tuple[str, ...]
) -> DirectorySignature:
    """What a consumer would read from `dirs`: names, sizes and mtimes of matching files."""
    entries: list[tuple[str, str, int, int]] = []
    for directory in dirs:
        try:
            with os.scandir(directory) as it:
                for entry in it:
                    if not entry.name.endswith(suffixes):
                        continue
                    try:
                        st = entry.stat()
                    except OSError:
                        continue
                    entries.append((str(directory), entry.name, st.st_size, st.st_mtime_ns))
        except OSError:
            continue
    return tuple(sorted(entries))
