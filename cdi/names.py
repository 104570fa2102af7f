"""CDI names: `vendor/class=name`, their rules, and the names of GPU and MIG devices.

The one place that builds or checks a CDI name: the generator names its devices here,
`list` and `validate` check names here, and the device plugin builds the names it hands
out in Allocate (`nvidia.com/gpu=<uuid>`, `=<index>`, MIG `=<gpu>:<mig>`) with `gpu_name`
/ `mig_name`, so a spec and an Allocate answer cannot disagree. Rules and messages follow
the CDI library's `pkg/parser`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # `list` and `validate` name devices without the device model
    from nvlib.model import Gpu, MigDevice

__all__ = [
    "DEFAULT_CLASS",
    "DEFAULT_KIND",
    "DEFAULT_STRATEGIES",
    "DEFAULT_VENDOR",
    "IMEX_CHANNEL_KIND",
    "STRATEGIES",
    "class_error",
    "device_name_error",
    "gpu_device_name",
    "gpu_name",
    "imex_channel_name",
    "mig_device_name",
    "mig_name",
    "parse_qualified_name",
    "qualified_name",
    "vendor_error",
]

DEFAULT_VENDOR = "nvidia.com"
DEFAULT_CLASS = "gpu"
DEFAULT_KIND = f"{DEFAULT_VENDOR}/{DEFAULT_CLASS}"
IMEX_CHANNEL_KIND = f"{DEFAULT_VENDOR}/imex-channel"

# --device-name-strategy values, in nvidia-ctk's spelling.
STRATEGIES = ("index", "uuid", "type-index")
# Both by default so the plugin can hand out either form (its --device-id-strategy).
DEFAULT_STRATEGIES = ("index", "uuid")


def _alnum(c: str) -> bool:
    return c.isascii() and c.isalnum()


_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_NAME_INNER = _ALNUM | frozenset("_-.:")  # what a device name may hold inside
_QUALIFIER_INNER = _ALNUM | frozenset("_-.")  # what a vendor or class may hold inside


def _vendor_or_class_error(name: str) -> str | None:
    if not name:
        return "empty name"
    if not (name[0].isascii() and name[0].isalpha()):
        return f'"{name}", should start with letter'
    if _QUALIFIER_INNER.issuperset(name[1:-1]) and name[-1] in _ALNUM:
        return None  # the usual valid name: one set test, not a call a character
    for c in name[1:-1]:
        if not (_alnum(c) or c in "_-."):
            return f"invalid character '{c}' in name \"{name}\""
    if not _alnum(name[-1]):
        return f'"{name}", should end with a letter or digit'
    return None


def vendor_error(vendor: str) -> str | None:
    """Why `vendor` is not a valid CDI vendor, in the CDI library's words; None if valid."""
    reason = _vendor_or_class_error(vendor)
    return None if reason is None else f"invalid vendor. {reason}"


def class_error(device_class: str) -> str | None:
    """Why `device_class` is not a valid CDI class; None if valid."""
    reason = _vendor_or_class_error(device_class)
    return None if reason is None else f"invalid class. {reason}"


def short_qualifier_error(vendor: str, device_class: str) -> str | None:
    """[PROJECT] a 1-character vendor or class panics CDI lib <= 0.5 (docs/cdi.md#generate).

    One such file breaks every podman 4.3 run that asks for any CDI device, so the
    generator refuses it and `validate` reports it, although newer libraries accept it.
    """
    for what, value in (("vendor", vendor), ("class", device_class)):
        if len(value) == 1:
            return (
                f'{what} "{value}" has 1 character: CDI library <= v0.5 (podman 4.3) crashes on it'
            )
    return None


def device_name_error(name: str) -> str | None:
    """Why `name` is not a valid CDI device name (`0`, `0:1`, `GPU-...` are); None if valid."""
    if not name:
        return "invalid (empty) device name"
    if not _alnum(name[0]):
        # [QUIRK] the library says "class" here; kept word for word.
        return f'invalid class "{name}", should start with a letter or digit'
    if len(name) == 1:
        return None
    if _NAME_INNER.issuperset(name[1:-1]) and name[-1] in _ALNUM:
        return None  # the usual valid name: one set test, not a call a character
    for c in name[1:-1]:
        if not (_alnum(c) or c in "_-.:"):
            return f"invalid character '{c}' in device name \"{name}\""
    if not _alnum(name[-1]):
        return f'invalid name "{name}", should end with a letter or digit'
    return None


def qualified_name(kind: str, name: str) -> str:
    """`nvidia.com/gpu` + `0` -> `nvidia.com/gpu=0`."""
    return f"{kind}={name}"


def parse_qualified_name(device: str) -> tuple[str, str, str]:
    """`vendor/class=name` -> (vendor, class, name); ValueError with the library's text."""
    vendor = device_class = name = ""
    if device and not device.startswith("/"):  # a leading "/" is a path, never a name
        qualifier, sep, name = device.partition("=")
        if sep and qualifier and name:
            vendor, slash, device_class = qualifier.partition("/")
            if not (slash and vendor and device_class):
                vendor = device_class = ""
    if not vendor:
        raise ValueError(f'unqualified device "{device}", missing vendor')
    for reason in (vendor_error(vendor), class_error(device_class), device_name_error(name)):
        if reason is not None:
            raise ValueError(f'invalid device "{device}": {reason}')
    return vendor, device_class, name


def gpu_device_name(gpu: Gpu, strategy: str) -> str:
    """The unqualified name of a full GPU under one naming strategy."""
    if strategy == "index":
        return str(gpu.index)
    if strategy == "uuid":
        return gpu.uuid
    if strategy == "type-index":
        return f"gpu{gpu.index}"
    raise ValueError(f"invalid device name strategy: {strategy}")


def mig_device_name(gpu: Gpu, mig: MigDevice, strategy: str) -> str:
    """The unqualified name of a MIG device: `<gpu>:<mig>`, `MIG-...` or `mig<gpu>:<mig>`."""
    if strategy == "index":
        return f"{gpu.index}:{mig.index}"
    if strategy == "uuid":
        return mig.uuid
    if strategy == "type-index":
        return f"mig{gpu.index}:{mig.index}"
    raise ValueError(f"invalid device name strategy: {strategy}")


def _id_strategy(device_id_strategy: str) -> str:
    if device_id_strategy not in ("uuid", "index"):
        raise ValueError(f"invalid device id strategy: {device_id_strategy}")
    return device_id_strategy


def gpu_name(gpu: Gpu, device_id_strategy: str = "uuid", kind: str = DEFAULT_KIND) -> str:
    """The plugin's CDI name for a full GPU: `nvidia.com/gpu=GPU-...` or `=0`."""
    return qualified_name(kind, gpu_device_name(gpu, _id_strategy(device_id_strategy)))


def mig_name(
    gpu: Gpu, mig: MigDevice, device_id_strategy: str = "uuid", kind: str = DEFAULT_KIND
) -> str:
    """The plugin's CDI name for a MIG device: `nvidia.com/gpu=MIG-...` or `=0:1`."""
    return qualified_name(kind, mig_device_name(gpu, mig, _id_strategy(device_id_strategy)))


def imex_channel_name(channel_id: int) -> str:
    """`nvidia.com/imex-channel=<id>`, defined by the `--mode imex` spec (docs/cdi.md#modes)."""
    return qualified_name(IMEX_CHANNEL_KIND, str(channel_id))
