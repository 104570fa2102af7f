"""MIG: modes, MIG device handles, GPU and compute instances and their profiles.

Policy, after the NVML documentation: a GPU without MIG answers NOT_SUPPORTED; a MIG
device handle passed where a GPU is needed is INVALID_ARGUMENT; a GPU handle passed
where a MIG device is needed is NOT_SUPPORTED; an index with nothing there is
NOT_FOUND. Profile info is answered whatever the MIG mode, so that the set of possible
profiles (the device plugin's `mixed` defaults) is known before MIG is enabled.
"""

from __future__ import annotations

from ctypes import c_uint, c_void_p

import pynvml

from nvlib.sim.calls import answers
from nvlib.sim.cdata import INVALID_ARGUMENT, SUCCESS, as_pointer, at, put, put_handle
from nvlib.sim.gpus import ci_profiles, mig_profile_name
from nvlib.sim.profile import CiProfile, GiProfile
from nvlib.sim.state import Gpu, GpuInstance, Mig, NvmlState

NOT_SUPPORTED = pynvml.NVML_ERROR_NOT_SUPPORTED
NOT_FOUND = pynvml.NVML_ERROR_NOT_FOUND


def _mig_gpu(state: NvmlState, handle: int | None) -> tuple[int, Gpu | None]:
    """A MIG-capable GPU, or the error a call that needs one returns."""
    device = state.device(handle)
    if device is None or isinstance(device, Mig):
        return INVALID_ARGUMENT, None
    if not device.spec.mig_capable:
        return NOT_SUPPORTED, None
    return SUCCESS, device


@answers("nvmlDeviceGetMigMode")
def mig_mode(state: NvmlState, handle: int | None, current: int | None, pending: int | None) -> int:
    ret, gpu = _mig_gpu(state, handle)
    if gpu is None:
        return ret
    mode = pynvml.NVML_DEVICE_MIG_ENABLE if gpu.spec.mig_enabled else pynvml.NVML_DEVICE_MIG_DISABLE
    put(current, c_uint, mode)
    return put(pending, c_uint, mode)


@answers("nvmlDeviceGetMaxMigDeviceCount")
def max_mig_devices(state: NvmlState, handle: int | None, out: int | None) -> int:
    ret, gpu = _mig_gpu(state, handle)
    return ret if gpu is None else put(out, c_uint, gpu.spec.max_mig_devices)


@answers("nvmlDeviceGetMigDeviceHandleByIndex")
def mig_by_index(state: NvmlState, handle: int | None, index: int, out: int | None) -> int:
    ret, gpu = _mig_gpu(state, handle)
    if gpu is None:
        return ret
    if index >= gpu.spec.max_mig_devices:
        return INVALID_ARGUMENT
    if index >= len(gpu.migs):
        return NOT_FOUND
    return put_handle(out, gpu.migs[index].handle)


@answers("nvmlDeviceGetDeviceHandleFromMigDeviceHandle")
def parent(state: NvmlState, handle: int | None, out: int | None) -> int:
    device = state.device(handle)
    if not isinstance(device, Mig):
        return INVALID_ARGUMENT
    return put_handle(out, device.gpu.handle)


@answers("nvmlDeviceIsMigDeviceHandle")
def is_mig(state: NvmlState, handle: int | None, out: int | None) -> int:
    device = state.device(handle)
    if device is None:
        return INVALID_ARGUMENT
    return put(out, c_uint, int(isinstance(device, Mig)))


def _mig(state: NvmlState, handle: int | None) -> tuple[int, Mig | None]:
    device = state.device(handle)
    if device is None:
        return INVALID_ARGUMENT, None
    return (SUCCESS, device) if isinstance(device, Mig) else (NOT_SUPPORTED, None)


@answers("nvmlDeviceGetAttributes_v2")
def attributes(state: NvmlState, handle: int | None, out: int | None) -> int:
    ret, mig = _mig(state, handle)
    if mig is None or not out:
        return ret if mig is None else INVALID_ARGUMENT
    gi, ci = mig.spec.gi_profile, mig.spec.ci_profile
    attrs = at(out, pynvml.c_nvmlDeviceAttributes)
    attrs.multiprocessorCount = ci.multiprocessors
    attrs.sharedCopyEngineCount = gi.copy_engines
    attrs.sharedDecoderCount = gi.decoders
    attrs.sharedEncoderCount = gi.encoders
    attrs.sharedJpegCount = gi.jpegs
    attrs.sharedOfaCount = gi.ofas
    attrs.gpuInstanceSliceCount = gi.slices
    attrs.computeInstanceSliceCount = ci.slices
    attrs.memorySizeMB = gi.memory_mib
    return SUCCESS


