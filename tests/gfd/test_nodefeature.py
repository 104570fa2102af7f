"""gfd.outputs.nodefeature against a validating fake API server (tests/gfd/kubefake.py).

Matrix: preconditions (empty node/namespace, long object name, node name not a
label value) fail before any request; write = create once with the exact
object / no request when unchanged (also across null-vs-empty and server
fields) / exactly one PUT on change, replacing labels and owners whole; API
failures on GET, create, update, an invalid body and an unreachable server give
spec'd texts; owner resolution (no pod name, pod GET fails, no DaemonSet
owner, DaemonSet owner); the `auto` probe true and false; the rate limiter;
the lazy import of the client. Every NodeFeature body sent is checked as NFD's
CRD makes an apiserver check it (tests/gfd/nodefeature_schema.py; its own table
is tests/gfd/test_nodefeature_crd.py), even one answered with an injected fault:
the api_server fixture fails a test whose GFD sent a body the CRD refuses or
prunes.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import kmock
import pytest

import gfd.outputs
from gfd.outputs import OutputError
from gfd.outputs.nodefeature import (
    Discovery,
    NodeFeatureOutput,
    _TokenBucket,
    discover_nodefeatures,
)
from tests.gfd.kubefake import NODEFEATURES, FakeApiServer, RawAnswer

REPO_ROOT = Path(gfd.outputs.__file__).resolve().parents[2]
NS, NODE, POD = "gpu-operator", "node-1", "gfd-x7k2p"
NAME = "nvidia-features-for-node-1"
NF_PATH = f"/apis/nfd.k8s-sigs.io/v1alpha1/namespaces/{NS}/nodefeatures"
DS_OWNER = {
    "apiVersion": "apps/v1",
    "kind": "DaemonSet",
    "name": "gpu-feature-discovery",
    "uid": "0f6ad5b1-0000-4000-8000-000000000001",
    "controller": True,
    "blockOwnerDeletion": True,
}
SERVER_FIELDS = ("uid", "resourceVersion", "creationTimestamp")
LABELS = {"nvidia.com/gpu.count": "8", "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}

MakeOutput = Callable[..., NodeFeatureOutput]


@pytest.fixture
def make_output(kubeconfig: str) -> Iterator[MakeOutput]:
    made: list[NodeFeatureOutput] = []

    def make(
        node: str = NODE, namespace: str = NS, pod: str = "", config: str | None = None
    ) -> NodeFeatureOutput:
        out = NodeFeatureOutput(
            node, namespace, pod, kubeconfig if config is None else config, 5, 10
        )
        made.append(out)
        return out

    yield make
    for out in made:
        out.close()  # before the server stops: no sockets left to the GC


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> Callable[[], list[tuple[str, str]]]:
    caplog.set_level(logging.INFO, logger="gfd.outputs")
    return lambda: [
        (r.levelname, r.getMessage()) for r in caplog.records if r.name.startswith("gfd.")
    ]


def stored(server: FakeApiServer) -> dict[str, Any] | None:
    """The stored object without the fields the server stamps."""
    obj = server.fake.nodefeature(NS, NAME)
    if obj is not None:
        for field in SERVER_FIELDS:
            obj["metadata"].pop(field)
    return obj


def expected_object(labels: dict[str, str], owners: list[dict[str, Any]]) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "name": NAME,
        "namespace": NS,
        "labels": {"nfd.node.kubernetes.io/node-name": NODE},
    }
    if owners:
        metadata["ownerReferences"] = copy.deepcopy(owners)
    return {
        "apiVersion": "nfd.k8s-sigs.io/v1alpha1",
        "kind": "NodeFeature",
        "metadata": metadata,
        "spec": {
            "features": {"flags": {}, "attributes": {}, "instances": {}},
            "labels": dict(labels),
        },
    }


# --- preconditions ------------------------------------------------------------


@pytest.mark.parametrize(
    ("node", "namespace", "message"),
    [
        pytest.param("", NS, "required flag node-name not set", id="no-node-name"),
        pytest.param(NODE, "", "required flag namespace not set", id="no-namespace"),
        pytest.param(
            "n" * 234,
            NS,
            f'NodeFeature object name "nvidia-features-for-{"n" * 234}" is longer than 253',
            id="object-name-over-253",
        ),
        pytest.param(
            "n" * 64, NS, f'node name "{"n" * 64}" is not a valid label value', id="node-64"
        ),
        pytest.param("node-", NS, 'node name "node-" is not a valid label value', id="bad-end"),
    ],
)
def test_preconditions_fail_before_any_request(
    api_server: FakeApiServer, kubeconfig: str, node: str, namespace: str, message: str
) -> None:
    with pytest.raises(OutputError) as caught:
        NodeFeatureOutput(node, namespace, POD, kubeconfig, 5, 10)
    assert str(caught.value).startswith(message)
    assert list(api_server.fake._requests) == []


def test_node_name_at_limits_is_accepted(
    api_server: FakeApiServer, make_output: MakeOutput
) -> None:
    node = "n" * 63
    make_output(node=node).write(LABELS)
    assert api_server.fake.nodefeature(NS, f"nvidia-features-for-{node}") is not None
    assert api_server.fake.rejections == []


def test_unreadable_kubeconfig(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match=r"^unable to load Kubernetes client config: "):
        NodeFeatureOutput(NODE, NS, "", str(tmp_path / "missing"), 5, 10)


def _kubeconfig(cluster: dict[str, Any] | str, context_cluster: str = "c") -> str:
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": "x",
            "contexts": [{"name": "x", "context": {"cluster": context_cluster, "user": "u"}}],
            "clusters": [{"name": "c", "cluster": cluster}],
            "users": [{"name": "u", "user": {"token": "t"}}],
        }
    )


# (id, the file's text or None for no file or "<dir>" for a directory, what the error says)
MALFORMED_KUBECONFIGS = [
    ("yaml-syntax", "apiVersion: v1\nclusters: [\n", "is not valid YAML at line 3, column 1: "),
    ("binary", "\x00\x01garbage", "is not valid YAML at "),
    ("a-list", "- a\n- b\n", "is not a kubeconfig: a YAML mapping was expected, got a list"),
    ("a-string", "hello\n", "is not a kubeconfig: a YAML mapping was expected, got a string"),
    ("empty", "", "is empty"),
    ("no-current-context", '{"apiVersion": "v1", "clusters": []}', "current-context"),
    ("context-names-no-cluster", _kubeconfig({"server": "https://x"}, "other"), "other"),
    ("cluster-without-server", _kubeconfig({}), "has no server"),
    ("cluster-not-a-mapping", _kubeconfig("zzz"), "has no server"),
    (
        "bad-ca-data",
        _kubeconfig({"server": "https://x", "certificate-authority-data": "!!notbase64"}),
        "cannot be used: ",
    ),
    ("missing", None, "No such file or directory"),
    ("a-directory", "<dir>", "Is a directory"),
]


@pytest.mark.parametrize(
    ("text", "says"),
    [pytest.param(text, says, id=name) for name, text, says in MALFORMED_KUBECONFIGS],
)
def test_malformed_kubeconfig_names_the_file_and_what_is_wrong(
    tmp_path: Path, text: str | None, says: str
) -> None:
    """One line, starting as upstream's does, naming the file; never retryable: waiting
    does not mend a file (a reload after it is mended does)."""
    path = tmp_path / "kubeconfig"
    if text == "<dir>":
        path.mkdir()
    elif text is not None:
        path.write_bytes(text.encode("utf-8", "surrogateescape"))
    with pytest.raises(OutputError) as caught:
        NodeFeatureOutput(NODE, NS, "", str(path), 5, 10)
    message = str(caught.value)
    assert message.startswith(f"unable to load Kubernetes client config: kubeconfig {path}")
    assert says in message
    assert "\n" not in message
    assert not caught.value.retryable


@pytest.mark.parametrize(
    "text", [pytest.param(text, id=name) for name, text, _ in MALFORMED_KUBECONFIGS[:6]]
)
def test_probe_with_a_malformed_kubeconfig_warns_naming_it(
    tmp_path: Path, logs: Callable[[], list[tuple[str, str]]], text: str
) -> None:
    """`auto` falls back to the file, but a kubeconfig the deployment names and that
    cannot load is a warning naming it, not the quiet "no NodeFeature API"."""
    path = tmp_path / "kubeconfig"
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    assert discover_nodefeatures(str(path), {}) is Discovery.ABSENT
    [(level, message)] = logs()
    assert level == "WARNING"
    assert message.startswith(f"NodeFeature API not usable: kubeconfig {path}")
    assert message.endswith("writing the feature file")


# --- the write algorithm ----------------------------------------------------------


def test_created_once_with_the_exact_object(
    api_server: FakeApiServer, make_output: MakeOutput, logs: Callable[[], list[tuple[str, str]]]
) -> None:
    api_server.fake.put_pod(NS, POD, [DS_OWNER])
    out = make_output(pod=POD)
    out.write(LABELS)
    ds = {k: v for k, v in DS_OWNER.items() if k != "blockOwnerDeletion"}
    assert stored(api_server) == expected_object(LABELS, [ds])
    assert api_server.fake.calls("POST") == [("POST", NF_PATH)]
    assert api_server.fake.calls("PUT") == []
    assert api_server.fake.rejections == []
    assert logs() == [
        ("INFO", f"creating NodeFeature object {NAME}"),
        ("INFO", f"created NodeFeature object {NS}/{NAME}"),
    ]


def test_unchanged_labels_send_no_update(
    api_server: FakeApiServer, make_output: MakeOutput, logs: Callable[[], list[tuple[str, str]]]
) -> None:
    out = make_output()
    out.write(LABELS)
    out.write(dict(reversed(LABELS.items())))  # same labels, other order
    out.write(LABELS)
    assert api_server.fake.calls("POST") == [("POST", NF_PATH)]
    assert api_server.fake.calls("PUT") == api_server.fake.calls("PATCH") == []
    assert logs()[-2:] == [("INFO", f"no changes in NodeFeature object {NAME}")] * 2


def test_changed_label_sends_exactly_one_put(
    api_server: FakeApiServer, make_output: MakeOutput, logs: Callable[[], list[tuple[str, str]]]
) -> None:
    out = make_output()
    out.write(LABELS)
    version = api_server.fake.nodefeature(NS, NAME)["metadata"]["resourceVersion"]  # type: ignore[index]
    changed = {"nvidia.com/gpu.count": "4"}  # one changed, one removed
    out.write(changed)
    assert api_server.fake.calls("PUT") == [("PUT", f"{NF_PATH}/{NAME}")]
    assert stored(api_server) == expected_object(changed, [])
    after = api_server.fake.nodefeature(NS, NAME)["metadata"]["resourceVersion"]  # type: ignore[index]
    assert after != version
    assert logs()[-1] == ("INFO", f"Updating NodeFeature object {NAME}")
    out.write(changed)
    assert len(api_server.fake.calls("PUT")) == 1
    assert api_server.fake.rejections == []


def preexisting(server: FakeApiServer, obj: dict[str, Any]) -> None:
    meta = obj["metadata"]
    meta.update(uid="11111111-2222-4333-8444-555555555555", resourceVersion="41")
    meta["creationTimestamp"] = "2025-01-01T00:00:00Z"
    server.fake.objects[NODEFEATURES, NS, NAME] = obj


def test_null_and_empty_maps_are_equal(api_server: FakeApiServer, make_output: MakeOutput) -> None:
    """As a Go client leaves it: null features, extra annotations, no owners."""
    obj = expected_object(LABELS, [])
    obj["metadata"]["annotations"] = {"example.com/note": "kept"}
    obj["metadata"]["ownerReferences"] = None
    obj["spec"]["features"] = {"flags": None, "attributes": {}, "instances": None}
    preexisting(api_server, obj)
    make_output().write(LABELS)
    assert api_server.fake.calls("PUT") == api_server.fake.calls("POST") == []


def test_update_replaces_labels_and_owners_whole(
    api_server: FakeApiServer, make_output: MakeOutput
) -> None:
    """An object upstream wrote (DaemonSet + Pod owners) loses the Pod owner and stray
    metadata labels, keeps annotations, and is PUT with the resourceVersion read."""
    pod_owner = {"apiVersion": "v1", "kind": "Pod", "name": "gfd-old", "uid": "pod-uid"}
    obj = expected_object(LABELS, [DS_OWNER, pod_owner])
    obj["metadata"]["labels"]["stray"] = "x"
    obj["metadata"]["annotations"] = {"example.com/note": "kept"}
    preexisting(api_server, obj)
    api_server.fake.put_pod(NS, POD, [DS_OWNER])
    make_output(pod=POD).write(LABELS)
    put = [r for r in api_server.fake._requests if r.method == kmock.method.PUT]
    assert len(put) == 1
    assert put[0].data["metadata"]["resourceVersion"] == "41"
    ds = {k: v for k, v in DS_OWNER.items() if k != "blockOwnerDeletion"}
    want = expected_object(LABELS, [ds])
    want["metadata"]["annotations"] = {"example.com/note": "kept"}
    assert stored(api_server) == want
    assert api_server.fake.rejections == []


def test_cleanup_never_deletes(api_server: FakeApiServer, make_output: MakeOutput) -> None:
    out = make_output()
    out.write(LABELS)
    out.cleanup()
    assert api_server.fake.calls("DELETE") == []
    assert api_server.fake.nodefeature(NS, NAME) is not None


# --- API failures ---------------------------------------------------------------------


def fault(code: int, reason: str, message: str) -> kmock.KubernetesError:
    return kmock.KubernetesError(status=code, reason=reason, message=message, details={"x": 1})


FORBIDDEN = (
    'nodefeatures.nfd.k8s-sigs.io "nvidia-features-for-node-1" is forbidden: User '
    '"system:serviceaccount:gpu-operator:gfd" cannot get resource "nodefeatures"'
)


@pytest.mark.parametrize(
    ("method", "path", "error"),
    [
        pytest.param(
            "GET", f"{NF_PATH}/{NAME}", f"failed to get NodeFeature object: {FORBIDDEN}", id="get"
        ),
        pytest.param(
            "POST",
            NF_PATH,
            f'failed to create NodeFeature object "{NAME}": {FORBIDDEN}',
            id="create",
        ),
    ],
)
def test_api_errors(
    api_server: FakeApiServer, make_output: MakeOutput, method: str, path: str, error: str
) -> None:
    api_server.fake.faults[method, path] = fault(403, "Forbidden", FORBIDDEN)
    with pytest.raises(OutputError) as caught:
        make_output().write(LABELS)
    assert str(caught.value) == error


def test_conflict_rereads_and_retries_within_the_write(
    api_server: FakeApiServer, make_output: MakeOutput, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another writer changes the object between our GET and PUT, twice: the fake's
    resourceVersion check answers 409 and one write() reads again until its PUT lands,
    keeping what the other writer set."""
    out = make_output()
    out.write(LABELS)
    real_get = out._objects.get_namespaced_custom_object
    intrusions = iter(range(2))

    def get_then_intrude(*args: Any, **kwargs: Any) -> Any:
        current = real_get(*args, **kwargs)
        if next(intrusions, None) is not None:  # the other writer, after our read
            other = api_server.fake.nodefeature(NS, NAME)
            assert other is not None
            other["metadata"]["annotations"] = {"example.com/other": "kept"}
            other["metadata"]["resourceVersion"] += "0"
            api_server.fake.objects[NODEFEATURES, NS, NAME] = other
        return current

    monkeypatch.setattr(out._objects, "get_namespaced_custom_object", get_then_intrude)
    before = len(api_server.fake._requests)
    out.write({"nvidia.com/gpu.count": "4"})
    sequence = [(r.method.value, r.url.path) for r in list(api_server.fake._requests)[before:]]
    assert sequence == [("GET", f"{NF_PATH}/{NAME}"), ("PUT", f"{NF_PATH}/{NAME}")] * 3
    obj = api_server.fake.nodefeature(NS, NAME)
    assert obj is not None
    assert obj["spec"]["labels"] == {"nvidia.com/gpu.count": "4"}
    assert obj["metadata"]["annotations"] == {"example.com/other": "kept"}


