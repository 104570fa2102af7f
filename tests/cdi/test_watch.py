"""`generate --watch`: a new spec when the node changes, and only then (docs/cdi.md#--watch).

In process, the watch loop runs in a thread over the real simulator beneath pynvml
(intervals of 50 ms, every wait bounded); the test swaps the simulated machine under
it: a driver version change and a MIG layout change each produce exactly one new spec;
an unchanged node, a new file in the driver root and a failing NVML call produce none,
and a failed discovery leaves the last good spec in place; a SIGHUP that comes during a
pass forces one more. Every check that ran to its end, an unchanged node's or a failed
discovery's, touches the heartbeat; a bad heartbeat path ends the watch before any
check. As a command, `--watch` writes at once, regenerates on SIGHUP and exits 0 on
SIGTERM (bursts of signals: tests/e2e/test_signal_bursts.py).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cdi_fixtures import DriverRoot, build_driver_root

from cdi import run
from cdi.cli import GenerateSettings, parse
from nvlib import sim
from nvlib.heartbeat import check

OLD, NEW = "550.54.15", "560.35.03"
T4_BUS = "0000:00:1e.0"


def profile(tmp_path: Path, driver: str, mig: bool = False) -> Path:
    """A one-A100 machine (MIG capable) with the given driver and MIG mode."""
    path = tmp_path / f"a100-{driver}-{'mig' if mig else 'full'}.yaml"
    mig_lines = "    mig: enabled\n    mig_devices: [3g.20gb, 3g.20gb]\n" if mig else ""
    path.write_text(
        f'driver: "{driver}"\ngpus:\n  - model: A100-SXM4-40GB\n    bus_ids: ["{T4_BUS}"]\n'
        + mig_lines
    )
    return path


def until(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.fixture
def root(tmp_path: Path) -> DriverRoot:
    """Libraries of both driver versions, so either one yields a spec."""
    r = build_driver_root(tmp_path / "driver", gpus=1, libraries=("libcuda.so", "libnvidia-ml.so"))
    for name in ("libcuda.so", "libnvidia-ml.so"):
        (r.path / "usr/lib/x86_64-linux-gnu" / f"{name}.{NEW}").write_bytes(b"new driver\n")
    return r


class Watcher:
    """The watch loop in a thread, over whatever simulation is active."""

    def __init__(self, settings: GenerateSettings, host: run.Host) -> None:
        self.control = run.WatchControl()
        self.checks = 0
        # Held by the test while it swaps the simulated machine, so that no discovery
        # pass straddles two machines.
        self.lock = threading.Lock()

        def discover(h: run.Host) -> object:
            with self.lock:
                self.checks += 1
                return run.discover_machine(h)

        self.result: int | None = None

        def run_watch() -> None:
            self.result = run.watch(settings, discover=discover, control=self.control)

        self._thread = threading.Thread(target=run_watch)
        self._host = host

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def wait_exit(self) -> None:
        self._thread.join(5)
        assert not self._thread.is_alive(), "the watch did not end"

    def wait_checks(self, count: int) -> None:
        target = self.checks + count
        until(lambda: self.checks >= target)

    def __enter__(self) -> Watcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.control.stop()
        self._thread.join(5)
        assert not self._thread.is_alive()


class CountingControl(run.WatchControl):
    """The loop's control, counting the loop's turns: each turn `take`s once, before its
    check, so a turn taken means the check before it ran to its end (imex and
    management modes call no `discover` that a test could count)."""

    def __init__(self) -> None:
        super().__init__()
        self.turns = 0

    def take(self) -> int | None:
        self.turns += 1
        return super().take()

    def wait_checks(self, count: int) -> None:
        """Until `count` checks that began after this call have ended."""
        target = self.turns + count + 1
        until(lambda: self.turns >= target)


@pytest.fixture
def watcher(
    tmp_path: Path, root: DriverRoot, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., Watcher]]:
    out = tmp_path / "cdi" / "nvidia.yaml"
    settings = GenerateSettings(
        output=str(out),
        driver_root=str(root.path),
        hook_path="/usr/bin/nvidia-cdi-hook",
        interval_ns=50_000_000,
    )
    host = run.Host(str(tmp_path / "host"), str(root.path), str(root.path), root.nodes)
    monkeypatch.setattr(run, "resolve_host", lambda _settings: host)
    yield lambda **changes: Watcher(settings._replace(**changes), host)
    current = sim.active()
    if current is not None:
        current.deactivate()


def generated(caplog: pytest.LogCaptureFixture) -> int:
    return sum("Generated CDI spec" in r.getMessage() for r in caplog.records)


def test_driver_change_and_only_that_regenerates(
    tmp_path: Path,
    root: DriverRoot,
    watcher: Callable[[], Watcher],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="cdi")
    out = tmp_path / "cdi" / "nvidia.yaml"
    sim.activate(profile(tmp_path, OLD))
    with watcher() as w:
        until(out.exists)
        first = out.stat()
        assert f"libcuda.so.{OLD}" in out.read_text()
        w.wait_checks(5)  # nothing changed: no new spec, not even a rewrite
        (root.path / "usr/lib/x86_64-linux-gnu/libnvidia-extra.so.1").write_bytes(b"x")
        w.wait_checks(3)  # a new file in the driver root is no node change either
        assert generated(caplog) == 1
        assert (out.stat().st_ino, out.stat().st_mtime_ns) == (first.st_ino, first.st_mtime_ns)

        with w.lock:
            sim.activate(profile(tmp_path, NEW))  # the driver was upgraded
        until(lambda: f"libcuda.so.{NEW}" in out.read_text())
        w.wait_checks(5)
        assert generated(caplog) == 2
        assert f"libcuda.so.{OLD}" not in out.read_text()
        assert f"--host-driver-version={NEW}" in out.read_text()


def test_sighup_during_a_pass_forces_another(
    tmp_path: Path,
    root: DriverRoot,
    watcher: Callable[[], Watcher],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A SIGHUP that comes while a pass writes, after that pass looked at the driver root,
    forces one more pass, which sees what changed since: the pass under way never
    absorbs it."""
    out = tmp_path / "cdi" / "nvidia.yaml"
    sim.activate(profile(tmp_path, OLD))
    armed = threading.Event()
    controls: list[run.WatchControl] = []
    write = run._write

    def write_then_signal(spec: object, settings: GenerateSettings) -> None:
        write(spec, settings)  # type: ignore[arg-type]
        if armed.is_set():
            armed.clear()
            root.add_library("libnvidia-ptxjitcompiler.so")  # after this pass looked
            controls[0].regenerate()

    monkeypatch.setattr(run, "_write", write_then_signal)
    with watcher() as w:
        controls.append(w.control)
        until(out.exists)
        assert "libnvidia-ptxjitcompiler.so" not in out.read_text()
        armed.set()
        w.control.regenerate()  # a forced pass, during which the second SIGHUP comes
        until(lambda: "libnvidia-ptxjitcompiler.so" in out.read_text())
        assert not armed.is_set()


