"""Every CDI name the plugin hands out resolves exactly once, at every moment.

CDI drops a device that two files of one directory define, so a container asking for
it fails; a name no file defines fails as well. The generator (`nvidia-cdi generate
--watch`) and the plugin (`--device-list-strategy cdi-cri`, its own
`nvidia-device-plugin.yaml`) run as processes over one spec directory, started in
either order and together; a sampler resolves the directory every 10 ms (as fast as it
can on a loaded machine) with the registry code `nvidia-cdi list` runs
(`cdi.registry.load_specs`), while the second daemon starts and then while the
generator's spec is rewritten twice (a one-shot `nvidia-cdi generate` over it, and
SIGHUP to the watcher), for at least 5 s and at least 100 samples after the last
change. From the plugin's registration on (before it, it hands out nothing) each name
its Allocate answers must be listed once; at no moment may a name be defined twice.
A last test upgrades the driver under both daemons, in process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from kubelet_double import KubeletDouble

from cdi.registry import load_specs

REPO = Path(__file__).resolve().parents[2]
GPU = "nvidia.com/gpu"
PROFILE = "dgx-a100"
WINDOW = 5.0  # seconds of sampling, at least
PERIOD = 0.01
# Samples after the last change, at least: on a loaded machine a sample can take 50 ms
# (5 at idle), so the window grows rather than the samples thin out.
SETTLED_SAMPLES = 100
START_TIMEOUT = 30.0  # a cold interpreter on a loaded 2-CPU runner


@dataclass
class Sample:
    at: float  # time.monotonic()
    listed: frozenset[str]  # what `nvidia-cdi list` prints
    conflicts: frozenset[str]  # names two files of the directory define


@dataclass
class Sampler:
    """Resolve the spec directory every PERIOD seconds in a thread, until stopped."""

    spec_dir: Path
    samples: list[Sample] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _run(self) -> None:
        due = time.monotonic()
        while not self._stop.is_set():
            at = time.monotonic()
            registry = load_specs([str(self.spec_dir)])
            listed, conflicts = frozenset(registry.devices), frozenset(registry.conflicts)
            self.samples.append(Sample(at, listed, conflicts))
            due = max(due + PERIOD, time.monotonic())  # every PERIOD, when it keeps up
            self._stop.wait(due - time.monotonic())

    def settle(self, started: float, changed: float) -> None:
        """Sample until WINDOW seconds since `started` and SETTLED_SAMPLES since `changed`."""
        until(
            lambda: (
                bool(self.samples)
                and self.samples[-1].at >= started + WINDOW
                and sum(s.at >= changed for s in self.samples) >= SETTLED_SAMPLES
            ),
            "the sampling window",
            timeout=60,
        )

    def __enter__(self) -> Sampler:
        self._thread = threading.Thread(target=self._run, name="cdi-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(5)


def _env() -> dict[str, str]:
    return {
        "PYTHONPATH": str(REPO),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
    }


@contextmanager
def process(argv: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, env=_env(), stdout=subprocess.DEVNULL, stderr=out)
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def until(condition: Callable[[], bool], what: str, timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def inode(path: Path) -> int | None:
    try:
        return path.stat().st_ino
    except FileNotFoundError:
        return None


class Node:
    """The spec directory, the kubelet double and the two daemons' command lines."""

    def __init__(self, tmp_path: Path, stack: ExitStack) -> None:
        self.tmp = tmp_path
        self.spec_dir = tmp_path / "cdi"
        self.generated = self.spec_dir / "nvidia.yaml"
        self.own = self.spec_dir / "nvidia-device-plugin.yaml"
        self.stack = stack
        self.kubelet = stack.enter_context(KubeletDouble(tmp_path / "device-plugins"))
        self.watcher: subprocess.Popen[bytes] | None = None

    def start_plugin(self) -> None:
        argv = [
            sys.executable, "-m", "deviceplugin",
            "--nvml-mock", PROFILE,
            "--kubelet-socket", str(self.kubelet.socket_path),
            "--cdi-spec-dir", str(self.spec_dir),
            "--device-list-strategy", "cdi-cri",
        ]  # fmt: skip
        self.stack.enter_context(process(argv, self.tmp / "plugin.log"))

    def generate_argv(self, *extra: str) -> list[str]:
        return [
            sys.executable, "-m", "cdi", "generate",
            "--nvml-mock", PROFILE,
            "--output", str(self.generated),
            *extra,
        ]  # fmt: skip

    def start_generator(self) -> None:
        argv = self.generate_argv("--watch", "--interval", "100ms")
        self.watcher = self.stack.enter_context(process(argv, self.tmp / "generator.log"))

    def plugin_up(self) -> bool:
        return any(r.request.resource_name == GPU for r in self.kubelet.registrations)

    def generator_up(self) -> bool:
        return self.generated.exists()

    def handed_out(self) -> tuple[float, frozenset[str]]:
        """(when the plugin registered, every CDI name its Allocate answers)."""
        registration = self.kubelet.wait_registration(GPU, timeout=START_TIMEOUT)
        endpoint = self.kubelet.endpoint(GPU)
        answer = endpoint.allocate(*[[d] for d in endpoint.devices])
        names = {d.name for c in answer.container_responses for d in c.cdi_devices}
        assert len(names) == len(endpoint.devices) == 8
        return registration.at, frozenset(names)

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
            for p in sorted(self.tmp.glob("*.log"))
        )


