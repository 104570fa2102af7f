"""What an apiserver serving NFD's NodeFeature CRD does with a create or update body.

The schema is the `v1alpha1` openAPIV3Schema that node-feature-discovery v0.19.0 ships
for `nodefeatures.nfd.k8s-sigs.io`, restated here: the object needs `spec`; `spec` has
`labels` (string map) and `features`, whose `flags`, `attributes` and `instances` are
maps of feature sets that each need `elements` (flags: a map of empty objects;
attributes: a string map; instances: a list of `{attributes: <string map>}`, each
needing `attributes`). Nothing else is required, nothing is nullable, nothing has a
default.

An apiserver takes a body in three steps, and `review` answers as each would:

1. decode: a body that is no object, lacks `kind`, names another API version, has
   metadata of the wrong JSON type, or names another namespace (or, on update, another
   object) than the URL is a 400 BadRequest;
2. prune: a `null` where the schema does not allow one is dropped (a null list item is
   not: it fails the type check), and so is every field the schema does not declare,
   with a warning; only `?fieldValidation=Strict` makes an unknown field a 400;
3. validate: `kind`, ObjectMeta (name, labels, annotations, owner references, the
   resourceVersion an update needs) and the schema (types, required fields) give a 422
   Invalid listing every error, as `<field>: <what>`. A create carrying a
   resourceVersion passes validation and fails in storage: a 500.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

GROUP = "nfd.k8s-sigs.io"
GROUP_VERSION = f"{GROUP}/v1alpha1"
KIND = "NodeFeature"

_STRING_MAP: dict[str, Any] = {"type": "object", "additionalProperties": {"type": "string"}}


def _feature_sets(elements: dict[str, Any]) -> dict[str, Any]:
    """A map of feature-set name -> {elements: ...}, elements required."""
    return {
        "type": "object",
        "additionalProperties": {
            "type": "object",
            "required": ["elements"],
            "properties": {"elements": elements},
        },
    }


NODEFEATURE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["spec"],
    "properties": {
        "apiVersion": {"type": "string"},
        "kind": {"type": "string"},
        "metadata": {"type": "object", "x-kubernetes-object-meta": True},
        "spec": {
            "type": "object",
            "properties": {
                "labels": _STRING_MAP,
                "features": {
                    "type": "object",
                    "properties": {
                        # An empty struct: an object with no declared fields.
                        "flags": _feature_sets(
                            {"type": "object", "additionalProperties": {"type": "object"}}
                        ),
                        "attributes": _feature_sets(_STRING_MAP),
                        "instances": _feature_sets(
                            {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "required": ["attributes"],
                                    "properties": {"attributes": _STRING_MAP},
                                },
                            }
                        ),
                    },
                },
            },
        },
    },
}

# ObjectMeta's JSON fields (everything else in metadata is pruned) and their JSON types.
_META_FIELDS: dict[str, str] = {
    "name": "string",
    "generateName": "string",
    "namespace": "string",
    "selfLink": "string",
    "uid": "string",
    "resourceVersion": "string",
    "generation": "integer",
    "creationTimestamp": "string",
    "deletionTimestamp": "string",
    "deletionGracePeriodSeconds": "integer",
    "labels": "string map",
    "annotations": "string map",
    "ownerReferences": "array",
    "finalizers": "array",
    "managedFields": "array",
}
_OWNER_FIELDS: dict[str, str] = {
    "apiVersion": "string",
    "kind": "string",
    "name": "string",
    "uid": "string",
    "controller": "boolean",
    "blockOwnerDeletion": "boolean",
}


@dataclass(frozen=True)
class FieldError:
    """One field.Error of the apiserver: `<field>: <body>`."""

    path: str
    kind: str  # Required, Invalid or TypeInvalid
    detail: str = ""
    shown: str = ""  # the value as the apiserver prints it (Go syntax)

    @property
    def body(self) -> str:
        text = "Required value" if self.kind == "Required" else f"Invalid value: {self.shown}"
        return f"{text}: {self.detail}" if self.detail else text

    def __str__(self) -> str:
        return f"{self.path}: {self.body}"

    def cause(self) -> dict[str, str]:
        reason = {"Required": "FieldValueRequired", "TypeInvalid": "FieldValueTypeInvalid"}
        return {
            "reason": reason.get(self.kind, "FieldValueInvalid"),
            "message": self.body,
            "field": self.path,
        }


@dataclass
class Review:
    """The apiserver's answer: `code` None means accepted, and `obj` is what it stores."""

    obj: Any
    code: int | None = None
    reason: str = ""
    message: str = ""
    errors: list[FieldError] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)  # pruned fields, as warned

    @property
    def warnings(self) -> list[str]:
        return [f'unknown field "{path}"' for path in self.unknown]


