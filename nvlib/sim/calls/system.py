"""Init, shutdown, versions, device count and the ways to get a device handle."""

from __future__ import annotations

from ctypes import c_int, c_uint
from typing import Any

import pynvml

from nvlib.sim.calls import answers
from nvlib.sim.cdata import INVALID_ARGUMENT, SUCCESS, put, put_handle, put_text
from nvlib.sim.state import NvmlState


@answers("nvmlInit", "nvmlInit_v2")
def init(state: NvmlState) -> int:
    state.init_count += 1
    return SUCCESS


@answers("nvmlInitWithFlags")
def init_with_flags(state: NvmlState, flags: int) -> int:
    return init(state)


@answers("nvmlShutdown")
def shutdown(state: NvmlState) -> int:
    # Real NVML counts inits: the last matching shutdown uninitialises.
    if state.init_count == 0:
        return pynvml.NVML_ERROR_UNINITIALIZED
    state.init_count -= 1
    return SUCCESS


@answers("nvmlSystemGetDriverVersion")
def driver_version(state: NvmlState, buf: int | None, size: int) -> int:
    return put_text(buf, size, state.profile.driver_version)


@answers("nvmlSystemGetNVMLVersion")
def nvml_version(state: NvmlState, buf: int | None, size: int) -> int:
    return put_text(buf, size, state.profile.nvml_version)


@answers("nvmlSystemGetCudaDriverVersion", "nvmlSystemGetCudaDriverVersion_v2")
def cuda_version(state: NvmlState, out: int | None) -> int:
    return put(out, c_int, state.profile.cuda_version)


@answers("nvmlDeviceGetCount", "nvmlDeviceGetCount_v2")
def count(state: NvmlState, out: int | None) -> int:
    return put(out, c_uint, len(state.gpus))


def _index_owner(state: NvmlState, args: tuple[Any, ...]) -> set[int]:
    return {args[0]} if args[0] < len(state.gpus) else set()


@answers("nvmlDeviceGetHandleByIndex", "nvmlDeviceGetHandleByIndex_v2", gpus_of=_index_owner)
def by_index(state: NvmlState, index: int, out: int | None) -> int:
    if index >= len(state.gpus):
        return INVALID_ARGUMENT
    return put_handle(out, state.gpus[index].handle)


def _uuid_owner(state: NvmlState, args: tuple[Any, ...]) -> set[int]:
    device = state.by_uuid.get(args[0].decode(errors="replace")) if args[0] else None
    owner = state.owner(device.handle) if device else None
    return set() if owner is None else {owner}


@answers("nvmlDeviceGetHandleByUUID", gpus_of=_uuid_owner)
def by_uuid(state: NvmlState, uuid: bytes | None, out: int | None) -> int:
    if not uuid:
        return INVALID_ARGUMENT
    device = state.by_uuid.get(uuid.decode(errors="replace"))
    if device is None:
        return pynvml.NVML_ERROR_NOT_FOUND
    return put_handle(out, device.handle)


def _normal_bus_id(raw: bytes) -> str:
    """`0000:07:00.0`, `00000000:07:00.0`, any case -> the 8-digit upper-case NVML form."""
    domain, _, rest = raw.decode(errors="replace").strip().partition(":")
    return f"{domain.upper():0>8}:{rest.upper()}"


def _bus_owner(state: NvmlState, args: tuple[Any, ...]) -> set[int]:
    wanted = _normal_bus_id(args[0]) if args[0] else ""
    return {g.index for g in state.gpus if g.spec.bus.nvml == wanted}


@answers("nvmlDeviceGetHandleByPciBusId_v2", gpus_of=_bus_owner)
def by_bus_id(state: NvmlState, bus_id: bytes | None, out: int | None) -> int:
    if not bus_id:
        return INVALID_ARGUMENT
    wanted = _normal_bus_id(bus_id)
    gpu = next((g for g in state.gpus if g.spec.bus.nvml == wanted), None)
    if gpu is None:
        return pynvml.NVML_ERROR_NOT_FOUND
    return put_handle(out, gpu.handle)
