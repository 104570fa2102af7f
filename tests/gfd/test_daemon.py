"""gfd.daemon's loop on a clock the test controls, against the fake API server.

`FakeClock` gives the loop its monotonic time and its waits, and schedule its wall
clock: time moves only when the loop waits, by exactly what it asked for, so ten
minutes of an outage run in a second or two and every deadline is exact. The labels
come from the simulator (t4) and go to a real output: the NodeFeature object on the
fake API server (tests/gfd/kubefake.py), reached through its NetworkLink for refused
connections and timeouts, or the feature file.

Matrix: an API outage of 10 minutes (60 passes at a 10 s interval, twelve times the
5-failure limit) of each kind (503, 500, 429 with Retry-After, 409 on every PUT,
connection refused, timeout) never ends the loop, spaces its attempts by the backoff,
and the first attempt after recovery publishes the labels that changed meanwhile; an
API down from the first pass; oneshot with the API down; `auto` whose discovery gets
no answer writes the file, asks again at each pass, and hands over to the NodeFeature
when it answers; a wall clock stepped back an hour (or forward) keeps the cadence.
"""

from __future__ import annotations

import datetime
import itertools
import logging
import signal
import threading
import time
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import kmock
import pytest
import schedule

from gfd.cli import parse
from gfd.daemon import Labeller, serve
from gfd.outputs import Output
from gfd.outputs.featurefile import FeatureFile
from gfd.outputs.nodefeature import NodeFeatureOutput
from gfd.setup import build_output
from nvlib import host, sim
from nvlib.signals import Signals
from tests.gfd.kubefake import FakeApiServer

NS, NODE = "gpu-operator", "node-1"
NAME = f"nvidia-features-for-{NODE}"
NF_PATH = f"/apis/nfd.k8s-sigs.io/v1alpha1/namespaces/{NS}/nodefeatures/{NAME}"
DISCOVERY = "/apis/nfd.k8s-sigs.io/v1alpha1"
TIMESTAMP = "nvidia.com/gfd.timestamp"


class FakeClock:
    """Monotonic and wall time that move only when the loop waits; the wall one can step.

    `on_tick` runs after each wait that moved time: where a test changes the world.
    """

    def __init__(self) -> None:
        self.now = 0.0
        self.wall_offset = 0.0
        self.on_tick: Callable[[], None] = lambda: None
        self._epoch = datetime.datetime(2025, 1, 1)
        self._waits = 0

    def monotonic(self) -> float:
        return self.now

    def wall(self) -> datetime.datetime:
        return self._epoch + datetime.timedelta(seconds=self.now + self.wall_offset)

    def wait(self, signals: Signals, timeout: float | None) -> bool:
        self._waits += 1
        assert self._waits < 100_000, "the loop spins without moving time"
        if not signals.wait(0):
            assert timeout is not None, "the loop would wait forever: nothing is due"
            self.now += timeout
            self.on_tick()
        return signals.wait(0)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """A FakeClock, also as the wall clock schedule reads (its `datetime.datetime.now`)."""
    fake = FakeClock()

    class Now(datetime.datetime):
        @classmethod
        def now(cls, tz: datetime.tzinfo | None = None) -> datetime.datetime:  # type: ignore[override]
            assert tz is None
            return fake.wall()

    shim = types.SimpleNamespace(**vars(datetime))
    shim.datetime = Now
    monkeypatch.setattr(schedule, "datetime", shim)
    return fake


@pytest.fixture
def t4() -> Iterator[sim.Simulation]:
    with sim.activate("t4") as simulation:
        yield simulation


def make_labeller(simulation: sim.Simulation, output: Output, *args: str) -> Labeller:
    settings = parse(["--node-name", NODE, "--namespace", NS, *args], {})
    machine_type_file = str(host.in_root(simulation.root, host.DEFAULT_MACHINE_TYPE_FILE))
    return Labeller(settings, output, simulation.root, machine_type_file, timestamp=1000)


def record_calls(obj: Any, method: str, clock: FakeClock) -> tuple[list[float], list[float]]:
    """Wrap `obj.method`: the times of its calls, and of those that returned."""
    calls: list[float] = []
    returned: list[float] = []
    real = getattr(obj, method)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        calls.append(clock.now)
        result = real(*args, **kwargs)
        returned.append(clock.now)
        return result

    setattr(obj, method, wrapper)
    return calls, returned


def stored_timestamp(server: FakeApiServer) -> str | None:
    obj = server.fake.nodefeature(NS, NAME)
    return None if obj is None else obj["spec"]["labels"].get(TIMESTAMP)


def fault(code: int, message: str = "injected") -> kmock.KubernetesError:
    return kmock.KubernetesError(status=code, reason="Injected", message=message, details={"x": 1})


def begin_outage(server: FakeApiServer, kind: str) -> None:
    assert server.link is not None
    if kind == "409":
        # Another writer always gets in first: every PUT conflicts, GETs work.
        server.fake.faults["PUT", NF_PATH] = fault(409, "the object has been modified")
    elif kind in ("refuse", "blackhole"):
        server.link.set(kind)
    else:
        server.fake.outage = fault(int(kind[:3]))
        server.fake.retry_after = "20" if kind == "429-retry-after-20" else None


