"""nvlib.fsutil: the one atomic writer and the regular-file remover.

Matrix: target kind (absent, regular, same content, same content other mode,
FIFO, character device, symlink, dangling symlink, directory, missing parent)
x outcome (written / not rewritten / refused naming the path); mode under
several umasks; a failed rename; remove_regular_file per kind; and a writer
killed at random moments, after which the target is always one whole version.
"""

from __future__ import annotations

import errno
import os
import random
import select
import signal
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from tightfs import run_in_tmpfs

import nvlib.fsutil
from nvlib.fsutil import UnsafeTargetError, remove_regular_file, write_atomic

REPO_ROOT = Path(nvlib.fsutil.__file__).resolve().parents[1]


def mode_of(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def others_in(directory: Path, *names: str) -> list[str]:
    return sorted(set(os.listdir(directory)) - set(names))


@pytest.fixture
def umask() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_absent_target_is_created(tmp_path: Path) -> None:
    target = tmp_path / "gfd"
    assert write_atomic(target, b"a=1\n") is True
    assert target.read_bytes() == b"a=1\n"
    assert mode_of(target) == 0o644
    assert others_in(tmp_path, "gfd") == []


def test_regular_target_is_replaced(tmp_path: Path) -> None:
    target = tmp_path / "gfd"
    target.write_bytes(b"old, longer content\n")
    inode = os.stat(target).st_ino
    assert write_atomic(target, b"new\n") is True
    assert target.read_bytes() == b"new\n"
    assert os.stat(target).st_ino != inode  # renamed into place, not rewritten
    assert others_in(tmp_path, "gfd") == []


def test_same_content_is_not_rewritten(tmp_path: Path) -> None:
    target = tmp_path / "gfd"
    write_atomic(target, b"a=1\n")
    os.utime(target, ns=(1_000_000_000, 1_000_000_000))
    before = os.stat(target)
    assert write_atomic(target, b"a=1\n") is False
    after = os.stat(target)
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_same_content_with_another_mode_is_rewritten(tmp_path: Path) -> None:
    target = tmp_path / "gfd"
    target.write_bytes(b"a=1\n")
    target.chmod(0o600)
    assert write_atomic(target, b"a=1\n") is True
    assert mode_of(target) == 0o644


@pytest.mark.parametrize("mask", [0o000, 0o022, 0o077, 0o277], ids=oct)
@pytest.mark.parametrize("mode", [0o644, 0o600, 0o444], ids=oct)
def test_mode_ignores_umask(tmp_path: Path, umask: None, mask: int, mode: int) -> None:
    os.umask(mask)
    target = tmp_path / "out"
    write_atomic(target, b"x", mode=mode)
    assert mode_of(target) == mode


def test_fifo_is_written_in_place(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    received: list[bytes] = []

    def read() -> None:
        with open(fifo, "rb") as f:  # opening blocks until the writer opens too
            received.append(f.read())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert write_atomic(fifo, b"a=1\nb=2\n") is True
    reader.join(10)
    assert received == [b"a=1\nb=2\n"]
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert others_in(tmp_path, "fifo") == []


def test_character_device_is_written_in_place_and_never_removed() -> None:
    # /dev/null is the case upstream broke: renaming over it replaced the node.
    before = os.lstat("/dev/null")
    assert write_atomic("/dev/null", b"a=1\n") is True
    assert remove_regular_file("/dev/null") is False
    after = os.lstat("/dev/null")
    assert stat.S_ISCHR(after.st_mode)
    assert (after.st_ino, after.st_rdev, after.st_mode) == (
        before.st_ino,
        before.st_rdev,
        before.st_mode,
    )


@pytest.mark.parametrize("dangling", [False, True], ids=["symlink", "dangling-symlink"])
def test_symlink_is_refused_naming_the_path(tmp_path: Path, dangling: bool) -> None:
    real = tmp_path / "real"
    if not dangling:
        real.write_bytes(b"keep\n")
    link = tmp_path / "gfd"
    link.symlink_to(real)
    with pytest.raises(UnsafeTargetError, match="symbolic link") as caught:
        write_atomic(link, b"a=1\n")
    assert caught.value.filename == str(link)
    assert str(link) in str(caught.value)
    assert link.is_symlink()
    assert real.exists() is not dangling
    if not dangling:
        assert real.read_bytes() == b"keep\n"
    assert others_in(tmp_path, "gfd", "real") == []


def test_directory_is_refused_naming_the_path(tmp_path: Path) -> None:
    target = tmp_path / "gfd"
    target.mkdir()
    with pytest.raises(UnsafeTargetError, match="directory") as caught:
        write_atomic(target, b"a=1\n")
    assert str(target) in str(caught.value)
    assert target.is_dir() and list(target.iterdir()) == []


def test_missing_parent_is_an_error_naming_it(tmp_path: Path) -> None:
    parent = tmp_path / "features.d"
    with pytest.raises(FileNotFoundError) as caught:
        write_atomic(parent / "gfd", b"a=1\n")
    assert caught.value.filename == str(parent)
    assert str(parent) in str(caught.value)


def test_failed_rename_leaves_target_and_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "gfd"
    target.write_bytes(b"good\n")

    def fail(src: str, dst: str) -> None:
        raise OSError(5, "Input/output error", src)

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="Input/output error"):
        write_atomic(target, b"new\n")
    assert target.read_bytes() == b"good\n"
    assert others_in(tmp_path, "gfd") == []


# --- a full or read-only directory: a real small tmpfs (tests/support/tightfs.py) ---------

WRITE_IN_TMPFS = """
import sys
from nvlib.fsutil import write_atomic
try:
    write_atomic(sys.argv[1], b"nvidia.com/gpu.count=8\\n" * 64)
except OSError as err:
    print(err.errno, err.filename)
    print(err, file=sys.stderr)
    sys.exit(3)
"""


@pytest.mark.parametrize(
    ("surroundings", "code"),
    [
        pytest.param("full", errno.ENOSPC, id="full-tmpfs"),
        pytest.param("read-only", errno.EROFS, id="read-only-tmpfs"),
    ],
)
def test_full_or_read_only_directory_keeps_the_target_and_leaves_no_temp_file(
    tmp_path: Path, surroundings: str, code: int
) -> None:
    """The error names the target (not the temp file) and the errno; the previous
    file keeps its bytes and no temp file is left beside it."""
    mount = tmp_path / "features.d"
    target = mount / "gfd"
    old = b"nvidia.com/gpu.count=4\n"
    result, files = run_in_tmpfs(
        mount,
        [sys.executable, "-c", WRITE_IN_TMPFS, str(target)],
        seed={"gfd": old},
        prefill=surroundings == "full",
        read_only=surroundings == "read-only",
    )
    assert result.returncode == 3, result.stderr
    assert result.stdout.split() == [str(code), str(target)]
    assert f"{os.strerror(code)}: '{target}'" in result.stderr
    expected = {"gfd": old} | ({"filler": b""} if surroundings == "full" else {})
    assert files == expected


def make_fifo(path: Path) -> None:
    os.mkfifo(path)


def make_dir(path: Path) -> None:
    path.mkdir()


def make_symlink(path: Path) -> None:
    (path.parent / "real").write_bytes(b"x")
    path.symlink_to(path.parent / "real")


def make_file(path: Path) -> None:
    path.write_bytes(b"x")


@pytest.mark.parametrize(
    ("make", "removed"),
    [
        pytest.param(make_file, True, id="regular"),
        pytest.param(None, False, id="absent"),
        pytest.param(make_fifo, False, id="fifo"),
        pytest.param(make_dir, False, id="directory"),
        pytest.param(make_symlink, False, id="symlink"),
    ],
)
def test_remove_regular_file(tmp_path: Path, make: object, removed: bool) -> None:
    target = tmp_path / "gfd"
    if callable(make):
        make(target)
    existed = os.path.lexists(target)
    assert remove_regular_file(target) is removed
    assert os.path.lexists(target) is (existed and not removed)
    if make is make_symlink:
        assert (tmp_path / "real").exists()


# --- a writer killed mid-write -------------------------------------------

VERSION_A = b"a" * (2 << 20)
VERSION_B = b"b" * (3 << 20) + b"\n"

WRITER = """
import sys
from nvlib.fsutil import write_atomic
target, a, b = sys.argv[1], b"a" * (2 << 20), b"b" * (3 << 20) + b"\\n"
write_atomic(target, a)
print("ready", flush=True)
while True:
    write_atomic(target, b)
    write_atomic(target, a)
"""


def test_killed_writer_leaves_a_whole_version(tmp_path: Path) -> None:
    """SIGKILL at random moments; the target is always A or B, never a mix or a prefix."""
    target = tmp_path / "gfd"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    rng = random.Random(1234)  # reproducible kill times
    for kill in range(30):
        child = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(target)], stdout=subprocess.PIPE, env=env
        )
        try:
            assert child.stdout is not None
            ready, _, _ = select.select([child.stdout], [], [], 20)
            assert ready and child.stdout.readline() == b"ready\n", "writer did not start"
            threading.Event().wait(rng.uniform(0, 0.05))
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait(10)
            if child.stdout is not None:
                child.stdout.close()
        content = target.read_bytes()
        assert content in (VERSION_A, VERSION_B), (
            f"kill {kill}: partial file ({len(content)} bytes)"
        )
        assert mode_of(target) == 0o644
        leftovers = others_in(tmp_path, "gfd")
        assert all(name.startswith(".gfd") for name in leftovers), leftovers
