"""The chart cannot drift from the commands it runs.

Matrix: every value set of helm_chart.VALUE_SETS x every container the chart renders:
the command is one of this distribution's console scripts; every environment variable
is one the command reads (or one the NVIDIA container runtime reads); and the command's
own parser accepts the arguments and the environment together, with the config file
config-manager would write for an unlabelled node; a container's liveness probe is the
heartbeat check's own command line, on the very file the container's command is told to
touch, in an emptyDir of its pod. Then the schema's enums against the commands' own lists.
"""

from __future__ import annotations

import importlib.metadata
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helm_chart import CHART, VALUE_SETS, find, render

# Read by the NVIDIA container runtime (or its hook), not by our commands.
RUNTIME_ENV = frozenset(
    {"NVIDIA_VISIBLE_DEVICES", "NVIDIA_DRIVER_CAPABILITIES", "NVIDIA_MIG_MONITOR_DEVICES"}
)
# What the downward API would fill in.
DOWNWARD = {"spec.nodeName": "node-1", "metadata.namespace": "gpu-node-toolkit",
            "metadata.name": "gpu-feature-discovery-abcde"}  # fmt: skip


# Each parser returns the heartbeat file the command was told to touch ("" for none).
def _gfd(args: list[str], environ: dict[str, str]) -> str:
    from gfd.cli import FLAGS, parse

    _check_names(environ, FLAGS)
    settings = parse(args, environ)
    assert settings.node_name == "node-1"
    assert settings.namespace == "gpu-node-toolkit"
    assert settings.pod_name.startswith("gpu-feature-discovery")
    return settings.heartbeat_file


def _plugin(args: list[str], environ: dict[str, str]) -> str:
    from deviceplugin.cli import FLAGS, parse
    from nvlib.config.validate import validate_plugin_flags

    _check_names(environ, FLAGS)
    settings = parse(args, environ)
    validate_plugin_flags(settings.config, nvml_available=True)  # done at start
    assert settings.kubelet_socket.endswith("/device-plugins/kubelet.sock")
    return settings.heartbeat_file


def _cdi(args: list[str], environ: dict[str, str]) -> str:
    from cdi.cli import GENERATE_ENV, GenerateSettings, parse

    unknown = sorted(set(environ) - RUNTIME_ENV - {v for vs in GENERATE_ENV.values() for v in vs})
    assert not unknown, f"variables the command does not read: {unknown}"
    settings = parse(args, environ)
    assert isinstance(settings, GenerateSettings)
    assert settings.watch
    assert settings.output.startswith("/var/run/cdi/")
    if settings.nvml_mock:  # a simulated machine: its driver root laid out on the host
        assert settings.simulator_root is not None
    return settings.heartbeat_file or ""


def _check_probe(ctr: dict[str, Any], docs: list[dict[str, Any]], heartbeat: str) -> None:
    """The probe checks the file the command touches, in an emptyDir the pod mounts."""
    from nvlib.heartbeat import parse_args

    probe = ctr.get("livenessProbe")
    if probe is None:
        assert heartbeat == "", f"{ctr['name']}: a heartbeat nobody checks"
        return
    command = probe["exec"]["command"]
    assert command[:3] == ["python3", "-m", "nvlib.heartbeat"]  # the image's venv python
    checked = parse_args(command[3:])
    assert (checked.command, checked.path, checked.limit) == ("check", heartbeat, None)
    directory = str(Path(heartbeat).parent)
    mount = next(m for m in ctr["volumeMounts"] if m["mountPath"] == directory)
    assert not mount.get("readOnly", False)
    volume = next(v for v in _volumes(docs, ctr) if v["name"] == mount["name"])
    assert "emptyDir" in volume


def _config_manager(args: list[str], environ: dict[str, str]) -> str:
    from configmanager.cli import FLAGS, parse

    _check_names(environ, FLAGS)
    settings = parse(args, environ)
    assert settings.node_name == "node-1"
    assert settings.kubeconfig == ""  # the pod's service account
    return settings.heartbeat_file


PARSERS: dict[str, Callable[[list[str], dict[str, str]], str]] = {
    "gpu-feature-discovery": _gfd,
    "nvidia-device-plugin": _plugin,
    "nvidia-cdi": _cdi,
    "config-manager": _config_manager,
}


def _check_names(environ: dict[str, str], flags: Any) -> None:
    read = {var for flag in flags for var in flag.envs} | RUNTIME_ENV
    unknown = sorted(set(environ) - read)
    assert not unknown, f"variables the command does not read: {unknown}"


