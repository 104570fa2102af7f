"""IMEX channels injected into every allocation (`--imex-channel-ids`).

Only channel 0 can be configured (the config layer checks `[]` or `[0]`). A channel
exists when its node, under the driver root's `dev` or bare, is a character device;
a missing one is fatal only with `imex.required`.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Sequence

from deviceplugin.errors import PluginError

log = logging.getLogger(__name__)

CHANNEL_DIR = "/dev/nvidia-caps-imex-channels"


def channel_path(channel_id: int) -> str:
    return f"{CHANNEL_DIR}/channel{channel_id}"


def _dev_root(container_driver_root: str) -> str:
    """The driver root when it has a `dev` directory (a driver container), else `/`."""
    return (
        container_driver_root if os.path.isdir(os.path.join(container_driver_root, "dev")) else "/"
    )


def _check(path: str) -> None:
    st = os.stat(path)
    if not stat.S_ISCHR(st.st_mode):
        raise OSError(f"{path} is not a character device")


def present_channels(
    channel_ids: Sequence[int], container_driver_root: str, required: bool
) -> tuple[str, ...]:
    """The IDs (as strings) of the configured channels whose device node exists."""
    found = []
    for channel_id in channel_ids:
        path = channel_path(channel_id)
        host_path = os.path.join(_dev_root(container_driver_root), path.lstrip("/"))
        errors = []
        for candidate in (host_path, path):
            try:
                _check(candidate)
                break
            except OSError as err:
                errors.append(str(err))
        else:
            name = f"channel{channel_id}"
            if required:
                raise PluginError(
                    f"error querying IMEX channels: requested IMEX channel {name} does not"
                    f" exist\n{chr(10).join(errors)}"
                )
            log.warning("Ignoring requested IMEX channel %s (%s)", name, "; ".join(errors))
            continue
        found.append(str(channel_id))
    return tuple(found)
