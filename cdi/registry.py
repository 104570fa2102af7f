"""Which CDI devices the spec directories define, as a container engine resolves them.

CDI's cache rules (docs/cdi.md#list): directories in priority order, the later one
winning (`/etc/cdi` < `/var/run/cdi`); only `.json` and `.yaml` files, no recursion; a
file with any problem is skipped and its errors recorded, without hiding the good files;
two files of one directory defining the same device cancel it, with an error for both.
`nvidia-cdi list` prints the result, and the device plugin asks it which of the names
it hands out are already defined (docs/cdi.md#beside-the-device-plugins-spec-file).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import NamedTuple

from cdi.errors import SpecError
from cdi.load import read_spec
from cdi.spec import Spec
from nvlib.record import Plain, factory

__all__ = ["DEFAULT_SPEC_DIRS", "Registry", "SpecFile", "load_specs", "spec_files"]

DEFAULT_SPEC_DIRS = ("/etc/cdi", "/var/run/cdi")
SPEC_EXTENSIONS = (".json", ".yaml")  # `.yml` is ignored by CDI (verified)


class SpecFile(NamedTuple):
    path: str
    priority: int  # index of its directory: higher wins
    spec: Spec | None  # None when the file has problems
    errors: tuple[SpecError, ...] = ()


class Registry(Plain):
    """The spec files read, and the devices they resolve to."""

    files: list[SpecFile] = factory(list)
    devices: dict[str, SpecFile] = factory(dict)  # qualified name -> defining file
    conflicts: dict[str, list[str]] = factory(dict)  # name -> files in one dir

    @property
    def errors(self) -> list[SpecError]:
        """Every load error and every conflict, each naming its file."""
        found = [e for f in self.files for e in f.errors]
        for name, paths in sorted(self.conflicts.items()):
            found += [
                SpecError("devices", f'conflicting device "{name}" (specs {", ".join(paths)})', p)
                for p in paths
            ]
        return found

    def defines(self, qualified_name: str) -> bool:
        return qualified_name in self.devices


def spec_files(directory: str) -> list[str]:
    """The spec files CDI reads in `directory`, in name order."""
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return []
    return [
        os.path.join(directory, name)
        for name in names
        if name.endswith(SPEC_EXTENSIONS) and os.path.isfile(os.path.join(directory, name))
    ]


def load_specs(dirs: Sequence[str] = DEFAULT_SPEC_DIRS) -> Registry:
    """Read every spec in `dirs` (a missing directory is empty) and resolve devices."""
    registry = Registry()
    owners: dict[str, SpecFile] = {}
    for priority, directory in enumerate(dirs):
        for path in spec_files(directory):
            spec, problems = read_spec(path)
            entry = SpecFile(path, priority, spec, tuple(problems))
            registry.files.append(entry)
            if spec is None:
                continue
            for device in spec.devices:
                name = f"{spec.kind}={device.name}"
                other = owners.get(name)
                if other is not None and other.priority == priority:
                    registry.conflicts.setdefault(name, [other.path])
                    registry.conflicts[name].append(path)
                    continue
                if other is None or priority > other.priority:
                    # [QUIRK] CDI keeps a same-directory conflict even when a later
                    # directory defines the name again: the name stays unresolvable.
                    owners[name] = entry
    registry.devices = {n: f for n, f in sorted(owners.items()) if n not in registry.conflicts}
    return registry