def test_create_conflict_reads_and_updates(
    api_server: FakeApiServer, make_output: MakeOutput, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another writer creates the object between our GET (404) and our POST: the POST's
    409 AlreadyExists sends the same write() to read the object and update it."""
    out = make_output()
    real_get = out._objects.get_namespaced_custom_object
    raced = []

    def get_then_race(*args: Any, **kwargs: Any) -> Any:
        try:
            return real_get(*args, **kwargs)
        except Exception:
            if not raced:
                raced.append(True)
                preexisting(api_server, expected_object({"old": "x"}, []))
            raise

    monkeypatch.setattr(out._objects, "get_namespaced_custom_object", get_then_race)
    out.write(LABELS)
    assert raced == [True]
    assert [m for m, _ in api_server.fake.calls("POST")] == ["POST"]
    assert [m for m, _ in api_server.fake.calls("PUT")] == ["PUT"]
    assert stored(api_server) == expected_object(LABELS, [])


def test_conflicts_that_do_not_settle_are_retryable(
    api_server: FakeApiServer, make_output: MakeOutput
) -> None:
    out = make_output()
    out.write(LABELS)
    conflict = 'Operation cannot be fulfilled on nodefeatures.nfd.k8s-sigs.io "x": modified'
    api_server.fake.faults["PUT", f"{NF_PATH}/{NAME}"] = fault(409, "Conflict", conflict)
    before = len(api_server.fake.calls("GET"))
    with pytest.raises(OutputError) as caught:
        out.write({"a.b/c": "d"})
    assert str(caught.value) == (
        f'failed to update NodeFeature object "{NAME}": still conflicting after 5 attempts: '
        f"{conflict}"
    )
    assert caught.value.retryable
    assert len(api_server.fake.calls("PUT")) == 5
    assert len(api_server.fake.calls("GET")) - before == 5


TRANSIENT = "the server is currently unable to handle the request"


@pytest.mark.parametrize(
    ("failure", "retryable", "retry_after", "message"),
    [
        pytest.param("429", True, 7.0, "too many requests", id="429-retry-after"),
        pytest.param("500", True, None, TRANSIENT, id="500"),
        pytest.param("503", True, None, TRANSIENT, id="503"),
        pytest.param("504", True, None, TRANSIENT, id="504"),
        pytest.param("408", True, None, TRANSIENT, id="408"),
        pytest.param("refuse", True, None, "Connection refused", id="connection-refused"),
        pytest.param("blackhole", True, None, "timed out", id="timeout"),
        pytest.param("403", False, None, FORBIDDEN, id="403"),
        pytest.param("401", False, None, "Unauthorized", id="401"),
    ],
)
def test_which_failures_are_retryable(
    kubeconfig: str,
    tmp_path: Path,
    failure: str,
    retryable: bool,
    retry_after: float | None,
    message: str,
) -> None:
    """What the daemon's backoff waits out (no answer, 408, 429, 5xx) and what it does
    not; Retry-After comes along. No request is repeated behind the caller's back."""
    with FakeApiServer(link=True) as server:
        assert server.link is not None
        config = server.write_kubeconfig(tmp_path / "linked")
        out = NodeFeatureOutput(NODE, NS, "", config, 5, 10, request_timeout_s=0.3)
        try:
            if failure.isdigit():
                code = int(failure)
                text = FORBIDDEN if code == 403 else "Unauthorized" if code == 401 else ""
                text = text or ("too many requests" if code == 429 else TRANSIENT)
                server.fake.outage = fault(code, "Injected", text)
                if code == 429:
                    server.fake.retry_after = "7"
            else:
                server.link.set(failure)
            with pytest.raises(OutputError) as caught:
                out.write(LABELS)
        finally:
            out.close()
        assert caught.value.retryable is retryable
        assert caught.value.retry_after_s == retry_after
        assert message in str(caught.value)
        assert str(caught.value).startswith("failed to get NodeFeature object: ")
        if failure.isdigit():
            assert server.fake.calls("GET") == [("GET", f"{NF_PATH}/{NAME}")]


def test_a_write_keeps_to_its_time_budget(tmp_path: Path) -> None:
    """A server that accepts and never answers costs a write its budget, not the
    10 s request timeout."""
    with FakeApiServer(link=True) as server:
        assert server.link is not None
        config = server.write_kubeconfig(tmp_path / "linked")
        out = NodeFeatureOutput(NODE, NS, "", config, 5, 10, write_budget_s=0.4)
        server.link.set("blackhole")
        start = time.monotonic()
        try:
            with pytest.raises(OutputError) as caught:
                out.write(LABELS)
        finally:
            out.close()
        elapsed = time.monotonic() - start
    assert caught.value.retryable
    assert 0.3 < elapsed < 3.0, elapsed  # measured 0.403 s (3 runs)


def test_owner_resolved_after_the_api_comes_back(
    api_server: FakeApiServer, make_output: MakeOutput
) -> None:
    """The pod GET fails with a 503 twice: no owner yet, and no object is created
    without one (it would never be garbage-collected); the write once the API is back
    resolves it and creates the object owned by the DaemonSet."""
    api_server.fake.put_pod(NS, POD, [DS_OWNER])
    pod_path = f"/api/v1/namespaces/{NS}/pods/{POD}"
    api_server.fake.queued["GET", pod_path] = [fault(503, "ServiceUnavailable", TRANSIENT)] * 2
    out = make_output(pod=POD)
    for _ in range(2):
        with pytest.raises(OutputError) as caught:
            out.write(LABELS)
        assert caught.value.retryable
        assert str(caught.value) == f"failed to get pod {NS}/{POD} for its owner: {TRANSIENT}"
        assert out.owner_references is None
    assert api_server.fake.calls("POST") == []
    out.write(LABELS)
    ds = {k: v for k, v in DS_OWNER.items() if k != "blockOwnerDeletion"}
    assert stored(api_server) == expected_object(LABELS, [ds])
    assert api_server.fake.calls("GET", "/api/v1/") == [("GET", pod_path)] * 3


def test_withdraw_deletes_the_object(api_server: FakeApiServer, make_output: MakeOutput) -> None:
    out = make_output()
    out.write(LABELS)
    api_server.fake.queued["DELETE", f"{NF_PATH}/{NAME}"] = [fault(503, "Unavailable", "later")]
    with pytest.raises(OutputError) as caught:
        out.withdraw()
    assert caught.value.retryable
    assert api_server.fake.nodefeature(NS, NAME) is not None
    out.withdraw()
    assert api_server.fake.nodefeature(NS, NAME) is None
    out.withdraw()  # already gone: not an error
    assert api_server.fake.calls("DELETE") == [("DELETE", f"{NF_PATH}/{NAME}")] * 3


def test_error_without_status_body(api_server: FakeApiServer, make_output: MakeOutput) -> None:
    out = make_output()
    api_server.fake.faults["GET", f"{NF_PATH}/{NAME}"] = fault(500, "InternalError", "")
    with pytest.raises(OutputError, match=r"^failed to get NodeFeature object: \S"):
        out.write(LABELS)


def test_invalid_body_is_rejected_by_the_double(
    api_server: FakeApiServer, make_output: MakeOutput
) -> None:
    with pytest.raises(OutputError) as caught:
        make_output().write({"nvidia.com/gpu.count": 8})  # type: ignore[dict-item]
    assert str(caught.value) == (
        f'failed to create NodeFeature object "{NAME}": NodeFeature.nfd.k8s-sigs.io "{NAME}" '
        'is invalid: spec.labels.nvidia.com/gpu.count: Invalid value: "integer": '
        'spec.labels.nvidia.com/gpu.count in body must be of type string: "integer"'
    )
    assert [r[0] for r in api_server.fake.rejections] == ["POST"]
    api_server.fake.rejections.clear()  # checked: the fixture's own check passes


def test_unreachable_server(kubeconfig: str) -> None:
    with FakeApiServer() as server:
        out = NodeFeatureOutput(NODE, NS, "", server.write_kubeconfig(Path(kubeconfig)), 5, 10)
    try:
        with pytest.raises(OutputError, match=r"^failed to get NodeFeature object: "):
            out.write(LABELS)
    finally:
        out.close()


# --- an API server that answers what is not JSON ------------------------------------

LOGIN_PAGE = "<html><head><title>Sign in</title></head><body>corporate proxy</body></html>"


@pytest.mark.parametrize(
    ("answer", "retryable", "says"),
    [
        pytest.param(
            RawAnswer(200, LOGIN_PAGE),
            False,
            "answered 200 (text/html; charset=utf-8), not a JSON object: '<html><head>",
            id="200-html",
        ),
        pytest.param(
            RawAnswer(200, '{"kind": "NodeFeature", "spec": {', "application/json"),
            False,
            'answered 200 (application/json), not a JSON object: \'{"kind"',
            id="200-json-cut-short",
        ),
        pytest.param(
            RawAnswer(200, "[1, 2]", "application/json"),
            False,
            "answered 200 (application/json), not a JSON object: '[1, 2]'",
            id="200-json-not-an-object",
        ),
        pytest.param(
            RawAnswer(200, b"\xff\xfe", "application/octet-stream"),
            False,
            "answered 200 (application/octet-stream), not a JSON object",
            id="200-binary",
        ),
        pytest.param(
            RawAnswer(500, "upstream connect error or disconnect/reset", "text/plain"),
            True,
            "Internal Server Error (500) from GET {url}: 'upstream connect error",
            id="500-text",
        ),
        pytest.param(
            RawAnswer(502, f"<html>{'x' * 500}</html>"),
            True,
            "Bad Gateway (502) from GET {url}: '<html>xxx",
            id="502-html",
        ),
    ],
)
def test_an_answer_that_is_not_json(
    api_server: FakeApiServer,
    make_output: MakeOutput,
    answer: RawAnswer,
    retryable: bool,
    says: str,
) -> None:
    """A clear one-line error naming the request and the status, never a traceback.
    A 2xx that is not a Kubernetes object is not the API server (a proxy's page, a wrong
    server): not worth waiting for, like a 403. A 5xx is waited out, whatever its body."""
    url = f"{api_server.url}{NF_PATH}/{NAME}"
    api_server.fake.faults["GET", f"{NF_PATH}/{NAME}"] = answer
    with pytest.raises(OutputError) as caught:
        make_output().write(LABELS)
    message = str(caught.value)
    assert message.startswith("failed to get NodeFeature object: ")
    assert says.replace("{url}", url) in message
    if answer.status < 300:
        assert f"GET {url} answered {answer.status}" in message
    assert len(message) < 400 and "\n" not in message
    assert caught.value.retryable is retryable


def test_a_create_answered_with_html(api_server: FakeApiServer, make_output: MakeOutput) -> None:
    api_server.fake.faults["POST", NF_PATH] = RawAnswer(201, LOGIN_PAGE)
    with pytest.raises(OutputError) as caught:
        make_output().write(LABELS)
    assert str(caught.value).startswith(
        f'failed to create NodeFeature object "{NAME}": POST {api_server.url}{NF_PATH} '
        "answered 201 (text/html; charset=utf-8), not a JSON object: "
    )
    assert not caught.value.retryable


def test_probe_answered_with_html(
    api_server: FakeApiServer, kubeconfig: str, logs: Callable[[], list[tuple[str, str]]]
) -> None:
    """Discovery answered by something that is not an API server: the file, and a
    warning naming the URL (not the quiet "not served")."""
    api_server.fake.faults["GET", "/apis/nfd.k8s-sigs.io/v1alpha1"] = RawAnswer(200, LOGIN_PAGE)
    assert discover_nodefeatures(kubeconfig, {}) is Discovery.ABSENT
    [(level, message)] = logs()
    assert level == "WARNING"
    assert f"GET {api_server.url}/apis/nfd.k8s-sigs.io/v1alpha1 answered 200" in message
    assert message.endswith("writing the feature file")


# --- owner references ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("pod", "owners", "want", "log"),
    [
        pytest.param(
            "",
            None,
            [],
            ("INFO", "Pod name not provided, skipping owner reference resolution"),
            id="no-pod-name",
        ),
        pytest.param(
            POD,
            None,
            [],
            (
                "WARNING",
                f"Failed to resolve owner references: failed to get pod {NS}/{POD}: "
                f'pods "{POD}" not found',
            ),
            id="pod-get-fails",
        ),
        pytest.param(
            POD,
            [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": "rs",
                    "uid": "u",
                    "controller": True,
                }
            ],
            [],
            ("INFO", "Pod is not owned by a DaemonSet, skipping owner reference resolution"),
            id="replicaset-owner",
        ),
        pytest.param(
            POD,
            [],
            [],
            ("INFO", "Pod is not owned by a DaemonSet, skipping owner reference resolution"),
            id="no-owner",
        ),
        pytest.param(
            POD,
            [{"apiVersion": "v1", "kind": "Node", "name": NODE, "uid": "n"}, DS_OWNER],
            [{k: v for k, v in DS_OWNER.items() if k != "blockOwnerDeletion"}],
            None,
            id="daemonset-owner",
        ),
    ],
)
def test_owner_resolution(
    api_server: FakeApiServer,
    make_output: MakeOutput,
    logs: Callable[[], list[tuple[str, str]]],
    pod: str,
    owners: list[dict[str, Any]] | None,
    want: list[dict[str, Any]],
    log: tuple[str, str] | None,
) -> None:
    if owners is not None:
        api_server.fake.put_pod(NS, POD, owners)
    if pod and owners is None:  # the pod GET fails
        message = f'pods "{POD}" not found'
        api_server.fake.faults["GET", f"/api/v1/namespaces/{NS}/pods/{POD}"] = fault(
            404, "NotFound", message
        )
    out = make_output(pod=pod)
    assert out.owner_references is None  # resolved at the first write, in its time budget
    assert list(api_server.fake._requests) == []
    out.write(LABELS)
    assert out.owner_references == want
    assert [entry for entry in logs() if "owner" in entry[1]] == ([log] if log else [])
    assert stored(api_server) == expected_object(LABELS, want)
    pod_gets = api_server.fake.calls("GET", "/api/v1/")
    assert pod_gets == ([("GET", f"/api/v1/namespaces/{NS}/pods/{POD}")] if pod else [])


