"""Fault injection, seen the way the device plugin's health checker sees it.

Matrix: XID injected at runtime and scheduled by a profile (delivered by
nvmlEventSetWait_v2 within its wait, with GPU-instance ids 0xFFFFFFFF for a full GPU
and the MIG ids for a MIG device); the wait times out and lets other threads run;
a set registered after the XID does not get it; a GPU off the bus (GPU_IS_LOST on its
handles, XID 79, recover); a failing call (everywhere, on one GPU, scheduled, on
nvmlInit); clear_faults; a hanging call (blocks only its caller until cleared or
deactivated, or for a duration on every call, on one GPU, scheduled). Timings use
short waits and generous bounds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pynvml
import pytest

from nvlib import sim

XID = pynvml.nvmlEventTypeXidCriticalError
ALL_INSTANCES = 0xFFFFFFFF


@pytest.fixture
def dgx() -> Iterator[sim.Simulation]:
    with sim.activate("dgx-a100-mig") as simulation:
        pynvml.nvmlInit()
        yield simulation
        pynvml.nvmlShutdown()
        assert simulation.internal_errors == []


def watch(*indices: int) -> object:
    events = pynvml.nvmlEventSetCreate()
    for i in indices:
        handle = pynvml.nvmlDeviceGetHandleByIndex(i)
        supported = pynvml.nvmlDeviceGetSupportedEventTypes(handle)
        assert supported & XID
        pynvml.nvmlDeviceRegisterEvents(handle, XID & supported, events)
    return events


def test_wait_times_out_without_holding_the_gil(dgx: sim.Simulation) -> None:
    events = watch(0)
    spins = 0
    stop = threading.Event()

    def spin() -> None:
        nonlocal spins
        while not stop.is_set():
            spins += 1

    thread = threading.Thread(target=spin)
    thread.start()
    started = time.monotonic()
    with pytest.raises(pynvml.NVMLError_Timeout):
        pynvml.nvmlEventSetWait_v2(events, 200)
    elapsed = time.monotonic() - started
    stop.set()
    thread.join()
    assert 0.19 <= elapsed < 2  # measured 0.2002 s (5 runs)
    assert spins > 1000  # the other thread ran while the wait blocked
    pynvml.nvmlEventSetFree(events)


def test_runtime_xid_wakes_a_waiting_thread(dgx: sim.Simulation) -> None:
    events = watch(0, 3)
    timer = threading.Timer(0.1, dgx.inject_xid, args=(3, 48))
    timer.start()
    started = time.monotonic()
    data = pynvml.nvmlEventSetWait_v2(events, 5000)
    assert time.monotonic() - started < 2  # measured 0.100-0.101 s (5 runs)
    timer.join()
    assert data.eventType == XID
    assert data.eventData == 48
    assert (data.gpuInstanceId, data.computeInstanceId) == (ALL_INSTANCES, ALL_INSTANCES)
    assert pynvml.nvmlDeviceGetIndex(data.device) == 3
    pynvml.nvmlEventSetFree(events)


def test_xid_on_a_mig_device_carries_its_instance_ids(dgx: sim.Simulation) -> None:
    events = watch(1)
    dgx.inject_xid(1, 94, mig=2)
    data = pynvml.nvmlEventSetWait_v2(events, 0)
    mig = pynvml.nvmlDeviceGetMigDeviceHandleByIndex(pynvml.nvmlDeviceGetHandleByIndex(1), 2)
    assert data.gpuInstanceId == pynvml.nvmlDeviceGetGpuInstanceId(mig)
    assert data.computeInstanceId == pynvml.nvmlDeviceGetComputeInstanceId(mig)
    assert pynvml.nvmlDeviceGetIndex(data.device) == 1  # events name the parent GPU
    pynvml.nvmlEventSetFree(events)


def test_xid_reaches_only_sets_registered_for_that_gpu_before_it(dgx: sim.Simulation) -> None:
    gpu0, gpu1 = watch(0), watch(1)
    dgx.inject_xid(0, 79)
    late = watch(0)
    assert pynvml.nvmlEventSetWait_v2(gpu0, 0).eventData == 79
    for events in (gpu1, late):
        with pytest.raises(pynvml.NVMLError_Timeout):
            pynvml.nvmlEventSetWait_v2(events, 0)


def test_scheduled_xid_arrives_within_the_wait(tmp_path: Path) -> None:
    profile = tmp_path / "flaky.yaml"
    profile.write_text("gpus: [{model: T4, count: 2}]\nfaults: [{xid: 79, gpu: 1, after: 300ms}]\n")
    before = time.monotonic()
    with sim.activate(profile) as simulation:
        pynvml.nvmlInit()
        events = watch(0, 1)
        data = pynvml.nvmlEventSetWait_v2(events, 5000)
        assert time.monotonic() - before >= 0.3  # not before its time
        assert time.monotonic() - before < 3  # measured 0.301-0.351 s (5 runs)
        assert (data.eventData, pynvml.nvmlDeviceGetIndex(data.device)) == (79, 1)
        with pytest.raises(pynvml.NVMLError_Timeout):
            pynvml.nvmlEventSetWait_v2(events, 50)  # once only
        pynvml.nvmlShutdown()
        assert simulation.internal_errors == []


def test_gpu_falls_off_the_bus_and_recovers(dgx: sim.Simulation) -> None:
    events = watch(2)
    gpu = pynvml.nvmlDeviceGetHandleByIndex(2)
    mig = pynvml.nvmlDeviceGetMigDeviceHandleByIndex(gpu, 0)
    gi = pynvml.nvmlDeviceGetGpuInstanceById(gpu, pynvml.nvmlDeviceGetGpuInstanceId(mig))
    dgx.fall_off_bus(2)
    for call in (
        lambda: pynvml.nvmlDeviceGetName(gpu),
        lambda: pynvml.nvmlDeviceGetMemoryInfo(gpu),
        lambda: pynvml.nvmlDeviceGetUUID(mig),
        lambda: pynvml.nvmlGpuInstanceGetInfo(gi),
        lambda: pynvml.nvmlDeviceGetHandleByIndex(2),
    ):
        with pytest.raises(pynvml.NVMLError_GpuIsLost):
            call()
    assert pynvml.nvmlDeviceGetCount() == 8
    assert pynvml.nvmlDeviceGetName(pynvml.nvmlDeviceGetHandleByIndex(3))  # others still answer
    assert pynvml.nvmlEventSetWait_v2(events, 0).eventData == 79  # as the driver logs it
    dgx.recover(2)
    assert pynvml.nvmlDeviceGetName(gpu) == "NVIDIA A100-SXM4-40GB"


def test_failing_calls(dgx: sim.Simulation) -> None:
    g0, g1 = (pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(2))
    dgx.fail_call("nvmlDeviceGetMemoryInfo", "UNKNOWN", gpu=0)
    with pytest.raises(pynvml.NVMLError_Unknown):
        pynvml.nvmlDeviceGetMemoryInfo(g0)
    with pytest.raises(pynvml.NVMLError_Unknown):
        pynvml.nvmlDeviceGetMemoryInfo(g0, version=pynvml.nvmlMemory_v2)  # every version
    assert pynvml.nvmlDeviceGetMemoryInfo(g1).total  # another GPU is fine
    dgx.fail_call("nvmlSystemGetDriverVersion", "NVML_ERROR_NO_PERMISSION")
    with pytest.raises(pynvml.NVMLError_NoPermission):
        pynvml.nvmlSystemGetDriverVersion()
    dgx.clear_faults()
    assert pynvml.nvmlSystemGetDriverVersion() == "550.54.15"
    assert pynvml.nvmlDeviceGetMemoryInfo(g0).total
    with pytest.raises(ValueError, match="not an NVML function"):
        dgx.fail_call("nvmlDeviceGetMemoryInf", "UNKNOWN")
    with pytest.raises(ValueError, match="not an NVML error name"):
        dgx.fail_call("nvmlDeviceGetName", "BROKEN")
    with pytest.raises(ValueError, match="no GPU 8"):
        dgx.inject_xid(8, 79)


def test_init_can_fail() -> None:
    with sim.activate("t4") as simulation:
        simulation.fail_call("nvmlInit", "DRIVER_NOT_LOADED")
        with pytest.raises(pynvml.NVMLError_DriverNotLoaded):
            pynvml.nvmlInit()
        with pytest.raises(pynvml.NVMLError_Uninitialized):
            pynvml.nvmlDeviceGetCount()  # the failed init counted for nothing


def test_profile_scheduled_faults(tmp_path: Path) -> None:
    profile = tmp_path / "doomed.yaml"
    profile.write_text(
        "gpus: [{model: A100-SXM4-40GB, count: 2}]\n"
        "faults:\n"
        "  - {call: nvmlDeviceGetMemoryInfo, gpu: 0, error: UNKNOWN}\n"
        "  - {fall_off_bus: true, gpu: 1, after: 0.5}\n"
    )
    before = time.monotonic()
    with sim.activate(profile) as simulation:
        activated = time.monotonic()
        pynvml.nvmlInit()
        g0, g1 = (pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(2))
        with pytest.raises(pynvml.NVMLError_Unknown):
            pynvml.nvmlDeviceGetMemoryInfo(g0)
        try:
            assert pynvml.nvmlDeviceGetName(g1)
        except pynvml.NVMLError_GpuIsLost:
            assert time.monotonic() - before >= 0.5  # a slow machine got past the due time
        time.sleep(max(0.0, activated + 0.55 - time.monotonic()))
        with pytest.raises(pynvml.NVMLError_GpuIsLost):
            pynvml.nvmlDeviceGetName(g1)
        simulation.clear_faults()
        assert pynvml.nvmlDeviceGetName(g1) and pynvml.nvmlDeviceGetMemoryInfo(g0).total
        pynvml.nvmlShutdown()


def test_deactivate_releases_a_waiter() -> None:
    simulation = sim.activate("t4")
    pynvml.nvmlInit()
    events = watch(0)
    outcome: list[object] = []

    def wait() -> None:
        try:
            pynvml.nvmlEventSetWait_v2(events, 10_000)
        except pynvml.NVMLError as err:
            outcome.append(err)

    thread = threading.Thread(target=wait)
    thread.start()
    deadline = time.monotonic() + 20
    while simulation.nvml_calls().get("nvmlEventSetWait_v2", 0) == 0:  # it is in
        assert time.monotonic() < deadline
        time.sleep(0.01)
    simulation.deactivate()
    thread.join(2)  # measured: released 0.4-0.8 ms after the deactivation (5 runs)
    assert not thread.is_alive()
    assert isinstance(outcome[0], pynvml.NVMLError_Uninitialized)


# -- hanging calls ----------------------------------------------------------------------


def call_in_thread(call: Callable[[], object]) -> tuple[threading.Thread, list[object]]:
    """Run `call` in a daemon thread; its result or NVMLError lands in the list."""
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(call())
        except pynvml.NVMLError as err:
            outcome.append(err)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def test_a_hung_call_blocks_only_its_caller_until_cleared(dgx: sim.Simulation) -> None:
    dgx.hang_call("nvmlDeviceGetHandleByIndex")
    thread, outcome = call_in_thread(lambda: pynvml.nvmlDeviceGetHandleByIndex(1))
    deadline = time.monotonic() + 20
    while dgx.nvml_calls().get("nvmlDeviceGetHandleByIndex_v2", 0) == 0:  # it is in
        assert time.monotonic() < deadline
        time.sleep(0.01)
    # The hung call holds no lock: other calls, other threads' faults and waits go on.
    gpu = pynvml.nvmlDeviceGetHandleByUUID(dgx.profile.gpus[0].uuid)
    assert pynvml.nvmlDeviceGetName(gpu) == "NVIDIA A100-SXM4-40GB"
    events = watch()
    dgx.inject_xid(0, 48)
    assert thread.is_alive() and outcome == []
    dgx.clear_faults()
    thread.join(5)
    assert not thread.is_alive()
    assert pynvml.nvmlDeviceGetIndex(outcome[0]) == 1  # then it answers
    pynvml.nvmlEventSetFree(events)


def test_a_hang_with_a_duration_answers_late(dgx: sim.Simulation) -> None:
    dgx.hang_call("nvmlDeviceGetCount", seconds=0.3)
    started = time.monotonic()
    assert pynvml.nvmlDeviceGetCount() == 8
    assert 0.3 <= time.monotonic() - started < 3  # measured 0.300-0.304 s (5 runs)
    started = time.monotonic()
    assert pynvml.nvmlDeviceGetCount() == 8  # every call, not the first only
    assert 0.3 <= time.monotonic() - started < 3


def test_a_hang_on_one_gpu(dgx: sim.Simulation) -> None:
    dgx.hang_call("nvmlDeviceGetName", gpu=3, seconds=0.3)
    started = time.monotonic()
    pynvml.nvmlDeviceGetName(pynvml.nvmlDeviceGetHandleByIndex(2))
    other = time.monotonic() - started
    pynvml.nvmlDeviceGetName(pynvml.nvmlDeviceGetHandleByIndex(3))
    assert time.monotonic() - started - other >= 0.3
    assert other < 0.3  # measured 0.0001-0.0002 s (5 runs)


def test_deactivate_releases_a_hung_call() -> None:
    simulation = sim.activate("t4")
    pynvml.nvmlInit()
    simulation.hang_call("nvmlSystemGetDriverVersion")
    thread, outcome = call_in_thread(pynvml.nvmlSystemGetDriverVersion)
    deadline = time.monotonic() + 20
    while simulation.nvml_calls().get("nvmlSystemGetDriverVersion", 0) == 0:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    simulation.deactivate()
    thread.join(2)
    assert not thread.is_alive()
    assert isinstance(outcome[0], pynvml.NVMLError_Uninitialized)


def test_profile_scheduled_hang(tmp_path: Path) -> None:
    profile = tmp_path / "wedged.yaml"
    profile.write_text(
        "gpus: [{model: T4}]\n"
        "faults: [{call: nvmlDeviceGetHandleByIndex, hang: 300ms, after: 200ms}]\n"
    )
    with sim.activate(profile) as simulation:
        activated = time.monotonic()
        pynvml.nvmlInit()
        time.sleep(max(0.0, activated + 0.25 - time.monotonic()))
        started = time.monotonic()
        pynvml.nvmlDeviceGetHandleByIndex(0)
        assert time.monotonic() - started >= 0.3
        pynvml.nvmlShutdown()
        assert simulation.internal_errors == []


def test_hang_call_checks_its_arguments(dgx: sim.Simulation) -> None:
    with pytest.raises(ValueError, match="not an NVML function"):
        dgx.hang_call("nvmlDeviceGetHandleByIndx")
    with pytest.raises(ValueError, match="no GPU 8"):
        dgx.hang_call("nvmlDeviceGetName", gpu=8)
    with pytest.raises(ValueError, match="hang seconds"):
        dgx.hang_call("nvmlDeviceGetName", seconds=-1)
