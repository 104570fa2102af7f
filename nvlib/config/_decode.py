"""Turn a parsed YAML/JSON tree into a `Config`, the way upstream's Go decoder does.

Upstream converts YAML to JSON (sigs.k8s.io/yaml) and decodes it non-strictly with
encoding/json plus a few hand-written UnmarshalJSON methods. Those rules decide which
files load, so they are kept here, each with the reason it looks odd:

- plain structs (`flags`, `flags.plugin`, `imex`, ...) ignore unknown keys and match
  keys case-insensitively, the last spelling in sorted key order winning;
- the hand-written sections (`sharing.*`, their `resources[]`, `resources.gpus[]`)
  look keys up exactly, and run on `null` too (so `timeSlicing: null` is an error);
- a scalar for a plain string field is turned into a string (`version: 2` reads "2").

Errors are ConfigError with the field path; the loader adds the file-level wrapping.
"""

from __future__ import annotations

import json

from nvlib.config.durations import Duration, parse_go_duration
from nvlib.config.errors import ConfigError
from nvlib.config.names import is_device_ref, qualify_resource_name, shared_rename
from nvlib.config.schema import (
    Config,
    Devices,
    Flags,
    GfdFlags,
    Imex,
    PluginFlags,
    ReplicatedResource,
    ReplicatedResources,
    Resource,
    Resources,
    Sharing,
)

_MAX_INT = (1 << 63) - 1


def raw_json(value: object) -> str:
    """The compact JSON of a value, as upstream quotes a rejected raw value."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def _kind(value: object) -> str:
    """The JSON type name Go's decoder uses in its messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _type_error(path: str, value: object, wanted: str) -> ConfigError:
    return ConfigError(path, value, f"cannot use a JSON {_kind(value)} as {wanted}")


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _plain_fields(value: object, path: str, names: tuple[str, ...]) -> dict[str, object]:
    """A plain Go struct's fields from a mapping: case-insensitive, unknown keys ignored."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _type_error(path or "config", value, "a mapping")
    by_fold = {name.lower(): name for name in names}
    found: dict[str, object] = {}
    # sigs.k8s.io/yaml re-encodes the document with sorted keys before decoding, so among
    # keys that differ only in case the one sorting last is decoded last and wins.
    for key in sorted(value):
        name = key if key in names else by_fold.get(key.lower())
        if name is not None:
            found[name] = value[key]
    return found


def _exact_fields(value: object, path: str) -> dict[str, object]:
    """A hand-written UnmarshalJSON's view: `null` reads as an empty mapping."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _type_error(path, value, "a mapping")
    return value


def _go_float_text(value: float) -> str:
    # strconv.FormatFloat(f, 'g', -1, 64) for the floats people write in a config file.
    return str(int(value)) if value.is_integer() and abs(value) < 1e21 else repr(value)


def _string(value: object, path: str) -> str | None:
    """A plain string field: None when null; other scalars become their text."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _go_float_text(value)
    raise _type_error(path, value, "a string")


def _bool(value: object, path: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise _type_error(path, value, "a boolean")


def _int(value: object, path: str) -> int:
    """An int decoded by a hand-written method: `null` leaves Go's zero value."""
    if value is None:
        return 0
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) <= _MAX_INT:
        return value
    raise _type_error(path, value, "an integer")


def _duration(value: object, path: str) -> Duration | None:
    """upstream's Duration.UnmarshalJSON: a number is nanoseconds, a string a Go duration."""
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not abs(value) <= _MAX_INT:  # also rejects nan
            raise ConfigError.upstream(path, value, "invalid duration")
        return Duration(int(value))  # Go converts float64 to Duration by truncation
    if isinstance(value, str):
        if value == "infinite":
            return Duration(None)
        try:
            return Duration(parse_go_duration(value))
        except ValueError as err:
            raise ConfigError.upstream(path, value, str(err)) from None
    raise ConfigError.upstream(path, value, "invalid duration")


