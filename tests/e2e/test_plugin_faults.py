"""Faults the plugin must survive, against the kubelet double on the simulator.

Health is a fact of the node: an XID-marked GPU (its replicas, its MIG devices) stays
Unhealthy across a kubelet restart, a SIGHUP (config changed or not) and the restart
after a node check found other GPUs or driver; the recovery period counts from the last
critical event, not from a restart. A kubelet restart serves the same servers again
unless the config file changed. NVML never blocks the control loop: with an NVML
call hung at the node check, a kubelet restart still re-registers within a second,
SIGTERM still exits within a second (in process and as a process), and the hung check
is logged once; with an NVML call hung at start, signals are still taken: SIGTERM exits
within a second, a SIGHUP restarts once the start returns.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from kubelet_double import Devices, Endpoint, KubeletDouble

from deviceplugin.cli import parse
from deviceplugin.daemon import Daemon
from nvlib import sim
from nvlib.heartbeat import check
from nvlib.signals import Signals as Control

REPO = Path(__file__).resolve().parents[2]
GPU = "nvidia.com/gpu"


@dataclass
class Plugin:
    kubelet: KubeletDouble
    daemon: Daemon
    control: Control
    simulation: sim.Simulation
    directory: Path
    thread: threading.Thread

    def endpoint(self, resource: str = GPU) -> Endpoint:
        return self.kubelet.endpoint(resource)


@contextmanager
def plugin(
    tmp_path: Path,
    profile: str | Path,
    *args: str,
    node_check_seconds: float | None = None,
    hang: str | None = None,
) -> Iterator[Plugin]:
    """The daemon in a thread of this process, so that faults can be injected as it runs.

    `hang`: an NVML call made to hang before the daemon starts; the start is then not
    waited for."""
    directory = tmp_path / "device-plugins"
    kubelet = KubeletDouble(directory).start()
    simulation = sim.activate(profile)
    if hang is not None:
        simulation.hang_call(hang)
    argv = [
        "--nvml-mock", str(profile),
        "--kubelet-socket", str(directory / "kubelet.sock"),
        "--cdi-spec-dir", str(tmp_path / "cdi"),
        *args,
    ]  # fmt: skip
    daemon = Daemon(argv, {}, parse(argv, {}))
    if node_check_seconds is not None:
        daemon.node_check_seconds = node_check_seconds
    control = Control()
    codes: list[int] = []
    thread = threading.Thread(target=lambda: codes.append(daemon.run(control)), daemon=True)
    thread.start()
    run = Plugin(kubelet, daemon, control, simulation, directory, thread)
    try:
        if hang is None:
            assert daemon.started.wait(10), "the plugin did not start"
        yield run
    finally:
        control.send(signal.SIGTERM)
        thread.join(10)
        kubelet.stop()
        run.simulation.deactivate()
    assert not thread.is_alive()
    assert codes == [0]


def unhealthy(devices: Devices) -> list[str]:
    return [i for i, (health, _) in devices.items() if health == "Unhealthy"]


def first_list_after(run: Plugin, resource: str, since: float) -> Devices:
    """The first ListAndWatch list of the connection the kubelet opened after `since`."""
    run.kubelet.wait_registration(resource, after=since, timeout=5)
    return run.endpoint(resource).wait_list()[1]


# -- health outlives server instances ---------------------------------------------------


def test_xid_marked_gpu_stays_unhealthy_across_kubelet_restarts(tmp_path: Path) -> None:
    """The reported fault: XID 48 on GPU 2, the kubelet socket re-created, GPU 2 was
    listed Healthy at once. Every list of every new connection must say Unhealthy."""
    with plugin(tmp_path, "dgx-a100") as run:
        gpus = list(run.endpoint().devices)
        run.simulation.inject_xid(2, 48)
        run.endpoint().wait_list(lambda d: d[gpus[2]][0] == "Unhealthy")
        for _ in range(2):
            created = run.kubelet.restart()
            assert unhealthy(first_list_after(run, GPU, created)) == [gpus[2]]
        # A later fault on GPU 5, reported in turn: any report the health checker had
        # left to make about GPU 2 came before it, on this connection's lists.
        run.simulation.inject_xid(5, 48)
        run.endpoint().wait_list(lambda d: d[gpus[5]][0] == "Unhealthy")
        lists = [unhealthy(d) for _, d in run.endpoint().lists]
        assert lists[-1] == [gpus[2], gpus[5]]
        assert all(u in ([gpus[2]], [gpus[2], gpus[5]]) for u in lists), lists


def test_mig_instance_xid_stays_on_its_device_across_a_kubelet_restart(tmp_path: Path) -> None:
    with plugin(tmp_path, "dgx-a100-mig", "--mig-strategy", "mixed") as run:
        small = "nvidia.com/mig-1g.5gb"
        migs = list(run.endpoint(small).devices)  # per GPU: MIG indices 2 and 3
        run.simulation.inject_xid(1, 48, mig=3)
        run.endpoint(small).wait_list(lambda d: d[migs[3]][0] == "Unhealthy")
        created = run.kubelet.restart()
        assert unhealthy(first_list_after(run, small, created)) == [migs[3]]
        assert unhealthy(first_list_after(run, "nvidia.com/mig-3g.20gb", created)) == []


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def gpu_devices(run: Plugin, gpu: int, ids: list[str]) -> list[str]:
    """The advertised IDs that live on GPU `gpu`: it, its replicas or its MIG devices."""
    spec = run.simulation.profile.gpus[gpu]
    own = {spec.uuid, *(m.uuid for m in spec.mig_devices)}
    return [i for i in ids if i.split("::", 1)[0] in own]


@pytest.mark.parametrize(
    ("profile", "before", "after", "resources"),
    [
        pytest.param("dgx-a100", "version: v1\n", "version: v1\n", [GPU], id="same-config"),
        pytest.param(
            "dgx-a100",
            "version: v1\n",
            "sharing: {timeSlicing: {resources: [{name: gpu, replicas: 3}]}}\n",
            [GPU],
            id="now-replicated",
        ),
        pytest.param(
            "dgx-a100-mig",
            "flags: {migStrategy: none}\n",
            "flags: {migStrategy: mixed}\n",
            ["nvidia.com/mig-3g.20gb", "nvidia.com/mig-2g.10gb", "nvidia.com/mig-1g.5gb"],
            id="now-mig-devices",
        ),
    ],
)
def test_xid_marked_gpu_stays_unhealthy_across_sighup(
    tmp_path: Path, profile: str, before: str, after: str, resources: list[str]
) -> None:
    config = write(tmp_path / "config.yaml", before)
    with plugin(tmp_path, profile, "--config-file", str(config)) as run:
        gpus = list(run.endpoint().devices)
        run.simulation.inject_xid(2, 48)
        run.endpoint().wait_list(lambda d: d[gpus[2]][0] == "Unhealthy")
        write(config, after)
        sent = time.monotonic()
        run.control.send(signal.SIGHUP)
        for resource in resources:
            devices = first_list_after(run, resource, sent)
            expected = gpu_devices(run, 2, list(devices))
            assert expected, f"{resource}: no device of GPU 2 in {list(devices)}"
            assert unhealthy(devices) == expected, resource


def twin_profiles(tmp_path: Path) -> tuple[Path, Path]:
    """Two machines with the same GPUs (same UUIDs) and another driver: a node check
    that moves from one to the other restarts the plugin on the same GPUs."""
    gpus = (
        "gpus:\n  - model: T4\n    count: 3\n"
        "    uuids: [GPU-0a000000-0000-4000-8000-000000000000,"
        " GPU-0b000000-0000-4000-8000-000000000000, GPU-0c000000-0000-4000-8000-000000000000]\n"
    )
    old = write(tmp_path / "old.yaml", f'name: twin\ndriver: "550.54.15"\n{gpus}')
    new = write(tmp_path / "new.yaml", f'name: twin\ndriver: "550.90.07"\n{gpus}')
    return old, new


def test_xid_marked_gpu_stays_unhealthy_across_a_node_check_restart(tmp_path: Path) -> None:
    old, new = twin_profiles(tmp_path)
    with plugin(tmp_path, old, node_check_seconds=0.2) as run:
        gpus = list(run.endpoint().devices)
        run.simulation.inject_xid(1, 48)
        run.endpoint().wait_list(lambda d: d[gpus[1]][0] == "Unhealthy")
        starts = run.daemon.starts
        swapped = time.monotonic()
        run.simulation.deactivate()
        run.simulation = sim.activate(new)  # the fixture deactivates what it holds
        devices = first_list_after(run, GPU, swapped)
        # A restart, not a re-registration: counted once start_plugins returned.
        wait_for(lambda: run.daemon.starts == starts + 1, 5, "the plugin did not restart")
        assert list(devices) == gpus
        assert unhealthy(devices) == [gpus[1]]


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> float:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)
    return time.monotonic()


def test_recovery_counts_from_the_fault_not_from_restarts(tmp_path: Path) -> None:
    """--health-recovery-period 3s: a kubelet restart at +1 s and a SIGHUP at +2 s
    neither bring the GPU back early nor start its quiet period again.

    Measured: back 3.006-3.012 s after the fault's report (3 runs). A quiet period
    restarted by the kubelet restart would end after 4 s, by the SIGHUP after 5 s; the
    bound, 3.9 s, leaves 75 times the measured lateness.
    """
    period = 3.0
    with plugin(tmp_path, "t4", "--health-recovery-period", f"{period:g}s") as run:
        (gpu,) = run.endpoint().devices
        run.simulation.inject_xid(0, 48)
        marked, _ = run.endpoint().wait_list(lambda d: d[gpu][0] == "Unhealthy")
        time.sleep(max(0.0, marked + 1.0 - time.monotonic()))
        created = run.kubelet.restart()
        assert unhealthy(first_list_after(run, GPU, created)) == [gpu]
        time.sleep(max(0.0, marked + 2.0 - time.monotonic()))
        sent = time.monotonic()
        run.control.send(signal.SIGHUP)
        assert unhealthy(first_list_after(run, GPU, sent)) == [gpu]
        back, _ = run.endpoint().wait_list(lambda d: d[gpu][0] == "Healthy", timeout=10)
        assert period - 0.05 <= back - marked < period + 0.9, back - marked


def test_a_kubelet_restart_with_a_changed_config_restarts_in_full(tmp_path: Path) -> None:
    """Unchanged settings re-register the same servers (no NVML); a config file changed
    since is read and applied, as upstream's restart on a kubelet restart does."""
    config = write(tmp_path / "config.yaml", "version: v1\n")
    with plugin(tmp_path, "t4", "--config-file", str(config)) as run:
        (gpu,) = run.endpoint().devices
        starts = run.daemon.starts
        created = run.kubelet.restart()
        assert list(first_list_after(run, GPU, created)) == [gpu]
        assert run.daemon.starts == starts  # served again, not restarted
        write(config, "sharing: {timeSlicing: {resources: [{name: gpu, replicas: 2}]}}\n")
        created = run.kubelet.restart()
        assert list(first_list_after(run, GPU, created)) == [f"{gpu}::0", f"{gpu}::1"]
        wait_for(lambda: run.daemon.starts == starts + 1, 5, "the plugin did not restart")


