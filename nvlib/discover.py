"""Discovery: walk NVML and the host once and return a plain `Machine`.

Each NVML call has one stated policy: NotSupported / FunctionNotFound mean the feature is
absent; any other failure raises `DiscoveryError` naming what was asked, with upstream's
wording where labels depend on it. Tolerated failures (memory info, PCI class, machine
type, vGPU enumeration: docs/labels.md#the-pipeline) are logged here and recorded as
`None` in the model.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pynvml

from nvlib import host
from nvlib.model import Fabric, Gpu, Machine, MigDevice, sysfs_bus_id
from nvlib.nvml import error_text, is_absent, optional, session, text

log = logging.getLogger(__name__)

MIB = 1024 * 1024
GIB = 1024 * MIB

# GPU instance profile index -> (memory slices G, attribute suffix); go-nvlib's naming.
_GI_PROFILES: dict[int, tuple[int, str]] = {
    pynvml.NVML_GPU_INSTANCE_PROFILE_1_SLICE: (1, ""),
    pynvml.NVML_GPU_INSTANCE_PROFILE_2_SLICE: (2, ""),
    pynvml.NVML_GPU_INSTANCE_PROFILE_3_SLICE: (3, ""),
    pynvml.NVML_GPU_INSTANCE_PROFILE_4_SLICE: (4, ""),
    pynvml.NVML_GPU_INSTANCE_PROFILE_6_SLICE: (6, ""),
    pynvml.NVML_GPU_INSTANCE_PROFILE_7_SLICE: (7, ""),
    pynvml.NVML_GPU_INSTANCE_PROFILE_8_SLICE: (8, ""),
    pynvml.NVML_GPU_INSTANCE_PROFILE_1_SLICE_REV1: (1, "+me"),
    pynvml.NVML_GPU_INSTANCE_PROFILE_2_SLICE_REV1: (2, "+me"),
    pynvml.NVML_GPU_INSTANCE_PROFILE_1_SLICE_REV2: (1, ""),
    pynvml.NVML_GPU_INSTANCE_PROFILE_1_SLICE_GFX: (1, "+gfx"),
    pynvml.NVML_GPU_INSTANCE_PROFILE_2_SLICE_GFX: (2, "+gfx"),
    pynvml.NVML_GPU_INSTANCE_PROFILE_4_SLICE_GFX: (4, "+gfx"),
    pynvml.NVML_GPU_INSTANCE_PROFILE_1_SLICE_NO_ME: (1, "-me"),
    pynvml.NVML_GPU_INSTANCE_PROFILE_2_SLICE_NO_ME: (2, "-me"),
    pynvml.NVML_GPU_INSTANCE_PROFILE_1_SLICE_ALL_ME: (1, "+me.all"),
    pynvml.NVML_GPU_INSTANCE_PROFILE_2_SLICE_ALL_ME: (2, "+me.all"),
}
_GI_PROFILE_3_SLICE_GFX = getattr(pynvml, "NVML_GPU_INSTANCE_PROFILE_3_SLICE_GFX", None)
if _GI_PROFILE_3_SLICE_GFX is not None:
    _GI_PROFILES[_GI_PROFILE_3_SLICE_GFX] = (3, "+gfx")

# Compute instance profile index -> compute slices C.
_CI_SLICES: dict[int, int] = {
    pynvml.NVML_COMPUTE_INSTANCE_PROFILE_1_SLICE: 1,
    pynvml.NVML_COMPUTE_INSTANCE_PROFILE_2_SLICE: 2,
    pynvml.NVML_COMPUTE_INSTANCE_PROFILE_3_SLICE: 3,
    pynvml.NVML_COMPUTE_INSTANCE_PROFILE_4_SLICE: 4,
    pynvml.NVML_COMPUTE_INSTANCE_PROFILE_6_SLICE: 6,
    pynvml.NVML_COMPUTE_INSTANCE_PROFILE_7_SLICE: 7,
    pynvml.NVML_COMPUTE_INSTANCE_PROFILE_8_SLICE: 8,
    pynvml.NVML_COMPUTE_INSTANCE_PROFILE_1_SLICE_REV1: 1,
}
_CI_PROFILE_7_SLICE_NVL = getattr(pynvml, "NVML_COMPUTE_INSTANCE_PROFILE_7_SLICE_NVL", None)
if _CI_PROFILE_7_SLICE_NVL is not None:
    _CI_SLICES[_CI_PROFILE_7_SLICE_NVL] = 7

_FULL_GPU = 0xFFFFFFFF


class DiscoveryError(RuntimeError):
    """NVML answered in a way that makes this pass's model unusable."""


