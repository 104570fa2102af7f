"""Host facts read outside NVML: PCI class and NUMA node in sysfs, vGPU PCI config, DMI.

Every read goes through a `root` so that the simulator's host tree and test fixtures
replace `/` (the hostpath seam of node-feature-discovery).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from nvlib.model import VGpuDevice, VGpuInfo

log = logging.getLogger(__name__)

NVIDIA_VENDOR = "0x10de"
PCI_DEVICES = "sys/bus/pci/devices"
DEFAULT_MACHINE_TYPE_FILE = "/sys/class/dmi/id/product_name"

_PCI_STATUS = 0x06
_PCI_STATUS_CAP_LIST = 0x10
_PCI_CAP_POINTER = 0x34
_PCI_CAP_VENDOR_SPECIFIC = 0x09
_PCI_CAP_END = 0xFF
_PCI_CONFIG_MIN = 256


class VGpuError(RuntimeError):
    """vGPU facts could not be read (docs/labels.md#vgpu)."""


class DriverRecordError(VGpuError):
    """A vGPU device lacks its host-driver record: fatal for labelling."""


def in_root(root: Path, path: str) -> Path:
    return root / path.lstrip("/")


def _device_file(root: Path, sysfs_bus_id: str, name: str) -> str:
    """A PCI device's sysfs file. os.path, not pathlib: a discovery pass reads two per GPU,
    and building the Path objects cost more than reading the files."""
    return os.path.join(root, PCI_DEVICES, sysfs_bus_id, name)


def pci_class(root: Path, sysfs_bus_id: str) -> str:
    """The `class` file of a PCI device, e.g. `0x030200` (raises OSError)."""
    with open(_device_file(root, sysfs_bus_id, "class")) as f:
        return f.read().strip()


def numa_node(root: Path, sysfs_bus_id: str) -> int | None:
    """NUMA node of a PCI device; absent file or a negative value means none."""
    try:
        with open(_device_file(root, sysfs_bus_id, "numa_node")) as f:
            value = int(f.read().strip())
    except (OSError, ValueError):
        return None
    return value if value >= 0 else None


def machine_type(path: str) -> str | None:
    """DMI product name; a read error is a warning, not a failure, as upstream's."""
    if not path:
        return None
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read().strip()
    except OSError as err:
        log.warning(
            "Error getting machine type from %s: could not open machine type file: %s", path, err
        )
        return None


class HostFacts:
    """Host facts the hardware fixes for the life of a process, read once on first use.

    PCI class, NUMA node, vGPU config space and the DMI product name do not change
    while a node runs, so the periodic job need not re-read sysfs on every pass; a
    config reload (SIGHUP) builds a new instance and reads them again. A failure is
    remembered too (its warning is logged once), except a missing vGPU driver record,
    which fails every pass that meets it.
    """

    def __init__(self, root: Path, machine_type_file: str = DEFAULT_MACHINE_TYPE_FILE) -> None:
        self.root = root
        self.machine_type_file = machine_type_file
        self._classes: dict[str, str | None] = {}
        self._numa: dict[str, int | None] = {}
        self._vgpu: tuple[VGpuInfo | None] | None = None
        self._machine_type: tuple[str | None] | None = None

    def pci_class(self, sysfs_bus_id: str) -> str | None:
        if sysfs_bus_id not in self._classes:
            try:
                self._classes[sysfs_bus_id] = pci_class(self.root, sysfs_bus_id)
            except OSError as err:
                log.warning(
                    "Failed to create GPU mode labeler: failed to get device classes: %s", err
                )
                self._classes[sysfs_bus_id] = None
        return self._classes[sysfs_bus_id]

    def numa_node(self, sysfs_bus_id: str) -> int | None:
        if sysfs_bus_id not in self._numa:
            self._numa[sysfs_bus_id] = numa_node(self.root, sysfs_bus_id)
        return self._numa[sysfs_bus_id]

    def vgpu(self) -> VGpuInfo | None:
        """vGPU devices, or None when PCI enumeration failed (logged)."""
        if self._vgpu is None:
            try:
                self._vgpu = (vgpu_devices(self.root),)
            except DriverRecordError:
                raise
            except VGpuError as err:
                log.warning("unable to get vGPU devices: %s", err)
                self._vgpu = (None,)
        return self._vgpu[0]

    def machine_type(self) -> str | None:
        if self._machine_type is None:
            self._machine_type = (machine_type(self.machine_type_file),)
        return self._machine_type[0]


def vgpu_devices(root: Path) -> VGpuInfo:
    """NVIDIA GPUs in sysfs that carry the vGPU signature, in sorted PCI address order.

    Raises VGpuError when the PCI configuration cannot be read in full (an
    unprivileged pod sees only 64 bytes), and DriverRecordError for a vGPU whose
    capability lacks the host-driver record.
    """
    base = root / PCI_DEVICES
    try:
        addresses = sorted(p.name for p in base.iterdir())
    except OSError as err:
        raise VGpuError(f"unable to list PCI devices in {base}: {err}") from err
    found: list[VGpuDevice] = []
    for address in addresses:
        device = base / address
        try:
            if (device / "vendor").read_text().strip() != NVIDIA_VENDOR:
                continue
            if not (device / "class").read_text().strip().startswith("0x03"):
                continue  # display controllers only: NVSwitch bridges are no vGPUs
            config = (device / "config").read_bytes()
        except OSError as err:
            raise VGpuError(f"unable to read PCI device {address}: {err}") from err
        if len(config) < _PCI_CONFIG_MIN:
            raise VGpuError(
                f"entire PCI configuration is not read for device {address}. Please run GFD "
                "with privileged mode to read complete PCI configuration data"
            )
        capability = _vendor_capability(config)
        if len(capability) >= 5 and capability[3] == ord("V") and capability[4] == ord("F"):
            version, branch = _host_driver(capability, address)
            found.append(VGpuDevice(address, version, branch))
    return VGpuInfo(tuple(found))


def _vendor_capability(config: bytes) -> bytes:
    if not config[_PCI_STATUS] & _PCI_STATUS_CAP_LIST:
        return b""
    pos, seen = config[_PCI_CAP_POINTER], set()
    while pos and pos not in seen and pos + 2 < len(config):
        seen.add(pos)
        cap_id = config[pos]
        if cap_id == _PCI_CAP_END:
            break
        if cap_id == _PCI_CAP_VENDOR_SPECIFIC:
            return config[pos : pos + config[pos + 2]]
        pos = config[pos + 1]
    return b""


def _host_driver(capability: bytes, address: str) -> tuple[str, str]:
    pos = 5
    while pos + 1 < len(capability):
        record_id, length = capability[pos], capability[pos + 1]
        if record_id == 0:
            start = pos + 2
            version = capability[start : start + 10].split(b"\0", 1)[0]
            branch = capability[start + 10 : start + 20].split(b"\0", 1)[0]
            return version.decode(errors="replace"), branch.decode(errors="replace")
        if length == 0:
            break
        pos += length
    raise DriverRecordError(
        f"cannot find driver version record in vendor specific capability for device {address}"
    )
