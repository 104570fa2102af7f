"""`config-manager` / `python -m configmanager`: follow the node's config label."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType

from configmanager.cli import parse
from configmanager.kube import NodeApi
from configmanager.manager import run_passes
from configmanager.node import WATCH_TIMEOUT_S, LabelTracker, NodeWatcher
from nvlib import __version__, logs
from nvlib.config import ConfigError
from nvlib.heartbeat import Heartbeat, HeartbeatError
from nvlib.kubeclient import ClientConfigError, client_configuration

log = logging.getLogger("configmanager")


class _Stop:
    """SIGTERM / SIGINT only record themselves; the loop polls (no locks in a handler)."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def install(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._handle)

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        self.signum = signum

    def __call__(self) -> bool:
        return self.signum is not None


def _nothing() -> None:
    pass


def main(argv: list[str] | None = None) -> int:
    logs.configure()  # standard error only
    args = sys.argv[1:] if argv is None else argv
    environ = dict(os.environ)
    try:
        settings = parse(args, environ)
    except ConfigError as err:
        log.error("Error: %s", err)
        return 1
    if settings.show_version:
        print(f"config-manager {__version__}")
        return 0
    stop = _Stop()
    stop.install()
    log.info("Starting config-manager %s for node %s", __version__, settings.node_name)
    on_alive: Callable[[], object] = _nothing
    if settings.heartbeat_file:
        heartbeat = Heartbeat(settings.heartbeat_file, float(WATCH_TIMEOUT_S))
        try:
            heartbeat.start()
        except HeartbeatError as err:
            log.error("Error: %s", err)
            return 1
        on_alive = heartbeat.beat
    try:
        api = NodeApi(client_configuration(settings.kubeconfig, environ))
    except ClientConfigError as err:
        log.error("Error: %s", err)
        return 1
    tracker = LabelTracker(settings.node_label)
    watcher = NodeWatcher(api, settings.node_name, tracker, on_alive=on_alive)
    thread = threading.Thread(target=watcher.run, name="node-watch", daemon=True)
    thread.start()
    try:
        code = run_passes(settings, tracker, stop)
    finally:
        watcher.stop.set()
    if stop.signum is not None:
        log.info('Received signal "%s", shutting down.', signal.Signals(stop.signum).name)
    return code


if __name__ == "__main__":
    sys.exit(main())
