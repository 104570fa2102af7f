"""GFD's Role, and config-manager's ClusterRole, grant exactly what each uses: no verb or
resource more, none less.

What they use is measured, not listed: this module runs the NodeFeature test modules
(NODEFEATURE_TESTS) in a child pytest with $KUBEFAKE_REQUEST_LOG set, so that every
fake API server they start (tests/gfd/kubefake.py) logs every request GFD sends, and
maps each to the RBAC rule the apiserver's authorizer checks; then the same for the
config-manager modules (CONFIG_MANAGER_TESTS) and the Node API double they start
(tests/support/node_api.py). Running them here, not collecting from whatever ran
before, keeps the result the same under any test order or selection.

Not in the Role, on purpose: discovery (GET /api, /apis, /apis/<group>[/<version>])
is a non-resource request that the default `system:discovery` ClusterRole allows every
authenticated user. In it without a request: `delete` on a resource whose create or
update body sets ownerReferences, which the OwnerReferencesPermissionEnforcement
admission plugin demands, and `update` on `<owner>/finalizers` for an owner reference
with blockOwnerDeletion (GFD sets none).
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from helm_chart import NAMESPACE, ROOT, VALUE_SETS, daemonset, find, pod_spec, render

# The modules whose fake API servers see only what GFD's code sends.
NODEFEATURE_TESTS = (
    "tests/gfd/test_nodefeature.py",
    "tests/gfd/test_daemon.py",
    "tests/e2e/test_gfd_cli.py",
    "tests/e2e/test_bad_input.py",
    "tests/gfd/test_metrics.py",
)
# Modules that start a fake API server but send hand-made requests (not GFD's).
NOT_GFD_REQUESTS = ("tests/gfd/test_nodefeature_crd.py",)
# GFD's and config-manager's code again, run inside the container image: a subset of the
# requests above (a oneshot each), not rerun here because it builds the image.
GFD_IN_THE_IMAGE = ("tests/e2e/test_image.py",)
# The modules whose Node API doubles see only what config-manager's code sends.
CONFIG_MANAGER_TESTS = ("tests/configmanager/test_node.py", "tests/e2e/test_config_manager.py")

Rule = tuple[str, str, str]  # (apiGroup, resource[/subresource], verb)

# Owner kinds GFD may name -> (apiGroup, resource), for blockOwnerDeletion's finalizers rule.
OWNER_RESOURCES = {"DaemonSet": ("apps", "daemonsets"), "Pod": ("", "pods")}


def rbac_rule(method: str, path: str, query: dict[str, list[str]]) -> tuple[Rule, bool] | None:
    """The rule the authorizer checks for a request and whether it is namespaced; None
    for discovery. Raises ValueError for any other non-resource path."""
    parts = [p for p in path.split("/") if p]
    if parts[:1] == ["api"] and len(parts) <= 2:
        return None
    if parts[:1] == ["apis"] and len(parts) <= 3:
        return None
    if parts[:1] == ["api"]:
        group, rest = "", parts[2:]
    elif parts[:1] == ["apis"]:
        group, rest = parts[1], parts[3:]
    else:
        raise ValueError(f"{method} {path}: not a resource or discovery request")
    namespaced = rest[:1] == ["namespaces"] and len(rest) > 2
    if namespaced:
        rest = rest[2:]
    resource, name = rest[0], rest[1] if len(rest) > 1 else None
    if len(rest) > 2:
        resource = f"{resource}/{rest[2]}"
    watch = query.get("watch", [""])[0] in ("true", "1")
    verbs = {
        "GET": "watch" if watch else ("get" if name else "list"),
        "POST": "create",
        "PUT": "update",
        "PATCH": "patch",
        "DELETE": "delete" if name else "deletecollection",
    }
    return (group, resource, verbs[method]), namespaced


def admission_rules(rule: Rule, owners: list[dict[str, Any]]) -> list[Rule]:
    """What OwnerReferencesPermissionEnforcement checks for a body that sets owners."""
    group, resource, verb = rule
    if verb not in ("create", "update") or not owners:
        return []
    needed = [(group, resource, "delete")]
    for owner in owners:
        if owner.get("blockOwnerDeletion"):
            owner_group, owner_resource = OWNER_RESOURCES[owner["kind"]]
            needed.append((owner_group, f"{owner_resource}/finalizers", "update"))
    return needed


@functools.cache
def logged_requests(modules: tuple[str, ...]) -> tuple[dict[str, Any], ...]:
    """Every request the fakes of these test modules were sent, as they logged them."""
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "requests.jsonl"
        env = {**os.environ, "KUBEFAKE_REQUEST_LOG": str(log)}
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *modules],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert result.returncode == 0, f"{modules} failed:\n{result.stdout[-3000:]}"
        return tuple(json.loads(line) for line in log.read_text().splitlines())


def gfd_requests() -> tuple[dict[str, Any], ...]:
    """Every request GFD sent in NODEFEATURE_TESTS."""
    return logged_requests(NODEFEATURE_TESTS)


def config_manager_requests() -> tuple[dict[str, Any], ...]:
    """Every request config-manager sent in CONFIG_MANAGER_TESTS."""
    return logged_requests(CONFIG_MANAGER_TESTS)


def rules_of(requests: tuple[dict[str, Any], ...], *, namespaced: bool) -> dict[Rule, str]:
    """rule -> why it is needed (the first request or admission check that needs it); every
    request namespaced (a Role's) or every one cluster-wide (a ClusterRole's)."""
    used: dict[Rule, str] = {}
    for request in requests:
        query = {k: [v] for k, v in request["query"].items()}
        found = rbac_rule(request["method"], request["path"], query)
        if found is None:
            continue
        rule, in_namespace = found
        kind = "namespaced" if namespaced else "cluster-wide"
        assert in_namespace is namespaced, f"{request}: not {kind}, as the role it needs is"
        used.setdefault(rule, f"{request['method']} {request['path']}")
        for extra in admission_rules(rule, request.get("ownerReferences") or []):
            used.setdefault(extra, f"ownerReferences in {request['method']} {request['path']}")
    return used


@functools.cache
def used_rules() -> dict[Rule, str]:
    """rule -> why GFD needs it: namespaced only, for a Role."""
    return rules_of(gfd_requests(), namespaced=True)


@functools.cache
def config_manager_rules() -> dict[Rule, str]:
    """rule -> why config-manager needs it: a Node is cluster-wide, so a ClusterRole."""
    return rules_of(config_manager_requests(), namespaced=False)


def granted_rules(
    docs: list[dict[str, Any]], kind: str = "Role", component: str = "gpu-feature-discovery"
) -> set[Rule]:
    role = find(docs, kind, component)
    assert role is not None, f"no {kind} for {component}"
    granted = set()
    for rule in role["rules"]:
        assert set(rule) == {"apiGroups", "resources", "verbs"}, rule  # no names, no URLs
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                granted |= {(group, resource, verb) for verb in rule["verbs"]}
    assert not any("*" in part for rule in granted for part in rule), granted
    return granted


# --- the mapping, as a table ----------------------------------------------------------------

NF = "/apis/nfd.k8s-sigs.io/v1alpha1/namespaces/ns/nodefeatures"


@pytest.mark.parametrize(
    ("method", "path", "query", "expected"),
    [
        ("GET", "/api", "", None),
        ("GET", "/api/v1", "", None),
        ("GET", "/apis", "", None),
        ("GET", "/apis/nfd.k8s-sigs.io", "", None),
        ("GET", "/apis/nfd.k8s-sigs.io/v1alpha1", "", None),
        ("GET", f"{NF}/x", "", (("nfd.k8s-sigs.io", "nodefeatures", "get"), True)),
        ("GET", NF, "", (("nfd.k8s-sigs.io", "nodefeatures", "list"), True)),
        ("GET", NF, "watch=true", (("nfd.k8s-sigs.io", "nodefeatures", "watch"), True)),
        ("GET", NF, "watch=1&resourceVersion=5", (("nfd.k8s-sigs.io", "nodefeatures", "watch"),
                                                   True)),
        ("GET", NF, "watch=false", (("nfd.k8s-sigs.io", "nodefeatures", "list"), True)),
        ("POST", NF, "", (("nfd.k8s-sigs.io", "nodefeatures", "create"), True)),
        ("PUT", f"{NF}/x", "", (("nfd.k8s-sigs.io", "nodefeatures", "update"), True)),
        ("PATCH", f"{NF}/x", "", (("nfd.k8s-sigs.io", "nodefeatures", "patch"), True)),
        ("DELETE", f"{NF}/x", "", (("nfd.k8s-sigs.io", "nodefeatures", "delete"), True)),
        ("DELETE", NF, "", (("nfd.k8s-sigs.io", "nodefeatures", "deletecollection"), True)),
        ("GET", "/api/v1/namespaces/ns/pods/p", "", (("", "pods", "get"), True)),
        ("GET", "/api/v1/namespaces/ns/pods/p/log", "", (("", "pods/log", "get"), True)),
        ("PUT", "/apis/apps/v1/namespaces/ns/daemonsets/d/finalizers", "",
         (("apps", "daemonsets/finalizers", "update"), True)),
        ("GET", "/api/v1/nodes/n", "", (("", "nodes", "get"), False)),
        ("GET", "/api/v1/namespaces/ns", "", (("", "namespaces", "get"), False)),
        ("GET", "/api/v1/namespaces", "", (("", "namespaces", "list"), False)),
    ],
)  # fmt: skip
def test_rbac_rule(method: str, path: str, query: str, expected: tuple[Rule, bool] | None) -> None:
    assert rbac_rule(method, path, parse_qs(query)) == expected


@pytest.mark.parametrize("path", ["/version", "/healthz", "/openapi/v2"])
def test_other_non_resource_paths_are_not_ignored(path: str) -> None:
    with pytest.raises(ValueError, match="not a resource or discovery request"):
        rbac_rule("GET", path, {})


@pytest.mark.parametrize(
    ("rule", "owners", "expected"),
    [
        pytest.param(("g", "r", "create"), [], [], id="no-owners"),
        pytest.param(("g", "r", "get"), [{"kind": "DaemonSet"}], [], id="not-a-write"),
        pytest.param(
            ("g", "r", "update"), [{"kind": "DaemonSet"}], [("g", "r", "delete")], id="owner"
        ),
        pytest.param(
            ("g", "r", "create"),
            [{"kind": "DaemonSet", "blockOwnerDeletion": True}],
            [("g", "r", "delete"), ("apps", "daemonsets/finalizers", "update")],
            id="block-owner-deletion",
        ),
    ],
)
def test_admission_rules(rule: Rule, owners: list[dict[str, Any]], expected: list[Rule]) -> None:
    assert admission_rules(rule, owners) == expected


# --- the chart against what GFD did --------------------------------------------------------


def test_every_fake_server_user_is_classified() -> None:
    """A new module that starts the fake must say whether its requests are GFD's."""
    users = {
        str(path.relative_to(ROOT))
        for path in (ROOT / "tests").rglob("test_*.py")
        if "FakeApiServer" in path.read_text() or "api_server" in path.read_text()
    }
    users.discard("tests/deployments/test_chart_rbac.py")
    assert users == set(NODEFEATURE_TESTS) | set(NOT_GFD_REQUESTS) | set(GFD_IN_THE_IMAGE)
    node_api_users = {
        str(path.relative_to(ROOT))
        for path in (ROOT / "tests").rglob("test_*.py")
        if "NodeApiFake" in path.read_text()
    }
    node_api_users.discard("tests/deployments/test_chart_rbac.py")
    # test_image.py runs config-manager's oneshot (a list) in the image: a subset.
    assert node_api_users == set(CONFIG_MANAGER_TESTS) | set(GFD_IN_THE_IMAGE)


