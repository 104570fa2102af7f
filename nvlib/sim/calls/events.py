"""Event sets: the health checker's view of XIDs.

An XID reaches a set only if the set had registered the GPU for XID events by the
time it happened, as with the real driver. The wait sleeps on the state's condition
(releasing the GIL) until an event, the next scheduled fault, or the timeout.
"""

from __future__ import annotations

import time
from ctypes import c_ulonglong

import pynvml

from nvlib.sim.calls import answers
from nvlib.sim.cdata import INVALID_ARGUMENT, SUCCESS, as_pointer, at, put, put_handle
from nvlib.sim.state import NvmlState

_SUPPORTED = (
    pynvml.nvmlEventTypeSingleBitEccError
    | pynvml.nvmlEventTypeDoubleBitEccError
    | pynvml.nvmlEventTypePState
    | pynvml.nvmlEventTypeXidCriticalError
    | pynvml.nvmlEventTypeClock
)


@answers("nvmlEventSetCreate")
def create(state: NvmlState, out: int | None) -> int:
    if not out:
        return INVALID_ARGUMENT
    return put_handle(out, state.new_event_set().handle)


def _supported(state: NvmlState, handle: int | None) -> int | None:
    gpu = state.gpu(handle)
    if gpu is None:
        return None
    return _SUPPORTED | (pynvml.nvmlEventMigConfigChange if gpu.spec.mig_capable else 0)


@answers("nvmlDeviceGetSupportedEventTypes")
def supported(state: NvmlState, handle: int | None, out: int | None) -> int:
    if state.device(handle) is not None and state.gpu(handle) is None:
        return pynvml.NVML_ERROR_NOT_SUPPORTED  # a MIG device: register its parent
    mask = _supported(state, handle)
    return INVALID_ARGUMENT if mask is None else put(out, c_ulonglong, mask)


@answers("nvmlDeviceRegisterEvents")
def register(state: NvmlState, handle: int | None, types: int, event_set: int | None) -> int:
    if state.device(handle) is not None and state.gpu(handle) is None:
        return pynvml.NVML_ERROR_NOT_SUPPORTED
    mask = _supported(state, handle)
    events = state.event_sets.get(event_set) if event_set else None
    if mask is None or events is None:
        return INVALID_ARGUMENT
    if types & ~mask:
        return pynvml.NVML_ERROR_NOT_SUPPORTED
    gpu = state.gpu(handle)
    assert gpu is not None
    old, _ = events.registered.get(gpu.index, (0, 0.0))
    events.registered[gpu.index] = (old | types, time.monotonic())
    return SUCCESS


@answers("nvmlEventSetWait_v2")
def wait(state: NvmlState, event_set: int | None, out: int | None, timeout_ms: int) -> int:
    events = state.event_sets.get(event_set) if event_set else None
    if events is None or not out:
        return INVALID_ARGUMENT
    deadline = time.monotonic() + timeout_ms / 1000
    while not events.queue:
        if state.closed or event_set not in state.event_sets:
            return pynvml.NVML_ERROR_UNINITIALIZED
        now = time.monotonic()
        state.apply_due(now)
        if events.queue:
            break
        if now >= deadline:
            return pynvml.NVML_ERROR_TIMEOUT
        due = state.faults.next_due()
        state.cond.wait(min(deadline, due if due is not None else deadline) - now)
    event = events.queue.popleft()
    data = at(out, pynvml.c_nvmlEventData_t)
    data.device = as_pointer(state.gpus[event.gpu].handle, pynvml.c_nvmlDevice_t)
    data.eventType = event.type
    data.eventData = event.data
    data.gpuInstanceId = event.gi
    data.computeInstanceId = event.ci
    return SUCCESS


@answers("nvmlEventSetFree")
def free(state: NvmlState, event_set: int | None) -> int:
    if not event_set or state.event_sets.pop(event_set, None) is None:
        return INVALID_ARGUMENT
    state.cond.notify_all()
    return SUCCESS
