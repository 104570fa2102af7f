"""config-manager in the chart, rule by rule (docs/deployment.md, "Per-node configuration").

Matrix: the init container and the sidecar beside the plugin and GFD exactly when a
ConfigMap of configs is used, named as upstream's; their environment (upstream's
variables, the values' default and fallbacks, the signal to the daemon's own command);
the pod wiring (one process namespace, the configs mounted at the source directory,
the destination in an emptyDir the daemon mounts read-only at its CONFIG_FILE); the
token (config-manager's containers only in the plugin's pod and beside a feature-file
GFD, the pod's own beside a NodeFeature GFD); least privilege; resources; the sidecar's
liveness probe. RBAC: test_chart_rbac.py; the commands' parsers: test_chart_commands.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from helm_chart import EMBEDDED_CONFIGS, container, env, pod_spec, render

HEARTBEATS = "/run/gpu-node-toolkit/heartbeat"
TOKEN_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
EMBEDDED = {"config": {"map": EMBEDDED_CONFIGS}}
PODS = {  # component -> (main container, the command the sidecar signals)
    "device-plugin": ("nvidia-device-plugin", "nvidia-device-plugin"),
    "gpu-feature-discovery": ("gpu-feature-discovery", "gpu-feature-discovery"),
}
DOCS = render(EMBEDDED)


def init_and_sidecar(docs: list[dict[str, Any]], component: str) -> tuple[dict, dict]:
    spec = pod_spec(docs, component)
    (init,) = spec["initContainers"]
    sidecars = [c for c in spec["containers"] if c["command"] == ["config-manager"]]
    assert len(sidecars) == 1
    return init, sidecars[0]


@pytest.mark.parametrize(
    "values",
    [
        pytest.param({}, id="defaults"),
        pytest.param({"cdi": {"imex": {"enabled": True}}}, id="no-configmap"),
    ],
)
def test_none_without_a_configmap(values: dict[str, Any]) -> None:
    docs = render(values)
    for component in (*PODS, "cdi-generator"):
        spec = pod_spec(docs, component)
        assert "initContainers" not in spec
        assert "shareProcessNamespace" not in spec
        assert all(c["command"] != ["config-manager"] for c in spec["containers"])
        assert "CONFIG_FILE" not in env(spec["containers"][0])


@pytest.mark.parametrize("component", PODS)
@pytest.mark.parametrize(
    "values",
    [
        pytest.param(EMBEDDED, id="embedded"),
        pytest.param({"config": {"name": "ext"}}, id="external"),
    ],
)
def test_init_and_sidecar_by_upstream_names(component: str, values: dict[str, Any]) -> None:
    docs = render(values)
    main, _ = PODS[component]
    spec = pod_spec(docs, component)
    assert [c["name"] for c in spec["initContainers"]] == [f"{main}-init"]
    # the daemon stays first: the one `kubectl logs` and the other tests address
    assert [c["name"] for c in spec["containers"]] == [f"{main}-ctr", f"{main}-sidecar"]
    assert spec["shareProcessNamespace"] is True
    image = spec["containers"][0]["image"]
    for ctr in init_and_sidecar(docs, component):
        assert ctr["image"] == image
        assert ctr["command"] == ["config-manager"]
        assert "args" not in ctr


def common_env(default: str = "", fallbacks: str = "named,single") -> dict[str, Any]:
    return {
        "KUBECONFIG": "",
        "NODE_NAME": {"fieldRef": {"fieldPath": "spec.nodeName"}},
        "NODE_LABEL": "nvidia.com/device-plugin.config",
        "CONFIG_FILE_SRCDIR": "/available-configs",
        "CONFIG_FILE_DST": "/config/config.yaml",
        "DEFAULT_CONFIG": default,
        "FALLBACK_STRATEGIES": fallbacks,
    }


@pytest.mark.parametrize(
    ("values", "default", "fallbacks"),
    [
        pytest.param(EMBEDDED, "", "named,single", id="fallbacks-default"),
        pytest.param({"config": {"map": EMBEDDED_CONFIGS, "default": "mig"}}, "mig",
                     "named,single", id="default"),
        pytest.param({"config": {"name": "ext", "fallbackStrategies": ["single", "empty"]}}, "",
                     "single,empty", id="external-fallbacks"),
        pytest.param({"config": {"name": "ext", "fallbackStrategies": []}}, "", "",
                     id="no-fallbacks"),
    ],
)  # fmt: skip
@pytest.mark.parametrize("component", PODS)
def test_environment(component: str, values: dict[str, Any], default: str, fallbacks: str) -> None:
    init, sidecar = init_and_sidecar(render(values), component)
    main, process = PODS[component]
    assert env(init) == {
        **common_env(default, fallbacks),
        "ONESHOT": "true", "SEND_SIGNAL": "false", "SIGNAL": "", "PROCESS_TO_SIGNAL": "",
    }  # fmt: skip
    assert env(sidecar) == {
        **common_env(default, fallbacks),
        "ONESHOT": "false", "SEND_SIGNAL": "true", "SIGNAL": "1", "PROCESS_TO_SIGNAL": process,
        "CONFIG_MANAGER_HEARTBEAT_FILE": f"{HEARTBEATS}/{main}-sidecar",
    }  # fmt: skip


@pytest.mark.parametrize("component", PODS)
def test_the_sidecar_signals_the_daemons_own_command(component: str) -> None:
    _, sidecar = init_and_sidecar(DOCS, component)
    assert container(DOCS, component)["command"] == [env(sidecar)["PROCESS_TO_SIGNAL"]]


@pytest.mark.parametrize("component", PODS)
def test_config_file_flows_from_the_configmap_to_the_daemon(component: str) -> None:
    """ConfigMap -> /available-configs (read-only) -> config-manager -> the emptyDir at
    /config -> the daemon's CONFIG_FILE, read-only."""
    spec = pod_spec(DOCS, component)
    volumes = {v["name"]: v for v in spec["volumes"]}
    daemon = spec["containers"][0]
    for ctr in init_and_sidecar(DOCS, component):
        mounts = {m["mountPath"]: m for m in ctr["volumeMounts"]}
        source = mounts[env(ctr)["CONFIG_FILE_SRCDIR"]]
        assert source.get("readOnly") is True
        assert volumes[source["name"]]["configMap"] == {"name": "gnt-gpu-node-toolkit-configs"}
        destination = env(ctr)["CONFIG_FILE_DST"]
        written = mounts[destination.rsplit("/", 1)[0]]
        assert not written.get("readOnly", False)
        assert "emptyDir" in volumes[written["name"]]
        read = next(m for m in daemon["volumeMounts"] if m["name"] == written["name"])
        assert read["readOnly"] is True
        assert env(daemon)["CONFIG_FILE"] == f"{read['mountPath']}/config.yaml" == destination


