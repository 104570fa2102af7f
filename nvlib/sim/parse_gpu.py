"""One `gpus:` entry of a profile -> the GpuSpecs of its `count` GPUs.

An entry names a model from gpus.py and overrides what it likes, or describes a GPU
completely (name, memory and compute are then required). Facts that differ per GPU
(bus ids, UUIDs, minors, NUMA nodes) are lists of `count` values.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import TypeVar

import pynvml

from nvlib.sim import _checks as check
from nvlib.sim.errors import ProfileError
from nvlib.sim.gpus import ARCHITECTURES, BRANDS, MODELS, GpuModel
from nvlib.sim.mig import Placed, place
from nvlib.sim.profile import FabricSpec, GiProfile, GpuSpec, MigSpec, PciAddress, VGpuSpec

UUID_NAMESPACE = uuid.UUID("3b0e6f5c-9a43-5c1e-8d2a-6b7f0c4e9a10")
_KEYS = (
    "model count name memory compute architecture brand pci_device_id pci_subsystem_id "
    "pci_class bus_ids uuids minors numa_node pcie_switch nvlinks mig mig_devices fabric vgpu"
).split()
_MIG_MODES = ("unsupported", "disabled", "enabled")
_FABRIC_STATES = {
    "not_supported": pynvml.NVML_GPU_FABRIC_STATE_NOT_SUPPORTED,
    "not_started": pynvml.NVML_GPU_FABRIC_STATE_NOT_STARTED,
    "in_progress": pynvml.NVML_GPU_FABRIC_STATE_IN_PROGRESS,
    "completed": pynvml.NVML_GPU_FABRIC_STATE_COMPLETED,
}
# compiled on first use (re caches them): built-in profiles never parse these
_BUS_ID = r"^([0-9a-fA-F]{4,8}):([0-9a-fA-F]{2}):([0-9a-fA-F]{2})\.([0-7])$"
_COMPUTE = r"^(\d+)\.(\d+)$"
_VGPU_FIELD_BYTES = 10  # the host driver record's version and branch are 10-byte fields

T = TypeVar("T")


class _Entry:
    """One `gpus[i]` mapping, read key by key with the model's facts as defaults."""

    def __init__(self, value: object, path: str) -> None:
        self.entry = check.mapping(value, path, _KEYS)
        self.p = f"{path}."
        self.model = _model(self.entry.get("model"), self.p + "model")
        self.count = check.positive(self.entry.get("count", 1), self.p + "count")

    def get(self, key: str, default: object) -> object:
        return self.entry.get(key, default)

    def need(self, key: str, model_default: object) -> object:
        """A fact the model supplies, required when there is no model."""
        if key in self.entry:
            return self.entry[key]
        if self.model is None:
            raise ProfileError(self.p + key, None, "required when no model is given")
        return model_default

    def hex(self, key: str, default: int, high: int) -> int:
        return check.hex_int(self.get(key, default), self.p + key, high)

    def named(self, key: str, table: dict[str, int], default: int) -> int:
        if key not in self.entry:
            return default
        return table[check.choice(self.entry[key], self.p + key, table)]


