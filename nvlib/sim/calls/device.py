"""Identity, memory, compute capability, PCI and fabric facts of a device handle.

A MIG device handle answers with its own name, UUID and memory, and with its parent's
compute capability, PCI info, brand and architecture, as real NVML does; its minor
number and index are NOT_SUPPORTED (the parent's /dev/nvidia<minor> is the node).
"""

from __future__ import annotations

from ctypes import c_int, c_uint

import pynvml

from nvlib.sim.calls import answers
from nvlib.sim.cdata import INVALID_ARGUMENT, SUCCESS, at, put, put_text
from nvlib.sim.profile import FabricSpec, GpuSpec, PciAddress
from nvlib.sim.state import Gpu, Mig, NvmlState

MIB = 1024 * 1024
NOT_SUPPORTED = pynvml.NVML_ERROR_NOT_SUPPORTED
VERSION_MISMATCH = pynvml.NVML_ERROR_ARGUMENT_VERSION_MISMATCH


def _spec(state: NvmlState, handle: int | None) -> GpuSpec | None:
    """The GPU facts behind a GPU or MIG device handle."""
    device = state.device(handle)
    return None if device is None else device.gpu.spec if isinstance(device, Mig) else device.spec


@answers("nvmlDeviceGetName")
def name(state: NvmlState, handle: int | None, buf: int | None, size: int) -> int:
    device = state.device(handle)
    if device is None:
        return INVALID_ARGUMENT
    if isinstance(device, Mig):
        return put_text(buf, size, f"{device.gpu.spec.name} MIG {device.spec.name}")
    return put_text(buf, size, device.spec.name)


@answers("nvmlDeviceGetUUID")
def uuid(state: NvmlState, handle: int | None, buf: int | None, size: int) -> int:
    device = state.device(handle)
    if device is None:
        return INVALID_ARGUMENT
    return put_text(buf, size, device.spec.uuid)


@answers("nvmlDeviceGetIndex")
def index(state: NvmlState, handle: int | None, out: int | None) -> int:
    device = state.device(handle)
    if device is None:
        return INVALID_ARGUMENT
    return NOT_SUPPORTED if isinstance(device, Mig) else put(out, c_uint, device.index)


@answers("nvmlDeviceGetMinorNumber")
def minor(state: NvmlState, handle: int | None, out: int | None) -> int:
    device = state.device(handle)
    if device is None:
        return INVALID_ARGUMENT
    return NOT_SUPPORTED if isinstance(device, Mig) else put(out, c_uint, device.spec.minor)


