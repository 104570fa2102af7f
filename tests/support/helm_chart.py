"""The Helm chart under test: find helm, render the chart with values, read the result.

helm is not a Python package: `python tools/fetch_helm.py .venv/bin` puts the pinned
binary beside the venv's interpreter (the README's test command does). A missing helm
fails the chart tests with that hint instead of skipping them: a skip is not a pass.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deployments" / "helm" / "gpu-node-toolkit"
NAMESPACE = "gpu-node-toolkit"
RELEASE = "gnt"


def load_tool(name: str) -> ModuleType:
    """A script of tools/ as a module (tools/ is not an installed package)."""
    path = ROOT / "tools" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"tools_{name}", path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@functools.cache
def helm() -> str:
    fetch_helm = load_tool("fetch_helm")
    path = fetch_helm.find_helm()
    if path is None:
        looked = ", ".join(str(p) for p in fetch_helm.candidates())
        pytest.fail(f"helm not found (looked in {looked}); {fetch_helm.HINT}", pytrace=False)
    return str(path)


def run_helm(*args: str, values: dict[str, Any] | None = None) -> subprocess.CompletedProcess[str]:
    """helm with the values (typed, as a values file: null and booleans survive)."""
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
        json.dump(values or {}, f)  # JSON is YAML
        f.flush()
        return subprocess.run(
            [helm(), *args, "--values", f.name], capture_output=True, text=True, check=False
        )


def assert_schema_rejects(values: dict[str, Any], path: str) -> None:
    """Both `helm template` and `helm lint --strict` refuse `values`, naming `path`."""
    for command in (
        ("template", "x", str(CHART), "--namespace", NAMESPACE),
        ("lint", "--strict", str(CHART), "--namespace", NAMESPACE),
    ):
        result = run_helm(*command, values=values)
        assert result.returncode != 0, (command[0], result.stdout)
        assert path in result.stdout + result.stderr, result.stdout + result.stderr


def template(
    values: dict[str, Any] | None = None, namespace: str = NAMESPACE
) -> subprocess.CompletedProcess[str]:
    return run_helm("template", RELEASE, str(CHART), "--namespace", namespace, values=values)


def render(values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every object the chart renders with these values; fails the test on an error."""
    result = template(values)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def find(docs: list[dict[str, Any]], kind: str, component: str) -> dict[str, Any] | None:
    for doc in docs:
        labels = doc["metadata"].get("labels", {})
        if doc["kind"] == kind and labels.get("app.kubernetes.io/component") == component:
            return doc
    return None


def daemonset(docs: list[dict[str, Any]], component: str) -> dict[str, Any]:
    found = find(docs, "DaemonSet", component)
    assert found is not None, f"no {component} DaemonSet"
    return found


def pod_spec(docs: list[dict[str, Any]], component: str) -> dict[str, Any]:
    return daemonset(docs, component)["spec"]["template"]["spec"]


def container(docs: list[dict[str, Any]], component: str, index: int = 0) -> dict[str, Any]:
    return pod_spec(docs, component)["containers"][index]


def env(ctr: dict[str, Any]) -> dict[str, Any]:
    """name -> value, or the valueFrom mapping for downward-API variables."""
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in ctr.get("env", [])}


def mounts(docs: list[dict[str, Any]], component: str, index: int = 0) -> dict[str, dict]:
    """mountPath -> {readOnly, the volume's definition}, and mountPropagation where set."""
    spec = pod_spec(docs, component)
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    found = {}
    for mount in spec["containers"][index].get("volumeMounts", []):
        volume = dict(volumes[mount["name"]])
        volume.pop("name")
        found[mount["mountPath"]] = {"readOnly": mount.get("readOnly", False), **volume}
        if "mountPropagation" in mount:
            found[mount["mountPath"]]["mountPropagation"] = mount["mountPropagation"]
    return found