class _Fields:
    """Typed reads of one plain struct's fields, each falling back to its default."""

    def __init__(self, value: object, path: str, names: tuple[str, ...]) -> None:
        self.found = _plain_fields(value, path, names)
        self.path = path

    def raw(self, key: str) -> object:
        return self.found.get(key)

    def at(self, key: str) -> str:
        return _join(self.path, key)

    def string(self, key: str, default: str) -> str:
        value = _string(self.raw(key), self.at(key))
        return default if value is None else value

    def optional_string(self, key: str) -> str | None:
        return _string(self.raw(key), self.at(key))

    def boolean(self, key: str, default: bool) -> bool:
        value = _bool(self.raw(key), self.at(key))
        return default if value is None else value


def _use_node_feature_api(value: object, path: str) -> str | None:
    """A bool as upstream has it, or the project's "auto"."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if value == "auto":
        return "auto"
    raise ConfigError(path, value, 'must be true, false or "auto"')


def _device_list_strategy(value: object, path: str) -> list[str] | None:
    """One string or a list of strings, else upstream's `invalid deviceListStrategy`."""
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(v is None or isinstance(v, str) for v in value):
        return [v or "" for v in value]
    raise ConfigError.upstream(path, value, f"invalid deviceListStrategy: {raw_json(value)}")


def decode_config(doc: object) -> Config:
    """A Config from a parsed document, with upstream's parse-time checks.

    The `version` check comes last, after the whole document decoded, as upstream's does.
    """
    fields = _plain_fields(doc, "", ("version", "flags", "resources", "sharing", "imex"))
    config = Config(
        flags=_flags(fields.get("flags"), "flags"),
        resources=_resources(fields.get("resources"), "resources"),
        sharing=_sharing(fields.get("sharing"), "sharing"),
        imex=_imex(fields.get("imex"), "imex"),
    )
    version = _string(fields.get("version"), "version") or "v1"
    if version != "v1":
        raise ConfigError.upstream("version", version, f"unknown version: {version}")
    config.version = version
    return config


_FLAG_KEYS = (
    "migStrategy", "failOnInitError", "mpsRoot", "nvidiaDriverRoot", "nvidiaDevRoot",
    "gdrcopyEnabled", "gdsEnabled", "mofedEnabled", "useNodeFeatureAPI",
    "deviceDiscoveryStrategy", "plugin", "gfd",
)  # fmt: skip


def _flags(value: object, path: str) -> Flags:
    f, d = _Fields(value, path, _FLAG_KEYS), Flags()
    nfa = _use_node_feature_api(f.raw("useNodeFeatureAPI"), f.at("useNodeFeatureAPI"))
    return Flags(
        mig_strategy=f.string("migStrategy", d.mig_strategy),
        fail_on_init_error=f.boolean("failOnInitError", d.fail_on_init_error),
        use_node_feature_api=nfa,
        device_discovery_strategy=f.string("deviceDiscoveryStrategy", d.device_discovery_strategy),
        mps_root=f.optional_string("mpsRoot"),
        nvidia_driver_root=f.optional_string("nvidiaDriverRoot"),
        nvidia_dev_root=f.optional_string("nvidiaDevRoot"),
        gdrcopy_enabled=f.boolean("gdrcopyEnabled", d.gdrcopy_enabled),
        gds_enabled=f.boolean("gdsEnabled", d.gds_enabled),
        mofed_enabled=f.boolean("mofedEnabled", d.mofed_enabled),
        gfd=_gfd_flags(f.raw("gfd"), f.at("gfd")),
        plugin=_plugin_flags(f.raw("plugin"), f.at("plugin")),
    )


_PLUGIN_KEYS = (
    "passDeviceSpecs", "deviceListStrategy", "deviceIDStrategy", "cdiAnnotationPrefix",
    "nvidiaCTKPath", "containerDriverRoot", "sharedDevicesAllocationPolicy",
)  # fmt: skip


