"""The `version: v1` config shared by GFD and the device plugin, as plain classes.

Field names are Python's; `to_json()` writes upstream's camelCase keys in upstream's
order and with its omission rules, because the "Running with config:" log line is what
users paste into bug reports and compare with upstream's (docs/config.md).
Values are always resolved (defaults filled in); the few that upstream leaves unset on
purpose are `None`: `mps_root`, `nvidia_driver_root`, `nvidia_dev_root`, an absent
sharing section, and an unset `failRequestsGreaterThanOne`.

The classes are `Plain` (nvlib/record.py): dataclass behaviour (keyword or positional
construction, `==`, repr, mutable) without @dataclass's generated code and import,
which would cost GFD's start about 12 ms.
"""

from __future__ import annotations

import json
from typing import Literal

from nvlib.config.durations import Duration
from nvlib.record import Plain, factory

Devices = Literal["all"] | int | list[str]

DEFAULT_OUTPUT_FILE = "/etc/kubernetes/node-feature-discovery/features.d/gfd"
DEFAULT_MACHINE_TYPE_FILE = "/sys/class/dmi/id/product_name"
DEFAULT_SLEEP_INTERVAL = Duration(60 * 1_000_000_000)


class ReplicatedResource(Plain):
    """One `sharing.<timeSlicing|mps>.resources[]` entry; names are fully qualified."""

    name: str
    replicas: int
    rename: str = ""
    devices: Devices = "all"  # "all", a count > 0, or GPU/MIG indices and UUIDs


class ReplicatedResources(Plain):
    resources: list[ReplicatedResource]
    rename_by_default: bool = False
    fail_requests_greater_than_one: bool | None = None  # None: unset (MPS turns it on)


class Sharing(Plain):
    time_slicing: ReplicatedResources | None = None
    mps: ReplicatedResources | None = None

    def sharing_strategy(self) -> str:
        """`mps`, `time-slicing` or `none`, by which section replicates (docs/labels.md#sharing)."""
        if self.mps is not None and _is_replicated(self.mps):
            return "mps"
        if self.time_slicing is not None and _is_replicated(self.time_slicing):
            return "time-slicing"
        return "none"

    def replicated_resources(self) -> ReplicatedResources | None:
        """The MPS section whenever it is present at all, replicas or not; else time-slicing.

        Upstream ignores time-slicing entries as soon as an `mps` key exists.
        """
        return self.mps if self.mps is not None else self.time_slicing

    def replication_for(self, resource_name: str) -> ReplicatedResource | None:
        """The entry of the active section for `resource_name` (`nvidia.com/gpu`, ...)."""
        section = self.replicated_resources()
        if section is None:
            return None
        return next((r for r in section.resources if r.name == resource_name), None)


def _is_replicated(section: ReplicatedResources) -> bool:
    return any(r.replicas > 1 for r in section.resources)


class GfdFlags(Plain):
    oneshot: bool = False
    no_timestamp: bool = False
    sleep_interval: Duration = DEFAULT_SLEEP_INTERVAL
    output_file: str = DEFAULT_OUTPUT_FILE
    machine_type_file: str = DEFAULT_MACHINE_TYPE_FILE
    # The project's additions (docs/labels.md): off by default, so the labels and the
    # feature file stay upstream's. "" = no templates; "builtin" = the shipped ones.
    label_templates: str = ""
    label_template_namespaces: list[str] = factory(list)  # besides nvidia.com
    label_expiry: int = 0  # sleep intervals until NFD drops the labels; 0 = no directive


class PluginFlags(Plain):
    pass_device_specs: bool = False
    device_list_strategy: list[str] = factory(lambda: ["envvar"])
    device_id_strategy: str = "uuid"
    cdi_annotation_prefix: str = "cdi.k8s.io/"
    nvidia_ctk_path: str = "/usr/bin/nvidia-ctk"
    container_driver_root: str = "/driver-root"
    shared_devices_allocation_policy: str = "distributed"


class Flags(Plain):
    mig_strategy: str = "none"
    fail_on_init_error: bool = True
    # "true" | "false" | "auto" (docs/labels-output.md); None: unset, which GFD reads as "auto"
    # and the plugin logs as null, as upstream's plugin logs a flag it does not own.
    use_node_feature_api: str | None = None
    device_discovery_strategy: str = "auto"
    mps_root: str | None = None
    nvidia_driver_root: str | None = None  # the plugin's --driver-root fills in "/"
    nvidia_dev_root: str | None = None  # normalise() copies the driver root when unset
    gdrcopy_enabled: bool = False
    gds_enabled: bool = False
    mofed_enabled: bool = False
    gfd: GfdFlags = factory(GfdFlags)
    plugin: PluginFlags = factory(PluginFlags)


class Resource(Plain):
    """A `resources.gpus[]` / `resources.mig[]` entry (parsed, then ignored, as upstream)."""

    pattern: str
    name: str


class Resources(Plain):
    gpus: list[Resource] = factory(list)
    mig: list[Resource] = factory(list)


class Imex(Plain):
    channel_ids: list[int] = factory(list)
    required: bool = False