def _environ(ctr: dict[str, Any], docs: list[dict[str, Any]], tmp: Path) -> dict[str, str]:
    environ = {}
    for var in ctr.get("env", []):
        if "valueFrom" in var:
            environ[var["name"]] = DOWNWARD[var["valueFrom"]["fieldRef"]["fieldPath"]]
        else:
            environ[var["name"]] = var["value"]
    if "CONFIG_FILE" in environ:  # what config-manager writes for an unlabelled node
        path = tmp / "config.yaml"
        path.write_text(_unlabelled_config(docs, ctr))
        environ["CONFIG_FILE"] = str(path)
    return environ


def _unlabelled_config(docs: list[dict[str, Any]], ctr: dict[str, Any]) -> str:
    """The config file config-manager's init container writes where no label is set."""
    from configmanager.selection import select_config

    init = _pod(docs, ctr)["initContainers"][0]
    settings = {e["name"]: e.get("value") for e in init["env"]}
    configmap = find(docs, "ConfigMap", "config")
    if configmap is None:
        return "version: v1\n"  # a ConfigMap outside the chart: any valid file
    fallbacks = [f for f in settings["FALLBACK_STRATEGIES"].split(",") if f]
    name = select_config("", sorted(configmap["data"]), settings["DEFAULT_CONFIG"], fallbacks)
    return configmap["data"][name] if name else ""


def _pod(docs: list[dict[str, Any]], ctr: dict[str, Any]) -> dict[str, Any]:
    for doc in docs:
        if doc["kind"] == "DaemonSet":
            spec = doc["spec"]["template"]["spec"]
            if ctr in spec["containers"] or ctr in spec.get("initContainers", []):
                return spec
    raise AssertionError("container not found")


def _volumes(docs: list[dict[str, Any]], ctr: dict[str, Any]) -> list[dict[str, Any]]:
    return _pod(docs, ctr)["volumes"]


def _containers(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        c
        for d in docs
        if d["kind"] == "DaemonSet"
        for c in d["spec"]["template"]["spec"].get("initContainers", [])
        + d["spec"]["template"]["spec"]["containers"]
    ]


@pytest.mark.parametrize("values", [pytest.param(v, id=k) for k, v in VALUE_SETS.items()])
def test_commands_accept_what_the_chart_passes(values: dict[str, Any], tmp_path: Path) -> None:
    docs = render(values)
    scripts = {e.name for e in importlib.metadata.entry_points(group="console_scripts")}
    containers = _containers(docs)
    assert containers
    for ctr in containers:
        command = ctr["command"]
        assert len(command) == 1 and command[0] in PARSERS, command
        assert command[0] in scripts  # installed by this distribution
        heartbeat = PARSERS[command[0]](list(ctr.get("args", [])), _environ(ctr, docs, tmp_path))
        _check_probe(ctr, docs, heartbeat)


def _schema() -> dict[str, Any]:
    return json.loads((CHART / "values.schema.json").read_text())


def test_schema_enums_are_the_commands() -> None:
    """A strategy the commands gain or lose must be added to or removed from the schema."""
    from nvlib.config import validate

    props = _schema()["properties"]
    assert props["migStrategy"]["enum"] == [None, *validate.MIG_STRATEGIES]
    assert props["deviceIDStrategy"]["enum"] == [None, *validate.DEVICE_ID_STRATEGIES]
    assert props["deviceDiscoveryStrategy"]["enum"] == [None, *validate.DISCOVERY_STRATEGIES]
    one = "|".join(map(re.escape, validate.DEVICE_LIST_STRATEGIES)).replace("\\-", "-")
    assert props["deviceListStrategy"]["pattern"] == f"^({one})(,({one}))*$"


@pytest.mark.parametrize(
    ("text", "ok"),
    [("60s", True), ("1h30m", True), ("500ms", True), ("1.5s", True), ("0", True),
     ("60", False), ("1d", False), ("s", False), ("", False)],
)  # fmt: skip
def test_schema_duration_matches_the_commands_parser(text: str, ok: bool) -> None:
    from nvlib.config.durations import parse_go_duration

    pattern = _schema()["definitions"]["goDuration"]["pattern"]
    assert bool(re.search(pattern, text)) is ok
    try:
        parse_go_duration(text)
    except ValueError:
        assert not ok
    else:
        assert ok
