"""The project's one atomic file writer (GFD feature file, CDI spec).

Readers (nfd-worker, container runtimes) must see the old file or the new one,
never half of either, so a regular file is replaced by a renamed temp file from
the same directory. Odd targets have rules of their own
(docs/labels-output.md#the-feature-file): a character device or a FIFO is
written in place (renaming over `/dev/null` would replace the host's device
node), a symlink or a directory is refused, naming the path.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from pathlib import Path

__all__ = ["UnsafeTargetError", "remove_regular_file", "write_atomic"]


class UnsafeTargetError(OSError):
    """The target path names something the writer must not replace."""

    def __init__(self, path: str | Path, reason: str) -> None:
        super().__init__(errno.EINVAL, reason, str(path))
        self.path, self.reason = str(path), reason


def write_atomic(path: str | Path, data: bytes, mode: int = 0o644) -> bool:
    """Write `data` to `path` so that readers never see a partial file.

    Returns False, writing nothing, when `path` is a regular file that already
    holds exactly `data` with `mode`: an unchanged file keeps its mtime, so
    watchers (NFD's fsnotify) see no event. A character device or FIFO is
    written in place and always counts as written.

    Raises UnsafeTargetError for a symlink, directory or other special file,
    and an OSError naming the directory when the parent does not exist; any
    other OSError (a full filesystem, a read-only or unwritable directory)
    names `path` and keeps its errno. On any error the temp file is removed
    and the target is left untouched.
    """
    path = Path(path)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    if st is not None:
        kind = _refuse_reason(st.st_mode)
        if kind is not None:
            raise UnsafeTargetError(path, f"refusing to write over {kind}")
        if stat.S_ISCHR(st.st_mode) or stat.S_ISFIFO(st.st_mode):
            _write_in_place(path, data)
            return True
        if _holds(path, st, data, mode):
            return False
    _replace(path, data, mode)
    return True


def remove_regular_file(path: str | Path) -> bool:
    """Remove `path` only if it is a regular file; True when it was removed.

    A device node, FIFO, symlink or directory is never removed: the output file
    may be `/dev/null`. A file that is already gone is
    not an error; other OSErrors propagate for the caller to report.
    """
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return False
        os.unlink(path)
    except FileNotFoundError:
        return False
    return True


def _refuse_reason(st_mode: int) -> str | None:
    if stat.S_ISLNK(st_mode):
        return "a symbolic link"
    if stat.S_ISDIR(st_mode):
        return "a directory"
    if stat.S_ISREG(st_mode) or stat.S_ISCHR(st_mode) or stat.S_ISFIFO(st_mode):
        return None
    # Block devices and sockets: writing in place could destroy data, and
    # renaming over them would hide what the user pointed us at.
    return "a special file"


def _holds(path: Path, st: os.stat_result, data: bytes, mode: int) -> bool:
    """Whether the regular file at `path` already has this content and mode."""
    if st.st_size != len(data) or stat.S_IMODE(st.st_mode) != mode:
        return False
    try:
        return path.read_bytes() == data
    except OSError:
        return False  # unreadable: rewrite it rather than fail here


def _write_in_place(path: Path, data: bytes) -> None:
    # No O_CREAT: the node exists. A FIFO open blocks until a reader opens it,
    # as a shell redirect does; no chmod, the node's mode is not ours.
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        _write_all(fd, data)
    finally:
        os.close(fd)


def _replace(path: Path, data: bytes, mode: int) -> None:
    parent = path.parent
    try:
        # `.<basename><random>`: NFD ignores dot-files, so a leftover temp file
        # (a crash between create and rename) is never read as labels.
        fd, tmp = tempfile.mkstemp(dir=parent, prefix=f".{path.name}")
    except (FileNotFoundError, NotADirectoryError) as err:
        # name the missing directory, not the temp file mkstemp tried to create
        raise _naming(err, parent) from err
    except OSError as err:  # EACCES, EROFS, ENOSPC (no inode left)...
        raise _naming(err, path) from err
    try:
        try:
            _write_all(fd, data)
            os.fchmod(fd, mode)  # mkstemp made it 0600; fchmod ignores the umask
            os.fsync(fd)  # data on disk before the rename makes it visible
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException as err:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(err, OSError) and err.errno is not None:
            # A full filesystem fails the write with no file name at all, and the
            # rename names the temp file: the target is what the caller must hear of.
            raise _naming(err, path) from err
        raise
    _fsync_dir(parent)


def _naming(err: OSError, path: Path) -> OSError:
    """`err` again, of the same class, naming `path`: `[Errno 28] No space left on
    device: '/etc/.../gfd'`."""
    assert err.errno is not None
    return type(err)(err.errno, os.strerror(err.errno), str(path))


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _fsync_dir(directory: Path) -> None:
    """Persist the rename itself, so a power loss cannot bring back the old file."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    except OSError as err:
        # Some filesystems (FUSE, some network mounts) cannot fsync a directory;
        # the rename has happened, so this is not a failed write.
        if err.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)
