"""The one error a profile can raise: it names the field path and the bad value."""

from __future__ import annotations


class ProfileError(ValueError):
    """A machine profile that cannot be simulated: malformed, unknown or inconsistent.

    `field` reads like the YAML (`gpus[1].memory`, `faults[0].after`), so a typo in a
    hand-written profile is found without reading the simulator.
    """

    def __init__(self, field: str, value: object, reason: str, source: str | None = None) -> None:
        super().__init__(f"{field or '<profile>'}: {reason} (got {value!r})")
        self.field = field
        self.value = value
        self.reason = reason
        self.source = source  # the file, when the profile came from one
