"""nvlib.heartbeat: the liveness heartbeat the daemons touch and the probe reads.

Matrix: the interval text (each form, each refusal); the age limit an interval implies;
the verdict for a missing, fresh, stale, limitless and future file; the writer's start
(the interval written, the file stamped; a missing directory, a directory or a symlink
at the path refused naming it), its beat (a stale file made fresh, a removed one
re-created, a failure logged once and not raised); the reader over real files; and the
probe as a command: exit status, one line, --max-age, and what it imports.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from nvlib import heartbeat
from nvlib.heartbeat import Heartbeat, HeartbeatError, check, decode_interval, max_age, verdict

REPO = Path(heartbeat.__file__).resolve().parents[1]


def stale(path: Path, age: float = 3600.0) -> None:
    then = time.time() - age
    os.utime(path, (then, then))


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("60\n", 60.0), ("0.1", 0.1), (" 30 \n", 30.0), ("0", 0.0), ("infinite\n", None),
     ("1e+06", 1e6)],
)  # fmt: skip
def test_decode_interval(text: str, seconds: float | None) -> None:
    assert decode_interval(text) == seconds


@pytest.mark.parametrize("text", ["", "60s", "-1", "nan", "inf", "forever"])
def test_decode_interval_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        decode_interval(text)


@pytest.mark.parametrize("seconds", [0.0, 0.1, 30.0, 60.0, 1e6, None])
def test_interval_round_trip(seconds: float | None) -> None:
    assert decode_interval(heartbeat.encode_interval(seconds).decode()) == seconds


@pytest.mark.parametrize(
    ("interval", "limit"),
    [(60.0, 210.0), (30.0, 120.0), (0.0, 30.0), (None, None)],
)
def test_max_age_is_three_intervals_and_slack(interval: float | None, limit: float | None) -> None:
    assert max_age(interval) == limit


@pytest.mark.parametrize(
    ("age", "limit", "fresh", "line"),
    [
        (None, 120.0, False, "heartbeat /hb: missing"),
        (None, None, False, "heartbeat /hb: missing"),
        (12.4, 120.0, True, "heartbeat /hb: 12s old (limit 120s)"),
        (0.25, 120.0, True, "heartbeat /hb: 0.2s old (limit 120s)"),
        (120.0, 120.0, True, "heartbeat /hb: 120s old (limit 120s)"),
        (121.0, 120.0, False, "heartbeat /hb: stale, 121s old (limit 120s)"),
        (5000.0, None, True, "heartbeat /hb: 5000s old (no periodic pass: no limit)"),
        (-3.0, 120.0, True, "heartbeat /hb: 0.0s old (limit 120s)"),  # clock stepped back
    ],
)  # fmt: skip
def test_verdict(age: float | None, limit: float | None, fresh: bool, line: str) -> None:
    assert verdict("/hb", age, limit) == (fresh, line)


def test_start_writes_the_interval_and_stamps_the_file(tmp_path: Path) -> None:
    path = tmp_path / "hb"
    Heartbeat(str(path), 60.0).start()
    assert path.read_text() == "60\n"
    assert time.time() - path.stat().st_mtime < 60
    stale(path)
    Heartbeat(str(path), 60.0).start()  # the same content: stamped all the same
    assert check(str(path))[0]
    Heartbeat(str(path), None).start()
    assert path.read_text() == "infinite\n"


def _symlink(path: Path) -> None:
    path.parent.mkdir()
    path.symlink_to("/etc/hostname")


@pytest.mark.parametrize(
    ("name", "make", "reason"),
    [
        pytest.param("run/hb", lambda p: None, "its directory {parent} does not exist",
                     id="no-directory"),
        pytest.param("file/hb", lambda p: p.parent.write_text(""),
                     "its directory {parent} is not a directory", id="file-as-directory"),
        pytest.param("run/hb", lambda p: p.mkdir(parents=True),
                     "refusing to write over a directory", id="directory"),
        pytest.param("run/hb", _symlink, "refusing to write over a symbolic link", id="symlink"),
    ],
)  # fmt: skip
def test_start_refuses_a_bad_path_naming_it(
    tmp_path: Path, name: str, make: Callable[[Path], object], reason: str
) -> None:
    path = tmp_path / name
    make(path)
    with pytest.raises(HeartbeatError) as caught:
        Heartbeat(str(path), 30.0).start()
    assert str(caught.value) == f"heartbeat file {path}: " + reason.format(parent=path.parent)


def test_beat_freshens_and_recreates(tmp_path: Path) -> None:
    path = tmp_path / "hb"
    beat = Heartbeat(str(path), 0.5)
    beat.start()
    stale(path)
    assert not check(str(path))[0]
    assert beat.beat()
    assert check(str(path))[0]
    path.unlink()
    assert beat.beat()
    assert path.read_text() == "0.5\n"


def test_failed_beat_is_logged_once_and_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    directory = tmp_path / "run"
    directory.mkdir()
    beat = Heartbeat(str(directory / "hb"), 30.0)
    beat.start()
    (directory / "hb").unlink()
    directory.rmdir()
    assert beat.beat() is False
    assert beat.beat() is False
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        f"Cannot touch the heartbeat: heartbeat file {directory}/hb:"
        f" its directory {directory} does not exist"
    ]
    directory.mkdir()
    assert beat.beat() is True  # back: a later failure would be logged again


def test_check_reads_real_files(tmp_path: Path) -> None:
    path = tmp_path / "hb"
    assert check(str(path)) == (False, f"heartbeat {path}: missing")
    Heartbeat(str(path), 30.0).start()
    assert check(str(path))[0]
    stale(path, 121)
    fresh, line = check(str(path))
    assert not fresh and line.startswith(f"heartbeat {path}: stale, 121s old (limit 120s)")
    assert check(str(path), limit=200.0)[0]  # an explicit limit wins
    path.write_text("garbage\n")
    stale(path, 5)
    fresh, line = check(str(path))
    assert not fresh and "no interval in it" in line and "--max-age" in line
    assert check(str(path), limit=10.0)[0]  # any file, given a limit


def probe(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nvlib.heartbeat", *args],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=REPO,
        env={"PYTHONPATH": str(REPO), "PYTHONDONTWRITEBYTECODE": "1"},
    )


def test_probe_command(tmp_path: Path) -> None:
    path = tmp_path / "hb"
    missing = probe("check", str(path))
    assert (missing.returncode, missing.stdout) == (1, f"heartbeat {path}: missing\n")
    Heartbeat(str(path), 30.0).start()
    fresh = probe("check", str(path))
    assert fresh.returncode == 0, fresh.stdout + fresh.stderr
    assert len(fresh.stdout.splitlines()) == 1
    stale(path, 130)
    old = probe("check", str(path))
    assert old.returncode == 1
    assert old.stdout.startswith(f"heartbeat {path}: stale, 130s old (limit 120s)")
    assert probe("check", str(path), "--max-age", "5m").returncode == 0
    assert probe("check", str(path), "--max-age=1m30s").returncode == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("check", "/hb", "--max-age", "90"), 'time: missing unit in duration "90"'),
        (("check", "/hb", "--max-age", "0s"), "--max-age 0s: must be positive"),
        (("check",), "the following arguments are required: PATH"),
        (("touch", "/hb"), "invalid choice: 'touch'"),
    ],
)
def test_probe_usage_errors_exit_2(args: tuple[str, ...], message: str) -> None:
    result = probe(*args)
    assert result.returncode == 2
    assert message in result.stderr


def test_probe_imports_nothing_heavy(tmp_path: Path) -> None:
    """It runs on every node every period: no config package, no logging, no tempfile."""
    path = tmp_path / "hb"
    Heartbeat(str(path), 30.0).start()
    code = (
        "import sys, runpy\n"
        f"sys.argv = ['x', 'check', {str(path)!r}]\n"
        "try:\n    runpy.run_module('nvlib.heartbeat', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "print(sorted(m for m in ('nvlib.config', 'logging', 'tempfile', 'yaml')"
        " if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO,
        env={"PYTHONPATH": str(REPO), "PYTHONDONTWRITEBYTECODE": "1"},
    )  # fmt: skip
    assert result.stdout.splitlines()[-1] == "[]"
