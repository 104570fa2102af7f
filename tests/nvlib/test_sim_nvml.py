"""How the simulated C functions behave as NVML does, called through real pynvml.

Matrix: init refcount and uninitialised calls; struct version checks (memory v2, GI
and CI profile info V, fabric info V); caller buffers too small; bad handles and
indices; handles of one kind passed where another is needed; nvmlErrorString;
unknown symbols (FunctionNotFound); call counts; topology levels; activate/deactivate restoring
pynvml. Left out on purpose: the per-profile facts (test_sim_profiles.py).
"""

from __future__ import annotations

import ctypes
from collections.abc import Iterator

import pynvml
import pytest

from nvlib import sim


@pytest.fixture
def dgx() -> Iterator[sim.Simulation]:
    with sim.activate("dgx-a100-mig") as simulation:
        pynvml.nvmlInit()
        yield simulation
        pynvml.nvmlShutdown()
        assert simulation.internal_errors == []


def raw(name: str) -> ctypes._CFuncPtr:  # type: ignore[name-defined]
    """The C function as pynvml resolves it, to call with arguments pynvml never passes."""
    return pynvml._nvmlGetFunctionPointer(name)


def test_calls_before_init_and_after_the_matching_shutdown() -> None:
    with sim.activate("t4"):
        with pytest.raises(pynvml.NVMLError_Uninitialized):
            pynvml.nvmlDeviceGetCount()
        with pytest.raises(pynvml.NVMLError_Uninitialized):
            pynvml.nvmlShutdown()
        pynvml.nvmlInit()
        pynvml.nvmlInit()
        pynvml.nvmlShutdown()
        assert pynvml.nvmlDeviceGetCount() == 1  # one init still open
        handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        pynvml.nvmlShutdown()
        with pytest.raises(pynvml.NVMLError_Uninitialized):
            pynvml.nvmlDeviceGetName(handle)
        assert pynvml.nvmlErrorString(pynvml.NVML_ERROR_GPU_IS_LOST) == "GPU is lost"
        pynvml.nvmlInitWithFlags(pynvml.NVML_INIT_FLAG_NO_GPUS)
        assert pynvml.nvmlDeviceGetName(handle) == "Tesla T4"  # handles outlive a shutdown
        pynvml.nvmlShutdown()


def test_nvml_calls_counts_every_call_whatever_it_answered() -> None:
    with sim.activate("t4") as simulation:
        assert simulation.nvml_calls() == {}  # nothing built yet
        with pytest.raises(pynvml.NVMLError_Uninitialized):
            pynvml.nvmlDeviceGetCount()
        pynvml.nvmlInit()
        simulation.fail_call("nvmlDeviceGetCount", "UNKNOWN")
        with pytest.raises(pynvml.NVMLError_Unknown):
            pynvml.nvmlDeviceGetCount()
        simulation.clear_faults()
        assert pynvml.nvmlDeviceGetCount() == 1
        pynvml.nvmlShutdown()
        counts = simulation.nvml_calls()
        assert counts == {"nvmlDeviceGetCount_v2": 3, "nvmlInitWithFlags": 1, "nvmlShutdown": 1}
        counts.clear()  # a copy
        assert simulation.nvml_calls()["nvmlDeviceGetCount_v2"] == 3


def test_no_simulation_no_library() -> None:
    with sim.activate("t4") as simulation:
        assert sim.active() is simulation
        assert pynvml.nvmlLib is not None
    assert sim.active() is None
    assert pynvml.nvmlLib is None
    assert pynvml._nvmlGetFunctionPointer_cache == {}
    assert pynvml._nvmlLib_refcount == 0
    assert not simulation.root.exists()  # its temporary host tree is gone


def test_activating_another_replaces_the_first(tmp_path: object) -> None:
    first = sim.activate("t4")
    second = sim.activate("l40s")
    try:
        assert not first.active and second.active and sim.active() is second
        pynvml.nvmlInit()
        assert pynvml.nvmlDeviceGetCount() == 2
        pynvml.nvmlShutdown()
    finally:
        second.deactivate()
    second.deactivate()  # twice is harmless


def test_struct_versions_are_checked(dgx: sim.Simulation) -> None:
    gpu = pynvml.nvmlDeviceGetHandleByIndex(0)
    with pytest.raises(pynvml.NVMLError_ArgumentVersionMismatch):
        pynvml.nvmlDeviceGetMemoryInfo(gpu, version=0x01000028)
    assert pynvml.nvmlDeviceGetMemoryInfo(gpu, version=pynvml.nvmlMemory_v2).total > 0

    info = pynvml.c_nvmlGpuInstanceProfileInfo_v2_t()
    info.version = 0x01000098
    ret = raw("nvmlDeviceGetGpuInstanceProfileInfoV")(gpu, 0, ctypes.byref(info))
    assert ret == pynvml.NVML_ERROR_ARGUMENT_VERSION_MISMATCH

    mig = pynvml.nvmlDeviceGetMigDeviceHandleByIndex(gpu, 0)
    gi = pynvml.nvmlDeviceGetGpuInstanceById(gpu, pynvml.nvmlDeviceGetGpuInstanceId(mig))
    ci_info = pynvml.c_nvmlComputeInstanceProfileInfo_v2_t()
    ci_info.version = 7
    ret = raw("nvmlGpuInstanceGetComputeInstanceProfileInfoV")(gi, 0, 0, ctypes.byref(ci_info))
    assert ret == pynvml.NVML_ERROR_ARGUMENT_VERSION_MISMATCH


