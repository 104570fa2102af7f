"""A small tmpfs that a test fills up or makes read-only, seen by one process only.

The process under test runs in a private mount namespace (`unshare -m`) where a tmpfs of
a few KiB is mounted over a directory before the command starts (`exec`, so the pid is
the command's). Nothing outside that process sees the mount, so a test never touches the
host's filesystems, and the mount goes away with the process. The test reaches the tmpfs
through `/proc/<pid>/root<mountpoint>` (the process's own view of the tree), fills it with
a file named `filler`, frees it, and remounts it read-only or writable with `nsenter`.

Needs root (CI runs as root) and util-linux's `unshare` and `nsenter`; without them the
test fails with the hint, never skips.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

FILLER = "filler"
SIZE = "64k"

# $0 is the mountpoint, $1 the directory of seed files (or ""), $2 "ro" or "rw"; the rest
# is the command. The filler is written only when asked, before the command starts.
_SETUP = r"""
set -e
mount -t tmpfs -o "size=$SIZE,mode=0755" tmpfs "$0"
if [ -n "$1" ]; then cp -a "$1"/. "$0"/; fi
if [ -n "$PREFILL" ]; then cat /dev/zero > "$0/filler" 2>/dev/null || true; fi
if [ "$2" = ro ]; then mount -o remount,ro "$0"; fi
shift 2
exec "$@"
"""


def require_root() -> None:
    """Fail (not skip) with the way to run it: the test mounts a tmpfs of its own."""
    if os.geteuid() != 0:
        pytest.fail("this test mounts a small tmpfs in a private mount namespace: run as root")
    for tool in ("unshare", "nsenter", "mount"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is missing: apt-get install -y util-linux mount")


def _command(
    mountpoint: Path,
    argv: Sequence[str],
    seed: Mapping[str, bytes] | None,
    *,
    read_only: bool,
) -> list[str]:
    seed_dir = ""
    if seed:
        directory = mountpoint.parent / f".{mountpoint.name}-seed"
        directory.mkdir(exist_ok=True)
        for name, data in seed.items():
            (directory / name).write_bytes(data)
            (directory / name).chmod(0o644)
        seed_dir = str(directory)
    mountpoint.mkdir(parents=True, exist_ok=True)
    return [
        "unshare", "-m", "--propagation", "private",
        "sh", "-c", _SETUP, str(mountpoint), seed_dir, "ro" if read_only else "rw",
        *argv,
    ]  # fmt: skip


def _environ(env: Mapping[str, str] | None, prefill: bool, size: str) -> dict[str, str]:
    base = dict(os.environ if env is None else env)
    base["SIZE"] = size
    base.pop("PREFILL", None)
    if prefill:
        base["PREFILL"] = "1"
    return base


class TightFs:
    """A process whose `mountpoint` is a small tmpfs; use as a context manager."""

    def __init__(
        self,
        mountpoint: Path,
        argv: Sequence[str],
        *,
        seed: Mapping[str, bytes] | None = None,
        prefill: bool = False,
        read_only: bool = False,
        size: str = SIZE,
        env: Mapping[str, str] | None = None,
    ) -> None:
        require_root()
        self.mountpoint = Path(mountpoint).resolve()
        self.proc = subprocess.Popen(
            _command(self.mountpoint, argv, seed, read_only=read_only),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_environ(env, prefill, size),
        )

    def __enter__(self) -> TightFs:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate(timeout=10)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def path(self, name: str = "") -> Path:
        """`name` in the tmpfs, as the process sees it."""
        inside = Path(f"/proc/{self.pid}/root{self.mountpoint}")
        return inside / name if name else inside

    def names(self) -> list[str]:
        return sorted(os.listdir(self.path()))

    def mounted(self) -> bool:
        """The tmpfs is in place (the setup ran; the process is still alive)."""
        try:
            with open(f"/proc/{self.pid}/mounts", encoding="utf-8") as mounts:
                return any(
                    line.split()[1] == str(self.mountpoint) and line.split()[0] == "tmpfs"
                    for line in mounts
                )
        except OSError:
            return False

    def fill(self) -> None:
        """Write zeros into `filler` until the tmpfs has no space left."""
        try:
            with open(self.path(FILLER), "ab") as filler:
                block = bytes(4096)
                while True:
                    filler.write(block)
                    filler.flush()
        except OSError as err:
            if err.errno != 28:  # ENOSPC: full, as wanted
                raise

    def free(self) -> None:
        self.path(FILLER).unlink(missing_ok=True)

    def remount(self, mode: str) -> None:
        """`ro` or `rw`: the tmpfs remounted so, inside the process's namespace."""
        subprocess.run(
            ["nsenter", "-t", str(self.pid), "-m", "mount", "-o", f"remount,{mode}",
             str(self.mountpoint)],
            check=True,
            capture_output=True,
            timeout=10,
        )  # fmt: skip


_DUMP = """
import os, sys
d = sys.argv[1]
for n in sorted(os.listdir(d)):
    b = b"" if n == "filler" else open(os.path.join(d, n), "rb").read()
    sys.stderr.write("@@FILE " + n + " " + b.hex() + "\\n")
"""


def run_in_tmpfs(
    mountpoint: Path,
    argv: Sequence[str],
    *,
    seed: Mapping[str, bytes] | None = None,
    prefill: bool = False,
    read_only: bool = False,
    env: Mapping[str, str] | None = None,
    timeout: float = 60,
) -> tuple[subprocess.CompletedProcess[str], dict[str, bytes]]:
    """Run `argv` to its end with `mountpoint` a small tmpfs, and return what the tmpfs
    held afterwards, read before the mount goes away: every name, with its bytes (the
    filler's left out as b""). The listing goes to standard error and is taken out of
    the result's."""
    require_root()
    mountpoint = Path(mountpoint).resolve()
    script = '"$@"; rc=$?; "$PYTHON_FOR_DUMP" -c "$DUMP" "$MOUNTPOINT"; exit $rc'
    environ = _environ(env, prefill, SIZE)
    environ |= {"PYTHON_FOR_DUMP": sys.executable, "DUMP": _DUMP, "MOUNTPOINT": str(mountpoint)}
    result = subprocess.run(
        _command(mountpoint, ["sh", "-c", script, "sh", *argv], seed, read_only=read_only),
        capture_output=True,
        text=True,
        timeout=timeout,
        env=environ,
    )
    files: dict[str, bytes] = {}
    kept = []
    for line in result.stderr.splitlines(keepends=True):
        if line.startswith("@@FILE "):
            _, name, data = line.rstrip("\n").split(" ", 2)
            files[name] = bytes.fromhex(data)
        else:
            kept.append(line)
    result.stderr = "".join(kept)
    return result, files