def review(
    body: Any, namespace: str, name: str | None, *, update: bool, strict: bool = False
) -> Review:
    """A create (`name` None) or update (`name` from the URL) body, as the apiserver takes it."""
    refusal = _decode_error(body, namespace, name)
    if refusal:
        return Review(body, 400, "BadRequest", refusal)
    unknown: list[str] = []
    errors: list[FieldError] = []
    pruned = _prune(body, NODEFEATURE_SCHEMA, "", unknown, errors)
    if strict and unknown:
        listed = ", ".join(f'unknown field "{path}"' for path in unknown)
        message = f"strict decoding error: {listed}"
        return Review(pruned, 400, "BadRequest", message, unknown=unknown)
    errors = _meta_errors(pruned, update) + errors
    if errors:
        shown = (pruned.get("metadata") or {}).get("name") or name or ""
        listed = str(errors[0]) if len(errors) == 1 else f"[{', '.join(map(str, errors))}]"
        message = f'{KIND}.{GROUP} "{shown}" is invalid: {listed}'
        return Review(pruned, 422, "Invalid", message, errors, unknown)
    if not update and pruned.get("metadata", {}).get("resourceVersion"):
        message = "resourceVersion should not be set on objects to be created"
        return Review(pruned, 500, "InternalError", message, unknown=unknown)
    return Review(pruned, unknown=unknown)


# --- 1. decode ----------------------------------------------------------------------


def _decode_error(body: Any, namespace: str, name: str | None) -> str:
    if not isinstance(body, dict):
        return f"the body is not a JSON object: {json.dumps(body)[:80]}"
    if not isinstance(body.get("kind"), str) or not body["kind"]:
        return f"Object 'Kind' is missing in '{json.dumps(body)[:80]}'"
    if body.get("apiVersion") != GROUP_VERSION:
        return (
            f"the API version in the data ({body.get('apiVersion') or ''}) does not match "
            f"the expected API version ({GROUP_VERSION})"
        )
    meta = body.get("metadata")
    if meta is None:
        return ""
    if not isinstance(meta, dict):
        return f"metadata: cannot decode {_json_type(meta)} into ObjectMeta"
    for key, kind in _META_FIELDS.items():
        if meta.get(key) is not None and not _is_json_type(meta[key], kind):
            return f"metadata.{key}: cannot decode {_json_type(meta[key])} into {kind}"
    for ref in meta.get("ownerReferences") or []:
        if not isinstance(ref, dict):
            return f"metadata.ownerReferences: cannot decode {_json_type(ref)} into object"
        for key, kind in _OWNER_FIELDS.items():
            if ref.get(key) is not None and not _is_json_type(ref[key], kind):
                return f"metadata.ownerReferences.{key}: cannot decode {_json_type(ref[key])}"
    if meta.get("namespace") not in (None, "", namespace):
        return (
            "the namespace of the provided object does not match the namespace sent on the request"
        )
    if name is not None and meta.get("name") != name:
        return (
            f"the name of the object ({meta.get('name') or ''}) does not match "
            f"the name on the URL ({name})"
        )
    return ""


def _is_json_type(value: Any, kind: str) -> bool:
    if kind == "string map":
        return isinstance(value, dict) and all(isinstance(v, str) for v in value.values())
    return _json_type(value) == kind