def test_fabric_struct_version_is_checked() -> None:
    with sim.activate("gb200"):
        pynvml.nvmlInit()
        gpu = pynvml.nvmlDeviceGetHandleByIndex(0)
        wrong = pynvml.c_nvmlGpuFabricInfo_v2_t()
        wrong.version = 1
        with pytest.raises(pynvml.NVMLError_ArgumentVersionMismatch):
            pynvml.nvmlDeviceGetGpuFabricInfoV(gpu, pynvml.byref(wrong))
        v3 = pynvml.c_nvmlGpuFabricInfo_v3_t()
        pynvml.nvmlDeviceGetGpuFabricInfoV(gpu, pynvml.byref(v3))
        assert (v3.cliqueId, v3.healthSummary) == (1, pynvml.NVML_GPU_FABRIC_HEALTH_SUMMARY_HEALTHY)
        pynvml.nvmlShutdown()


def test_buffers_too_small(dgx: sim.Simulation) -> None:
    gpu = pynvml.nvmlDeviceGetHandleByIndex(0)
    buf = ctypes.create_string_buffer(8)
    assert raw("nvmlDeviceGetName")(gpu, buf, ctypes.c_uint(8)) == (
        pynvml.NVML_ERROR_INSUFFICIENT_SIZE
    )
    exact = len("NVIDIA A100-SXM4-40GB") + 1
    big = ctypes.create_string_buffer(exact)
    assert raw("nvmlDeviceGetName")(gpu, big, ctypes.c_uint(exact)) == pynvml.NVML_SUCCESS
    assert big.value == b"NVIDIA A100-SXM4-40GB"
    assert raw("nvmlSystemGetDriverVersion")(buf, ctypes.c_uint(4)) == (
        pynvml.NVML_ERROR_INSUFFICIENT_SIZE
    )


def test_bad_handles_and_indices(dgx: sim.Simulation) -> None:
    bogus = pynvml.c_nvmlDevice_t()
    ctypes.c_void_p.from_address(ctypes.addressof(bogus)).value = 0x1234
    with pytest.raises(pynvml.NVMLError_InvalidArgument):
        pynvml.nvmlDeviceGetName(bogus)
    with pytest.raises(pynvml.NVMLError_InvalidArgument):
        pynvml.nvmlDeviceGetName(pynvml.c_nvmlDevice_t())  # NULL
    with pytest.raises(pynvml.NVMLError_InvalidArgument):
        pynvml.nvmlDeviceGetHandleByIndex(8)
    with pytest.raises(pynvml.NVMLError_NotFound):
        pynvml.nvmlDeviceGetHandleByUUID("GPU-00000000-0000-0000-0000-000000000000")
    gpu = pynvml.nvmlDeviceGetHandleByIndex(0)
    with pytest.raises(pynvml.NVMLError_InvalidArgument):
        pynvml.nvmlDeviceGetMigDeviceHandleByIndex(gpu, 7)  # past the maximum
    with pytest.raises(pynvml.NVMLError_NotFound):
        pynvml.nvmlDeviceGetMigDeviceHandleByIndex(gpu, 4)  # free slot
    with pytest.raises(pynvml.NVMLError_NotFound):
        pynvml.nvmlDeviceGetGpuInstanceById(gpu, 1)
    with pytest.raises(pynvml.NVMLError_InvalidArgument):
        pynvml.nvmlDeviceGetGpuInstanceProfileInfo(gpu, pynvml.NVML_GPU_INSTANCE_PROFILE_COUNT)
    with pytest.raises(pynvml.NVMLError_InvalidArgument):
        pynvml.nvmlDeviceGetNvLinkState(gpu, pynvml.NVML_NVLINK_MAX_LINKS)


