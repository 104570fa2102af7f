"""What an apiserver with NFD's CRD would check in a NodeFeature body.

The schema is spec/nfd.md §5.2 written as a small JSON-schema subset (type,
properties, required, additionalProperties, items); `null` counts as absent,
as Go clients send it for empty maps. Unknown fields are rejected, which is
stricter than the apiserver's pruning: a writer that sends one has a bug.
`metadata_errors` adds the apiserver's own ObjectMeta checks (name, labels,
ownerReferences, resourceVersion), which catch GFD #47-style names.
"""

from __future__ import annotations

import re
from typing import Any

GROUP_VERSION = "nfd.k8s-sigs.io/v1alpha1"

_STRING_MAP: dict[str, Any] = {"type": "object", "additionalProperties": {"type": "string"}}


def _feature_set(elements: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": {
            "type": "object",
            "required": ["elements"],
            "properties": {"elements": elements},
            "additionalProperties": False,
        },
    }


NODEFEATURE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["spec"],
    "properties": {
        "apiVersion": {"type": "string"},
        "kind": {"type": "string"},
        "metadata": {"type": "object"},
        "spec": {
            "type": "object",
            "properties": {
                "labels": _STRING_MAP,
                "features": {
                    "type": "object",
                    "properties": {
                        "flags": _feature_set(
                            {
                                "type": "object",
                                "additionalProperties": {
                                    "type": "object",
                                    "additionalProperties": False,
                                },
                            }
                        ),
                        "attributes": _feature_set(_STRING_MAP),
                        "instances": _feature_set(
                            {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "required": ["attributes"],
                                    "properties": {"attributes": _STRING_MAP},
                                    "additionalProperties": False,
                                },
                            }
                        ),
                    },
                    "additionalProperties": False,
                },
            },
            "additionalProperties": False,
        },
    },
    "additionalProperties": False,
}

_TYPES: dict[str, type | tuple[type, ...]] = {
    "object": dict,
    "array": list,
    "string": str,
    "boolean": bool,
}


def schema_errors(value: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    """Every violation of `schema` in `value`, as `<field path>: <reason>`."""
    if value is None:
        return []
    kind = schema["type"]
    if not isinstance(value, _TYPES[kind]):
        return [f"{path or '<root>'}: must be {kind} (got {type(value).__name__})"]
    errors: list[str] = []
    if kind == "array":
        for i, item in enumerate(value):
            errors += schema_errors(item, schema["items"], f"{path}[{i}]")
    if kind != "object":
        return errors
    properties: dict[str, Any] = schema.get("properties", {})
    extra = schema.get("additionalProperties", True)
    for key in schema.get("required", []):
        if value.get(key) is None:
            errors.append(f"{_join(path, key)}: Required value")
    for key, item in value.items():
        if key in properties:
            errors += schema_errors(item, properties[key], _join(path, key))
        elif extra is False:
            errors.append(f"{_join(path, key)}: unknown field")
        elif isinstance(extra, dict):
            errors += schema_errors(item, extra, f"{path}[{key}]")
    return errors


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


_DNS_LABEL = r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?"
_DNS_SUBDOMAIN = re.compile(rf"{_DNS_LABEL}(?:\.{_DNS_LABEL})*")
_NAME_PART = re.compile(r"[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?")


def is_label_value(value: object) -> bool:
    return isinstance(value, str) and (
        value == "" or (len(value) <= 63 and _NAME_PART.fullmatch(value) is not None)
    )


def is_qualified_name(key: object) -> bool:
    if not isinstance(key, str):
        return False
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.fullmatch(prefix)):
        return False
    return len(name) <= 63 and _NAME_PART.fullmatch(name) is not None


_OWNER_FIELDS = {"apiVersion", "kind", "name", "uid", "controller", "blockOwnerDeletion"}


def metadata_errors(
    body: dict[str, Any], namespace: str, name: str | None, *, update: bool
) -> list[str]:
    """The apiserver's checks of kind and ObjectMeta for a create (name None) or an update."""
    errors: list[str] = []
    if body.get("apiVersion") != GROUP_VERSION:
        errors.append(f"apiVersion: must be {GROUP_VERSION} (got {body.get('apiVersion')!r})")
    if body.get("kind") != "NodeFeature":
        errors.append(f"kind: must be NodeFeature (got {body.get('kind')!r})")
    meta = body.get("metadata")
    if not isinstance(meta, dict):
        return [*errors, "metadata: Required value"]
    obj_name = meta.get("name")
    if (
        not isinstance(obj_name, str)
        or len(obj_name) > 253
        or not _DNS_SUBDOMAIN.fullmatch(obj_name)
    ):
        errors.append(f"metadata.name: Invalid value: {obj_name!r}: not a DNS-1123 subdomain")
    if name is not None and obj_name != name:
        errors.append(f"metadata.name: Invalid value: {obj_name!r}: does not match the URL")
    if meta.get("namespace") not in (None, namespace):
        errors.append(f"metadata.namespace: Invalid value: {meta['namespace']!r}: not {namespace}")
    version = meta.get("resourceVersion")
    if update and not version:
        errors.append("metadata.resourceVersion: Invalid value: 0: must be specified for an update")
    if not update and version:
        errors.append("metadata.resourceVersion: Invalid value: must not be set on create")
    for key, value in (meta.get("labels") or {}).items():
        if not is_qualified_name(key):
            errors.append(f"metadata.labels: Invalid value: {key!r}: not a qualified name")
        if not is_label_value(value):
            errors.append(f"metadata.labels: Invalid value: {value!r}: not a label value")
    errors += _owner_errors(meta.get("ownerReferences"))
    return errors


def _owner_errors(refs: Any) -> list[str]:
    if refs is None:
        return []
    if not isinstance(refs, list):
        return ["metadata.ownerReferences: must be array"]
    errors: list[str] = []
    for i, ref in enumerate(refs):
        where = f"metadata.ownerReferences[{i}]"
        if not isinstance(ref, dict):
            errors.append(f"{where}: must be object")
            continue
        for field in ("apiVersion", "kind", "name", "uid"):
            if not isinstance(ref.get(field), str) or not ref[field]:
                errors.append(f"{where}.{field}: Required value")
        for field in ("controller", "blockOwnerDeletion"):
            if ref.get(field) is not None and not isinstance(ref[field], bool):
                errors.append(f"{where}.{field}: must be boolean")
        errors += [f"{where}.{field}: unknown field" for field in sorted(set(ref) - _OWNER_FIELDS)]
    if sum(1 for ref in refs if isinstance(ref, dict) and ref.get("controller") is True) > 1:
        errors.append(
            "metadata.ownerReferences: Invalid value:"
            " only one reference can have Controller set to true"
        )
    return errors


def nodefeature_errors(body: Any, namespace: str, name: str | None, *, update: bool) -> list[str]:
    """Everything the double rejects with 422 in a NodeFeature create or update body."""
    if not isinstance(body, dict):
        return ["<root>: must be object"]
    return metadata_errors(body, namespace, name, update=update) + schema_errors(
        body, NODEFEATURE_SCHEMA
    )
