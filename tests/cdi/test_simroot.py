"""Laying a simulated driver root out on the host (`cdi.simroot`, `--simulator-root`).

Matrix: the pure parts as tables (what DIR holds per profile; whether what is found is
the wanted entry, for each kind and each way of being wrong); then `lay_out` on a real
directory: every node a character device with the profile's numbers (os.stat), a second
run changing nothing (inode and mtime kept), each kind of wrong entry replaced and
nothing else touched, an earlier profile's entries and crash leftovers removed, DIRs
that are not ours refused, mknod refused (EPERM) and a path that cannot be written,
each error naming the path; generators sharing DIR at once.

Needs root (mknod); CI runs as root.
"""

from __future__ import annotations

import errno
import os
import stat
import threading
from pathlib import Path

import pytest

from cdi.simroot import (
    MARKER,
    Entry,
    Found,
    SimulatorRootError,
    is_current,
    lay_out,
    layout,
)
from nvlib.sim import load_profile

DGX = load_profile("dgx-a100")
LIB = "usr/lib/x86_64-linux-gnu"


@pytest.fixture
def as_root() -> None:
    if os.geteuid() != 0:
        pytest.fail("needs root: mknod makes character devices (CI runs as root)", pytrace=False)


def by_path(profile: str) -> dict[str, Entry]:
    return {e.path: e for e in layout(load_profile(profile))}


# --- what DIR holds (pure) ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("profile", "path", "expected"),
    [
        pytest.param("dgx-a100", "dev/nvidia0", Entry("dev/nvidia0", "char", 0o666, major=195),
                     id="gpu-node"),
        pytest.param("dgx-a100", "dev/nvidia7",
                     Entry("dev/nvidia7", "char", 0o666, major=195, minor=7), id="last-gpu"),
        pytest.param("dgx-a100", "dev/nvidiactl",
                     Entry("dev/nvidiactl", "char", 0o666, major=195, minor=255), id="ctl"),
        pytest.param("dgx-a100-mig", "dev/nvidia-caps/nvidia-cap1",
                     Entry("dev/nvidia-caps/nvidia-cap1", "char", 0o400, major=DGX.device_majors
                           .nvidia_caps, minor=1), id="mig-config-root-only"),
        pytest.param("dgx-a100", f"{LIB}/libcuda.so.1",
                     Entry(f"{LIB}/libcuda.so.1", "link", target="libcuda.so.550.54.15"),
                     id="soname-link"),
        pytest.param("dgx-a100", "usr/bin/nvidia-smi",
                     Entry("usr/bin/nvidia-smi", "file", 0o755,
                           data=b"#!/bin/sh\n# nvidia-smi placeholder\n"), id="binary"),
    ],
)  # fmt: skip
def test_layout_entries(profile: str, path: str, expected: Entry) -> None:
    assert by_path(profile)[path] == expected


@pytest.mark.parametrize(
    ("profile", "gpus", "imex"),
    [
        pytest.param("dgx-a100", 8, False, id="dgx-a100"),
        pytest.param("t4", 1, False, id="t4"),
        pytest.param("gb200", 4, True, id="gb200"),
    ],
)
def test_layout_nodes_follow_the_profile(profile: str, gpus: int, imex: bool) -> None:
    entries = by_path(profile)
    gpu_nodes = [p for p in entries if p.startswith("dev/nvidia") and p[10:].isdigit()]
    assert len(gpu_nodes) == gpus
    assert ("dev/nvidia-caps-imex-channels/channel0" in entries) is imex
    assert list(entries) == sorted(entries)


NODE = Entry("dev/nvidia3", "char", 0o666, major=195, minor=3)
FILE = Entry("usr/bin/nvidia-smi", "file", 0o755, data=b"#!/bin/sh\n")
LINK = Entry(f"{LIB}/libcuda.so.1", "link", target="libcuda.so.550.54.15")


@pytest.mark.parametrize(
    ("entry", "found", "current"),
    [
        pytest.param(NODE, Found("char", 0o666, major=195, minor=3), True, id="node-as-wanted"),
        pytest.param(NODE, Found("missing"), False, id="node-missing"),
        pytest.param(NODE, Found("char", 0o666, major=195, minor=4), False, id="node-minor"),
        pytest.param(NODE, Found("char", 0o666, major=1, minor=3), False, id="node-major"),
        pytest.param(NODE, Found("char", 0o600, major=195, minor=3), False, id="node-mode"),
        pytest.param(NODE, Found("file", 0o666, data=b""), False, id="placeholder-for-node"),
        pytest.param(NODE, Found("dir", 0o755), False, id="dir-for-node"),
        pytest.param(NODE, Found("other", 0o666), False, id="block-or-fifo-for-node"),
        pytest.param(FILE, Found("file", 0o755, data=b"#!/bin/sh\n"), True, id="file-as-wanted"),
        pytest.param(FILE, Found("file", 0o755, data=b"#!/bin/sh\nx"), False, id="file-data"),
        pytest.param(FILE, Found("file", 0o755), False, id="file-size-differs"),
        pytest.param(FILE, Found("file", 0o644, data=b"#!/bin/sh\n"), False, id="file-mode"),
        pytest.param(FILE, Found("link", target="nvidia-smi"), False, id="link-for-file"),
        pytest.param(LINK, Found("link", target="libcuda.so.550.54.15"), True, id="link-ok"),
        pytest.param(LINK, Found("link", target="libcuda.so.535.0"), False, id="link-target"),
        pytest.param(LINK, Found("file", 0o644, data=b""), False, id="file-for-link"),
    ],
)  # fmt: skip
def test_is_current(entry: Entry, found: Found, current: bool) -> None:
    assert is_current(entry, found) is current