def defined_names(path: Path) -> set[str]:
    doc = yaml.safe_load(path.read_text())
    return {f"{doc['kind']}={d['name']}" for d in doc["devices"]}


@pytest.mark.parametrize("order", ["plugin-first", "generator-first", "together"])
def test_each_handed_out_name_resolves_exactly_once(tmp_path: Path, order: str) -> None:
    with ExitStack() as stack:
        node = Node(tmp_path, stack)
        if order == "plugin-first":
            node.start_plugin()
            until(node.plugin_up, "the plugin's registration")
        elif order == "generator-first":
            node.start_generator()
            until(node.generator_up, "the generator's spec")
        with Sampler(node.spec_dir) as sampler:
            started = time.monotonic()
            if order != "plugin-first":
                node.start_plugin()
            if order != "generator-first":
                node.start_generator()
            until(lambda: node.plugin_up() and node.generator_up(), "both daemons")
            registered, names = node.handed_out()

            # the generator's spec rewritten under the running plugin: another
            # generator's bytes (its own simulated root), then the watcher's again on SIGHUP
            before = inode(node.generated)
            subprocess.run(
                node.generate_argv(), env=_env(), check=True, capture_output=True, timeout=60
            )
            rewritten = inode(node.generated)
            assert rewritten is not None and rewritten != before
            assert node.watcher is not None
            node.watcher.send_signal(signal.SIGHUP)
            until(lambda: inode(node.generated) != rewritten, "the watcher's rewrite on SIGHUP")

            sampler.settle(started, time.monotonic())
        diagnosis = node.logs()

    samples = sampler.samples
    assert samples[-1].at - started >= WINDOW
    assert samples[0].at < registered or order == "plugin-first"
    twice = [(round(s.at - started, 3), sorted(s.conflicts & names)) for s in samples]
    twice = [t for t in twice if t[1]]
    assert not twice, f"defined twice (seconds, names): {twice[:5]}\n{diagnosis}"
    after = [s for s in samples if s.at >= registered]
    assert len(after) >= SETTLED_SAMPLES
    unresolved = [(round(s.at - started, 3), sorted(names - s.listed)) for s in after]
    unresolved = [u for u in unresolved if u[1]]
    assert not unresolved, f"not listed once (seconds, names): {unresolved[:5]}\n{diagnosis}"
    # what the generator wrote is listed too: its index names and `all`
    assert {f"{GPU}=0", f"{GPU}=all"} <= samples[-1].listed
    # a name stays with whoever defined it first (docs/cdi.md)
    held = defined_names(node.own) if node.own.exists() else set()
    assert held in (set(), set(names))
    assert not held & defined_names(node.generated)
    if order != "together":
        assert held == (set(names) if order == "plugin-first" else set())