# -- NVML never blocks the control loop --------------------------------------------------

HUNG = "NVML node check has not returned"


def test_a_hung_node_check_delays_neither_kubelet_restarts_nor_sigterm(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Measured (3 runs, 3 restarts each): re-registration 0.095-0.112 s after the
    kubelet socket is re-created (the loop's 0.1 s tick), exit 0.002-0.027 s after
    SIGTERM; the 1 s bounds leave 9 and 37 times that."""
    caplog.set_level("INFO")
    with plugin(tmp_path, "dgx-a100", node_check_seconds=0.2) as run:
        gpus = list(run.endpoint().devices)
        run.simulation.hang_call("nvmlDeviceGetHandleByIndex")  # what discovery asks first
        wait_for(lambda: HUNG in caplog.text, 20, "the hung node check was not reported")
        checks = run.daemon.node_checks  # each interval the hung check lets pass counts
        run.simulation.inject_xid(4, 48)  # health events still flow meanwhile
        run.endpoint().wait_list(lambda d: d[gpus[4]][0] == "Unhealthy")
        for _ in range(3):
            created = run.kubelet.restart()
            registration = run.kubelet.wait_registration(GPU, after=created, timeout=5)
            assert registration.at - created < 1.0
            assert unhealthy(run.endpoint().wait_list()[1]) == [gpus[4]]
        # Three more intervals passed with the check still hung: reported once, not at
        # every interval.
        wait_for(lambda: run.daemon.node_checks >= checks + 3, 20, "no more node checks")
        assert caplog.text.count(HUNG) == 1
        sent = time.monotonic()
        run.control.send(signal.SIGTERM)
        run.thread.join(5)
        assert not run.thread.is_alive() and time.monotonic() - sent < 1.0


def test_a_hung_event_wait_delays_neither_restarts_nor_sigterm(tmp_path: Path) -> None:
    """The health checker's NVML wait hung: a kubelet restart and a SIGHUP (a new
    checker, the old one left behind) still re-register within a second.

    Measured (3 runs): kubelet restart 0.103-0.104 s, SIGHUP 0.008-0.011 s, SIGTERM
    0.002-0.023 s."""
    with plugin(tmp_path, "dgx-a100") as run:
        run.endpoint()
        run.simulation.hang_call("nvmlEventSetWait_v2")
        wait_for(lambda: run.simulation.nvml_calls().get("nvmlEventSetWait_v2", 0) > 0, 5, "")
        created = run.kubelet.restart()
        assert run.kubelet.wait_registration(GPU, after=created).at - created < 1.0
        sent = time.monotonic()
        run.control.send(signal.SIGHUP)
        assert run.kubelet.wait_registration(GPU, after=sent).at - sent < 1.0
        sent = time.monotonic()
        run.control.send(signal.SIGTERM)
        run.thread.join(5)
        assert not run.thread.is_alive() and time.monotonic() - sent < 1.0


def test_process_sigterm_exits_within_a_second_with_a_hung_node_check(tmp_path: Path) -> None:
    """As a process (real signal handling and exit), its node check every 0.3 s instead
    of 30 s; NVML starts hanging 3 s after the simulation is activated, long after the
    registration. Measured (3 runs): exit 0.07-0.23 s after SIGTERM (interpreter
    shutdown included), over 4 times inside the 1 s bound."""
    profile = write(
        tmp_path / "wedged.yaml",
        "gpus: [{model: T4, count: 2}]\n"
        "faults: [{call: nvmlDeviceGetHandleByIndex, hang: true, after: 3s}]\n",
    )
    directory, beat = tmp_path / "dp", tmp_path / "heartbeat"
    with KubeletDouble(directory, connect=False) as kubelet:
        proc = plugin_process(tmp_path, profile, directory, "--heartbeat-file", str(beat))
        lines = Lines(proc)
        try:
            kubelet.wait_registration(GPU, timeout=20)
            lines.wait_for(HUNG, timeout=20)
            for _ in range(3):  # three more node check intervals, the check still hung
                stale(beat)
                wait_for(lambda: fresh(beat), 20, "the heartbeat was not touched")
            code, elapsed = terminate(proc)
        finally:
            proc.kill()
            proc.wait()
    err = lines.text()
    assert code == 0, err
    assert elapsed < 1.0, err
    assert err.count(HUNG) == 1, err
    assert sorted(p.name for p in directory.iterdir()) == []


START_HUNG = "The plugins' start has not returned"
RELOAD_PENDING = "Received SIGHUP during the start"


def test_a_hung_start_takes_signals_and_restarts_once_for_sighups_meanwhile(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Discovery at start hangs in NVML: the hang is reported once, SIGHUPs taken
    meanwhile make one restart once the start returns, and the plugin then serves."""
    caplog.set_level("INFO")
    hang = "nvmlDeviceGetHandleByIndex"  # what discovery asks first
    with plugin(tmp_path, "dgx-a100", node_check_seconds=0.2, hang=hang) as run:
        wait_for(lambda: START_HUNG in caplog.text, 20, "the hung start was not reported")
        run.control.send(signal.SIGHUP)
        run.control.send(signal.SIGHUP)
        wait_for(lambda: RELOAD_PENDING in caplog.text, 20, "the SIGHUP was not taken")
        assert run.daemon.starts == 0 and run.thread.is_alive()
        run.simulation.clear_faults()
        wait_for(lambda: run.daemon.starts == 2, 20, "no restart after the hung start")
        run.kubelet.wait_registration(GPU, timeout=10)
        checks = run.daemon.node_checks
        wait_for(lambda: run.daemon.node_checks >= checks + 3, 20, "no node checks after")
        assert run.daemon.starts == 2  # both SIGHUPs made one restart
        assert caplog.text.count(START_HUNG) == 1 and caplog.text.count(RELOAD_PENDING) == 1


def test_process_sigterm_exits_within_a_second_during_a_hung_start(tmp_path: Path) -> None:
    """As a process: NVML hangs from the first discovery call, so the start never
    returns; SIGTERM still exits 0 within a second and leaves no socket.

    Measured (3 runs): exit 0.53-0.56 s after SIGTERM: the 0.5 s a stop waits for a start
    under way, then the interpreter's shutdown; under the 1 s bound, not 3x under it:
    the bound is the product's promise (docs/reliability.md)."""
    profile = write(
        tmp_path / "wedged.yaml",
        "gpus: [{model: T4, count: 2}]\nfaults: [{call: nvmlDeviceGetHandleByIndex, hang: true}]\n",
    )
    directory = tmp_path / "dp"
    with KubeletDouble(directory, connect=False):
        proc = plugin_process(tmp_path, profile, directory)
        lines = Lines(proc)
        try:
            lines.wait_for(START_HUNG, timeout=20)
            code, elapsed = terminate(proc)
        finally:
            proc.kill()
            proc.wait()
    err = lines.text()
    assert code == 0, err
    assert elapsed < 1.0, err
    assert sorted(p.name for p in directory.iterdir()) == []


def plugin_process(
    tmp_path: Path, profile: Path, directory: Path, *args: str
) -> subprocess.Popen[str]:
    """The plugin as a process on `profile`, its node check every 0.3 s, stderr piped."""
    boot = (
        "import sys; import deviceplugin.daemon as daemon; daemon.NODE_CHECK_SECONDS = 0.3;"
        " from deviceplugin.__main__ import main; sys.exit(main())"
    )
    return subprocess.Popen(
        [sys.executable, "-c", boot, "--nvml-mock", str(profile),
         "--kubelet-socket", str(directory / "kubelet.sock"), *args],
        cwd=tmp_path,
        env={
            "PYTHONPATH": str(REPO),
            "PYTHONDONTWRITEBYTECODE": "1",
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        },
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip


def terminate(proc: subprocess.Popen[str]) -> tuple[int, float]:
    """SIGTERM `proc`: its exit code, and the seconds from the signal to the exit."""
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=10)
    return code, time.monotonic() - sent


def stale(path: Path) -> None:
    os.utime(path, (0, 0))


def fresh(path: Path) -> bool:
    return check(str(path), limit=60.0)[0]


class Lines:
    """A process's standard error, read line by line as it comes."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._proc = proc
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        assert self._proc.stderr is not None
        with self._proc.stderr:
            for line in self._proc.stderr:
                with self._changed:
                    self.lines.append(line)
                    self._changed.notify_all()

    def text(self) -> str:
        """All of it, once the process has closed its standard error."""
        self.thread.join(5)
        return "".join(self.lines)

    def wait_for(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self._changed:
            while not any(text in line for line in self.lines):
                left = deadline - time.monotonic()
                assert left > 0, f"no {text!r} in:\n" + "".join(self.lines)
                self._changed.wait(left)