# --- lay_out on a real directory ----------------------------------------------------------


def snapshot(root: Path) -> dict[str, tuple[int, int, int]]:
    """relative path -> (inode, mtime, mode) of everything under root."""
    found = {}
    for directory, dirs, files in os.walk(root):
        for name in (*dirs, *files):
            st = os.lstat(os.path.join(directory, name))
            relative = os.path.relpath(os.path.join(directory, name), root)
            found[relative] = (st.st_ino, st.st_mtime_ns, st.st_mode)
    return found


@pytest.fixture
def laid_out(tmp_path: Path, as_root: None) -> Path:
    root = tmp_path / "sim"
    done = lay_out(str(root), DGX)
    assert done.created and not done.replaced and not done.removed
    return root


def test_every_node_is_a_character_device_with_the_profiles_numbers(laid_out: Path) -> None:
    nodes = [e for e in layout(DGX) if e.kind == "char"]
    assert len(nodes) == 8 + 4 + 2  # GPUs; ctl, modeset, uvm, uvm-tools; MIG config, monitor
    for entry in nodes:
        st = os.stat(laid_out / entry.path)
        assert stat.S_ISCHR(st.st_mode), entry.path
        assert (os.major(st.st_rdev), os.minor(st.st_rdev)) == (entry.major, entry.minor)
        assert stat.S_IMODE(st.st_mode) == entry.mode
    assert os.stat(laid_out / "dev/nvidia0").st_rdev == os.makedev(195, 0)
    assert os.readlink(laid_out / LIB / "libcuda.so") == "libcuda.so.1"
    assert (laid_out / LIB / "libcuda.so").resolve().read_bytes().startswith(b"nvlib.sim placeh")
    assert os.access(laid_out / "usr/bin/nvidia-smi", os.X_OK)
    assert (laid_out / MARKER).read_text().startswith("A simulated NVIDIA driver root")


def test_a_second_run_changes_nothing(laid_out: Path) -> None:
    before = snapshot(laid_out)
    done = lay_out(str(laid_out), DGX)
    assert not done.changed, done
    assert snapshot(laid_out) == before


def test_wrong_entries_are_replaced_and_nothing_else(laid_out: Path) -> None:
    (laid_out / "dev/nvidia3").unlink()
    os.mknod(laid_out / "dev/nvidia3", stat.S_IFCHR | 0o666, os.makedev(1, 3))  # /dev/null's
    (laid_out / "dev/nvidia5").unlink()
    (laid_out / "dev/nvidia5").write_bytes(b"")  # a placeholder, as the simulator leaves them
    (laid_out / "dev/nvidiactl").unlink()
    (laid_out / "dev/nvidiactl").mkdir()
    (laid_out / "dev/nvidiactl/stray").write_bytes(b"x")
    os.chmod(laid_out / "dev/nvidia-uvm", 0o600)
    (laid_out / "usr/bin/nvidia-smi").write_bytes(b"#!/bin/sh\nexit 1\n")
    (laid_out / LIB / "libcuda.so.1").unlink()
    (laid_out / LIB / "libcuda.so.1").symlink_to("/etc/passwd")
    (laid_out / "dev/nvidia6").unlink()
    before = snapshot(laid_out)

    done = lay_out(str(laid_out), DGX)

    wrong = {"dev/nvidia3", "dev/nvidia5", "dev/nvidiactl", "dev/nvidia-uvm",
             "usr/bin/nvidia-smi", f"{LIB}/libcuda.so.1"}  # fmt: skip
    assert (set(done.replaced), done.created, done.removed) == (wrong, ("dev/nvidia6",), ())
    after = snapshot(laid_out)
    untouched = {  # (a directory's mtime moves with the renames in it)
        p: v[:2]
        for p, v in before.items()
        if p not in wrong and "/nvidiactl/" not in p and not stat.S_ISDIR(v[2])
    }
    assert {p: after[p][:2] for p in untouched} == untouched
    assert os.stat(laid_out / "dev/nvidia3").st_rdev == os.makedev(195, 3)
    assert stat.S_ISCHR(os.lstat(laid_out / "dev/nvidia5").st_mode)
    assert stat.S_ISCHR(os.lstat(laid_out / "dev/nvidiactl").st_mode)
    assert os.stat(laid_out / "dev/nvidia6").st_rdev == os.makedev(195, 6)
    assert stat.S_IMODE(os.stat(laid_out / "dev/nvidia-uvm").st_mode) == 0o666
    assert (
        laid_out / "usr/bin/nvidia-smi"
    ).read_bytes() == b"#!/bin/sh\n# nvidia-smi placeholder\n"
    assert os.readlink(laid_out / LIB / "libcuda.so.1") == "libcuda.so.550.54.15"
    assert not lay_out(str(laid_out), DGX).changed


