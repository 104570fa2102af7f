"""Read a spec file strictly, as the CDI library does: unknown keys and wrong types fail.

The Go library converts YAML to JSON with the target type in mind, then decodes strictly:
an unquoted `name: 0` or `name: 1:0` is still the string the file shows, an unknown key
anywhere fails the file, a quoted `"195"` is no device major. PyYAML's constructors would
turn `1:0` into 60 and accept any key, so this reads the composed node tree (each
scalar's text and resolved tag) against a schema of the spec types instead. Every problem
is reported with its field path. `yaml` is imported only here, and only when a file is
read.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from cdi.errors import SpecError
from cdi.spec import ContainerEdits, Device, DeviceNode, Hook, IntelRdt, Mount, NetDevice, Spec

__all__ = ["check_spec", "parse_spec", "read_spec"]

_INT_TAG = "tag:yaml.org,2002:int"
_BOOL_TAG = "tag:yaml.org,2002:bool"
_NULL_TAG = "tag:yaml.org,2002:null"
_FLOAT_TAG = "tag:yaml.org,2002:float"
_STR_TAG = "tag:yaml.org,2002:str"

_RANGES = {"int64": (-(2**63), 2**63 - 1), "uint32": (0, 2**32 - 1), "int": (-(2**63), 2**63 - 1)}


class _Problems(list[SpecError]):
    def add(self, path: str, reason: str) -> None:
        self.append(SpecError(path, reason))


def _kind_of(node: Any) -> str:
    """How Go's decoder names a JSON value's type in its errors."""
    import yaml

    if isinstance(node, yaml.MappingNode):
        return "object"
    if isinstance(node, yaml.SequenceNode):
        return "array"
    return {
        _INT_TAG: "number",
        _FLOAT_TAG: "number",
        _BOOL_TAG: "bool",
        _NULL_TAG: "null",
    }.get(node.tag, "string")


def _is_null(node: Any) -> bool:
    return node.tag == _NULL_TAG and not getattr(node, "style", None)


def _str(node: Any, path: str, problems: _Problems) -> str:
    import yaml

    if not isinstance(node, yaml.ScalarNode):
        problems.add(path, f"cannot unmarshal {_kind_of(node)} into string")
        return ""
    if _is_null(node):
        return ""
    return str(node.value)  # the text as written: `0`, `1:0`, `yes` stay strings


def _number(node: Any, path: str, problems: _Problems, go_type: str) -> int:
    import yaml

    if not isinstance(node, yaml.ScalarNode) or node.tag != _INT_TAG:
        if isinstance(node, yaml.ScalarNode) and _is_null(node):
            return 0
        problems.add(path, f"cannot unmarshal {_kind_of(node)} into {go_type}")
        return 0
    try:
        value = int(node.value.replace("_", ""), 0)
    except ValueError:
        problems.add(path, f"cannot unmarshal number {node.value} into {go_type}")
        return 0
    low, high = _RANGES[go_type]
    if not low <= value <= high:
        problems.add(path, f"cannot unmarshal number {node.value} into {go_type}")
        return 0
    return value


def _bool(node: Any, path: str, problems: _Problems) -> bool:
    import yaml

    if isinstance(node, yaml.ScalarNode) and node.tag == _BOOL_TAG:
        return node.value.lower() in ("true", "yes", "on", "y")
    if isinstance(node, yaml.ScalarNode) and _is_null(node):
        return False
    problems.add(path, f"cannot unmarshal {_kind_of(node)} into bool")
    return False


def _list(
    node: Any, path: str, problems: _Problems, item: Callable[[Any, str, _Problems], Any]
) -> tuple[Any, ...]:
    import yaml

    if isinstance(node, yaml.ScalarNode) and _is_null(node):
        return ()
    if not isinstance(node, yaml.SequenceNode):
        problems.add(path, f"cannot unmarshal {_kind_of(node)} into a list")
        return ()
    return tuple(item(child, f"{path}[{i}]", problems) for i, child in enumerate(node.value))


def _pairs(node: Any, path: str, problems: _Problems) -> list[tuple[str, Any]] | None:
    """A mapping's (key, value node) pairs; None (reported) when `node` is no mapping."""
    import yaml

    if isinstance(node, yaml.ScalarNode) and _is_null(node):
        return []
    if not isinstance(node, yaml.MappingNode):
        problems.add(path, f"cannot unmarshal {_kind_of(node)} into an object")
        return None
    pairs, seen = [], set()
    for key_node, value in node.value:
        key = str(key_node.value)
        at = f"{path}.{key}" if path else key
        if key in seen:
            problems.add(at, f'duplicate key "{key}"')
            continue
        seen.add(key)
        pairs.append((key, value))
    return pairs