@answers("nvmlDeviceGetGpuInstanceId")
def gpu_instance_id(state: NvmlState, handle: int | None, out: int | None) -> int:
    ret, mig = _mig(state, handle)
    return ret if mig is None else put(out, c_uint, mig.gi.id)


@answers("nvmlDeviceGetComputeInstanceId")
def compute_instance_id(state: NvmlState, handle: int | None, out: int | None) -> int:
    ret, mig = _mig(state, handle)
    return ret if mig is None else put(out, c_uint, mig.ci.id)


@answers("nvmlDeviceGetGpuInstanceById")
def gpu_instance_by_id(state: NvmlState, handle: int | None, gi_id: int, out: int | None) -> int:
    ret, gpu = _mig_gpu(state, handle)
    if gpu is None:
        return ret
    if not gpu.spec.mig_enabled:
        return NOT_SUPPORTED
    gi = gpu.gis.get(gi_id)
    return NOT_FOUND if gi is None else put_handle(out, gi.handle)


@answers("nvmlDeviceGetGpuInstances")
def gpu_instances(
    state: NvmlState, handle: int | None, profile_id: int, out: int | None, count: int | None
) -> int:
    ret, gpu = _mig_gpu(state, handle)
    if gpu is None:
        return ret
    if not out or not count:
        return INVALID_ARGUMENT
    found = [gi for gi in gpu.gis.values() if gi.profile.id == profile_id]
    for i, gi in enumerate(found):
        put(out + i * 8, c_void_p, gi.handle)
    return put(count, c_uint, len(found))


def _gi_profile(gpu: Gpu, index: int) -> tuple[int, GiProfile | None]:
    if index >= pynvml.NVML_GPU_INSTANCE_PROFILE_COUNT:
        return INVALID_ARGUMENT, None
    profile = next((p for p in gpu.spec.gi_profiles if p.index == index), None)
    return (NOT_SUPPORTED, None) if profile is None else (SUCCESS, profile)


def _fill_gi_info(info: pynvml.c_nvmlGpuInstanceProfileInfo_t, profile: GiProfile) -> None:
    info.id = profile.id
    info.isP2pSupported = 0
    info.sliceCount = profile.slices
    info.instanceCount = profile.instances
    info.multiprocessorCount = profile.multiprocessors
    info.copyEngineCount = profile.copy_engines
    info.decoderCount = profile.decoders
    info.encoderCount = profile.encoders
    info.jpegCount = profile.jpegs
    info.ofaCount = profile.ofas
    info.memorySizeMB = profile.memory_mib


@answers("nvmlDeviceGetGpuInstanceProfileInfo")
def gi_profile_info(state: NvmlState, handle: int | None, index: int, out: int | None) -> int:
    ret, gpu = _mig_gpu(state, handle)
    if gpu is None:
        return ret
    ret, profile = _gi_profile(gpu, index)
    if profile is None or not out:
        return ret if profile is None else INVALID_ARGUMENT
    _fill_gi_info(at(out, pynvml.c_nvmlGpuInstanceProfileInfo_t), profile)
    return SUCCESS


@answers("nvmlDeviceGetGpuInstanceProfileInfoV")
def gi_profile_info_v(state: NvmlState, handle: int | None, index: int, out: int | None) -> int:
    ret, gpu = _mig_gpu(state, handle)
    if gpu is None:
        return ret
    ret, profile = _gi_profile(gpu, index)
    if profile is None or not out:
        return ret if profile is None else INVALID_ARGUMENT
    info = at(out, pynvml.c_nvmlGpuInstanceProfileInfo_v2_t)
    if info.version != pynvml.nvmlGpuInstanceProfileInfo_v2:
        return pynvml.NVML_ERROR_ARGUMENT_VERSION_MISMATCH
    _fill_gi_info(info, profile)
    info.name = f"MIG {profile.name}".encode()
    return SUCCESS


@answers("nvmlGpuInstanceGetInfo")
def gi_info(state: NvmlState, handle: int | None, out: int | None) -> int:
    gi = state.gpu_instance(handle)
    if gi is None or not out:
        return INVALID_ARGUMENT
    info = at(out, pynvml.c_nvmlGpuInstanceInfo_t)
    info.device = as_pointer(gi.gpu.handle, pynvml.c_nvmlDevice_t)
    info.id = gi.id
    info.profileId = gi.profile.id
    info.placement.start = gi.start
    info.placement.size = gi.profile.placement_size
    return SUCCESS


