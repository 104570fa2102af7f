"""The fake API server takes NodeFeature bodies as NFD v0.19.0's CRD makes a real one.

Table: bodies the CRD accepts (stored as sent, or pruned: nulls and undeclared fields
dropped, each undeclared field named in a Warning header) and bodies it refuses, with
the Status a real apiserver answers: 400 BadRequest where decoding fails, 422 Invalid
(every error as a cause naming its field) where validation does, 500 where storage
does. Sent over HTTP to tests/gfd/kubefake.py, as GFD sends them; the schema itself is
restated in tests/gfd/nodefeature_schema.py.
"""

from __future__ import annotations

import copy
import json
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import kmock
import pytest

from tests.gfd.kubefake import TOKEN, FakeApiServer

NS, NAME = "gpu-node-toolkit", "nvidia-features-for-node-1"
COLLECTION = f"/apis/nfd.k8s-sigs.io/v1alpha1/namespaces/{NS}/nodefeatures"
DS_OWNER = {
    "apiVersion": "apps/v1",
    "kind": "DaemonSet",
    "name": "gnt-gpu-node-toolkit-gpu-feature-discovery",
    "uid": "0f6ad5b1-0000-4000-8000-000000000001",
    "controller": True,
}


def writer_body() -> dict[str, Any]:
    """What GFD sends (gfd/outputs/nodefeature.py NodeFeatureOutput.new_object)."""
    return {
        "apiVersion": "nfd.k8s-sigs.io/v1alpha1",
        "kind": "NodeFeature",
        "metadata": {
            "name": NAME,
            "namespace": NS,
            "labels": {"nfd.node.kubernetes.io/node-name": "node-1"},
            "ownerReferences": [dict(DS_OWNER)],
        },
        "spec": {
            "features": {"flags": {}, "attributes": {}, "instances": {}},
            "labels": {"nvidia.com/gpu.count": "8", "nvidia.com/gpu.present": "true"},
        },
    }


def changed(change: Callable[[dict[str, Any]], object]) -> dict[str, Any]:
    body = writer_body()
    change(body)
    return body


def features(**sets: object) -> Callable[[dict[str, Any]], object]:
    return lambda b: b["spec"]["features"].update(sets)


@pytest.fixture
def server() -> Iterator[FakeApiServer]:
    with FakeApiServer() as fake_server:
        yield fake_server


def send(
    server: FakeApiServer, method: str, path: str, body: object
) -> tuple[int, dict[str, Any], list[str]]:
    """(HTTP status, JSON answer, Warning headers)."""
    request = urllib.request.Request(
        server.url + path,
        data=json.dumps(body).encode(),
        method=method,
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.load(response), response.headers.get_all("Warning") or []
    except urllib.error.HTTPError as err:
        with err:
            return err.code, json.load(err), err.headers.get_all("Warning") or []


def without_server_fields(obj: dict[str, Any]) -> dict[str, Any]:
    obj = copy.deepcopy(obj)
    for key in ("uid", "resourceVersion", "creationTimestamp"):
        obj["metadata"].pop(key)
    return obj


# --- accepted ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "stored", "warned"),
    [
        pytest.param(writer_body(), writer_body(), [], id="what-gfd-sends"),
        pytest.param(
            changed(lambda b: b.update(spec={})),
            changed(lambda b: b.update(spec={})),
            [],
            id="spec-needs-nothing",
        ),
        pytest.param(
            changed(lambda b: b["spec"].update(labels=None, features={"flags": None})),
            changed(lambda b: b.update(spec={"features": {}})),
            [],
            id="nulls-are-dropped",
        ),
        pytest.param(
            changed(lambda b: b["spec"]["labels"].update({"a.b/c": None, "a.b/d": ""})),
            changed(lambda b: b["spec"]["labels"].update({"a.b/d": ""})),
            [],
            id="null-label-dropped-empty-kept",
        ),
        pytest.param(
            changed(
                features(
                    flags={"f": {"elements": {"e": {}}}},
                    attributes={"a": {"elements": {"k": "v"}}},
                    instances={"i": {"elements": [{"attributes": {"k": "v"}}]}},
                )
            ),
            changed(
                features(
                    flags={"f": {"elements": {"e": {}}}},
                    attributes={"a": {"elements": {"k": "v"}}},
                    instances={"i": {"elements": [{"attributes": {"k": "v"}}]}},
                )
            ),
            [],
            id="every-feature-kind",
        ),
        pytest.param(
            changed(features(instances={"i": {"elements": []}})),
            changed(features(instances={"i": {"elements": []}})),
            [],
            id="empty-instance-list",
        ),
        pytest.param(
            changed(lambda b: (b["spec"].update(extra=1), b.update(status={"x": 1}))),
            writer_body(),
            ['unknown field "spec.extra"', 'unknown field "status"'],
            id="undeclared-fields-pruned-with-warnings",
        ),
        pytest.param(
            changed(features(flags={"f": {"elements": {"e": {"value": 1}}, "x": 2}})),
            changed(features(flags={"f": {"elements": {"e": {}}}})),
            [
                'unknown field "spec.features.flags.f.elements.e.value"',
                'unknown field "spec.features.flags.f.x"',
            ],
            id="flag-elements-hold-nothing",
        ),
        pytest.param(
            changed(
                lambda b: (
                    b["metadata"].update(colour="red"),
                    b["metadata"]["ownerReferences"][0].update(extra=True),
                )
            ),
            writer_body(),
            [
                'unknown field "metadata.colour"',
                'unknown field "metadata.ownerReferences.extra"',
            ],
            id="undeclared-metadata-pruned",
        ),
    ],
)
def test_accepted(
    server: FakeApiServer, body: dict[str, Any], stored: dict[str, Any], warned: list[str]
) -> None:
    code, answer, warnings = send(server, "POST", COLLECTION, body)
    assert code == 201, answer
    assert without_server_fields(answer) == stored
    assert without_server_fields(server.fake.nodefeature(NS, NAME) or {}) == stored
    assert warnings == [f"299 - {json.dumps(w)}" for w in warned]
    assert server.fake.rejections == []


