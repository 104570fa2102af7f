"""The NVML simulator: built-in machines and profile files, answered beneath pynvml.

    from nvlib import sim
    with sim.activate("dgx-a100") as simulation:
        pynvml.nvmlInit()            # the real pynvml, answered by the simulator
        ...                          # host files under simulation.root

Importing this package loads the profile records only. A built-in profile comes
pre-parsed (`_bundled.py`); yaml and the profile checks are imported for a profile
file, the host-tree writer on activation, and the ctypes layer on the first NVML call.
Every `--nvml-mock` command pays for its imports at start, so keep them lazy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nvlib.sim.profile import BUILTIN_PROFILES, Profile, load_profile

if TYPE_CHECKING:  # loaded on first use by __getattr__ below
    from nvlib.sim.errors import ProfileError
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


def __getattr__(name: str) -> object:
    if name in ("Simulation", "activate", "active"):
        from nvlib.sim import simulation

        value = getattr(simulation, name)
    elif name == "ProfileError":
        from nvlib.sim.errors import ProfileError

        value = ProfileError
    else:
        raise AttributeError(f"module 'nvlib.sim' has no attribute {name!r}")
    globals()[name] = value  # found without this function from now on
    return value
