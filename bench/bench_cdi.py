"""CDI generation benchmark: `python bench/bench_cdi.py` (from the project's venv).

The machine is the simulated `dgx-a100-mig` (8 A100s, 4 MIG devices each); the driver
root is the simulator's, topped up to a realistic driver of about 60 libraries. Lines:

- cdi-generate in-process: `find_driver_files` + `generate_spec` + the YAML bytes, after
  one NVML discovery, against a bare walk of the same driver root (list every directory,
  lstat every entry): the I/O no generator can skip. Goal: at most 20 ms.
- nvidia-cdi generate (whole command): the console script writing the spec to a file,
  against `python -c pass`, their runs interleaved. Goal: at most 5x.
- For reading the second figure, two references from the same interleaved runs: the
  interpreter importing the `pynvml` binding that every run must load, and the
  interpreter starting the simulator (`sim.activate`), which every `--nvml-mock` run does.

Timings are medians; nothing here is a pass/fail test.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

from timing import median_runs, median_seconds

PROFILE = "dgx-a100-mig"
LIBDIR = "usr/lib/x86_64-linux-gnu"
# Libraries of a real 550 driver package that the simulator's root leaves out.
EXTRA_LIBRARIES = (
    "libnvidia-api.so", "libnvidia-cbl.so", "libnvidia-compiler.so", "libnvidia-dlss.so",
    "libnvidia-fatbinaryloader.so", "libnvidia-fm.so", "libnvidia-gsp.so", "libnvidia-gtk2.so",
    "libnvidia-gtk3.so", "libnvidia-ifr.so", "libnvidia-imex.so", "libnvidia-kms.so",
    "libnvidia-ngx-dlssg.so", "libnvidia-nscq.so", "libnvidia-nvlsm.so", "libnvidia-ocl.so",
    "libnvidia-pcc.so", "libnvidia-present.so", "libnvidia-sandboxutils.so", "libnvidia-vkdev.so",
    "libnvidia-vksc-core.so", "libnvidia-wfb.so", "libGL_nvidia.so", "libnvidia-egl-xcb.so",
    "libnvidia-egl-xlib.so", "libnvidia-gbm.so", "libnvidia-cudart.so", "libnvidia-container.so",
    "libnvidia-rtx.so", "libnvidia-video.so",
)  # fmt: skip


def _command() -> list[str]:
    script = Path(sys.executable).parent / "nvidia-cdi"
    return [str(script)] if script.exists() else [sys.executable, "-m", "cdi"]


def _line(name: str, figure: float, floor: float, goal: str, ok: bool) -> None:
    ratio = figure / floor if floor else float("inf")
    print(
        f"{name:<46} {figure:8.2f} ms  floor {floor:7.2f} ms  ratio {ratio:5.2f}x  "
        f"goal {goal}  {'ok' if ok else 'OVER'}",
        flush=True,
    )


def driver_root(target: Path) -> tuple[Path, str]:
    """The simulator's driver root for PROFILE plus EXTRA_LIBRARIES: (root, version)."""
    from nvlib import sim

    with sim.activate(PROFILE) as simulation:
        shutil.copytree(simulation.driver_root, target, symlinks=True)
        version = simulation.profile.driver_version
    for name in EXTRA_LIBRARIES:
        real = target / LIBDIR / f"{name}.{version}"
        real.write_bytes(f"placeholder for {real.name}\n".encode())
        (target / LIBDIR / f"{name}.1").symlink_to(real.name)
    return target, version


def _bare_walk(root: Path) -> None:
    for _dirpath, dirnames, filenames in os.walk(root):
        for name in (*dirnames, *filenames):
            os.lstat(os.path.join(_dirpath, name))


def bench_in_process(root: Path) -> None:
    import cdi
    from nvlib import sim
    from nvlib.discover import discover

    with sim.activate(PROFILE) as simulation:
        machine = discover(simulation.root, machine_type_file="", with_vgpu=False)
        options = cdi.GenerateOptions(hook_path="/usr/bin/nvidia-cdi-hook")

        def generate() -> bytes:
            files = cdi.find_driver_files(
                machine,
                str(root),
                host_root=str(simulation.root),
                placeholder_nodes=simulation.device_nodes,
            )
            return cdi.spec_bytes(cdi.generate_spec(machine, files, options))

        libraries = sum(1 for lib in generate().decode().splitlines() if "containerPath" in lib)
        figure = median_seconds(generate, 60) * 1e3
        floor = median_seconds(lambda: _bare_walk(root), 60) * 1e3
    _line(f"cdi-generate {PROFILE} in-process ({libraries} mounts)", figure, floor, "<= 20 ms",
          figure <= 20)  # fmt: skip


def bench_command(root: Path, scratch: Path) -> None:
    argv = [
        *_command(), "generate", "--nvml-mock", PROFILE, "--driver-root", str(root),
        "--nvidia-cdi-hook-path", "/usr/bin/nvidia-cdi-hook",
        "--output", str(scratch / "cdi" / "nvidia.yaml"),
    ]  # fmt: skip
    references = {
        "python -c 'import pynvml'": [sys.executable, "-c", "import pynvml"],
        "python + nvlib.sim.activate": [
            sys.executable, "-c", f"from nvlib import sim; sim.activate({PROFILE!r})"
        ],
    }  # fmt: skip
    timings = median_runs([sys.executable, "-c", "pass"], argv, *references.values())
    floor, figure, *reference_walls = (wall * 1e3 for wall, _rss in timings)
    _line(f"nvidia-cdi generate {PROFILE} (whole command)", figure, floor, "<= 5x",
          figure <= 5 * floor)  # fmt: skip
    for name, wall in zip(references, reference_walls, strict=True):
        print(f"{'  reference: ' + name:<46} {wall:8.2f} ms  ({wall / floor:.2f}x the floor)")


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-cdi-") as tmp:
        scratch = Path(tmp)
        root, _version = driver_root(scratch / "driver")
        bench_in_process(root)
        bench_command(root, scratch)


if __name__ == "__main__":
    main()
