"""The labelling loop: one pass at start, then one per `--sleep-interval`, until a signal.

The cadence is driven by `schedule`, used only in a safe way: a signal only wakes the
loop (`nvlib.signals`), the loop waits on that wake (never `time.sleep`), the job never
lets an exception escape into `run_pending()`. A stop signal wins over any SIGHUP, even
one that comes later; a SIGHUP during a reload (or a pass) makes one more reload.
A failed first pass exits 1; a later failed pass is logged, the last good labels stay
published and it is retried at the next interval; 5 failures in a row exit 1.
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
from nvlib.model import Machine
from nvlib.nvml import NvmlInitError
from nvlib.record import Plain
from nvlib.signals import Signals

TYPE_CHECKING = False

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
            self.output.write(labels)
        except PassError:
            raise
        except Exception as err:  # every failure of a pass is reported the same way
            raise PassError(str(err)) from err


def serve(labeller: Labeller, signals: Signals) -> int | None:
    """Run passes until a signal or a fatal failure.

    Returns an exit code, or None when SIGHUP asks for a reload.
    """
    settings = labeller.settings.config.flags.gfd
    received = signals.take()  # one that came while this config was being loaded
    if received is not None:
        return _act_on(received)
    try:
        labeller.run_pass()
    except PassError as err:
        log.error("%s", err)
        return 1
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

    scheduler = schedule.Scheduler()
    if settings.sleep_interval.infinite:
        log.info("Sleep interval is infinite, sleeping indefinitely")
    else:
        scheduler.every(settings.sleep_interval.seconds or 0.0).seconds.do(job)
    while True:
        idle = scheduler.idle_seconds
        signals.wait(None if idle is None else max(idle, 0.0))
        received = signals.take()
        if received is not None:
            return _act_on(received)
        scheduler.run_pending()
        if failures >= MAX_CONSECUTIVE_FAILURES:
            log.error("Giving up after %d failed labelling passes", failures)
            return 1


def _act_on(received: int) -> int | None:
    """`serve`'s answer to a signal: None (reload) for SIGHUP, exit code 0 for a stop."""
    if received == signal.SIGHUP:
        log.info("Received SIGHUP, restarting.")
        return None
    log.info("Received signal %s, shutting down.", signal.Signals(received).name)
    return 0


def run(argv: list[str], environ: Mapping[str, str], first: GfdSettings, signals: Signals) -> int:
    """Config loads in a loop: SIGHUP re-reads flags, env and the config file."""
    from gfd.setup import build_labeller  # the edge: simulator, outputs, Kubernetes client

    settings: GfdSettings | None = first
    while True:
        if settings is None:
            from gfd.cli import parse

            try:
                settings = parse(argv, environ)
            except ConfigError as err:
                log.error("%s", err)
                return 1
        try:
            labeller, cleanup = build_labeller(settings, environ)
        except (ConfigError, OutputError, PassError, OSError, ValueError) as err:
            log.error("%s", err)
            return 1
        if not settings.config.flags.gfd.no_timestamp:
            labeller.timestamp = int(time.time())
        code = serve(labeller, signals)
        if code is not None:
            cleanup()
            return code
        settings = None
