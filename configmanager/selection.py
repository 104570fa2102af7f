"""Which config a node gets: the label's, else the default, else the fallbacks.

Pure: the directory listing comes in as names, so every path through the rules (and
every error text) is a row of tests/configmanager/test_selection.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

__all__ = [
    "EMPTY_CONFIG",
    "FALLBACK_STRATEGIES",
    "SelectionError",
    "available_configs",
    "select_config",
]

# The name of the empty config: no file content at all (the daemon's own defaults).
EMPTY_CONFIG = ""
FALLBACK_STRATEGIES = ("named", "single", "empty")
# The config the `named` fallback looks for.
NAMED_DEFAULT = "default"


class SelectionError(Exception):
    """No config can be chosen; the text is upstream's, bar the default-config fix."""


def available_configs(entries: Iterable[tuple[str, bool]]) -> list[str]:
    """The config names among a directory's (name, is_directory) entries, sorted.

    A mounted ConfigMap holds one symlink per key and Kubernetes' own `..data` link and
    `..<timestamp>` directory: names starting with `..` are never configs, nor are
    directories.
    """
    return sorted(name for name, is_dir in entries if not is_dir and not name.startswith(".."))


def select_config(
    label_value: str,
    available: Sequence[str],
    default_config: str,
    fallbacks: Sequence[str],
) -> str:
    """The config to use: a name from `available`, or EMPTY_CONFIG.

    In order: no configs at all is an error; a label value must name an available
    config; else `default_config`, which must too; else the first fallback that
    resolves (`named`: the config `default`; `single`: the only config; `empty`: the
    empty config). An unknown strategy is an error only when it is reached, as upstream.
    """
    if not available:
        raise SelectionError("no configuration files available")
    if label_value:
        if label_value not in available:
            raise SelectionError(f"specified config {label_value} does not exist")
        return label_value
    if default_config:
        # Upstream prints the (empty) label value here; the name that is missing is the
        # default's.
        if default_config not in available:
            raise SelectionError(f"specified config {default_config} does not exist")
        return default_config
    for strategy in fallbacks:
        if strategy == "named":
            if NAMED_DEFAULT in available:
                return NAMED_DEFAULT
        elif strategy == "single":
            if len(available) == 1:
                return available[0]
        elif strategy == "empty":
            return EMPTY_CONFIG
        else:
            raise SelectionError(f"unknown fallback strategy: {strategy}")
    raise SelectionError("no config was set, no default was provided, and all fallbacks failed")
