"""Shared core: NVML access, the device model, the simulator and the v1 config."""

from __future__ import annotations

__version__ = "0.1.0"
