"""The real NVML path without a GPU: `nvml_stub.c` built into a `libnvidia-ml.so.1`.

The production pynvml loads it with ctypes, as it loads a driver's library, so a command
run with `stub_env` takes the path a GPU node takes, simulator left out; the stub
answers what the simulator's dgx-a100 profile answers. The test of that path
(tests/e2e/test_real_nvml_path.py) and the real-path benchmarks (bench/run.py) share
it; both build the library into a temporary directory, so no binary is committed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

SOURCE = Path(__file__).with_name("nvml_stub.c")
LIBRARY = "libnvidia-ml.so.1"  # the name pynvml asks the dynamic loader for

# The dgx-a100 profile's DMI product name, which the simulator renders in its host tree;
# on the real path it is a file the caller passes with --machine-type-file.
MACHINE = "NVIDIA DGX A100"


class StubBuildError(RuntimeError):
    """gcc is missing or refused the stub."""


def build(directory: Path) -> Path:
    """Compile the stub into `directory`; returns the library's path."""
    gcc = shutil.which("gcc")
    if gcc is None:
        raise StubBuildError(f"gcc is not on PATH: it builds {SOURCE.name} into {LIBRARY}")
    library = directory / LIBRARY
    # Hidden by default, so that only the NVML functions it marks EXPORT are symbols.
    argv = [gcc, "-shared", "-fPIC", "-O2", "-fvisibility=hidden", "-Wall", "-Wextra"]
    argv += [f"-Wl,-soname,{LIBRARY}", "-o", str(library), str(SOURCE)]
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise StubBuildError(f"gcc failed to build {SOURCE.name}:\n{result.stderr}")
    return library


def write_machine_type(directory: Path) -> Path:
    """A DMI product_name file naming the stub's machine, for --machine-type-file."""
    path = directory / "product_name"
    path.write_text(MACHINE + "\n")
    return path


def stub_env(library: Path, base: Mapping[str, str] = os.environ) -> dict[str, str]:
    """`base` with the stub first on the loader's path and no simulator selected."""
    env = {k: v for k, v in base.items() if not k.startswith("NVML_MOCK")}
    search = [str(library.parent), *filter(None, base.get("LD_LIBRARY_PATH", "").split(":"))]
    env["LD_LIBRARY_PATH"] = ":".join(search)
    return env
