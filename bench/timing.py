"""The timing loops the benchmarks share (run as `python bench/<name>.py`, so this
directory is on sys.path)."""

from __future__ import annotations

import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping

REPEAT = int(os.environ.get("BENCH_REPEAT", "15"))


def child_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """`env` (default: this process's) without PYTHONDONTWRITEBYTECODE.

    A child must read compiled bytecode, as an installed image does: pip compiles an
    installed project's modules, and the first run of a module outside it (a warm-up)
    writes its cache. A shell or test session that sets the variable would otherwise
    have the uncached modules compiled again by every run.
    """
    child = dict(os.environ if env is None else env)
    child.pop("PYTHONDONTWRITEBYTECODE", None)
    return child


def median_seconds(fn: Callable[[], object], rounds: int) -> float:
    """Median wall time of `fn` over `rounds` calls, after one warm-up call."""
    fn()
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def run_child(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, int]:
    """Wall seconds and max RSS (KiB) of one child process; exits if it fails."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=child_env(env),
        cwd=tempfile.gettempdir(),
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"benchmark command failed: {argv}")
    return wall, usage.ru_maxrss


def median_runs(
    *argvs: list[str], repeat: int = REPEAT, env: dict[str, str] | None = None
) -> list[tuple[float, int]]:
    """Median wall seconds and max RSS of each command (all run with `env`), their runs
    interleaved so that a slow spell of a shared machine weighs on a figure and its floor
    alike."""
    for argv in argvs:
        run_child(argv, env)  # warm the page cache and .pyc files
    runs: list[list[tuple[float, int]]] = [[] for _ in argvs]
    for _ in range(repeat):
        for argv, samples in zip(argvs, runs, strict=True):
            samples.append(run_child(argv, env))
    return [
        (statistics.median(w for w, _ in samples), max(r for _, r in samples)) for samples in runs
    ]