def discover(
    root: Path = Path("/"),
    machine_type_file: str = host.DEFAULT_MACHINE_TYPE_FILE,
    *,
    with_nvml: bool = True,
    with_vgpu: bool = True,
    facts: host.HostFacts | None = None,
) -> Machine:
    """One pass over NVML (unless `with_nvml` is false) and the host under `root`.

    Raises NvmlInitError when NVML cannot be initialised and DiscoveryError for a fatal
    NVML answer. Without NVML the machine has no GPUs but still carries the vGPU facts,
    which upstream reads from PCI independently of NVML. Only GFD labels vGPU facts: the
    CDI generator and the device plugin pass `with_vgpu=False`, which skips the PCI scan
    (and the warning an unprivileged container gets from it) and leaves `vgpu` None. A
    long-running caller passes the same `facts` every pass so that static host files are
    read once.
    """
    if facts is None:
        facts = host.HostFacts(root, machine_type_file)
    vgpu = None
    if with_vgpu:
        try:
            vgpu = facts.vgpu()
        except host.DriverRecordError as err:
            raise DiscoveryError(str(err)) from err
    if not with_nvml:
        return Machine(driver_version="", cuda_driver_version=0, vgpu=vgpu)
    with session():
        try:
            driver = text(pynvml.nvmlSystemGetDriverVersion())
            cuda = pynvml.nvmlSystemGetCudaDriverVersion()
            count = pynvml.nvmlDeviceGetCount()
        except pynvml.NVMLError as err:
            raise DiscoveryError(f"error querying NVML: {error_text(err)}") from err
        gpus = tuple(_gpu(index, facts) for index in range(count))
    machine_type = facts.machine_type() if gpus else None
    return Machine(driver, cuda, gpus, machine_type, vgpu)


def driver_version() -> str:
    """nvmlSystemGetDriverVersion and nothing else, for a caller that needs no GPU.

    (The CDI generator's management mode: it mounts the driver's files for whatever
    GPUs exist, so it asks NVML for the version only, as upstream does.) Raises
    NvmlInitError or DiscoveryError.
    """
    with session():
        try:
            return text(pynvml.nvmlSystemGetDriverVersion())
        except pynvml.NVMLError as err:
            raise DiscoveryError(f"error querying NVML: {error_text(err)}") from err


def _gpu(index: int, facts: host.HostFacts) -> Gpu:
    try:
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        name = text(pynvml.nvmlDeviceGetName(handle))
        gpu_uuid = text(pynvml.nvmlDeviceGetUUID(handle))
        bus_id = text(pynvml.nvmlDeviceGetPciInfo(handle).busId)
        minor = optional(lambda: pynvml.nvmlDeviceGetMinorNumber(handle))
    except pynvml.NVMLError as err:
        raise DiscoveryError(f"error getting device {index}: {error_text(err)}") from err
    try:
        major, minor_cc = pynvml.nvmlDeviceGetCudaComputeCapability(handle)
    except pynvml.NVMLError as err:
        raise DiscoveryError(
            "failed to create architecture labels: failed to determine CUDA compute "
            f"capability: {error_text(err)}"
        ) from err
    memory = _memory_total(handle)
    mig_capable, mig_enabled = _mig_mode(handle)
    migs = _mig_devices(handle, memory or 0) if mig_enabled else ()
    sysfs_id = sysfs_bus_id(bus_id)
    return Gpu(
        index=index,
        uuid=gpu_uuid,
        name=name,
        memory_total_bytes=memory,
        compute_major=major,
        compute_minor=minor_cc,
        minor=-1 if minor is None else minor,
        pci_bus_id=bus_id,
        mig_capable=mig_capable,
        mig_enabled=mig_enabled,
        mig_devices=migs,
        fabric=_fabric(handle),
        pci_class=facts.pci_class(sysfs_id),
        numa_node=facts.numa_node(sysfs_id),
    )


