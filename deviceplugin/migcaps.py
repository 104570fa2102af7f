"""MIG capability device nodes: `/proc/driver/nvidia-caps/mig-minors` (device-plugin.md §3.2).

A MIG device is reached through its parent's `/dev/nvidia<minor>` plus two capability
nodes, one for its GPU instance and one for its compute instance; the driver lists
which `/dev/nvidia-caps/nvidia-cap<M>` grants each capability in `mig-minors`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

log = logging.getLogger(__name__)

MIG_MINORS = "proc/driver/nvidia-caps/mig-minors"
CAPABILITIES = "/proc/driver/nvidia/capabilities"
CAP_DEVICE = "/dev/nvidia-caps/nvidia-cap{}"


def parse_mig_minors(text: str) -> dict[str, int]:
    """`gpu0/gi1/ci0/access 42` lines -> {"gpu0/gi1/ci0/access": 42}; odd lines skipped."""
    minors: dict[str, int] = {}
    for line in text.splitlines():
        key, _, value = line.strip().partition(" ")
        try:
            minors[key] = int(value.strip())
        except ValueError:
            continue
    return minors


def read_mig_minors(root: Path) -> dict[str, int]:
    """The host's table under `root`; empty when unreadable (then MIG paths are missing)."""
    path = root / MIG_MINORS
    try:
        return parse_mig_minors(path.read_text())
    except OSError as err:
        log.debug("cannot read %s: %s", path, err)
        return {}


def gi_capability(gpu_minor: int, gi: int) -> str:
    """The GPU-instance capability path, as upstream names it in its error text."""
    return f"{CAPABILITIES}/gpu{gpu_minor}/mig/gi{gi}/access"


def ci_capability(gpu_minor: int, gi: int, ci: int) -> str:
    return f"{CAPABILITIES}/gpu{gpu_minor}/mig/gi{gi}/ci{ci}/access"


def capability_device(minors: Mapping[str, int], capability: str) -> str | None:
    """`/dev/nvidia-caps/nvidia-cap<M>` for a capability path, or None when not listed."""
    key = capability.removeprefix(CAPABILITIES + "/").replace("/mig/", "/", 1)
    minor = minors.get(key)
    return None if minor is None else CAP_DEVICE.format(minor)
