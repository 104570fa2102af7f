"""Find the daemon to signal in the pod's shared process namespace, and signal it.

Upstream signals the first process (by PID) whose `argv[0]` is `--process-to-signal`.
Its commands are Go binaries; ours are Python console scripts, which the kernel starts
as `<venv>/bin/python <venv>/bin/nvidia-device-plugin ...` (the script's `#!` line),
so `argv[0]` is the interpreter. A process therefore answers to its `argv[0]` and, when
that is a Python interpreter, to the script it runs; a name without a slash matches
either's base name, a path only the same path. The PID scan skips this process.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence

__all__ = ["ProcessNotFound", "command_matches", "find_process", "read_argv", "send_signal"]

_PYTHON = re.compile(r"python[0-9.]*")


class ProcessNotFound(Exception):
    pass


def command_matches(name: str, argv: Sequence[str]) -> bool:
    """Whether a process with this command line answers to `name` (see the module)."""
    if not name or not argv:
        return False
    candidates = [argv[0]]
    if _PYTHON.fullmatch(os.path.basename(argv[0])) and len(argv) > 1:
        script = argv[1]
        if script and not script.startswith("-"):
            candidates.append(script)
    for candidate in candidates:
        if candidate == name:
            return True
        if "/" not in name and os.path.basename(candidate) == name:
            return True
    return False


def read_argv(pid: int, proc: str = "/proc") -> list[str] | None:
    """A process's argv from /proc, or None when it is gone or unreadable (a kernel
    thread, or a zombie, has an empty command line)."""
    try:
        with open(os.path.join(proc, str(pid), "cmdline"), "rb") as f:
            raw = f.read()
    except OSError:
        return None
    if not raw:
        return None
    return [part.decode("utf-8", "surrogateescape") for part in raw.rstrip(b"\0").split(b"\0")]


def _pids(proc: str) -> Iterator[int]:
    try:
        names = os.listdir(proc)
    except OSError:
        return
    yield from sorted(int(name) for name in names if name.isdigit())


def find_process(name: str, proc: str = "/proc", own_pid: int | None = None) -> int:
    """The lowest PID whose command line answers to `name`; ProcessNotFound if none."""
    me = os.getpid() if own_pid is None else own_pid
    for pid in _pids(proc):
        if pid == me:
            continue
        argv = read_argv(pid, proc)
        if argv is not None and command_matches(name, argv):
            return pid
    raise ProcessNotFound("no process found")


def send_signal(name: str, signum: int, proc: str = "/proc") -> int:
    """Signal the process called `name`; its PID. ProcessNotFound or OSError on failure."""
    pid = find_process(name, proc)
    os.kill(pid, signum)
    return pid
