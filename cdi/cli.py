"""The `nvidia-cdi` command line: `generate`, `list`, `validate`, `transform root`.

`generate` keeps `nvidia-ctk cdi generate`'s flag names, aliases, environment variables
and defaults where they mean the same (docs/cdi.md#generate), with the project's changes:
`--output` defaults to `/var/run/cdi/nvidia.yaml` (`-` is standard output), and
`--nvml-mock`, `--simulator-root`, `--watch`, `--interval`, `--heartbeat-file` (a
liveness heartbeat `--watch` touches after every check, nvlib/heartbeat.py) and
`--metrics-address` (Prometheus metrics of `--watch`, cdi/metrics.py) are added.
Each option resolves as command line > environment > default. Repeatable flags also take
comma-separated lists, as urfave/cli does.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from typing import NamedTuple

from cdi import names
from cdi.generate import HOOK_NAMES
from cdi.registry import DEFAULT_SPEC_DIRS
from cdi.transform import RELATIVE_TO
from nvlib.config.durations import parse_go_duration
from nvlib.metrics import parse_address

__all__ = [
    "GENERATE_ENV",
    "GenerateSettings",
    "ListSettings",
    "TransformRootSettings",
    "ValidateSettings",
    "parse",
]

DEFAULT_OUTPUT = "/var/run/cdi/nvidia.yaml"
DEFAULT_INTERVAL = "30s"
DEFAULT_INTERVAL_NS = 30_000_000_000
FEATURE_FLAGS = (
    "enable-explicit-driver-libraries",
    "disable-nvsandboxutils",
    "disable-nvsandbox-utils",  # upstream's alias for the typo
    "enable-coherent-annotations",
    "disable-multiple-csv-devices",
    "no-additional-gids-for-device-nodes",
    "disable-ipc-discoverer",
)
# Flags that change nothing in this generator: no nvsandboxutils, no CSV (Tegra) mode.
IGNORED_FEATURE_FLAGS = frozenset(
    {"disable-nvsandboxutils", "disable-nvsandbox-utils", "disable-multiple-csv-devices"}
)


# --mode values: those this generator builds, and upstream's others,
# which are refused by name rather than as unknown.
MODES = ("auto", "nvml", "imex", "management")
UPSTREAM_ONLY_MODES = ("csv", "gdrcopy", "gds", "mofed", "nvswitch", "wsl", "vfio")
# `--vendor` and `--class` defaults that depend on the mode.
_MODE_VENDOR = {"management": "management.nvidia.com"}
_MODE_CLASS = {"imex": "imex-channel"}


class GenerateSettings(NamedTuple):
    """`generate`'s options, resolved."""

    output: str = DEFAULT_OUTPUT
    format: str | None = None  # None: from the output's extension
    mode: str = "nvml"  # nvml (what auto resolves to), imex or management
    driver_root: str | None = None  # None: "/", or the simulated profile's driver root
    dev_root: str | None = None  # None: the driver root
    # Where --driver-root / --dev-root are mounted in this container: read there, named
    # in the spec as the host has them (a generator in a pod). None: read them as given.
    driver_root_ctr_path: str | None = None
    dev_root_ctr_path: str | None = None
    library_search_paths: tuple[str, ...] = ()
    config_search_paths: tuple[str, ...] = ()
    hook_path: str | None = None  # None: searched for (driverfiles.find_hook_path)
    ldconfig_path: str | None = None
    device_name_strategies: tuple[str, ...] = names.DEFAULT_STRATEGIES
    vendor: str = names.DEFAULT_VENDOR
    device_class: str = names.DEFAULT_CLASS
    disabled_hooks: tuple[str, ...] = ()
    enabled_hooks: tuple[str, ...] = ()
    feature_flags: tuple[str, ...] = ()
    no_all_device: bool = False
    device_ids: tuple[str, ...] = ("all",)  # GPU/MIG indexes or UUIDs, all, none
    nvml_mock: str | None = None
    # With nvml_mock: lay the simulated driver root out here and name it in the spec.
    simulator_root: str | None = None
    watch: bool = False
    interval_ns: int = DEFAULT_INTERVAL_NS
    heartbeat_file: str | None = None  # --watch only
    metrics_address: str | None = None  # --watch only: HOST:PORT of /metrics, checked


