"""The NVML simulator: built-in machines and profile files, answered beneath pynvml.

    from nvlib import sim
    with sim.activate("dgx-a100") as simulation:
        pynvml.nvmlInit()            # the real pynvml, answered by the simulator
        ...                          # host files under simulation.root

Importing this package loads the simulator: yaml and the profile checks come when a
profile is loaded (a built-in one is its YAML file in profiles/), and the ctypes layer
on the first NVML call. A command on the real NVML path never imports it.
"""

from __future__ import annotations

from nvlib.sim.errors import ProfileError
from nvlib.sim.profile import BUILTIN_PROFILES, Profile, load_profile
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