def end_outage(server: FakeApiServer) -> None:
    assert server.link is not None
    server.fake.faults.clear()
    server.fake.outage = server.fake.retry_after = None
    server.link.set("up")


INTERVAL = 10.0
OUTAGE_START = 25.0
OUTAGE_S = 600.0
CAP_S = 60.0  # gfd.backoff.DEFAULT_POLICY.cap_s


@pytest.mark.parametrize("kind", ["503", "500", "429-retry-after-20", "409", "refuse", "blackhole"])
def test_ten_minute_api_outage_never_ends_the_loop(
    kind: str, clock: FakeClock, t4: sim.Simulation, tmp_path: Path
) -> None:
    """60 passes (12 times the 5-failure limit) during the outage: the loop keeps
    reading the devices, attempts to publish only as the backoff allows, keeps the
    last labels published, and the first attempt after recovery publishes the labels
    that changed during the outage."""
    with FakeApiServer(link=True) as server:
        config = server.write_kubeconfig(tmp_path / "kubeconfig", NS)
        # A blackholed request must time out quickly in real time (the fake clock does not
        # move meanwhile); any other kind is answered at once, and a short timeout there
        # only lets a slow moment of a loaded machine turn the first write after the
        # outage into a timeout the server had already applied (seen once in CI).
        timeout_s = 0.1 if kind == "blackhole" else 5.0
        output = NodeFeatureOutput(NODE, NS, "", config, -1, 10, request_timeout_s=timeout_s)
        labeller = make_labeller(t4, output, "--sleep-interval", f"{INTERVAL:g}s")
        attempts, published = record_calls(output, "write", clock)
        passes, _ = record_calls(labeller, "labels", clock)
        signals = Signals()
        seen: dict[str, Any] = {}

        def tick() -> None:
            if "begin" not in seen and clock.now >= OUTAGE_START:
                seen["begin"] = clock.now
                begin_outage(server, kind)
                labeller.timestamp = 2000  # a label that changes during the outage
            elif "end" not in seen and "begin" in seen and clock.now >= seen["begin"] + OUTAGE_S:
                seen["end"] = clock.now
                seen["stored_at_end"] = stored_timestamp(server)
                end_outage(server)
            elif "end" in seen and stored_timestamp(server) == "2000":
                signals.send(signal.SIGTERM)
            if clock.now > 2 * OUTAGE_S:
                signals.send(signal.SIGTERM)  # bounds a failing run

        clock.on_tick = tick
        try:
            code = serve(labeller, signals, clock, jitter=lambda: 0.5)
        finally:
            output.close()
        final = stored_timestamp(server)

    begin, end = seen["begin"], seen["end"]
    assert code == 0  # stopped by the SIGTERM, never by the failures
    assert len([t for t in passes if begin <= t < end]) == OUTAGE_S / INTERVAL
    assert seen["stored_at_end"] == "1000"  # the last labels stayed published
    during = [t for t in attempts if begin <= t < end]
    gaps = [b - a for a, b in itertools.pairwise(during)]
    floor = 20.0 if kind.startswith("429") else 0.75  # Retry-After, else the first backoff
    assert 10 <= len(during) <= 30, during  # measured: 19 (17 with Retry-After: 20)
    assert all(floor <= gap <= CAP_S for gap in gaps), gaps
    first_success = next(t for t in published if t >= end)
    assert first_success - end <= CAP_S  # measured: 32.25 s (19 s with Retry-After: 20)
    assert final == "2000"  # what changed during the outage


def test_api_down_from_the_first_pass(clock: FakeClock, t4: sim.Simulation, tmp_path: Path) -> None:
    """No pass has published yet: the process still runs, and creates the object when
    the API server answers."""
    with FakeApiServer(link=True) as server:
        assert server.link is not None
        config = server.write_kubeconfig(tmp_path / "kubeconfig", NS)
        output = NodeFeatureOutput(NODE, NS, "", config, -1, 10)
        labeller = make_labeller(t4, output, "--sleep-interval", "10s")
        attempts, published = record_calls(output, "write", clock)
        server.link.set("refuse")
        signals = Signals()

        def tick() -> None:
            if clock.now >= 300 and server.link is not None and server.link.state == "refuse":
                server.link.set("up")
            if published or clock.now > 1000:
                signals.send(signal.SIGTERM)

        clock.on_tick = tick
        try:
            code = serve(labeller, signals, clock, jitter=lambda: 0.0)
        finally:
            output.close()
        assert code == 0
        assert attempts[0] == 0.0 and len([t for t in attempts if t < 300]) >= 5
        assert 300 <= published[0] <= 300 + CAP_S
        assert stored_timestamp(server) == "1000"