class ListSettings(NamedTuple):
    spec_dirs: tuple[str, ...]


class ValidateSettings(NamedTuple):
    paths: tuple[str, ...]


class TransformRootSettings(NamedTuple):
    """`transform root`'s options, as `nvidia-ctk cdi transform root` names them."""

    from_root: str = ""  # "" is `/` (cdi.transform.change_root)
    to_root: str = ""
    input_path: str = "-"  # standard input
    output: str = "-"  # standard output
    relative_to: str = "host"


class UsageError(ValueError):
    """A flag or environment value the command cannot use; exit status 2."""


def _split(values: Sequence[str]) -> list[str]:
    """Repeated flags and comma lists, flattened, empties dropped (urfave StringSlice)."""
    return [part.strip() for v in values for part in v.split(",") if part.strip()]


def _bool_env(name: str, value: str) -> bool:
    if value.lower() in ("1", "t", "true"):
        return True
    if value.lower() in ("0", "f", "false", ""):
        return False
    raise UsageError(f"{name}: invalid boolean {value!r}")


def _generate_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "generate",
        help="write the CDI spec for this node's GPUs",
        description="Generate the CDI spec for the NVIDIA GPUs of this node.",
    )
    a = p.add_argument
    a("--output", help=f"spec file to write; - for standard output (default {DEFAULT_OUTPUT})")
    a("--format", help="yaml or json (default: from the output's extension, else yaml)")
    a("--mode", "--discovery-mode", help="discovery mode: auto, nvml, imex or management")
    a("--driver-root", help="root of the driver installation (default /)")
    a("--dev-root", help="root of the device nodes (default: the driver root)")
    a(
        "--driver-root-ctr-path",
        help="where --driver-root is mounted in this container: read there, named as on the host",
    )
    a(
        "--dev-root-ctr-path",
        help="where --dev-root is mounted in this container (default: from the driver root's)",
    )
    a("--library-search-path", action="append", default=[], help="directory to find libraries in")
    a("--config-search-path", action="append", default=[], help="directory to find configs in")
    a("--nvidia-cdi-hook-path", "--nvidia-ctk-path", dest="hook_path", help="hook binary path")
    a("--ldconfig-path", help="ldconfig for the update-ldcache hook")
    a(
        "--device-name-strategy",
        action="append",
        default=[],
        help="index, uuid or type-index; repeatable (default: index and uuid)",
    )
    a(
        "--vendor",
        "--cdi-vendor",
        help=f"CDI vendor (default {names.DEFAULT_VENDOR}; management mode: management.nvidia.com)",
    )
    a(
        "--class",
        "--cdi-class",
        dest="device_class",
        help=f"CDI class (default {names.DEFAULT_CLASS}; imex mode: imex-channel)",
    )
    a(
        "--disable-hook",
        "--disable-hooks",
        action="append",
        default=[],
        help="hook to leave out; all",
    )
    a("--enable-hook", "--enable-hooks", action="append", default=[], help="hook to add (chmod)")
    a("--feature-flag", "--feature-flags", action="append", default=[], help="toolkit feature flag")
    a("--no-all-device", action="store_true", default=None, help="leave out the `all` device")
    a(
        "--device-id",
        "--device-ids",
        "--device",
        "--devices",
        dest="device_id",
        action="append",
        default=[],
        help="GPU or MIG index (0, 0:1) or UUID, all or none; repeatable (default: all)",
    )
    a("--nvml-mock", help="simulate a built-in machine (or a YAML profile) instead of NVML")
    a(
        "--simulator-root",
        metavar="DIR",
        help="with --nvml-mock: lay the simulated driver root out in DIR (device nodes as "
        "real character devices, needs CAP_MKNOD) and write the spec with its paths",
    )
    a("--watch", action="store_true", help="keep the spec in step with the node until stopped")
    a("--interval", help=f"--watch check interval, a Go duration (default {DEFAULT_INTERVAL})")
    a(
        "--heartbeat-file",
        metavar="PATH",
        help="--watch touches it after every check, for a liveness probe"
        " (python3 -m nvlib.heartbeat check)",
    )
    a(
        "--metrics-address",
        metavar="HOST:PORT",
        help="--watch serves Prometheus metrics at http://HOST:PORT/metrics (e.g. :9412)",
    )
    for action in p._actions:  # name each option's environment variable in --help
        variables = GENERATE_ENV.get(action.dest)
        if variables and action.help:
            action.help += f" [${', $'.join(variables)}]"


