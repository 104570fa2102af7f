"""Health checking on the simulator (docs/deviceplugin.md#health), faults injected at run time.

Matrix: a critical XID marks every replica of its GPU (upstream marks one) and nothing
else, within one second; default-ignored XIDs and DP_ENABLE_HEALTHCHECKS; MIG events
for one GPU/compute instance and for the whole GPU; a GPU falling off the bus; the
opt-in recovery after a quiet period, and none for a GPU still lost; a failing event
wait, and one on NVML shut down (nothing marked); a GPU whose event registration fails
or is not supported. NodeHealth: a successor monitor starts with the marks (a MIG
instance's too, seen by a full GPU), recovers on the time of the fault, and the scope
table of which device an event concerns.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence

import pytest

from deviceplugin.devices import build_device_map
from deviceplugin.health import HealthMonitor, Watched
from deviceplugin.nodehealth import WHOLE_GPU, GpuFault, NodeHealth
from deviceplugin.xids import XidPolicy
from nvlib import sim
from nvlib.config import Sharing
from nvlib.discover import discover
from nvlib.migcaps import read_mig_minors

try:
    from nvlib.sim import Simulation
except ImportError:  # pragma: no cover - the simulator exports it lazily
    Simulation = object  # type: ignore[assignment,misc]


class Sink:
    """A plugin stand-in: records health reports and lets a test wait for one."""

    resource_name = "nvidia.com/gpu"

    def __init__(self) -> None:
        self.health: dict[str, bool] = {}
        self.reports: list[tuple[float, tuple[str, ...], bool]] = []
        self._changed = threading.Condition()

    def set_health(self, device_ids: Sequence[str], healthy: bool) -> None:
        with self._changed:
            self.reports.append((time.monotonic(), tuple(device_ids), healthy))
            self.health.update(dict.fromkeys(device_ids, healthy))
            self._changed.notify_all()

    def wait(self, ids: Sequence[str], healthy: bool, timeout: float = 10.0) -> float:
        """When every one of `ids` reached `healthy`."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not all(self.health.get(i) is healthy for i in ids):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{ids} not {healthy}: {self.health}")
                self._changed.wait(left)
            return time.monotonic()

    def unhealthy(self) -> set[str]:
        return {i for i, ok in self.health.items() if not ok}


