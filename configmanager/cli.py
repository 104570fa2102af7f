"""The `config-manager` command line and environment: upstream's flags, variables and
defaults, read with the same Go-compatible rules as the other commands
(nvlib/config/cliflags.py: command line > environment > default).

The project adds `--heartbeat-file` / `CONFIG_MANAGER_HEARTBEAT_FILE` (a liveness
heartbeat for the sidecar, touched after every list and watch event or end; not with
`--oneshot`), `--help` and `--version`. Imports nothing heavy.
"""

from __future__ import annotations

import signal
from collections.abc import Mapping, Sequence
from typing import NamedTuple

from nvlib.config.cliflags import Flag, format_help, parse_flags
from nvlib.config.errors import ConfigError

COMMAND = "config-manager"
SUMMARY = "pick this node's device plugin / GFD config by a node label, and reload the daemon"
DEFAULT_NODE_LABEL = "nvidia.com/device-plugin.config"
DEFAULT_PROCESS = "nvidia-device-plugin"

FLAGS: tuple[Flag, ...] = (
    Flag("oneshot", "bool", False, "check and update the config only once and then exit",
         envs=("ONESHOT",)),
    Flag("kubeconfig", "string", "",
         "absolute path to the kubeconfig file (empty: the pod's service account)",
         envs=("KUBECONFIG",)),
    Flag("node-name", "string", "", "the name of the node to watch for label changes on",
         envs=("NODE_NAME",)),
    Flag("node-label", "string", DEFAULT_NODE_LABEL,
         "the name of the node label to use for selecting a config", envs=("NODE_LABEL",)),
    Flag("config-file-srcdir", "string", "",
         "the path to the directory containing available device configuration files",
         envs=("CONFIG_FILE_SRCDIR",)),
    Flag("config-file-dst", "string", "",
         "the path to destination device configuration file", envs=("CONFIG_FILE_DST",)),
    Flag("default-config", "string", "", "the name of the config to use if no label is set",
         envs=("DEFAULT_CONFIG",)),
    Flag("fallback-strategies", "string-list", [],
         "ordered list of fallback strategies to use to set a default config when none is"
         " provided: named (the config 'default'), single (the only config), empty (no"
         " config)", envs=("FALLBACK_STRATEGIES",)),
    Flag("send-signal", "bool", True,
         "send a signal to <process-to-signal> once a config change has been made",
         envs=("SEND_SIGNAL",)),
    Flag("signal", "int", int(signal.SIGHUP),
         "the signal to send to <process-to-signal> if <send-signal> is set",
         envs=("SIGNAL",)),
    Flag("process-to-signal", "string", DEFAULT_PROCESS,
         "the name of the process to signal if <send-signal> is set",
         envs=("PROCESS_TO_SIGNAL",)),
    Flag("heartbeat-file", "string", "",
         "a file whose mtime is set after every list and watch event of the node, for a"
         " liveness probe (python3 -m nvlib.heartbeat check); not with --oneshot",
         envs=("CONFIG_MANAGER_HEARTBEAT_FILE",)),
    Flag("help", "bool", False, "show help", aliases=("h",)),
    Flag("version", "bool", False, "print the version", aliases=("v",)),
)  # fmt: skip

# Upstream's checks, in its order and words.
_REQUIRED = ("node-name", "node-label", "config-file-srcdir", "config-file-dst")


class Settings(NamedTuple):
    oneshot: bool
    kubeconfig: str
    node_name: str
    node_label: str
    config_file_srcdir: str
    config_file_dst: str
    default_config: str
    fallback_strategies: tuple[str, ...]
    send_signal: bool
    signal: int
    process_to_signal: str
    heartbeat_file: str
    show_version: bool = False


def usage() -> str:
    return format_help(COMMAND, SUMMARY, FLAGS)


def parse(argv: Sequence[str], environ: Mapping[str, str]) -> Settings:
    """Resolve every option and check them; ConfigError with upstream's text.

    `-h` prints the usage and exits 0; `--version` skips the checks.
    """
    parsed = parse_flags(COMMAND, SUMMARY, argv, environ, FLAGS)
    settings = Settings(
        oneshot=parsed.boolean("oneshot"),
        kubeconfig=parsed.text("kubeconfig"),
        node_name=parsed.text("node-name"),
        node_label=parsed.text("node-label"),
        config_file_srcdir=parsed.text("config-file-srcdir"),
        config_file_dst=parsed.text("config-file-dst"),
        default_config=parsed.text("default-config"),
        fallback_strategies=tuple(parsed.texts("fallback-strategies")),
        send_signal=parsed.boolean("send-signal"),
        signal=parsed.integer("signal"),
        process_to_signal=parsed.text("process-to-signal"),
        heartbeat_file=parsed.text("heartbeat-file"),
        show_version=parsed.boolean("version"),
    )
    if not settings.show_version:
        validate(settings, parsed.values)
    return settings


def validate(settings: Settings, values: Mapping[str, object]) -> None:
    for name in _REQUIRED:
        if values[name] == "":
            raise ConfigError.upstream(
                f"--{name}", "", f"invalid <{name}>: must not be empty string"
            )
    if settings.heartbeat_file and settings.oneshot:
        raise ConfigError(
            "--heartbeat-file", settings.heartbeat_file, "a one-shot run has no loop to prove alive"
        )
    if settings.send_signal:
        valid = {int(s) for s in signal.valid_signals()}
        if settings.signal not in valid or settings.signal == 0:
            raise ConfigError("--signal", settings.signal, "not a signal number")