# --- refused: 422 Invalid --------------------------------------------------------------

SUBDOMAIN_RULE = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
    "'-' or '.', and must start and end with an alphanumeric character"
)
TYPE = 'Invalid value: "{got}": {field} in body must be of type {want}: "{got}"'


def type_error(field: str, want: str, got: str) -> tuple[str, str, str]:
    return (field, "FieldValueTypeInvalid", TYPE.format(field=field, want=want, got=got))


@pytest.mark.parametrize(
    ("body", "causes"),
    [
        pytest.param(
            changed(lambda b: b.pop("spec")),
            [("spec", "FieldValueRequired", "Required value")],
            id="no-spec",
        ),
        pytest.param(
            changed(lambda b: b.update(spec=None)),
            [("spec", "FieldValueRequired", "Required value")],
            id="null-spec-is-no-spec",
        ),
        pytest.param(
            changed(lambda b: b.update(spec="labels")),
            [type_error("spec", "object", "string")],
            id="spec-string",
        ),
        pytest.param(
            changed(lambda b: b["spec"].update(labels=["a"])),
            [type_error("spec.labels", "object", "array")],
            id="labels-list",
        ),
        pytest.param(
            changed(lambda b: b["spec"]["labels"].update({"nvidia.com/gpu.count": 8})),
            [type_error("spec.labels.nvidia.com/gpu.count", "string", "integer")],
            id="label-integer",
        ),
        pytest.param(
            changed(lambda b: b["spec"]["labels"].update({"a.b/c": True, "a.b/d": 1.5})),
            [
                type_error("spec.labels.a.b/c", "string", "boolean"),
                type_error("spec.labels.a.b/d", "string", "number"),
            ],
            id="label-boolean-and-number",
        ),
        pytest.param(
            changed(lambda b: b["spec"].update(features=[])),
            [type_error("spec.features", "object", "array")],
            id="features-list",
        ),
        pytest.param(
            changed(features(flags={"f": {}})),
            [("spec.features.flags.f.elements", "FieldValueRequired", "Required value")],
            id="flag-set-without-elements",
        ),
        pytest.param(
            changed(features(flags={"f": {"elements": {"e": True}}})),
            [type_error("spec.features.flags.f.elements.e", "object", "boolean")],
            id="flag-element-not-object",
        ),
        pytest.param(
            changed(features(attributes={"a": {"elements": None}})),
            [("spec.features.attributes.a.elements", "FieldValueRequired", "Required value")],
            id="attribute-set-null-elements",
        ),
        pytest.param(
            changed(features(attributes={"a": {"elements": {"k": 1}}})),
            [type_error("spec.features.attributes.a.elements.k", "string", "integer")],
            id="attribute-not-string",
        ),
        pytest.param(
            changed(features(instances={"i": {"elements": {"k": "v"}}})),
            [type_error("spec.features.instances.i.elements", "array", "object")],
            id="instances-not-list",
        ),
        pytest.param(
            changed(features(instances={"i": {"elements": [{}, None]}})),
            [
                (
                    "spec.features.instances.i.elements[0].attributes",
                    "FieldValueRequired",
                    "Required value",
                ),
                type_error("spec.features.instances.i.elements[1]", "object", "null"),
            ],
            id="instance-without-attributes-and-null-item",
        ),
        pytest.param(
            changed(lambda b: b["metadata"].pop("name")),
            [
                (
                    "metadata.name",
                    "FieldValueRequired",
                    "Required value: name or generateName is required",
                )
            ],
            id="no-name",
        ),
        pytest.param(
            changed(lambda b: b["metadata"].update(name="nvidia-features-for-")),
            [
                (
                    "metadata.name",
                    "FieldValueInvalid",
                    f'Invalid value: "nvidia-features-for-": {SUBDOMAIN_RULE}',
                )
            ],
            id="gfd-47-empty-node-name",
        ),
        pytest.param(
            changed(
                lambda b: b["metadata"]["labels"].update(
                    {"nfd.node.kubernetes.io/node-name": "n" * 64}
                )
            ),
            [
                (
                    "metadata.labels",
                    "FieldValueInvalid",
                    f'Invalid value: "{"n" * 64}": must be no more than 63 characters',
                )
            ],
            id="node-name-label-too-long",
        ),
        pytest.param(
            changed(lambda b: b["metadata"]["ownerReferences"][0].pop("uid")),
            [
                (
                    "metadata.ownerReferences.uid",
                    "FieldValueInvalid",
                    'Invalid value: "": uid must not be empty',
                )
            ],
            id="owner-without-uid",
        ),
        pytest.param(
            changed(
                lambda b: b["metadata"]["ownerReferences"].append(
                    dict(DS_OWNER, name="other", uid="2")
                )
            ),
            [
                (
                    "metadata.ownerReferences",
                    "FieldValueInvalid",
                    "Invalid value: [2 references]: Only one reference can have Controller set to "
                    'true. Found "true" in references for DaemonSet/'
                    f"{DS_OWNER['name']} and DaemonSet/other",
                )
            ],
            id="two-controllers",
        ),
        pytest.param(
            changed(lambda b: b.update(kind="Node")),
            [("kind", "FieldValueInvalid", 'Invalid value: "Node": must be NodeFeature')],
            id="other-kind",
        ),
    ],
)
def test_invalid(
    server: FakeApiServer, body: dict[str, Any], causes: list[tuple[str, str, str]]
) -> None:
    code, status, _ = send(server, "POST", COLLECTION, body)
    assert (code, status["kind"], status["code"], status["reason"]) == (
        422,
        "Status",
        422,
        "Invalid",
    )
    assert [(c["field"], c["reason"], c["message"]) for c in status["details"]["causes"]] == causes
    listed = [f"{field}: {message}" for field, _, message in causes]
    shown = listed[0] if len(listed) == 1 else f"[{', '.join(listed)}]"
    name = body["metadata"].get("name", "")
    assert status["message"] == f'NodeFeature.nfd.k8s-sigs.io "{name}" is invalid: {shown}'
    assert status["details"]["kind"] == "NodeFeature"
    assert server.fake.nodefeature(NS, NAME) is None
    assert [r[0] for r in server.fake.rejections] == ["POST"]


