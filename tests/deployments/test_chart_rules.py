"""What the rendered objects say, rule by rule (docs/deployment.md#the-daemonsets).

Matrix: scheduling (tolerations, affinity, priority) on every DaemonSet; the plugin's env
(always-present, present-only-when-set, MIG monitor), mounts (MPS, driver root, config,
kubeletRoot) and its four security-context cases; GFD's env (downward API, gfd.* values),
mounts, security context and RBAC, with and without the API; the CDI DaemonSet's
commands, roots and mounts; the components switched off; the embedded ConfigMap; each
container's liveness probe on its heartbeat (defaults pinned, off, GFD's infinite
interval, timings).
"""

from __future__ import annotations

from typing import Any

import pytest
from helm_chart import (
    EMBEDDED_CONFIGS,
    NAMESPACE,
    container,
    daemonset,
    env,
    find,
    load_tool,
    mounts,
    pod_spec,
    render,
)

COMPONENTS = ("device-plugin", "gpu-feature-discovery", "cdi-generator")
DEFAULTS = render()
# The chart runs, by default, the image tools/build_image.py builds by default.
BUILT_IMAGE = load_tool("build_image").default_tag()
HEARTBEATS = "/run/gpu-node-toolkit/heartbeat"
HEARTBEAT_MOUNT = {
    HEARTBEATS: {"readOnly": False, "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}}
}

# --- scheduling: every DaemonSet -------------------------------------------------------


@pytest.mark.parametrize("component", COMPONENTS)
def test_tolerations(component: str) -> None:
    assert pod_spec(DEFAULTS, component)["tolerations"] == [
        {"key": "CriticalAddonsOnly", "operator": "Exists"},
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
    ]


@pytest.mark.parametrize("component", COMPONENTS)
def test_affinity_any_of_three_labels(component: str) -> None:
    affinity = pod_spec(DEFAULTS, component)["affinity"]["nodeAffinity"]
    terms = affinity["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    # one term per label: terms are ORed, expressions inside a term ANDed
    assert [t["matchExpressions"] for t in terms] == [
        [{"key": key, "operator": "In", "values": [value]}]
        for key, value in (
            ("feature.node.kubernetes.io/pci-10de.present", "true"),
            ("feature.node.kubernetes.io/cpu-model.vendor_id", "NVIDIA"),
            ("nvidia.com/gpu.present", "true"),
        )
    ]


@pytest.mark.parametrize("component", COMPONENTS)
def test_priority_image_and_namespace(component: str) -> None:
    ds = daemonset(DEFAULTS, component)
    assert ds["metadata"]["namespace"] == NAMESPACE
    spec = ds["spec"]["template"]["spec"]
    assert spec["priorityClassName"] == "system-node-critical"
    for ctr in spec["containers"]:
        assert ctr["image"] == BUILT_IMAGE == "localhost/gpu-node-toolkit:0.1.0"
        assert ctr["imagePullPolicy"] == "IfNotPresent"


def test_selectors_are_disjoint() -> None:
    """Each DaemonSet selects only its own pods."""
    selectors = [
        tuple(sorted(daemonset(DEFAULTS, c)["spec"]["selector"]["matchLabels"].items()))
        for c in COMPONENTS
    ]
    assert len(set(selectors)) == len(COMPONENTS)
    for component in COMPONENTS:
        ds = daemonset(DEFAULTS, component)
        labels = ds["spec"]["template"]["metadata"]["labels"]
        assert ds["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_overrides_reach_every_pod() -> None:
    docs = render(
        {
            "image": {"repository": "registry.example/gnt", "tag": "dev"},
            "runtimeClassName": "nvidia",
            "nodeSelector": {"pool": "gpu"},
            "imagePullSecrets": [{"name": "pull"}],
            "resources": {"limits": {"memory": "200Mi"}},
            "gfd": {"resources": None},  # null: falls back to the top-level resources
            "cdi": {"resources": {"limits": {"memory": "100Mi"}}},
        }
    )
    for component in COMPONENTS:
        spec = pod_spec(docs, component)
        assert spec["runtimeClassName"] == "nvidia"
        assert spec["nodeSelector"] == {"pool": "gpu"}
        assert spec["imagePullSecrets"] == [{"name": "pull"}]
        assert spec["containers"][0]["image"] == "registry.example/gnt:dev"
    top = {"limits": {"memory": "200Mi"}, "requests": {"cpu": "10m", "memory": "64Mi"}}
    assert container(docs, "device-plugin")["resources"] == top
    assert container(docs, "gpu-feature-discovery")["resources"] == top
    # A values map merges into the default: the default requests stay.
    assert container(docs, "cdi-generator")["resources"] == {
        "limits": {"memory": "100Mi"},
        "requests": {"cpu": "10m", "memory": "32Mi"},
    }


# --- the device plugin ------------------------------------------------------------------

ALWAYS = {
    "MPS_ROOT": "/run/nvidia/mps",
    "DP_HEARTBEAT_FILE": f"{HEARTBEATS}/nvidia-device-plugin-ctr",
    "NVIDIA_VISIBLE_DEVICES": "all",
    "NVIDIA_DRIVER_CAPABILITIES": "compute,utility",
}


@pytest.mark.parametrize(
    ("values", "extra"),
    [
        pytest.param({}, {}, id="defaults-nothing-optional"),
        pytest.param({"migStrategy": "none"}, {"MIG_STRATEGY": "none"}, id="mig-none"),
        pytest.param(
            {"migStrategy": "single"},
            {"MIG_STRATEGY": "single", "NVIDIA_MIG_MONITOR_DEVICES": "all"},
            id="mig-single-monitors",
        ),
        pytest.param({"failOnInitError": False}, {"FAIL_ON_INIT_ERROR": "false"}, id="fail-false"),
        pytest.param(
            {"compatWithCPUManager": False}, {"PASS_DEVICE_SPECS": "false"}, id="cpu-manager-false"
        ),
        pytest.param(
            {"deviceListStrategy": "cdi-annotations,cdi-cri"},
            {"DEVICE_LIST_STRATEGY": "cdi-annotations,cdi-cri"},
            id="device-list",
        ),
        pytest.param({"deviceIDStrategy": "index"}, {"DEVICE_ID_STRATEGY": "index"}, id="id"),
        pytest.param(
            {"nvidiaDriverRoot": "/run/nvidia/driver", "nvidiaDevRoot": "/"},
            {"NVIDIA_DRIVER_ROOT": "/run/nvidia/driver", "NVIDIA_DEV_ROOT": "/"},
            id="roots",
        ),
        pytest.param(
            {"gdrcopyEnabled": True, "gdsEnabled": False, "mofedEnabled": True},
            {"GDRCOPY_ENABLED": "true", "GDS_ENABLED": "false", "MOFED_ENABLED": "true"},
            id="gdr-gds-mofed",
        ),
        pytest.param(
            {"deviceDiscoveryStrategy": "nvml"}, {"DEVICE_DISCOVERY_STRATEGY": "nvml"}, id="disc"
        ),
        pytest.param(
            {"config": {"map": {"only": "version: v1\n"}}},
            {"CONFIG_FILE": "/config/config.yaml"},
            id="config-map-single",
        ),
        pytest.param(
            {"config": {"map": EMBEDDED_CONFIGS}},
            {"CONFIG_FILE": "/config/config.yaml", "NVIDIA_MIG_MONITOR_DEVICES": "all"},
            id="config-map-with-mig-entry",
        ),
        pytest.param(
            {"config": {"name": "ext"}},
            {"CONFIG_FILE": "/config/config.yaml", "NVIDIA_MIG_MONITOR_DEVICES": "all"},
            id="config-name-unreadable-so-mig-possible",
        ),
        pytest.param(
            {
                "config": {
                    "map": {"a": "version: v1\n", "b": "version: v1\n"},
                    "fallbackStrategies": ["empty"],
                }
            },
            {"CONFIG_FILE": "/config/config.yaml"},  # config-manager may write the empty one
            id="config-map-empty-fallback-still-a-file",
        ),
    ],
)
def test_plugin_env_only_when_set(values: dict[str, Any], extra: dict[str, str]) -> None:
    assert env(container(render(values), "device-plugin")) == {**ALWAYS, **extra}


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        pytest.param(
            {}, {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}, id="default"
        ),
        pytest.param({"migStrategy": "none"}, None, id="mig-none-still-dropped"),
        pytest.param({"securityContext": {"runAsUser": 0}}, {"runAsUser": 0}, id="custom-wins"),
        pytest.param(
            {"securityContext": {"runAsUser": 0}, "compatWithCPUManager": True},
            {"runAsUser": 0},
            id="custom-beats-cpu-manager",
        ),
        pytest.param(
            {"compatWithCPUManager": True, "migStrategy": "mixed"},
            {"privileged": True},
            id="cpu-manager-privileged",
        ),
        pytest.param({"migStrategy": "mixed"}, {"capabilities": {"add": ["SYS_ADMIN"]}}, id="mig"),
        pytest.param(
            {"deviceListStrategy": "envvar,volume-mounts"},
            {"capabilities": {"add": ["SYS_ADMIN"]}},
            id="volume-mounts",
        ),
        pytest.param(
            {"config": {"map": {"default": "version: v1\n"}}},
            {"capabilities": {"add": ["SYS_ADMIN"]}},
            id="configmap",
        ),
        pytest.param(
            {
                "config": {
                    "map": {
                        "default": "version: v1\nflags:\n  plugin:\n"
                        "    deviceListStrategy: volume-mounts\n"
                    }
                }
            },
            {"capabilities": {"add": ["SYS_ADMIN"]}},
            id="configmap-volume-mounts",
        ),
    ],
)
def test_plugin_security_context(values: dict[str, Any], expected: dict | None) -> None:
    default = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
    got = container(render(values), "device-plugin")["securityContext"]
    assert got == (expected if expected is not None else default)


def test_plugin_mounts_default() -> None:
    assert mounts(DEFAULTS, "device-plugin") == {
        "/var/lib/kubelet/device-plugins": {
            "readOnly": False,
            "hostPath": {"path": "/var/lib/kubelet/device-plugins", "type": "Directory"},
        },
        "/dev/shm": {"readOnly": False, "hostPath": {"path": "/run/nvidia/mps/shm"}},
        "/mps": {
            "readOnly": False,
            "hostPath": {"path": "/run/nvidia/mps", "type": "DirectoryOrCreate"},
        },
        "/var/run/cdi": {
            "readOnly": False,
            "hostPath": {"path": "/var/run/cdi", "type": "DirectoryOrCreate"},
        },
        **HEARTBEAT_MOUNT,
    }
    assert container(DEFAULTS, "device-plugin")["args"] == [
        "--kubelet-socket=/var/lib/kubelet/device-plugins/kubelet.sock"
    ]
    assert pod_spec(DEFAULTS, "device-plugin")["automountServiceAccountToken"] is False


def test_plugin_mps_root_moves_both_mounts() -> None:
    docs = render({"mps": {"root": "/srv/mps"}})
    found = mounts(docs, "device-plugin")
    assert found["/mps"]["hostPath"]["path"] == "/srv/mps"
    assert found["/dev/shm"]["hostPath"]["path"] == "/srv/mps/shm"
    assert env(container(docs, "device-plugin"))["MPS_ROOT"] == "/srv/mps"


@pytest.mark.parametrize("root", ["/var/lib/k0s/kubelet", "/var/lib/k0s/kubelet/"])
def test_kubelet_root(root: str) -> None:
    """Sockets follow --kubelet-socket's directory, at the node's path."""
    docs = render({"kubeletRoot": root})
    assert container(docs, "device-plugin")["args"] == [
        "--kubelet-socket=/var/lib/k0s/kubelet/device-plugins/kubelet.sock"
    ]
    assert mounts(docs, "device-plugin")["/var/lib/k0s/kubelet/device-plugins"] == {
        "readOnly": False,
        "hostPath": {"path": "/var/lib/k0s/kubelet/device-plugins", "type": "Directory"},
    }


def test_plugin_driver_root_mount() -> None:
    docs = render({"nvidiaDriverRoot": "/run/nvidia/driver"})
    assert mounts(docs, "device-plugin")["/driver-root"] == {
        "readOnly": True,
        "hostPath": {"path": "/run/nvidia/driver", "type": "Directory"},
        "mountPropagation": "HostToContainer",
    }
    assert "/driver-root" not in mounts(DEFAULTS, "device-plugin")


# --- the config file --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "configmap"),
    [
        pytest.param({"map": EMBEDDED_CONFIGS}, "gnt-gpu-node-toolkit-configs", id="embedded"),
        pytest.param({"map": EMBEDDED_CONFIGS, "default": "mig"}, "gnt-gpu-node-toolkit-configs",
                     id="explicit-default"),
        pytest.param({"name": "ext"}, "ext", id="external"),
    ],
)  # fmt: skip
def test_config_volume(config: dict[str, Any], configmap: str) -> None:
    """config-manager writes /config/config.yaml into an emptyDir of the pod, which the
    daemon mounts read-only; the ConfigMap itself is config-manager's alone
    (test_chart_config_manager.py has the rest)."""
    docs = render({"config": config})
    for component in ("device-plugin", "gpu-feature-discovery"):
        found = mounts(docs, component)
        assert found["/config"] == {
            "readOnly": True,
            "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"},
        }
        assert "/available-configs" not in found
        volumes = {v["name"]: v for v in pod_spec(docs, component)["volumes"]}
        assert volumes["available-configs"]["configMap"] == {"name": configmap}
        assert env(container(docs, component))["CONFIG_FILE"] == "/config/config.yaml"