@answers("nvmlGpuInstanceGetComputeInstanceById")
def ci_by_id(state: NvmlState, handle: int | None, ci_id: int, out: int | None) -> int:
    gi = state.gpu_instance(handle)
    if gi is None:
        return INVALID_ARGUMENT
    ci = gi.cis.get(ci_id)
    return NOT_FOUND if ci is None else put_handle(out, ci.handle)


@answers("nvmlGpuInstanceGetComputeInstances")
def compute_instances(
    state: NvmlState, handle: int | None, profile_id: int, out: int | None, count: int | None
) -> int:
    gi = state.gpu_instance(handle)
    if gi is None or not out or not count:
        return INVALID_ARGUMENT
    found = [ci for ci in gi.cis.values() if ci.profile.index == profile_id]
    for i, ci in enumerate(found):
        put(out + i * 8, c_void_p, ci.handle)
    return put(count, c_uint, len(found))


def _ci_profile(gi: GpuInstance, index: int, engines: int) -> tuple[int, CiProfile | None]:
    if (
        index >= pynvml.NVML_COMPUTE_INSTANCE_PROFILE_COUNT
        or engines >= pynvml.NVML_COMPUTE_INSTANCE_ENGINE_PROFILE_COUNT
    ):
        return INVALID_ARGUMENT, None
    profile = _ci_table(gi.profile).get(index)
    return (NOT_SUPPORTED, None) if profile is None else (SUCCESS, profile)


# GI profile -> its CI profiles by index. Profiles are immutable records, and building
# the CI records was most of a profile info call's cost (a caller asks for every index).
_CI_TABLES: dict[GiProfile, dict[int, CiProfile]] = {}


def _ci_table(gi: GiProfile) -> dict[int, CiProfile]:
    table = _CI_TABLES.get(gi)
    if table is None:
        table = _CI_TABLES[gi] = {p.index: p for p in reversed(ci_profiles(gi))}
    return table


def _fill_ci_info(
    info: pynvml.c_nvmlComputeInstanceProfileInfo_t, gi: GpuInstance, profile: CiProfile
) -> None:
    info.id = profile.index
    info.sliceCount = profile.slices
    info.instanceCount = profile.instances
    info.multiprocessorCount = profile.multiprocessors
    info.sharedCopyEngineCount = gi.profile.copy_engines
    info.sharedDecoderCount = gi.profile.decoders
    info.sharedEncoderCount = gi.profile.encoders
    info.sharedJpegCount = gi.profile.jpegs
    info.sharedOfaCount = gi.profile.ofas


@answers("nvmlGpuInstanceGetComputeInstanceProfileInfo")
def ci_profile_info(
    state: NvmlState, handle: int | None, index: int, engines: int, out: int | None
) -> int:
    gi = state.gpu_instance(handle)
    if gi is None or not out:
        return INVALID_ARGUMENT
    ret, profile = _ci_profile(gi, index, engines)
    if profile is None:
        return ret
    _fill_ci_info(at(out, pynvml.c_nvmlComputeInstanceProfileInfo_t), gi, profile)
    return SUCCESS


@answers("nvmlGpuInstanceGetComputeInstanceProfileInfoV")
def ci_profile_info_v(
    state: NvmlState, handle: int | None, index: int, engines: int, out: int | None
) -> int:
    gi = state.gpu_instance(handle)
    if gi is None or not out:
        return INVALID_ARGUMENT
    ret, profile = _ci_profile(gi, index, engines)
    if profile is None:
        return ret
    info = at(out, pynvml.c_nvmlComputeInstanceProfileInfo_v2_t)
    if info.version != pynvml.nvmlComputeInstanceProfileInfo_v2:
        return pynvml.NVML_ERROR_ARGUMENT_VERSION_MISMATCH
    _fill_ci_info(info, gi, profile)
    info.name = f"MIG {mig_profile_name(gi.profile, profile)}".encode()
    return SUCCESS


@answers("nvmlComputeInstanceGetInfo_v2")
def ci_info(state: NvmlState, handle: int | None, out: int | None) -> int:
    ci = state.compute_instance(handle)
    if ci is None or not out:
        return INVALID_ARGUMENT
    info = at(out, pynvml.c_nvmlComputeInstanceInfo_t)
    info.device = as_pointer(ci.gi.gpu.handle, pynvml.c_nvmlDevice_t)
    info.gpuInstance = as_pointer(ci.gi.handle, pynvml.c_nvmlGpuInstance_t)
    info.id = ci.id
    info.profileId = ci.profile.index
    info.placement.start = 0
    info.placement.size = ci.profile.slices
    return SUCCESS
