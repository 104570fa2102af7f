"""`nvidia-cdi transform root`: read a spec, move its root, write it (the edge).

Reading is strict, as `validate` reads (`cdi.load.check_spec`): a spec a CDI consumer
would refuse is reported, every problem as `file: field: reason`, and nothing is
written. The transform itself is `cdi.transform.transform_root` (pure). Writing is
`generate`'s: `cdi.write.output_target` for the extension (YAML unless `.json`),
`cdi.write.write_spec` for the validated, atomic, 0644 write with the project's encoder.
"""

from __future__ import annotations

import logging
import sys

from cdi.cli import TransformRootSettings

log = logging.getLogger("cdi")

__all__ = ["transform_root_once"]

STDIN_NAME = "<stdin>"


def _read(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    with open(path, "rb") as f:
        return f.read()


def transform_root_once(settings: TransformRootSettings) -> int:
    """0 when the transformed spec is written; 1 (nothing written) on any failure."""
    from cdi.errors import CdiError
    from cdi.load import check_spec
    from cdi.transform import transform_root
    from cdi.write import output_target, write_spec

    name = STDIN_NAME if settings.input_path == "-" else settings.input_path
    try:
        data = _read(settings.input_path)
    except OSError as err:
        log.error("failed to load CDI specification: %s: %s", name, err.strerror or err)
        return 1
    spec, problems = check_spec(data, name)
    if spec is None:
        for problem in problems:  # every one, as `validate` prints them
            log.error("failed to load CDI specification: %s", problem)
        return 1
    moved = transform_root(spec, settings.from_root, settings.to_root, settings.relative_to)
    if moved.version != spec.version:
        log.warning(  # a node gained a hostPath: older readers know no such key
            "cdiVersion raised from %s to %s, the lowest the moved spec allows",
            spec.version,
            moved.version,
        )
    try:
        if settings.output == "-":
            write_spec(moved, "-", "yaml")
            return 0
        path, fmt = output_target(settings.output)
        changed = write_spec(moved, path, fmt)
    except (CdiError, OSError, ValueError) as err:
        log.error("failed to save CDI specification: %s", err)
        return 1
    log.info("%s %s", "Wrote CDI spec to" if changed else "CDI spec unchanged:", path)
    return 0
