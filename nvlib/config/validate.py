"""The start-up checks on merged flags, with upstream's texts (docs/config.md#start-up-checks).

GFD runs only `check_device_discovery_strategy`; the plugin runs `validate_plugin_flags`,
in upstream's order. Each raises ConfigError carrying the config-file key as its path;
callers add `unable to validate flags: ...` and above.
"""

from __future__ import annotations

from nvlib.config.errors import ConfigError
from nvlib.config.names import label_namespace_problem
from nvlib.config.schema import Config

VALIDATE_PREFIX = "unable to validate flags"
DISCOVERY_STRATEGIES = ("auto", "nvml")
UNSUPPORTED_DISCOVERY_STRATEGIES = ("tegra", "vfio")  # upstream has them; we do not yet
MIG_STRATEGIES = ("none", "single", "mixed")
DEVICE_LIST_STRATEGIES = ("envvar", "volume-mounts", "cdi-annotations", "cdi-cri")
DEVICE_ID_STRATEGIES = ("uuid", "index")
ALLOCATION_POLICIES = ("distributed", "packed")


def check_device_discovery_strategy(value: str) -> None:
    path = "flags.deviceDiscoveryStrategy"
    if value in DISCOVERY_STRATEGIES:
        return
    text = f"invalid --device-discovery-strategy option {value}"
    if value in UNSUPPORTED_DISCOVERY_STRATEGIES:
        text += ": not supported"  # [PROJECT] tegra and vfio are not implemented
    raise ConfigError.upstream(path, value, text)


def check_label_template_namespaces(namespaces: list[str], path: str) -> None:
    """Every namespace a label template may write besides nvidia.com is one NFD accepts.

    `path` names where the list came from: the flag, its variable or the config key.
    """
    for namespace in namespaces:
        problem = label_namespace_problem(namespace)
        if problem is not None:
            raise ConfigError(path, namespace, f"not a label namespace NFD accepts: {problem}")


def check_label_expiry(
    expiry: int, path: str, *, oneshot: bool, infinite: bool, node_feature_api: bool
) -> None:
    """`--label-expiry K`: 0 (off) or at least 2 intervals, on a loop that rewrites the file.

    One interval is refused: the labels would lapse whenever a pass runs a little late.
    `node_feature_api` is an explicit `--use-node-feature-api=true` (auto is decided later).
    """
    if expiry == 0:
        return
    if expiry < 2:
        raise ConfigError(
            path,
            expiry,
            "must be 0 (no expiry) or at least 2 sleep intervals: labels that expire one"
            " interval ahead lapse whenever a pass runs late",
        )
    if oneshot:
        raise ConfigError(path, expiry, "a one-shot run never rewrites the file to renew it")
    if infinite:
        raise ConfigError(path, expiry, "an infinite sleep interval never renews it")
    if node_feature_api:
        raise ConfigError(
            path, expiry, "the expiry is a feature-file directive; a NodeFeature object has none"
        )


def check_mig_strategy(value: str) -> None:
    if value not in MIG_STRATEGIES:
        raise ConfigError.upstream("flags.migStrategy", value, f"unknown MIG strategy: {value}")


def check_imex_channel_ids(ids: list[int]) -> None:
    """Only `[]` or `[0]`, as upstream; Go prints the list as `[2 3]`."""
    if ids and ids != [0]:
        shown = "[" + " ".join(str(i) for i in ids) + "]"
        raise ConfigError.upstream(
            "imex.channelIDs",
            ids,
            f"invalid IMEX config: channelIDs must be [] or [0]; found {shown}",
        )


def validate_plugin_flags(config: Config, *, nvml_available: bool) -> None:
    """The plugin's checks in upstream's order; the first failure is raised."""
    flags, plugin = config.flags, config.flags.plugin
    for strategy in plugin.device_list_strategy:
        if strategy not in DEVICE_LIST_STRATEGIES:
            raise ConfigError.upstream(
                "flags.plugin.deviceListStrategy",
                strategy,
                f"invalid --device-list-strategy option: invalid strategy: {strategy}",
            )
    if not nvml_available and any(s.startswith("cdi-") for s in plugin.device_list_strategy):
        raise ConfigError.upstream(
            "flags.plugin.deviceListStrategy",
            plugin.device_list_strategy,
            "CDI --device-list-strategy options are only supported on NVML-based systems",
        )
    if plugin.device_id_strategy not in DEVICE_ID_STRATEGIES:
        raise ConfigError.upstream(
            "flags.plugin.deviceIDStrategy",
            plugin.device_id_strategy,
            f"invalid --device-id-strategy option: {plugin.device_id_strategy}",
        )
    policy = plugin.shared_devices_allocation_policy
    if policy not in ALLOCATION_POLICIES:
        raise ConfigError.upstream(
            "flags.plugin.sharedDevicesAllocationPolicy",
            policy,
            f"invalid --shared-devices-allocation-policy option: {policy}",
        )
    if config.sharing.sharing_strategy() == "mps":
        if flags.mig_strategy == "mixed":
            raise ConfigError.upstream(
                "flags.migStrategy",
                flags.mig_strategy,
                "using --mig-strategy=mixed is not supported with MPS",
            )
        if not flags.mps_root:
            raise ConfigError.upstream(
                "flags.mpsRoot", flags.mps_root, "using MPS requires --mps-root to be specified"
            )
    check_device_discovery_strategy(flags.device_discovery_strategy)
    check_mig_strategy(flags.mig_strategy)
    try:
        check_imex_channel_ids(config.imex.channel_ids)
    except ConfigError as err:
        raise err.wrapped("invalid IMEX channel IDs") from err
