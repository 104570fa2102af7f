"""The nvidia-device-plugin command line (docs/deviceplugin.md#flags, docs/config.md).

Matrix: for every option with a config-file key, the ladder default < file < each
environment variable in order < command line, and for the others default < env <
command line; aliases; string-list and int-list flags (split, trimmed, CLI replaces
env); the after-merge rules (dev root from driver root, MPS failRequestsGreaterThanOne);
help, version, stray arguments; and that the logged config drops `flags.gfd`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from deviceplugin.cli import PluginSettings, parse, usage
from nvlib.config import ConfigError, Duration


@dataclass(frozen=True)
class Option:
    get: Callable[[PluginSettings], object]
    default: object
    file: str | None  # YAML setting it, or None when no file key exists
    file_value: object
    envs: tuple[tuple[str, str, object], ...]  # (variable, text, value), first wins
    cli: tuple[str, ...]
    cli_value: object


def flag(name: str) -> Callable[[PluginSettings], object]:
    def get(s: PluginSettings) -> object:
        owner: object = s.config
        for part in name.split("."):
            owner = getattr(owner, part)
        return owner

    return get


OPTIONS = {
    "mig-strategy": Option(
        flag("flags.mig_strategy"), "none", "flags: {migStrategy: single}", "single",
        (("MIG_STRATEGY", "mixed", "mixed"),), ("--mig-strategy", "none"), "none",
    ),
    "fail-on-init-error": Option(
        flag("flags.fail_on_init_error"), True, "flags: {failOnInitError: false}", False,
        (("FAIL_ON_INIT_ERROR", "T", True),), ("--fail-on-init-error=false",), False,
    ),
    "driver-root": Option(
        flag("flags.nvidia_driver_root"), "/", "flags: {nvidiaDriverRoot: /file}", "/file",
        (("NVIDIA_DRIVER_ROOT", "/env", "/env"),), ("--nvidia-driver-root", "/cli"), "/cli",
    ),
    "dev-root": Option(
        flag("flags.nvidia_dev_root"), "/", "flags: {nvidiaDevRoot: /file}", "/file",
        (("NVIDIA_DEV_ROOT", "/env", "/env"),), ("--dev-root=/cli",), "/cli",
    ),
    "pass-device-specs": Option(
        flag("flags.plugin.pass_device_specs"), False,
        "flags: {plugin: {passDeviceSpecs: true}}", True,
        (("PASS_DEVICE_SPECS", "false", False),), ("--pass-device-specs",), True,
    ),
    "device-list-strategy": Option(
        flag("flags.plugin.device_list_strategy"), ["envvar"],
        "flags: {plugin: {deviceListStrategy: volume-mounts}}", ["volume-mounts"],
        (("DEVICE_LIST_STRATEGY", "cdi-cri, envvar", ["cdi-cri", "envvar"]),),
        ("--device-list-strategy", "cdi-annotations", "--device-list-strategy=cdi-cri"),
        ["cdi-annotations", "cdi-cri"],
    ),
    "device-id-strategy": Option(
        flag("flags.plugin.device_id_strategy"), "uuid",
        "flags: {plugin: {deviceIDStrategy: index}}", "index",
        (("DEVICE_ID_STRATEGY", "uuid", "uuid"),), ("--device-id-strategy", "index"), "index",
    ),
    "gdrcopy-enabled": Option(
        flag("flags.gdrcopy_enabled"), False, "flags: {gdrcopyEnabled: true}", True,
        (("GDRCOPY_ENABLED", "0", False),), ("--gdrcopy-enabled",), True,
    ),
    "cdi-annotation-prefix": Option(
        flag("flags.plugin.cdi_annotation_prefix"), "cdi.k8s.io/",
        "flags: {plugin: {cdiAnnotationPrefix: file.cdi.k8s.io/}}", "file.cdi.k8s.io/",
        (("CDI_ANNOTATION_PREFIX", "env.cdi.k8s.io/", "env.cdi.k8s.io/"),),
        ("--cdi-annotation-prefix", "nvidia.cdi.k8s.io/"), "nvidia.cdi.k8s.io/",
    ),
    "nvidia-cdi-hook-path": Option(
        flag("flags.plugin.nvidia_ctk_path"), "/usr/bin/nvidia-ctk",
        "flags: {plugin: {nvidiaCTKPath: /file/hook}}", "/file/hook",
        (("NVIDIA_CDI_HOOK_PATH", "/env1", "/env1"), ("NVIDIA_CTK_PATH", "/env2", "/env2")),
        ("--nvidia-ctk-path", "/cli"), "/cli",
    ),
    "driver-root-ctr-path": Option(
        flag("flags.plugin.container_driver_root"), "/driver-root",
        "flags: {plugin: {containerDriverRoot: /file}}", "/file",
        (("DRIVER_ROOT_CTR_PATH", "/env1", "/env1"), ("CONTAINER_DRIVER_ROOT", "/env2", "/env2")),
        ("--container-driver-root", "/cli"), "/cli",
    ),
    "mps-root": Option(
        flag("flags.mps_root"), None, "flags: {mpsRoot: /file}", "/file",
        (("MPS_ROOT", "/env", "/env"),), ("--mps-root", "/cli"), "/cli",
    ),
    "shared-devices-allocation-policy": Option(
        flag("flags.plugin.shared_devices_allocation_policy"), "distributed",
        "flags: {plugin: {sharedDevicesAllocationPolicy: packed}}", "packed",
        (("SHARED_DEVICES_ALLOCATION_POLICY", "distributed", "distributed"),),
        ("--shared-devices-allocation-policy=packed",), "packed",
    ),
    "device-discovery-strategy": Option(
        flag("flags.device_discovery_strategy"), "auto",
        "flags: {deviceDiscoveryStrategy: nvml}", "nvml",
        (("DEVICE_DISCOVERY_STRATEGY", "auto", "auto"),),
        ("--device-discovery-strategy", "nvml"), "nvml",
    ),
    "imex-channel-ids": Option(
        flag("imex.channel_ids"), [], "imex: {channelIDs: [0]}", [0],
        (("IMEX_CHANNEL_IDS", "1, 2", [1, 2]),), ("--imex-channel-ids", "0"), [0],
    ),
    "imex-required": Option(
        flag("imex.required"), False, "imex: {required: true}", True,
        (("IMEX_REQUIRED", "false", False),), ("--imex-required",), True,
    ),
    "kubelet-socket": Option(
        lambda s: s.kubelet_socket, "/var/lib/kubelet/device-plugins/kubelet.sock", None, None,
        (("KUBELET_SOCKET", "/env/k.sock", "/env/k.sock"),), ("--kubelet-socket", ""), "",
    ),
    "cdi-spec-dir": Option(
        lambda s: s.cdi_spec_dir, "/var/run/cdi", None, None,
        (("CDI_SPEC_DIR", "/env/cdi", "/env/cdi"),), ("--cdi-spec-dir=/cli/cdi",), "/cli/cdi",
    ),
    "cdi-feature-flags": Option(
        lambda s: s.cdi_feature_flags, [], None, None,
        (("CDI_FEATURE_FLAGS", "a,b", ["a", "b"]),), ("--cdi-feature-flags", "c"), ["c"],
    ),
    "health-recovery-period": Option(
        lambda s: s.health_recovery_period, Duration(None), None, None,
        (("DP_HEALTH_RECOVERY_PERIOD", "5m", Duration(300_000_000_000)),),
        ("--health-recovery-period", "30s"), Duration(30_000_000_000),
    ),
    "heartbeat-file": Option(
        lambda s: s.heartbeat_file, "", None, None,
        (("DP_HEARTBEAT_FILE", "/env/hb", "/env/hb"),), ("--heartbeat-file=/cli/hb",), "/cli/hb",
    ),
    "metrics-address": Option(
        lambda s: s.metrics_address, "", None, None,
        (("DP_METRICS_ADDRESS", ":9410", ":9410"),), ("--metrics-address=[::1]:9500",),
        "[::1]:9500",
    ),
    "nvml-mock": Option(
        lambda s: s.nvml_mock, None, None, None,
        (("NVML_MOCK", "t4", "t4"),), ("--nvml-mock", "dgx-a100"), "dgx-a100",
    ),
}  # fmt: skip


def ladder(option: Option, tmp_path: Path) -> list[tuple[str, object, object]]:
    steps: list[tuple[list[str], dict[str, str], object, str]] = [
        ([], {}, option.default, "default")
    ]
    base_argv: list[str] = []
    if option.file is not None:
        path = tmp_path / "config.yaml"
        path.write_text(f"version: v1\n{option.file}\n")
        base_argv = ["--config-file", str(path)]
        steps.append((base_argv, {}, option.file_value, "file"))
    environ: dict[str, str] = {}
    for var, text, value in reversed(option.envs):
        environ = {**environ, var: text}
        steps.append((base_argv, environ, value, var))
    steps.append(([*base_argv, *option.cli], environ, option.cli_value, "cli"))
    return [(label, option.get(parse(argv, env)), want) for argv, env, want, label in steps]


@pytest.mark.parametrize("name", list(OPTIONS))
def test_precedence(name: str, tmp_path: Path) -> None:
    got = ladder(OPTIONS[name], tmp_path)
    assert [(label, value) for label, value, _ in got] == [(label, want) for label, _, want in got]


def test_dev_root_follows_driver_root() -> None:
    settings = parse(["--driver-root", "/run/nvidia/driver"], {})
    assert settings.config.flags.nvidia_dev_root == "/run/nvidia/driver"


def test_mps_defaults_fail_requests_greater_than_one(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("sharing: {mps: {resources: [{name: gpu, replicas: 2}]}}\n")
    settings = parse(["--config-file", str(path)], {})
    assert settings.config.sharing.mps is not None
    assert settings.config.sharing.mps.fail_requests_greater_than_one is True


def test_logged_config_has_no_gfd_section() -> None:
    doc = json.loads(parse([], {}).config.to_json(include_gfd=False))
    assert "gfd" not in doc["flags"]
    assert doc["flags"]["nvidiaDriverRoot"] == "/"


@pytest.mark.parametrize(
    ("file_text", "logged"),
    [
        ("version: v1\n", None),  # a GFD flag the plugin does not own: null, as upstream
        ("flags: {useNodeFeatureAPI: true}\n", True),  # the file's value kept
        ("flags: {useNodeFeatureAPI: auto}\n", "auto"),
    ],
)
def test_logged_use_node_feature_api_is_the_file_value_or_null(
    tmp_path: Path, file_text: str, logged: object
) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(file_text)
    doc = json.loads(parse(["--config-file", str(path)], {}).config.to_json(include_gfd=False))
    assert doc["flags"]["useNodeFeatureAPI"] == logged


def test_bad_config_file_text(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("version: v2\n")
    with pytest.raises(ConfigError) as err:
        parse(["--config-file", str(path)], {})
    assert str(err.value) == (
        "unable to load config: unable to finalize config: unable to parse config file:"
        " error parsing config file: unknown version: v2"
    )


def test_stray_argument_and_unknown_flag() -> None:
    with pytest.raises(ConfigError, match="unexpected argument"):
        parse(["--pass-device-specs", "true"], {})
    with pytest.raises(ConfigError, match="flag provided but not defined"):
        parse(["--bogus"], {})


def test_help_and_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        parse(["--help"], {})
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert out == usage()
    assert "--kubelet-socket value" in out and "$KUBELET_SOCKET" in out
    assert parse(["--version", "--config-file", "/does/not/exist"], {}).show_version
