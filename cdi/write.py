"""Write a spec: validate it, encode it, put it in place atomically with mode 0644.

Strict in, valid out: the writer runs the same validation as `validate`, so nothing this
package writes can be refused by a CDI consumer for its content. The bytes go through
`nvlib.fsutil.write_atomic`, the project's one atomic writer: readers (container engines
rescanning the spec directory) see the old spec or the new one, an unchanged spec is not
rewritten (its mtime does not move, no rescan is triggered), and a symlink or directory
as target is refused. `-` is standard output.
"""

from __future__ import annotations

import logging
import os
import sys

from cdi.encode import to_json, to_yaml
from cdi.errors import SpecErrors
from cdi.spec import Spec
from cdi.validate import validate

log = logging.getLogger(__name__)

__all__ = ["FORMATS", "output_target", "spec_bytes", "write_spec"]

FORMATS = ("yaml", "json")
_EXTENSION_FORMATS = {".json": "json", ".yaml": "yaml", ".yml": "yaml"}


def output_target(output: str, fmt: str | None = None) -> tuple[str, str]:
    """(path, format) as `nvidia-ctk` resolves `--output` and `--format` (docs/cdi.md#generate).

    The format defaults to the one the extension names, else YAML. A path whose
    extension is not `.json` or `.yaml` gets the format's (`nvidia.yml` ->
    `nvidia.yml.yaml`): CDI reads no other files. An explicit format that disagrees
    with the extension only warns.
    """
    ext = os.path.splitext(output)[1].lower() if output != "-" else ""
    implied = _EXTENSION_FORMATS.get(ext)
    if fmt is None:
        fmt = implied or "yaml"
    fmt = fmt.lower()
    if fmt not in FORMATS:
        raise ValueError(f"invalid format {fmt!r}: want yaml or json")
    if implied is not None and implied != fmt:
        log.warning("Requested output format %s does not match the file extension %s", fmt, ext)
    if output != "-" and ext not in (".json", ".yaml"):
        output = f"{output}.{fmt}"
    return output, fmt


def spec_bytes(spec: Spec, fmt: str = "yaml") -> bytes:
    """The spec's bytes after validation; raises SpecErrors listing every problem."""
    problems = validate(spec)
    if problems:
        raise SpecErrors(problems)
    return to_json(spec) if fmt == "json" else to_yaml(spec)


def write_spec(spec: Spec, path: str, fmt: str | None = None) -> bool:
    """Validate and write `spec` to `path` (`-`: standard output); True if bytes changed.

    `fmt` defaults to the one `path`'s extension names (YAML otherwise); `path` is used
    as given (see `output_target` for the CLI's extension rule). A missing parent
    directory is created with mode 0755, as the CDI library does.
    Raises SpecErrors, UnsafeTargetError or OSError.
    """
    from nvlib.fsutil import write_atomic

    if fmt is None:
        fmt = _EXTENSION_FORMATS.get(os.path.splitext(path)[1].lower(), "yaml")
    data = spec_bytes(spec, fmt)
    if path == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return True
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, mode=0o755, exist_ok=True)
    return write_atomic(path, data, mode=0o644)
