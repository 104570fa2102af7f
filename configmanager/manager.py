"""config-manager's main loop: wait for the label, select, write, signal (the module
docstring of configmanager/__init__.py says why; docs/deployment.md, "Per-node
configuration", what an operator sees).

Each change of the label's value runs one pass: the config directory is listed, the
config chosen (selection.py), its content written to the destination with the
project's atomic writer, and, when the file changed and `send_signal` is on, the daemon
signalled. A file that already holds that content is left alone (no write, no signal):
`Already configured. Skipping update...`. Any error ends the command with exit 1, so
the container restarts, as upstream. `--oneshot` ends after the first pass.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Callable
from pathlib import Path

from configmanager.cli import Settings
from configmanager.node import LabelTracker
from configmanager.process import ProcessNotFound, send_signal
from configmanager.selection import EMPTY_CONFIG, SelectionError, available_configs, select_config
from nvlib.fsutil import write_atomic

__all__ = ["ConfigUpdateError", "apply_config", "list_configs", "run_passes"]

log = logging.getLogger(__name__)

POLL_S = 0.2  # how often the wait looks at `stopped`, as the plugin's loop does


class ConfigUpdateError(Exception):
    """A pass failed: the message says which step, and names the path or process."""


def list_configs(srcdir: str) -> list[str]:
    try:
        with os.scandir(srcdir) as entries:
            return available_configs((e.name, e.is_dir(follow_symlinks=False)) for e in entries)
    except OSError as err:
        raise ConfigUpdateError(
            f"unable to read config directory {srcdir}: {err.strerror or err}"
        ) from err


def apply_config(name: str, srcdir: str, dst: str) -> bool:
    """Give `dst` the content of config `name` (nothing for the empty config); True when
    it changed. The write is atomic: the daemon reads the old file or the new one."""
    source = Path(srcdir, name)
    try:
        data = b"" if name == EMPTY_CONFIG else source.read_bytes()
    except OSError as err:
        raise ConfigUpdateError(f"unable to read config {source}: {err.strerror or err}") from err
    try:
        return write_atomic(dst, data)
    except OSError as err:
        raise ConfigUpdateError(f"unable to write config file {dst}: {err}") from err


def describe(name: str) -> str:
    return "the empty config" if name == EMPTY_CONFIG else name


def run_passes(
    settings: Settings,
    tracker: LabelTracker,
    stopped: Callable[[], bool],
    signal_process: Callable[[str, int], int] = send_signal,
) -> int:
    """The loop; its exit code (0 when `stopped` or after a oneshot pass, 1 on error)."""
    label = settings.node_label
    last: str | None = None
    while True:
        log.info("Waiting for change to '%s' label", label)
        value = None
        while value is None:
            if stopped():
                return 0
            value = tracker.wait_change(last, POLL_S)
        last = value
        log.info("Label change detected: %s=%s", label, value)
        try:
            _one_pass(settings, value, signal_process)
        except (SelectionError, ConfigUpdateError) as err:
            log.error("Error: %s", err)
            return 1
        if settings.oneshot:
            return 0


def _one_pass(settings: Settings, value: str, signal_process: Callable[[str, int], int]) -> None:
    available = list_configs(settings.config_file_srcdir)
    name = select_config(value, available, settings.default_config, settings.fallback_strategies)
    log.info("Updating to config: %s", describe(name))
    if not apply_config(name, settings.config_file_srcdir, settings.config_file_dst):
        log.info("Already configured. Skipping update...")
        return
    log.info("Successfully updated to config: %s", describe(name))
    if not settings.send_signal:
        return
    process, signum = settings.process_to_signal, settings.signal
    log.info("Sending signal '%s' to '%s'", _signal_name(signum), process)
    try:
        pid = signal_process(process, signum)
    except ProcessNotFound as err:
        raise ConfigUpdateError(f"error finding pid: {err}") from err
    except OSError as err:
        raise ConfigUpdateError(f"error sending signal to '{process}': {err}") from err
    log.info("Successfully sent signal to '%s' (pid %d)", process, pid)


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return str(signum)
