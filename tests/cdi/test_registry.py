"""Which devices the spec directories define, with CDI's precedence (docs/cdi.md#list).

Matrix: the later directory wins; two files of one directory cancel a device (and a
later directory does not bring it back, as in CDI's cache); `.yml`, subdirectories and
broken files are skipped without hiding good files; `nvidia-cdi list` prints the names
sorted on stdout and the errors and count on stderr.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from cdi.encode import to_json, to_yaml
from cdi.registry import load_specs
from cdi.spec import ContainerEdits, Device, DeviceNode, Spec


def spec(*names: str, kind: str = "nvidia.com/gpu", path: str = "/dev/nvidia0") -> Spec:
    edits = ContainerEdits(device_nodes=(DeviceNode(path),))
    return Spec("0.5.0", kind, tuple(Device(n, edits) for n in names))


def write(directory: Path, name: str, content: Spec | str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    if isinstance(content, Spec):
        path.write_bytes(to_json(content) if name.endswith(".json") else to_yaml(content))
    else:
        path.write_text(content)
    return path


def test_later_directory_wins(tmp_path: Path) -> None:
    etc, run = tmp_path / "etc", tmp_path / "run"
    write(etc, "a.yaml", spec("0", "1"))
    overriding = write(run, "b.json", spec("1", path="/dev/nvidia9"))
    registry = load_specs([str(etc), str(run)])
    assert list(registry.devices) == ["nvidia.com/gpu=0", "nvidia.com/gpu=1"]
    assert registry.devices["nvidia.com/gpu=1"].path == str(overriding)
    assert registry.errors == []
    assert registry.defines("nvidia.com/gpu=0") and not registry.defines("nvidia.com/gpu=2")


def test_same_directory_conflict_drops_the_device(tmp_path: Path) -> None:
    run = tmp_path / "run"
    a = write(run, "a.yaml", spec("0", "1"))
    b = write(run, "b.yaml", spec("1"))
    registry = load_specs([str(run)])
    assert list(registry.devices) == ["nvidia.com/gpu=0"]
    assert sorted(str(e) for e in registry.errors) == [
        f'{a}: devices: conflicting device "nvidia.com/gpu=1" (specs {a}, {b})',
        f'{b}: devices: conflicting device "nvidia.com/gpu=1" (specs {a}, {b})',
    ]


def test_conflict_in_lower_directory_stays(tmp_path: Path) -> None:
    """[QUIRK] CDI's cache keeps a same-directory conflict even if a later dir redefines."""
    etc, run = tmp_path / "etc", tmp_path / "run"
    write(etc, "a.yaml", spec("1"))
    write(etc, "b.yaml", spec("1"))
    write(run, "c.yaml", spec("1"))
    assert load_specs([str(etc), str(run)]).devices == {}


def test_skipped_files(tmp_path: Path) -> None:
    run = tmp_path / "run"
    write(run, "good.yaml", spec("0"))
    write(run, "ignored.yml", spec("1"))
    write(run, "notes.txt", "not a spec")
    (run / "sub.yaml").mkdir()
    broken = write(run, "broken.json", "{not json")
    bad_kind = write(run, "kind.yaml", "cdiVersion: 0.3.0\nkind: x/y\ndevices: []\n")
    registry = load_specs([str(run), str(tmp_path / "missing")])
    assert list(registry.devices) == ["nvidia.com/gpu=0"]
    assert [f.path for f in registry.files if f.spec is None] == [str(broken), str(bad_kind)]
    assert all(e.file in (str(broken), str(bad_kind)) for e in registry.errors)


def test_list_command(tmp_path: Path) -> None:
    etc, run = tmp_path / "etc", tmp_path / "run"
    write(etc, "a.yaml", spec("GPU-b", "0"))
    write(run, "b.yaml", spec("all", "1:0", kind="other.com/xy"))
    broken = write(run, "c.yaml", "cdiVersion: 0.3.0\n")
    result = subprocess.run(
        [sys.executable, "-m", "cdi", "list", "--spec-dir", str(etc), "--spec-dir", str(run)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0
    assert result.stdout == (
        "nvidia.com/gpu=0\nnvidia.com/gpu=GPU-b\nother.com/xy=1:0\nother.com/xy=all\n"
    )
    assert "The following registry errors were reported:" in result.stderr
    assert f"{broken}: kind: invalid kind" in result.stderr
    assert "Found 4 CDI devices" in result.stderr


def test_list_spec_dirs_from_environment(tmp_path: Path) -> None:
    write(tmp_path / "a", "a.yaml", spec("0"))
    write(tmp_path / "b", "b.yaml", spec("1"))
    dirs = f"{tmp_path / 'a'},{tmp_path / 'b'}"
    result = subprocess.run(
        [sys.executable, "-m", "cdi", "list"],
        capture_output=True,
        text=True,
        check=False,
        env={
            "NVIDIA_CTK_CDI_SPEC_DIRS": dirs,
            "PYTHONPATH": ":".join(sys.path),
            "PYTHONDONTWRITEBYTECODE": "1",
        },
    )
    assert result.stdout == "nvidia.com/gpu=0\nnvidia.com/gpu=1\n"
