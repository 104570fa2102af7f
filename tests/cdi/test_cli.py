"""`nvidia-cdi generate` as a command on simulated machines (`--nvml-mock`).

Matrix: the built-in machines dgx-a100, dgx-a100-mig, t4 and no-gpu (device names,
version, a spec `validate` accepts); `--output -` (stdout carries only the spec);
flags beating environment variables beating defaults; JSON; usage errors (exit 2);
failures writing nothing (exit 1) and leaving a good spec in place; same machine, same
bytes with an explicit driver root.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from cdi_fixtures import run_cdi

from cdi.load import parse_spec, read_spec
from cdi.validate import validate

HOOK = ["--nvidia-cdi-hook-path", "/usr/bin/nvidia-cdi-hook"]


def names(text: str) -> list[str]:
    return [d["name"] for d in yaml.safe_load(text)["devices"]]


@pytest.mark.parametrize(
    ("profile", "count", "first", "last"),
    [
        pytest.param("dgx-a100", 8 * 2 + 1, "0", "all", id="dgx-a100"),
        pytest.param("dgx-a100-mig", 8 * 4 * 2 + 1, "0:0", "all", id="dgx-a100-mig"),
        pytest.param("t4", 3, "0", "all", id="t4"),
    ],
)
def test_simulated_machines(
    tmp_path: Path, profile: str, count: int, first: str, last: str
) -> None:
    out = tmp_path / "cdi" / "nvidia.yaml"
    result = run_cdi("generate", "--nvml-mock", profile, "--output", str(out), *HOOK)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert "Generated CDI spec with version 0.5.0" in result.stderr
    text = out.read_text()
    assert text.startswith("---\ncdiVersion: 0.5.0\nkind: nvidia.com/gpu\n")
    device_names = names(text)
    assert (len(device_names), device_names[0], device_names[-1]) == (count, first, last)
    spec, problems = read_spec(str(out))
    assert problems == [] and spec is not None
    assert oct(out.stat().st_mode & 0o777) == "0o644"


def test_mig_spec_content(tmp_path: Path) -> None:
    result = run_cdi("generate", "--nvml-mock", "dgx-a100-mig", "--output", "-", *HOOK)
    spec, problems = parse_spec(result.stdout)
    assert problems == [] and spec is not None
    by_name = {d.name: d.container_edits for d in spec.devices}
    assert "0" not in by_name  # MIG-enabled GPUs have no full-GPU entry, as the toolkit's
    nodes = [n.path for n in by_name["3:1"].device_nodes]
    assert nodes[0] == "/dev/nvidia3"
    assert len(nodes) == 3 and all(n.startswith("/dev/nvidia-caps/nvidia-cap") for n in nodes[1:])
    uuid = next(d.name for d in spec.devices if d.name.startswith("MIG-"))
    assert by_name[uuid].device_nodes[0].path.startswith("/dev/nvidia")
    common = spec.container_edits
    assert common.env[-1] == "NVIDIA_VISIBLE_DEVICES=void"
    assert {n.path for n in common.device_nodes} >= {"/dev/nvidiactl", "/dev/nvidia-uvm"}
    assert any(m.container_path.endswith("libcuda.so.550.54.15") for m in common.mounts)
    assert [h.args[1] for h in common.hooks] == [
        "create-symlinks",
        "create-symlinks",
        "enable-cuda-compat",
        "update-ldcache",
        "disable-device-node-modification",
        "update-application-profile",
    ]


def test_stdout_only_the_spec(tmp_path: Path) -> None:
    result = run_cdi("generate", "--nvml-mock", "t4", "--output", "-", *HOOK)
    assert result.returncode == 0
    assert result.stdout.startswith("---\ncdiVersion: 0.5.0\n")
    assert "INFO" in result.stderr and "INFO" not in result.stdout
    assert list(tmp_path.iterdir()) == []


def test_no_gpu_fails_and_keeps_the_spec(tmp_path: Path) -> None:
    out = tmp_path / "nvidia.yaml"
    out.write_text("good spec\n")
    result = run_cdi("generate", "--nvml-mock", "no-gpu", "--output", str(out), *HOOK)
    assert result.returncode == 1
    assert "failed to generate CDI spec: invalid spec, no devices" in result.stderr
    assert out.read_text() == "good spec\n"


def test_failed_discovery_writes_nothing(tmp_path: Path) -> None:
    profile = tmp_path / "broken.yaml"
    profile.write_text(
        "gpus:\n  - model: T4\nfaults:\n  - call: nvmlSystemGetDriverVersion\n    error: UNKNOWN\n"
    )
    out = tmp_path / "nvidia.yaml"
    result = run_cdi("generate", "--nvml-mock", str(profile), "--output", str(out), *HOOK)
    assert result.returncode == 1
    assert "failed to generate CDI spec" in result.stderr
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "env", "first_names"),
    [
        pytest.param([], {}, ["0", "GPU-"], id="default-index-and-uuid"),
        pytest.param(
            [], {"NVIDIA_CTK_CDI_GENERATE_DEVICE_NAME_STRATEGIES": "type-index"}, ["gpu0"],
            id="environment",
        ),
        pytest.param(
            ["--device-name-strategy", "uuid"],
            {"NVIDIA_CTK_CDI_GENERATE_DEVICE_NAME_STRATEGIES": "type-index"}, ["GPU-"],
            id="flag-beats-environment",
        ),
        pytest.param(
            ["--device-name-strategy", "index,type-index"], {}, ["0", "gpu0"], id="comma-list"
        ),
    ],
)  # fmt: skip
def test_precedence(args: list[str], env: dict[str, str], first_names: list[str]) -> None:
    result = run_cdi("generate", "--nvml-mock", "t4", "--output", "-", *HOOK, *args, env=env)
    assert result.returncode == 0, result.stderr
    got = [n for n in names(result.stdout) if n != "all"]
    assert len(got) == len(first_names)
    assert all(n.startswith(prefix) for n, prefix in zip(got, first_names, strict=True))


def test_json_vendor_class_and_disabled_hooks(tmp_path: Path) -> None:
    out = tmp_path / "example"
    result = run_cdi(
        "generate", "--nvml-mock", "t4", "--output", str(out), "--format", "json",
        "--vendor", "example.com", "--class", "gpu.t4", "--disable-hook", "all",
        "--no-all-device", "--device-name-strategy", "type-index", *HOOK,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    text = (tmp_path / "example.json").read_text()
    assert text.startswith('{"cdiVersion":"0.6.0","kind":"example.com/gpu.t4","devices":[')
    spec, problems = parse_spec(text)
    assert problems == [] and spec is not None and validate(spec) == []
    assert [d.name for d in spec.devices] == ["gpu0"]
    assert spec.container_edits.hooks == ()


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        pytest.param(["--device-name-strategy", "x"], 2, "invalid device name strategy", id="name"),
        pytest.param(["--format", "toml"], 2, "--format toml: want yaml or json", id="format"),
        pytest.param(["--mode", "csv"], 2, "--mode csv: not supported here", id="mode-csv"),
        pytest.param(["--mode", "x"], 2, "invalid discovery mode: x", id="mode-unknown"),
        pytest.param(["--feature-flag", "x"], 2, "unknown feature flag: x", id="feature-flag"),
        pytest.param(["--disable-hook", "nope"], 2, "unknown hook 'nope'", id="hook-name"),
        pytest.param(["--interval", "5"], 2, 'time: missing unit in duration "5"', id="interval"),
        pytest.param(["--bad-flag"], 2, "unrecognized arguments: --bad-flag", id="unknown-flag"),
        pytest.param(["--heartbeat-file", "/run/hb"], 2, "--heartbeat-file /run/hb: only with"
                     " --watch", id="heartbeat-without-watch"),
        pytest.param(["--class", "g"], 1, 'class "g" has 1 character', id="one-char-class"),
        pytest.param(["--driver-root-ctr-path", "driver-root"], 2,
                     "--driver-root-ctr-path driver-root: must be an absolute path", id="ctr-path"),
    ],
)  # fmt: skip
def test_usage_errors(args: list[str], status: int, message: str) -> None:
    result = run_cdi("generate", "--nvml-mock", "t4", "--output", "-", *HOOK, *args)
    assert result.returncode == status
    assert message in result.stderr
    assert result.stdout == ""


def test_same_machine_same_bytes(tmp_path: Path) -> None:
    """An explicit driver root (the simulator's own is a new temp dir each run)."""
    from nvlib import sim

    with sim.activate("dgx-a100-mig") as simulation:
        root = tmp_path / "driver"
        shutil.copytree(simulation.driver_root, root, symlinks=True)
    outputs = []
    for i in range(2):
        out = tmp_path / f"spec{i}.yaml"
        result = run_cdi(
            "generate", "--nvml-mock", "dgx-a100-mig", "--driver-root", str(root),
            "--output", str(out), *HOOK,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]
    assert f"hostPath: {root}/dev/nvidia0".encode() in outputs[0]


# --- a generator in a pod: the driver mounted at --driver-root-ctr-path ---


@pytest.mark.parametrize(
    ("host_root", "args", "env"),
    [
        pytest.param("/", ["--driver-root-ctr-path", "{mount}"], {}, id="host-driver"),
        pytest.param(
            "/run/nvidia/driver",
            ["--driver-root", "/run/nvidia/driver", "--driver-root-ctr-path", "{mount}"],
            {},
            id="driver-container",
        ),
        pytest.param(
            "/run/nvidia/driver",
            ["--driver-root", "/run/nvidia/driver"],
            {"DRIVER_ROOT_CTR_PATH": "{mount}"},
            id="env",
        ),
    ],
)
def test_mounted_driver_root_names_host_paths(
    tmp_path: Path, host_root: str, args: list[str], env: dict[str, str]
) -> None:
    """Files are read under the mount; the spec names them where the host has them, as
    a spec generated on the host would: device nodes without a hostPath when it equals
    the path, every library's host path under the host's driver root."""
    from nvlib import sim

    with sim.activate("dgx-a100") as simulation:
        mount = tmp_path / "driver-root"
        shutil.copytree(simulation.driver_root, mount, symlinks=True)
    args = [a.replace("{mount}", str(mount)) for a in args]
    env = {k: v.replace("{mount}", str(mount)) for k, v in env.items()}
    result = run_cdi("generate", "--nvml-mock", "dgx-a100", "--output", "-", *HOOK, *args, env=env)
    assert result.returncode == 0, result.stderr
    assert str(tmp_path) not in result.stdout
    spec = yaml.safe_load(result.stdout)
    nodes = [n for d in spec["devices"] for n in d["containerEdits"]["deviceNodes"]]
    nodes += spec["containerEdits"]["deviceNodes"]
    prefix = "" if host_root == "/" else host_root
    for node in nodes:
        assert node.get("hostPath", node["path"]) == prefix + node["path"]
    mounts = spec["containerEdits"]["mounts"]
    libcuda = [m for m in mounts if m["containerPath"].endswith("/libcuda.so.550.54.15")]
    assert len(libcuda) == 1
    for m in mounts:
        if "nvidia-persistenced/socket" not in m["hostPath"]:  # sockets live under /run
            assert m["hostPath"] == prefix + m["containerPath"]
    parsed, problems = parse_spec(result.stdout)
    assert problems == [] and parsed is not None and validate(parsed) == []
    if host_root == "/":
        assert all("hostPath" not in node for node in nodes)  # left out, as on the host


def test_version_flag() -> None:
    result = run_cdi("--version")
    assert result.returncode == 0 and result.stdout.startswith("nvidia-cdi ")


# --- --mode imex / management (docs/cdi.md#modes) ---


def test_imex_on_a_simulated_gb200() -> None:
    """The simulator writes channel0 for a profile with a fabric; stdout is the spec."""
    result = run_cdi("generate", "--nvml-mock", "gb200", "--mode", "imex", "--output", "-")
    assert result.returncode == 0, result.stderr
    spec, problems = parse_spec(result.stdout)
    assert problems == [] and spec is not None and validate(spec) == []
    assert spec.version == "0.5.0" and spec.kind == "nvidia.com/imex-channel"
    assert [d.name for d in spec.devices] == ["0", "all"]
    (node,) = spec.devices[0].container_edits.device_nodes
    assert node.path == "/dev/nvidia-caps-imex-channels/channel0"
    assert node.host_path.endswith("/driver/dev/nvidia-caps-imex-channels/channel0")
    assert (node.minor, node.file_mode, node.permissions) == (0, 0o666, "rwm")
    assert spec.container_edits.to_dict() == {"env": ["NVIDIA_VISIBLE_DEVICES=void"]}


def test_management_on_a_simulated_gb200() -> None:
    result = run_cdi("generate", "--nvml-mock", "gb200", "--mode", "management", "--output", "-")
    assert result.returncode == 0, result.stderr
    spec, _ = parse_spec(result.stdout)
    assert spec is not None and validate(spec) == []
    assert spec.kind == "management.nvidia.com/gpu" and [d.name for d in spec.devices] == ["all"]
    paths = [n.path for n in spec.devices[0].container_edits.device_nodes]
    assert "/dev/nvidia3" in paths and "/dev/nvidia-caps-imex-channels/channel0" in paths
    assert "Using driver version 570.124.06" in result.stderr


@pytest.mark.parametrize(
    ("args", "env", "kind"),
    [
        pytest.param([], {}, "nvidia.com/gpu", id="default-nvml"),
        pytest.param([], {"NVIDIA_CTK_CDI_GENERATE_MODE": "imex"}, "nvidia.com/imex-channel",
                     id="environment"),
        pytest.param(["--mode", "management"], {"NVIDIA_CTK_CDI_GENERATE_MODE": "imex"},
                     "management.nvidia.com/gpu", id="flag-beats-environment"),
        pytest.param(["--discovery-mode", "IMEX"], {}, "nvidia.com/imex-channel",
                     id="alias-any-case"),
        pytest.param(["--mode", "auto"], {"NVIDIA_CTK_CDI_GENERATE_MODE": "imex"},
                     "nvidia.com/gpu", id="auto-flag-beats-environment"),
        pytest.param(["--mode", "imex", "--class", "channel"], {}, "nvidia.com/channel",
                     id="class-flag-beats-mode-default"),
        pytest.param(["--mode", "imex"], {"NVIDIA_CTK_CDI_GENERATE_VENDOR": "example.com"},
                     "example.com/imex-channel", id="vendor-env-beats-mode-default"),
    ],
)  # fmt: skip
def test_mode_precedence(args: list[str], env: dict[str, str], kind: str) -> None:
    result = run_cdi("generate", "--nvml-mock", "gb200", "--output", "-", *HOOK, *args, env=env)
    assert result.returncode == 0, result.stderr
    assert yaml.safe_load(result.stdout)["kind"] == kind


def test_imex_without_channels_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "nvidia-imex.yaml"
    out.write_text("good\n")
    result = run_cdi("generate", "--nvml-mock", "t4", "--mode", "imex", "--output", str(out))
    assert result.returncode == 1
    assert "invalid spec, no devices: no IMEX channel" in result.stderr
    assert out.read_text() == "good\n"