def test_static_host_facts_are_read_once_per_process(
    tmp_path: Path, watcher: Callable[[], Watcher], caplog: pytest.LogCaptureFixture
) -> None:
    """The watch host tree has no sysfs: its warning comes once, not every check."""
    caplog.set_level(logging.WARNING)
    sim.activate(profile(tmp_path, OLD))
    with watcher() as w:
        w.wait_checks(4)
    warnings = [r for r in caplog.records if "failed to get device classes" in r.getMessage()]
    assert len(warnings) == 1


def test_mig_layout_change_regenerates(
    tmp_path: Path,
    root: DriverRoot,
    watcher: Callable[[], Watcher],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="cdi")
    out = tmp_path / "cdi" / "nvidia.yaml"
    sim.activate(profile(tmp_path, OLD))
    with watcher() as w:
        until(out.exists)
        assert 'name: "0"' in out.read_text()
        with w.lock:
            sim.activate(profile(tmp_path, OLD, mig=True))
        until(lambda: 'name: "0:1"' in out.read_text())
        w.wait_checks(3)
        assert generated(caplog) == 2
        assert 'name: "0"\n' not in out.read_text()  # MIG enabled: no full-GPU entry


def test_failed_discovery_keeps_the_spec(
    tmp_path: Path, watcher: Callable[[], Watcher], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="cdi")
    out = tmp_path / "cdi" / "nvidia.yaml"
    simulation = sim.activate(profile(tmp_path, OLD))
    with watcher() as w:
        until(out.exists)
        good = out.read_bytes()
        simulation.fail_call("nvmlSystemGetDriverVersion", "UNKNOWN")
        w.wait_checks(4)
        assert any(
            "discovery failed, keeping the current spec" in r.getMessage() for r in caplog.records
        )
        assert out.read_bytes() == good
        simulation.clear_faults()
        w.wait_checks(3)
        assert generated(caplog) == 1  # back to the same node: still nothing to write