def test_oneshot_with_the_api_down_exits_1(
    clock: FakeClock, t4: sim.Simulation, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with FakeApiServer() as server:
        config = server.write_kubeconfig(tmp_path / "kubeconfig", NS)
        output = NodeFeatureOutput(NODE, NS, "", config, -1, 10)
        server.fake.outage = fault(503)
        try:
            code = serve(make_labeller(t4, output, "--oneshot"), Signals(), clock)
        finally:
            output.close()
    assert code == 1
    assert "The labels could not be published" in caplog.text


def test_auto_asks_again_and_hands_over_to_the_nodefeature(
    clock: FakeClock, t4: sim.Simulation, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Discovery answers 503 for the first passes: the feature file carries the labels
    meanwhile; the first pass after discovery answers creates the object, then removes
    the file, so the node is left with one source."""
    caplog.set_level(logging.INFO, logger="gfd")
    out = tmp_path / "features.d" / "gfd"
    out.parent.mkdir()
    with FakeApiServer() as server:
        config = server.write_kubeconfig(tmp_path / "kubeconfig", NS)
        server.fake.faults["GET", DISCOVERY] = fault(503)
        # The file named in a config file, not by --output-file: `auto` asks the API.
        (tmp_path / "c.yaml").write_text(f"version: v1\nflags:\n  gfd:\n    outputFile: {out}\n")
        args = ("--kubeconfig", config, "--sleep-interval", "10s", "--config-file")
        labeller = make_labeller(t4, FeatureFile("-"), *args, str(tmp_path / "c.yaml"))
        labeller.output = output = build_output(labeller.settings, "undecided", {})
        signals = Signals()
        sources: list[tuple[float, bool, bool]] = []  # (time, file?, object?) between passes

        def tick() -> None:
            sources.append((clock.now, out.exists(), server.fake.nodefeature(NS, NAME) is not None))
            if clock.now >= 25:
                server.fake.faults.clear()
            if clock.now >= 60:
                signals.send(signal.SIGTERM)

        clock.on_tick = tick
        try:
            code = serve(labeller, signals, clock)
        finally:
            output.close()
        probes = [call for call in server.fake.calls("GET", DISCOVERY) if call[1] == DISCOVERY]
    assert code == 0
    assert [(t, f, o) for t, f, o in sources if t <= 30] == [
        (t, True, False) for t in (10.0, 20.0, 30.0)
    ]  # the file meanwhile (each tick comes before that time's pass)
    assert [(t, f, o) for t, f, o in sources if t > 30] == [
        (t, False, True) for t in (40.0, 50.0, 60.0)
    ]  # from the pass at 30 s on: the object, and no file
    assert len(probes) == 4  # at 0, 10 and 20 s (503), at 30 s (answered); none after
    assert "Removed output file" in caplog.text


@pytest.mark.parametrize("step_s", [-3600.0, 3600.0], ids=["back-1h", "forward-1h"])
def test_wall_clock_step_keeps_the_cadence(
    step_s: float, clock: FakeClock, t4: sim.Simulation, tmp_path: Path
) -> None:
    """schedule reads the wall clock: stepped back an hour it would wait an hour and
    a minute for the next pass. The monotonic deadline runs it one interval after the
    last one. A step forward makes schedule see the pass overdue: still one pass, on
    time, and the cadence goes on."""
    output = FeatureFile(str(tmp_path / "gfd"))
    labeller = make_labeller(t4, output, "--sleep-interval", "60s")
    passes, _ = record_calls(labeller, "labels", clock)
    signals = Signals()

    def tick() -> None:
        if len(passes) == 3 and clock.wall_offset == 0:
            clock.wall_offset = step_s
        if len(passes) >= 7 or clock.now > 10_000:
            signals.send(signal.SIGTERM)

    clock.on_tick = tick
    assert serve(labeller, signals, clock) == 0
    gaps = [round(b - a, 6) for a, b in itertools.pairwise(passes)]
    assert gaps == [60.0] * 6  # stepped back without the guard: [60, 60, 3660, 60, ...]


def test_a_stop_while_a_reloads_first_pass_hangs_ends_the_loop(
    clock: FakeClock, t4: sim.Simulation, tmp_path: Path
) -> None:
    """After a reload the first pass runs at once, off the loop's thread. A stop taken
    while it hangs in NVML ends the loop, even with an infinite interval, where nothing
    else would wake it (the FakeClock fails a wait that would never end)."""
    labeller = make_labeller(t4, FeatureFile(str(tmp_path / "gfd")), "--sleep-interval", "infinite")
    t4.hang_call("nvmlDeviceGetCudaComputeCapability")
    signals = Signals()
    codes: list[int | None] = []
    thread = threading.Thread(
        target=lambda: codes.append(serve(labeller, signals, clock, reloaded=True)),
        daemon=True,
    )
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not t4.nvml_calls().get("nvmlDeviceGetCudaComputeCapability"):
            assert time.monotonic() < deadline, "the pass never reached the hung call"
            time.sleep(0.01)
        signals.send(signal.SIGTERM)
        thread.join(10)
        assert not thread.is_alive() and codes == [0]
    finally:
        t4.clear_faults()