def test_embedded_configmap_and_checksum() -> None:
    docs = render({"config": {"map": EMBEDDED_CONFIGS}})
    configmap = find(docs, "ConfigMap", "config")
    assert configmap is not None
    assert configmap["metadata"]["name"] == "gnt-gpu-node-toolkit-configs"
    assert configmap["data"] == EMBEDDED_CONFIGS
    sums = {
        daemonset(docs, c)["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
        for c in ("device-plugin", "gpu-feature-discovery")
    }
    assert len(sums) == 1  # a change in the map rolls both
    assert find(render({"config": {"name": "ext"}}), "ConfigMap", "config") is None


# --- GFD --------------------------------------------------------------------------------

DOWNWARD = {
    "NODE_NAME": {"fieldRef": {"fieldPath": "spec.nodeName"}},
    "NAMESPACE": {"fieldRef": {"fieldPath": "metadata.namespace"}},
    "POD_NAME": {"fieldRef": {"fieldPath": "metadata.name"}},
}
GFD_RUNTIME = {"NVIDIA_VISIBLE_DEVICES": "all", "NVIDIA_DRIVER_CAPABILITIES": "utility"}
GFD_HEARTBEAT = {"GFD_HEARTBEAT_FILE": f"{HEARTBEATS}/gpu-feature-discovery-ctr"}


@pytest.mark.parametrize(
    ("values", "extra"),
    [
        pytest.param({}, {}, id="defaults"),
        pytest.param(
            {"gfd": {"noTimestamp": True, "sleepInterval": "5m"}},
            {"GFD_NO_TIMESTAMP": "true", "GFD_SLEEP_INTERVAL": "5m"},
            id="gfd-values-apply",  # upstream read .Values.noTimestamp: never applied
        ),
        pytest.param(
            {"gfd": {"noTimestamp": False, "sleepInterval": "infinite"}},
            {
                "GFD_NO_TIMESTAMP": "false",
                "GFD_SLEEP_INTERVAL": "infinite",
                "GFD_HEARTBEAT_FILE": None,
            },  # no periodic pass: no heartbeat
            id="gfd-values-false-infinite",
        ),
        pytest.param(
            {"migStrategy": "mixed", "failOnInitError": True, "deviceDiscoveryStrategy": "auto"},
            {
                "MIG_STRATEGY": "mixed",
                "FAIL_ON_INIT_ERROR": "true",
                "NVIDIA_MIG_MONITOR_DEVICES": "all",
                "DEVICE_DISCOVERY_STRATEGY": "auto",
            },
            id="shared-values",
        ),
        pytest.param(
            {"config": {"map": {"default": "version: v1\n"}}},
            {"CONFIG_FILE": "/config/config.yaml"},
            id="config",
        ),
        pytest.param(
            {"compatWithCPUManager": True, "deviceListStrategy": "cdi-cri", "gdsEnabled": True},
            {},
            id="plugin-only-values-stay-out",
        ),
    ],
)
def test_gfd_env(values: dict[str, Any], extra: dict[str, Any]) -> None:
    expected = {**DOWNWARD, **GFD_RUNTIME, **GFD_HEARTBEAT, **extra}
    assert env(container(render(values), "gpu-feature-discovery")) == {
        name: value for name, value in expected.items() if value is not None
    }


@pytest.mark.parametrize(
    ("setting", "args", "api"),
    [
        pytest.param("auto", ["--use-node-feature-api=auto"], True, id="auto-default"),
        pytest.param(True, ["--use-node-feature-api=true"], True, id="true"),
        pytest.param(False, ["--use-node-feature-api=false"], False, id="false-file-only"),
        pytest.param(None, None, True, id="null-passes-nothing"),
    ],
)
def test_gfd_output_selection_and_rbac(setting: object, args: list[str] | None, api: bool) -> None:
    docs = render({"gfd": {"useNodeFeatureAPI": setting}})
    ctr = container(docs, "gpu-feature-discovery")
    assert ctr.get("args") == args
    spec = pod_spec(docs, "gpu-feature-discovery")
    name = "gnt-gpu-node-toolkit-gpu-feature-discovery"
    kinds = {(d["kind"], d["metadata"]["name"]) for d in docs if d["kind"] != "DaemonSet"}
    rbac = {("ServiceAccount", name), ("Role", name), ("RoleBinding", name)}
    if api:
        assert spec["serviceAccountName"] == name
        assert "automountServiceAccountToken" not in spec
        assert rbac <= kinds
    else:
        assert "serviceAccountName" not in spec
        assert spec["automountServiceAccountToken"] is False
        assert not rbac & kinds


def test_gfd_rbac_rules() -> None:
    role = find(DEFAULTS, "Role", "gpu-feature-discovery")
    binding = find(DEFAULTS, "RoleBinding", "gpu-feature-discovery")
    assert role is not None and binding is not None
    assert role["rules"] == [
        {
            "apiGroups": ["nfd.k8s-sigs.io"],
            "resources": ["nodefeatures"],
            "verbs": ["get", "create", "update", "delete"],  # test_chart_rbac.py derives them
        },
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]},
    ]
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": role["metadata"]["name"],
    }
    assert binding["subjects"] == [
        {
            "kind": "ServiceAccount",
            "name": pod_spec(DEFAULTS, "gpu-feature-discovery")["serviceAccountName"],
            "namespace": NAMESPACE,
        }
    ]