OLD, NEW = "550.54.15", "560.35.03"
UUIDS = ("GPU-6a8e6f4e-0b1c-4d2e-9f3a-1b2c3d4e5f60", "GPU-7b9f7a5f-1c2d-4e3f-8a4b-2c3d4e5f6a71")


def two_gpus(path: Path, driver: str) -> Path:
    path.write_text(
        f'driver: "{driver}"\ngpus:\n  - model: A100-SXM4-40GB\n    count: 2\n'
        f"    uuids: [{', '.join(UUIDS)}]\n"
    )
    return path


def test_driver_upgrade_under_both_daemons_keeps_each_name_once(tmp_path: Path) -> None:
    """In process, over one simulated node: the plugin first (so it holds the UUID names),
    then the generator; then the driver is upgraded under both (the simulated machine
    swapped for one with a newer driver, the same GPUs), so that each rewrites its file
    for the new driver: the plugin after its node check, the generator at its next pass.
    """
    from cdi import run
    from cdi.cli import GenerateSettings
    from deviceplugin.cli import parse
    from deviceplugin.daemon import Daemon
    from nvlib import sim
    from nvlib.signals import Signals

    spec_dir = tmp_path / "cdi"
    own, generated = spec_dir / "nvidia-device-plugin.yaml", spec_dir / "nvidia.yaml"
    old = two_gpus(tmp_path / "old.yaml", OLD)
    new = two_gpus(tmp_path / "new.yaml", NEW)
    root = tmp_path / "node"  # both simulations write the same tree: both drivers' files
    simulation = sim.activate(old, root=root)
    argv = [
        "--nvml-mock", str(old),
        "--kubelet-socket", str(tmp_path / "device-plugins" / "kubelet.sock"),
        "--cdi-spec-dir", str(spec_dir),
        "--device-list-strategy", "cdi-cri",
    ]  # fmt: skip
    settings = GenerateSettings(
        output=str(generated), nvml_mock=str(old), hook_path="/usr/bin/nvidia-cdi-hook",
        interval_ns=50_000_000,
    )  # fmt: skip
    names = frozenset(f"{GPU}={u}" for u in UUIDS)
    with ExitStack() as stack:
        kubelet = stack.enter_context(KubeletDouble(tmp_path / "device-plugins"))
        daemon = Daemon(argv, {}, parse(argv, {}))
        daemon.node_check_seconds = 0.2
        plugin_control, watch_control = Signals(), run.WatchControl()
        threads = [
            threading.Thread(target=daemon.run, args=(plugin_control,)),
            threading.Thread(target=run.watch, args=(settings,), kwargs={"control": watch_control}),
        ]
        stack.callback(lambda: [t.join(10) for t in threads])
        stack.callback(lambda: plugin_control.send(signal.SIGTERM))
        stack.callback(watch_control.stop)
        stack.callback(lambda: sim.active() and sim.active().deactivate())  # type: ignore[union-attr]
        threads[0].start()
        registered = kubelet.wait_registration(GPU, timeout=START_TIMEOUT).at
        with Sampler(spec_dir) as sampler:
            started = time.monotonic()
            threads[1].start()
            until(generated.exists, "the generator's spec")
            assert f"libcuda.so.{OLD}" in own.read_text()
            simulation.deactivate()
            # the driver upgraded: its files in place, then NVML answers with its version
            assert sim.activate(new, root=root).driver_root.is_dir()
            for path in (own, generated):
                until(lambda p=path: f"libcuda.so.{NEW}" in p.read_text(), f"{path.name} rewritten")
            sampler.settle(started, time.monotonic())
    assert all(not t.is_alive() for t in threads)
    samples = sampler.samples
    assert samples[-1].at - started >= WINDOW and len(samples) >= SETTLED_SAMPLES
    assert samples[0].at >= registered
    bad = [(round(s.at - started, 3), sorted(names - s.listed)) for s in samples]
    bad = [b for b in bad if b[1]]
    assert not bad, f"not listed once (seconds, names): {bad[:5]}"
    assert {f"{GPU}=0", f"{GPU}=all"} <= samples[-1].listed
