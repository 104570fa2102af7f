"""Validate a spec as strictly as the CDI library does, naming the field of each problem.

The checks and their wording are the Go library's (`pkg/cdi`, `api/producer`, v1.1.0;
docs/cdi.md#validate): a known `cdiVersion` at least the minimum its content needs, a valid
kind, valid names, non-empty device edits, valid environment, device nodes, hooks,
mounts, intelRdt and netDevices, no device defined twice. Unlike the library, which stops
at the first problem, every problem is reported, each with its field path. One project
rule is added: a 1-character vendor or class, which crashes CDI lib <= 0.5.
Unknown keys and wrong types are caught earlier, when the file is decoded (`cdi.load`).
"""

from __future__ import annotations

import json
import re

from cdi import names
from cdi.errors import SpecError
from cdi.spec import ContainerEdits, Spec
from cdi.version import KNOWN_VERSIONS, parse_version, required_by

__all__ = ["validate"]

_HOOK_NAMES = frozenset(
    {"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"}
)
_NODE_TYPES = frozenset({"", "b", "c", "u", "p"})
# Kubernetes qualified names, the intended rule for annotation keys.
# Patterns, not compiled regexes: `re.match` compiles one on first use (and caches it),
# so a spec without annotations, every generated one, never pays ~0.4 ms each for them.
_K8S_NAME = r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$"
_DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
_ANNOTATIONS_MAX = 256 * 1024


def q(text: str) -> str:
    """Go's `%q` for the strings that occur here."""
    return json.dumps(text, ensure_ascii=False)


def _env_errors(path: str, env: tuple[str, ...], prefix: str = "") -> list[SpecError]:
    return [
        SpecError(f"{path}[{i}]", f"{prefix}invalid environment variable {q(v)}")
        for i, v in enumerate(env)
        if v.find("=") <= 0
    ]


def _edits_errors(path: str, edits: ContainerEdits) -> list[SpecError]:
    errors = _env_errors(f"{path}.env", edits.env)
    for i, node in enumerate(edits.device_nodes):
        at = f"{path}.deviceNodes[{i}]"
        if not node.path:
            errors.append(SpecError(f"{at}.path", "invalid (empty) device path"))
            continue
        if node.type not in _NODE_TYPES:
            errors.append(
                SpecError(f"{at}.type", f"device {q(node.path)}: invalid type {q(node.type)}")
            )
        if node.major < 0 or node.minor < 0:
            errors.append(
                SpecError(
                    f"{at}.major" if node.major < 0 else f"{at}.minor",
                    f"device {q(node.path)}: invalid (negative) device number "
                    f"{node.major}:{node.minor}",
                )
            )
        if node.permissions not in ("", "none") and node.permissions.strip("rwm"):
            errors.append(
                SpecError(
                    f"{at}.permissions",
                    f"device {q(node.path)}: invalid permissions {q(node.permissions)}",
                )
            )
    for i, hook in enumerate(edits.hooks):
        at = f"{path}.hooks[{i}]"
        if hook.hook_name not in _HOOK_NAMES:
            errors.append(SpecError(f"{at}.hookName", f"invalid hook name {q(hook.hook_name)}"))
        if not hook.path:
            errors.append(
                SpecError(f"{at}.path", f"invalid hook {q(hook.hook_name)} with empty path")
            )
        if any(v.find("=") <= 0 for v in hook.env):  # q() only for an error text
            errors += _env_errors(f"{at}.env", hook.env, f"invalid hook {q(hook.hook_name)}: ")
    for i, mount in enumerate(edits.mounts):
        at = f"{path}.mounts[{i}]"
        if not mount.host_path:
            errors.append(SpecError(f"{at}.hostPath", "invalid mount, empty host path"))
        if not mount.container_path:
            errors.append(SpecError(f"{at}.containerPath", "invalid mount, empty container path"))
    rdt = edits.intel_rdt
    if rdt is not None and rdt.clos_id != "/":
        c = rdt.clos_id
        if len(c) >= 4096 or c in (".", "..") or "/" in c or "\n" in c:
            errors.append(SpecError(f"{path}.intelRdt.closID", "invalid ClosID"))
    errors += _net_device_errors(path, edits)
    return errors


