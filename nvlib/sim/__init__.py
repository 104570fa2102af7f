"""The NVML simulator: built-in machines and profile files, answered beneath pynvml.

    from nvlib import sim
    with sim.activate("dgx-a100") as simulation:
        pynvml.nvmlInit()            # the real pynvml, answered by the simulator
        ...                          # host files under simulation.root

Importing this package loads the profile format (yaml, and pynvml for its constants);
the ctypes layer and the host-tree writer are imported on first activation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nvlib.sim.errors import ProfileError
from nvlib.sim.profile import BUILTIN_PROFILES, Profile, load_profile

if TYPE_CHECKING:
    from nvlib.sim.simulation import Simulation, activate, active

__all__ = [
    "BUILTIN_PROFILES",
    "Profile",
    "ProfileError",
    "Simulation",
    "activate",
    "active",
    "load_profile",
]


def __getattr__(name: str) -> Any:
    if name in ("Simulation", "activate", "active"):
        from nvlib.sim import simulation

        return getattr(simulation, name)
    raise AttributeError(f"module 'nvlib.sim' has no attribute {name!r}")
