"""The NVML C functions the simulator answers, with their C signatures.

Kept apart from the callbacks so that a profile can be validated (a fault naming an
NVML call) without building any ctypes callback. Pointers are `c_void_p`: the
callback receives the caller's address and writes through it.
"""

from __future__ import annotations

import re
from ctypes import c_char_p, c_int, c_uint, c_ulonglong, c_void_p

_H = c_void_p  # an opaque handle: device, GPU instance, compute instance, event set
_P = c_void_p  # an output pointer or a caller's buffer

# name -> argument types; every function returns nvmlReturn_t except nvmlErrorString.
SIGNATURES: dict[str, tuple[type, ...]] = {
    "nvmlInit": (),
    "nvmlInit_v2": (),
    "nvmlInitWithFlags": (c_uint,),
    "nvmlShutdown": (),
    "nvmlErrorString": (c_int,),
    "nvmlSystemGetDriverVersion": (_P, c_uint),
    "nvmlSystemGetNVMLVersion": (_P, c_uint),
    "nvmlSystemGetCudaDriverVersion": (_P,),
    "nvmlSystemGetCudaDriverVersion_v2": (_P,),
    "nvmlDeviceGetCount": (_P,),
    "nvmlDeviceGetCount_v2": (_P,),
    "nvmlDeviceGetHandleByIndex": (c_uint, _P),
    "nvmlDeviceGetHandleByIndex_v2": (c_uint, _P),
    "nvmlDeviceGetHandleByUUID": (c_char_p, _P),
    "nvmlDeviceGetHandleByPciBusId_v2": (c_char_p, _P),
    "nvmlDeviceGetName": (_H, _P, c_uint),
    "nvmlDeviceGetUUID": (_H, _P, c_uint),
    "nvmlDeviceGetIndex": (_H, _P),
    "nvmlDeviceGetMinorNumber": (_H, _P),
    "nvmlDeviceGetMemoryInfo": (_H, _P),
    "nvmlDeviceGetMemoryInfo_v2": (_H, _P),
    "nvmlDeviceGetCudaComputeCapability": (_H, _P, _P),
    "nvmlDeviceGetPciInfo_v2": (_H, _P),
    "nvmlDeviceGetPciInfo_v3": (_H, _P),
    "nvmlDeviceGetBrand": (_H, _P),
    "nvmlDeviceGetArchitecture": (_H, _P),
    "nvmlDeviceGetNumaNodeId": (_H, _P),
    "nvmlDeviceGetMigMode": (_H, _P, _P),
    "nvmlDeviceGetMaxMigDeviceCount": (_H, _P),
    "nvmlDeviceGetMigDeviceHandleByIndex": (_H, c_uint, _P),
    "nvmlDeviceGetDeviceHandleFromMigDeviceHandle": (_H, _P),
    "nvmlDeviceIsMigDeviceHandle": (_H, _P),
    "nvmlDeviceGetAttributes_v2": (_H, _P),
    "nvmlDeviceGetGpuInstanceId": (_H, _P),
    "nvmlDeviceGetComputeInstanceId": (_H, _P),
    "nvmlDeviceGetGpuInstanceById": (_H, c_uint, _P),
    "nvmlDeviceGetGpuInstances": (_H, c_uint, _P, _P),
    "nvmlDeviceGetGpuInstanceProfileInfo": (_H, c_uint, _P),
    "nvmlDeviceGetGpuInstanceProfileInfoV": (_H, c_uint, _P),
    "nvmlGpuInstanceGetInfo": (_H, _P),
    "nvmlGpuInstanceGetComputeInstanceById": (_H, c_uint, _P),
    "nvmlGpuInstanceGetComputeInstances": (_H, c_uint, _P, _P),
    "nvmlGpuInstanceGetComputeInstanceProfileInfo": (_H, c_uint, c_uint, _P),
    "nvmlGpuInstanceGetComputeInstanceProfileInfoV": (_H, c_uint, c_uint, _P),
    "nvmlComputeInstanceGetInfo_v2": (_H, _P),
    "nvmlDeviceGetGpuFabricInfo": (_H, _P),
    "nvmlDeviceGetGpuFabricInfoV": (_H, _P),
    "nvmlDeviceGetTopologyCommonAncestor": (_H, _H, _P),
    "nvmlDeviceGetNvLinkState": (_H, c_uint, _P),
    "nvmlDeviceGetNvLinkRemotePciInfo_v2": (_H, c_uint, _P),
    "nvmlDeviceGetP2PStatus": (_H, _H, c_uint, _P),
    "nvmlEventSetCreate": (_P,),
    "nvmlDeviceGetSupportedEventTypes": (_H, _P),
    "nvmlDeviceRegisterEvents": (_H, c_ulonglong, _H),
    "nvmlEventSetWait_v2": (_H, _P, c_uint),
    "nvmlEventSetFree": (_H,),
}

# Answered before nvmlInit, as real NVML does.
NO_INIT_NEEDED = frozenset({"nvmlInit", "nvmlInit_v2", "nvmlInitWithFlags", "nvmlErrorString"})

_VERSION_SUFFIX = r"(_v\d+|V)$"  # compiled on first use (re caches it)

# pynvml.nvmlInit calls nvmlInitWithFlags: a fault on "nvmlInit" is meant for it too.
_ALIASES = {"nvmlInit": frozenset({"nvmlInit", "nvmlInit_v2", "nvmlInitWithFlags"})}


def base_name(symbol: str) -> str:
    """`nvmlDeviceGetMemoryInfo_v2` -> `nvmlDeviceGetMemoryInfo`: the pynvml wrapper's name."""
    return re.sub(_VERSION_SUFFIX, "", symbol)


CALL_NAMES = frozenset(SIGNATURES) | {base_name(s) for s in SIGNATURES} | frozenset(_ALIASES)


def call_matches(call: str, symbol: str) -> bool:
    """Whether a fault naming `call` applies to C function `symbol` (every version of it)."""
    if call in _ALIASES:
        return symbol in _ALIASES[call]
    return call in (symbol, base_name(symbol))