class Config(Plain):
    version: str = "v1"
    flags: Flags = factory(Flags)
    resources: Resources = factory(Resources)
    sharing: Sharing = factory(Sharing)
    imex: Imex = factory(Imex)

    def to_json(self, *, include_gfd: bool = True) -> str:
        """The indented JSON upstream logs after `Running with config:`.

        The plugin passes `include_gfd=False`: upstream's plugin drops `flags.gfd`.
        """
        doc = {
            "version": self.version,
            "flags": _flags_doc(self.flags, include_gfd),
            "resources": _resources_doc(self.resources),
            "sharing": _sharing_doc(self.sharing),
            "imex": _imex_doc(self.imex),
        }
        text = json.dumps(doc, indent=2, ensure_ascii=False)
        # Go's encoder escapes these three inside strings; nothing else in JSON holds them.
        return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _flags_doc(flags: Flags, include_gfd: bool) -> dict[str, object]:
    nfa = flags.use_node_feature_api
    spelled: dict[str | None, object] = {"true": True, "false": False}
    doc: dict[str, object] = {
        "migStrategy": flags.mig_strategy,
        "failOnInitError": flags.fail_on_init_error,
    }
    # Upstream marks these three omitempty: they appear only when set.
    for key, value in (
        ("mpsRoot", flags.mps_root),
        ("nvidiaDriverRoot", flags.nvidia_driver_root),
        ("nvidiaDevRoot", flags.nvidia_dev_root),
    ):
        if value is not None:
            doc[key] = value
    doc |= {
        "gdrcopyEnabled": flags.gdrcopy_enabled,
        "gdsEnabled": flags.gds_enabled,
        "mofedEnabled": flags.mofed_enabled,
        # A bool as upstream writes it, or the project's "auto", so the log reads back.
        "useNodeFeatureAPI": spelled.get(nfa, nfa),
        "deviceDiscoveryStrategy": flags.device_discovery_strategy,
    }
    plugin = flags.plugin
    doc["plugin"] = {
        "passDeviceSpecs": plugin.pass_device_specs,
        "deviceListStrategy": list(plugin.device_list_strategy),
        "deviceIDStrategy": plugin.device_id_strategy,
        "cdiAnnotationPrefix": plugin.cdi_annotation_prefix,
        "nvidiaCTKPath": plugin.nvidia_ctk_path,
        "containerDriverRoot": plugin.container_driver_root,
        "sharedDevicesAllocationPolicy": plugin.shared_devices_allocation_policy,
    }
    if include_gfd:
        gfd = flags.gfd
        doc["gfd"] = gfd_doc = {
            "oneshot": gfd.oneshot,
            "noTimestamp": gfd.no_timestamp,
            "sleepInterval": str(gfd.sleep_interval),
            "outputFile": gfd.output_file,
            "machineTypeFile": gfd.machine_type_file,
        }
        # Upstream has none of these: logged only when set, so a default run logs
        # upstream's text.
        if gfd.label_templates:
            gfd_doc["labelTemplates"] = gfd.label_templates
        if gfd.label_template_namespaces:
            gfd_doc["labelTemplateNamespaces"] = list(gfd.label_template_namespaces)
        if gfd.label_expiry:
            gfd_doc["labelExpiry"] = gfd.label_expiry
    return doc


def _resources_doc(resources: Resources) -> dict[str, object]:
    # `gpus` has no omitempty upstream, so an empty list prints as Go's nil slice: null.
    doc: dict[str, object] = {
        "gpus": [{"pattern": r.pattern, "name": r.name} for r in resources.gpus] or None
    }
    if resources.mig:
        doc["mig"] = [{"pattern": r.pattern, "name": r.name} for r in resources.mig]
    return doc


def _sharing_doc(sharing: Sharing) -> dict[str, object]:
    # timeSlicing is a struct value upstream (always printed, `{}` when unset); mps a pointer.
    doc: dict[str, object] = {"timeSlicing": _replicated_doc(sharing.time_slicing)}
    if sharing.mps is not None:
        doc["mps"] = _replicated_doc(sharing.mps)
    return doc


def _replicated_doc(section: ReplicatedResources | None) -> dict[str, object]:
    doc: dict[str, object] = {}
    if section is None:
        return doc
    if section.rename_by_default:
        doc["renameByDefault"] = True
    if section.fail_requests_greater_than_one is not None:
        doc["failRequestsGreaterThanOne"] = section.fail_requests_greater_than_one
    if section.resources:
        doc["resources"] = [_replica_doc(r) for r in section.resources]
    return doc


def _replica_doc(resource: ReplicatedResource) -> dict[str, object]:
    doc: dict[str, object] = {"name": resource.name}
    if resource.rename:
        doc["rename"] = resource.rename
    devices = resource.devices
    doc["devices"] = list(devices) if isinstance(devices, list) else devices
    doc["replicas"] = resource.replicas
    return doc


def _imex_doc(imex: Imex) -> dict[str, object]:
    doc: dict[str, object] = {}
    if imex.channel_ids:
        doc["channelIDs"] = list(imex.channel_ids)
    if imex.required:
        doc["required"] = True
    return doc
