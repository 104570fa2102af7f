"""A simulated driver root laid out on the host: `nvidia-cdi generate --simulator-root DIR`.

With `--nvml-mock` alone, the simulator's driver root is a temporary directory whose
device nodes are placeholders (regular files that stand for character devices), removed
when the command exits: a spec naming it is of no use to a container runtime. With
`--simulator-root DIR` the same tree is laid out under DIR and kept: each device node a
real character device with the profile's major and minor (`mknod`, which needs
CAP_MKNOD), the libraries, binaries, firmware, configs and sockets as the simulator's
placeholder files, the symlinks as the driver installs them. The spec names DIR's paths,
so a runtime on the host injects them. The nodes are not GPUs: `/dev/nvidia0` is char
195:0 as the NVIDIA driver numbers it, and without that driver opening it fails (ENXIO).

Reconciled, never rewritten wholesale: an entry that is already as wanted is left alone
(same inode, same mtime), so restarts and `--watch` passes change nothing; a wrong one
is replaced atomically (made under a temporary name in its directory, then renamed
over it); what an earlier profile left is removed. DIR must be absent, empty, or one
this command laid out (it holds `MARKER`): a DIR pointed by mistake at a real tree
(`/usr`, the host's `/dev`) is refused, not overwritten. Generators sharing DIR (the
chart's GPU and IMEX containers) take turns under an exclusive lock on the marker.

`layout` (what DIR should hold) and `is_current` (is an entry as wanted) are pure; `lay_out`
is the edge that reads and changes the disk.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import shutil
import stat
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, NamedTuple

from cdi.errors import CdiError

if TYPE_CHECKING:  # the simulator's profiles: only with --nvml-mock
    from nvlib.sim.profile import Profile

log = logging.getLogger(__name__)

__all__ = [
    "MARKER",
    "Entry",
    "Found",
    "LayOut",
    "SimulatorRootError",
    "is_current",
    "lay_out",
    "layout",
    "observe",
]

MARKER = ".nvidia-cdi-simulator-root"
MARKER_TEXT = (
    "A simulated NVIDIA driver root laid out by `nvidia-cdi generate --simulator-root`.\n"
    "Its device nodes are not GPUs. Remove this directory to start over.\n"
)
_TEMP_INFIX = ".simroot-tmp-"  # `.<name>.simroot-tmp-<pid>`: a crash's leftover is pruned
_DIR_MODE = 0o755


class SimulatorRootError(CdiError):
    """DIR cannot be laid out (not ours, not writable, no CAP_MKNOD), naming the path."""


class Entry(NamedTuple):
    """One entry DIR should hold, by path relative to DIR."""

    path: str
    kind: str  # "char", "file" or "link"
    mode: int = 0  # permission bits of a node or file
    data: bytes = b""  # a file's content
    target: str = ""  # a link's target
    major: int = 0
    minor: int = 0


class Found(NamedTuple):
    """What is at an entry's path now (`observe`)."""

    kind: str  # "missing", "char", "file", "link", "dir" or "other"
    mode: int = 0
    data: bytes | None = None  # a file's content; None when not read (its size differs)
    target: str = ""
    major: int = 0
    minor: int = 0


class LayOut(NamedTuple):
    """What one `lay_out` changed, by relative path."""

    created: tuple[str, ...] = ()
    replaced: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.created or self.replaced or self.removed)

    def summary(self) -> str:
        return (
            f"{len(self.created)} created, {len(self.replaced)} replaced, "
            f"{len(self.removed)} removed"
        )


def layout(profile: Profile) -> tuple[Entry, ...]:
    """What DIR holds for `profile`: the simulator's driver root, nodes as char devices.

    Sorted by path, so that a directory's entries come after the directory's own prefix.
    """
    from nvlib.sim.host import device_nodes, driver_files, placeholder_mode

    entries = [
        Entry(path, "char", placeholder_mode(path), major=major, minor=minor)
        for path, (major, minor) in device_nodes(profile).items()
    ]
    files, links = driver_files(profile)
    entries += [Entry(path, "file", mode, data=data) for path, data, mode in files]
    entries += [Entry(path, "link", target=target) for path, target in links]
    return tuple(sorted(entries, key=lambda e: e.path))


def is_current(entry: Entry, found: Found) -> bool:
    """Whether what is there already is the entry: same type, and same numbers (node),
    content (file) or target (link), with the same permission bits."""
    if found.kind != entry.kind:
        return False
    if entry.kind == "link":
        return found.target == entry.target
    if found.mode != entry.mode:
        return False
    if entry.kind == "char":
        return (found.major, found.minor) == (entry.major, entry.minor)
    return found.data == entry.data