def test_driver_upgraded_under_the_watch_ends_it(
    tmp_path: Path, watcher: Callable[[], Watcher], caplog: pytest.LogCaptureFixture
) -> None:
    """NVML's library/kernel version mismatch: the spec stays, the watch exits 1 so that
    a new process (the DaemonSet's restart) loads the new driver's library."""
    caplog.set_level(logging.INFO, logger="cdi")
    out = tmp_path / "cdi" / "nvidia.yaml"
    simulation = sim.activate(profile(tmp_path, OLD))
    with watcher() as w:
        until(out.exists)
        good = out.read_bytes()
        simulation.fail_call("nvmlInit", "LIB_RM_VERSION_MISMATCH")
        w.wait_exit()
        assert w.result == 1
    assert out.read_bytes() == good
    assert "The NVIDIA driver changed under this process" in caplog.text


def test_other_init_failures_do_not_end_the_watch(
    tmp_path: Path, watcher: Callable[[], Watcher], caplog: pytest.LogCaptureFixture
) -> None:
    simulation = sim.activate(profile(tmp_path, OLD))
    with watcher() as w:
        until((tmp_path / "cdi" / "nvidia.yaml").exists)
        simulation.fail_call("nvmlInit", "DRIVER_NOT_LOADED")
        w.wait_checks(3)
        assert w.running
        simulation.clear_faults()


def stale(path: Path) -> None:
    os.utime(path, (0, 0))


def fresh(path: Path) -> bool:
    return check(str(path), limit=60.0)[0]


def test_every_finished_check_touches_the_heartbeat(
    tmp_path: Path, watcher: Callable[..., Watcher]
) -> None:
    beat = tmp_path / "heartbeat"
    simulation = sim.activate(profile(tmp_path, OLD))
    with watcher(heartbeat_file=str(beat)) as w:
        until((tmp_path / "cdi" / "nvidia.yaml").exists)
        assert beat.read_text() == "0.05\n"  # the interval the probe's limit comes from
        w.wait_checks(2)
        stale(beat)
        until(lambda: fresh(beat))  # a check of an unchanged node: nothing written
        simulation.fail_call("nvmlSystemGetDriverVersion", "UNKNOWN")
        w.wait_checks(2)  # the last of these started after the fault
        stale(beat)
        until(lambda: fresh(beat))  # a failed discovery that kept the spec
        assert w.running


def test_bad_heartbeat_path_ends_the_watch_before_a_check(
    tmp_path: Path, watcher: Callable[..., Watcher], caplog: pytest.LogCaptureFixture
) -> None:
    beat = tmp_path / "missing" / "heartbeat"
    sim.activate(profile(tmp_path, OLD))
    with watcher(heartbeat_file=str(beat)) as w:
        w.wait_exit()
    assert w.result == 1 and w.checks == 0
    assert (
        f"failed to start: heartbeat file {beat}: its directory {beat.parent} does not exist"
        in caplog.text
    )


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        pytest.param([], {}, None, id="default-none"),
        pytest.param([], {"NVIDIA_CTK_CDI_GENERATE_HEARTBEAT_FILE": "/run/e"}, "/run/e", id="env"),
        pytest.param(["--heartbeat-file=/run/f"], {"NVIDIA_CTK_CDI_GENERATE_HEARTBEAT_FILE":
                     "/run/e"}, "/run/f", id="flag-beats-env"),
    ],
)  # fmt: skip
def test_heartbeat_file_option(args: list[str], env: dict[str, str], expected: str | None) -> None:
    settings = parse(["generate", "--watch", *args], env)
    assert isinstance(settings, GenerateSettings)
    assert settings.heartbeat_file == expected


