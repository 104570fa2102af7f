"""vGPU labels from PCI config space, independent of NVML (docs/labels.md#vgpu)."""

from __future__ import annotations

from nvlib.config import Config
from nvlib.model import Machine


def vgpu_labels(machine: Machine, _config: Config) -> dict[str, str]:
    if machine.vgpu is None:
        return {}  # enumeration failed; discovery logged why
    labels = {"nvidia.com/vgpu.present": "true" if machine.vgpu.devices else "false"}
    for device in machine.vgpu.devices:  # sorted PCI address order: the last one wins
        labels["nvidia.com/vgpu.host-driver-version"] = device.host_driver_version
        labels["nvidia.com/vgpu.host-driver-branch"] = device.host_driver_branch
    return labels
