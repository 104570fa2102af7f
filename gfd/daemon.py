"""The labelling loop: one pass at start, then one per `--sleep-interval`, until a signal.

spec/labels.md §20 and spec/stack.md §6. The cadence is driven by `schedule`, used only
in the safe way stack.md describes: signal handlers set an Event, the loop waits on that
Event (never `time.sleep`), the job never lets an exception escape into `run_pending()`.
A failed first pass exits 1; a later failed pass is logged, the last good labels stay
published and it is retried at the next interval; 5 failures in a row exit 1.

With `--heartbeat-file` every pass that ran to its end touches the heartbeat
(nvlib/heartbeat.py): one that wrote new labels, one that found them unchanged and one
that failed and kept the last good labels all prove the loop alive; a pass that hangs
does not touch it, and the liveness probe restarts the container.
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Mapping
from pathlib import Path

from gfd.cli import GfdSettings
from gfd.labels import compute_labels
from gfd.outputs import Output, OutputError
from nvlib import host
from nvlib.config import ConfigError
from nvlib.discover import discover
from nvlib.heartbeat import Heartbeat, HeartbeatError
from nvlib.model import Machine
from nvlib.nvml import NvmlInitError
from nvlib.record import Plain
from nvlib.signals import Signals

TYPE_CHECKING = False
if TYPE_CHECKING:
    from gfd.templating import LabelTemplates  # imports jinja2: only with templates

log = logging.getLogger(__name__)

MAX_CONSECUTIVE_FAILURES = 5


class PassError(RuntimeError):
    """A labelling pass failed; the message is what upstream would log."""


class Labeller(Plain):
    """Everything one config load needs: the settings, the host root, the output."""

    settings: GfdSettings
    output: Output
    root: Path = Path("/")
    machine_type_file: str = host.DEFAULT_MACHINE_TYPE_FILE
    timestamp: int | None = None
    null_manager: bool = False  # set for good after an init failure with failOnInitError=false
    templates: LabelTemplates | None = None  # --label-templates, compiled for this load
    if TYPE_CHECKING:  # not a field: made from the ones above, left out of the repr
        facts: host.HostFacts

    def __post_init__(self) -> None:
        self.facts = host.HostFacts(self.root, self.machine_type_file)

    def discover(self) -> Machine:
        flags = self.settings.config.flags
        if not self.null_manager:
            try:
                return discover(self.root, facts=self.facts)
            except NvmlInitError as err:
                if flags.fail_on_init_error:
                    raise PassError(
                        f"error creating labeler: failed to initialize resource manager: {err}"
                    ) from err
                log.warning("Failed to initialize resource manager: %s", err)
                log.info("using empty manager")
                self.null_manager = True
        return discover(self.root, with_nvml=False, facts=self.facts)

    def run_pass(self) -> None:
        try:
            machine = self.discover()
            labels = compute_labels(machine, self.settings.config, self.timestamp)
            if self.templates is not None:
                added = self.templates.labels(machine, self.settings.config, labels)
                labels = dict(sorted((labels | added).items()))
            self.output.write(labels)
        except PassError:
            raise
        except Exception as err:  # every failure of a pass is reported the same way
            raise PassError(str(err)) from err


def serve(labeller: Labeller, signals: Signals, heartbeat: Heartbeat | None = None) -> int | None:
    """Run passes until a signal or a fatal failure.

    Returns an exit code, or None when SIGHUP asks for a reload.
    """
    settings = labeller.settings.config.flags.gfd

    def beat() -> None:
        if heartbeat is not None:
            heartbeat.beat()

    try:
        labeller.run_pass()
    except PassError as err:
        log.error("%s", err)
        return 1
    beat()
    if settings.oneshot:
        return 0

    import schedule  # only the periodic mode needs it

    failures = 0

    def job() -> None:
        nonlocal failures
        try:
            labeller.run_pass()
            failures = 0
        except PassError as err:
            failures += 1
            log.error(
                "Labelling pass failed (%d in a row), keeping the last labels: %s", failures, err
            )
            if failures >= MAX_CONSECUTIVE_FAILURES:
                signals.wake.set()
                return  # the loop is giving up: nothing left to prove alive
        beat()  # the pass ran to its end, whatever it found

    scheduler = schedule.Scheduler()
    if settings.sleep_interval.infinite:
        log.info("Sleep interval is infinite, sleeping indefinitely")
    else:
        scheduler.every(settings.sleep_interval.seconds or 0.0).seconds.do(job)
    while True:
        idle = scheduler.idle_seconds
        signals.wake.wait(None if idle is None else max(idle, 0.0))
        if failures >= MAX_CONSECUTIVE_FAILURES:
            log.error("Giving up after %d failed labelling passes", failures)
            return 1
        received = signals.take()
        if received == signal.SIGHUP:
            log.info("Received SIGHUP, restarting.")
            return None
        if received is not None:
            log.info("Received signal %s, shutting down.", signal.Signals(received).name)
            return 0
        scheduler.run_pending()


def run(argv: list[str], environ: Mapping[str, str], first: GfdSettings, signals: Signals) -> int:
    """Config loads in a loop: SIGHUP re-reads flags, env and the config file."""
    from gfd.setup import build_labeller  # the edge: simulator, outputs, Kubernetes client

    settings: GfdSettings | None = first
    previous: Labeller | None = None  # the last config load's, for its templates
    while True:
        if settings is None:
            from gfd.cli import parse

            try:
                settings = parse(argv, environ)
            except ConfigError as err:
                log.error("%s", err)
                return 1
        heartbeat = _heartbeat(settings)
        try:
            if heartbeat is not None:
                heartbeat.start()  # a bad path fails here, before any pass
            labeller, cleanup = build_labeller(settings, environ, previous)
        except (ConfigError, OutputError, PassError, HeartbeatError, OSError, ValueError) as err:
            log.error("%s", err)
            return 1
        if not settings.config.flags.gfd.no_timestamp:
            labeller.timestamp = int(time.time())
        code = serve(labeller, signals, heartbeat)
        if code is not None:
            cleanup()
            return code
        settings, previous = None, labeller


def _heartbeat(settings: GfdSettings) -> Heartbeat | None:
    """The heartbeat of this config load: its interval is this load's sleep interval."""
    if not settings.heartbeat_file:
        return None
    interval = settings.config.flags.gfd.sleep_interval
    return Heartbeat(settings.heartbeat_file, interval.seconds)