# --- refused before validation, or after it -----------------------------------------------


@pytest.mark.parametrize(
    ("body", "query", "code", "reason", "message"),
    [
        pytest.param([writer_body()], "", 400, "BadRequest", "the body is not a JSON object",
                     id="list"),
        pytest.param(changed(lambda b: b.pop("kind")), "", 400, "BadRequest",
                     "Object 'Kind' is missing in", id="no-kind"),
        pytest.param(changed(lambda b: b.update(apiVersion="nfd.k8s-sigs.io/v1alpha2")), "",
                     400, "BadRequest", "the API version in the data (nfd.k8s-sigs.io/v1alpha2) "
                     "does not match the expected API version (nfd.k8s-sigs.io/v1alpha1)",
                     id="other-version"),
        pytest.param(changed(lambda b: b["metadata"].update(namespace="other")), "", 400,
                     "BadRequest", "the namespace of the provided object does not match",
                     id="other-namespace"),
        pytest.param(changed(lambda b: b["metadata"]["labels"].update(a=1)), "", 400,
                     "BadRequest", "metadata.labels: cannot decode", id="metadata-label-integer"),
        pytest.param(changed(lambda b: b["spec"].update(extra=1)), "?fieldValidation=Strict",
                     400, "BadRequest", 'strict decoding error: unknown field "spec.extra"',
                     id="strict-unknown-field"),
        pytest.param(changed(lambda b: b["metadata"].update(resourceVersion="7")), "", 500,
                     "InternalError", "resourceVersion should not be set on objects to be created",
                     id="create-with-version"),
    ],
)  # fmt: skip
def test_refused_outside_validation(
    server: FakeApiServer, body: object, query: str, code: int, reason: str, message: str
) -> None:
    got, status, _ = send(server, "POST", COLLECTION + query, body)
    assert (got, status["kind"], status["reason"]) == (code, "Status", reason)
    assert status["message"].startswith(message), status["message"]
    assert server.fake.nodefeature(NS, NAME) is None