def test_handle_kinds(dgx: sim.Simulation) -> None:
    gpu = pynvml.nvmlDeviceGetHandleByIndex(0)
    mig = pynvml.nvmlDeviceGetMigDeviceHandleByIndex(gpu, 2)
    with pytest.raises(pynvml.NVMLError_NotSupported):
        pynvml.nvmlDeviceGetAttributes(gpu)  # a full GPU has no MIG attributes
    with pytest.raises(pynvml.NVMLError_NotSupported):
        pynvml.nvmlDeviceGetGpuInstanceId(gpu)
    with pytest.raises(pynvml.NVMLError_InvalidArgument):
        pynvml.nvmlDeviceGetMigMode(mig)  # a MIG device where a GPU is needed
    with pytest.raises(pynvml.NVMLError_InvalidArgument):
        pynvml.nvmlDeviceGetDeviceHandleFromMigDeviceHandle(gpu)
    mig_uuid = pynvml.nvmlDeviceGetUUID(mig)
    same = pynvml.nvmlDeviceGetHandleByUUID(mig_uuid)
    assert pynvml.nvmlDeviceIsMigDeviceHandle(same).value == 1
    assert pynvml.nvmlDeviceGetCudaComputeCapability(mig) == (8, 0)
    assert pynvml.nvmlDeviceGetPciInfo(mig).busId == pynvml.nvmlDeviceGetPciInfo(gpu).busId
    gi = pynvml.nvmlDeviceGetGpuInstanceById(gpu, pynvml.nvmlDeviceGetGpuInstanceId(mig))
    with pytest.raises(pynvml.NVMLError_InvalidArgument):
        pynvml.nvmlDeviceGetName(gi)  # an instance handle is no device
    info = pynvml.nvmlGpuInstanceGetInfo(gi)
    assert pynvml.nvmlDeviceGetUUID(info.device) == pynvml.nvmlDeviceGetUUID(gpu)
    with pytest.raises(pynvml.NVMLError_NotFound):
        pynvml.nvmlGpuInstanceGetComputeInstanceById(gi, 5)
    ci = pynvml.nvmlGpuInstanceGetComputeInstanceById(gi, 0)
    ci_info = pynvml.nvmlComputeInstanceGetInfo(ci)
    assert pynvml.nvmlGpuInstanceGetInfo(ci_info.gpuInstance).id == info.id


def test_gpu_instances_listing(dgx: sim.Simulation) -> None:
    gpu = pynvml.nvmlDeviceGetHandleByIndex(0)
    one_slice = pynvml.nvmlDeviceGetGpuInstanceProfileInfo(gpu, 0)
    found = (pynvml.c_nvmlGpuInstance_t * one_slice.instanceCount)()
    count = ctypes.c_uint()
    pynvml.nvmlDeviceGetGpuInstances(gpu, one_slice.id, found, ctypes.byref(count))
    ids = sorted(pynvml.nvmlGpuInstanceGetInfo(found[i]).id for i in range(count.value))
    assert ids == [9, 10]  # the two 1g.5gb instances at slices 2 and 3


def test_unknown_symbol_is_function_not_found(dgx: sim.Simulation) -> None:
    gpu = pynvml.nvmlDeviceGetHandleByIndex(0)
    with pytest.raises(pynvml.NVMLError_FunctionNotFound):
        pynvml.nvmlDeviceGetPowerUsage(gpu)


def test_error_string_for_every_code() -> None:
    with sim.activate("no-gpu"):
        assert pynvml.nvmlErrorString(pynvml.NVML_SUCCESS) == "Success"
        assert pynvml.nvmlErrorString(pynvml.NVML_ERROR_NOT_SUPPORTED) == "Not Supported"
        assert pynvml.nvmlErrorString(12345) == "Unknown Error"
        assert str(pynvml.NVMLError(pynvml.NVML_ERROR_INVALID_STATE)) == "Invalid state"


def test_topology_levels(dgx: sim.Simulation) -> None:
    level = pynvml.nvmlDeviceGetTopologyCommonAncestor
    g = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(8)]
    assert level(g[0], g[0]) == pynvml.NVML_TOPOLOGY_INTERNAL
    assert level(g[0], g[1]) == pynvml.NVML_TOPOLOGY_MULTIPLE  # one PCIe switch
    assert level(g[0], g[2]) == pynvml.NVML_TOPOLOGY_NODE  # one NUMA node
    assert level(g[0], g[4]) == pynvml.NVML_TOPOLOGY_SYSTEM
    read = pynvml.NVML_P2P_CAPS_INDEX_WRITE  # the READ constant is a tuple in pynvml
    assert pynvml.nvmlDeviceGetP2PStatus(g[0], g[4], read) == pynvml.NVML_P2P_STATUS_OK


def test_pcie_machine_has_no_nvlink() -> None:
    with sim.activate("l40s"):
        pynvml.nvmlInit()
        a, b = (pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(2))
        with pytest.raises(pynvml.NVMLError_NotSupported):
            pynvml.nvmlDeviceGetNvLinkState(a, 0)
        nvlink = pynvml.NVML_P2P_CAPS_INDEX_NVLINK
        assert pynvml.nvmlDeviceGetP2PStatus(a, b, nvlink) == pynvml.NVML_P2P_STATUS_NOT_SUPPORTED
        pynvml.nvmlShutdown()


def test_handle_by_pci_bus_id(dgx: sim.Simulation) -> None:
    fn = raw("nvmlDeviceGetHandleByPciBusId_v2")
    handle = pynvml.c_nvmlDevice_t()
    assert fn(b"0000:0f:00.0", ctypes.byref(handle)) == pynvml.NVML_SUCCESS
    assert pynvml.nvmlDeviceGetIndex(handle) == 1
    assert fn(b"0000:99:00.0", ctypes.byref(handle)) == pynvml.NVML_ERROR_NOT_FOUND
