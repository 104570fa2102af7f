"""The chart's Prometheus metrics: `metrics.enabled`, the ports, the Services, the PodMonitor.

Off by default: no port, no address, no Service, no PodMonitor. On: every container
names its port, and its command (by its own parser) serves on that very port; each
DaemonSet has a headless Service selecting its pods only, on ports its containers name;
the PodMonitor, only when asked, has the operator's shape (tests/support/podmonitor_shape.py),
selects exactly the chart's pods of the enabled components and scrapes every metrics
port they name. Refused: a PodMonitor without metrics, two CDI generators on one port,
and bad ports or intervals (values.schema.json), each naming the value.
"""

from __future__ import annotations

import json
from typing import Any

import podmonitor_shape
import pytest
from helm_chart import (
    CHART,
    NAMESPACE,
    VALUE_SETS,
    assert_schema_rejects,
    find,
    render,
    template,
)

COMPONENTS = ("device-plugin", "gpu-feature-discovery", "cdi-generator")
ON = {"metrics": {"enabled": True}, "cdi": {"imex": {"enabled": True}}}
# container -> (port name, default port)
PORTS = {
    "nvidia-device-plugin-ctr": ("metrics", 9410),
    "gpu-feature-discovery-ctr": ("metrics", 9411),
    "nvidia-cdi-generate": ("metrics", 9412),
    "nvidia-cdi-generate-imex": ("metrics-imex", 9413),
}


def daemonsets(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == "DaemonSet"]


