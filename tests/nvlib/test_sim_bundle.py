"""What a simulator start costs: the pre-parsed built-in profiles and the lazy parts.

Matrix: the committed _bundled.py is what `python -m nvlib.sim.bundle` writes from the
YAML files as they are (a stale bundle fails, naming the command), and `--check`
says so too; each bundled profile equals its YAML file parsed; a start on a built-in
profile imports no YAML parser, hashlib or uuid (nor typing, nor the ctypes layer);
the driver root is written on first use of `driver_root` or `device_nodes`, never
after deactivate; records behave as typing.NamedTuples do.
"""

from __future__ import annotations

import copy
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

import nvlib
from nvlib import sim
from nvlib.sim import bundle
from nvlib.sim.profile import DeviceMajors, FaultSpec, PciAddress

REPO = Path(nvlib.__file__).resolve().parent.parent


def test_committed_bundle_is_fresh() -> None:
    assert bundle.BUNDLE.read_text(encoding="utf-8") == bundle.render(), (
        "nvlib/sim/_bundled.py is stale: run `python -m nvlib.sim.bundle`"
    )


@pytest.mark.parametrize("name", sim.BUILTIN_PROFILES)
def test_bundled_profile_is_its_yaml(name: str) -> None:
    assert sim.load_profile(name) == bundle.parse_builtin(name)
    assert repr(sim.load_profile(name)) == repr(bundle.parse_builtin(name))  # record types too
    assert sim.load_profile(name) is sim.load_profile(name)  # built once per process


def test_check_and_regenerate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "_bundled.py"
    monkeypatch.setattr(bundle, "BUNDLE", target)
    assert bundle.main(["--check"]) == 1
    assert "python -m nvlib.sim.bundle" in capsys.readouterr().err
    assert bundle.main([]) == 0
    assert target.read_text(encoding="utf-8") == bundle.render()
    assert bundle.main(["--check"]) == 0
    target.write_text(target.read_text(encoding="utf-8").replace("12040", "12041"))
    assert bundle.main(["--check"]) == 1
    assert bundle.main(["--bogus"]) == 2


def start(code: str) -> dict[str, object]:
    """Run `code` in a fresh interpreter; what it prints as JSON."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)


def test_a_builtin_start_imports_no_parser() -> None:
    found = start(
        "import json, sys\n"
        "from nvlib import sim\n"
        "s = sim.activate('dgx-a100-mig')\n"
        "s.root, s.driver_root, s.device_nodes\n"
        "heavy = ['yaml', 'hashlib', 'uuid', 'typing', 'nvlib.sim.parse', 'nvlib.sim.state',"
        " 'nvlib.sim.library']\n"
        "print(json.dumps([m for m in heavy if m in sys.modules]))\n"
    )
    assert found == []


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


def test_records_behave_as_named_tuples() -> None:
    bus = PciAddress(0, 7, 0, 0)
    assert bus == (0, 7, 0, 0) and bus.bus == 7 and bus[1] == 7
    assert repr(bus) == "PciAddress(domain=0, bus=7, device=0, function=0)"
    assert bus._replace(bus=8) == PciAddress(domain=0, bus=8, device=0, function=0)
    assert PciAddress._fields == ("domain", "bus", "device", "function")
    assert PciAddress._make([0, 1, 2, 3]).function == 3
    assert bus._asdict() == {"domain": 0, "bus": 7, "device": 0, "function": 0}
    assert pickle.loads(pickle.dumps(bus)) == bus and copy.deepcopy(bus) == bus
    assert DeviceMajors(nvidia_uvm=510) == (195, 510, 509, 507)
    assert FaultSpec("xid", 1.0, gpu=0).error is None
    with pytest.raises(TypeError):
        PciAddress(0, 7, 0)
    with pytest.raises(TypeError):
        PciAddress(0, 7, 0, 0, 1)
    with pytest.raises(TypeError):
        PciAddress(0, 7, 0, 0, bus=1)
    with pytest.raises(ValueError):
        bus._replace(slot=1)
    with pytest.raises(AttributeError):
        bus.bus = 8  # type: ignore[misc]