def test_the_scenarios_ran() -> None:
    """The log holds what the NodeFeature tests exercise: discovery, the pod, create, update."""
    seen = {(r["method"], r["path"].rsplit("/", 1)[-1]) for r in gfd_requests()}
    assert ("GET", "v1alpha1") in seen  # the `auto` probe
    assert ("POST", "nodefeatures") in seen
    assert any(method == "PUT" for method, _ in seen)
    assert any(r.get("ownerReferences") for r in gfd_requests())


@pytest.mark.parametrize(
    "values",
    [pytest.param({}, id="defaults"), pytest.param(VALUE_SETS["gfd-api-forced"], id="api-forced")],
)
def test_role_grants_exactly_what_gfd_uses(values: dict[str, Any]) -> None:
    docs = render(values)
    used, granted = used_rules(), granted_rules(docs)
    unused = sorted(granted - set(used))
    missing = {rule: why for rule, why in used.items() if rule not in granted}
    assert not unused, f"granted but never used by GFD: {unused}"
    assert not missing, f"used by GFD but not granted: {missing}"
    # Namespaced requests only, in the pod's own namespace: a Role there, no ClusterRole.
    assert not [d for d in docs if d["kind"] in ("ClusterRole", "ClusterRoleBinding")]
    role = find(docs, "Role", "gpu-feature-discovery")
    assert role is not None
    assert role["metadata"]["namespace"] == NAMESPACE
    assert daemonset(docs, "gpu-feature-discovery")["metadata"]["namespace"] == NAMESPACE
    ctr = pod_spec(docs, "gpu-feature-discovery")["containers"][0]
    namespace_env = next(e for e in ctr["env"] if e["name"] == "NAMESPACE")
    assert namespace_env["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}


# --- config-manager's ClusterRole against what config-manager did ------------------------

# A ConfigMap of configs runs config-manager in the plugin's and GFD's pods.
CONFIG_MANAGER_VALUES = {
    "embedded": {"config": {"map": {"default": "version: v1\n"}}},
    "external-feature-file-gfd": {
        "config": {"name": "ext", "default": "a"}, "gfd": {"useNodeFeatureAPI": False},
    },
    "plugin-only": {"config": {"map": {"default": "version: v1\n"}}, "gfd": {"enabled": False}},
    "gfd-only": {"config": {"map": {"default": "version: v1\n"}},
                 "devicePlugin": {"enabled": False}},
}  # fmt: skip


def test_config_manager_scenarios_ran() -> None:
    """The log holds a list, a watch from the list's version, a resumed watch (after a
    dropped connection) and a re-list (after 410 Gone)."""
    requests = config_manager_requests()
    lists = [r for r in requests if "watch" not in r["query"]]
    watches = [r for r in requests if r["query"].get("watch") == "true"]
    assert lists and watches
    assert all(r["method"] == "GET" and r["path"] == "/api/v1/nodes" for r in requests)
    assert all(r["query"]["fieldSelector"].startswith("metadata.name=") for r in requests)
    versions = [r["query"]["resourceVersion"] for r in watches]
    assert len(versions) > len(set(versions))  # some watch resumed from a version again


@pytest.mark.parametrize(
    "values", [pytest.param(v, id=k) for k, v in CONFIG_MANAGER_VALUES.items()]
)
def test_cluster_role_grants_exactly_what_config_manager_uses(values: dict[str, Any]) -> None:
    docs = render(values)
    used, granted = config_manager_rules(), granted_rules(docs, "ClusterRole", "config-manager")
    unused = sorted(granted - set(used))
    missing = {rule: why for rule, why in used.items() if rule not in granted}
    assert not unused, f"granted but never used by config-manager: {unused}"
    assert not missing, f"used by config-manager but not granted: {missing}"
    assert set(used) == {("", "nodes", "list"), ("", "nodes", "watch")}
    # bound to exactly the service accounts of the pods that run config-manager
    binding = find(docs, "ClusterRoleBinding", "config-manager")
    assert binding is not None
    role = find(docs, "ClusterRole", "config-manager")
    assert role is not None
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": role["metadata"]["name"],
    }
    subjects = {(s["kind"], s["namespace"], s["name"]) for s in binding["subjects"]}
    running = {
        ("ServiceAccount", NAMESPACE, d["spec"]["template"]["spec"]["serviceAccountName"])
        for d in docs
        if d["kind"] == "DaemonSet"
        and any(c["command"] == ["config-manager"]
                for c in d["spec"]["template"]["spec"].get("initContainers", []))
    }  # fmt: skip
    assert subjects == running
    accounts = {(NAMESPACE, d["metadata"]["name"]) for d in docs if d["kind"] == "ServiceAccount"}
    assert {(ns, name) for _, ns, name in subjects} <= accounts


def test_no_cluster_role_without_config_manager() -> None:
    docs = render({})
    assert not [d for d in docs if d["kind"] in ("ClusterRole", "ClusterRoleBinding")]