def test_a_parent_turned_symlink_is_not_followed(laid_out: Path, tmp_path: Path) -> None:
    """A link where a directory belongs would lead the writes out of DIR: it is replaced."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (laid_out / "usr/bin").rename(tmp_path / "bin-moved")
    (laid_out / "usr/bin").symlink_to(outside)
    done = lay_out(str(laid_out), DGX)
    assert done.replaced == ("usr/bin",)
    assert set(done.created) == {f"usr/bin/{name}" for name in os.listdir(laid_out / "usr/bin")}
    assert os.listdir(outside) == []
    assert stat.S_ISDIR(os.lstat(laid_out / "usr/bin").st_mode)


def test_an_earlier_profiles_entries_and_leftovers_are_removed(laid_out: Path) -> None:
    (laid_out / "dev/.nvidia0.simroot-tmp-999999").write_bytes(b"")  # a crashed run's
    (laid_out / "dev/by-hand").mkdir()
    done = lay_out(str(laid_out), load_profile("t4"))
    assert {f"dev/nvidia{i}" for i in range(1, 8)} <= set(done.removed)
    assert {"dev/.nvidia0.simroot-tmp-999999", "dev/by-hand"} <= set(done.removed)
    assert "dev/nvidia0" not in done.replaced + done.created  # the t4's GPU 0 is the same node
    assert sorted(os.listdir(laid_out / "dev")) == [
        "nvidia-modeset", "nvidia-uvm", "nvidia-uvm-tools", "nvidia0", "nvidiactl",
    ]  # fmt: skip


def test_an_empty_directory_is_taken(tmp_path: Path, as_root: None) -> None:
    (tmp_path / "sim").mkdir()
    assert lay_out(str(tmp_path / "sim"), DGX).created


@pytest.mark.parametrize(
    ("prepare", "message"),
    [
        pytest.param(lambda d: (d / "usr").mkdir(parents=True),
                     f"not empty and not laid out by --simulator-root (no {MARKER})",
                     id="not-ours"),
        pytest.param(lambda d: d.write_text("x"), "Not a directory", id="a-file"),
    ],
)  # fmt: skip
def test_a_root_that_is_not_ours_is_refused(
    tmp_path: Path, as_root: None, prepare: object, message: str
) -> None:
    root = tmp_path / "sim"
    prepare(root)  # type: ignore[operator]
    before = snapshot(tmp_path)
    with pytest.raises(SimulatorRootError) as err:
        lay_out(str(root), DGX)
    assert str(err.value).startswith(f"{root}: ") and message in str(err.value)
    assert snapshot(tmp_path) == before


def test_slash_is_refused() -> None:
    with pytest.raises(SimulatorRootError, match="cannot be /"):
        lay_out("/", DGX)


def test_mknod_not_permitted_names_the_node(
    tmp_path: Path, as_root: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refused(path: str, mode: int = 0o600, device: int = 0) -> None:
        raise PermissionError(errno.EPERM, os.strerror(errno.EPERM), path)

    monkeypatch.setattr(os, "mknod", refused)
    root = tmp_path / "sim"
    with pytest.raises(SimulatorRootError) as err:
        lay_out(str(root), DGX)
    assert str(err.value) == (
        f"cannot create character device {root}/dev/nvidia-caps/nvidia-cap1 (509:1): Operation not "
        "permitted: making device nodes needs CAP_MKNOD (root, or a privileged container)"
    )
    assert [p for p in snapshot(root) if "nvidia-cap1" in p] == []  # no temp file left behind


def test_a_path_that_cannot_be_written_is_named(tmp_path: Path, as_root: None) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(SimulatorRootError) as err:
        lay_out(str(blocker / "sim"), DGX)
    assert str(err.value) == f"{blocker}/sim: Not a directory"


def test_generators_sharing_a_root_take_turns(tmp_path: Path, as_root: None) -> None:
    """The chart's GPU and IMEX containers lay out one DIR: concurrent runs all succeed."""
    root = tmp_path / "sim"
    errors: list[BaseException] = []

    def run() -> None:
        try:
            lay_out(str(root), DGX)
        except BaseException as err:  # reported below
            errors.append(err)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert not lay_out(str(root), DGX).changed
