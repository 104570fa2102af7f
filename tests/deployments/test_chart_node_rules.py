"""What the DaemonSets ask of a node, rule by rule, on the rendered chart.

Matrix: privileges (every container's securityContext and the pods' exactly, with the
defaults; no host namespaces; every hostPath named in docs/deployment.md's privileges
table); driver-root mounts propagate host mounts (HostToContainer) with the default and
a driver container's root; resource requests from the measured RSS, no limits; node
affinity that still matches a GPU node after GFD removed its own labels (a node
selector evaluator with its own table, and the label keys GFD writes, from the command).
"""

from __future__ import annotations

import re
import subprocess
import sys
from typing import Any

import pytest
from helm_chart import ROOT, pod_spec, render

COMPONENTS = ("device-plugin", "gpu-feature-discovery", "cdi-generator")
DEFAULTS = render()
DOCS = (ROOT / "docs" / "deployment.md").read_text()


def containers(docs: list[dict[str, Any]], component: str) -> list[dict[str, Any]]:
    return pod_spec(docs, component)["containers"]


# --- privileges ---------------------------------------------------------------------------

LEAST = {
    # Nothing: it only serves a socket and reads the devices the runtime injects.
    "device-plugin": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
    # Full PCI config space (vGPU labels) and MIG monitor devices: SYS_ADMIN only.
    "gpu-feature-discovery": {"capabilities": {"add": ["SYS_ADMIN"], "drop": ["ALL"]}},
    # Every device node under the driver root, which no runtime injects.
    "cdi-generator": {"privileged": True},
}


@pytest.mark.parametrize(
    ("values", "count"),
    [pytest.param({}, 1, id="defaults"), pytest.param({"cdi": {"imex": {"enabled": True}}}, 2,
                                                       id="imex-container-too")],
)  # fmt: skip
@pytest.mark.parametrize("component", COMPONENTS)
def test_security_contexts_with_the_defaults(
    component: str, values: dict[str, Any], count: int
) -> None:
    docs = render(values)
    spec = pod_spec(docs, component)
    assert "securityContext" not in spec  # podSecurityContext: {}
    expected = [LEAST[component]] * (count if component == "cdi-generator" else 1)
    assert [ctr["securityContext"] for ctr in spec["containers"]] == expected
    assert [ctr for ctr in spec.get("initContainers", [])] == []


@pytest.mark.parametrize("component", COMPONENTS)
def test_no_host_namespaces(component: str) -> None:
    spec = pod_spec(DEFAULTS, component)
    assert not {"hostPID", "hostNetwork", "hostIPC", "hostUsers"} & set(spec)


def privileges_table() -> str:
    """The privileges section of docs/deployment.md."""
    found = re.search(r"^### Privileges\n(.*?)(?=^#)", DOCS, re.M | re.S)
    assert found, "docs/deployment.md has no '### Privileges' section"
    return found.group(1)


@pytest.mark.parametrize(
    "values",
    [
        pytest.param({}, id="defaults"),
        pytest.param(
            {"nvidiaDriverRoot": "/run/nvidia/driver", "nvidiaDevRoot": "/"}, id="driver-container"
        ),
    ],
)
@pytest.mark.parametrize("component", COMPONENTS)
def test_every_privilege_is_documented(component: str, values: dict[str, Any]) -> None:
    """Each hostPath (by its container path) and each added privilege has its row."""
    table = privileges_table()
    rows = [line for line in table.splitlines() if line.startswith(f"| `{component}`")]
    assert rows, f"no row for {component}"
    docs = render(values)
    spec = pod_spec(docs, component)
    host_volumes = {v["name"] for v in spec["volumes"] if "hostPath" in v}
    for ctr in spec["containers"]:
        for mount in ctr["volumeMounts"]:
            if mount["name"] in host_volumes:
                assert any(f"`{mount['mountPath']}`" in row for row in rows), mount["mountPath"]
        context = ctr["securityContext"]
        for added in context.get("capabilities", {}).get("add", []):
            assert any(f"`{added}`" in row for row in rows), added
        if context.get("privileged"):
            assert any("`privileged`" in row for row in rows)


# --- driver roots propagate host mounts --------------------------------------------------

