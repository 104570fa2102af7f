"""Per-model GPU facts, so that a profile can say `model: A100-SXM4-40GB` and stay short.

Names, memory and compute capability of the models of the built-in machines
(docs/profiles.md#built-in-machines) are contract values. MIG tables follow `nvidia-smi
mig -lgip` on the real parts. Profile names ("3g.20gb") agree with the GB formula
(docs/labels.md#mig-strategies-and-profile-names), which a test checks.
The GPU- and compute-instance profile records are defined in profile.py, with the
other records, and importable from here too.
"""

from __future__ import annotations

from typing import NamedTuple

import pynvml

from nvlib.sim.profile import CiProfile, GiProfile

# MIG placements are counted in memory slices: eight per GPU on every model here.
MEMORY_SLICES = 8


class GpuModel(NamedTuple):
    key: str  # what a profile names in `model:`
    name: str  # nvmlDeviceGetName
    memory_mib: int
    compute: tuple[int, int]
    architecture: int  # NVML_DEVICE_ARCH_*
    brand: int  # NVML_BRAND_*
    pci_device_id: int  # device << 16 | vendor, as nvmlPciInfo_t.pciDeviceId
    pci_subsystem_id: int
    nvlinks: int = 0  # NVLinks per GPU; active only where the profile has NVSwitches
    nvswitch_device_id: int | None = None  # PCI device of the NVSwitch it pairs with
    gi_profiles: tuple[GiProfile, ...] = ()  # empty: not MIG capable
    max_mig_devices: int = 7

    @property
    def mig_capable(self) -> bool:
        return bool(self.gi_profiles)

    def gi_profile(self, index: int) -> GiProfile | None:
        return next((p for p in self.gi_profiles if p.index == index), None)

    def ci_profiles(self, gi: GiProfile) -> tuple[CiProfile, ...]:
        return ci_profiles(gi)


# Compute-instance sizes a GPU instance of N slices can be split into (nvidia-smi mig -lcip).
_CI_SLICES: dict[int, tuple[int, ...]] = {
    1: (1,),
    2: (1, 2),
    3: (1, 2, 3),
    4: (1, 2, 4),
    7: (1, 2, 3, 4, 7),
    8: (1, 2, 4, 8),
}
_CI_INDEX = {
    1: pynvml.NVML_COMPUTE_INSTANCE_PROFILE_1_SLICE,
    2: pynvml.NVML_COMPUTE_INSTANCE_PROFILE_2_SLICE,
    3: pynvml.NVML_COMPUTE_INSTANCE_PROFILE_3_SLICE,
    4: pynvml.NVML_COMPUTE_INSTANCE_PROFILE_4_SLICE,
    6: pynvml.NVML_COMPUTE_INSTANCE_PROFILE_6_SLICE,
    7: pynvml.NVML_COMPUTE_INSTANCE_PROFILE_7_SLICE,
    8: pynvml.NVML_COMPUTE_INSTANCE_PROFILE_8_SLICE,
}


def ci_profiles(gi: GiProfile) -> tuple[CiProfile, ...]:
    """The CI profiles of a GI: a full one, and smaller ones sharing its engines."""
    per_slice = gi.multiprocessors // gi.slices
    return tuple(
        CiProfile(
            index=_CI_INDEX[c],
            slices=c,
            instances=gi.slices // c,
            multiprocessors=gi.multiprocessors if c == gi.slices else per_slice * c,
        )
        for c in _CI_SLICES.get(gi.slices, (gi.slices,))
    )


def mig_profile_name(gi: GiProfile, ci: CiProfile) -> str:
    """go-nvlib naming: `<G>g.<GB>gb[+attr]`, or `<C>c.<G>g.<GB>gb[+attr]` for a smaller CI."""
    return gi.name if ci.slices == gi.slices else f"{ci.slices}c.{gi.name}"


_P = pynvml
_ONE = tuple(range(7))


def _gi(
    index: int,
    pid: int,
    name: str,
    slices: int,
    instances: int,
    sms: int,
    engines: tuple[int, int, int, int, int],  # copy, decoder, encoder, jpeg, ofa
    memory_mib: int,
    size: int,
    starts: tuple[int, ...],
) -> GiProfile:
    ce, dec, enc, jpeg, ofa = engines
    return GiProfile(
        index, pid, name, slices, instances, sms, ce, dec, enc, jpeg, ofa, memory_mib, size, starts
    )


