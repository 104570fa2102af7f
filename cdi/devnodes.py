"""Walk a dev root for the device nodes of the `imex` and `management` modes.

The host side of those modes (docs/cdi.md#modes); `cdi.modes` turns what is found here
into a spec without touching the disk. Neither walk asks NVML anything: an IMEX channel
or a management node is whatever the driver created under `<dev-root>/dev`.

Each node goes through the same char-device locator as the NVML mode's nodes
(`driverfiles.RootWalk.char_device`), so it carries the same `stat` facts (major, minor,
mode, gid) and the simulator's placeholder files count as devices here too.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Mapping
from typing import NamedTuple

from cdi._locate import in_root
from cdi.driverfiles import DeviceNodeInfo, RootWalk

__all__ = [
    "IMEX_CHANNEL_DIR",
    "MAX_IMEX_CHANNEL",
    "ImexChannel",
    "find_imex_channels",
    "find_management_nodes",
    "imex_channel_id",
]

IMEX_CHANNEL_DIR = "/dev/nvidia-caps-imex-channels"
# The driver numbers channels below 2^20; a bigger number is not one.
MAX_IMEX_CHANNEL = 2**20 - 1

# What management containers get (upstream pkg/nvcdi/management.go): every NVIDIA node
# the driver made, looked up without NVML ...
_MANAGEMENT_PATTERNS = (
    "/dev/nvidia*",
    "/dev/nvidia-caps/nvidia-cap*",
    "/dev/nvidia-modeset",
    "/dev/nvidia-uvm-tools",
    "/dev/nvidia-uvm",
    "/dev/nvidiactl",
    f"{IMEX_CHANNEL_DIR}/channel*",
)
# ... except those of other drivers sharing the prefix (GDS, NVSwitch, NVLink).
_MANAGEMENT_EXCLUDED = ("nvidia-fs", "nvidia-nvswitch", "nvidia-nvlink")


class ImexChannel(NamedTuple):
    """An IMEX channel node: `channel<id>` under the channel directory."""

    id: int
    node: DeviceNodeInfo


def imex_channel_id(name: str) -> int | None:
    """`channel7` -> 7; None for any other name (`channel07`, `channel-1`, `channelX`).

    Only the driver's own spelling counts: a decimal without leading zeros, at most
    MAX_IMEX_CHANNEL, so that each channel has one CDI name (`nvidia.com/imex-channel=7`).
    """
    digits = name.removeprefix("channel")
    if digits == name or not digits.isascii() or not digits.isdigit():
        return None
    if digits != "0" and digits.startswith("0"):
        return None
    number = int(digits)
    return number if number <= MAX_IMEX_CHANNEL else None


def _listdir(path: str) -> list[str]:
    try:
        return sorted(os.listdir(path))
    except OSError:  # no directory: no channels (the caller says so)
        return []


def find_imex_channels(
    dev_root: str = "/", placeholder_nodes: Mapping[str, tuple[int, int]] | None = None
) -> tuple[ImexChannel, ...]:
    """The channel nodes under `<dev_root>/dev/nvidia-caps-imex-channels`, by number.

    Names other than `channel<N>` and entries that are not character devices (nor the
    simulator's placeholders) are skipped.
    """
    dev_root = os.path.abspath(dev_root)
    walk = RootWalk(dev_root, dev_root, "/", placeholder_nodes or {})
    channels = []
    for name in _listdir(in_root(dev_root, IMEX_CHANNEL_DIR)):
        number = imex_channel_id(name)
        if number is None:
            continue
        node = walk.char_device(f"{IMEX_CHANNEL_DIR}/{name}")
        if node is not None:
            channels.append(ImexChannel(number, node))
    return tuple(sorted(channels, key=lambda c: c.id))


def _excluded(path: str) -> bool:
    return os.path.basename(path).startswith(_MANAGEMENT_EXCLUDED)


def find_management_nodes(
    dev_root: str = "/", placeholder_nodes: Mapping[str, tuple[int, int]] | None = None
) -> tuple[DeviceNodeInfo, ...]:
    """Every NVIDIA character device under `<dev_root>/dev` a management container gets.

    Found in pattern order, each once; directories (`/dev/nvidia-caps`) and regular
    files that are not placeholders are skipped.
    """
    dev_root = os.path.abspath(dev_root)
    walk = RootWalk(dev_root, dev_root, "/", placeholder_nodes or {})
    seen: dict[str, DeviceNodeInfo] = {}
    for pattern in _MANAGEMENT_PATTERNS:
        directory, glob = os.path.split(pattern)
        for name in _listdir(in_root(dev_root, directory)):
            path = f"{directory}/{name}"
            if path in seen or not fnmatch.fnmatchcase(name, glob) or _excluded(path):
                continue
            node = walk.char_device(path)
            if node is not None and node.path == path:
                seen[path] = node
    return tuple(seen.values())
