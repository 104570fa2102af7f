"""The profile format: files round-trip, bad files say what is wrong, model facts agree.

Matrix: the bad-profile corpus (tests/nvlib/data/bad-profiles/, one file per fault,
its expected message on the first line); every built-in profile copied to a file
loads to the same machine (a file can express every built-in row); a hand-written
file with overrides, a MIG layout and faults, activated and read through pynvml;
unknown names; the GB formula (docs/labels.md#mig-strategies-and-profile-names) against
every model's MIG names.
"""

from __future__ import annotations

import math
import shutil
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pynvml
import pytest

from nvlib import sim
from nvlib.sim.gpus import MODELS, GpuModel

BAD = Path(__file__).parent / "data" / "bad-profiles"
PROFILES = Path(sim.__file__).parent / "profiles"
MIB, GIB = 1024 * 1024, 1024 * 1024 * 1024


@pytest.mark.parametrize("case", sorted(BAD.glob("*.yaml")), ids=lambda p: p.stem)
def test_bad_profile(case: Path) -> None:
    first = case.read_text().splitlines()[0]
    assert first.startswith("# expect: "), "each corpus file names its message first"
    expected = first.removeprefix("# expect: ").replace("{path}", str(case))
    with pytest.raises(sim.ProfileError) as caught:
        sim.load_profile(case)
    assert str(caught.value) == expected
    assert caught.value.source == str(case)
    assert str(caught.value).startswith(caught.value.field or "<profile>")


def test_error_attributes() -> None:
    with pytest.raises(sim.ProfileError) as caught:
        sim.load_profile(BAD / "memory-not-a-number.yaml")
    err = caught.value
    assert (err.field, err.value) == ("gpus[1].memory", "lots")
    assert isinstance(err, ValueError)


def test_unknown_name_lists_the_builtins() -> None:
    with pytest.raises(sim.ProfileError) as caught:
        sim.load_profile("dgx-a200")
    assert caught.value.field == "profile"
    assert "dgx-a100, dgx-a100-mig, dgx-h100, gb200, t4, l40s, mixed, vgpu, no-gpu" in str(
        caught.value
    )


@pytest.mark.parametrize("name", sim.BUILTIN_PROFILES)
def test_a_file_expresses_every_builtin(name: str, tmp_path: Path) -> None:
    copy = tmp_path / f"{name}.yaml"
    shutil.copy(PROFILES / f"{name}.yaml", copy)
    from_file = sim.load_profile(copy)
    assert from_file._replace(source=None) == sim.load_profile(name)
    assert from_file.source == str(copy)


CUSTOM = """\
name: lab-box
description: a workstation with one MIG GPU and one display GPU
machine: Lab Box 9000
driver: "535.104.05"
cuda: 12020
device_majors: {nvidia-uvm: 510}
gpus:
  - model: A100-SXM4-80GB
    bus_ids: ["0000:81:00.0"]
    numa_node: 1
    mig: enabled
    mig_devices: [1c.2g.20gb, 1g.10gb+me, 4g.40gb]
  - name: NVIDIA RTX A6000
    memory: 49140
    compute: "8.6"
    architecture: ampere
    pci_device_id: 0x223010DE
    pci_class: 0x030000
    uuids: ["GPU-8a8b5f30-5b4e-4a34-9d6c-4a1c2f2f6c11"]
    minors: [5]
faults:
  - {call: nvmlDeviceGetMemoryInfo, gpu: 1, error: UNKNOWN}
"""