def test_gfd_mounts() -> None:
    assert mounts(DEFAULTS, "gpu-feature-discovery") == {
        "/etc/kubernetes/node-feature-discovery/features.d": {
            "readOnly": False,
            "hostPath": {
                "path": "/etc/kubernetes/node-feature-discovery/features.d",
                "type": "DirectoryOrCreate",
            },
        },
        "/sys": {"readOnly": True, "hostPath": {"path": "/sys", "type": "Directory"}},
        **HEARTBEAT_MOUNT,
    }
    assert container(DEFAULTS, "gpu-feature-discovery")["command"] == ["gpu-feature-discovery"]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        pytest.param(
            {}, {"capabilities": {"add": ["SYS_ADMIN"], "drop": ["ALL"]}}, id="sys-admin-by-default"
        ),
        pytest.param(
            {"gfd": {"securityContext": {"privileged": True}}},
            {"privileged": True, "capabilities": {"add": ["SYS_ADMIN"], "drop": ["ALL"]}},
            id="a-map-merges-into-the-default",
        ),
        pytest.param(
            {"gfd": {"securityContext": {"privileged": True, "capabilities": None}}},
            {"privileged": True},
            id="upstream-privileged-on-request",
        ),
        pytest.param(
            {"gfd": {"securityContext": None}},
            {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
            id="null-then-dropped",
        ),
        pytest.param(
            {"gfd": {"securityContext": None}, "migStrategy": "single"},
            {"capabilities": {"add": ["SYS_ADMIN"]}},
            id="null-then-mig-sys-admin",
        ),
        pytest.param(
            {"gfd": {"securityContext": None}, "compatWithCPUManager": True},
            {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
            id="cpu-manager-is-the-plugins-business",
        ),
    ],
)
def test_gfd_security_context(values: dict[str, Any], expected: dict[str, Any]) -> None:
    assert container(render(values), "gpu-feature-discovery")["securityContext"] == expected