# flag dest -> environment variables, first set wins
GENERATE_ENV: dict[str, tuple[str, ...]] = {
    "output": ("NVIDIA_CTK_CDI_OUTPUT_FILE_PATH",),
    "format": ("NVIDIA_CTK_CDI_GENERATE_OUTPUT_FORMAT",),
    "mode": ("NVIDIA_CTK_CDI_GENERATE_MODE",),
    "driver_root": ("NVIDIA_CTK_DRIVER_ROOT",),
    "dev_root": ("NVIDIA_CTK_DEV_ROOT",),
    "driver_root_ctr_path": ("DRIVER_ROOT_CTR_PATH",),
    "dev_root_ctr_path": ("DEV_ROOT_CTR_PATH",),
    "library_search_path": ("NVIDIA_CTK_CDI_GENERATE_LIBRARY_SEARCH_PATHS",),
    "config_search_path": ("NVIDIA_CTK_CDI_GENERATE_CONFIG_SEARCH_PATHS",),
    "hook_path": ("NVIDIA_CTK_CDI_HOOK_PATH",),
    "ldconfig_path": ("NVIDIA_CTK_CDI_GENERATE_LDCONFIG_PATH",),
    "device_name_strategy": ("NVIDIA_CTK_CDI_GENERATE_DEVICE_NAME_STRATEGIES",),
    "vendor": ("NVIDIA_CTK_CDI_GENERATE_VENDOR",),
    "device_class": ("NVIDIA_CTK_CDI_GENERATE_CLASS",),
    "disable_hook": ("NVIDIA_CTK_CDI_GENERATE_DISABLED_HOOKS",),
    "enable_hook": ("NVIDIA_CTK_CDI_GENERATE_ENABLED_HOOKS",),
    "feature_flag": ("NVIDIA_CTK_CDI_GENERATE_FEATURE_FLAGS",),
    "no_all_device": ("NVIDIA_CTK_CDI_GENERATE_NO_ALL_DEVICE",),
    "device_id": ("NVIDIA_CTK_CDI_GENERATE_DEVICE_IDS",),
    "nvml_mock": ("NVML_MOCK",),
    "heartbeat_file": ("NVIDIA_CTK_CDI_GENERATE_HEARTBEAT_FILE",),
    "metrics_address": ("NVIDIA_CTK_CDI_GENERATE_METRICS_ADDRESS",),
    "simulator_root": ("NVIDIA_CTK_CDI_GENERATE_SIMULATOR_ROOT",),
}


def _apply_env(ns: argparse.Namespace, env: Mapping[str, str]) -> None:
    for dest, variables in GENERATE_ENV.items():
        current = getattr(ns, dest)
        if current not in (None, []):
            continue  # set on the command line
        for variable in variables:
            if variable in env:
                value = env[variable]
                if isinstance(current, list):
                    setattr(ns, dest, [value])
                elif dest == "no_all_device":
                    setattr(ns, dest, _bool_env(variable, value))
                else:
                    setattr(ns, dest, value)
                break


def _absolute_or_none(path: str | None, flag: str) -> str | None:
    if not path:
        return None
    if not path.startswith("/"):
        raise UsageError(f"{flag} {path}: must be an absolute path")
    return path


# The roots --simulator-root replaces: the simulated driver root is DIR itself.
_ROOT_FLAGS = (
    ("driver_root", "--driver-root"),
    ("dev_root", "--dev-root"),
    ("driver_root_ctr_path", "--driver-root-ctr-path"),
    ("dev_root_ctr_path", "--dev-root-ctr-path"),
)