DRIVER_ROOTS = ("/driver-root", "/dev-root/dev")


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        pytest.param({}, {"cdi-generator": ["/driver-root"]}, id="defaults"),
        pytest.param(
            {"nvidiaDriverRoot": "/run/nvidia/driver"},
            {"device-plugin": ["/driver-root"], "cdi-generator": ["/driver-root"]},
            id="driver-container",
        ),
        pytest.param(
            {"nvidiaDriverRoot": "/run/nvidia/driver", "nvidiaDevRoot": "/",
             "cdi": {"imex": {"enabled": True}}},
            {"device-plugin": ["/driver-root"],
             "cdi-generator": ["/driver-root", "/dev-root/dev"] * 2},
            id="driver-container-dev-root-imex",
        ),
    ],
)  # fmt: skip
def test_driver_root_mounts_see_later_host_mounts(
    values: dict[str, Any], expected: dict[str, list[str]]
) -> None:
    """A driver container mounts the driver after these pods may have started: only
    HostToContainer shows it. Other mounts keep the default (None)."""
    docs = render(values)
    propagated: dict[str, list[str]] = {}
    for component in COMPONENTS:
        for ctr in containers(docs, component):
            for mount in ctr["volumeMounts"]:
                if mount["mountPath"] in DRIVER_ROOTS:
                    assert mount.get("mountPropagation") == "HostToContainer", mount
                    assert mount.get("readOnly") is True, mount
                    propagated.setdefault(component, []).append(mount["mountPath"])
                else:
                    assert "mountPropagation" not in mount, mount
    assert propagated == expected


# --- resources --------------------------------------------------------------------------------

# RSS measured in this repository (docs/deployment.md, "Resources"), in MiB: the plugin's
# daemon (bench/bench_plugin.py), GFD's periodic job with the NodeFeature output, the
# larger of its two (bench/run.py), the CDI generator's `generate --watch`, and
# config-manager's sidecar watching a Node (its containers, with a ConfigMap of configs).
MEASURED_MIB = {"device-plugin": 40, "gpu-feature-discovery": 51, "cdi-generator": 20,
                "config-manager": 48}  # fmt: skip
REQUESTS = {
    "device-plugin": {"cpu": "10m", "memory": "64Mi"},
    "gpu-feature-discovery": {"cpu": "10m", "memory": "80Mi"},
    "cdi-generator": {"cpu": "10m", "memory": "32Mi"},
    "config-manager": {"cpu": "10m", "memory": "64Mi"},
}


def mebibytes(quantity: str) -> float:
    number, unit = re.fullmatch(r"(\d+)(Mi|Gi)", quantity).groups()  # type: ignore[union-attr]
    return int(number) * (1024 if unit == "Gi" else 1)


@pytest.mark.parametrize("component", COMPONENTS)
def test_requests_with_headroom_and_no_limits(component: str) -> None:
    for ctr in containers(render({"cdi": {"imex": {"enabled": True}}}), component):
        assert ctr["resources"] == {"requests": REQUESTS[component]}
    # at least a quarter above the measured figure
    assert mebibytes(REQUESTS[component]["memory"]) >= 1.25 * MEASURED_MIB[component]


def test_config_manager_requests_with_headroom_and_no_limits() -> None:
    docs = render({"config": {"map": {"default": "version: v1\n"}}})
    for component in ("device-plugin", "gpu-feature-discovery"):
        spec = pod_spec(docs, component)
        ours = [c for c in spec["initContainers"] + spec["containers"]
                if c["command"] == ["config-manager"]]  # fmt: skip
        assert len(ours) == 2
        assert [c["resources"] for c in ours] == [{"requests": REQUESTS["config-manager"]}] * 2
        assert [c["resources"] for c in spec["containers"] if c not in ours] == [
            {"requests": REQUESTS[component]}
        ]
    assert mebibytes(REQUESTS["config-manager"]["memory"]) >= 1.25 * MEASURED_MIB["config-manager"]


def test_resources_documented() -> None:
    for component, requests in REQUESTS.items():
        assert f"{requests['memory']}" in DOCS, component
        assert f"~{MEASURED_MIB[component]} MiB" in DOCS, component


# --- node affinity ------------------------------------------------------------------------


def expression_matches(labels: dict[str, str], expression: dict[str, Any]) -> bool:
    """One NodeSelectorRequirement, as the scheduler evaluates it."""
    key, operator = expression["key"], expression["operator"]
    values = expression.get("values", [])
    if operator == "In":
        return key in labels and labels[key] in values
    if operator == "NotIn":
        return key not in labels or labels[key] not in values
    if operator == "Exists":
        return key in labels
    if operator == "DoesNotExist":
        return key not in labels
    if operator in ("Gt", "Lt"):
        if key not in labels or not labels[key].isdigit():
            return False
        value, bound = int(labels[key]), int(values[0])
        return value > bound if operator == "Gt" else value < bound
    raise ValueError(f"unknown operator {operator}")