def _json_type(value: Any) -> str:
    """The name the apiserver's schema validation gives a decoded JSON value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return {str: "string", list: "array", dict: "object"}.get(type(value), type(value).__name__)


# --- 2. prune, and the schema's own checks --------------------------------------------


def _prune(
    value: Any, schema: dict[str, Any], path: str, unknown: list[str], errors: list[FieldError]
) -> Any:
    """`value` without nulls and undeclared fields; type and required errors into `errors`."""
    kind = schema["type"]
    if _json_type(value) != kind:
        got = _json_type(value)
        detail = f'{path or "body"} in body must be of type {kind}: "{got}"'
        errors.append(FieldError(path or "<root>", "TypeInvalid", detail, f'"{got}"'))
        return value
    if kind == "array":
        return [
            _prune(item, schema["items"], f"{path}[{i}]", unknown, errors)
            for i, item in enumerate(value)
        ]
    if kind != "object":
        return value
    if schema.get("x-kubernetes-object-meta"):
        return _prune_meta(value, path, unknown)
    properties: dict[str, Any] = schema.get("properties", {})
    extra: dict[str, Any] | None = schema.get("additionalProperties")
    kept: dict[str, Any] = {}
    for key, item in value.items():
        sub = properties.get(key, extra)
        where = f"{path}.{key}" if path else key
        if sub is None:
            unknown.append(where)
        elif item is not None:  # a non-nullable null without a default is dropped
            kept[key] = _prune(item, sub, where, unknown, errors)
    for key in schema.get("required", []):
        if key not in kept:
            errors.append(FieldError(f"{path}.{key}" if path else key, "Required"))
    return kept


def _prune_meta(meta: dict[str, Any], path: str, unknown: list[str]) -> dict[str, Any]:
    kept = {}
    for key, item in meta.items():
        if key not in _META_FIELDS:
            unknown.append(f"{path}.{key}")
        elif item is not None:
            kept[key] = item
    if "ownerReferences" in kept:
        refs = []
        for ref in kept["ownerReferences"]:
            where = f"{path}.ownerReferences"
            unknown += [f"{where}.{key}" for key in ref if key not in _OWNER_FIELDS]
            refs.append({k: v for k, v in ref.items() if k in _OWNER_FIELDS and v is not None})
        kept["ownerReferences"] = refs
    return kept


# --- 3. validate: kind and ObjectMeta ---------------------------------------------------

_DNS_LABEL = r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?"
_DNS_SUBDOMAIN = re.compile(rf"{_DNS_LABEL}(?:\.{_DNS_LABEL})*")
_NAME_PART = re.compile(r"[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?")
_SUBDOMAIN_RULE = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
    "'-' or '.', and must start and end with an alphanumeric character"
)
_NAME_RULE = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start "
    "and end with an alphanumeric character"
)
_VALUE_RULE = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', "
    "'_' or '.', and must start and end with an alphanumeric character"
)


def is_label_value(value: object) -> bool:
    return isinstance(value, str) and (
        value == "" or (len(value) <= 63 and _NAME_PART.fullmatch(value) is not None)
    )


def qualified_name_error(key: str) -> str:
    """Why `key` is not a qualified name (`[prefix/]name`), or ""."""
    prefix, slash, name = key.rpartition("/")
    if slash and (not prefix or len(prefix) > 253 or not _DNS_SUBDOMAIN.fullmatch(prefix)):
        return f"prefix part {_SUBDOMAIN_RULE}"
    if len(name) > 63:
        return "name part must be no more than 63 characters"
    if not _NAME_PART.fullmatch(name):
        return _NAME_RULE
    return ""


def _meta_errors(obj: dict[str, Any], update: bool) -> list[FieldError]:
    errors: list[FieldError] = []
    if obj["kind"] != KIND:
        errors.append(FieldError("kind", "Invalid", f"must be {KIND}", _quoted(obj["kind"])))
    meta: dict[str, Any] = obj.get("metadata") or {}
    name = meta.get("name")
    if not name:
        errors.append(FieldError("metadata.name", "Required", "name or generateName is required"))
    elif len(name) > 253 or not _DNS_SUBDOMAIN.fullmatch(name):
        detail = "must be no more than 253 characters" if len(name) > 253 else _SUBDOMAIN_RULE
        errors.append(FieldError("metadata.name", "Invalid", detail, _quoted(name)))
    for key, value in (meta.get("labels") or {}).items():
        if problem := qualified_name_error(key):
            errors.append(FieldError("metadata.labels", "Invalid", problem, _quoted(key)))
        if not is_label_value(value):
            detail = "must be no more than 63 characters" if len(value) > 63 else _VALUE_RULE
            errors.append(FieldError("metadata.labels", "Invalid", detail, _quoted(value)))
    for key in meta.get("annotations") or {}:
        if problem := qualified_name_error(key.lower()):
            errors.append(FieldError("metadata.annotations", "Invalid", problem, _quoted(key)))
    errors += _owner_errors(meta.get("ownerReferences") or [])
    if update and not meta.get("resourceVersion"):
        # The apiserver prints the parsed version, Go's %#v of uint64 0.
        detail = "must be specified for an update"
        errors.append(FieldError("metadata.resourceVersion", "Invalid", detail, "0x0"))
    return errors


def _owner_errors(refs: list[dict[str, Any]]) -> list[FieldError]:
    # The apiserver names these fields without the list index.
    where = "metadata.ownerReferences"
    errors: list[FieldError] = []
    for ref in refs:
        for key, what in (("apiVersion", "version"), ("kind", "kind"), ("name", "name"),
                          ("uid", "uid")):  # fmt: skip
            if not ref.get(key):
                detail = f"{what} must not be empty"
                errors.append(FieldError(f"{where}.{key}", "Invalid", detail, '""'))
    controllers = [ref for ref in refs if ref.get("controller") is True]
    if len(controllers) > 1:
        names = " and ".join(f"{r.get('kind')}/{r.get('name')}" for r in controllers)
        detail = (
            'Only one reference can have Controller set to true. Found "true" in references'
            f" for {names}"
        )
        errors.append(FieldError(where, "Invalid", detail, f"[{len(refs)} references]"))
    return errors


def _quoted(text: str) -> str:
    return json.dumps(text)
