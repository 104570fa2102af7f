"""The plain device model that discovery produces and every tool reads.

Immutable records (`typing.NamedTuple`s) of strings, ints and tuples only, so a model
compares, hashes and prints well in a failing test; `obj._replace(field=...)` makes a
changed copy. Nothing here touches NVML or the host: labels, CDI specs and plugin
devices are pure functions of a `Machine`.
"""

from __future__ import annotations

from typing import NamedTuple


def sysfs_bus_id(nvml_bus_id: str) -> str:
    """`00000000:3B:00.0` -> `0000:3b:00.0`, the name under /sys/bus/pci/devices."""
    domain, _, rest = nvml_bus_id.partition(":")
    return f"{domain[-4:]}:{rest}".lower()


class MigDevice(NamedTuple):
    """One MIG device (a compute instance inside a GPU instance) of a parent GPU."""

    # MIG device index within the parent, as nvmlDeviceGetMigDeviceHandleByIndex
    index: int  # type: ignore[assignment]  # a field, not tuple.index
    uuid: str  # "MIG-..."
    gi_id: int
    ci_id: int
    profile: str  # go-nvlib name with "+": "1g.5gb", "1c.2g.10gb", "1g.10gb+me", "1g.24gb-me"
    memory_mib: int  # NVML attribute MemorySizeMB (really MiB)
    multiprocessors: int
    gi_slices: int
    ci_slices: int
    copy_engines: int
    decoders: int
    encoders: int
    jpegs: int
    ofas: int


class Fabric(NamedTuple):
    """NVML GPU fabric info for a fabric-attached GPU (state completed, status success)."""

    cluster_uuid: str  # canonical lower-case UUID
    clique_id: int


class Gpu(NamedTuple):
    index: int  # type: ignore[assignment]  # a field, not tuple.index
    uuid: str  # "GPU-..."
    name: str  # nvmlDeviceGetName, e.g. "NVIDIA A100-SXM4-40GB"
    memory_total_bytes: int | None  # None when NVML could not say: no memory label
    compute_major: int
    compute_minor: int
    minor: int  # /dev/nvidia<minor>; -1 when NVML does not say
    pci_bus_id: str  # NVML form, "00000000:07:00.0"
    mig_capable: bool
    mig_enabled: bool
    mig_devices: tuple[MigDevice, ...] = ()
    fabric: Fabric | None = None  # None: not fabric-attached
    pci_class: str | None = None  # sysfs class, "0x030200"; None when unreadable
    numa_node: int | None = None

    @property
    def sysfs_bus_id(self) -> str:
        return sysfs_bus_id(self.pci_bus_id)

    @property
    def memory_mib(self) -> int:
        return (self.memory_total_bytes or 0) // (1024 * 1024)


class VGpuDevice(NamedTuple):
    pci_address: str
    host_driver_version: str
    host_driver_branch: str


class VGpuInfo(NamedTuple):
    """NVIDIA PCI devices found in sysfs that carry the vGPU signature (docs/labels.md#vgpu)."""

    devices: tuple[VGpuDevice, ...] = ()


class Machine(NamedTuple):
    driver_version: str  # nvmlSystemGetDriverVersion, as returned
    cuda_driver_version: int  # nvmlSystemGetCudaDriverVersion, e.g. 12040
    gpus: tuple[Gpu, ...] = ()
    machine_type: str | None = None  # raw DMI product name; None when unreadable or not asked
    vgpu: VGpuInfo | None = None  # None: PCI enumeration failed or not asked

    @property
    def node_state(self) -> tuple[object, ...]:
        """What a CDI spec and the plugin's devices depend on: driver, GPUs, MIG layout."""
        return (
            self.driver_version,
            tuple(
                (
                    gpu.uuid,
                    gpu.index,
                    gpu.minor,
                    gpu.pci_bus_id,
                    gpu.mig_enabled,
                    tuple((m.index, m.uuid, m.gi_id, m.ci_id, m.profile) for m in gpu.mig_devices),
                )
                for gpu in self.gpus
            ),
        )

    @property
    def mig_devices(self) -> tuple[tuple[Gpu, MigDevice], ...]:
        """All MIG devices with their parent, in NVML index then MIG index order."""
        return tuple((gpu, mig) for gpu in self.gpus for mig in gpu.mig_devices)