def gpu_entry(value: object, path: str, first: int, profile_name: str) -> list[GpuSpec]:
    e = _Entry(value, path)
    model, p, count = e.model, e.p, e.count
    name = check.string(e.need("name", model and model.name), p + "name")
    memory = check.positive(e.need("memory", model and model.memory_mib), p + "memory")
    compute = _compute(e.need("compute", model and "{}.{}".format(*model.compute)), p + "compute")
    indices = range(first, first + count)
    buses = _per_gpu(e, "bus_ids", bus_id, [PciAddress(0, 0x10 + i, 0, 0) for i in indices])
    uuids = _per_gpu(e, "uuids", _gpu_uuid, [_derived_uuid(profile_name, i) for i in indices])
    minors = _per_gpu(e, "minors", _minor, list(indices))
    numas = check.per_gpu(e.get("numa_node", -1), p + "numa_node", count, numa, scalar=True)
    switches = check.per_gpu(
        e.get("pcie_switch", None), p + "pcie_switch", count, _optional_int, scalar=True
    )
    mig, gi_profiles, layout = _mig(e, model.key if model else name)
    unknown_arch, nvidia_brand = ARCHITECTURES["unknown"], BRANDS["nvidia"]
    template = GpuSpec(
        index=first,
        model=model.key if model else None,
        name=name,
        uuid=uuids[0],
        memory_mib=memory,
        compute=compute,
        architecture=e.named(
            "architecture", ARCHITECTURES, model.architecture if model else unknown_arch
        ),
        brand=e.named("brand", BRANDS, model.brand if model else nvidia_brand),
        pci_device_id=e.hex("pci_device_id", model.pci_device_id if model else 0x10DE, 0xFFFFFFFF),
        pci_subsystem_id=e.hex(
            "pci_subsystem_id", model.pci_subsystem_id if model else 0, 0xFFFFFFFF
        ),
        pci_class=e.hex("pci_class", 0x030200, 0xFFFFFF),
        bus=buses[0],
        minor=minors[0],
        numa_node=numas[0],
        pcie_switch=switches[0],
        nvlinks=check.integer(
            e.get("nvlinks", model.nvlinks if model else 0),
            p + "nvlinks",
            0,
            pynvml.NVML_NVLINK_MAX_LINKS,
        ),
        gi_profiles=gi_profiles,
        max_mig_devices=model.max_mig_devices if model and gi_profiles else 0,
        mig_enabled=mig == "enabled",
        mig_devices=(),
        fabric=_fabric(e.entry["fabric"], p + "fabric") if "fabric" in e.entry else None,
        vgpu=_vgpu(e.entry["vgpu"], p + "vgpu") if "vgpu" in e.entry else None,
    )
    return [
        template._replace(
            index=index,
            uuid=uuids[k],
            bus=buses[k],
            minor=minors[k],
            numa_node=numas[k],
            pcie_switch=switches[k],
            mig_devices=_mig_devices(layout, uuids[k]),
        )
        for k, index in enumerate(indices)
    ]


def _per_gpu(e: _Entry, key: str, item: Callable[[object, str], T], default: list[T]) -> list[T]:
    if key not in e.entry:
        return default
    return check.per_gpu(e.entry[key], e.p + key, e.count, item, scalar=False)


def _derived_uuid(profile_name: str, index: int) -> str:
    """Stable across runs and machines: the same profile always has the same GPUs."""
    return f"GPU-{uuid.uuid5(UUID_NAMESPACE, f'{profile_name}/gpu/{index}')}"


def _mig(e: _Entry, who: str) -> tuple[str, tuple[GiProfile, ...], tuple[Placed, ...]]:
    gi_profiles = e.model.gi_profiles if e.model else ()
    mode = check.choice(
        e.get("mig", "disabled" if gi_profiles else "unsupported"), e.p + "mig", _MIG_MODES
    )
    if mode != "unsupported" and not gi_profiles:
        raise ProfileError(e.p + "mig", e.entry["mig"], f"{who} has no MIG")
    if mode == "unsupported":
        gi_profiles = ()
    if "mig_devices" not in e.entry:
        return mode, gi_profiles, ()
    names = check.sequence(e.entry["mig_devices"], e.p + "mig_devices")
    if mode != "enabled":
        raise ProfileError(e.p + "mig_devices", names, "needs 'mig: enabled'")
    for i, name in enumerate(names):
        check.string(name, f"{e.p}mig_devices[{i}]")
    return mode, gi_profiles, place(gi_profiles, [str(n) for n in names], e.p + "mig_devices", who)


