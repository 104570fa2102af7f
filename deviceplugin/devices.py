"""The device map: which devices each resource advertises (docs/deviceplugin.md#what-it-serves).

A pure function of the discovered `Machine`, the MIG strategy, the sharing section and
the MIG capability table. Resource names, device IDs, indices and the MIG checks follow
upstream word for word; the order is the project's (NVML index, then MIG index, then
replica), because upstream's map order changes from run to run.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import NamedTuple

from deviceplugin.errors import PluginError
from nvlib.config import Sharing
from nvlib.migcaps import capability_device, ci_capability, gi_capability
from nvlib.model import Gpu, Machine, MigDevice

RESOURCE_PREFIX = "nvidia.com/"
GPU_RESOURCE = "nvidia.com/gpu"
REPLICA_SEPARATOR = "::"
# Display controllers on DGX stations: never advertised, and indices are not compacted.
DGX_DISPLAY_NAMES = frozenset({"DGX Display", "NVIDIA DGX Display"})
MIB = 1024 * 1024


class Device(NamedTuple):
    """One advertised device: a full GPU, a MIG device, or a replica of either."""

    id: str  # what the kubelet sees: GPU-..., MIG-..., or <id>::<k> for a replica
    # "0" for a GPU, "0:1" for a MIG device (GPU index : MIG device index)
    index: str  # type: ignore[assignment]  # a field, not tuple.index
    gpu_index: int  # NVML index of the physical GPU (the parent of a MIG device)
    gpu_uuid: str  # UUID of that GPU: health events name it
    paths: tuple[str, ...]  # device nodes, for --pass-device-specs
    numa_node: int | None = None
    mig: tuple[int, int] | None = None  # (GPU instance, compute instance) of a MIG device
    replicas: int = 0  # the replica count of a shared device; 0 when not shared
    memory_bytes: int = 0
    compute_capability: str = ""

    @property
    def base_id(self) -> str:
        """The ID without its `::<k>` replica suffix."""
        return strip_replica(self.id)

    @property
    def aligned_allocation_supported(self) -> bool:
        """Full GPUs only: topology-aware allocation has no meaning inside a GPU."""
        return ":" not in self.index and "/dev/dxg" not in self.paths


class Resource(NamedTuple):
    """One extended resource, served by one gRPC server on its own socket."""

    name: str  # nvidia.com/gpu, nvidia.com/mig-1g.5gb, nvidia.com/gpu.shared, ...
    devices: tuple[Device, ...]

    @property
    def socket_name(self) -> str:
        """`nvidia-gpu.sock`: the basename registered as the endpoint."""
        return f"nvidia-{self.name.removeprefix(RESOURCE_PREFIX)}.sock"

    @property
    def aligned_allocation_supported(self) -> bool:
        return all(d.aligned_allocation_supported for d in self.devices)


class DeviceMap(NamedTuple):
    resources: tuple[Resource, ...]
    warnings: tuple[str, ...] = ()  # for the caller to log


def strip_replica(device_id: str) -> str:
    return device_id.split(REPLICA_SEPARATOR, 1)[0]


def is_replica(device_id: str) -> bool:
    return REPLICA_SEPARATOR in device_id


def mig_resource_name(profile: str) -> str:
    """`1g.10gb+me` -> `nvidia.com/mig-1g.10gb.me`; `1c.2g.10gb` keeps its C ([PROJECT])."""
    return f"{RESOURCE_PREFIX}mig-{profile.replace('+', '.')}"


def pattern_matches(pattern: str, text: str) -> bool:
    """Upstream's resource pattern: `*` is any run, all else literal, anchored both ends."""
    regex = ".*".join(re.escape(part) for part in pattern.split("*"))
    return re.fullmatch(regex, text, flags=re.DOTALL) is not None


def default_patterns(
    machine: Machine, mig_strategy: str
) -> tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]:
    """The (pattern, resource) lists for GPU names and MIG profiles (upstream's defaults).

    Under `mixed` upstream adds one resource per possible profile with C == G and none
    for C != G (a node with such devices then fails); the project names every profile,
    so one resource per profile present covers every device it can meet.
    """
    gpus = (("*", GPU_RESOURCE),)
    if mig_strategy == "single":
        return gpus, (("*", GPU_RESOURCE),)
    if mig_strategy == "mixed":
        profiles = dict.fromkeys(m.profile for _, m in machine.mig_devices)
        return gpus, tuple((p, mig_resource_name(p)) for p in profiles)
    return gpus, ()


def build_device_map(
    machine: Machine,
    mig_strategy: str,
    sharing: Sharing,
    mig_minors: Mapping[str, int],
) -> DeviceMap:
    """Resources with at least one device, in a stable order; PluginError as upstream."""
    gpu_patterns, mig_patterns = default_patterns(machine, mig_strategy)
    resources: dict[str, list[Device]] = {}
    warnings: list[str] = []
    try:
        full = _gpu_devices(machine.gpus, mig_strategy, gpu_patterns)
        if mig_strategy != "none":
            migs = _mig_devices(machine.gpus, mig_patterns, mig_minors)
            _check_mig(machine.gpus, mig_strategy, warnings)
            if mig_strategy == "single" and full and migs:
                raise PluginError(
                    "all devices on the node must be configured with the same migEnabled value"
                )
            full += migs
    except PluginError as err:
        raise err.wrapped("error building device map from config.resources") from err
    for name, device in full:
        resources.setdefault(name, []).append(device)
    built = _replicate(resources, sharing)
    return DeviceMap(
        tuple(Resource(name, tuple(devs)) for name, devs in built.items() if devs),
        tuple(warnings),
    )


