"""`--nvml-mock PROFILE`: the simulation a command runs against, one per process.

Every command takes `--nvml-mock` (docs/profiles.md) and activates the profile here, so
that a reload (GFD's and the plugin's SIGHUP, the plugin's restart after a kubelet
restart) keeps the same simulated machine, with its host tree and its runtime faults, and
only a changed profile replaces it. A simulation that something else activated in this
process (a test, with the faults it injects) is used as it is.

`nvlib.sim` is imported on first use only: a command without `--nvml-mock` never loads it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the simulator loads on first use only
    from nvlib.sim import Simulation

_started: Simulation | None = None  # the simulation this module activated
_profile: str | None = None  # the profile it was activated for


def simulation(profile: str) -> Simulation:
    """The active simulation for `profile`: activated on first use, kept across reloads.

    One this module activated is replaced when `profile` changes; one activated by
    someone else is returned whatever `profile` says. A profile that cannot be simulated
    raises sim.ProfileError, its text led by `--nvml-mock <profile>: `.
    """
    global _started, _profile
    from nvlib import sim

    current = sim.active()
    if current is not None and (current is not _started or _profile == profile):
        return current
    try:
        _started = sim.activate(profile)  # replaces (deactivates) the one active, if any
    except sim.ProfileError as err:
        # The field path alone does not say which file: lead with the flag and the profile.
        err.args = (f"--nvml-mock {profile}: {err}",)
        raise
    _profile = profile
    return _started


def release() -> None:
    """Deactivate the simulation this module activated, if it is still active.

    One activated by someone else is theirs to deactivate.
    """
    global _started, _profile
    started, _started, _profile = _started, None, None
    if started is not None:
        started.deactivate()
