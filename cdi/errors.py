"""The errors of the `cdi` package: few, specific, and carrying the field they are about.

A `SpecError` holds the file, the field path (`devices[3].containerEdits.deviceNodes[0].path`)
and the reason, so `validate` can print every problem as a path from file to field.
Where the CDI library has a wording (`invalid device, empty device edits`), the reason
keeps it word for word, so a message can be matched against what a container engine
logs.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["CdiError", "DriverFilesError", "GenerateError", "SpecError", "SpecErrors"]


class CdiError(Exception):
    """Base class: anything the `cdi` package reports as a user-facing failure."""


class SpecError(CdiError, ValueError):
    """One problem in one spec, at one field."""

    def __init__(self, path: str, reason: str, file: str | None = None) -> None:
        self.path, self.reason, self.file = path, reason, file
        super().__init__(str(self))

    def __str__(self) -> str:
        where = ": ".join(part for part in (self.file, self.path) if part)
        return f"{where}: {self.reason}" if where else self.reason

    def in_file(self, file: str) -> SpecError:
        return SpecError(self.path, self.reason, file)


class SpecErrors(CdiError, ValueError):
    """Every problem found in a spec (or several files), in the order they were found."""

    def __init__(self, errors: Sequence[SpecError]) -> None:
        self.errors = tuple(errors)
        super().__init__("\n".join(str(e) for e in self.errors))


class DriverFilesError(CdiError):
    """The driver root cannot give what a spec needs (no libraries for the version, ...)."""


class GenerateError(CdiError):
    """The spec cannot be built from this machine and these options."""
