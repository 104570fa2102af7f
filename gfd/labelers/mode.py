"""`nvidia.com/gpu.mode` from the PCI class of every GPU.

docs/labels.md#mode-clique-and-versions has the rule.
"""

from __future__ import annotations

import logging

from nvlib.config import Config
from nvlib.model import Machine

log = logging.getLogger(__name__)

COMPUTE_CLASS = "0x030200"  # 3D controller; MIG devices always count as one
_MODES = {"0x030000": "graphics", COMPUTE_CLASS: "compute"}


def mode_labels(machine: Machine, _config: Config) -> dict[str, str]:
    classes = [COMPUTE_CLASS if gpu.mig_enabled else gpu.pci_class for gpu in machine.gpus]
    distinct = {c for c in classes if c is not None}
    if None in classes:
        return {"nvidia.com/gpu.mode": "unknown"}  # discovery logged the read failure
    if len(distinct) > 1:
        log.info("Not all GPU devices belong to the same class %s", sorted(distinct))
        return {"nvidia.com/gpu.mode": "unknown"}
    mode = _MODES.get(distinct.pop(), "unknown") if distinct else "unknown"
    return {"nvidia.com/gpu.mode": mode}