def test_custom_profile_file(tmp_path: Path) -> None:
    path = tmp_path / "lab.yaml"
    path.write_text(CUSTOM)
    with sim.activate(path, root=tmp_path / "host") as simulation:
        assert simulation.root == tmp_path / "host"
        assert simulation.profile.name == "lab-box"
        pynvml.nvmlInit()
        assert pynvml.nvmlSystemGetDriverVersion() == "535.104.05"
        assert pynvml.nvmlSystemGetCudaDriverVersion() == 12020
        a100, a6000 = (pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(2))
        assert pynvml.nvmlDeviceGetName(a100) == "NVIDIA A100-SXM4-80GB"
        assert pynvml.nvmlDeviceGetMemoryInfo(a100).total == 81920 * MIB
        migs = [pynvml.nvmlDeviceGetMigDeviceHandleByIndex(a100, j) for j in range(3)]
        assert [pynvml.nvmlDeviceGetName(m) for m in migs] == [
            "NVIDIA A100-SXM4-80GB MIG 1c.2g.20gb",
            "NVIDIA A100-SXM4-80GB MIG 1g.10gb+me",
            "NVIDIA A100-SXM4-80GB MIG 4g.40gb",
        ]
        attrs = pynvml.nvmlDeviceGetAttributes(migs[0])
        assert (attrs.gpuInstanceSliceCount, attrs.computeInstanceSliceCount) == (2, 1)
        assert pynvml.nvmlDeviceGetName(a6000) == "NVIDIA RTX A6000"
        assert pynvml.nvmlDeviceGetUUID(a6000) == "GPU-8a8b5f30-5b4e-4a34-9d6c-4a1c2f2f6c11"
        assert pynvml.nvmlDeviceGetMinorNumber(a6000) == 5
        assert pynvml.nvmlDeviceGetCudaComputeCapability(a6000) == (8, 6)
        with pytest.raises(pynvml.NVMLError_NotSupported):
            pynvml.nvmlDeviceGetMigMode(a6000)
        with pytest.raises(pynvml.NVMLError_Unknown):
            pynvml.nvmlDeviceGetMemoryInfo(a6000)
        pynvml.nvmlShutdown()
        host = tmp_path / "host"
        assert (host / "sys/bus/pci/devices/0000:81:00.0/numa_node").read_text() == "1\n"
        assert (host / "sys/class/dmi/id/product_name").read_text() == "Lab Box 9000\n"
        assert simulation.device_nodes["dev/nvidia5"] == (195, 5)
        assert simulation.device_nodes["dev/nvidia-uvm"] == (510, 0)
    assert (tmp_path / "host").is_dir()  # a given root is the caller's to remove


def test_the_documented_example_loads(tmp_path: Path) -> None:
    docs = Path(__file__).parents[2] / "docs" / "profiles.md"
    example = docs.read_text().split("## Format", 1)[1].split("```yaml\n", 1)[1].split("```")[0]
    path = tmp_path / "example.yaml"
    path.write_text(example)
    profile = sim.load_profile(path)
    assert [g.name for g in profile.gpus] == ["NVIDIA A100-SXM4-80GB", "NVIDIA RTX A6000"]
    assert [f.kind for f in profile.faults] == ["xid", "xid", "fall_off_bus", "call", "call"]
    assert profile.faults[-1].hang == float("inf")
    with sim.activate(profile) as simulation:
        assert simulation.device_nodes["dev/nvidia-uvm"] == (510, 0)


def test_activate_takes_a_loaded_profile() -> None:
    profile = sim.load_profile("t4")
    with sim.activate(profile) as simulation:
        assert simulation.profile is profile


def _gb(memory_mib: int, total_mib: int) -> int:
    """The GB of a MIG profile name, with round-half-away-from-zero."""
    frac = math.ceil(memory_mib * MIB / (total_mib * MIB) * 8) / 8
    total_gb = math.ceil(total_mib * MIB / GIB)
    return int(Decimal(frac * total_gb).quantize(Decimal(1), rounding=ROUND_HALF_UP))


@pytest.mark.parametrize(
    "model", [m for m in MODELS.values() if m.mig_capable], ids=lambda m: m.key
)
def test_mig_names_follow_the_gb_formula(model: GpuModel) -> None:
    for gi in model.gi_profiles:
        size = gi.name.split(".")[1].split("+")[0]
        assert size == f"{_gb(gi.memory_mib, model.memory_mib)}gb", gi
        assert gi.name.startswith(f"{gi.slices}g.")


def test_models_without_mig() -> None:
    assert {k for k, m in MODELS.items() if not m.mig_capable} == {"T4", "L40S", "A10"}
