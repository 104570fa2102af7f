"""PCIe topology, NVLinks and P2P status between GPUs.

NVLinks are active only where the profile has NVSwitches (DGX): link `l` of every GPU
goes to switch `l mod n`, so the remote end of each link is a switch, every GPU
reaches every switch, and every pair of GPUs is linked through them. A GPU answers for
all NVML_NVLINK_MAX_LINKS link indices: its own links are active, the rest inactive.
Without switches (PCIe machines) NVLink calls are NOT_SUPPORTED. PCIe levels come from
the profile's `pcie_switch` and NUMA facts: same switch -> MULTIPLE (PXB), same NUMA
node -> NODE, else SYSTEM.
"""

from __future__ import annotations

from ctypes import c_uint

import pynvml

from nvlib.sim.calls import answers
from nvlib.sim.calls.device import write_pci
from nvlib.sim.cdata import INVALID_ARGUMENT, put
from nvlib.sim.state import Gpu, NvmlState

NOT_SUPPORTED = pynvml.NVML_ERROR_NOT_SUPPORTED


def _two_gpus(state: NvmlState, first: int | None, second: int | None) -> tuple[Gpu, Gpu] | None:
    a, b = state.gpu(first), state.gpu(second)
    return None if a is None or b is None else (a, b)


def active_links(state: NvmlState, gpu: Gpu) -> int:
    return gpu.spec.nvlinks if state.profile.nvswitches else 0


def _switches_reached(state: NvmlState, gpu: Gpu) -> set[int]:
    count = len(state.profile.nvswitches)
    return {link % count for link in range(active_links(state, gpu))} if count else set()


def nvlinked(state: NvmlState, a: Gpu, b: Gpu) -> bool:
    return a is not b and bool(_switches_reached(state, a) & _switches_reached(state, b))


def _level(a: Gpu, b: Gpu) -> int:
    if a is b:
        return pynvml.NVML_TOPOLOGY_INTERNAL
    if a.spec.pcie_switch is not None and a.spec.pcie_switch == b.spec.pcie_switch:
        return pynvml.NVML_TOPOLOGY_MULTIPLE
    if a.spec.numa_node is not None and a.spec.numa_node == b.spec.numa_node:
        return pynvml.NVML_TOPOLOGY_NODE
    return pynvml.NVML_TOPOLOGY_SYSTEM


@answers("nvmlDeviceGetTopologyCommonAncestor")
def common_ancestor(
    state: NvmlState, first: int | None, second: int | None, out: int | None
) -> int:
    pair = _two_gpus(state, first, second)
    return INVALID_ARGUMENT if pair is None else put(out, c_uint, _level(*pair))


def _link(state: NvmlState, handle: int | None, link: int) -> tuple[int, Gpu | None, bool]:
    """(error, GPU, active) for a link index of a GPU with NVLinks."""
    gpu = state.gpu(handle)
    if gpu is None or link >= pynvml.NVML_NVLINK_MAX_LINKS:
        return INVALID_ARGUMENT, None, False
    active = active_links(state, gpu)
    if not active:
        return NOT_SUPPORTED, None, False
    return pynvml.NVML_SUCCESS, gpu, link < active


@answers("nvmlDeviceGetNvLinkState")
def nvlink_state(state: NvmlState, handle: int | None, link: int, out: int | None) -> int:
    ret, gpu, active = _link(state, handle, link)
    if gpu is None:
        return ret
    enabled = pynvml.NVML_FEATURE_ENABLED if active else pynvml.NVML_FEATURE_DISABLED
    return put(out, c_uint, enabled)


@answers("nvmlDeviceGetNvLinkRemotePciInfo_v2")
def nvlink_remote(state: NvmlState, handle: int | None, link: int, out: int | None) -> int:
    ret, gpu, active = _link(state, handle, link)
    if gpu is None:
        return ret
    if not active:
        return NOT_SUPPORTED
    if not out:
        return INVALID_ARGUMENT
    switches = state.profile.nvswitches
    switch = switches[link % len(switches)]
    return write_pci(out, switch.bus, switch.device_id << 16 | 0x10DE, 0)


@answers("nvmlDeviceGetP2PStatus")
def p2p_status(
    state: NvmlState, first: int | None, second: int | None, index: int, out: int | None
) -> int:
    pair = _two_gpus(state, first, second)
    if pair is None or index >= pynvml.NVML_P2P_CAPS_INDEX_UNKNOWN:
        return INVALID_ARGUMENT
    a, b = pair
    linked = nvlinked(state, a, b)
    if index == pynvml.NVML_P2P_CAPS_INDEX_NVLINK:
        status = pynvml.NVML_P2P_STATUS_OK if linked else pynvml.NVML_P2P_STATUS_NOT_SUPPORTED
    elif linked or _level(a, b) <= pynvml.NVML_TOPOLOGY_NODE:
        status = pynvml.NVML_P2P_STATUS_OK
    else:
        status = pynvml.NVML_P2P_STATUS_CHIPSET_NOT_SUPPORTED
    return put(out, c_uint, status)