# --- the CDI generator ------------------------------------------------------------------

CDI_ENV = {"NVIDIA_VISIBLE_DEVICES": "void"}  # nothing injected: all comes from /driver-root
MOUNTED = ["--driver-root-ctr-path=/driver-root"]


@pytest.mark.parametrize(
    ("values", "commands"),
    [
        pytest.param(
            {},
            [["generate", "--output=/var/run/cdi/nvidia.yaml", "--watch", "--driver-root=/",
              *MOUNTED]],
            id="defaults",
        ),
        pytest.param(
            {"cdi": {"imex": {"enabled": True}, "interval": "10s"}},
            [
                ["generate", "--output=/var/run/cdi/nvidia.yaml",
                 "--watch", "--interval=10s", "--driver-root=/", *MOUNTED],
                ["generate", "--mode=imex", "--output=/var/run/cdi/nvidia-imex.yaml",
                 "--watch", "--interval=10s", "--driver-root=/", *MOUNTED],
            ],
            id="imex-and-interval",
        ),
        pytest.param(
            {"nvidiaDriverRoot": "/run/nvidia/driver"},
            [["generate", "--output=/var/run/cdi/nvidia.yaml", "--watch",
              "--driver-root=/run/nvidia/driver", *MOUNTED]],
            id="driver-root",
        ),
        pytest.param(
            {"nvidiaDriverRoot": "/run/nvidia/driver", "nvidiaDevRoot": "/"},
            [["generate", "--output=/var/run/cdi/nvidia.yaml", "--watch",
              "--driver-root=/run/nvidia/driver", *MOUNTED, "--dev-root=/",
              "--dev-root-ctr-path=/dev-root"]],
            id="driver-container-dev-root-on-the-host",
        ),
        pytest.param(
            {"nvidiaDriverRoot": "/run/nvidia/driver", "nvidiaDevRoot": "/run/nvidia/driver/"},
            [["generate", "--output=/var/run/cdi/nvidia.yaml", "--watch",
              "--driver-root=/run/nvidia/driver", *MOUNTED]],
            id="dev-root-same-as-driver-root",
        ),
    ],
)  # fmt: skip
def test_cdi_commands(values: dict[str, Any], commands: list[list[str]]) -> None:
    docs = render(values)
    ctrs = pod_spec(docs, "cdi-generator")["containers"]
    assert [c["command"] for c in ctrs] == [["nvidia-cdi"]] * len(commands)
    # each container its own heartbeat, named after it
    assert [c["args"] for c in ctrs] == [
        [*args, f"--heartbeat-file={HEARTBEATS}/{c['name']}"]
        for c, args in zip(ctrs, commands, strict=True)
    ]
    assert [env(c) for c in ctrs] == [CDI_ENV] * len(commands)
    assert [c["securityContext"] for c in ctrs] == [{"privileged": True}] * len(commands)
    assert pod_spec(docs, "cdi-generator")["automountServiceAccountToken"] is False


