"""MIG capability device nodes: `/proc/driver/nvidia-caps/mig-minors`, read in one place.

A MIG device is reached through its parent's `/dev/nvidia<minor>` plus two capability
nodes, one for its GPU instance and one for its compute instance. The driver lists in
`mig-minors` which `/dev/nvidia-caps/nvidia-cap<M>` grants each capability, one
`<name> <minor>` line each (`gpu0/gi1/access 21`, `gpu0/gi1/ci0/access 22`, plus
`config` and `monitor`). The CDI generator and the device plugin both read it here.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

log = logging.getLogger(__name__)

MIG_MINORS = "/proc/driver/nvidia-caps/mig-minors"
# Where the driver exposes the capabilities themselves; upstream's error texts name these.
CAPABILITIES = "/proc/driver/nvidia/capabilities"
CAP_DEVICE = "/dev/nvidia-caps/nvidia-cap{}"


def parse_mig_minors(text: str) -> dict[str, int]:
    """`gpu0/gi1/access 12` lines -> {"gpu0/gi1/access": 12}; other lines skipped.

    The minor is the last space-separated field and must be a plain decimal number.
    """
    minors: dict[str, int] = {}
    for line in text.splitlines():
        name, _, minor = line.strip().rpartition(" ")
        name = name.strip()
        if name and minor.isascii() and minor.isdigit():
            minors[name] = int(minor)
    return minors


# The last text parsed and its table. The file is host state, so it is read on every
# call; but the driver writes some 1,000 lines (every GPU x GI x CI), and a process
# that regenerates (the device plugin, a CDI watch) would parse the same text again
# each time, ~0.4 ms. Keyed by the text itself, so it can never answer a stale table.
_last_parsed: tuple[str, dict[str, int]] = ("", {})


def _parse_once(text: str) -> dict[str, int]:
    global _last_parsed
    last_text, minors = _last_parsed
    if text != last_text:
        minors = parse_mig_minors(text)
        _last_parsed = (text, minors)
    return dict(minors)  # the caller's own copy: the cached table stays as parsed


def read_mig_minors(root: str | Path) -> dict[str, int]:
    """The table under the host root `root`; empty when unreadable (no MIG nodes then)."""
    path = Path(root, MIG_MINORS.lstrip("/"))
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return _parse_once(f.read())
    except OSError as err:
        log.debug("cannot read %s: %s", path, err)
        return {}


def mig_cap_keys(gpu_minor: int, gi: int, ci: int) -> tuple[str, str]:
    """The mig-minors names of a MIG device's GI and CI access capabilities."""
    return f"gpu{gpu_minor}/gi{gi}/access", f"gpu{gpu_minor}/gi{gi}/ci{ci}/access"


def cap_device(minor: int) -> str:
    """The device node that grants the capability with this minor."""
    return CAP_DEVICE.format(minor)


def gi_capability(gpu_minor: int, gi: int) -> str:
    """The GPU-instance capability path, as upstream names it in its error text."""
    return f"{CAPABILITIES}/gpu{gpu_minor}/mig/gi{gi}/access"


def ci_capability(gpu_minor: int, gi: int, ci: int) -> str:
    """The compute-instance capability path, as upstream names it in its error text."""
    return f"{CAPABILITIES}/gpu{gpu_minor}/mig/gi{gi}/ci{ci}/access"


def capability_device(minors: Mapping[str, int], capability: str) -> str | None:
    """`/dev/nvidia-caps/nvidia-cap<M>` for a capability path, or None when not listed."""
    key = capability.removeprefix(CAPABILITIES + "/").replace("/mig/", "/", 1)
    minor = minors.get(key)
    return None if minor is None else cap_device(minor)
