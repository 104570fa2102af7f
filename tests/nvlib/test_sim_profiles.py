"""Each built-in machine answers its documented facts through the real pynvml wrappers.

docs/profiles.md#built-in-machines lists them.

Matrix: one test per built-in profile (dgx-a100, dgx-a100-mig, dgx-h100, gb200, t4,
l40s, mixed, vgpu, no-gpu) for its headline facts, plus facts every profile shares
(driver/CUDA versions, index = minor, stable UUIDs). pynvml is never patched: the
simulator is activated beneath it. Host-tree files are tested in test_sim_host.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pynvml
import pytest

from nvlib import sim

MIB = 1024 * 1024
NO_MIG = pynvml.NVMLError_NotSupported


@pytest.fixture
def nvml(request: pytest.FixtureRequest) -> Iterator[sim.Simulation]:
    """The profile named by the test's parameter, activated and initialised."""
    with sim.activate(request.param) as simulation:
        pynvml.nvmlInit()
        yield simulation
        pynvml.nvmlShutdown()
        assert simulation.internal_errors == []
    assert sim.active() is None


def handles() -> list[object]:
    return [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]


def names() -> list[str]:
    return [pynvml.nvmlDeviceGetName(h) for h in handles()]


def memory_mib() -> list[int]:
    return [pynvml.nvmlDeviceGetMemoryInfo(h).total // MIB for h in handles()]


def compute() -> list[tuple[int, int]]:
    return [pynvml.nvmlDeviceGetCudaComputeCapability(h) for h in handles()]


def mig_modes() -> list[list[int] | None]:
    out: list[list[int] | None] = []
    for h in handles():
        try:
            out.append(pynvml.nvmlDeviceGetMigMode(h))
        except NO_MIG:
            out.append(None)
    return out


def pci_classes(simulation: sim.Simulation) -> set[str]:
    out = set()
    for h in handles():
        bus = pynvml.nvmlDeviceGetPciInfo(h).busId
        sysfs = f"{bus[4:8]}:{bus[9:]}".lower()
        out.add((simulation.root / "sys/bus/pci/devices" / sysfs / "class").read_text().strip())
    return out


def no_fabric() -> bool:
    for h in handles():
        info = pynvml.c_nvmlGpuFabricInfo_v2_t()
        with pytest.raises(pynvml.NVMLError_NotSupported):
            pynvml.nvmlDeviceGetGpuFabricInfoV(h, pynvml.byref(info))
    return True


def machine(simulation: sim.Simulation) -> str:
    return (simulation.root / "sys/class/dmi/id/product_name").read_text()


@pytest.mark.parametrize("nvml", ["dgx-a100"], indirect=True)
def test_dgx_a100(nvml: sim.Simulation) -> None:
    assert names() == ["NVIDIA A100-SXM4-40GB"] * 8
    assert memory_mib() == [40960] * 8
    assert compute() == [(8, 0)] * 8
    assert mig_modes() == [[0, 0]] * 8
    assert pci_classes(nvml) == {"0x030200"}
    assert machine(nvml) == "NVIDIA DGX A100\n"
    assert no_fabric()
    first = handles()[0]
    assert pynvml.nvmlDeviceGetMaxMigDeviceCount(first) == 7
    with pytest.raises(pynvml.NVMLError_NotFound):
        pynvml.nvmlDeviceGetMigDeviceHandleByIndex(first, 0)
    # NVSwitch: every pair linked by NVLink, each link's far end a switch
    hs = handles()
    for a in hs:
        for b in hs:
            if a is not b:
                status = pynvml.nvmlDeviceGetP2PStatus(a, b, pynvml.NVML_P2P_CAPS_INDEX_NVLINK)
                assert status == pynvml.NVML_P2P_STATUS_OK
    states = [
        pynvml.nvmlDeviceGetNvLinkState(first, i) for i in range(pynvml.NVML_NVLINK_MAX_LINKS)
    ]
    assert states == [1] * 12 + [0] * (pynvml.NVML_NVLINK_MAX_LINKS - 12)
    remote = {pynvml.nvmlDeviceGetNvLinkRemotePciInfo(first, i).busId for i in range(12)}
    assert remote == {f"00000000:C{n}:00.0" for n in range(4, 10)}
    assert pynvml.nvmlDeviceGetNvLinkRemotePciInfo(first, 0).pciDeviceId == 0x1AF110DE


@pytest.mark.parametrize("nvml", ["dgx-a100-mig"], indirect=True)
def test_dgx_a100_mig(nvml: sim.Simulation) -> None:
    assert names() == ["NVIDIA A100-SXM4-40GB"] * 8
    assert mig_modes() == [[1, 1]] * 8
    assert machine(nvml) == "NVIDIA DGX A100\n"
    expected = [  # A100-SXM4-40GB GI profiles, as NVML reports them
        # name, memory, SMs, CE, dec, enc, jpeg, ofa, GI slices, CI slices
        ("3g.20gb", 19968, 42, 3, 2, 0, 0, 0, 3, 3),
        ("2g.10gb", 9856, 28, 2, 1, 0, 0, 0, 2, 2),
        ("1g.5gb", 4864, 14, 1, 0, 0, 0, 0, 1, 1),
        ("1g.5gb", 4864, 14, 1, 0, 0, 0, 0, 1, 1),
    ]
    for gpu in handles():
        parent_uuid = pynvml.nvmlDeviceGetUUID(gpu)
        found = []
        for j in range(pynvml.nvmlDeviceGetMaxMigDeviceCount(gpu)):
            try:
                mig = pynvml.nvmlDeviceGetMigDeviceHandleByIndex(gpu, j)
            except pynvml.NVMLError_NotFound:
                continue
            assert pynvml.nvmlDeviceIsMigDeviceHandle(mig).value == 1
            parent = pynvml.nvmlDeviceGetDeviceHandleFromMigDeviceHandle(mig)
            assert pynvml.nvmlDeviceGetUUID(parent) == parent_uuid
            assert pynvml.nvmlDeviceGetUUID(mig).startswith("MIG-")
            a = pynvml.nvmlDeviceGetAttributes(mig)
            name = pynvml.nvmlDeviceGetName(mig).rsplit(" ", 1)[1]
            found.append(
                (
                    name,
                    a.memorySizeMB,
                    a.multiprocessorCount,
                    a.sharedCopyEngineCount,
                    a.sharedDecoderCount,
                    a.sharedEncoderCount,
                    a.sharedJpegCount,
                    a.sharedOfaCount,
                    a.gpuInstanceSliceCount,
                    a.computeInstanceSliceCount,
                )
            )
            # the GI and CI behind the MIG device, and the profiles they name
            gi_id = pynvml.nvmlDeviceGetGpuInstanceId(mig)
            ci_id = pynvml.nvmlDeviceGetComputeInstanceId(mig)
            gi = pynvml.nvmlDeviceGetGpuInstanceById(gpu, gi_id)
            gi_info = pynvml.nvmlGpuInstanceGetInfo(gi)
            assert gi_info.id == gi_id
            ci = pynvml.nvmlGpuInstanceGetComputeInstanceById(gi, ci_id)
            ci_info = pynvml.nvmlComputeInstanceGetInfo(ci)
            assert ci_info.id == ci_id
            gi_profile = next(p for p in _gi_profiles(gpu) if p.id == gi_info.profileId)
            assert gi_profile.name == f"MIG {name}"
            assert gi_profile.memorySizeMB == a.memorySizeMB
            ci_profile = pynvml.nvmlGpuInstanceGetComputeInstanceProfileInfo(
                gi, ci_info.profileId, pynvml.NVML_COMPUTE_INSTANCE_ENGINE_PROFILE_SHARED
            )
            assert ci_profile.id == ci_info.profileId
            assert ci_profile.multiprocessorCount == a.multiprocessorCount
        assert found == expected
    # full-GPU facts the MIG handles do not have
    mig = pynvml.nvmlDeviceGetMigDeviceHandleByIndex(handles()[0], 0)
    with pytest.raises(pynvml.NVMLError_NotSupported):
        pynvml.nvmlDeviceGetMinorNumber(mig)
    assert pynvml.nvmlDeviceGetMemoryInfo(mig).total == 19968 * MIB


def _gi_profile(gpu: object, index: int) -> pynvml.c_nvmlGpuInstanceProfileInfo_v2_t | None:
    try:
        return pynvml.nvmlDeviceGetGpuInstanceProfileInfo(gpu, index)
    except pynvml.NVMLError_NotSupported:
        return None


def _gi_profiles(gpu: object) -> list[pynvml.c_nvmlGpuInstanceProfileInfo_v2_t]:
    """Every profile index asked, as go-nvlib does; the GPU's own profiles answer."""
    found = (_gi_profile(gpu, i) for i in range(pynvml.NVML_GPU_INSTANCE_PROFILE_COUNT))
    return [p for p in found if p is not None]


@pytest.mark.parametrize("nvml", ["dgx-a100-mig"], indirect=True)
def test_a100_gi_profile_table(nvml: sim.Simulation) -> None:
    """Every GI profile index is asked; the A100-40GB answers seven, as nvidia-smi lists."""
    gpu = handles()[0]
    table = {
        i: (p.id, p.name, p.sliceCount, p.instanceCount, p.memorySizeMB)
        for i in range(pynvml.NVML_GPU_INSTANCE_PROFILE_COUNT)
        if (p := _gi_profile(gpu, i)) is not None
    }
    assert table == {
        pynvml.NVML_GPU_INSTANCE_PROFILE_1_SLICE: (19, "MIG 1g.5gb", 1, 7, 4864),
        pynvml.NVML_GPU_INSTANCE_PROFILE_1_SLICE_REV1: (20, "MIG 1g.5gb+me", 1, 1, 4864),
        pynvml.NVML_GPU_INSTANCE_PROFILE_1_SLICE_REV2: (15, "MIG 1g.10gb", 1, 4, 9856),
        pynvml.NVML_GPU_INSTANCE_PROFILE_2_SLICE: (14, "MIG 2g.10gb", 2, 3, 9856),
        pynvml.NVML_GPU_INSTANCE_PROFILE_3_SLICE: (9, "MIG 3g.20gb", 3, 2, 19968),
        pynvml.NVML_GPU_INSTANCE_PROFILE_4_SLICE: (5, "MIG 4g.20gb", 4, 1, 19968),
        pynvml.NVML_GPU_INSTANCE_PROFILE_7_SLICE: (0, "MIG 7g.40gb", 7, 1, 40192),
    }
    legacy = pynvml.nvmlDeviceGetGpuInstanceProfileInfo(gpu, 0, version=1)
    assert (legacy.id, legacy.memorySizeMB, legacy.decoderCount) == (19, 4864, 0)
    # the CI profiles of the 3g.20gb instance: 1c, 2c and 3c
    gi = pynvml.nvmlDeviceGetGpuInstanceById(
        gpu, pynvml.nvmlDeviceGetGpuInstanceId(pynvml.nvmlDeviceGetMigDeviceHandleByIndex(gpu, 0))
    )
    cis = {}
    for i in range(pynvml.NVML_COMPUTE_INSTANCE_PROFILE_COUNT):
        try:
            p = pynvml.nvmlGpuInstanceGetComputeInstanceProfileInfo(gi, i, 0)
        except pynvml.NVMLError_NotSupported:
            continue
        cis[i] = (p.name, p.sliceCount, p.instanceCount, p.multiprocessorCount)
    assert cis == {
        0: ("MIG 1c.3g.20gb", 1, 3, 14),
        1: ("MIG 2c.3g.20gb", 2, 1, 28),
        2: ("MIG 3g.20gb", 3, 1, 42),
    }


@pytest.mark.parametrize("nvml", ["dgx-h100"], indirect=True)
def test_dgx_h100(nvml: sim.Simulation) -> None:
    assert names() == ["NVIDIA H100 80GB HBM3"] * 8
    assert memory_mib() == [81559] * 8
    assert compute() == [(9, 0)] * 8
    assert mig_modes() == [[0, 0]] * 8
    assert machine(nvml) == "NVIDIA DGX H100\n"
    assert no_fabric()
    first = handles()[0]
    assert pynvml.nvmlDeviceGetNvLinkState(first, 17) == 1
    assert pynvml.nvmlDeviceGetNvLinkState(first, 18) == 0
    assert pynvml.nvmlDeviceGetNvLinkRemotePciInfo(first, 0).pciDeviceId == 0x22A310DE
    assert pynvml.nvmlDeviceGetArchitecture(first) == pynvml.NVML_DEVICE_ARCH_HOPPER


@pytest.mark.parametrize("nvml", ["gb200"], indirect=True)
def test_gb200(nvml: sim.Simulation) -> None:
    assert names() == ["NVIDIA GB200"] * 4
    assert memory_mib() == [189471] * 4
    assert compute() == [(10, 0)] * 4
    assert mig_modes() == [[0, 0]] * 4
    assert pynvml.nvmlSystemGetDriverVersion() == "570.124.06"
    assert pynvml.nvmlSystemGetCudaDriverVersion() == 12080
    expected_uuid = uuid.UUID("7b968a6d-c8aa-45e1-9e07-e1e51be99c31")
    for h in handles():
        info = pynvml.c_nvmlGpuFabricInfo_v2_t()
        pynvml.nvmlDeviceGetGpuFabricInfoV(h, pynvml.byref(info))
        assert info.state == pynvml.NVML_GPU_FABRIC_STATE_COMPLETED
        assert info.status == pynvml.NVML_SUCCESS
        assert uuid.UUID(bytes=bytes(info.clusterUuid)) == expected_uuid
        assert info.cliqueId == 1
        legacy = pynvml.c_nvmlGpuFabricInfo_t()
        pynvml.nvmlDeviceGetGpuFabricInfo(h, pynvml.byref(legacy))
        assert (bytes(legacy.clusterUuid), legacy.cliqueId) == (expected_uuid.bytes, 1)
    assert (nvml.driver_root / "lib/firmware/nvidia/570.124.06/gsp_ga10x.bin").is_file()
    assert nvml.device_nodes["dev/nvidia-caps-imex-channels/channel0"] == (507, 0)


@pytest.mark.parametrize("nvml", ["t4"], indirect=True)
def test_t4(nvml: sim.Simulation) -> None:
    assert names() == ["Tesla T4"]
    assert memory_mib() == [15360]
    assert compute() == [(7, 5)]
    assert mig_modes() == [None]
    assert pci_classes(nvml) == {"0x030200"}
    assert no_fabric()
    t4 = handles()[0]
    for call in (
        lambda: pynvml.nvmlDeviceGetMaxMigDeviceCount(t4),
        lambda: pynvml.nvmlDeviceGetMigDeviceHandleByIndex(t4, 0),
        lambda: pynvml.nvmlDeviceGetGpuInstanceProfileInfo(t4, 0),
        lambda: pynvml.nvmlDeviceGetNvLinkState(t4, 0),
    ):
        with pytest.raises(pynvml.NVMLError_NotSupported):
            call()
    assert pynvml.nvmlDeviceGetBrand(t4) == pynvml.NVML_BRAND_TESLA
    assert pynvml.nvmlDeviceGetArchitecture(t4) == pynvml.NVML_DEVICE_ARCH_TURING


@pytest.mark.parametrize("nvml", ["l40s"], indirect=True)
def test_l40s(nvml: sim.Simulation) -> None:
    assert names() == ["NVIDIA L40S"] * 2
    assert memory_mib() == [46068] * 2
    assert compute() == [(8, 9)] * 2
    assert mig_modes() == [None, None]
    assert pci_classes(nvml) == {"0x030000"}
    a, b = handles()
    assert pynvml.nvmlDeviceGetTopologyCommonAncestor(a, b) == pynvml.NVML_TOPOLOGY_SYSTEM


@pytest.mark.parametrize("nvml", ["mixed"], indirect=True)
def test_mixed(nvml: sim.Simulation) -> None:
    assert names() == ["Tesla T4", "Tesla T4", "NVIDIA A10"]
    assert memory_mib() == [15360, 15360, 24564]
    assert compute() == [(7, 5), (7, 5), (8, 6)]
    assert mig_modes() == [None, None, None]
    assert pci_classes(nvml) == {"0x030200"}
    t4a, t4b, _ = handles()
    assert pynvml.nvmlDeviceGetTopologyCommonAncestor(t4a, t4b) == pynvml.NVML_TOPOLOGY_NODE


@pytest.mark.parametrize("nvml", ["vgpu"], indirect=True)
def test_vgpu(nvml: sim.Simulation) -> None:
    assert names() == ["NVIDIA A100-SXM4-40GB"]
    assert memory_mib() == [40960]
    assert compute() == [(8, 0)]
    assert mig_modes() == [None]  # MIG is not available in the guest
    # the vGPU facts live in the PCI config (test_sim_host.py reads them)
    bus = pynvml.nvmlDeviceGetPciInfo(handles()[0]).busId
    assert bus == "00000000:02:00.0"


@pytest.mark.parametrize("nvml", ["no-gpu"], indirect=True)
def test_no_gpu(nvml: sim.Simulation) -> None:
    assert pynvml.nvmlDeviceGetCount() == 0
    assert pynvml.nvmlSystemGetDriverVersion() == "550.54.15"
    with pytest.raises(pynvml.NVMLError_InvalidArgument):
        pynvml.nvmlDeviceGetHandleByIndex(0)


@pytest.mark.parametrize("nvml", sim.BUILTIN_PROFILES, indirect=True)
def test_shared_facts(nvml: sim.Simulation) -> None:
    """Driver and CUDA versions, index = minor, distinct stable UUIDs, handle round trips."""
    if nvml.profile.name != "gb200":
        assert pynvml.nvmlSystemGetDriverVersion() == "550.54.15"
        assert pynvml.nvmlSystemGetCudaDriverVersion() == 12040
        assert pynvml.nvmlSystemGetCudaDriverVersion_v2() == 12040
    assert pynvml.nvmlSystemGetNVMLVersion() == f"12.{pynvml.nvmlSystemGetDriverVersion()}"
    uuids = []
    for i, h in enumerate(handles()):
        assert pynvml.nvmlDeviceGetIndex(h) == i
        assert pynvml.nvmlDeviceGetMinorNumber(h) == i
        gpu_uuid = pynvml.nvmlDeviceGetUUID(h)
        assert gpu_uuid.startswith("GPU-")
        uuid.UUID(gpu_uuid[4:])
        uuids.append(gpu_uuid)
        same = pynvml.nvmlDeviceGetHandleByUUID(gpu_uuid)
        assert pynvml.nvmlDeviceGetIndex(same) == i
        assert pynvml.nvmlDeviceIsMigDeviceHandle(h).value == 0
    assert len(set(uuids)) == len(uuids)
    again = sim.load_profile(nvml.profile.name)
    assert [g.uuid for g in again.gpus] == uuids


def test_builtin_names_are_the_contract() -> None:
    assert sim.BUILTIN_PROFILES == (
        "dgx-a100",
        "dgx-a100-mig",
        "dgx-h100",
        "gb200",
        "t4",
        "l40s",
        "mixed",
        "vgpu",
        "no-gpu",
    )
