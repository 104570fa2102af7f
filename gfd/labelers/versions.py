"""Driver and CUDA version labels, deprecated keys included."""

from __future__ import annotations

from gfd.labelers.resources import LabelError
from nvlib.config import Config
from nvlib.model import Machine


def version_labels(machine: Machine, _config: Config) -> dict[str, str]:
    fields = machine.driver_version.split(".")
    if len(fields) not in (2, 3):
        raise LabelError(
            f'error getting driver version: Version "{machine.driver_version}" does not match '
            'format "X.Y[.Z]"'
        )
    major, minor = fields[0], fields[1]
    revision = fields[2] if len(fields) == 3 else ""
    cuda_major = machine.cuda_driver_version // 1000
    cuda_minor = (machine.cuda_driver_version % 1000) // 10
    return {
        "nvidia.com/cuda.driver.major": major,
        "nvidia.com/cuda.driver.minor": minor,
        "nvidia.com/cuda.driver.rev": revision,
        "nvidia.com/cuda.driver-version.major": major,
        "nvidia.com/cuda.driver-version.minor": minor,
        "nvidia.com/cuda.driver-version.revision": revision,
        "nvidia.com/cuda.driver-version.full": machine.driver_version,
        "nvidia.com/cuda.runtime.major": str(cuda_major),
        "nvidia.com/cuda.runtime.minor": str(cuda_minor),
        "nvidia.com/cuda.runtime-version.major": str(cuda_major),
        "nvidia.com/cuda.runtime-version.minor": str(cuda_minor),
        "nvidia.com/cuda.runtime-version.full": f"{cuda_major}.{cuda_minor}",
    }
