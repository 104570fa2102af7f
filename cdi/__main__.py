"""`nvidia-cdi` / `python -m cdi`: `generate`, `list`, `validate`, `transform root` CDI specs.

Logs go to standard error; standard output carries only the product: the spec with
`generate --output -` or `transform root` (by default), the device names of `list`, the
problems `validate` found.
Exit status: 0 success, 1 failure (nothing written, or problems found), 2 usage.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence

from cdi import run
from cdi.cli import GenerateSettings, ListSettings, TransformRootSettings, UsageError, parse
from cdi.load import read_spec
from cdi.registry import load_specs, spec_files
from cdi.transform_run import transform_root_once
from nvlib import __version__, logs

log = logging.getLogger("cdi")


def _list(spec_dirs: Sequence[str]) -> int:
    registry = load_specs(spec_dirs)
    errors = registry.errors
    if errors:
        log.warning("The following registry errors were reported:")
        for error in errors:
            log.warning("%s", error)
    log.info("Found %d CDI devices", len(registry.devices))
    sys.stdout.write("".join(f"{name}\n" for name in registry.devices))
    return 0


def _validate(paths: Sequence[str]) -> int:
    """Every problem of every file, each as `file: field: reason`; 1 if any."""
    files: list[str] = []
    for path in paths:
        if os.path.isdir(path):
            found = spec_files(path)
            if not found:
                log.warning("%s: no .json or .yaml spec files", path)
            files += found
        else:
            files.append(path)
    problems = 0
    owners: dict[tuple[str, str], str] = {}  # (directory, qualified name) -> file
    for path in files:
        spec, errors = read_spec(path)
        for error in errors:
            sys.stdout.write(f"{error}\n")
        problems += len(errors)
        if spec is None:
            continue
        directory = os.path.dirname(os.path.abspath(path))
        for i, device in enumerate(spec.devices):
            name = f"{spec.kind}={device.name}"
            other = owners.setdefault((directory, name), path)
            if other != path:  # one directory, two files: CDI drops the device
                problems += 1
                sys.stdout.write(
                    f'{path}: devices[{i}].name: conflicting device "{name}" '
                    f"(also defined in {other}; CDI drops it from both)\n"
                )
    sys.stdout.flush()
    if problems:
        log.error("%d problem(s) in %d file(s) checked", problems, len(files))
        return 1
    log.info("%d file(s) valid", len(files))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    logs.configure()  # standard error only: standard output is the product
    try:
        settings = parse(sys.argv[1:] if argv is None else argv)
    except UsageError as err:
        log.error("%s", err)
        return 2
    if settings is None:
        print(f"nvidia-cdi {__version__}")
        return 0
    if isinstance(settings, ListSettings):
        return _list(settings.spec_dirs)
    if isinstance(settings, TransformRootSettings):
        return transform_root_once(settings)
    if not isinstance(settings, GenerateSettings):
        return _validate(settings.paths)
    if settings.watch:
        control = run.WatchControl()
        control.install_signals()
        return run.watch(settings, control=control)
    return run.generate_once(settings)


if __name__ == "__main__":
    sys.exit(main())
