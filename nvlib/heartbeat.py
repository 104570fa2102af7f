"""Liveness heartbeats: a daemon's loop proves it still runs by touching a file.

GFD's labelling loop, `nvidia-cdi generate --watch` and the device plugin each take a
heartbeat file (`--heartbeat-file PATH`). At start the writer puts its pass interval in
the file (seconds, or `infinite`); after every pass that ran to its end it sets the
file's mtime to now: one utime(), nothing written, nothing another process watches. A
loop that hangs stops touching it.

`python3 -m nvlib.heartbeat check PATH` is the kubelet's exec liveness probe: exit 0
while the file is younger than `MISSED_PASSES` intervals plus `SLACK_SECONDS`, else 1
with one line saying how old the file is, or that it is missing. The interval is the
one the writer put in the file, so an interval from a config file or a SIGHUP reload is
the one checked against, and with `infinite` (no periodic pass) the file need only
exist. `--max-age DURATION` (a Go duration) checks against a fixed age instead. The
probe runs on every node every period, so this module imports almost nothing.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported by parse_args only: the probe stays light
    import argparse

__all__ = ["Heartbeat", "HeartbeatError", "check", "max_age", "parse_args", "verdict"]

# Stale after this many intervals without a touch, plus slack for a slow pass (a pass
# runs between two waits, so the gap between touches is an interval plus a pass).
MISSED_PASSES = 3
SLACK_SECONDS = 30.0
INFINITE = "infinite"


class HeartbeatError(Exception):
    """The heartbeat file cannot be written; the message names the path."""


def encode_interval(seconds: float | None) -> bytes:
    return f"{INFINITE if seconds is None else format(seconds, 'g')}\n".encode()


def decode_interval(text: str) -> float | None:
    """The writer's interval in seconds, None for `infinite`; ValueError if neither."""
    word = text.strip()
    if word == INFINITE:
        return None
    seconds = float(word)
    if not seconds >= 0 or seconds == float("inf"):  # also refuses nan
        raise ValueError(f"not an interval: {word!r}")
    return seconds


def max_age(interval: float | None) -> float | None:
    """The oldest a heartbeat may be for a writer with this interval; None: no limit."""
    if interval is None:
        return None
    return MISSED_PASSES * interval + SLACK_SECONDS


def _seconds(value: float) -> str:
    return f"{value:.0f}s" if value >= 10 else f"{value:.1f}s"


def verdict(path: str, age: float | None, limit: float | None) -> tuple[bool, str]:
    """Whether a heartbeat `age` seconds old (None: missing) is fresh, and one line why."""
    if age is None:
        return False, f"heartbeat {path}: missing"
    age = max(age, 0.0)  # a clock stepped back: the file is as fresh as can be
    if limit is None:
        return True, f"heartbeat {path}: {_seconds(age)} old (no periodic pass: no limit)"
    if age > limit:
        return False, f"heartbeat {path}: stale, {_seconds(age)} old (limit {_seconds(limit)})"
    return True, f"heartbeat {path}: {_seconds(age)} old (limit {_seconds(limit)})"


def check(path: str, limit: float | None = None, now: float | None = None) -> tuple[bool, str]:
    """Read the heartbeat at `path`: fresh or not, and one line saying why.

    `limit` (seconds) replaces the limit the file's interval implies.
    """
    try:
        mtime = os.stat(path).st_mtime
    except FileNotFoundError:
        return verdict(path, None, limit)
    except OSError as err:
        return False, f"heartbeat {path}: {err.strerror or err}"
    if limit is None:
        try:
            with open(path, encoding="utf-8") as f:
                limit = max_age(decode_interval(f.read(64)))
        except (OSError, ValueError) as err:
            return False, f"heartbeat {path}: no interval in it ({err}); give --max-age"
    return verdict(path, (time.time() if now is None else now) - mtime, limit)


class Heartbeat:
    """The writer's side: `start()` once (raises), then `beat()` after every pass."""

    def __init__(self, path: str, interval: float | None) -> None:
        self.path = path
        self.interval = interval
        self._failing = False  # warn once per run of failed touches, not every pass

    def start(self) -> None:
        """Write the interval (which also stamps the file now); HeartbeatError if it fails."""
        from pathlib import Path

        from nvlib.fsutil import write_atomic  # the writer is a daemon: tempfile is loaded

        parent = Path(self.path).parent
        if not parent.is_dir():
            problem = "is not a directory" if parent.exists() else "does not exist"
            raise HeartbeatError(f"heartbeat file {self.path}: its directory {parent} {problem}")
        try:
            write_atomic(self.path, encode_interval(self.interval))
            os.utime(self.path)  # an unchanged file is not rewritten: stamp it anyway
        except OSError as err:
            raise HeartbeatError(f"heartbeat file {self.path}: {err.strerror or err}") from err

    def beat(self) -> bool:
        """Stamp the file now (re-create it if it was removed); False, logged, on failure.

        A failed touch never stops the daemon: the probe then sees a stale file and the
        kubelet restarts the container, which is what an unprovable liveness deserves.
        """
        try:
            try:
                os.utime(self.path)
            except FileNotFoundError:
                self.start()
        except (OSError, HeartbeatError) as err:
            if not self._failing:
                import logging

                logging.getLogger(__name__).warning("Cannot touch the heartbeat: %s", err)
            self._failing = True
            return False
        self._failing = False
        return True


def _parse_limit(text: str) -> float:
    from nvlib.config.durations import parse_go_duration  # only with --max-age: not light

    nanoseconds = parse_go_duration(text)
    if nanoseconds <= 0:
        raise ValueError("must be positive")
    return nanoseconds / 1e9


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """The probe's command line (`check PATH [--max-age DURATION]`); exits 2 if bad."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python3 -m nvlib.heartbeat",
        description="Check a daemon's liveness heartbeat file (an exec liveness probe).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    checker = sub.add_parser(
        "check",
        help="exit 0 if the heartbeat is fresh, else 1",
        description="Exit 0 while PATH is younger than 3 of its writer's intervals plus"
        " 30s (or --max-age), else 1; one line either way.",
    )
    checker.add_argument("path", metavar="PATH", help="the heartbeat file")
    checker.add_argument(
        "--max-age", metavar="DURATION", help="a fixed limit, a Go duration (e.g. 2m)"
    )
    args = parser.parse_args(argv)
    try:
        args.limit = None if args.max_age is None else _parse_limit(args.max_age)
    except ValueError as err:
        parser.error(f"--max-age {args.max_age}: {err}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    fresh, line = check(args.path, args.limit)
    print(line)
    return 0 if fresh else 1


if __name__ == "__main__":
    sys.exit(main())