def _memory_total(handle: object) -> int | None:
    try:
        return int(pynvml.nvmlDeviceGetMemoryInfo(handle).total)
    except pynvml.NVMLError as err:
        log.warning("Ignoring error getting memory info for device: %s", error_text(err))
        return None


def _mig_mode(handle: object) -> tuple[bool, bool]:
    try:
        current, _pending = pynvml.nvmlDeviceGetMigMode(handle)
    except pynvml.NVMLError as err:
        if is_absent(err):
            return False, False
        raise DiscoveryError(
            f"error creating mig capability labeler: error getting mig capability: "
            f"{error_text(err)}"
        ) from err
    return True, current == pynvml.NVML_DEVICE_MIG_ENABLE


def _fabric(handle: object) -> Fabric | None:
    """Fabric-attached means state completed, status success and a non-zero cluster UUID."""
    try:
        try:
            info = pynvml.c_nvmlGpuFabricInfo_v2_t()
            pynvml.nvmlDeviceGetGpuFabricInfoV(handle, pynvml.byref(info))
        except pynvml.NVMLError_FunctionNotFound:
            info = pynvml.c_nvmlGpuFabricInfo_t()
            pynvml.nvmlDeviceGetGpuFabricInfo(handle, pynvml.byref(info))
    except pynvml.NVMLError as err:
        if is_absent(err):
            return None
        raise DiscoveryError(f"error checking imex capability: {error_text(err)}") from err
    raw = bytes(info.clusterUuid)
    if (
        info.state != pynvml.NVML_GPU_FABRIC_STATE_COMPLETED
        or info.status != pynvml.NVML_SUCCESS
        or raw == bytes(16)
    ):
        return None
    return Fabric(cluster_uuid=canonical_uuid(raw), clique_id=int(info.cliqueId))


def canonical_uuid(raw: bytes) -> str:
    """The 8-4-4-4-12 lower-case form, without importing uuid (platform, ~3 ms)."""
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _mig_devices(parent: object, parent_memory: int) -> tuple[MigDevice, ...]:
    try:
        slots = pynvml.nvmlDeviceGetMaxMigDeviceCount(parent)
    except pynvml.NVMLError as err:
        raise DiscoveryError(f"error getting max MIG device count: {error_text(err)}") from err
    profiles = _MigProfiles(parent, parent_memory)
    devices = []
    for slot in range(slots):
        try:
            handle = pynvml.nvmlDeviceGetMigDeviceHandleByIndex(parent, slot)
        except pynvml.NVMLError_NotFound:
            continue  # an empty slot: MIG devices need not be contiguous
        except pynvml.NVMLError as err:
            raise DiscoveryError(f"error getting MIG device {slot}: {error_text(err)}") from err
        try:
            devices.append(_mig_device(profiles, handle, slot))
        except pynvml.NVMLError as err:
            raise DiscoveryError(
                f"error getting MIG device {slot} info: {error_text(err)}"
            ) from err
    return tuple(devices)


def _mig_device(profiles: _MigProfiles, handle: object, slot: int) -> MigDevice:
    attrs = pynvml.nvmlDeviceGetAttributes(handle)
    gi_id = pynvml.nvmlDeviceGetGpuInstanceId(handle)
    ci_id = pynvml.nvmlDeviceGetComputeInstanceId(handle)
    return MigDevice(
        index=slot,
        uuid=text(pynvml.nvmlDeviceGetUUID(handle)),
        gi_id=gi_id,
        ci_id=ci_id,
        profile=profiles.name(gi_id, ci_id),
        memory_mib=int(attrs.memorySizeMB),
        multiprocessors=attrs.multiprocessorCount,
        gi_slices=attrs.gpuInstanceSliceCount,
        ci_slices=attrs.computeInstanceSliceCount,
        copy_engines=attrs.sharedCopyEngineCount,
        decoders=attrs.sharedDecoderCount,
        encoders=attrs.sharedEncoderCount,
        jpegs=attrs.sharedJpegCount,
        ofas=attrs.sharedOfaCount,
    )