# --- the `auto` probe ---------------------------------------------------------------


def test_probe_true(kubeconfig: str, logs: Callable[[], list[tuple[str, str]]]) -> None:
    assert discover_nodefeatures(kubeconfig, {}) is Discovery.SERVED
    assert logs() == [
        (
            "INFO",
            f"API discovery with kubeconfig {kubeconfig}: "
            "nfd.k8s-sigs.io/v1alpha1 nodefeatures served",
        )
    ]


def test_probe_false_without_the_resource(tmp_path: Path) -> None:
    with FakeApiServer(serve_nodefeatures=False) as server:
        config = server.write_kubeconfig(tmp_path / "kubeconfig")
        assert discover_nodefeatures(config, {}) is Discovery.ABSENT  # no such group: 404
        server.fake.resources["nfd.k8s-sigs.io/v1alpha1/nodefeaturerules"] = kmock.ResourceInfo(
            kind="NodeFeatureRule", namespaced=False
        )
        assert discover_nodefeatures(config, {}) is Discovery.ABSENT  # group served, not it
        assert server.fake.calls("GET") == [("GET", "/apis/nfd.k8s-sigs.io/v1alpha1")] * 2


DISCOVERY = "/apis/nfd.k8s-sigs.io/v1alpha1"


@pytest.mark.parametrize(
    ("failure", "found"),
    [
        # A definite answer settles `auto` on the file until the next config load.
        ("forbidden", Discovery.ABSENT),
        ("not-found", Discovery.ABSENT),
        ("bad-token", Discovery.ABSENT),
        ("missing-file", Discovery.ABSENT),
        # No answer, or one that says "later": asked again at the next pass.
        ("stopped", Discovery.UNREACHABLE),
        ("refused", Discovery.UNREACHABLE),
        ("timeout", Discovery.UNREACHABLE),
        ("429", Discovery.UNREACHABLE),
        ("500", Discovery.UNREACHABLE),
        ("503", Discovery.UNREACHABLE),
    ],
)
def test_probe_on_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: str, found: Discovery
) -> None:
    monkeypatch.setattr("gfd.outputs.nodefeature.DISCOVERY_TIMEOUT_S", 0.3)
    with FakeApiServer(link=True) as server:
        assert server.link is not None
        config = server.write_kubeconfig(tmp_path / "kubeconfig")
        codes = {"forbidden": 403, "not-found": 404, "429": 429, "500": 500, "503": 503}
        if failure in codes:
            server.fake.faults["GET", DISCOVERY] = fault(codes[failure], "Injected", "no")
        if failure == "bad-token":
            text = Path(config).read_text().replace("fake-token", "other-token")
            Path(config).write_text(text)
        if failure == "missing-file":
            config = str(tmp_path / "missing")
        if failure in ("refused", "timeout"):
            server.link.set("refuse" if failure == "refused" else "blackhole")
        if failure != "stopped":
            assert discover_nodefeatures(config, {}) is found
    if failure == "stopped":
        assert discover_nodefeatures(config, {}) is found


