"""Loading libnvidia-ml from the driver root mounted in the container.

With a driver container the host's driver lives under `--driver-root-ctr-path`
(`/driver-root`), not on the library path of the plugin or of `nvidia-cdi generate`.
Upstream then loads NVML from the first of a few library directories there. pynvml
opens the bare name `libnvidia-ml.so.1`; loading the file first, globally, makes the
dynamic loader hand that same library to pynvml, since a loaded library answers to its
SONAME.
"""

from __future__ import annotations

import ctypes
import logging
import os

log = logging.getLogger(__name__)

LIBRARY = "libnvidia-ml.so.1"
LIBRARY_DIRS = (
    "/usr/lib64",
    "/usr/lib/x86_64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/lib64",
    "/lib/x86_64-linux-gnu",
    "/lib/aarch64-linux-gnu",
)


def locate_nvml(container_driver_root: str) -> str | None:
    """The library under the root (symlinks resolved), or None for the bare name."""
    if container_driver_root in ("", "/"):
        return None
    for directory in LIBRARY_DIRS:
        candidate = os.path.join(container_driver_root, directory.lstrip("/"), LIBRARY)
        if os.path.exists(candidate):
            return os.path.realpath(candidate)
    return None


def preload_nvml(container_driver_root: str) -> None:
    path = locate_nvml(container_driver_root)
    if path is None:
        return
    try:
        ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
    except OSError as err:  # pynvml then reports the failure in its own words
        log.warning("unable to load %s: %s", path, err)