def test_watch_command_lifecycle(tmp_path: Path) -> None:
    """The command: writes at once, SIGHUP regenerates, SIGTERM exits 0."""
    out, beat, log = tmp_path / "nvidia.yaml", tmp_path / "heartbeat", tmp_path / "stderr"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    with log.open("w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cdi", "generate", "--watch", "--interval", "100ms",
             "--nvml-mock", "t4", "--output", str(out), "--nvidia-cdi-hook-path", "/bin/hook",
             "--heartbeat-file", str(beat)],
            stderr=stderr, text=True, env=env,
        )  # fmt: skip
    try:
        until(out.exists)
        for _ in range(3):  # three checks of the unchanged node ran to their end
            stale(beat)
            until(lambda: fresh(beat))
        assert log.read_text().count("Generated CDI spec") == 1  # none of them wrote
        proc.send_signal(signal.SIGHUP)
        # the forced pass found the same bytes
        until(lambda: "CDI spec unchanged" in log.read_text())
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = log.read_text()
    assert text.count("Generated CDI spec") == 2, text  # the first pass and the SIGHUP
    assert "Received SIGHUP, regenerating." in text


@pytest.mark.parametrize(
    ("mode", "device_class", "vendor"),
    [
        pytest.param("imex", "imex-channel", "nvidia.com", id="imex"),
        pytest.param("management", "gpu", "management.nvidia.com", id="management"),
    ],
)
def test_other_modes_follow_their_nodes(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    mode: str,
    device_class: str,
    vendor: str,
) -> None:
    """A new channel node is a node change in both modes; a stray file is none; losing
    every channel (imex) keeps the last good spec. NVML is simulated (t4, the fixture's
    driver version) so that management mode finds the fixture's libraries."""
    caplog.set_level(logging.INFO, logger="cdi")
    root = build_driver_root(tmp_path / "driver", gpus=1, libraries=("libcuda.so",))
    root.add_node("dev/nvidia-caps-imex-channels/channel0", 507, 0)
    out = tmp_path / "cdi" / f"{mode}.yaml"
    settings = GenerateSettings(
        output=str(out), mode=mode, vendor=vendor, device_class=device_class,
        hook_path="/usr/bin/nvidia-cdi-hook", interval_ns=20_000_000,
    )  # fmt: skip
    host = run.Host("/", str(root.path), str(root.path), root.nodes)  # the live node map
    monkeypatch.setattr(run, "resolve_host", lambda _settings: host)
    control = CountingControl()
    thread = threading.Thread(target=run.watch, args=(settings,), kwargs={"control": control})
    with sim.activate("t4"):
        thread.start()
        try:
            until(out.exists)
            control.wait_checks(5)  # of an unchanged node
            assert generated(caplog) == 1
            root.add_node("dev/nvidia-caps-imex-channels/channel1", 507, 1)
            until(lambda: "/dev/nvidia-caps-imex-channels/channel1" in out.read_text())
            root.add_file("dev/nvidia-caps-imex-channels/README")
            control.wait_checks(3)  # each saw the stray file
            assert generated(caplog) == 2
            if mode == "imex":
                good = out.read_bytes()
                for n in (0, 1):
                    (root.path / f"dev/nvidia-caps-imex-channels/channel{n}").unlink()
                until(lambda: any("no IMEX channel" in r.getMessage() for r in caplog.records))
                assert out.read_bytes() == good
        finally:
            control.stop()
            thread.join(5)
    assert not thread.is_alive()