def _plugin_flags(value: object, path: str) -> PluginFlags:
    f, d = _Fields(value, path, _PLUGIN_KEYS), PluginFlags()
    strategies = _device_list_strategy(f.raw("deviceListStrategy"), f.at("deviceListStrategy"))
    return PluginFlags(
        pass_device_specs=f.boolean("passDeviceSpecs", d.pass_device_specs),
        device_list_strategy=d.device_list_strategy if strategies is None else strategies,
        device_id_strategy=f.string("deviceIDStrategy", d.device_id_strategy),
        cdi_annotation_prefix=f.string("cdiAnnotationPrefix", d.cdi_annotation_prefix),
        nvidia_ctk_path=f.string("nvidiaCTKPath", d.nvidia_ctk_path),
        container_driver_root=f.string("containerDriverRoot", d.container_driver_root),
        shared_devices_allocation_policy=f.string(
            "sharedDevicesAllocationPolicy", d.shared_devices_allocation_policy
        ),
    )


_GFD_KEYS = (
    "oneshot", "noTimestamp", "sleepInterval", "outputFile", "machineTypeFile",
    "labelTemplates", "labelTemplateNamespaces", "labelExpiry",
)  # fmt: skip


def _gfd_flags(value: object, path: str) -> GfdFlags:
    f, d = _Fields(value, path, _GFD_KEYS), GfdFlags()
    interval = _duration(f.raw("sleepInterval"), f.at("sleepInterval"))
    namespaces_path = f.at("labelTemplateNamespaces")
    namespaces = _list(f.raw("labelTemplateNamespaces"), namespaces_path)
    expiry = f.raw("labelExpiry")
    return GfdFlags(
        oneshot=f.boolean("oneshot", d.oneshot),
        no_timestamp=f.boolean("noTimestamp", d.no_timestamp),
        sleep_interval=d.sleep_interval if interval is None else interval,
        output_file=f.string("outputFile", d.output_file),
        machine_type_file=f.string("machineTypeFile", d.machine_type_file),
        label_templates=f.string("labelTemplates", d.label_templates),
        label_template_namespaces=[
            _string_item(v, f"{namespaces_path}[{i}]") for i, v in enumerate(namespaces)
        ],
        label_expiry=_int(expiry, f.at("labelExpiry")),
    )


def _string_item(value: object, path: str) -> str:
    """A list entry that must be a string (a project field: no scalar conversion)."""
    if not isinstance(value, str):
        raise _type_error(path, value, "a string")
    return value


def _resource_name(value: object, path: str) -> str:
    """upstream's ResourceName.UnmarshalJSON: null reads as "" and fails the format check."""
    if value is not None and not isinstance(value, str):
        raise _type_error(path, value, "a resource name string")
    try:
        return qualify_resource_name(value or "")
    except ValueError as err:
        raise ConfigError.upstream(path, value, str(err)) from None


def _list(value: object, path: str) -> list[object]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _type_error(path, value, "a list")
    return value


def _resources(value: object, path: str) -> Resources:
    f = _plain_fields(value, path, ("gpus", "mig"))
    gpus, mig = _list(f.get("gpus"), f"{path}.gpus"), _list(f.get("mig"), f"{path}.mig")
    return Resources(
        gpus=[_resource(v, f"{path}.gpus[{i}]") for i, v in enumerate(gpus)],
        mig=[_resource(v, f"{path}.mig[{i}]") for i, v in enumerate(mig)],
    )


def _resource(value: object, path: str) -> Resource:
    m = _exact_fields(value, path)
    if "pattern" not in m:
        raise ConfigError.upstream(
            f"{path}.pattern", value, "resources must have a 'pattern' field set"
        )
    if "name" not in m:
        raise ConfigError.upstream(f"{path}.name", value, "resources must have a 'name' field set")
    pattern = m["pattern"]
    if pattern is not None and not isinstance(pattern, str):
        raise _type_error(f"{path}.pattern", pattern, "a string")
    return Resource(pattern=pattern or "", name=_resource_name(m["name"], f"{path}.name"))


def _sharing(value: object, path: str) -> Sharing:
    f = _plain_fields(value, path, ("timeSlicing", "mps"))
    sharing = Sharing()
    if "timeSlicing" in f:
        # A struct value upstream: its UnmarshalJSON runs even for null, and fails.
        sharing.time_slicing = _replicated(f["timeSlicing"], _join(path, "timeSlicing"))
    if f.get("mps") is not None:
        # A pointer upstream: null leaves it unset without calling UnmarshalJSON.
        sharing.mps = _replicated(f["mps"], _join(path, "mps"))
    return sharing