# --- updates ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "code", "message"),
    [
        pytest.param(lambda b: b["metadata"].pop("resourceVersion"), 422,
                     f'NodeFeature.nfd.k8s-sigs.io "{NAME}" is invalid: metadata.resourceVersion: '
                     "Invalid value: 0x0: must be specified for an update", id="no-version"),
        pytest.param(lambda b: b["metadata"].update(name="nvidia-features-for-node-2"), 400,
                     "the name of the object (nvidia-features-for-node-2) does not match the name "
                     f"on the URL ({NAME})", id="other-name"),
        pytest.param(lambda b: b["spec"]["labels"].update(x=[]), 422,
                     f'NodeFeature.nfd.k8s-sigs.io "{NAME}" is invalid: spec.labels.x: Invalid '
                     'value: "array": spec.labels.x in body must be of type string: "array"',
                     id="bad-label"),
    ],
)  # fmt: skip
def test_update_refused(
    server: FakeApiServer, change: Callable[[dict[str, Any]], object], code: int, message: str
) -> None:
    created, stored, _ = send(server, "POST", COLLECTION, writer_body())
    assert created == 201
    body = copy.deepcopy(stored)
    change(body)
    got, status, _ = send(server, "PUT", f"{COLLECTION}/{NAME}", body)
    assert (got, status["message"]) == (code, message)
    assert server.fake.nodefeature(NS, NAME) == stored  # unchanged


def test_update_prunes_and_replaces(server: FakeApiServer) -> None:
    _, stored, _ = send(server, "POST", COLLECTION, writer_body())
    body = copy.deepcopy(stored)
    body["spec"] = {"labels": {"a.b/c": "d"}, "extra": {}}
    code, answer, warnings = send(server, "PUT", f"{COLLECTION}/{NAME}", body)
    assert (code, answer["spec"]) == (200, {"labels": {"a.b/c": "d"}})
    assert warnings == ['299 - "unknown field \\"spec.extra\\""']
    assert server.fake.pruned == [("PUT", f"{COLLECTION}/{NAME}", ["spec.extra"])]


def test_patch_is_refused_until_the_double_validates_it(server: FakeApiServer) -> None:
    send(server, "POST", COLLECTION, writer_body())
    code, status, _ = send(server, "PATCH", f"{COLLECTION}/{NAME}", {"spec": {"labels": 1}})
    assert (code, status["reason"]) == (500, "InternalError")
    assert "not validated" in status["message"]


def test_body_answered_with_a_fault_is_still_checked(server: FakeApiServer) -> None:
    server.fake.faults["POST", COLLECTION] = kmock.KubernetesError(
        status=403, reason="Forbidden", message="no", details={"x": 1}
    )
    code, status, _ = send(server, "POST", COLLECTION, changed(lambda b: b.pop("spec")))
    assert (code, status["reason"]) == (403, "Forbidden")  # authorization comes first
    assert server.fake.rejections == [("POST", COLLECTION, ["spec: Required value"])]