@pytest.mark.parametrize(
    ("values", "driver_root", "dev"),
    [
        pytest.param({}, "/", None, id="defaults"),
        pytest.param({"nvidiaDriverRoot": "/run/nvidia/driver"}, "/run/nvidia/driver", None,
                     id="driver-container"),
        pytest.param({"nvidiaDriverRoot": "/run/nvidia/driver", "nvidiaDevRoot": "/"},
                     "/run/nvidia/driver", "/dev", id="dev-root-on-the-host"),
        pytest.param({"nvidiaDevRoot": "/run/nvidia/dev-root/"}, "/", "/run/nvidia/dev-root/dev",
                     id="dev-root-of-its-own"),
    ],
)  # fmt: skip
def test_cdi_mounts(values: dict[str, Any], driver_root: str, dev: str | None) -> None:
    """The host's roots are mounted read-only where --*-ctr-path says; the spec directory
    read-write at its host path."""
    expected = {
        "/var/run/cdi": {
            "readOnly": False,
            "hostPath": {"path": "/var/run/cdi", "type": "DirectoryOrCreate"},
        },
        "/driver-root": {
            "readOnly": True,
            "hostPath": {"path": driver_root, "type": "Directory"},
            "mountPropagation": "HostToContainer",
        },
    }
    if dev is not None:
        expected["/dev-root/dev"] = {
            "readOnly": True,
            "hostPath": {"path": dev, "type": "Directory"},
            "mountPropagation": "HostToContainer",
        }
    assert mounts(render(values), "cdi-generator") == {**expected, **HEARTBEAT_MOUNT}


