"""Profile YAML -> `Profile`: strict, so that a typo in a profile never passes silently.

Unknown keys, wrong types and facts the simulator cannot honour (a MIG layout that
does not fit, a fault on a GPU that is not there) raise ProfileError naming the field
path and the bad value. `gpus:` entries are read by parse_gpu.py; docs/profiles.md
documents the format.
"""

from __future__ import annotations

from nvlib.sim import _checks as check
from nvlib.sim.errors import ProfileError
from nvlib.sim.faults import parse_faults
from nvlib.sim.gpus import MODELS
from nvlib.sim.parse_gpu import bus_id, gpu_entry, numa
from nvlib.sim.profile import DeviceMajors, GpuSpec, NvSwitchSpec, PciAddress, Profile

DEFAULT_DRIVER = "550.54.15"
DEFAULT_CUDA = 12040

_TOP_KEYS = (
    "name description machine driver cuda nvml_version gpus nvswitches device_majors faults"
).split()
_MAJOR_KEYS = {
    "nvidia": "nvidia",
    "nvidia-uvm": "nvidia_uvm",
    "nvidia-caps": "nvidia_caps",
    "nvidia-caps-imex-channels": "nvidia_caps_imex_channels",
}


def parse_profile(data: object, default_name: str, source: str | None) -> Profile:
    try:
        return _profile(data, default_name, source)
    except ProfileError as err:
        err.source = source
        raise


def _profile(data: object, default_name: str, source: str | None) -> Profile:
    top = check.mapping(data, "", _TOP_KEYS)
    name = check.string(top.get("name", default_name), "name")
    driver = check.string(
        top.get("driver", DEFAULT_DRIVER), "driver", " like '550.54.15' (quote it)"
    )
    cuda = check.integer(top.get("cuda", DEFAULT_CUDA), "cuda", 0)
    gpus = _gpus(top.get("gpus", []), name)
    nvswitches = _nvswitches(top.get("nvswitches"), gpus)
    _check_unique_buses(gpus, nvswitches)
    return Profile(
        name=name,
        description=_optional_string(top.get("description"), "description") or "",
        machine=_optional_string(top.get("machine"), "machine"),
        driver_version=driver,
        cuda_version=cuda,
        nvml_version=check.string(
            top.get("nvml_version", f"{cuda // 1000}.{driver}"), "nvml_version"
        ),
        gpus=gpus,
        nvswitches=nvswitches,
        device_majors=_majors(top.get("device_majors", {})),
        faults=parse_faults(top.get("faults", []), gpus),
        source=source,
    )


def _optional_string(value: object, path: str) -> str | None:
    return None if value is None else check.string(value, path)


def _gpus(value: object, profile_name: str) -> tuple[GpuSpec, ...]:
    out: list[GpuSpec] = []
    for i, entry in enumerate(check.sequence(value, "gpus")):
        out.extend(gpu_entry(entry, f"gpus[{i}]", len(out), profile_name))
    for key in ("uuid", "minor"):
        seen: dict[object, int] = {}
        for gpu in out:
            v = getattr(gpu, key)
            if v in seen:
                raise ProfileError("gpus", v, f"GPUs {seen[v]} and {gpu.index} share a {key}")
            seen[v] = gpu.index
    return tuple(out)


def _nvswitches(value: object, gpus: tuple[GpuSpec, ...]) -> tuple[NvSwitchSpec, ...]:
    if value is None:
        return ()
    spec = check.mapping(value, "nvswitches", ("bus_ids", "device_id", "numa_node"))
    ids = check.sequence(spec.get("bus_ids"), "nvswitches.bus_ids")
    default_device = (
        next((MODELS[g.model].nvswitch_device_id for g in gpus if g.model), None)
        or MODELS["A100-SXM4-40GB"].nvswitch_device_id
    )
    device = check.hex_int(spec.get("device_id", default_device), "nvswitches.device_id", 0xFFFF)
    nodes = check.per_gpu(
        spec.get("numa_node", -1), "nvswitches.numa_node", len(ids), numa, scalar=True
    )
    return tuple(
        NvSwitchSpec(bus_id(v, f"nvswitches.bus_ids[{i}]"), device, nodes[i])
        for i, v in enumerate(ids)
    )


def _check_unique_buses(gpus: tuple[GpuSpec, ...], switches: tuple[NvSwitchSpec, ...]) -> None:
    seen: dict[PciAddress, str] = {}
    for where, bus in [
        *((f"GPU {g.index}", g.bus) for g in gpus),
        *((f"NVSwitch {i}", s.bus) for i, s in enumerate(switches)),
    ]:
        if bus in seen:
            raise ProfileError("gpus", bus.sysfs, f"{where} has the PCI bus id of {seen[bus]}")
        seen[bus] = where


def _majors(value: object) -> DeviceMajors:
    spec = check.mapping(value, "device_majors", _MAJOR_KEYS)
    given = {
        _MAJOR_KEYS[k]: check.integer(v, f"device_majors.{k}", 1, 4095) for k, v in spec.items()
    }
    return DeviceMajors(**given)
