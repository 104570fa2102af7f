"""`nvidia.com/gpu.machine` from the DMI product name, sanitised and fitted to 63 characters."""

from __future__ import annotations

from gfd.labelers.values import fit, sanitise
from nvlib.config import Config
from nvlib.model import Machine

KEY = "nvidia.com/gpu.machine"


def machine_type_labels(machine: Machine, _config: Config) -> dict[str, str]:
    if not machine.machine_type:
        return {KEY: "unknown"}
    return {KEY: fit(KEY, sanitise(machine.machine_type), empty="unknown") or "unknown"}