def until(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def event_waits(simulation: object) -> int:
    """How many event waits the monitor began (the simulator counts NVML calls)."""
    return simulation.nvml_calls().get("nvmlEventSetWait_v2", 0)  # type: ignore[attr-defined,no-any-return]


def monitor_for(
    simulation: object,
    mig_strategy: str = "none",
    replicas: int = 0,
    environ: dict[str, str] | None = None,
    recovery: float | None = None,
    node: NodeHealth | None = None,
) -> tuple[HealthMonitor, Sink, list[list[str]]]:
    """A started monitor over the simulated machine; device IDs grouped per GPU."""
    root = simulation.root  # type: ignore[attr-defined]
    machine = discover(root, "")
    sharing = Sharing()
    if replicas:
        from nvlib.config import ReplicatedResource, ReplicatedResources

        sharing = Sharing(
            time_slicing=ReplicatedResources([ReplicatedResource("nvidia.com/gpu", replicas)])
        )
    built = build_device_map(machine, mig_strategy, sharing, read_mig_minors(root))
    sink = Sink()
    devices = [d for r in built.resources for d in r.devices]
    watched = [Watched(d.id, d.gpu_uuid, d.mig, sink) for d in devices]
    monitor = HealthMonitor(
        watched, XidPolicy.from_environ(environ or {}), recovery_period=recovery, node=node
    )
    monitor.start()
    per_gpu = [[d.id for d in devices if d.gpu_index == g.index] for g in machine.gpus]
    return monitor, sink, per_gpu


@pytest.fixture
def dgx() -> Iterator[object]:
    with sim.activate("dgx-a100") as simulation:
        yield simulation


@pytest.fixture
def dgx_mig() -> Iterator[object]:
    with sim.activate("dgx-a100-mig") as simulation:
        yield simulation


def test_xid_marks_every_replica_within_a_second(dgx: object) -> None:
    monitor, sink, per_gpu = monitor_for(dgx, replicas=4)
    try:
        start = time.monotonic()
        dgx.inject_xid(3, 48)  # type: ignore[attr-defined]
        # docs' promise: within 1 s; measured 0.0001-0.0003 s (5 runs)
        assert sink.wait(per_gpu[3], healthy=False) - start < 1.0
        assert sink.unhealthy() == set(per_gpu[3])
        assert len(per_gpu[3]) == 4
    finally:
        monitor.stop(wait=True)


@pytest.mark.parametrize(
    ("environ", "xid", "marked"),
    [
        pytest.param({}, 13, False, id="default-ignored"),
        pytest.param({}, 79, True, id="critical"),
        pytest.param({"DP_ENABLE_HEALTHCHECKS": "13"}, 13, True, id="enabled"),
        pytest.param({"DP_DISABLE_HEALTHCHECKS": "79"}, 79, False, id="disabled"),
        pytest.param(
            {"DP_DISABLE_HEALTHCHECKS": "all", "DP_ENABLE_HEALTHCHECKS": "48"}, 48, True,
            id="all-but-enabled",
        ),
    ],
)  # fmt: skip
def test_ignore_lists(dgx: object, environ: dict[str, str], xid: int, marked: bool) -> None:
    monitor, sink, per_gpu = monitor_for(dgx, environ=environ)
    try:
        dgx.inject_xid(1, xid)  # type: ignore[attr-defined]
        dgx.inject_xid(2, 48 if not marked else xid)  # type: ignore[attr-defined]
        sink.wait(per_gpu[2], healthy=False)  # events are handled in order
        assert (per_gpu[1][0] in sink.unhealthy()) is marked
    finally:
        monitor.stop(wait=True)


def test_mig_event_marks_only_its_instance(dgx_mig: object) -> None:
    monitor, sink, per_gpu = monitor_for(dgx_mig, mig_strategy="mixed")
    try:
        dgx_mig.inject_xid(2, 48, mig=1)  # type: ignore[attr-defined]
        sink.wait([per_gpu[2][1]], healthy=False)
        assert sink.unhealthy() == {per_gpu[2][1]}
        dgx_mig.inject_xid(5, 48)  # the whole GPU: all its MIG devices  # type: ignore[attr-defined]
        sink.wait(per_gpu[5], healthy=False)
        assert sink.unhealthy() == {per_gpu[2][1], *per_gpu[5]}
        assert len(per_gpu[5]) == 4
    finally:
        monitor.stop(wait=True)


def test_lost_gpu_is_marked_alone_and_recovers_only_when_back(
    dgx: object, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG", logger="deviceplugin.health")
    monitor, sink, per_gpu = monitor_for(dgx, recovery=0.2)
    try:
        dgx.fall_off_bus(6)  # type: ignore[attr-defined]
        sink.wait(per_gpu[6], healthy=False)
        # Quiet for longer than the period, the monitor tried to bring it back: its
        # probe failed, the GPU still being off the bus; and the monitor went on to
        # its next event wait, past any report that probe could have led to.
        lost = f"probe of {dgx.profile.gpus[6].uuid} failed"  # type: ignore[attr-defined]
        until(lambda: lost in caplog.text)
        target = event_waits(dgx) + 2
        until(lambda: event_waits(dgx) >= target)
        assert sink.unhealthy() == set(per_gpu[6])
        dgx.recover(6)  # type: ignore[attr-defined]
        sink.wait(per_gpu[6], healthy=True, timeout=3.0)
        assert sink.unhealthy() == set()
    finally:
        monitor.stop(wait=True)


def test_recovery_waits_for_a_quiet_period(dgx: object) -> None:
    monitor, sink, per_gpu = monitor_for(dgx, replicas=2, recovery=0.5)
    try:
        dgx.inject_xid(0, 48)  # type: ignore[attr-defined]
        marked = sink.wait(per_gpu[0], healthy=False)
        time.sleep(0.3)
        dgx.inject_xid(0, 48)  # a second fault restarts the quiet period  # type: ignore[attr-defined]
        back = sink.wait(per_gpu[0], healthy=True, timeout=3.0)
        assert back - marked >= 0.3 + 0.5 - 0.05
    finally:
        monitor.stop(wait=True)


def test_without_recovery_unhealthy_is_permanent(dgx: object) -> None:
    monitor, sink, per_gpu = monitor_for(dgx)
    try:
        dgx.inject_xid(4, 48)  # type: ignore[attr-defined]
        sink.wait(per_gpu[4], healthy=False)
        # Four more event waits began: the three before them timed out, each followed
        # by the monitor's recovery step, which with no period brings nothing back.
        target = event_waits(dgx) + 4
        until(lambda: event_waits(dgx) >= target)
        assert sink.unhealthy() == set(per_gpu[4])
    finally:
        monitor.stop(wait=True)


def test_failing_wait_marks_all_when_every_gpu_answers(dgx: object) -> None:
    monitor, sink, per_gpu = monitor_for(dgx)
    try:
        dgx.fail_call("nvmlEventSetWait_v2", "UNKNOWN")  # type: ignore[attr-defined]
        sink.wait([i for ids in per_gpu for i in ids], healthy=False)
    finally:
        monitor.stop(wait=True)


def test_registration_failure_marks_that_gpu(dgx: object) -> None:
    dgx.fail_call("nvmlDeviceGetSupportedEventTypes", "UNKNOWN", gpu=1)  # type: ignore[attr-defined]
    dgx.fail_call("nvmlDeviceRegisterEvents", "NOT_SUPPORTED", gpu=2)  # type: ignore[attr-defined]
    monitor, sink, per_gpu = monitor_for(dgx)
    try:
        assert sink.unhealthy() == set(per_gpu[1])  # NOT_SUPPORTED only logs, as upstream
    finally:
        monitor.stop(wait=True)


# -- health outlives a monitor (NodeHealth) ----------------------------------------------


def test_a_successor_monitor_starts_with_the_marks(dgx: object) -> None:
    """A restart's monitor reports the devices of a GPU marked before, before it
    returns from start (so the first ListAndWatch list already says so)."""
    node = NodeHealth()
    first, sink, per_gpu = monitor_for(dgx, node=node)
    dgx.inject_xid(3, 48)  # type: ignore[attr-defined]
    sink.wait(per_gpu[3], healthy=False)
    first.stop(wait=True)
    second, successor, per_gpu = monitor_for(dgx, replicas=2, node=node)
    try:
        assert successor.unhealthy() == set(per_gpu[3]) and len(per_gpu[3]) == 2
    finally:
        second.stop(wait=True)


def test_a_mig_instance_mark_concerns_the_full_gpu_after_a_strategy_change(
    dgx_mig: object,
) -> None:
    node = NodeHealth()
    first, sink, per_gpu = monitor_for(dgx_mig, mig_strategy="mixed", node=node)
    dgx_mig.inject_xid(2, 48, mig=1)  # type: ignore[attr-defined]
    sink.wait([per_gpu[2][1]], healthy=False)
    first.stop(wait=True)
    second, successor, per_gpu = monitor_for(dgx_mig, mig_strategy="none", node=node)
    try:
        assert successor.unhealthy() == set(per_gpu[2])  # the full GPU 2
    finally:
        second.stop(wait=True)


def test_a_successor_recovers_on_the_time_of_the_fault(dgx: object) -> None:
    node = NodeHealth()
    first, sink, per_gpu = monitor_for(dgx, recovery=1.0, node=node)
    dgx.inject_xid(0, 48)  # type: ignore[attr-defined]
    marked = sink.wait(per_gpu[0], healthy=False)
    first.stop(wait=True)
    time.sleep(max(0.0, marked + 0.5 - time.monotonic()))
    second, successor, _ = monitor_for(dgx, recovery=1.0, node=node)
    try:
        assert successor.unhealthy() == set(per_gpu[0])
        back = successor.wait(per_gpu[0], healthy=True, timeout=3.0)
        # Measured 1.003-1.012 s (5 runs): late by 0.012 s at most, the bound allows
        # 0.4 s; counted from the successor's start it would be 1.5 s.
        assert 1.0 - 0.05 <= back - marked < 1.4
        assert node.fault(dgx.profile.gpus[0].uuid) is None  # type: ignore[attr-defined]
    finally:
        second.stop(wait=True)


def test_nvml_shut_down_under_the_monitor_marks_nothing_and_it_resumes(
    dgx: object, caplog: pytest.LogCaptureFixture
) -> None:
    """The simulated machine replaced by an identical one: the wait answers
    Uninitialized, then the old set's handle means nothing to the new NVML. No GPU is
    marked for it, and the monitor registers again and sees the next XID."""
    caplog.set_level("INFO")
    monitor, sink, per_gpu = monitor_for(dgx)
    try:
        dgx.deactivate()  # type: ignore[attr-defined]
        with sim.activate("dgx-a100") as again:
            deadline = time.monotonic() + 5
            while "Health monitoring resumed with a new event set" not in caplog.text:
                assert time.monotonic() < deadline, caplog.text
                time.sleep(0.01)
            assert "NVML was shut down, no device marked" in caplog.text
            again.inject_xid(3, 48)
            sink.wait(per_gpu[3], healthy=False)
            assert sink.unhealthy() == set(per_gpu[3])
    finally:
        monitor.stop(wait=True)


@pytest.mark.parametrize(
    ("events", "mig", "unhealthy"),
    [
        pytest.param([], None, False, id="never-marked"),
        pytest.param([WHOLE_GPU], None, True, id="gpu-event-full-gpu"),
        pytest.param([WHOLE_GPU], (1, 0), True, id="gpu-event-mig-device"),
        pytest.param([(1, 0)], (1, 0), True, id="its-instance"),
        pytest.param([(1, 0)], (2, 0), False, id="another-instance"),
        pytest.param([(1, 0)], None, True, id="instance-event-full-gpu"),
        pytest.param([(2, 0), (1, 0)], (1, 0), True, id="instances-accumulate"),
    ],
)
def test_node_health_scopes(
    events: list[tuple[int, int]], mig: tuple[int, int] | None, unhealthy: bool
) -> None:
    node = NodeHealth()
    for at, scope in enumerate(events):
        node.record("GPU-a", scope, float(at))
    assert node.unhealthy("GPU-a", mig) is unhealthy
    assert not node.unhealthy("GPU-b", mig)  # another UUID: another GPU


def test_node_health_clears_only_a_quiet_gpu() -> None:
    node = NodeHealth()
    node.record("GPU-a", WHOLE_GPU, 10.0)
    node.record("GPU-a", (1, 0), 5.0)  # reported late: the last event stays at 10
    assert node.fault("GPU-a") == GpuFault(10.0, frozenset({WHOLE_GPU, (1, 0)}))
    assert not node.clear("GPU-a", quiet_since=9.0)  # an event after the quiet point
    assert node.unhealthy("GPU-a", None)
    assert node.clear("GPU-a", quiet_since=10.0)
    assert node.fault("GPU-a") is None and node.clear("GPU-a", quiet_since=0.0)