class _MigProfiles:
    """go-nvlib's MIG profile names for one parent GPU's devices, within one pass.

    Naming a MIG device means finding, among every GI profile index and then every CI
    profile index and engine profile, the ones whose ids NVML reports for it. Those
    answers are the same for every device of the parent (NVML: profile information is
    immutable while the MIG mode lasts, and a CI profile's answer depends only on its GPU
    instance's profile), so each is asked once per parent and pass, lazily and in the
    same order as before: the first query that fails still fails on the same device.
    Nothing outlives the pass, so a MIG reconfiguration between passes is seen.
    """

    def __init__(self, parent: object, parent_memory: int) -> None:
        self._parent = parent
        self._memory = parent_memory
        self._gi_info: dict[int, Any] = {}  # GI profile index -> info, None: absent
        self._ci_info: dict[tuple[int, int, int], Any] = {}  # (GI profile id, CI index, engine)
        self._names: dict[tuple[int, int], str] = {}  # (GI profile id, CI profile id)

    def name(self, gi_id: int, ci_id: int) -> str:
        """The name of the MIG device in GPU instance `gi_id`, compute instance `ci_id`."""
        gi = pynvml.nvmlDeviceGetGpuInstanceById(self._parent, gi_id)
        gi_profile_id = pynvml.nvmlGpuInstanceGetInfo(gi).profileId
        ci = pynvml.nvmlGpuInstanceGetComputeInstanceById(gi, ci_id)
        ci_profile_id = pynvml.nvmlComputeInstanceGetInfo(ci).profileId
        key = (gi_profile_id, ci_profile_id)
        if key not in self._names:
            self._names[key] = self._resolve(gi, gi_profile_id, ci_profile_id)
        return self._names[key]

    def _resolve(self, gi: object, gi_profile_id: int, ci_profile_id: int) -> str:
        for gi_index, (g_slices, suffix) in _GI_PROFILES.items():
            info = self._gi(gi_index)
            if info is None or info.id != gi_profile_id:
                continue
            for ci_index, c_slices in _CI_SLICES.items():
                for engine in range(pynvml.NVML_COMPUTE_INSTANCE_ENGINE_PROFILE_COUNT):
                    ci_info = self._ci(gi, gi_profile_id, ci_index, engine)
                    if ci_info is None or ci_info.id != ci_profile_id:
                        continue
                    gb = mig_memory_gb(int(info.memorySizeMB), self._memory)
                    base = (
                        f"{g_slices}g.{gb}gb"
                        if c_slices == g_slices
                        else (f"{c_slices}c.{g_slices}g.{gb}gb")
                    )
                    return base + suffix
        raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_FOUND)

    def _gi(self, index: int) -> Any:
        if index not in self._gi_info:
            self._gi_info[index] = _profile_info(
                pynvml.nvmlDeviceGetGpuInstanceProfileInfo, self._parent, index
            )
        return self._gi_info[index]

    def _ci(self, gi: object, gi_profile_id: int, index: int, engine: int) -> Any:
        """Asked of the first GPU instance of that profile; its siblings answer alike."""
        key = (gi_profile_id, index, engine)
        if key not in self._ci_info:
            self._ci_info[key] = _profile_info(
                pynvml.nvmlGpuInstanceGetComputeInstanceProfileInfo, gi, index, engine
            )
        return self._ci_info[key]


def _profile_info(query: Callable[..., Any], *args: object) -> Any:
    """Profiles a GPU lacks answer NotSupported or InvalidArgument: skip them."""
    try:
        return query(*args)
    except (pynvml.NVMLError_NotSupported, pynvml.NVMLError_InvalidArgument):
        return None


def mig_memory_gb(memory_mib: int, total_bytes: int) -> int:
    """The `<GB>gb` of a MIG profile name, rounding half away from zero.

    docs/labels.md#mig-strategies-and-profile-names has the formula.
    """
    if total_bytes <= 0:
        return 0
    fraction = math.ceil((memory_mib * MIB / total_bytes) * 8) / 8
    total_gb = math.ceil(total_bytes / GIB)
    return math.floor(fraction * total_gb + 0.5)