def containers(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [c for d in daemonsets(docs) for c in d["spec"]["template"]["spec"]["containers"]]


def served_port(ctr: dict[str, Any]) -> int | None:
    """The port the container's command serves metrics on, by the command's own parser."""
    from nvlib.metrics import parse_address

    environ = {e["name"]: e.get("value", "x") for e in ctr.get("env", [])}
    command, args = ctr["command"][0], list(ctr.get("args", []))
    if command == "nvidia-device-plugin":
        from deviceplugin.cli import parse as plugin

        address = plugin(args, environ).metrics_address
    elif command == "gpu-feature-discovery":
        from gfd.cli import parse as gfd

        address = gfd(args, environ).metrics_address
    else:
        from cdi.cli import parse as cdi

        address = cdi(args, environ).metrics_address  # type: ignore[union-attr]
    return parse_address(address)[1] if address else None


def test_off_by_default() -> None:
    docs = render({"cdi": {"imex": {"enabled": True}}})
    assert not [d for d in docs if d["kind"] in ("Service", "PodMonitor")]
    for ctr in containers(docs):
        assert "ports" not in ctr, ctr["name"]
        assert served_port(ctr) is None, ctr["name"]
    # Asking for a PodMonitor alone is refused (below); with metrics it needs asking too.
    assert not [d for d in render(ON) if d["kind"] == "PodMonitor"]


@pytest.mark.parametrize(
    ("values", "ports"),
    [
        pytest.param(ON, {c: p for c, (_, p) in PORTS.items()}, id="default-ports"),
        pytest.param(VALUE_SETS["metrics-ports"], {"gpu-feature-discovery-ctr": 19401,
                     "nvidia-cdi-generate": 19402}, id="own-ports"),
    ],
)  # fmt: skip
def test_each_command_serves_on_its_named_port(
    values: dict[str, Any], ports: dict[str, int]
) -> None:
    docs = render(values)
    assert {c["name"]: served_port(c) for c in containers(docs)} == ports
    for ctr in containers(docs):
        name = PORTS[ctr["name"]][0]
        assert ctr["ports"] == [
            {"name": name, "containerPort": ports[ctr["name"]], "protocol": "TCP"}
        ]


def test_a_headless_service_per_daemonset() -> None:
    docs = render(ON)
    services = [d for d in docs if d["kind"] == "Service"]
    assert len(services) == len(daemonsets(docs)) == 3
    for ds in daemonsets(docs):
        component = ds["metadata"]["labels"]["app.kubernetes.io/component"]
        service = find(docs, "Service", component)
        assert service is not None, component
        spec = service["spec"]
        assert spec["clusterIP"] == "None"  # every pod a target, none behind a virtual IP
        pod = ds["spec"]["template"]
        assert spec["selector"] == pod["metadata"]["labels"]  # its own pods
        others = [d for d in daemonsets(docs) if d is not ds]
        assert all(
            not podmonitor_shape.selects({"matchLabels": spec["selector"]}, o["spec"]["template"]
                                         ["metadata"]["labels"]) for o in others
        )  # fmt: skip
        named = {
            p["name"]: p["containerPort"] for c in pod["spec"]["containers"] for p in c["ports"]
        }
        assert {p["targetPort"]: p["port"] for p in spec["ports"]} == named
        assert service["metadata"]["name"].endswith(f"{component}-metrics")


@pytest.mark.parametrize(
    ("values", "components", "port_names", "interval"),
    [
        pytest.param(VALUE_SETS["metrics"], set(COMPONENTS), ["metrics", "metrics-imex"], "30s",
                     id="all"),
        pytest.param(VALUE_SETS["metrics-ports"], {"gpu-feature-discovery", "cdi-generator"},
                     ["metrics"], None, id="no-plugin-no-imex-default-interval"),
    ],
)  # fmt: skip
def test_podmonitor_scrapes_every_metrics_port_of_the_chart(
    values: dict[str, Any], components: set[str], port_names: list[str], interval: str | None
) -> None:
    docs = render(values)
    monitors = [d for d in docs if d["kind"] == "PodMonitor"]
    assert len(monitors) == 1
    monitor = monitors[0]
    assert podmonitor_shape.problems(monitor) == []
    assert monitor["metadata"]["namespace"] == NAMESPACE
    spec = monitor["spec"]
    assert spec["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    selected = {
        d["metadata"]["labels"]["app.kubernetes.io/component"]
        for d in daemonsets(docs)
        if podmonitor_shape.selects(spec["selector"], d["spec"]["template"]["metadata"]["labels"])
    }
    assert selected == components
    # Not another release's pods, nor pods of this namespace without the chart's labels.
    stranger = dict(daemonsets(docs)[0]["spec"]["template"]["metadata"]["labels"])
    stranger["app.kubernetes.io/instance"] = "other"
    assert not podmonitor_shape.selects(spec["selector"], stranger)
    named = sorted({p["name"] for c in containers(docs) for p in c["ports"]})
    assert [e["port"] for e in spec["podMetricsEndpoints"]] == port_names == named
    for endpoint in spec["podMetricsEndpoints"]:
        assert endpoint["path"] == "/metrics"
        assert endpoint.get("interval") == interval
    assert spec["podTargetLabels"] == ["app.kubernetes.io/component"]
    labels = values["metrics"]["podMonitor"].get("labels", {})
    assert labels.items() <= monitor["metadata"]["labels"].items()


def test_interval_pattern_is_the_operators() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    monitor = schema["properties"]["metrics"]["properties"]["podMonitor"]["properties"]
    string = next(s for s in monitor["interval"]["oneOf"] if s.get("type") == "string")
    assert string["pattern"] == podmonitor_shape.DURATION


@pytest.mark.parametrize(
    ("values", "message"),
    [
        pytest.param({"metrics": {"podMonitor": {"enabled": True}}},
                     "'metrics.podMonitor.enabled' is true but 'metrics.enabled' is false",
                     id="podmonitor-without-metrics"),
        pytest.param({"metrics": {"enabled": True, "ports": {"cdiImex": 9412}},
                      "cdi": {"imex": {"enabled": True}}},
                     "'metrics.ports.cdi' and 'metrics.ports.cdiImex' are both 9412",
                     id="cdi-ports-clash"),
    ],
)  # fmt: skip
def test_render_time_failures(values: dict[str, Any], message: str) -> None:
    result = template(values)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr


def test_one_port_for_both_generators_is_fine_without_imex() -> None:
    docs = render({"metrics": {"enabled": True, "ports": {"cdiImex": 9412}}})
    assert [c["name"] for c in containers(docs) if c["command"] == ["nvidia-cdi"]] == [
        "nvidia-cdi-generate"
    ]


@pytest.mark.parametrize(
    ("values", "path"),
    [
        pytest.param({"metrics": {"enabled": "yes"}}, "/metrics/enabled", id="enabled-string"),
        pytest.param({"metrics": {"ports": {"gfd": 0}}}, "/metrics/ports/gfd", id="port-zero"),
        pytest.param({"metrics": {"ports": {"gfd": 65536}}}, "/metrics/ports/gfd",
                     id="port-too-big"),
        pytest.param({"metrics": {"ports": {"cdi": "9412"}}}, "/metrics/ports/cdi",
                     id="port-string"),
        pytest.param({"metrics": {"ports": {"plugin": 9410}}}, "/metrics/ports",
                     id="port-unknown-component"),
        pytest.param({"metrics": {"podMonitor": {"interval": "30"}}},
                     "/metrics/podMonitor/interval", id="interval-without-unit"),
        pytest.param({"metrics": {"podMonitor": {"interval": "1m30"}}},
                     "/metrics/podMonitor/interval", id="interval-trailing-number"),
        pytest.param({"metrics": {"podMonitor": {"labels": {"a": 1}}}},
                     "/metrics/podMonitor/labels/a", id="label-not-string"),
        pytest.param({"metrics": {"serviceMonitor": {}}}, "/metrics", id="unknown-key"),
    ],
)  # fmt: skip
def test_schema_rejects(values: dict[str, Any], path: str) -> None:
    assert_schema_rejects(values, path)
