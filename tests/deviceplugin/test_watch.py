"""Kubelet restart detection and spec-directory fingerprints (docs/deviceplugin.md#flags).

Matrix: a socket that appears, one replaced (even when the new file reuses the inode),
one only touched or removed (no restart), and the directory fingerprint.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from deviceplugin.watch import CreationWatch, directory_signature


def make_socket(path: Path) -> None:
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(path))


def test_created_replaced_touched_removed(tmp_path: Path) -> None:
    path = tmp_path / "kubelet.sock"
    watch = CreationWatch(path)
    assert not watch.created()
    make_socket(path)
    assert watch.created()
    assert not watch.created()  # reported once
    os.chmod(path, 0o600)  # a new ctime, the same file
    assert not watch.created()
    path.unlink()
    assert not watch.created()
    make_socket(path)
    assert watch.created()
    path.unlink()
    make_socket(path)  # removed and re-created between two looks: often the same inode
    assert watch.created()
    watch.close()


def test_directory_signature(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("x")
    (tmp_path / "b.yml").write_text("ignored")
    first = directory_signature([tmp_path, tmp_path / "missing"], (".json", ".yaml"))
    assert [e[1] for e in first] == ["a.yaml"]
    (tmp_path / "c.json").write_text("{}")
    assert directory_signature([tmp_path], (".json", ".yaml")) != first
