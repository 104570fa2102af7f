"""`--device-id`: which devices a spec describes (docs/cdi.md#generate).

nvidia-ctk's `--device-id` (aliases `--device-ids`, `--device`, `--devices`) takes GPU
indexes (`0`), MIG indexes (`<gpu>:<mig>`), GPU or MIG UUIDs, `all` (the default) or
`none`. The first `all` or `none` in the list decides alone, as in the toolkit's
`getDeviceSpecGeneratorsForIDs`. Otherwise each identifier names one device, found the
way the toolkit finds it through NVML (index -> handle; `<gpu>:<mig>` -> the parent's
MIG handle at that index; UUID -> handle), and a GPU named explicitly gets a full-GPU
entry even when its MIG mode is enabled: only the `all` walk skips those.
"""

from __future__ import annotations

from collections.abc import Iterable

from cdi.errors import GenerateError
from nvlib.model import Gpu, Machine, MigDevice

__all__ = ["ALL", "NONE", "Selection", "select"]

ALL = "all"
NONE = "none"

# (full GPUs, MIG devices with their parent), in the order the identifiers name them.
Selection = tuple[tuple[Gpu, ...], tuple[tuple[Gpu, MigDevice], ...]]


def _index(text: str) -> int | None:
    return int(text) if text.isascii() and text.isdigit() else None


def _one(machine: Machine, ident: str) -> Gpu | tuple[Gpu, MigDevice]:
    if ident.startswith(("GPU-", "MIG-")):
        for gpu in machine.gpus:
            if gpu.uuid == ident:
                return gpu
            for mig in gpu.mig_devices:
                if mig.uuid == ident:
                    return gpu, mig
        raise GenerateError(f'failed to get NVML device handle for identifier "{ident}": Not Found')
    index = _index(ident)
    if index is not None:
        for gpu in machine.gpus:
            if gpu.index == index:
                return gpu
        raise GenerateError(
            f'failed to get NVML device handle for identifier "{ident}": Invalid Argument'
        )
    parent, sep, slot = ident.partition(":")
    gpu_index, mig_index = _index(parent), _index(slot)
    if sep and gpu_index is not None and mig_index is not None:
        for gpu in machine.gpus:
            if gpu.index != gpu_index:
                continue
            for mig in gpu.mig_devices:
                if mig.index == mig_index:
                    return gpu, mig
        raise GenerateError(f'failed to get NVML device handle for identifier "{ident}": Not Found')
    raise GenerateError(f'identifier is not a valid UUID or index: "{ident}"')


def select(machine: Machine, ids: Iterable[str]) -> str | Selection:
    """`ALL`, `NONE`, or the devices the identifiers name (each once). Raises GenerateError."""
    gpus: dict[str, Gpu] = {}
    migs: dict[str, tuple[Gpu, MigDevice]] = {}
    for ident in ids:
        if ident in (ALL, NONE):
            return ident
        found = _one(machine, ident)
        if isinstance(found, Gpu):  # (a Gpu is a record, so a tuple too: test it first)
            gpus.setdefault(found.uuid, found)
        else:
            migs.setdefault(found[1].uuid, found)
    if not gpus and not migs:
        return ALL  # no identifier at all: the default
    return tuple(gpus.values()), tuple(migs.values())
