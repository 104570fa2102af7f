"""config-manager's passes (configmanager/manager.py) on a real directory laid out as
the kubelet mounts a ConfigMap (`..data` and a timestamped directory, one link per key):
the file written, left alone when it already holds the config, the signal sent only
after a change, oneshot, and every error that ends the command, with the destination
left as it was."""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from configmanager.cli import Settings
from configmanager.manager import run_passes
from configmanager.node import LabelTracker
from configmanager.process import ProcessNotFound

LABEL = "nvidia.com/device-plugin.config"
CONFIGS = {
    "default": "version: v1\n",
    "time-sliced": (
        "version: v1\nsharing:\n  timeSlicing:\n    resources: [{name: gpu, replicas: 4}]\n"
    ),
}


def configmap_mount(directory: Path, configs: dict[str, str], stamp: str = "..2026_01_01") -> Path:
    """What the kubelet makes of a ConfigMap volume: data in a timestamped directory,
    `..data` linked to it, and each key a link through `..data`. Called again, it swaps
    `..data` to a new directory, as a ConfigMap update does."""
    directory.mkdir(exist_ok=True)
    (directory / stamp).mkdir()
    for name, text in configs.items():
        (directory / stamp / name).write_text(text)
    tmp = directory / "..data_tmp"
    tmp.symlink_to(stamp)
    os.replace(tmp, directory / "..data")
    for name in configs:
        if not (directory / name).is_symlink():
            (directory / name).symlink_to(f"..data/{name}")
    return directory


@dataclasses.dataclass
class Setup:
    settings: Settings
    tracker: LabelTracker
    dst: Path
    signals: list[tuple[str, int]]
    stop: threading.Event

    def run(self, signal_process: Callable[[str, int], int] | None = None) -> int:
        def record(name: str, signum: int) -> int:
            self.signals.append((name, signum))
            return 4242

        return run_passes(self.settings, self.tracker, self.stop.is_set, signal_process or record)

    def run_in_thread(self) -> tuple[threading.Thread, list[int]]:
        code: list[int] = []
        thread = threading.Thread(target=lambda: code.append(self.run()), daemon=True)
        thread.start()
        return thread, code


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    srcdir = configmap_mount(tmp_path / "available-configs", CONFIGS)
    (tmp_path / "config").mkdir()
    settings = Settings(
        oneshot=False, kubeconfig="", node_name="node-1", node_label=LABEL,
        config_file_srcdir=str(srcdir), config_file_dst=str(tmp_path / "config" / "config.yaml"),
        default_config="", fallback_strategies=("named", "single"), send_signal=True,
        signal=1, process_to_signal="nvidia-device-plugin", heartbeat_file="",
    )  # fmt: skip
    return Setup(settings, LabelTracker(LABEL), Path(settings.config_file_dst), [],
                 threading.Event())  # fmt: skip


def labelled(value: str | None) -> dict[str, object]:
    return {"metadata": {"name": "node-1", "labels": {LABEL: value} if value is not None else {}}}


def wait_for(predicate: Callable[[], bool], timeout: float = 10) -> None:
    event = threading.Event()
    for _ in range(int(timeout / 0.01)):
        if predicate():
            return
        event.wait(0.01)
    pytest.fail("condition not met in time")


def test_oneshot_writes_the_default_and_sends_nothing(setup: Setup) -> None:
    setup.settings = setup.settings._replace(oneshot=True, send_signal=False)
    setup.tracker.node_seen(labelled(None))
    assert setup.run() == 0
    assert setup.dst.read_text() == CONFIGS["default"]
    assert not setup.dst.is_symlink() and oct(setup.dst.stat().st_mode & 0o777) == "0o644"
    assert setup.signals == []