def _memory(device: Gpu | Mig) -> tuple[int, int]:
    """Total and reserved bytes: the driver keeps a little of a full GPU to itself."""
    if isinstance(device, Mig):
        return device.spec.gi_profile.memory_mib * MIB, 0
    total = device.spec.memory_mib * MIB
    return total, min(total // 64, 1024 * MIB) // MIB * MIB


@answers("nvmlDeviceGetMemoryInfo")
def memory(state: NvmlState, handle: int | None, out: int | None) -> int:
    device = state.device(handle)
    if device is None or not out:
        return INVALID_ARGUMENT
    total, reserved = _memory(device)
    info = at(out, pynvml.c_nvmlMemory_t)
    info.total, info.used, info.free = total, reserved, total - reserved
    return SUCCESS


@answers("nvmlDeviceGetMemoryInfo_v2")
def memory_v2(state: NvmlState, handle: int | None, out: int | None) -> int:
    device = state.device(handle)
    if device is None or not out:
        return INVALID_ARGUMENT
    info = at(out, pynvml.c_nvmlMemory_v2_t)
    if info.version != pynvml.nvmlMemory_v2:
        return VERSION_MISMATCH
    total, reserved = _memory(device)
    info.total, info.reserved, info.used, info.free = total, reserved, 0, total - reserved
    return SUCCESS


@answers("nvmlDeviceGetCudaComputeCapability")
def compute(state: NvmlState, handle: int | None, major: int | None, minor_: int | None) -> int:
    spec = _spec(state, handle)
    if spec is None or not major or not minor_:
        return INVALID_ARGUMENT
    put(major, c_int, spec.compute[0])
    return put(minor_, c_int, spec.compute[1])


def write_pci(out: int, bus: PciAddress, device_id: int, subsystem_id: int) -> int:
    info = at(out, pynvml.nvmlPciInfo_t)
    info.busIdLegacy = bus.legacy.encode()
    info.busId = bus.nvml.encode()
    info.domain, info.bus, info.device = bus.domain, bus.bus, bus.device
    info.pciDeviceId, info.pciSubSystemId = device_id, subsystem_id
    return SUCCESS


@answers("nvmlDeviceGetPciInfo_v2", "nvmlDeviceGetPciInfo_v3")
def pci_info(state: NvmlState, handle: int | None, out: int | None) -> int:
    spec = _spec(state, handle)
    if spec is None or not out:
        return INVALID_ARGUMENT
    return write_pci(out, spec.bus, spec.pci_device_id, spec.pci_subsystem_id)


@answers("nvmlDeviceGetBrand")
def brand(state: NvmlState, handle: int | None, out: int | None) -> int:
    spec = _spec(state, handle)
    return INVALID_ARGUMENT if spec is None else put(out, c_uint, spec.brand)


@answers("nvmlDeviceGetArchitecture")
def architecture(state: NvmlState, handle: int | None, out: int | None) -> int:
    spec = _spec(state, handle)
    return INVALID_ARGUMENT if spec is None else put(out, c_uint, spec.architecture)


@answers("nvmlDeviceGetNumaNodeId")
def numa_node(state: NvmlState, handle: int | None, out: int | None) -> int:
    spec = _spec(state, handle)
    if spec is None:
        return INVALID_ARGUMENT
    return NOT_SUPPORTED if spec.numa_node is None else put(out, c_uint, spec.numa_node)


def _fabric(state: NvmlState, handle: int | None) -> tuple[int, FabricSpec | None]:
    """The GPU's fabric facts, or the error: NOT_SUPPORTED off an NVLink domain."""
    spec = _spec(state, handle)
    if spec is None:
        return INVALID_ARGUMENT, None
    return (NOT_SUPPORTED, None) if spec.fabric is None else (SUCCESS, spec.fabric)


@answers("nvmlDeviceGetGpuFabricInfo")
def fabric(state: NvmlState, handle: int | None, out: int | None) -> int:
    ret, facts = _fabric(state, handle)
    if facts is None or not out:
        return ret if facts is None else INVALID_ARGUMENT
    info = at(out, pynvml.c_nvmlGpuFabricInfo_t)
    info.clusterUuid[:] = list(facts.cluster_uuid)
    info.status, info.cliqueId, info.state = facts.status, facts.clique_id, facts.state
    return SUCCESS


@answers("nvmlDeviceGetGpuFabricInfoV")
def fabric_v(state: NvmlState, handle: int | None, out: int | None) -> int:
    ret, facts = _fabric(state, handle)
    if facts is None or not out:
        return ret if facts is None else INVALID_ARGUMENT
    version = c_uint.from_address(out).value
    if version == pynvml.nvmlGpuFabricInfo_v3:
        v3 = at(out, pynvml.c_nvmlGpuFabricInfo_v3_t)
        v3.healthSummary = pynvml.NVML_GPU_FABRIC_HEALTH_SUMMARY_HEALTHY
    elif version != pynvml.nvmlGpuFabricInfo_v2:
        return VERSION_MISMATCH
    info = at(out, pynvml.c_nvmlGpuFabricInfo_v2_t)  # v3 begins with v2's fields
    info.clusterUuid[:] = list(facts.cluster_uuid)
    info.status, info.cliqueId, info.state = facts.status, facts.clique_id, facts.state
    info.healthMask = 0
    return SUCCESS