def _seven_slice_family(
    labels: tuple[str, str, str, str],  # the GB label of 1g, 1g-double, 3g/4g, 7g sizes
    memory: tuple[int, int, int, int],
    sms: tuple[int, int, int, int, int, int],  # 1g, 1g-double, 2g, 3g, 4g, 7g
    engines: dict[str, tuple[int, int, int, int, int]],
) -> tuple[GiProfile, ...]:
    """The GI profiles every 7-compute-slice part offers, under its own sizes and engines."""
    small, double, half, full = labels
    m1, m2, m4, m8 = memory
    # fmt: off
    return (
        _gi(_P.NVML_GPU_INSTANCE_PROFILE_1_SLICE, 19, f"1g.{small}", 1, 7, sms[0],
            engines["1g"], m1, 1, _ONE),
        _gi(_P.NVML_GPU_INSTANCE_PROFILE_1_SLICE_REV1, 20, f"1g.{small}+me", 1, 1, sms[0],
            engines["1g+me"], m1, 1, _ONE),
        _gi(_P.NVML_GPU_INSTANCE_PROFILE_1_SLICE_REV2, 15, f"1g.{double}", 1, 4, sms[1],
            engines["1g-double"], m2, 2, (0, 2, 4, 6)),
        _gi(_P.NVML_GPU_INSTANCE_PROFILE_2_SLICE, 14, f"2g.{double}", 2, 3, sms[2],
            engines["2g"], m2, 2, (0, 2, 4)),
        _gi(_P.NVML_GPU_INSTANCE_PROFILE_3_SLICE, 9, f"3g.{half}", 3, 2, sms[3],
            engines["3g"], m4, 4, (0, 4)),
        _gi(_P.NVML_GPU_INSTANCE_PROFILE_4_SLICE, 5, f"4g.{half}", 4, 1, sms[4],
            engines["4g"], m4, 4, (0,)),
        _gi(_P.NVML_GPU_INSTANCE_PROFILE_7_SLICE, 0, f"7g.{full}", 7, 1, sms[5],
            engines["7g"], m8, 8, (0,)),
    )
    # fmt: on


_AMPERE_ENGINES = {
    "1g": (1, 0, 0, 0, 0),
    "1g+me": (1, 1, 0, 1, 1),
    "1g-double": (1, 1, 0, 0, 0),
    "2g": (2, 1, 0, 0, 0),
    "3g": (3, 2, 0, 0, 0),
    "4g": (4, 2, 0, 0, 0),
    "7g": (7, 5, 0, 1, 1),
}
# Hopper and Blackwell give each slice its own decoder and JPEG engine; +me takes all.
_HOPPER_ENGINES = {
    "1g": (1, 1, 0, 1, 0),
    "1g+me": (1, 7, 0, 7, 1),
    "1g-double": (1, 1, 0, 1, 0),
    "2g": (2, 2, 0, 2, 0),
    "3g": (3, 3, 0, 3, 0),
    "4g": (4, 4, 0, 4, 0),
    "7g": (8, 7, 0, 7, 1),
}

_A100_40GB_MIG = _seven_slice_family(
    ("5gb", "10gb", "20gb", "40gb"), (4864, 9856, 19968, 40192),
    (14, 14, 28, 42, 56, 98), _AMPERE_ENGINES,
)  # fmt: skip
_A100_80GB_MIG = _seven_slice_family(
    ("10gb", "20gb", "40gb", "80gb"), (9728, 19968, 40192, 80640),
    (14, 14, 28, 42, 56, 98), _AMPERE_ENGINES,
)  # fmt: skip
_H100_80GB_MIG = _seven_slice_family(
    ("10gb", "20gb", "40gb", "80gb"), (9984, 20096, 40448, 81152),
    (16, 26, 32, 60, 64, 132), _HOPPER_ENGINES,
)  # fmt: skip
_GB200_MIG = _seven_slice_family(
    ("23gb", "47gb", "93gb", "186gb"), (23552, 47104, 94464, 188416),
    (18, 18, 36, 54, 72, 144), _HOPPER_ENGINES,
)  # fmt: skip