def _annotations(node: Any, path: str, problems: _Problems) -> tuple[tuple[str, str], ...]:
    pairs = _pairs(node, path, problems) or []
    return tuple(sorted((k, _str(v, f"{path}.{k}", problems)) for k, v in pairs))


class _Field(NamedTuple):
    attr: str
    read: Callable[[Any, str, _Problems], Any]


def _object(cls: type, fields: dict[str, _Field]) -> Callable[[Any, str, _Problems], Any]:
    def read(node: Any, path: str, problems: _Problems) -> Any:
        pairs = _pairs(node, path, problems)
        values: dict[str, Any] = {}
        for key, value in pairs or []:
            at = f"{path}.{key}" if path else key
            known = fields.get(key)
            if known is None:
                problems.add(at, f'unknown field "{key}"')
                continue
            values[known.attr] = known.read(value, at, problems)
        return cls(**{f.attr: values.get(f.attr, _ZERO.get(f.attr, "")) for f in fields.values()})

    return read


def _s(attr: str) -> _Field:
    return _Field(attr, _str)


def _n(attr: str, go_type: str) -> _Field:
    return _Field(attr, lambda n, p, e: _number(n, p, e, go_type))


def _optional_n(attr: str, go_type: str) -> _Field:
    """A Go pointer: absent or null is None, unlike 0."""
    return _Field(attr, lambda n, p, e: None if _is_null(n) else _number(n, p, e, go_type))


def _strings(attr: str) -> _Field:
    return _Field(attr, lambda n, p, e: _list(n, p, e, _str))


# Zero values for fields a file may leave out (Go's zero value of each type).
_ZERO: dict[str, Any] = {
    "major": 0,
    "minor": 0,
    "file_mode": None,
    "uid": None,
    "gid": None,
    "timeout": None,
    "options": (),
    "args": (),
    "env": (),
    "device_nodes": (),
    "net_devices": (),
    "hooks": (),
    "mounts": (),
    "intel_rdt": None,
    "additional_gids": (),
    "annotations": (),
    "schemata": (),
    "enable_monitoring": False,
    "devices": (),
    "container_edits": ContainerEdits(),
}

_read_node = _object(
    DeviceNode,
    {
        "path": _s("path"),
        "hostPath": _s("host_path"),
        "type": _s("type"),
        "major": _n("major", "int64"),
        "minor": _n("minor", "int64"),
        "fileMode": _optional_n("file_mode", "uint32"),
        "permissions": _s("permissions"),
        "uid": _optional_n("uid", "uint32"),
        "gid": _optional_n("gid", "uint32"),
    },
)
_read_mount = _object(
    Mount,
    {
        "hostPath": _s("host_path"),
        "containerPath": _s("container_path"),
        "options": _strings("options"),
        "type": _s("type"),
    },
)
_read_hook = _object(
    Hook,
    {
        "hookName": _s("hook_name"),
        "path": _s("path"),
        "args": _strings("args"),
        "env": _strings("env"),
        "timeout": _optional_n("timeout", "int"),
    },
)
_read_net_device = _object(
    NetDevice, {"hostInterfaceName": _s("host_interface_name"), "name": _s("name")}
)
_read_intel_rdt = _object(
    IntelRdt,
    {
        "closID": _s("clos_id"),
        "l3CacheSchema": _s("l3_cache_schema"),
        "memBwSchema": _s("mem_bw_schema"),
        "schemata": _strings("schemata"),
        "enableMonitoring": _Field("enable_monitoring", _bool),
    },
)