def test_label_changes_write_and_signal_only_on_change(
    setup: Setup, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    setup.dst.write_text(CONFIGS["default"])  # what the init container wrote
    os.chmod(setup.dst, 0o644)
    setup.tracker.node_seen(labelled(None))
    thread, code = setup.run_in_thread()
    wait_for(lambda: "Already configured. Skipping update..." in caplog.text)
    assert setup.signals == []  # the sidecar's first pass: nothing changed, no reload
    setup.tracker.node_seen(labelled("time-sliced"))
    wait_for(lambda: len(setup.signals) == 1)
    assert setup.dst.read_text() == CONFIGS["time-sliced"]
    assert setup.signals == [("nvidia-device-plugin", 1)]
    setup.tracker.node_seen(labelled(None))  # label removed: back to the default
    wait_for(lambda: len(setup.signals) == 2)
    assert setup.dst.read_text() == CONFIGS["default"]
    setup.stop.set()
    thread.join(10)
    assert code == [0]
    assert "Label change detected: nvidia.com/device-plugin.config=time-sliced" in caplog.text
    assert "Sending signal 'SIGHUP' to 'nvidia-device-plugin'" in caplog.text


def test_empty_config_is_an_empty_file(setup: Setup) -> None:
    setup.settings = setup.settings._replace(oneshot=True, fallback_strategies=("empty",))
    setup.tracker.node_seen(labelled(None))
    setup.dst.write_text("stale\n")
    assert setup.run() == 0
    assert setup.dst.read_bytes() == b""
    assert setup.signals == [("nvidia-device-plugin", 1)]


def test_configmap_update_is_read_at_the_next_pass(setup: Setup) -> None:
    setup.settings = setup.settings._replace(oneshot=True)
    configmap_mount(Path(setup.settings.config_file_srcdir),
                    {**CONFIGS, "default": "version: v1\nflags: {migStrategy: single}\n"},
                    stamp="..2026_01_02")  # fmt: skip
    setup.tracker.node_seen(labelled("default"))
    assert setup.run() == 0
    assert "migStrategy: single" in setup.dst.read_text()


@pytest.mark.parametrize(
    ("label", "change", "message"),
    [
        pytest.param("h100", {}, "Error: specified config h100 does not exist", id="label"),
        pytest.param("", {"default_config": "h100"},
                     "Error: specified config h100 does not exist", id="default"),
        pytest.param("", {"fallback_strategies": ("single",)},
                     "Error: no config was set, no default was provided, and all fallbacks"
                     " failed", id="fallbacks"),
        pytest.param("", {"fallback_strategies": ("first",)},
                     "Error: unknown fallback strategy: first", id="unknown-fallback"),
        pytest.param("", {"config_file_srcdir": "/nonexistent/available-configs"},
                     "Error: unable to read config directory /nonexistent/available-configs:"
                     " No such file or directory", id="no-srcdir"),
        pytest.param("", {"config_file_dst": "/nonexistent/config/config.yaml"},
                     "Error: unable to write config file /nonexistent/config/config.yaml",
                     id="no-dst-directory"),
    ],
)  # fmt: skip
def test_errors_end_the_command(
    setup: Setup, caplog: pytest.LogCaptureFixture, label: str, change: dict[str, object],
    message: str,
) -> None:  # fmt: skip
    setup.settings = setup.settings._replace(**change)  # type: ignore[arg-type]
    setup.dst.write_text("kept\n")
    setup.tracker.node_seen(labelled(label))
    assert setup.run() == 1
    assert message in caplog.text
    assert setup.dst.read_text() == "kept\n"
    assert setup.signals == []


def test_no_configs_at_all(setup: Setup, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    empty = tmp_path / "empty-configmap"
    empty.mkdir()
    (empty / "..data").symlink_to("..2026")  # only Kubernetes' own entries
    setup.settings = setup.settings._replace(config_file_srcdir=str(empty))
    setup.tracker.node_seen(labelled(None))
    assert setup.run() == 1
    assert "Error: no configuration files available" in caplog.text


def test_destination_that_is_a_symlink_is_refused(
    setup: Setup, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    target = tmp_path / "elsewhere"
    target.write_text("kept\n")
    setup.dst.symlink_to(target)
    setup.tracker.node_seen(labelled(None))
    assert setup.run() == 1
    assert f"unable to write config file {setup.dst}" in caplog.text
    assert "refusing to write over a symbolic link" in caplog.text
    assert target.read_text() == "kept\n"


@pytest.mark.parametrize(
    ("error", "message"),
    [
        pytest.param(ProcessNotFound("no process found"), "Error: error finding pid: no process"
                     " found", id="not-found"),
        pytest.param(PermissionError(1, "Operation not permitted"),
                     "Error: error sending signal to 'nvidia-device-plugin': [Errno 1] Operation"
                     " not permitted", id="not-permitted"),
    ],
)  # fmt: skip
def test_signal_failures_end_the_command(
    setup: Setup, caplog: pytest.LogCaptureFixture, error: Exception, message: str
) -> None:
    def fail(name: str, signum: int) -> int:
        raise error

    setup.tracker.node_seen(labelled("time-sliced"))
    assert setup.run(fail) == 1
    assert message in caplog.text
    # written all the same: a daemon that starts later reads it
    assert setup.dst.read_text() == CONFIGS["time-sliced"]
