"""A simulated machine, resolved from a profile: every fact the simulator answers with.

`load_profile` reads a built-in profile by name or a YAML file by path; `parse.py`
turns the YAML into these frozen dataclasses and rejects anything it cannot simulate.
The format is documented in docs/profiles.md.

The records are NamedTuples, not frozen dataclasses: they compare, hash and print as
well, and a dataclass costs about a millisecond to define, which every
`--nvml-mock` command start would pay a dozen times.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from nvlib.sim.errors import ProfileError
from nvlib.sim.gpus import CiProfile, GiProfile

BUILTIN_PROFILES: tuple[str, ...] = (
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

_PROFILES_DIR = Path(__file__).parent / "profiles"
_builtin_cache: dict[str, Profile] = {}


class PciAddress(NamedTuple):
    domain: int
    bus: int
    device: int
    function: int

    @property
    def nvml(self) -> str:
        """nvmlPciInfo_t.busId: `00000000:07:00.0`."""
        return f"{self.domain:08X}:{self.bus:02X}:{self.device:02X}.{self.function:X}"

    @property
    def legacy(self) -> str:
        """nvmlPciInfo_t.busIdLegacy: `0000:07:00.0`."""
        return f"{self.domain:04X}:{self.bus:02X}:{self.device:02X}.{self.function:X}"

    @property
    def sysfs(self) -> str:
        """The name under /sys/bus/pci/devices: `0000:07:00.0`."""
        return self.legacy.lower()


class MigSpec(NamedTuple):
    """One MIG device: a compute instance in a GPU instance, at a fixed placement."""

    index: int  # nvmlDeviceGetMigDeviceHandleByIndex
    uuid: str
    name: str  # profile name, "3g.20gb" or "1c.2g.10gb"
    gi_profile: GiProfile
    ci_profile: CiProfile
    gi_id: int
    ci_id: int
    gi_start: int  # placement start, in memory slices


class FabricSpec(NamedTuple):
    cluster_uuid: bytes  # 16 bytes
    clique_id: int
    state: int  # NVML_GPU_FABRIC_STATE_*
    status: int  # nvmlReturn_t


class VGpuSpec(NamedTuple):
    host_driver_version: str
    host_driver_branch: str


class GpuSpec(NamedTuple):
    index: int
    model: str | None  # the gpus.py key it came from; None for a fully described GPU
    name: str
    uuid: str
    memory_mib: int
    compute: tuple[int, int]
    architecture: int
    brand: int
    pci_device_id: int
    pci_subsystem_id: int
    pci_class: int
    bus: PciAddress
    minor: int
    numa_node: int | None
    pcie_switch: int | None  # GPUs behind one PCIe switch
    nvlinks: int
    gi_profiles: tuple[GiProfile, ...]  # empty: not MIG capable
    max_mig_devices: int
    mig_enabled: bool
    mig_devices: tuple[MigSpec, ...]
    fabric: FabricSpec | None
    vgpu: VGpuSpec | None

    @property
    def mig_capable(self) -> bool:
        return bool(self.gi_profiles)


class NvSwitchSpec(NamedTuple):
    bus: PciAddress
    device_id: int  # 16-bit PCI device id
    numa_node: int | None


class DeviceMajors(NamedTuple):
    nvidia: int = 195
    nvidia_uvm: int = 508
    nvidia_caps: int = 509
    nvidia_caps_imex_channels: int = 507


class FaultSpec(NamedTuple):
    """A fault the profile schedules `after` seconds from activation."""

    kind: str  # "xid", "fall_off_bus" or "call"
    after: float
    gpu: int | None = None
    xid: int | None = None
    mig: int | None = None  # MIG device index on `gpu` the XID names
    call: str | None = None
    error: int | None = None  # nvmlReturn_t


class Profile(NamedTuple):
    name: str
    description: str
    machine: str | None  # DMI product name; None: no product_name file
    driver_version: str
    cuda_version: int
    nvml_version: str
    gpus: tuple[GpuSpec, ...]
    nvswitches: tuple[NvSwitchSpec, ...]
    device_majors: DeviceMajors
    faults: tuple[FaultSpec, ...]
    source: str | None = None  # the file it was read from


def load_profile(name_or_path: str | Path) -> Profile:
    """A built-in profile by name, else a YAML profile file by path."""
    from nvlib.sim.parse import parse_profile

    text_name = str(name_or_path)
    if isinstance(name_or_path, str) and text_name in BUILTIN_PROFILES:
        if text_name not in _builtin_cache:  # immutable, so parsed once per process
            path = _PROFILES_DIR / f"{text_name}.yaml"
            _builtin_cache[text_name] = parse_profile(_read(path, text_name), text_name, None)
        return _builtin_cache[text_name]
    path = Path(name_or_path)
    if not path.is_file():
        raise ProfileError(
            "profile",
            text_name,
            "not a built-in profile nor a profile file; built-in profiles: "
            + ", ".join(BUILTIN_PROFILES),
        )
    return parse_profile(_read(path, str(path)), path.stem, str(path))


def _read(path: Path, source: str) -> object:
    import yaml  # here, not at import: naming BUILTIN_PROFILES should not cost a YAML parser

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ProfileError("profile", source, f"cannot read the profile: {err}") from err
    try:
        return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ProfileError("profile", source, f"invalid YAML{where}", source) from err