def _simulator_root(ns: argparse.Namespace) -> str | None:
    root: str | None = ns.simulator_root or None
    if root is None:
        return None
    if not ns.nvml_mock:
        raise UsageError(
            f"--simulator-root {root}: needs --nvml-mock (it lays out a simulated machine)"
        )
    if not root.startswith("/"):
        raise UsageError(f"--simulator-root {root}: must be an absolute path")
    if not root.strip("/"):
        raise UsageError(f"--simulator-root {root}: must be a directory of its own, not /")
    for dest, flag in _ROOT_FLAGS:
        if getattr(ns, dest):
            raise UsageError(
                f"--simulator-root {root}: cannot be combined with {flag} "
                f"({getattr(ns, dest)}): the simulated driver and dev root is {root}"
            )
    return os.path.normpath(root)


def _interval(text: str | None) -> int:
    if text is None:
        return DEFAULT_INTERVAL_NS

    try:
        interval = parse_go_duration(text)
    except ValueError as err:
        raise UsageError(f"--interval: {err}") from err
    if interval <= 0:
        raise UsageError(f"--interval {text}: must be positive")
    return interval


def _metrics_address(address: str | None, watch: bool) -> str | None:
    if not address:
        return None
    if not watch:
        raise UsageError(f"--metrics-address {address}: only with --watch")

    try:
        parse_address(address)
    except ValueError as err:
        raise UsageError(f"--metrics-address {address}: {err}") from err
    return address


def _to_generate(ns: argparse.Namespace) -> GenerateSettings:
    mode = (ns.mode or "auto").lower()
    if mode in UPSTREAM_ONLY_MODES:
        raise UsageError(f"--mode {mode}: not supported here (want {', '.join(MODES)})")
    if mode not in MODES:
        raise UsageError(f"invalid discovery mode: {mode}")
    mode = "nvml" if mode == "auto" else mode  # no Tegra (csv) or WSL detection here
    fmt = ns.format.lower() if ns.format else None
    if fmt not in (None, "yaml", "json"):
        raise UsageError(f"--format {ns.format}: want yaml or json")
    strategies = _split(ns.device_name_strategy) or [*names.DEFAULT_STRATEGIES]
    for s in strategies:
        if s not in names.STRATEGIES:
            raise UsageError(f"invalid device name strategy: {s}")

    for hook in _split(ns.disable_hook) + _split(ns.enable_hook):
        if hook not in (*HOOK_NAMES, "all"):
            raise UsageError(f"unknown hook {hook!r}: want {', '.join(HOOK_NAMES)} or all")
    flags = _split(ns.feature_flag)
    for flag in flags:
        if flag not in FEATURE_FLAGS:
            raise UsageError(f"unknown feature flag: {flag}")
    if ns.heartbeat_file and not ns.watch:
        raise UsageError(f"--heartbeat-file {ns.heartbeat_file}: only with --watch")
    metrics_address = _metrics_address(ns.metrics_address, ns.watch)
    return GenerateSettings(
        output=ns.output or DEFAULT_OUTPUT,
        format=fmt,
        mode=mode,
        driver_root=ns.driver_root or None,
        dev_root=ns.dev_root or None,
        driver_root_ctr_path=_absolute_or_none(ns.driver_root_ctr_path, "--driver-root-ctr-path"),
        dev_root_ctr_path=_absolute_or_none(ns.dev_root_ctr_path, "--dev-root-ctr-path"),
        library_search_paths=tuple(_split(ns.library_search_path)),
        config_search_paths=tuple(_split(ns.config_search_path)),
        hook_path=ns.hook_path or None,
        ldconfig_path=ns.ldconfig_path or None,
        device_name_strategies=tuple(dict.fromkeys(strategies)),
        vendor=ns.vendor or _MODE_VENDOR.get(mode, names.DEFAULT_VENDOR),
        device_class=ns.device_class or _MODE_CLASS.get(mode, names.DEFAULT_CLASS),
        disabled_hooks=tuple(_split(ns.disable_hook)),
        enabled_hooks=tuple(_split(ns.enable_hook)),
        feature_flags=tuple(flags),
        no_all_device=bool(ns.no_all_device),
        device_ids=tuple(dict.fromkeys(_split(ns.device_id))) or ("all",),
        nvml_mock=ns.nvml_mock or None,
        simulator_root=_simulator_root(ns),
        watch=ns.watch,
        interval_ns=_interval(ns.interval),
        heartbeat_file=ns.heartbeat_file or None,
        metrics_address=metrics_address,
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nvidia-cdi",
        description="Write, list and check CDI specs for NVIDIA GPUs.",
    )
    parser.add_argument("--version", action="store_true", help="print the version")
    sub = parser.add_subparsers(dest="command", metavar="{generate,list,validate,transform}")
    _generate_parser(sub)
    lister = sub.add_parser("list", help="list the CDI devices the spec directories define")
    lister.add_argument(
        "--spec-dir",
        action="append",
        default=[],
        help="spec directory, lowest priority first (default /etc/cdi, /var/run/cdi)",
    )
    checker = sub.add_parser("validate", help="check spec files as strictly as the CDI library")
    checker.add_argument("paths", nargs="+", metavar="PATH", help="spec file or directory")
    _transform_parser(sub)
    return parser