def node_matches(labels: dict[str, str], affinity: dict[str, Any]) -> bool:
    """requiredDuringScheduling: terms ORed, a term's expressions ANDed."""
    required = affinity["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    terms = required["nodeSelectorTerms"]
    assert all("matchFields" not in term for term in terms)
    return any(
        all(expression_matches(labels, e) for e in term["matchExpressions"]) for term in terms
    )


def affinity_of(*terms: list[dict[str, Any]]) -> dict[str, Any]:
    selector = {"nodeSelectorTerms": [{"matchExpressions": t} for t in terms]}
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": selector}}


A_IN = {"key": "a", "operator": "In", "values": ["1"]}
B_EXISTS = {"key": "b", "operator": "Exists"}


@pytest.mark.parametrize(
    ("labels", "affinity", "matches"),
    [
        pytest.param({"a": "1"}, affinity_of([A_IN], [B_EXISTS]), True, id="or-first"),
        pytest.param({"b": ""}, affinity_of([A_IN], [B_EXISTS]), True, id="or-second"),
        pytest.param({"a": "2"}, affinity_of([A_IN], [B_EXISTS]), False, id="or-neither"),
        pytest.param({"a": "1"}, affinity_of([A_IN, B_EXISTS]), False, id="and-one-missing"),
        pytest.param({"a": "1", "b": "x"}, affinity_of([A_IN, B_EXISTS]), True, id="and-both"),
        pytest.param({}, affinity_of([{"key": "a", "operator": "NotIn", "values": ["1"]}]),
                     True, id="not-in-absent"),
        pytest.param({"a": "1"}, affinity_of([{"key": "a", "operator": "DoesNotExist"}]),
                     False, id="does-not-exist"),
        pytest.param({"a": "5"}, affinity_of([{"key": "a", "operator": "Gt", "values": ["4"]}]),
                     True, id="gt"),
        pytest.param({"a": "x"}, affinity_of([{"key": "a", "operator": "Lt", "values": ["4"]}]),
                     False, id="lt-not-a-number"),
    ],
)  # fmt: skip
def test_node_matches(labels: dict[str, str], affinity: dict[str, Any], matches: bool) -> None:
    assert node_matches(labels, affinity) is matches


def gfd_label_keys() -> set[str]:
    """Every key GFD writes on a few different simulated machines."""
    keys: set[str] = set()
    for profile in ("dgx-a100-mig", "vgpu", "gb200", "mixed"):
        result = subprocess.run(
            [sys.executable, "-m", "gfd", "--oneshot", "--nvml-mock", profile,
             "--mig-strategy", "mixed", "--output-file", "-"],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        keys |= {line.split("=", 1)[0] for line in result.stdout.splitlines()}
    return keys


GFD_KEYS = gfd_label_keys()
NFD_PCI = {"feature.node.kubernetes.io/pci-10de.present": "true"}
NFD_GRACE = {"feature.node.kubernetes.io/cpu-model.vendor_id": "NVIDIA"}
# Written by the GPU Operator (or by hand), never by GFD.
OPERATOR = {"nvidia.com/gpu.present": "true"}


def test_gfd_writes_only_its_own_namespace_and_not_gpu_present() -> None:
    assert "nvidia.com/gpu.product" in GFD_KEYS
    assert all(key.startswith("nvidia.com/") for key in GFD_KEYS), GFD_KEYS
    assert "nvidia.com/gpu.present" not in GFD_KEYS


@pytest.mark.parametrize("component", COMPONENTS)
def test_affinity_survives_gfd_removing_its_labels(component: str) -> None:
    """GFD removes its labels when it stops (the feature file goes with it): a DaemonSet
    pod that needed them could never be scheduled again to put them back."""
    affinity = pod_spec(DEFAULTS, component)["affinity"]
    terms = affinity["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"
    ]
    assert len(terms) > 1  # ORed: any one label is enough
    for term in terms:  # no term needs a label GFD writes
        assert not [
            e for e in term["matchExpressions"]
            if e["key"] in GFD_KEYS and e["operator"] in ("In", "Exists", "Gt", "Lt")
        ], term  # fmt: skip
    gfd_labels = dict.fromkeys(GFD_KEYS, "true")
    for labels in (NFD_PCI, NFD_GRACE, OPERATOR):
        assert node_matches({**labels, **gfd_labels}, affinity), labels
        assert node_matches(labels, affinity), labels  # GFD stopped and its labels went
    assert not node_matches(gfd_labels, affinity)  # GFD's labels alone never did it
    assert not node_matches({"feature.node.kubernetes.io/pci-8086.present": "true"}, affinity)
    # docs/deployment.md says why and warns of a node only the GPU Operator labelled
    assert "chicken-and-egg" in DOCS
