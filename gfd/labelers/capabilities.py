"""`mig.capable` and `mps.capable`."""

from __future__ import annotations

from gfd.labelers.resources import LabelError
from nvlib.config import Config
from nvlib.model import Machine


def _bool(value: bool) -> str:
    return "true" if value else "false"


def mig_capable_labels(machine: Machine, _config: Config) -> dict[str, str]:
    return {"nvidia.com/mig.capable": _bool(any(gpu.mig_capable for gpu in machine.gpus))}


def mps_capable_labels(machine: Machine, config: Config) -> dict[str, str]:
    if config.sharing.sharing_strategy() != "mps":
        return {"nvidia.com/mps.capable": "false"}
    if any(gpu.mig_enabled for gpu in machine.gpus):
        # Kept from upstream: a configuration error the operator should see at once.
        raise LabelError(
            "error creating sharing labeler: failed to check MPS-capable: "
            "MPS sharing is not supported for mig devices"
        )
    return {"nvidia.com/mps.capable": "true"}
