"""The real NVML path for the benchmarks: production pynvml loading a C libnvidia-ml.

The library is the test suite's stub of the dgx-a100 (tests/support/nvml_stub.c, built
by tests/support/nvml_stub.py), compiled with gcc into a temporary directory; commands
run with it first on LD_LIBRARY_PATH and without --nvml-mock, so they take a GPU
node's path, simulator left out.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# Appended, not prepended: the support modules must shadow nothing.
sys.path.append(str(Path(__file__).resolve().parent.parent / "tests" / "support"))

from nvml_stub import StubBuildError, build, stub_env, write_machine_type

GFD = Path(sys.executable).parent / "gpu-feature-discovery"

__all__ = ["GFD", "StubBuildError", "real_path"]


@contextmanager
def real_path() -> Iterator[tuple[dict[str, str], list[str]]]:
    """The stub's environment, and the GFD oneshot's argv on it (the dgx-a100 labels:
    the DMI product name comes from a file, as --machine-type-file names one on a node).
    StubBuildError when gcc is missing or fails."""
    with tempfile.TemporaryDirectory() as tmp:
        library = build(Path(tmp))
        machine_type = write_machine_type(Path(tmp))
        argv = [str(GFD), "--oneshot", "--output-file", "-"]
        yield stub_env(library), [*argv, "--machine-type-file", str(machine_type)]