@pytest.mark.parametrize(
    ("component", "values", "pod_token"),
    [
        pytest.param("device-plugin", EMBEDDED, False, id="plugin-never"),
        pytest.param("gpu-feature-discovery", EMBEDDED, True, id="gfd-nodefeature"),
        pytest.param("gpu-feature-discovery",
                     {**EMBEDDED, "gfd": {"useNodeFeatureAPI": False}}, False,
                     id="gfd-feature-file"),
    ],
)  # fmt: skip
def test_token_for_config_manager(component: str, values: dict[str, Any], pod_token: bool) -> None:
    """config-manager reads the Node; the plugin (and a feature-file GFD) still never
    sees a token: config-manager's containers mount one of their own."""
    docs = render(values)
    spec = pod_spec(docs, component)
    name = f"gnt-gpu-node-toolkit-{component}"
    assert spec["serviceAccountName"] == name
    daemon = spec["containers"][0]
    own = list(init_and_sidecar(docs, component))
    if pod_token:
        assert "automountServiceAccountToken" not in spec
        assert all(TOKEN_DIR not in str(c["volumeMounts"]) for c in [daemon, *own])
        return
    assert spec["automountServiceAccountToken"] is False
    assert TOKEN_DIR not in str(daemon["volumeMounts"])
    for ctr in own:
        mount = next(m for m in ctr["volumeMounts"] if m["mountPath"] == TOKEN_DIR)
        assert mount["readOnly"] is True
        volume = next(v for v in spec["volumes"] if v["name"] == mount["name"])
        sources = volume["projected"]["sources"]
        assert sources[0]["serviceAccountToken"]["path"] == "token"
        assert sources[1]["configMap"]["name"] == "kube-root-ca.crt"
        assert sources[2]["downwardAPI"]["items"][0]["path"] == "namespace"


