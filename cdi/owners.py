"""Two writers of one spec directory, and never a name defined twice (docs/cdi.md).

The generator (`nvidia-cdi generate`, usually `nvidia.yaml`) and the device plugin
(`nvidia-device-plugin.yaml`, the names it hands out that nothing else defines) write
separate files into one directory. CDI drops a device that two files of one directory
define, and a container asking for it fails. Renaming a file into place is atomic, but
no pair of renames or unlinks moves a name from one file to another atomically: between
the two steps the name is defined twice, or not at all. So a name never moves:

- whoever defines a name first keeps it: the plugin writes only names no other file
  defines, and the generator leaves out the names the plugin's file defines;
- each writer decides and writes under an exclusive `flock` of the directory itself,
  so that neither decides on what the other is about to replace.

A name leaves the plugin's file only when the plugin no longer hands it out, or when
some other file (a writer outside this protocol) defines it already; `--watch` takes it
back at its next pass.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the plugin imports this module's constant at start-up: stay cheap
    from cdi.spec import Spec

log = logging.getLogger("cdi")

__all__ = [
    "PLUGIN_SPEC_FILE",
    "LockTimeout",
    "held_by_plugin",
    "plugin_device_names",
    "spec_dir_lock",
    "without",
    "write_beside_plugin",
]

PLUGIN_SPEC_FILE = "nvidia-device-plugin.yaml"
_POLL_SECONDS = 0.005
GENERATOR_LOCK_SECONDS = 10.0  # a plugin holds the lock for one check: milliseconds


class LockTimeout(OSError):
    """Another writer held the spec directory's lock for longer than we would wait."""

    def __init__(self, directory: str, seconds: float) -> None:
        super().__init__(
            errno.EWOULDBLOCK,
            f"another writer held the lock for more than {seconds:g}s",
            directory,
        )


@contextlib.contextmanager
def spec_dir_lock(directory: str | os.PathLike[str], timeout: float) -> Iterator[None]:
    """Hold an exclusive `flock` on `directory` (which must exist) for the block.

    The directory itself is locked, not a file in it: nothing is left behind for a
    container engine or a person to wonder about, and every process that can read the
    directory can lock it (a hostPath mounted into several pods is one inode). The
    kernel drops the lock when its holder dies, SIGKILL included. Raises LockTimeout
    after `timeout` seconds, or the OSError of opening the directory.
    """
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockTimeout(os.fspath(directory), timeout) from None
                time.sleep(_POLL_SECONDS)
        yield  # closing the descriptor releases the lock
    finally:
        os.close(fd)


def plugin_device_names(directory: str | os.PathLike[str], kind: str | None) -> frozenset[str]:
    """The device names the plugin's file in `directory` defines: unqualified, of `kind`;
    qualified, of any kind, when `kind` is None.

    A file that is absent, unreadable or invalid defines nothing (CDI skips it too).
    """
    from cdi.load import read_spec

    path = os.path.join(directory, PLUGIN_SPEC_FILE)
    if not os.path.isfile(path):
        return frozenset()
    spec, _problems = read_spec(path)
    if spec is None:
        return frozenset()
    if kind is None:
        return frozenset(f"{spec.kind}={d.name}" for d in spec.devices)
    return frozenset(d.name for d in spec.devices) if spec.kind == kind else frozenset()


def held_by_plugin(output: str) -> frozenset[str]:
    """What the plugin's file beside the generator's `output` defines (qualified names).

    `--watch` compares it from pass to pass: a name the plugin let go is taken back.
    """
    if output == "-" or os.path.basename(output) == PLUGIN_SPEC_FILE:
        return frozenset()
    return plugin_device_names(os.path.dirname(os.path.abspath(output)), None)


def without(spec: Spec, names: frozenset[str]) -> Spec | None:
    """`spec` less the devices named, at its new minimum version; None if none is left."""
    if not names & {d.name for d in spec.devices}:
        return spec
    kept = [d.name for d in spec.devices if d.name not in names]
    if not kept:
        return None
    from cdi.generate import select_devices

    return select_devices(spec, kept)


def write_beside_plugin(spec: Spec, path: str, fmt: str, lock_timeout: float) -> str:
    """The generator's write: `spec` less what the plugin's file beside `path` defines.

    Decided and written under the directory's lock. Returns what happened: "written",
    "unchanged", or "removed" when the plugin's file defines every device (the old
    spec would only define names the plugin now holds, or names gone from the node).
    Raises as `write_spec`, and LockTimeout.
    """
    from cdi.write import write_spec
    from nvlib.fsutil import remove_regular_file

    directory = os.path.dirname(os.path.abspath(path))
    if os.path.basename(path) == PLUGIN_SPEC_FILE:  # told to write the plugin's file itself
        return "written" if write_spec(spec, path, fmt) else "unchanged"
    os.makedirs(directory, mode=0o755, exist_ok=True)
    with spec_dir_lock(directory, lock_timeout):
        held = plugin_device_names(directory, spec.kind)
        kept = without(spec, held)
        if held and kept is not spec:
            log.info(
                "Leaving %d devices to %s, which defines them",
                len(spec.devices) - (len(kept.devices) if kept else 0),
                os.path.join(directory, PLUGIN_SPEC_FILE),
            )
        if kept is None:
            remove_regular_file(path)
            return "removed"
        return "written" if write_spec(kept, path, fmt) else "unchanged"
