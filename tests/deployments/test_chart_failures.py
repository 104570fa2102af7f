"""Values the chart refuses, each with a non-zero exit and a message naming the value.

Matrix: the render-time checks of templates/validation.yaml (docs/deployment.md#values and
the project's config-file additions), then values.schema.json: one bad value per field,
each message naming the field's path.
"""

from __future__ import annotations

from typing import Any

import pytest
from helm_chart import NAMESPACE, assert_schema_rejects, template


@pytest.mark.parametrize(
    ("values", "namespace", "message"),
    [
        pytest.param({"namespace": "gpu"}, NAMESPACE, "Value 'namespace' set to gpu",
                     id="namespace-value"),
        pytest.param({}, "default", "Set 'allowDefaultNamespace=true'", id="default-namespace"),
        pytest.param({"config": {"name": "ext", "map": {"a": "version: v1\n"}}}, NAMESPACE,
                     "Only one of 'config.name' or 'config.map' may be set",
                     id="config-name-and-map"),
        pytest.param({"config": {"map": {"a": "version: v1\n", "b": "version: v1\n"}}},
                     NAMESPACE, "A default config must be provided when more than one "
                     "configuration is set in 'config.map'", id="map-without-default"),
        pytest.param({"config": {"map": {"a": "version: v1\n"}, "fallbackStrategies": []}},
                     NAMESPACE, "current set is []", id="map-without-fallbacks"),
        pytest.param({"config": {"map": {"a": "version: v1\n"}, "default": "b"}}, NAMESPACE,
                     "'config.default' is \"b\", but 'config.map' has no such entry (it has: a)",
                     id="default-not-in-map"),
        pytest.param({"devicePlugin": {"enabled": False}, "gfd": {"enabled": False},
                      "cdi": {"enabled": False}}, NAMESPACE, "nothing to deploy",
                     id="everything-off"),
    ],
)  # fmt: skip
def test_render_time_failures(values: dict[str, Any], namespace: str, message: str) -> None:
    result = template(values, namespace=namespace)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr


def test_default_namespace_allowed() -> None:
    assert template({"allowDefaultNamespace": True}, namespace="default").returncode == 0


def test_an_external_configmap_is_config_managers_to_check() -> None:
    """The chart cannot read config.name's entries: config-manager picks one on each node
    (the only one, with `single`) and fails there, naming what is missing."""
    assert template({"config": {"name": "ext", "fallbackStrategies": ["single"]}}).returncode == 0


@pytest.mark.parametrize(
    ("values", "path"),
    [
        pytest.param({"migStrategy": "auto"}, "/migStrategy", id="mig-strategy"),
        pytest.param({"deviceListStrategy": "cdi"}, "/deviceListStrategy", id="device-list"),
        pytest.param({"deviceListStrategy": "envvar, cdi-cri"}, "/deviceListStrategy",
                     id="device-list-space"),
        pytest.param({"deviceIDStrategy": "name"}, "/deviceIDStrategy", id="device-id"),
        pytest.param({"deviceDiscoveryStrategy": "tegra"}, "/deviceDiscoveryStrategy",
                     id="discovery-unsupported"),
        pytest.param({"failOnInitError": "yes"}, "/failOnInitError", id="bool-as-string"),
        pytest.param({"compatWithCPUManager": 1}, "/compatWithCPUManager", id="bool-as-int"),
        pytest.param({"nvidiaDriverRoot": "run/nvidia"}, "/nvidiaDriverRoot", id="relative-root"),
        pytest.param({"kubeletRoot": "var/lib/kubelet"}, "/kubeletRoot", id="relative-kubelet"),
        pytest.param({"mps": {"root": ""}}, "/mps/root", id="mps-root-empty"),
        pytest.param({"image": {"repository": ""}}, "/image/repository", id="image-empty"),
        pytest.param({"image": {"pullPolicy": "Sometimes"}}, "/image/pullPolicy", id="pull"),
        pytest.param({"gfd": {"noTimeStamp": True}}, "/gfd", id="gfd-misspelt-key"),
        pytest.param({"gfd": {"sleepInterval": 60}}, "/gfd/sleepInterval", id="interval-number"),
        pytest.param({"gfd": {"sleepInterval": "60"}}, "/gfd/sleepInterval", id="interval-unit"),
        pytest.param({"gfd": {"useNodeFeatureAPI": "yes"}}, "/gfd/useNodeFeatureAPI",
                     id="nodefeature-api"),
        pytest.param({"cdi": {"interval": "0s"}}, "/cdi/interval", id="cdi-interval-zero"),
        pytest.param({"cdi": {"imex": True}}, "/cdi/imex", id="cdi-imex-not-object"),
        pytest.param({"gfd": {"livenessProbe": {"periodSeconds": 0}}},
                     "/gfd/livenessProbe/periodSeconds", id="probe-period-zero"),
        pytest.param({"cdi": {"livenessProbe": {"enabled": "yes"}}},
                     "/cdi/livenessProbe/enabled", id="probe-enabled-string"),
        pytest.param({"devicePlugin": {"livenessProbe": {"exec": {"command": ["true"]}}}},
                     "/devicePlugin/livenessProbe", id="probe-command-not-a-value"),
        pytest.param({"config": {"fallbackStrategies": ["first"]}},
                     "/config/fallbackStrategies/0", id="fallback"),
        pytest.param({"config": {"map": {"a": {"version": "v1"}}}}, "/config/map/a",
                     id="config-entry-not-text"),
        pytest.param({"sleepInterval": "5m"}, "additional properties 'sleepInterval'",
                     id="upstream-top-level-gfd-key"),
        pytest.param({"tolerations": {"key": "x"}}, "/tolerations", id="tolerations-map"),
        pytest.param({"resources": {"limit": {}}}, "/resources", id="resources-typo"),
    ],
)  # fmt: skip
def test_schema_rejects(values: dict[str, Any], path: str) -> None:
    assert_schema_rejects(values, path)