@pytest.mark.parametrize("component", PODS)
def test_least_privilege(component: str) -> None:
    for ctr in init_and_sidecar(render({**EMBEDDED, "compatWithCPUManager": True}), component):
        assert ctr["securityContext"] == {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        }


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        pytest.param(EMBEDDED, {"requests": {"cpu": "10m", "memory": "64Mi"}}, id="default"),
        pytest.param({**EMBEDDED, "configManager": {"resources": None},
                      "resources": {"requests": {"memory": "99Mi"}}},
                     {"requests": {"cpu": "10m", "memory": "99Mi"}}, id="null-then-top-level"),
        pytest.param({**EMBEDDED, "configManager": {"resources": {"limits": {"memory": "1Gi"}}}},
                     {"limits": {"memory": "1Gi"}, "requests": {"cpu": "10m", "memory": "64Mi"}},
                     id="a-map-merges"),
    ],
)  # fmt: skip
def test_resources(values: dict[str, Any], expected: dict[str, Any]) -> None:
    docs = render(values)
    for component in PODS:
        for ctr in init_and_sidecar(docs, component):
            assert ctr["resources"] == expected


@pytest.mark.parametrize("component", PODS)
def test_sidecar_probe_and_no_init_probe(component: str) -> None:
    init, sidecar = init_and_sidecar(DOCS, component)
    main, _ = PODS[component]
    check = ["python3", "-m", "nvlib.heartbeat", "check", f"{HEARTBEATS}/{main}-sidecar"]
    assert sidecar["livenessProbe"] == {
        "exec": {"command": check},
        "initialDelaySeconds": 10, "periodSeconds": 30, "timeoutSeconds": 10,
        "failureThreshold": 3,
    }  # fmt: skip
    assert "livenessProbe" not in init
    assert HEARTBEATS not in str(init["volumeMounts"])
    assert "CONFIG_MANAGER_HEARTBEAT_FILE" not in env(init)


def test_sidecar_probe_off() -> None:
    docs = render({**EMBEDDED, "configManager": {"livenessProbe": {"enabled": False}}})
    for component in PODS:
        _, sidecar = init_and_sidecar(docs, component)
        assert "livenessProbe" not in sidecar
        assert "CONFIG_MANAGER_HEARTBEAT_FILE" not in env(sidecar)
        assert HEARTBEATS not in str(sidecar["volumeMounts"])
        assert "livenessProbe" in container(docs, component)  # the daemon's stays


def test_sidecar_probe_alone_keeps_the_heartbeat_volume() -> None:
    docs = render({**EMBEDDED, "devicePlugin": {"livenessProbe": {"enabled": False}},
                   "gfd": {"sleepInterval": "infinite"}})  # fmt: skip
    for component in PODS:
        spec = pod_spec(docs, component)
        assert "livenessProbe" not in spec["containers"][0]
        assert "livenessProbe" in spec["containers"][1]
        assert [v["name"] for v in spec["volumes"]].count("heartbeat") == 1


@pytest.mark.parametrize(
    ("values", "present"),
    [
        pytest.param({**EMBEDDED, "gfd": {"enabled": False}}, ["device-plugin"], id="no-gfd"),
        pytest.param({**EMBEDDED, "devicePlugin": {"enabled": False}}, ["gpu-feature-discovery"],
                     id="no-plugin"),
    ],
)  # fmt: skip
def test_with_one_daemon_off(values: dict[str, Any], present: list[str]) -> None:
    docs = render(values)
    running = [
        d["metadata"]["labels"]["app.kubernetes.io/component"]
        for d in docs
        if d["kind"] == "DaemonSet" and d["spec"]["template"]["spec"].get("initContainers")
    ]
    assert running == present