def _net_device_errors(path: str, edits: ContainerEdits) -> list[SpecError]:
    errors = []
    hosts: dict[str, str] = {}
    seen: dict[str, str] = {}
    for i, dev in enumerate(edits.net_devices):
        at = f"{path}.netDevices[{i}]"
        if not dev.host_interface_name:
            errors.append(
                SpecError(
                    f"{at}.hostInterfaceName", "invalid linux net device, empty HostInterfaceName"
                )
            )
            continue
        if not dev.name:
            errors.append(SpecError(f"{at}.name", "invalid linux net device, empty Name"))
            continue
        if dev.host_interface_name in hosts:
            errors.append(
                SpecError(
                    f"{at}.hostInterfaceName",
                    "invalid linux net device, duplicate HostInterfaceName "
                    f"{q(dev.host_interface_name)} with names {q(dev.name)} and "
                    f"{q(hosts[dev.host_interface_name])}",
                )
            )
        hosts[dev.host_interface_name] = dev.name
        if dev.name in seen:
            errors.append(
                SpecError(
                    f"{at}.name",
                    f"invalid linux net device, duplicate Name {q(dev.name)} with "
                    f"HostInterfaceName {q(dev.host_interface_name)} and {q(seen[dev.name])}",
                )
            )
        seen[dev.name] = dev.host_interface_name
    return errors


def _annotation_errors(path: str, annotations: tuple[tuple[str, str], ...]) -> list[SpecError]:
    errors = []
    size = 0
    for key, value in annotations:
        size += len(key) + len(value)
        prefix, slash, name = key.rpartition("/")
        bad = not name or len(name) > 63 or not re.match(_K8S_NAME, name)
        if slash:
            bad = bad or not prefix or len(prefix) > 253 or not re.match(_DNS_SUBDOMAIN, prefix)
        if bad:
            errors.append(
                SpecError(f"{path}.{key}", f"invalid annotation key {q(key)}: not a qualified name")
            )
    if size > _ANNOTATIONS_MAX:
        errors.append(SpecError(path, f"annotations size {size} exceeds {_ANNOTATIONS_MAX} bytes"))
    return errors


def _version_errors(spec: Spec) -> list[SpecError]:
    declared = parse_version(spec.version)
    if declared is None:
        known = ", ".join(KNOWN_VERSIONS)
        return [SpecError("cdiVersion", f"invalid version {q(spec.version)} (known: {known})")]
    needed = required_by(spec)
    # required_by names only known versions, which parse
    if needed is not None and parse_version(needed[0]) > declared:  # type: ignore[operator]
        version, path, feature = needed
        return [
            SpecError(
                path,
                f"the spec version must be at least v{version} ({feature}; "
                f"cdiVersion is {spec.version})",
            )
        ]
    return []


def _kind_errors(kind: str) -> list[SpecError]:
    vendor, slash, device_class = kind.partition("/")
    if not (slash and vendor and device_class):
        return [SpecError("kind", f"invalid kind {q(kind)}: want <vendor>/<class>")]
    reasons = (
        names.vendor_error(vendor),
        names.class_error(device_class),
        names.short_qualifier_error(vendor, device_class),
    )
    return [SpecError("kind", reason) for reason in reasons if reason is not None]


def validate(spec: Spec) -> list[SpecError]:
    """Every problem in `spec`, in file order; empty when a CDI consumer would load it."""
    errors = _version_errors(spec) + _kind_errors(spec.kind)
    errors += _annotation_errors("annotations", spec.annotations)
    errors += _edits_errors("containerEdits", spec.container_edits)
    first_seen: dict[str, int] = {}
    # Edits found without a problem: a device named several ways (index, UUID) carries
    # equal edits under each name, and whether they have a problem does not depend on
    # where they are (only the problem's field path does).
    valid: set[ContainerEdits] = set()
    for i, device in enumerate(spec.devices):
        at = f"devices[{i}]"
        if device.name in first_seen:
            errors.append(
                SpecError(
                    f"{at}.name",
                    f"invalid spec, multiple device {q(device.name)} "
                    f"(first at devices[{first_seen[device.name]}])",
                )
            )
        else:
            first_seen[device.name] = i
        reason = names.device_name_error(device.name)
        if reason is not None:
            errors.append(SpecError(f"{at}.name", reason))
        errors += _annotation_errors(f"{at}.annotations", device.annotations)
        if device.container_edits.is_empty():
            errors.append(SpecError(f"{at}.containerEdits", "invalid device, empty device edits"))
        if device.container_edits not in valid:
            problems = _edits_errors(f"{at}.containerEdits", device.container_edits)
            if problems:
                errors += problems
            else:
                valid.add(device.container_edits)
    if not spec.devices:
        errors.append(SpecError("devices", "invalid spec, no devices"))
    return errors
