"""What a simulator start does, and when: the profile parsed once, the lazy parts.

Matrix: a built-in profile is its YAML file parsed, once per process; the ctypes layer
comes with the first NVML call; the driver root is written on first use of
`driver_root` or `device_nodes`, never after deactivate, and the host tree is removed
whole.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import nvlib
from nvlib import sim
from nvlib.sim.profile import PROFILES_DIR

REPO = Path(nvlib.__file__).resolve().parent.parent


@pytest.mark.parametrize("name", sim.BUILTIN_PROFILES)
def test_a_builtin_profile_is_its_shipped_yaml_file_parsed_once(name: str) -> None:
    path = PROFILES_DIR / f"{name}.yaml"
    builtin = sim.load_profile(name)
    assert builtin.source is None  # built in: errors name the profile, not a file
    assert sim.load_profile(name) is builtin  # parsed once per process
    from_file = sim.load_profile(str(path))  # the same file, named by path
    assert from_file.source == str(path) and from_file is not builtin
    assert from_file._replace(source=None) == builtin


def start(code: str) -> dict[str, object]:
    """Run `code` in a fresh interpreter; what it prints as JSON."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)


def test_the_ctypes_layer_comes_with_the_first_call() -> None:
    found = start(
        "import json, sys, pynvml\n"
        "from nvlib import sim\n"
        "s = sim.activate('t4')\n"
        "before = 'nvlib.sim.library' in sys.modules\n"
        "pynvml.nvmlInit()\n"
        "name = pynvml.nvmlDeviceGetName(pynvml.nvmlDeviceGetHandleByIndex(0))\n"
        "print(json.dumps([before, 'nvlib.sim.library' in sys.modules, name]))\n"
    )
    assert found == [False, True, "Tesla T4"]


@pytest.mark.parametrize("first", ["driver_root", "device_nodes"])
def test_driver_root_written_on_first_use(first: str) -> None:
    with sim.activate("dgx-a100-mig") as simulation:
        root = simulation.root
        driver = root / "driver"
        assert (root / "sys/bus/pci/devices/0000:07:00.0/config").is_file()
        assert (root / "proc/driver/nvidia-caps/mig-minors").is_file()
        assert (root / "proc/driver/nvidia/capabilities/gpu0/mig/gi2/ci0/access").is_file()
        assert not driver.exists()
        getattr(simulation, first)
        assert (driver / "dev/nvidia0").is_file()
        assert (driver / "usr/lib/x86_64-linux-gnu/libcuda.so.1").is_symlink()
        assert simulation.driver_root == driver
        assert all((driver / p).is_file() for p in simulation.device_nodes)
    assert not root.exists()


def test_nothing_written_after_deactivate() -> None:
    simulation = sim.activate("t4")
    simulation.deactivate()
    assert simulation.device_nodes["dev/nvidia0"] == (195, 0)
    assert simulation.driver_root == simulation.root / "driver"
    assert not simulation.root.exists()


def test_a_tree_with_additions_is_removed() -> None:
    with sim.activate("t4") as simulation:
        assert simulation.driver_root.is_dir()
        (simulation.root / "sys/extra").mkdir()
        (simulation.root / "sys/extra/file").write_text("x")
        (simulation.root / "proc/driver/nvidia/version").unlink()
    assert not simulation.root.exists()
