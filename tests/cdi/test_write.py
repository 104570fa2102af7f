"""Writing specs: the output target, validation first, atomic replacement, mode 0644.

Matrix: `--output` / `--format` resolution (docs/cdi.md#generate), an invalid spec writing
nothing, an unchanged spec not rewritten (same inode, same mtime), standard output, a
missing directory created, a symlink refused; and a writer killed with SIGKILL over and
over while readers watch: every read is a whole old or new spec, never a torn one.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cdi.encode import to_json, to_yaml
from cdi.errors import SpecErrors
from cdi.spec import ContainerEdits, Device, DeviceNode, Spec
from cdi.write import output_target, spec_bytes, write_spec
from nvlib.fsutil import UnsafeTargetError


def spec(devices: int = 1, version: str = "0.3.0") -> Spec:
    return Spec(
        version,
        "nvidia.com/gpu",
        tuple(
            Device(f"gpu{i}", ContainerEdits(device_nodes=(DeviceNode(f"/dev/nvidia{i}"),)))
            for i in range(devices)
        ),
    )


@pytest.mark.parametrize(
    ("output", "fmt", "target"),
    [
        pytest.param("/run/cdi/nvidia.yaml", None, ("/run/cdi/nvidia.yaml", "yaml"), id="yaml"),
        pytest.param(
            "/etc/cdi/nv.json", None, ("/etc/cdi/nv.json", "json"), id="json-by-extension"
        ),
        pytest.param("/etc/cdi/nv.yml", None, ("/etc/cdi/nv.yml.yaml", "yaml"), id="yml-gets-yaml"),
        pytest.param("/etc/cdi/nv", "json", ("/etc/cdi/nv.json", "json"), id="no-extension"),
        pytest.param("/etc/cdi/nv.spec", None, ("/etc/cdi/nv.spec.yaml", "yaml"), id="other-ext"),
        pytest.param("/etc/cdi/nv.yaml", "JSON", ("/etc/cdi/nv.yaml", "json"), id="mismatch-warns"),
        pytest.param("-", None, ("-", "yaml"), id="stdout"),
        pytest.param("-", "json", ("-", "json"), id="stdout-json"),
    ],
)
def test_output_target(output: str, fmt: str | None, target: tuple[str, str]) -> None:
    assert output_target(output, fmt) == target


def test_output_target_rejects_format() -> None:
    with pytest.raises(ValueError, match="invalid format 'toml'"):
        output_target("x.yaml", "toml")


def test_invalid_spec_writes_nothing(tmp_path: Path) -> None:
    target = tmp_path / "nvidia.yaml"
    bad = Spec("0.3.0", "nvidia.com/gpu", (Device("0", ContainerEdits()),))
    with pytest.raises(SpecErrors) as err:
        write_spec(bad, str(target))
    assert [str(e) for e in err.value.errors] == [
        "devices[0].name: the spec version must be at least v0.5.0 (a device node hostPath "
        "or a device name not starting with a letter; cdiVersion is 0.3.0)",
        "devices[0].containerEdits: invalid device, empty device edits",
    ]
    assert not target.exists()


def test_equal_bad_edits_reported_for_each_device() -> None:
    """Equal edits are checked once when valid, but a problem is named in every device."""
    edits = ContainerEdits(env=("NOEQUALS",), device_nodes=(DeviceNode("/dev/nvidia0"),))
    bad = Spec("0.3.0", "nvidia.com/gpu", (Device("a0", edits), Device("b0", edits)))
    with pytest.raises(SpecErrors) as err:
        spec_bytes(bad)
    assert [str(e) for e in err.value.errors] == [
        f'devices[{i}].containerEdits.env[0]: invalid environment variable "NOEQUALS"'
        for i in (0, 1)
    ]


def test_write_mode_and_unchanged_not_rewritten(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "dir" / "nvidia.yaml"  # missing directories are created
    os.umask(0o077)  # the file mode must not depend on the umask
    try:
        assert write_spec(spec(), str(target)) is True
    finally:
        os.umask(0o022)
    assert target.read_bytes() == to_yaml(spec())
    assert oct(target.stat().st_mode & 0o777) == "0o644"
    before = target.stat()
    time.sleep(0.01)
    assert write_spec(spec(), str(target)) is False
    after = target.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert write_spec(spec(2), str(target)) is True
    assert target.stat().st_ino != before.st_ino  # replaced by rename, not rewritten in place


def test_json_by_extension(tmp_path: Path) -> None:
    target = tmp_path / "nvidia.json"
    write_spec(spec(), str(target))
    assert target.read_bytes() == to_json(spec())


def test_symlink_target_refused(tmp_path: Path) -> None:
    real = tmp_path / "real.yaml"
    real.write_text("keep")
    link = tmp_path / "nvidia.yaml"
    link.symlink_to(real)
    with pytest.raises(UnsafeTargetError, match="symbolic link"):
        write_spec(spec(), str(link))
    assert real.read_text() == "keep"


def test_stdout(capfdbinary: pytest.CaptureFixture[bytes]) -> None:
    assert write_spec(spec(), "-") is True
    assert capfdbinary.readouterr().out == to_yaml(spec())


# --- kill during write ---

WRITER = """
import sys
from cdi.spec import ContainerEdits, Device, DeviceNode, Spec
from cdi.write import write_spec

def spec(n):
    return Spec("0.3.0", "nvidia.com/gpu", tuple(
        Device(f"gpu{i}", ContainerEdits(device_nodes=(DeviceNode(f"/dev/nvidia{i}"),),
               env=tuple(f"VAR{j}=" + "x" * 200 for j in range(20))))
        for i in range(n)))

a, b = spec(300), spec(301)
print("ready", flush=True)
while True:
    write_spec(a, sys.argv[1])
    write_spec(b, sys.argv[1])
"""


def test_kill_during_write_never_leaves_a_torn_spec(tmp_path: Path) -> None:
    """SIGKILL the writer at arbitrary moments: readers see spec A or spec B, whole."""
    target = tmp_path / "nvidia.yaml"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    a = spec_bytes_of(300)
    b = spec_bytes_of(301)
    assert len(a) > 1_000_000  # big enough that a write takes many syscalls
    reads = kills = 0
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline:
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(target)], stdout=subprocess.PIPE, env=env
        )
        assert writer.stdout is not None and writer.stdout.readline() == b"ready\n"
        until = time.monotonic() + 0.05 + (kills % 7) * 0.013  # vary the kill moment
        while time.monotonic() < until:
            if target.exists():
                assert target.read_bytes() in (a, b)
                reads += 1
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        writer.stdout.close()
        kills += 1
        if target.exists():  # killed before its first rename: still no file, also fine
            assert target.read_bytes() in (a, b)
            assert oct(target.stat().st_mode & 0o777) == "0o644"
    assert kills >= 5 and reads > 0
    # A leftover temp file is a dot-file without a spec extension: CDI never reads it.
    for leftover in tmp_path.iterdir():
        assert leftover == target or (
            leftover.name.startswith(".") and not leftover.name.endswith((".yaml", ".json"))
        )


def spec_bytes_of(devices: int) -> bytes:
    s = Spec(
        "0.3.0",
        "nvidia.com/gpu",
        tuple(
            Device(
                f"gpu{i}",
                ContainerEdits(
                    device_nodes=(DeviceNode(f"/dev/nvidia{i}"),),
                    env=tuple(f"VAR{j}=" + "x" * 200 for j in range(20)),
                ),
            )
            for i in range(devices)
        ),
    )
    return spec_bytes(s)