# Value sets every chart test sweeps (lint, schema validation of the output, the
# commands' own parsers): each turns on a different branch of the templates.
EMBEDDED_CONFIGS = {
    "default": "version: v1\nflags:\n  migStrategy: none\n",
    "mig": (
        "version: v1\nflags:\n  migStrategy: mixed\n  plugin:\n    deviceListStrategy: [cdi-cri]\n"
    ),
}
VALUE_SETS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "mig-mixed-cdi-cri": {
        "migStrategy": "mixed",
        "deviceListStrategy": "cdi-cri",
        "deviceIDStrategy": "index",
    },
    "cdi-annotations-volume-mounts": {"deviceListStrategy": "cdi-annotations,volume-mounts"},
    "cpu-manager": {"compatWithCPUManager": True, "failOnInitError": False},
    "driver-container": {
        "nvidiaDriverRoot": "/run/nvidia/driver",
        "nvidiaDevRoot": "/run/nvidia/dev",
        "gdrcopyEnabled": True,
        "gdsEnabled": False,
        "mofedEnabled": True,
        "deviceDiscoveryStrategy": "nvml",
    },
    "embedded-config": {"config": {"map": EMBEDDED_CONFIGS}},
    "embedded-config-default": {"config": {"map": EMBEDDED_CONFIGS, "default": "mig"}},
    "external-config": {"config": {"name": "my-configs", "default": "a100"}},
    # config-manager beside a feature-file GFD: a token of its own; the empty config
    "embedded-config-empty-fallback": {
        "config": {"map": EMBEDDED_CONFIGS, "fallbackStrategies": ["empty"]},
        "gfd": {"useNodeFeatureAPI": False},
        "configManager": {"livenessProbe": {"enabled": False}, "resources": None},
    },
    "gfd-feature-file": {
        "gfd": {"useNodeFeatureAPI": False, "noTimestamp": True, "sleepInterval": "5m"}
    },
    "gfd-api-forced": {"gfd": {"useNodeFeatureAPI": True, "sleepInterval": "infinite"}},
    "gfd-label-templates": {"gfd": {"labelTemplates": {"gpus.j2": "nvidia.com/gpus={{ 1 }}\n"}}},
    "gfd-label-templates-builtin": {"gfd": {"labelTemplates": "builtin"}},
    "cdi-imex": {"cdi": {"imex": {"enabled": True}, "interval": "10s"}},
    "no-liveness-probes": {
        "devicePlugin": {"livenessProbe": {"enabled": False}},
        "gfd": {"livenessProbe": {"enabled": False}},
        "cdi": {"livenessProbe": {"enabled": False}, "imex": {"enabled": True}},
    },
    "kubelet-root": {"kubeletRoot": "/var/lib/k0s/kubelet"},
    "gfd-only": {"devicePlugin": {"enabled": False}, "cdi": {"enabled": False}},
    "resources-and-privileges-overridden": {
        "resources": {"requests": {"cpu": "0.1", "memory": "1e8"}},
        "gfd": {"resources": None, "securityContext": {"privileged": True, "capabilities": None}},
        "cdi": {"resources": {"limits": {"memory": "256Mi"}}, "securityContext": None},
    },
    "simulator": {
        "simulator": {"profile": "dgx-a100", "nodeSelector": {"gpu-node-toolkit/simulated": "yes"}},
        "deviceListStrategy": "cdi-cri",
        "cdi": {"imex": {"enabled": True}},
    },
    "metrics": {
        "metrics": {"enabled": True, "podMonitor": {"enabled": True, "labels": {"team": "gpu"}}},
        "cdi": {"imex": {"enabled": True}},
    },
    "metrics-ports": {
        "metrics": {
            "enabled": True,
            "ports": {"devicePlugin": 19400, "gfd": 19401, "cdi": 19402},
            "podMonitor": {"enabled": True, "interval": None},
        },
        "devicePlugin": {"enabled": False},
        "selectorLabelsOverride": {"fleet": "gpu"},
    },
    "overrides": {
        "fullnameOverride": "gpu",
        "image": {"repository": "example.invalid/gnt", "tag": "dev", "pullPolicy": "Always"},
        "imagePullSecrets": [{"name": "pull"}],
        "runtimeClassName": "nvidia",
        "nodeSelector": {"gpu": "yes"},
        "podAnnotations": {"team": "ml"},
        "resources": {"limits": {"memory": "200Mi"}},
        "gfd": {"resources": {"requests": {"cpu": "10m"}}},
        "securityContext": {"privileged": True},
        "priorityClassName": "",
    },
}