def _optional(read: Callable[[Any, str, _Problems], Any]) -> Callable[[Any, str, _Problems], Any]:
    return lambda n, p, e: None if _is_null(n) else read(n, p, e)


_read_edits = _object(
    ContainerEdits,
    {
        "env": _strings("env"),
        "deviceNodes": _Field("device_nodes", lambda n, p, e: _list(n, p, e, _read_node)),
        "netDevices": _Field("net_devices", lambda n, p, e: _list(n, p, e, _read_net_device)),
        "hooks": _Field("hooks", lambda n, p, e: _list(n, p, e, _read_hook)),
        "mounts": _Field("mounts", lambda n, p, e: _list(n, p, e, _read_mount)),
        "intelRdt": _Field("intel_rdt", _optional(_read_intel_rdt)),
        "additionalGids": _Field(
            "additional_gids",
            lambda n, p, e: _list(n, p, e, lambda c, cp, ce: _number(c, cp, ce, "uint32")),
        ),
    },
)
_read_device = _object(
    Device,
    {
        "name": _s("name"),
        "annotations": _Field("annotations", _annotations),
        "containerEdits": _Field("container_edits", _read_edits),
    },
)
_read_spec = _object(
    Spec,
    {
        "cdiVersion": _s("version"),
        "kind": _s("kind"),
        "annotations": _Field("annotations", _annotations),
        "devices": _Field("devices", lambda n, p, e: _list(n, p, e, _read_device)),
        "containerEdits": _Field("container_edits", _read_edits),
    },
)


def parse_spec(data: bytes | str) -> tuple[Spec | None, list[SpecError]]:
    """Decode spec text (YAML or JSON) strictly: (the spec, its decoding problems).

    The spec is None when the text is no spec at all (a syntax error, an empty file,
    a list). Content rules are `cdi.validate`'s; `read_spec` runs both.
    """
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        # The first document only, as Go's yaml.Unmarshal reads it.
        node = next(iter(yaml.compose_all(data, Loader=loader)), None)
    except yaml.YAMLError as err:
        return None, [SpecError("", f"failed to unmarshal CDI Spec: {err}")]
    if node is None or (isinstance(node, yaml.ScalarNode) and _is_null(node)):
        return None, [SpecError("", "no Spec data")]
    if not isinstance(node, yaml.MappingNode):
        return None, [SpecError("", f"cannot unmarshal {_kind_of(node)} into a CDI Spec")]
    problems = _Problems()
    spec = _read_spec(node, "", problems)
    return spec, list(problems)


def read_spec(path: str) -> tuple[Spec | None, list[SpecError]]:
    """Load and validate one spec file: (the spec if it is usable, every problem found).

    Each problem names `path`. The spec is returned only when there is no problem, as a
    CDI consumer skips a file with any error.
    """
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as err:
        return None, [SpecError("", f"failed to read CDI Spec: {err.strerror}", path)]
    return check_spec(data, path)


def check_spec(data: bytes | str, file: str) -> tuple[Spec | None, list[SpecError]]:
    """`read_spec` for text already read: decode, validate, name `file` in each problem.

    `file` is what the messages call the source: a path, or `<stdin>` for a spec piped in.
    """
    from cdi.validate import validate

    spec, problems = parse_spec(data)
    if spec is not None:
        problems += validate(spec)
    problems = [p.in_file(file) for p in problems]
    return (spec if not problems else None), problems