@pytest.mark.parametrize(
    ("environ", "token", "log"),
    [
        pytest.param({}, True, "No Kubernetes client config", id="nothing"),
        pytest.param(
            {"KUBERNETES_SERVICE_HOST": "10.0.0.1"}, False, "No Kubernetes", id="no-token"
        ),
        pytest.param(
            # A token but no ca.crt beside it: the in-cluster loader fails, no request is made.
            {"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": "1"},
            True,
            "NodeFeature API not usable with in-cluster config: ",
            id="in-cluster-broken",
        ),
    ],
)
def test_probe_without_kubeconfig(
    tmp_path: Path,
    logs: Callable[[], list[tuple[str, str]]],
    environ: dict[str, str],
    token: bool,
    log: str,
) -> None:
    token_path = tmp_path / "token"
    if token:
        token_path.write_text("t")
    assert discover_nodefeatures("", environ, token_path=str(token_path)) is Discovery.ABSENT
    assert [level for level, _ in logs()] == ["INFO"]
    assert logs()[0][1].startswith(log)


# --- rate limiting and import weight --------------------------------------------------


def test_token_bucket() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    bucket = _TokenBucket(2.0, 3, clock=lambda: now[0], sleep=sleep)
    for _ in range(4):
        bucket.acquire()
    assert slept == [0.5]  # three from the burst, the fourth waits 1/qps
    now[0] += 10  # refills, but only up to the burst
    for _ in range(3):
        bucket.acquire()
    assert slept == [0.5]
    assert (_TokenBucket(0, 0).qps, _TokenBucket(0, 0).burst) == (5.0, 10)
    unlimited = _TokenBucket(-1, 1, clock=lambda: 0.0, sleep=sleep)
    for _ in range(5):
        unlimited.acquire()
    assert slept == [0.5]


def test_client_imported_lazily_and_without_core_api(
    kubeconfig: str, api_server: FakeApiServer
) -> None:
    """Importing the module costs nothing; a working output never loads CoreV1Api on
    kubernetes >= 37, where it is lazy and costs ~0.6 s."""
    api_server.fake.put_pod(NS, POD, [DS_OWNER])
    code = (
        "import sys\n"
        "import gfd.outputs.nodefeature as nf\n"
        "assert 'kubernetes' not in sys.modules\n"
        f"out = nf.NodeFeatureOutput({NODE!r}, {NS!r}, {POD!r}, {kubeconfig!r}, 5, 10)\n"
        "out.write({'a.b/c': 'd'})\n"
        "out.close()\n"
        "import kubernetes\n"
        "eager = int(kubernetes.__version__.split('.')[0]) < 37\n"
        "assert out.owner_references, out.owner_references\n"
        "assert eager or 'kubernetes.client.api.core_v1_api' not in sys.modules\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert api_server.fake.nodefeature(NS, NAME) is not None