def _mig_devices(layout: tuple[Placed, ...], gpu_uuid: str) -> tuple[MigSpec, ...]:
    return tuple(
        MigSpec(
            index=j,
            uuid=f"MIG-{uuid.uuid5(UUID_NAMESPACE, f'{gpu_uuid}/{placed.gi_id}/0')}",
            name=placed.name,
            gi_profile=placed.gi,
            ci_profile=placed.ci,
            gi_id=placed.gi_id,
            ci_id=0,  # one compute instance per GPU instance: the first has id 0
            gi_start=placed.start,
        )
        for j, placed in enumerate(layout)
    )


def _model(value: object, path: str) -> GpuModel | None:
    if value is None:
        return None
    if not isinstance(value, str) or value not in MODELS:
        raise ProfileError(path, value, "unknown GPU model; known models: " + ", ".join(MODELS))
    return MODELS[value]


def _compute(value: object, path: str) -> tuple[int, int]:
    # YAML reads 8.0 as a float; its repr is the text written, for these small values
    text = value if isinstance(value, str) else repr(value) if isinstance(value, float) else ""
    match = re.match(_COMPUTE, text)
    if not match:
        raise ProfileError(path, value, "expected a compute capability like '8.0'")
    return int(match.group(1)), int(match.group(2))


def bus_id(value: object, path: str) -> PciAddress:
    """`0000:07:00.0` (sysfs) or `00000000:07:00.0` (NVML), any case."""
    match = re.match(_BUS_ID, value) if isinstance(value, str) else None
    if not match:
        raise ProfileError(path, value, "expected a PCI bus id like '0000:07:00.0' (quote it)")
    domain, bus, device, function = (int(g, 16) for g in match.groups())
    if device > 0x1F:
        raise ProfileError(path, value, "PCI device number above 0x1f")
    return PciAddress(domain, bus, device, function)


def _gpu_uuid(value: object, path: str) -> str:
    text = value if isinstance(value, str) else ""
    try:
        if not text.startswith("GPU-"):
            raise ValueError(text)
        uuid.UUID(text[4:])
    except ValueError:
        raise ProfileError(path, value, "expected 'GPU-' and a UUID") from None
    return text


def _minor(value: object, path: str) -> int:
    return check.integer(value, path, 0, 253)  # 254 and 255: nvidia-modeset, nvidiactl


def numa(value: object, path: str) -> int | None:
    node = check.integer(value, path, -1, 1023)
    return None if node < 0 else node


def _optional_int(value: object, path: str) -> int | None:
    return None if value is None else check.integer(value, path, 0)


def _fabric(value: object, path: str) -> FabricSpec:
    spec = check.mapping(value, path, ("cluster_uuid", "clique_id", "state", "status"))
    for key in ("cluster_uuid", "clique_id"):
        if key not in spec:
            raise ProfileError(f"{path}.{key}", None, "required")
    raw = spec["cluster_uuid"]
    try:
        cluster = uuid.UUID(raw if isinstance(raw, str) else "")
    except ValueError:
        raise ProfileError(f"{path}.cluster_uuid", raw, "expected a UUID") from None
    state = check.choice(spec.get("state", "completed"), f"{path}.state", _FABRIC_STATES)
    return FabricSpec(
        cluster_uuid=cluster.bytes,
        clique_id=check.integer(spec["clique_id"], f"{path}.clique_id", 0, 0xFFFFFFFF),
        state=_FABRIC_STATES[state],
        status=check.error_code(spec.get("status", "SUCCESS"), f"{path}.status", True),
    )


def _vgpu(value: object, path: str) -> VGpuSpec:
    keys = ("host_driver_version", "host_driver_branch")
    spec = check.mapping(value, path, keys)
    fields = []
    for key in keys:
        text = check.string(spec.get(key), f"{path}.{key}", " (quote it)")
        if len(text.encode()) > _VGPU_FIELD_BYTES:
            raise ProfileError(f"{path}.{key}", text, "longer than the 10 bytes the record holds")
        fields.append(text)
    return VGpuSpec(*fields)