def test_plugin_and_cdi_share_the_spec_directory() -> None:
    """The generator writes where the plugin looks (its --cdi-spec-dir default)."""
    plugin = mounts(DEFAULTS, "device-plugin")["/var/run/cdi"]
    generator = mounts(DEFAULTS, "cdi-generator")["/var/run/cdi"]
    assert plugin == generator


# --- components on and off --------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "present"),
    [
        pytest.param({}, set(COMPONENTS), id="all-by-default"),
        pytest.param({"gfd": {"enabled": False}}, {"device-plugin", "cdi-generator"}, id="no-gfd"),
        pytest.param({"cdi": {"enabled": False}}, {"device-plugin", "gpu-feature-discovery"},
                     id="no-cdi"),
        pytest.param({"devicePlugin": {"enabled": False}},
                     {"gpu-feature-discovery", "cdi-generator"}, id="no-plugin"),
    ],
)  # fmt: skip
def test_components(values: dict[str, Any], present: set[str]) -> None:
    docs = render(values)
    found = {
        d["metadata"]["labels"]["app.kubernetes.io/component"]
        for d in docs
        if d["kind"] == "DaemonSet"
    }
    assert found == present
    if "gpu-feature-discovery" not in present:
        assert {d["kind"] for d in docs} == {"DaemonSet"}  # no RBAC either


