"""`nvidia-cdi transform root` as a command (docs/cdi.md#transform-root).

Matrix: standard input to standard output (only the spec on stdout); file to file (YAML,
`.json` as JSON, another extension gets `.yaml`, mode 0644, the `generate` encoder's
bytes); `--relative-to container`; usage errors (exit 2) and bad input (exit 1, file and
field named, nothing written, an existing output kept); and the round trip an operator
makes: a spec generated over a driver root, moved to `/`, with no host path left under
the root and `validate` accepting it. The rules themselves: test_transform.py.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from cdi_fixtures import run_cdi

from cdi.load import parse_spec, read_spec

HOOK = ["--nvidia-cdi-hook-path", "/usr/bin/nvidia-cdi-hook"]
DRIVER = "/run/nvidia/driver"

SMALL = f"""\
cdiVersion: 0.5.0
kind: nvidia.com/gpu
devices:
  - name: "0"
    containerEdits:
      deviceNodes:
        - path: /dev/nvidia0
          hostPath: {DRIVER}/dev/nvidia0
containerEdits:
  hooks:
    - hookName: createContainer
      path: {DRIVER}/usr/bin/nvidia-cdi-hook
      args: [nvidia-cdi-hook, create-symlinks, --link, "libcuda.so.1::{DRIVER}/lib/libcuda.so"]
  mounts:
    - hostPath: {DRIVER}/lib/libcuda.so.550.54.15
      containerPath: {DRIVER}/lib/libcuda.so.550.54.15
      options: [ro, nosuid, nodev, rbind, rprivate]
"""

# The same spec moved to `/` on the host side, as `generate`'s encoder writes it.
SMALL_ON_HOST = f"""\
---
cdiVersion: 0.5.0
kind: nvidia.com/gpu
devices:
    - name: "0"
      containerEdits:
        deviceNodes:
            - path: /dev/nvidia0
              hostPath: /dev/nvidia0
containerEdits:
    hooks:
        - hookName: createContainer
          path: /usr/bin/nvidia-cdi-hook
          args:
            - nvidia-cdi-hook
            - create-symlinks
            - --link
            - libcuda.so.1::{DRIVER}/lib/libcuda.so
    mounts:
        - hostPath: /lib/libcuda.so.550.54.15
          containerPath: {DRIVER}/lib/libcuda.so.550.54.15
          options:
            - ro
            - nosuid
            - nodev
            - rbind
            - rprivate
"""


def test_stdin_to_stdout() -> None:
    result = run_cdi("transform", "root", "--from", DRIVER, "--to", "/", stdin=SMALL)
    assert result.returncode == 0, result.stderr
    assert result.stdout == SMALL_ON_HOST


def test_empty_to_is_the_root_and_empty_output_is_stdout() -> None:
    """Upstream's defaults: `--to ""`, `--output ""` (standard output)."""
    result = run_cdi("transform", "root", "--from", DRIVER, "--output", "", stdin=SMALL)
    assert result.returncode == 0, result.stderr
    assert result.stdout == SMALL_ON_HOST


def test_relative_to_container() -> None:
    result = run_cdi(
        "transform", "root", "--from", DRIVER, "--to", "/", "--relative-to", "container",
        stdin=SMALL,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    spec, problems = parse_spec(result.stdout)
    assert problems == [] and spec is not None
    common = spec.container_edits
    assert (common.mounts[0].host_path, common.mounts[0].container_path) == (
        f"{DRIVER}/lib/libcuda.so.550.54.15",
        "/lib/libcuda.so.550.54.15",
    )
    assert common.hooks[0].path == f"{DRIVER}/usr/bin/nvidia-cdi-hook"
    assert common.hooks[0].args[-1] == "libcuda.so.1::/lib/libcuda.so"
    assert spec.devices[0].container_edits.device_nodes[0].path == "/dev/nvidia0"


@pytest.mark.parametrize(
    ("name", "written", "starts"),
    [
        pytest.param("out.yaml", "out.yaml", "---\ncdiVersion: 0.5.0\n", id="yaml"),
        pytest.param("out.json", "out.json", '{"cdiVersion":"0.5.0",', id="json"),
        pytest.param("out.yml", "out.yml.yaml", "---\n", id="other-extension-gets-yaml"),
        pytest.param("sub/dir/out", "sub/dir/out.yaml", "---\n", id="new-directory"),
    ],
)
def test_file_to_file(tmp_path: Path, name: str, written: str, starts: str) -> None:
    source = tmp_path / "in.yaml"
    source.write_text(SMALL)
    result = run_cdi(
        "transform", "root", "--from", DRIVER, "--input", str(source),
        "--output", str(tmp_path / name),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    out = tmp_path / written
    assert out.read_text().startswith(starts)
    assert oct(out.stat().st_mode & 0o777) == "0o644"
    spec, problems = read_spec(str(out))
    assert problems == [] and spec is not None
    assert spec.container_edits.mounts[0].host_path == "/lib/libcuda.so.550.54.15"
    if written.endswith(".json"):
        assert json.loads(out.read_text())["devices"][0]["name"] == "0"
    assert source.read_text() == SMALL


def test_in_place(tmp_path: Path) -> None:
    """Input and output the same file: read whole first, then replaced atomically."""
    spec = tmp_path / "nvidia.yaml"
    spec.write_text(SMALL)
    args = ("transform", "root", "--from", DRIVER, "--input", str(spec), "--output", str(spec))
    assert run_cdi(*args).returncode == 0
    assert spec.read_text() == SMALL_ON_HOST


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["--relative-to", "pod"], "invalid --relative-to value: pod", id="side"),
        pytest.param(["--from", "driver"], "--from driver: want an absolute path", id="from"),
        pytest.param(["--to", "host"], "--to host: want an absolute path", id="to"),
        pytest.param(["--bad-flag"], "unrecognized arguments: --bad-flag", id="unknown-flag"),
    ],
)  # fmt: skip
def test_usage_errors(tmp_path: Path, args: list[str], message: str) -> None:
    out = tmp_path / "out.yaml"
    result = run_cdi("transform", "root", "--output", str(out), *args, stdin=SMALL)
    assert result.returncode == 2
    assert message in result.stderr
    assert result.stdout == "" and not out.exists()