def observe(path: str, entry: Entry) -> Found:
    """What is at `path`, read as far as comparing it with `entry` needs."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return Found("missing")
    mode = stat.S_IMODE(st.st_mode)
    if stat.S_ISCHR(st.st_mode):
        return Found("char", mode, major=os.major(st.st_rdev), minor=os.minor(st.st_rdev))
    if stat.S_ISLNK(st.st_mode):
        return Found("link", target=os.readlink(path))
    if stat.S_ISDIR(st.st_mode):
        return Found("dir", mode)
    if stat.S_ISREG(st.st_mode):
        if entry.kind != "file" or st.st_size != len(entry.data):
            return Found("file", mode)
        with open(path, "rb") as f:
            return Found("file", mode, data=f.read())
    return Found("other", mode)


def lay_out(root: str, profile: Profile) -> LayOut:
    """Make `root` hold `layout(profile)`, changing only what differs (see the module).

    Raises SimulatorRootError naming the path for a root that is not ours, an entry
    that cannot be made (a read-only file system; `mknod` without CAP_MKNOD), or any
    other failure; what was already laid out stays.
    """
    entries = layout(profile)
    with _claimed(root):
        created: list[str] = []
        replaced: list[str] = []
        directories = _parents(e.path for e in entries)
        for directory in sorted(directories):
            _directory(root, directory, created, replaced)
        for entry in entries:
            full = os.path.join(root, entry.path)
            with _naming(full):
                found = observe(full, entry)
            if not is_current(entry, found):
                _place(full, entry, found)
                (created if found.kind == "missing" else replaced).append(entry.path)
        wanted = {e.path for e in entries} | directories | {MARKER}
        removed = _prune(root, wanted)
    return LayOut(tuple(created), tuple(replaced), tuple(removed))


def _parents(paths: Iterable[str]) -> set[str]:
    found: set[str] = set()
    for path in paths:
        parent = os.path.dirname(path)
        while parent and parent not in found:
            found.add(parent)
            parent = os.path.dirname(parent)
    return found


@contextlib.contextmanager
def _claimed(root: str) -> Iterator[None]:
    """`root`, made if absent, checked to be ours and held under the marker's lock."""
    if os.path.realpath(root) == "/":
        raise SimulatorRootError(f"{root}: the simulated driver root cannot be /")
    with _naming(root):
        try:
            names = os.listdir(root)
        except FileNotFoundError:
            names = []
            os.makedirs(root, _DIR_MODE, exist_ok=True)
    if names and MARKER not in names:
        raise SimulatorRootError(
            f"{root}: not empty and not laid out by --simulator-root (no {MARKER}); "
            "refusing to write into it: give a new or empty directory"
        )
    marker = os.path.join(root, MARKER)
    with _naming(marker):
        fd = os.open(marker, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        with _naming(marker):
            fcntl.flock(fd, fcntl.LOCK_EX)  # another generator on this DIR finishes first
            if os.fstat(fd).st_size == 0:
                _write_all(fd, MARKER_TEXT.encode())
        yield
    finally:
        os.close(fd)  # releases the lock


@contextlib.contextmanager
def _naming(path: str) -> Iterator[None]:
    """An OSError in the block becomes a SimulatorRootError naming `path`."""
    try:
        yield
    except OSError as err:
        raise SimulatorRootError(f"{path}: {err.strerror or err}") from err


def _directory(root: str, relative: str, created: list[str], replaced: list[str]) -> None:
    """A real directory at `relative`: anything else there (a symlink that would lead
    the writes out of `root`, a file) is removed first."""
    full = os.path.join(root, relative)
    try:
        st = os.lstat(full)
    except FileNotFoundError:
        st = None
    if st is not None and stat.S_ISDIR(st.st_mode):
        return
    with _naming(full):
        if st is not None:
            os.unlink(full)
        os.mkdir(full, _DIR_MODE)
        os.chmod(full, _DIR_MODE)  # mkdir's mode went through the umask
    (created if st is None else replaced).append(relative)


def _temp_path(full: str) -> str:
    directory, name = os.path.split(full)
    return os.path.join(directory, f".{name}{_TEMP_INFIX}{os.getpid()}")


def _place(full: str, entry: Entry, found: Found) -> None:
    """Make `entry` under a temporary name beside `full`, then rename it over `full`."""
    temp = _temp_path(full)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(temp)  # a crashed run's
    try:
        _make(temp, full, entry)
        with _naming(full):
            if found.kind == "dir":  # rename cannot replace a directory
                shutil.rmtree(full)
            os.replace(temp, full)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def _make(temp: str, full: str, entry: Entry) -> None:
    if entry.kind == "link":
        with _naming(full):
            os.symlink(entry.target, temp)
    elif entry.kind == "char":
        try:
            os.mknod(temp, stat.S_IFCHR | entry.mode, os.makedev(entry.major, entry.minor))
        except OSError as err:
            hint = (
                ": making device nodes needs CAP_MKNOD (root, or a privileged container)"
                if err.errno == errno.EPERM
                else ""
            )
            raise SimulatorRootError(
                f"cannot create character device {full} ({entry.major}:{entry.minor}): "
                f"{err.strerror}{hint}"
            ) from err
        with _naming(full):
            os.chmod(temp, entry.mode)  # mknod's mode went through the umask
    else:
        with _naming(full):
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            try:
                _write_all(fd, entry.data)
                os.fchmod(fd, entry.mode)
            finally:
                os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _prune(root: str, wanted: set[str]) -> list[str]:
    """Remove what `wanted` does not name: an earlier profile's entries, crash leftovers."""
    removed: list[str] = []
    for directory, dirs, files in os.walk(root, topdown=False):
        for name in (*files, *dirs):
            full = os.path.join(directory, name)
            relative = os.path.relpath(full, root)
            if relative in wanted:
                continue
            with _naming(full):
                # Children come first (topdown=False): an unwanted directory is empty now.
                if stat.S_ISDIR(os.lstat(full).st_mode):
                    os.rmdir(full)
                else:
                    os.unlink(full)
            removed.append(relative)
    return sorted(removed)
