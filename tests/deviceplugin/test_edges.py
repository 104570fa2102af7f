"""Small edges of the plugin: IMEX channel discovery, NVML from the driver root, MPS check.

Matrix: an IMEX channel missing (skipped with a warning, fatal when required) or not a
character device; libnvidia-ml found under the container driver root through its
symlink, or not there (the bare name); the MPS daemon answering or not.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from deviceplugin.errors import PluginError
from deviceplugin.imex import present_channels
from deviceplugin.mps import check_daemon
from nvlib.driverroot import locate_nvml


def test_missing_imex_channel_is_skipped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    assert present_channels([0], str(tmp_path), required=False) == ()
    assert "Ignoring requested IMEX channel channel0" in caplog.text


def test_missing_required_imex_channel_is_fatal(tmp_path: Path) -> None:
    with pytest.raises(PluginError) as err:
        present_channels([0], str(tmp_path), required=True)
    assert str(err.value).startswith(
        "error querying IMEX channels: requested IMEX channel channel0 does not exist"
    )


def test_imex_channel_must_be_a_character_device(tmp_path: Path) -> None:
    node = tmp_path / "dev" / "nvidia-caps-imex-channels" / "channel0"
    node.parent.mkdir(parents=True)
    node.write_text("")
    with pytest.raises(PluginError, match="channel0 is not a character device"):
        present_channels([0], str(tmp_path), required=True)


def test_no_channels_configured(tmp_path: Path) -> None:
    assert present_channels([], str(tmp_path), required=True) == ()


def test_nvml_under_the_driver_root(tmp_path: Path) -> None:
    lib = tmp_path / "usr" / "lib" / "x86_64-linux-gnu"
    lib.mkdir(parents=True)
    (lib / "libnvidia-ml.so.550.54.15").write_bytes(b"")
    (lib / "libnvidia-ml.so.1").symlink_to("libnvidia-ml.so.550.54.15")
    assert locate_nvml(str(tmp_path)) == str(lib / "libnvidia-ml.so.550.54.15")
    assert locate_nvml(str(tmp_path / "empty")) is None
    assert locate_nvml("/") is None


def fake_control(tmp_path: Path, code: int) -> None:
    script = tmp_path / "nvidia-cuda-mps-control"
    script.write_text(f"#!/bin/sh\ncat >/dev/null\necho 100\nexit {code}\n")
    script.chmod(0o755)


def test_mps_daemon_answers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_control(tmp_path, 0)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    check_daemon("nvidia.com/gpu")


def test_mps_daemon_down(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_control(tmp_path, 1)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(PluginError, match=r"^error waiting for MPS daemon: error checking MPS"):
        check_daemon("nvidia.com/gpu")


def test_mps_control_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(PluginError, match="error checking MPS daemon health"):
        check_daemon("nvidia.com/gpu")