def test_transform_needs_a_kind() -> None:
    result = run_cdi("transform")
    assert result.returncode == 2
    assert "required: {root}" in result.stderr


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(SMALL.replace("hostPath: /run", "hostpath: /run"),
                     'devices[0].containerEdits.deviceNodes[0].hostpath: unknown field "hostpath"',
                     id="unknown-field"),
        pytest.param(SMALL.replace("0.5.0", "0.4.0"),
                     "devices[0].name: the spec version must be at least v0.5.0",
                     id="version-too-low"),
        pytest.param(SMALL.replace('"0"', '"-x"'), "devices[0].name:", id="bad-device-name"),
        pytest.param("cdiVersion: [", "failed to unmarshal CDI Spec", id="not-yaml"),
        pytest.param("", "no Spec data", id="empty"),
    ],
)  # fmt: skip
def test_bad_input_writes_nothing(tmp_path: Path, text: str, message: str) -> None:
    source = tmp_path / "in.yaml"
    source.write_text(text)
    out = tmp_path / "out.yaml"
    out.write_text("good spec\n")
    result = run_cdi(
        "transform", "root", "--from", DRIVER, "--input", str(source), "--output", str(out)
    )
    assert result.returncode == 1
    assert f"failed to load CDI specification: {source}: {message}" in result.stderr
    assert result.stdout == ""
    assert out.read_text() == "good spec\n"


def test_bad_stdin_is_named() -> None:
    result = run_cdi("transform", "root", stdin="cdiVersion: 0.5.0\nkind: nvidia.com/gpu\n")
    assert result.returncode == 1
    assert "failed to load CDI specification: <stdin>: devices: invalid spec, no devices" in (
        result.stderr
    )
    assert result.stdout == ""


def test_missing_input(tmp_path: Path) -> None:
    result = run_cdi("transform", "root", "--input", str(tmp_path / "nope.yaml"))
    assert result.returncode == 1
    assert f"{tmp_path / 'nope.yaml'}: No such file or directory" in result.stderr


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(driver root, spec) from `generate --nvml-mock dgx-a100 --driver-root ROOT`."""
    from nvlib import sim

    tmp = tmp_path_factory.mktemp("round-trip")
    root = tmp / "driver"
    with sim.activate("dgx-a100") as simulation:
        shutil.copytree(simulation.driver_root, root, symlinks=True)
    spec = tmp / "generated.yaml"
    result = run_cdi(
        "generate", "--nvml-mock", "dgx-a100", "--driver-root", str(root),
        "--output", str(spec), *HOOK,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"hostPath: {root}/dev/nvidia0" in spec.read_text()
    return root, spec


def test_round_trip_to_the_host(generated: tuple[Path, Path], tmp_path: Path) -> None:
    """The operator's case: a spec made over a driver root, moved to `/` for the host."""
    root, source = generated
    out = tmp_path / "host.yaml"
    result = run_cdi(
        "transform", "root", "--from", str(root), "--to", "/",
        "--input", str(source), "--output", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    before, problems = read_spec(str(source))
    after, problems = read_spec(str(out))
    assert problems == [] and before is not None and after is not None
    assert after.version == before.version == "0.5.0"
    host_paths = [
        path
        for edits in after.all_edits()
        for path in (
            *(n.host_path or n.path for n in edits.device_nodes),
            *(m.host_path for m in edits.mounts),
            *(h.path for h in edits.hooks if h.hook_name != "startContainer"),
        )
    ]
    assert len(host_paths) > 50
    assert not [p for p in host_paths if p.startswith(str(root))]
    assert str(root) not in out.read_text()  # container paths never held it either
    # Only host paths moved: names, container paths, hooks' args and env are as generated.
    assert [d.name for d in after.devices] == [d.name for d in before.devices]
    assert [m.container_path for m in after.container_edits.mounts] == [
        m.container_path for m in before.container_edits.mounts
    ]
    assert after.container_edits.hooks == before.container_edits.hooks
    assert after.container_edits.env == before.container_edits.env
    check = run_cdi("validate", str(out))
    assert check.returncode == 0, check.stdout + check.stderr


def test_no_op_keeps_generate_bytes(generated: tuple[Path, Path]) -> None:
    """`--from` equal to `--to`: the spec back unchanged, in the encoder `generate` uses."""
    root, source = generated
    result = run_cdi(
        "transform", "root", "--from", str(root), "--to", f"{root}/", "--input", str(source)
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == source.read_text()