def _transform_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`transform root`: upstream's flags and defaults; upstream reads no environment."""
    transform = sub.add_parser(
        "transform",
        help="rewrite a CDI spec (root)",
        description="Apply a transform to a CDI spec.",
    )
    kinds = transform.add_subparsers(dest="transform", metavar="{root}", required=True)
    p = kinds.add_parser(
        "root",
        help="move the spec's paths from one root to another",
        description="Move the host (or container) paths of a CDI spec from one root to "
        "another, e.g. a spec generated with the driver at /run/nvidia/driver to /.",
    )
    a = p.add_argument
    a(
        "--from",
        dest="from_root",
        default="",
        metavar="ROOT",
        help="root to move paths from (default /)",
    )
    a(
        "--to",
        dest="to_root",
        default="",
        metavar="ROOT",
        help="root to move them to (default /); equal to --from: no change",
    )
    a(
        "--input",
        default="-",
        metavar="PATH",
        help="spec file to read; - for standard input (default -)",
    )
    a(
        "--output",
        default="",
        metavar="PATH",
        help="spec file to write; - for standard output (the default)",
    )
    a(
        "--relative-to",
        default="host",
        metavar="{host,container}",
        help="which side of each edit moves (default host)",
    )


def _to_transform_root(ns: argparse.Namespace) -> TransformRootSettings:
    if ns.relative_to not in RELATIVE_TO:
        raise UsageError(f"invalid --relative-to value: {ns.relative_to}")  # upstream's words
    for flag, root in (("--from", ns.from_root), ("--to", ns.to_root)):
        # A relative root could only match relative paths, and would make host paths
        # relative: nothing an engine can use, so refuse it rather than write it.
        if root and not root.startswith("/"):
            raise UsageError(f"{flag} {root}: want an absolute path (empty means /)")
    return TransformRootSettings(
        from_root=ns.from_root,
        to_root=ns.to_root,
        input_path=ns.input or "-",
        output=ns.output or "-",  # upstream: empty is standard output
        relative_to=ns.relative_to,
    )


def parse(
    argv: Sequence[str], environ: Mapping[str, str] | None = None
) -> GenerateSettings | ListSettings | ValidateSettings | TransformRootSettings | None:
    """Settings for the command `argv` names; None for `--version`.

    argparse exits 2 with a usage message for unknown flags; UsageError covers values.
    """
    env = os.environ if environ is None else environ
    parser = _parser()
    ns = parser.parse_args(list(argv))
    if ns.version:
        return None
    if ns.command == "generate":
        _apply_env(ns, env)
        return _to_generate(ns)
    if ns.command == "list":
        dirs = _split(ns.spec_dir)
        if not dirs and env.get("NVIDIA_CTK_CDI_SPEC_DIRS"):
            dirs = _split([env["NVIDIA_CTK_CDI_SPEC_DIRS"]])

        return ListSettings(tuple(dirs) or DEFAULT_SPEC_DIRS)
    if ns.command == "validate":
        return ValidateSettings(tuple(ns.paths))
    if ns.command == "transform":
        return _to_transform_root(ns)
    parser.print_help(sys.stderr)  # no command: a usage error, so not on stdout
    raise SystemExit(2)
