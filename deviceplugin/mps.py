"""The plugin's side of MPS sharing: is the control daemon up?"""

from __future__ import annotations

import os
import subprocess

from deviceplugin.allocate import MPS_CONTAINER_ROOT
from deviceplugin.errors import PluginError

CONTROL = "nvidia-cuda-mps-control"
TIMEOUT = 10.0


def check_daemon(resource_name: str) -> None:
    """Ask the resource's daemon a harmless question; PluginError when it cannot answer."""
    base = f"{MPS_CONTAINER_ROOT}/{resource_name}"
    env = dict(os.environ)
    env["CUDA_MPS_PIPE_DIRECTORY"] = f"{base}/pipe"
    env["CUDA_MPS_LOG_DIRECTORY"] = f"{base}/log"
    try:
        result = subprocess.run(
            [CONTROL],
            input=b"get_default_active_thread_percentage\n",
            env=env,
            capture_output=True,
            timeout=TIMEOUT,
            check=False,
        )
        if result.returncode != 0:
            raise OSError(f"{CONTROL} exited {result.returncode}: {result.stderr.decode()}")
    except (OSError, subprocess.SubprocessError) as err:
        raise PluginError(
            f"error waiting for MPS daemon: error checking MPS daemon health: {err}"
        ) from err