def _match(patterns: Sequence[tuple[str, str]], text: str) -> str | None:
    return next((name for pattern, name in patterns if pattern_matches(pattern, text)), None)


def _gpu_devices(
    gpus: Sequence[Gpu], mig_strategy: str, patterns: Sequence[tuple[str, str]]
) -> list[tuple[str, Device]]:
    found = []
    for gpu in gpus:
        if gpu.name in DGX_DISPLAY_NAMES:
            continue
        if gpu.mig_enabled and mig_strategy != "none":
            continue
        name = _match(patterns, gpu.name)
        if name is None:
            raise PluginError(
                "error building GPU device map: "
                f"GPU name '{gpu.name}' does not match any resource patterns"
            )
        found.append((name, _gpu_device(gpu)))
    return found


def _gpu_device(gpu: Gpu) -> Device:
    return Device(
        id=gpu.uuid,
        index=str(gpu.index),
        gpu_index=gpu.index,
        gpu_uuid=gpu.uuid,
        paths=_gpu_paths(gpu),
        numa_node=gpu.numa_node,
        memory_bytes=gpu.memory_total_bytes or 0,
        compute_capability=f"{gpu.compute_major}.{gpu.compute_minor}",
    )


def _gpu_paths(gpu: Gpu) -> tuple[str, ...]:
    # NVML may not say the minor (a GPU without a device node of its own): no path then.
    return (f"/dev/nvidia{gpu.minor}",) if gpu.minor >= 0 else ()


def _mig_devices(
    gpus: Sequence[Gpu],
    patterns: Sequence[tuple[str, str]],
    minors: Mapping[str, int],
) -> list[tuple[str, Device]]:
    found = []
    for gpu in gpus:
        if not gpu.mig_enabled:
            continue
        for mig in gpu.mig_devices:
            name = _match(patterns, mig.profile)
            if name is None:
                raise PluginError(
                    "error building MIG device map: "
                    f"MIG profile '{mig.profile}' does not match any resource patterns"
                )
            found.append((name, _mig_device(gpu, mig, minors)))
    return found


def _mig_device(gpu: Gpu, mig: MigDevice, minors: Mapping[str, int]) -> Device:
    paths = list(_gpu_paths(gpu))
    for capability in (
        gi_capability(gpu.minor, mig.gi_id),
        ci_capability(gpu.minor, mig.gi_id, mig.ci_id),
    ):
        node = capability_device(minors, capability)
        if node is None:
            kind = "GPU" if "/ci" not in capability else "compute"
            raise PluginError(
                f"error building MIG device map: missing MIG {kind} instance capability"
                f" path: {capability}"
            )
        paths.append(node)
    return Device(
        id=mig.uuid,
        index=f"{gpu.index}:{mig.index}",
        gpu_index=gpu.index,
        gpu_uuid=gpu.uuid,
        paths=tuple(paths),
        numa_node=gpu.numa_node,
        mig=(mig.gi_id, mig.ci_id),
        memory_bytes=mig.memory_mib * MIB,
        compute_capability=f"{gpu.compute_major}.{gpu.compute_minor}",
    )


def _mig_attributes(mig: MigDevice) -> tuple[int, ...]:
    """What NVML's device attributes hold; `single` needs them equal on every device."""
    return (
        mig.memory_mib,
        mig.multiprocessors,
        mig.gi_slices,
        mig.ci_slices,
        mig.copy_engines,
        mig.decoders,
        mig.encoders,
        mig.jpegs,
        mig.ofas,
    )


def _check_mig(gpus: Sequence[Gpu], mig_strategy: str, warnings: list[str]) -> None:
    for gpu in gpus:
        if gpu.mig_enabled and not gpu.mig_devices:
            text = (
                "invalid MIG configuration: at least one device with migEnabled=true was not"
                f" configured correctly: device {gpu.index} has no MIG devices configured"
            )
            if mig_strategy == "single":
                raise PluginError(text)
            warnings.append(text)  # mixed: upstream only warns
    if mig_strategy == "single":
        kinds = {_mig_attributes(m) for g in gpus if g.mig_enabled for m in g.mig_devices}
        if len(kinds) > 1:
            raise PluginError(
                "invalid MIG configuration: more than one MIG device type present on node"
            )


def _replicate(resources: dict[str, list[Device]], sharing: Sharing) -> dict[str, list[Device]]:
    """Split shared resources into `<id>::<k>` replicas, under `rename` when set.

    After `normalise()` every entry covers all devices of its resource, so no device of
    a shared resource stays under the original name unless that name is kept.
    """
    section = sharing.replicated_resources()
    entries = {r.name: r for r in section.resources} if section is not None else {}
    built: dict[str, list[Device]] = {}
    for name, devices in resources.items():
        entry = entries.get(name)
        if entry is None:
            built.setdefault(name, []).extend(devices)
            continue
        target = entry.rename or name
        built.setdefault(target, []).extend(
            d._replace(id=f"{d.id}{REPLICA_SEPARATOR}{k}", replicas=entry.replicas)
            for d in devices
            for k in range(entry.replicas)
        )
    return built