_NVSWITCH_A100 = 0x1AF1  # DGX A100 NVSwitch (GA100 generation)
_NVSWITCH_H100 = 0x22A3  # DGX H100 NVSwitch (third generation)

# fmt: off
MODELS: dict[str, GpuModel] = {
    m.key: m
    for m in (
        GpuModel("A100-SXM4-40GB", "NVIDIA A100-SXM4-40GB", 40960, (8, 0),
                 _P.NVML_DEVICE_ARCH_AMPERE, _P.NVML_BRAND_NVIDIA, 0x20B010DE, 0x134F10DE,
                 nvlinks=12, nvswitch_device_id=_NVSWITCH_A100, gi_profiles=_A100_40GB_MIG),
        GpuModel("A100-SXM4-80GB", "NVIDIA A100-SXM4-80GB", 81920, (8, 0),
                 _P.NVML_DEVICE_ARCH_AMPERE, _P.NVML_BRAND_NVIDIA, 0x20B210DE, 0x147F10DE,
                 nvlinks=12, nvswitch_device_id=_NVSWITCH_A100, gi_profiles=_A100_80GB_MIG),
        GpuModel("H100-SXM5-80GB", "NVIDIA H100 80GB HBM3", 81559, (9, 0),
                 _P.NVML_DEVICE_ARCH_HOPPER, _P.NVML_BRAND_NVIDIA, 0x233010DE, 0x16C110DE,
                 nvlinks=18, nvswitch_device_id=_NVSWITCH_H100, gi_profiles=_H100_80GB_MIG),
        GpuModel("GB200", "NVIDIA GB200", 189471, (10, 0),
                 _P.NVML_DEVICE_ARCH_BLACKWELL, _P.NVML_BRAND_NVIDIA, 0x294110DE, 0x20D510DE,
                 nvlinks=18, gi_profiles=_GB200_MIG),
        GpuModel("T4", "Tesla T4", 15360, (7, 5),
                 _P.NVML_DEVICE_ARCH_TURING, _P.NVML_BRAND_TESLA, 0x1EB810DE, 0x12A210DE),
        GpuModel("L40S", "NVIDIA L40S", 46068, (8, 9),
                 _P.NVML_DEVICE_ARCH_ADA, _P.NVML_BRAND_NVIDIA, 0x26B910DE, 0x185110DE),
        GpuModel("A10", "NVIDIA A10", 24564, (8, 6),
                 _P.NVML_DEVICE_ARCH_AMPERE, _P.NVML_BRAND_NVIDIA, 0x223610DE, 0x148210DE),
    )
}
# fmt: on

ARCHITECTURES: dict[str, int] = {
    "kepler": _P.NVML_DEVICE_ARCH_KEPLER,
    "maxwell": _P.NVML_DEVICE_ARCH_MAXWELL,
    "pascal": _P.NVML_DEVICE_ARCH_PASCAL,
    "volta": _P.NVML_DEVICE_ARCH_VOLTA,
    "turing": _P.NVML_DEVICE_ARCH_TURING,
    "ampere": _P.NVML_DEVICE_ARCH_AMPERE,
    "ada": _P.NVML_DEVICE_ARCH_ADA,
    "hopper": _P.NVML_DEVICE_ARCH_HOPPER,
    "blackwell": _P.NVML_DEVICE_ARCH_BLACKWELL,
    "unknown": _P.NVML_DEVICE_ARCH_UNKNOWN,
}

BRANDS: dict[str, int] = {
    "unknown": _P.NVML_BRAND_UNKNOWN,
    "quadro": _P.NVML_BRAND_QUADRO,
    "tesla": _P.NVML_BRAND_TESLA,
    "nvs": _P.NVML_BRAND_NVS,
    "geforce": _P.NVML_BRAND_GEFORCE,
    "titan": _P.NVML_BRAND_TITAN,
    "nvidia-vcs": _P.NVML_BRAND_NVIDIA_VCS,
    "nvidia-vws": _P.NVML_BRAND_NVIDIA_VWS,
    "nvidia-rtx": _P.NVML_BRAND_NVIDIA_RTX,
    "nvidia": _P.NVML_BRAND_NVIDIA,
}
