"""The CDI spec as immutable records, mirroring the Go `specs-go` types.

Types alone: no I/O and no NVIDIA knowledge. Field order is the Go struct order, which
both writers follow. `to_dict()` emits exactly the wire keys (`hostPath`,
`additionalGids`, ...) with Go's `omitempty` rules, so what one writer emits the other
can read back unchanged. Fields added after 0.3.0 carry the version that added them in a
comment; `cdi.version` holds the rules themselves.

The types are `typing.NamedTuple`s: fields by keyword or position, defaults, hashable,
printed whole; copy with changes by `x._replace(field=...)`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

__all__ = [
    "ContainerEdits",
    "Device",
    "DeviceNode",
    "Hook",
    "IntelRdt",
    "Mount",
    "NetDevice",
    "Spec",
]

# Mapping keys are kept as sorted tuples of pairs so that every spec value hashes and
# compares; Go writes maps sorted by key, so the order is also the wire order.
Annotations = tuple[tuple[str, str], ...]


class DeviceNode(NamedTuple):
    path: str  # container path
    host_path: str = ""  # 0.5.0; empty means "same as path"
    type: str = ""  # "", "b", "c", "u", "p"
    major: int = 0
    minor: int = 0
    file_mode: int | None = None  # permission bits; written as a decimal integer
    permissions: str = ""  # "", "none" or letters of "rwm"
    uid: int | None = None
    gid: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path}
        if self.host_path:
            out["hostPath"] = self.host_path
        if self.type:
            out["type"] = self.type
        if self.major:
            out["major"] = self.major
        if self.minor:
            out["minor"] = self.minor
        if self.file_mode is not None:
            out["fileMode"] = self.file_mode
        if self.permissions:
            out["permissions"] = self.permissions
        if self.uid is not None:
            out["uid"] = self.uid
        if self.gid is not None:
            out["gid"] = self.gid
        return out


class Mount(NamedTuple):
    host_path: str
    container_path: str
    options: tuple[str, ...] = ()
    type: str = ""  # 0.4.0

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"hostPath": self.host_path, "containerPath": self.container_path}
        if self.options:
            out["options"] = list(self.options)
        if self.type:
            out["type"] = self.type
        return out


class Hook(NamedTuple):
    hook_name: str
    path: str
    args: tuple[str, ...] = ()  # args[0] is argv[0]: exec semantics
    env: tuple[str, ...] = ()
    timeout: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"hookName": self.hook_name, "path": self.path}
        if self.args:
            out["args"] = list(self.args)
        if self.env:
            out["env"] = list(self.env)
        if self.timeout is not None:
            out["timeout"] = self.timeout
        return out


class NetDevice(NamedTuple):  # 1.1.0
    host_interface_name: str
    name: str

    def to_dict(self) -> dict[str, Any]:
        return {"hostInterfaceName": self.host_interface_name, "name": self.name}


class IntelRdt(NamedTuple):  # 0.7.0; `schemata` and `enableMonitoring` 1.1.0
    clos_id: str = ""
    l3_cache_schema: str = ""
    mem_bw_schema: str = ""
    schemata: tuple[str, ...] = ()
    enable_monitoring: bool = False

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.clos_id:
            out["closID"] = self.clos_id
        if self.l3_cache_schema:
            out["l3CacheSchema"] = self.l3_cache_schema
        if self.mem_bw_schema:
            out["memBwSchema"] = self.mem_bw_schema
        if self.schemata:
            out["schemata"] = list(self.schemata)
        if self.enable_monitoring:
            out["enableMonitoring"] = True
        return out


class ContainerEdits(NamedTuple):
    env: tuple[str, ...] = ()
    device_nodes: tuple[DeviceNode, ...] = ()
    net_devices: tuple[NetDevice, ...] = ()  # 1.1.0
    hooks: tuple[Hook, ...] = ()
    mounts: tuple[Mount, ...] = ()
    intel_rdt: IntelRdt | None = None  # 0.7.0
    additional_gids: tuple[int, ...] = ()  # 0.7.0

    def is_empty(self) -> bool:
        """Empty edits are valid for a spec but not for a device (the CDI library's rule)."""
        return not (
            self.env
            or self.device_nodes
            or self.net_devices
            or self.hooks
            or self.mounts
            or self.intel_rdt is not None
            or self.additional_gids
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.env:
            out["env"] = list(self.env)
        if self.device_nodes:
            out["deviceNodes"] = [n.to_dict() for n in self.device_nodes]
        if self.net_devices:
            out["netDevices"] = [n.to_dict() for n in self.net_devices]
        if self.hooks:
            out["hooks"] = [h.to_dict() for h in self.hooks]
        if self.mounts:
            out["mounts"] = [m.to_dict() for m in self.mounts]
        if self.intel_rdt is not None:
            out["intelRdt"] = self.intel_rdt.to_dict()
        if self.additional_gids:
            out["additionalGids"] = list(self.additional_gids)
        return out


class Device(NamedTuple):
    name: str
    container_edits: ContainerEdits
    annotations: Annotations = ()  # 0.6.0

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name}
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        # Not omitempty in Go: a device always carries its edits.
        out["containerEdits"] = self.container_edits.to_dict()
        return out


class Spec(NamedTuple):
    version: str  # the `cdiVersion` key
    kind: str
    devices: tuple[Device, ...]
    container_edits: ContainerEdits = ContainerEdits()  # immutable: one shared default
    annotations: Annotations = ()  # 0.6.0

    @property
    def vendor(self) -> str:
        return self.kind.partition("/")[0]

    @property
    def device_class(self) -> str:
        return self.kind.partition("/")[2]

    def all_edits(self) -> Iterator[ContainerEdits]:
        """The spec-level edits, then each device's."""
        yield self.container_edits
        for device in self.devices:
            yield device.container_edits

    def with_devices(self, devices: tuple[Device, ...]) -> Spec:
        return self._replace(devices=devices)

    def to_dict(self) -> dict[str, Any]:
        """Go's JSON view: spec-level `containerEdits` is a struct, so `{}` when empty."""
        out: dict[str, Any] = {"cdiVersion": self.version, "kind": self.kind}
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        out["devices"] = [d.to_dict() for d in self.devices]
        out["containerEdits"] = self.container_edits.to_dict()
        return out
