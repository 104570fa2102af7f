"""The `version: v1` config shared by GFD and the device plugin (docs/config.md).

`parse_config_file()` reads a file with upstream's checks and messages, each command
merges its flags and environment over it (flag > env > file > default), and
`normalise()` applies the rules every tool shares after merging. `Config.to_json()` is
the "Running with config:" log text.
"""

from __future__ import annotations

from nvlib.config.durations import Duration
from nvlib.config.errors import ConfigError
from nvlib.config.load import FILE_ERROR_PREFIX, normalise, parse_config_data, parse_config_file
from nvlib.config.schema import (
    Config,
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
from nvlib.config.validate import (
    VALIDATE_PREFIX,
    check_device_discovery_strategy,
    check_imex_channel_ids,
    check_mig_strategy,
    validate_plugin_flags,
)

__all__ = [
    "FILE_ERROR_PREFIX",
    "VALIDATE_PREFIX",
    "Config",
    "ConfigError",
    "Duration",
    "Flags",
    "GfdFlags",
    "Imex",
    "PluginFlags",
    "ReplicatedResource",
    "ReplicatedResources",
    "Resource",
    "Resources",
    "Sharing",
    "check_device_discovery_strategy",
    "check_imex_channel_ids",
    "check_mig_strategy",
    "normalise",
    "parse_config_data",
    "parse_config_file",
    "validate_plugin_flags",
]