def _replicated(value: object, path: str) -> ReplicatedResources:
    m = _exact_fields(value, path)
    rename_by_default = bool(_bool(m.get("renameByDefault"), f"{path}.renameByDefault"))
    fail_requests = _bool(m.get("failRequestsGreaterThanOne"), f"{path}.failRequestsGreaterThanOne")
    if "resources" not in m:
        raise ConfigError.upstream(f"{path}.resources", None, "no resources specified")
    entries = _list(m["resources"], f"{path}.resources")
    resources = [_replica(v, f"{path}.resources[{i}]") for i, v in enumerate(entries)]
    if not resources:
        raise ConfigError.upstream(f"{path}.resources", entries, "no resources specified")
    if rename_by_default:
        # The loader, not normalise(), fills in the default rename, as upstream's.
        for r in resources:
            r.rename = r.rename or shared_rename(r.name)
    return ReplicatedResources(
        resources=resources,
        rename_by_default=rename_by_default,
        fail_requests_greater_than_one=fail_requests,
    )


def _replica(value: object, path: str) -> ReplicatedResource:
    m = _exact_fields(value, path)
    if "name" not in m:
        raise ConfigError.upstream(f"{path}.name", value, "no resource name specified")
    name = _resource_name(m["name"], f"{path}.name")
    devices = _devices(m.get("devices", "all"), f"{path}.devices")
    if "replicas" not in m:
        raise ConfigError.upstream(f"{path}.replicas", value, "no replicas specified")
    replicas = _int(m["replicas"], f"{path}.replicas")
    if replicas < 2:
        raise ConfigError.upstream(
            f"{path}.replicas", m["replicas"], "number of replicas must be >= 2"
        )
    rename = _resource_name(m["rename"], f"{path}.rename") if "rename" in m else ""
    return ReplicatedResource(name=name, replicas=replicas, rename=rename, devices=devices)


def _devices(value: object, path: str) -> Devices:
    """upstream's ReplicatedDevices.UnmarshalJSON: "all", a count > 0, or a list."""
    if value is None or isinstance(value, str):
        text = value or ""  # Go decodes null into a string as ""
        if text != "all":
            raise ConfigError.upstream(
                path, value, f"devices set as '{text}' but the only valid string input is 'all'"
            )
        return "all"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) <= _MAX_INT:
        if value <= 0:
            raise ConfigError.upstream(
                path, value, f"devices set as '{value}' but a count of devices must be > 0"
            )
        return value
    if isinstance(value, list):
        return [_device_ref(item, f"{path}[{i}]") for i, item in enumerate(value)]
    # Floats land here too: Go cannot decode 2.0 into an int.
    raise ConfigError.upstream(
        path, value, f"unrecognized type for devices spec: {raw_json(value)}"
    )


def _device_ref(item: object, path: str) -> str:
    if item is None:
        return "0"  # Go decodes null into a uint as 0, a valid GPU index
    if isinstance(item, int) and not isinstance(item, bool) and 0 <= item < 1 << 64:
        return str(item)
    if isinstance(item, str) and is_device_ref(item):
        return item
    # Go prints the string it tried to decode (empty for a non-string) and its type,
    # which is always string: "unsupported type for device in devices list: , string".
    shown = item if isinstance(item, str) else ""
    raise ConfigError.upstream(
        path, item, f"unsupported type for device in devices list: {shown}, string"
    )


def _imex(value: object, path: str) -> Imex:
    f = _plain_fields(value, path, ("channelIDs", "required"))
    ids_path = _join(path, "channelIDs")
    ids = [_int(v, f"{ids_path}[{i}]") for i, v in enumerate(_list(f.get("channelIDs"), ids_path))]
    required = _bool(f.get("required"), _join(path, "required"))
    return Imex(channel_ids=ids, required=bool(required))
