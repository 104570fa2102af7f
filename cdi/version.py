"""CDI spec versions: which exist, and the lowest one a spec's content allows.

A producer must write the minimum version its features need: Debian's podman 4.3.1 reads
only 0.1.0 - 0.5.0, so one needless feature makes every device of the file unresolvable.
The rules are a table, newest first, as in the Go library's `specs-go/version.go`: each
row names a version and a detector that returns the field path of the first feature
needing it, so `validate` can say which field forces the version.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from cdi.spec import ContainerEdits, Spec

__all__ = [
    "KNOWN_VERSIONS",
    "LATEST",
    "MIN_VERSION_RULES",
    "is_known",
    "minimum_version",
    "parse_version",
    "required_by",
]

# Every released version; 0.1.0 and 0.2.0 are pre-releases, valid but never chosen.
KNOWN_VERSIONS: tuple[str, ...] = (
    "0.1.0",
    "0.2.0",
    "0.3.0",
    "0.4.0",
    "0.5.0",
    "0.6.0",
    "0.7.0",
    "0.8.0",
    "1.0.0",
    "1.1.0",
)
LATEST = KNOWN_VERSIONS[-1]
FLOOR = "0.3.0"

Detector = Callable[[Spec], "str | None"]


def _edits(spec: Spec) -> Iterator[tuple[str, ContainerEdits]]:
    """Each edits block with the field path it lives at: devices first, as Go walks them."""
    for i, device in enumerate(spec.devices):
        yield f"devices[{i}].containerEdits", device.container_edits
    yield "containerEdits", spec.container_edits


def _needs_1_1(spec: Spec) -> str | None:
    for path, edits in _edits(spec):
        if edits.net_devices:
            return f"{path}.netDevices"
        rdt = edits.intel_rdt
        if rdt is not None and rdt.schemata:
            return f"{path}.intelRdt.schemata"
        if rdt is not None and rdt.enable_monitoring:
            return f"{path}.intelRdt.enableMonitoring"
    return None


def _needs_0_7(spec: Spec) -> str | None:
    for path, edits in _edits(spec):
        if edits.intel_rdt is not None:
            return f"{path}.intelRdt"
        if edits.additional_gids:
            return f"{path}.additionalGids"
    return None


def _needs_0_6(spec: Spec) -> str | None:
    if spec.annotations:
        return "annotations"
    for i, device in enumerate(spec.devices):
        if device.annotations:
            return f"devices[{i}].annotations"
    vendor, _, device_class = spec.kind.partition("/")
    if vendor and "." in device_class:
        return "kind"
    return None


def _needs_0_5(spec: Spec) -> str | None:
    for i, device in enumerate(spec.devices):
        # Before 0.5.0 a device name had to start with an ASCII letter ("0", "GPU-..." ok)
        first = device.name[:1]
        if first and not (first.isascii() and first.isalpha()):
            return f"devices[{i}].name"
    for path, edits in _edits(spec):
        for j, node in enumerate(edits.device_nodes):
            if node.host_path:
                return f"{path}.deviceNodes[{j}].hostPath"
    return None


def _needs_0_4(spec: Spec) -> str | None:
    for path, edits in _edits(spec):
        for j, mount in enumerate(edits.mounts):
            if mount.type:
                return f"{path}.mounts[{j}].type"
    return None


# Newest first; the first row whose detector fires is the minimum. 0.8.0 and 1.0.0 changed
# only the Go API, so no content needs them.
MIN_VERSION_RULES: tuple[tuple[str, str, Detector], ...] = (
    ("1.1.0", "netDevices, intelRdt schemata or enableMonitoring", _needs_1_1),
    ("0.7.0", "intelRdt or additionalGids", _needs_0_7),
    ("0.6.0", "annotations or a class with a dot", _needs_0_6),
    ("0.5.0", "a device node hostPath or a device name not starting with a letter", _needs_0_5),
    ("0.4.0", "a mount type", _needs_0_4),
)


def required_by(spec: Spec) -> tuple[str, str, str] | None:
    """(version, field path, feature) of the newest feature the spec uses; None: floor."""
    for version, feature, detect in MIN_VERSION_RULES:
        path = detect(spec)
        if path is not None:
            return version, path, feature
    return None


def minimum_version(spec: Spec) -> str:
    """The lowest `cdiVersion` that allows everything in `spec` (never below 0.3.0)."""
    found = required_by(spec)
    return FLOOR if found is None else found[0]


def parse_version(text: str) -> tuple[int, ...] | None:
    """`0.5.0` -> (0, 5, 0); None for anything that is not a known version.

    Strict like CDI library <= 0.5.3 (Debian's podman): no `v` prefix. The v1.1.0
    library tolerates `v0.5.0`, but a file using it breaks older consumers, so the
    validator treats it as unknown too.
    """
    if text not in KNOWN_VERSIONS:
        return None
    return tuple(int(part) for part in text.split("."))


def is_known(text: str) -> bool:
    return text in KNOWN_VERSIONS