# --- liveness probes on the heartbeats ---------------------------------------------------

TIMINGS = {"initialDelaySeconds": 10, "periodSeconds": 30, "timeoutSeconds": 10,
           "failureThreshold": 3}  # fmt: skip


def probe(name: str) -> dict[str, Any]:
    check = ["python3", "-m", "nvlib.heartbeat", "check", f"{HEARTBEATS}/{name}"]
    return {"exec": {"command": check}, **TIMINGS}


@pytest.mark.parametrize(
    ("component", "names"),
    [
        pytest.param("device-plugin", ["nvidia-device-plugin-ctr"], id="device-plugin"),
        pytest.param("gpu-feature-discovery", ["gpu-feature-discovery-ctr"], id="gfd"),
        pytest.param("cdi-generator", ["nvidia-cdi-generate", "nvidia-cdi-generate-imex"],
                     id="cdi-with-imex"),
    ],
)  # fmt: skip
def test_liveness_probes_by_default(component: str, names: list[str]) -> None:
    """Each container checks its own heartbeat, in an emptyDir of its pod; no probe
    carries its own limit: each command writes its interval into the heartbeat."""
    docs = render({"cdi": {"imex": {"enabled": True}}})
    ctrs = pod_spec(docs, component)["containers"]
    assert [c["name"] for c in ctrs] == names
    assert [c["livenessProbe"] for c in ctrs] == [probe(name) for name in names]
    for index in range(len(ctrs)):
        assert mounts(docs, component, index)[HEARTBEATS] == HEARTBEAT_MOUNT[HEARTBEATS]


@pytest.mark.parametrize(
    ("values", "component"),
    [
        pytest.param({"devicePlugin": {"livenessProbe": {"enabled": False}}}, "device-plugin",
                     id="device-plugin-off"),
        pytest.param({"gfd": {"livenessProbe": {"enabled": False}}}, "gpu-feature-discovery",
                     id="gfd-off"),
        pytest.param({"gfd": {"sleepInterval": "infinite"}}, "gpu-feature-discovery",
                     id="gfd-infinite-no-periodic-pass"),
        pytest.param({"cdi": {"livenessProbe": {"enabled": False}}}, "cdi-generator",
                     id="cdi-off"),
    ],
)  # fmt: skip
def test_no_probe_no_heartbeat(values: dict[str, Any], component: str) -> None:
    """Off: no probe, and nothing of the heartbeat (flag, variable, mount, volume) left."""
    docs = render(values)
    spec = pod_spec(docs, component)
    assert "heartbeat" not in str(spec)
    assert all("livenessProbe" not in c for c in spec["containers"])
    others = [c for c in COMPONENTS if c != component]
    assert all("livenessProbe" in container(docs, c) for c in others)


def test_probe_timings_from_values() -> None:
    docs = render({"gfd": {"sleepInterval": "5m", "livenessProbe": {"periodSeconds": 60,
                   "failureThreshold": 5, "initialDelaySeconds": None}}})  # fmt: skip
    assert container(docs, "gpu-feature-discovery")["livenessProbe"] == {
        "exec": probe("gpu-feature-discovery-ctr")["exec"],
        "periodSeconds": 60,
        "timeoutSeconds": 10,
        "failureThreshold": 5,
    }
