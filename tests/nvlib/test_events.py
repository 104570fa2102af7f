"""nvlib.events over the simulator: what the health monitor gets back, as plain values.

Matrix: an XID on a full GPU (instances 0xFFFFFFFF) and on a MIG device (its GI/CI),
named by the UUID registered; a wait that times out (None) and one that fails
(NvmlError); registration failures by step, and NotSupported as "too old" (False);
the probe of a GPU on and off the bus; NVML that does not load (NvmlInitError).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from nvlib import events, sim
from nvlib.events import ALL_INSTANCES, EventSet, RegistrationError
from nvlib.nvml import NvmlError, NvmlInitError


@pytest.fixture
def mig() -> Iterator[sim.Simulation]:
    with sim.activate("dgx-a100-mig") as simulation:
        yield simulation
        assert simulation.internal_errors == []


@pytest.fixture
def opened(mig: sim.Simulation) -> Iterator[EventSet]:
    event_set = EventSet.open()
    yield event_set
    event_set.close()


def test_xid_on_a_gpu_and_on_a_mig_device(mig: sim.Simulation, opened: EventSet) -> None:
    uuids = [g.uuid for g in mig.profile.gpus]
    assert opened.register(uuids[2]) is True
    mig.inject_xid(2, 48)
    event = opened.wait(2000)
    assert event is not None
    assert (event.xid, event.gpu_uuid, event.gpu_instance, event.compute_instance) == (
        48,
        uuids[2],
        ALL_INSTANCES,
        ALL_INSTANCES,
    )
    mig.inject_xid(2, 31, mig=1)
    event = opened.wait(2000)
    assert event is not None and event.xid == 31 and event.gpu_uuid == uuids[2]
    assert event.gpu_instance != ALL_INSTANCES and event.compute_instance != ALL_INSTANCES


def test_wait_times_out_and_fails(mig: sim.Simulation, opened: EventSet) -> None:
    opened.register(mig.profile.gpus[0].uuid)
    assert opened.wait(50) is None
    mig.fail_call("nvmlEventSetWait_v2", "UNKNOWN")
    with pytest.raises(NvmlError, match="Unknown Error"):
        opened.wait(50)


@pytest.mark.parametrize(
    ("call", "error", "step"),
    [
        pytest.param("nvmlDeviceGetHandleByUUID", "UNKNOWN", "handle", id="handle"),
        pytest.param("nvmlDeviceGetSupportedEventTypes", "UNKNOWN", "supported", id="supported"),
        pytest.param("nvmlDeviceRegisterEvents", "UNKNOWN", "register", id="register"),
    ],
)
def test_registration_failure_names_its_step(
    mig: sim.Simulation, opened: EventSet, call: str, error: str, step: str
) -> None:
    mig.fail_call(call, error, gpu=None if step == "handle" else 1)
    with pytest.raises(RegistrationError) as info:
        opened.register(mig.profile.gpus[1].uuid)
    assert info.value.step == step


def test_not_supported_registration_is_too_old(mig: sim.Simulation, opened: EventSet) -> None:
    mig.fail_call("nvmlDeviceRegisterEvents", "NOT_SUPPORTED", gpu=3)
    assert opened.register(mig.profile.gpus[3].uuid) is False


def test_probe(mig: sim.Simulation, opened: EventSet) -> None:
    uuid = mig.profile.gpus[4].uuid
    events.probe(uuid)
    mig.fall_off_bus(4)
    with pytest.raises(NvmlError):
        events.probe(uuid)
    mig.recover(4)
    events.probe(uuid)


def test_open_without_nvml(mig: sim.Simulation) -> None:
    mig.fail_call("nvmlInit", "DRIVER_NOT_LOADED")
    with pytest.raises(NvmlInitError):
        EventSet.open()
