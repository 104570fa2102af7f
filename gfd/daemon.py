"""The labelling loop: one pass at start, then one per `--sleep-interval`, until a signal.

The cadence is driven by `schedule`, used only in a safe way: a signal only wakes the
loop (`nvlib.signals`), the loop waits on that wake (never `time.sleep`), the job never
lets an exception escape into `run_pending()`. A stop signal wins over any SIGHUP, even
one that comes later; a SIGHUP during a reload (or a pass) makes one more reload.

Two kinds of failure, kept apart:
- reading the devices (NVML, labelers): a failed first pass exits 1; a later one is
  logged, the last good labels stay published, and 5 in a row exit 1;
- publishing (gfd/publish.py): never counts toward that exit. An API server that does
  not answer, or answers 408/429/5xx, and a feature file whose filesystem is full, are
  waited out with backoff however long it lasts; any other publishing failure exits 1
  on the first pass (a bad deployment) and is retried at the next pass after that.

A config load at start that fails exits 1: nothing is published yet, and the deployment
is wrong; so does a failed first pass. After a reload the first pass is a later one. A
reload (SIGHUP) that fails (a config file turned to garbage, a kubeconfig
that no longer loads) is refused instead: the error names the file, and the process
keeps the last good load, its output and its labels, and goes on with its passes. A
bad config pushed to a whole fleet then leaves every node labelled, where an exit
would remove the feature file and crash-loop; the next SIGHUP tries again.

`schedule` reads the wall clock, so a step back would postpone its next run by the size
of the step; the loop also keeps a monotonic deadline one interval after each pass and
runs the pass when that one is reached first.

Each pass, and each of the backoff's own publishing attempts, runs off the loop's
thread (`nvlib.signals.call_taking_signals`): a driver call or an API request that hangs
never holds a signal. A stop waits STOP_GRACE_SECONDS for a pass under way, then exits
without it; a SIGHUP taken meanwhile reloads once the pass returns; a pass still running
after SLOW_PASS_SECONDS is reported once.

With `--heartbeat-file` every pass that ran to its end touches the heartbeat
(nvlib/heartbeat.py): one that published new labels, one that found them unchanged, one
whose publishing is waiting out an API outage and one that failed and kept the last good
labels all prove the loop alive; a pass that hangs does not touch it, and the liveness
probe restarts the container.
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from gfd.cli import GfdSettings
from gfd.labels import compute_labels
from gfd.metrics import NO_METRICS, GfdMetrics
from gfd.outputs import Output, OutputError
from gfd.publish import Publisher
from nvlib import host
from nvlib.config import ConfigError
from nvlib.discover import discover
from nvlib.heartbeat import Heartbeat, HeartbeatError
from nvlib.metrics import MetricsError, MetricsServer
from nvlib.model import Machine
from nvlib.nvml import NvmlInitError
from nvlib.record import Plain
from nvlib.signals import Signals, Stopped, call_taking_signals

if TYPE_CHECKING:
    from gfd.templating import LabelTemplates  # imports jinja2: only with templates

log = logging.getLogger(__name__)
_T = TypeVar("_T")

MAX_CONSECUTIVE_FAILURES = 5
# How long a stop waits for a pass under way (a normal one takes 10-50 ms) before the
# process exits without it: a pass hung in NVML or an API request must not hold a stop.
STOP_GRACE_SECONDS = 0.5
# A pass still running after this long is reported, once (a write to the API is held to
# 20 s at most, so a longer pass is hung).
SLOW_PASS_SECONDS = 60.0
# The two clocks' deadlines differ by microseconds on every pass; only a larger gap
# is a step of the wall clock worth a warning.
WALL_CLOCK_SLACK_S = 1.0


class PassError(RuntimeError):
    """Reading the devices or computing the labels failed; the message is upstream's."""


class SystemClock:
    """What the loop reads time from and waits with; tests pass a clock of their own
    with the same two methods (the wall clock is schedule's own)."""

    @staticmethod
    def monotonic() -> float:
        return time.monotonic()

    @staticmethod
    def wait(signals: Signals, timeout: float | None) -> bool:
        return signals.wait(timeout)


SYSTEM_CLOCK = SystemClock()


class Labeller(Plain):
    """Everything one config load needs: the settings, the host root, the output."""

    settings: GfdSettings
    output: Output
    root: Path = Path("/")
    machine_type_file: str = host.DEFAULT_MACHINE_TYPE_FILE
    timestamp: int | None = None
    null_manager: bool = False  # set for good after an init failure with failOnInitError=false
    templates: LabelTemplates | None = None  # --label-templates, compiled for this load
    metrics: GfdMetrics = NO_METRICS  # what the passes report to (--metrics-address)

    def __post_init__(self) -> None:
        # not fields: made from the ones above, left out of the repr
        self.facts: host.HostFacts = host.HostFacts(self.root, self.machine_type_file)
        # set by serve(): kept when a reload is refused
        self.publisher: Publisher | None = None

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

    def labels(self) -> dict[str, str]:
        """Read the devices and compute the labels; every failure is a PassError."""
        try:
            machine = self.discover()
            labels = compute_labels(machine, self.settings.config, self.timestamp)
            if self.templates is not None:
                added = self.templates.labels(machine, self.settings.config, labels)
                labels = dict(sorted((labels | added).items()))
            return labels
        except PassError:
            raise
        except Exception as err:  # every failure of a pass is reported the same way
            raise PassError(str(err)) from err


def serve(
    labeller: Labeller,
    signals: Signals,
    clock: SystemClock = SYSTEM_CLOCK,
    jitter: Callable[[], float] | None = None,
    heartbeat: Heartbeat | None = None,
    publisher: Publisher | None = None,
    reloaded: bool = False,
) -> int | None:
    """Run passes until a signal or a fatal failure.

    Returns an exit code, or None when SIGHUP asks for a reload. `clock` and `jitter`
    (the backoff's random draw; random.random when None) are for tests. `reloaded`: not
    the process's first config load, whose first pass alone exits 1 on failure (a bad
    deployment shows at start); after a reload every pass follows the later passes'
    rules, the first one at once. `publisher`: the one this labeller published with
    before a reload was refused, with its backoff.
    """
    settings = labeller.settings.config.flags.gfd
    received = signals.take()  # one that came while this config was being loaded
    if received is not None:
        return _act_on(received)
    resumed = (reloaded or publisher is not None) and not settings.oneshot
    metrics = labeller.metrics
    if publisher is None:
        publisher = Publisher(labeller.output, clock.monotonic, jitter=jitter, metrics=metrics)
    labeller.publisher = publisher

    def beat() -> None:
        if heartbeat is not None:
            heartbeat.beat()

    def off_loop(work: Callable[[], _T]) -> _T:
        """`work` (NVML, the API) off the loop's thread, so a hang never holds a stop."""
        return call_taking_signals(
            signals,
            work,
            name="labelling",
            grace=STOP_GRACE_SECONDS,
            slow_after=SLOW_PASS_SECONDS,
            on_slow=lambda waited: log.warning(
                "The labelling pass has not returned after %.0fs (a hung driver call or API"
                " request?); still waiting for it, signals are still taken",
                waited,
            ),
            on_reload=lambda: log.info("Received SIGHUP during a pass: reloading after it."),
        )

    def labelling_pass() -> tuple[str, PassError | OutputError | None]:
        return off_loop(lambda: _labelling_pass(labeller, publisher))

    if not resumed:
        try:
            result, error = labelling_pass()
        except Stopped as stop:
            return _act_on(stop.signum)
        if error is not None:  # a bad deployment shows at start
            log.error("%s", error)
            return 1
        beat()
        if settings.oneshot:
            if result == "deferred":
                log.error("The labels could not be published")
            return 0 if result == "success" else 1

    import schedule  # only the periodic mode needs it

    failures = 0
    interval = None if settings.sleep_interval.infinite else settings.sleep_interval.seconds
    next_pass: float | None = None  # monotonic; the guard against wall-clock steps
    stopped: int | None = None  # a stop signal that came during a pass

    def job() -> None:
        nonlocal failures, next_pass, stopped
        try:
            try:
                result, error = labelling_pass()
            except Stopped as stop:
                stopped = stop.signum  # acted on by the loop: never raised into schedule
                return
            if result == "device_error":
                failures += 1
                log.error(
                    "Labelling pass failed (%d in a row), keeping the last labels: %s",
                    failures,
                    error,
                )
                if failures >= MAX_CONSECUTIVE_FAILURES:
                    return  # the loop is giving up: nothing left to prove alive (finally runs)
            else:
                failures = 0
                if error is not None:
                    log.error("Publishing the labels failed, keeping the last ones: %s", error)
        finally:
            # After the pass, as schedule computes its next run: both agree unless
            # the wall clock steps.
            next_pass = None if interval is None else clock.monotonic() + interval
        beat()  # the pass ran to its end, whatever it found

    scheduler = schedule.Scheduler()
    if interval is None:
        log.info("Sleep interval is infinite, sleeping indefinitely")
    else:
        # annotated int, but the seconds go to a timedelta, which takes a float
        scheduler.every(interval).seconds.do(job)  # type: ignore[arg-type]
        next_pass = clock.monotonic() + interval
    if resumed:
        job()  # the reload's first pass, under the later passes' rules
    while True:
        if stopped is not None:  # taken during a pass: the pipe holds it no more
            return _act_on(stopped)
        clock.wait(signals, _earliest(scheduler.idle_seconds, next_pass, publisher, clock))
        received = signals.take()
        if received is not None:
            return _act_on(received)
        if next_pass is not None and clock.monotonic() >= next_pass:
            wall_idle = scheduler.idle_seconds or 0.0
            if wall_idle > WALL_CLOCK_SLACK_S:
                log.warning(
                    "The wall clock says the next pass is %.0f s away, the monotonic clock "
                    "says it is due: the wall clock stepped back; running it now",
                    wall_idle,
                )
            scheduler.run_all()  # runs the pass and reschedules it from the wall clock now
        else:
            scheduler.run_pending()
        if stopped is not None:
            return _act_on(stopped)
        if failures >= MAX_CONSECUTIVE_FAILURES:
            log.error("Giving up after %d failed labelling passes", failures)
            return 1
        if publisher.retry_in() == 0.0:  # the backoff's own attempt is due
            try:
                off_loop(publisher.retry)
            except Stopped as stop:
                return _act_on(stop.signum)


def _labelling_pass(
    labeller: Labeller, publisher: Publisher
) -> tuple[str, PassError | OutputError | None]:
    """Discover, label and publish once, timed into the metrics.

    The result is the metric's: `success`, `deferred` (the output is backing off),
    `device_error` (discovery failed: nothing published) or `publish_error`; the error
    is returned, not raised, since the first pass and the later ones treat it apart.
    """
    started = time.perf_counter()
    error: PassError | OutputError | None = None
    try:
        result = "success" if publisher.publish(labeller.labels()) else "deferred"
    except PassError as err:
        result, error = "device_error", err
    except OutputError as err:
        result, error = "publish_error", err
    labeller.metrics.labelling_pass(result, time.perf_counter() - started)
    return result, error


def _act_on(received: int) -> int | None:
    """`serve`'s answer to a signal: None (reload) for SIGHUP, exit code 0 for a stop."""
    if received == signal.SIGHUP:
        log.info("Received SIGHUP, restarting.")
        return None
    log.info("Received signal %s, shutting down.", signal.Signals(received).name)
    return 0


def _earliest(
    wall_idle: float | None, next_pass: float | None, publisher: Publisher, clock: SystemClock
) -> float | None:
    """Seconds until the next pass (by either clock) or publishing retry; None: none due."""
    now = clock.monotonic()
    waits = [
        wait
        for wait in (
            wall_idle,
            None if next_pass is None else next_pass - now,
            publisher.retry_in(),
        )
        if wait is not None
    ]
    return max(min(waits), 0.0) if waits else None


# What a config load can fail with: bad flags, environment or config file, an output
# that cannot be built (a kubeconfig that does not load), a heartbeat path, a profile.
_LOAD_ERRORS = (ConfigError, OutputError, PassError, HeartbeatError, OSError, ValueError)


def run(argv: list[str], environ: Mapping[str, str], first: GfdSettings, signals: Signals) -> int:
    """Config loads in a loop: SIGHUP re-reads flags, env and the config file.

    A load that fails at start exits 1; one that fails at a reload is refused, and the
    last good load goes on (the module's docstring says why). Metrics, when asked for,
    are served from before the first pass to the exit, on the address the process
    started with (a reload that names another one is logged).
    """
    try:
        metrics, server = _serve_metrics(first.metrics_address)
    except MetricsError as err:
        log.error("%s", err)
        return 1
    try:
        return _reloads(argv, environ, first, signals, metrics)
    finally:
        if server is not None:
            server.close()


def _reloads(
    argv: list[str],
    environ: Mapping[str, str],
    first: GfdSettings,
    signals: Signals,
    metrics: GfdMetrics,
) -> int:
    try:
        current = _load(first, environ, None, metrics)
    except _LOAD_ERRORS as err:
        log.error("%s", _text(err))
        return 1
    kept: Publisher | None = None  # set while a refused reload keeps the last load
    reloaded = False
    while True:
        labeller, cleanup, heartbeat = current
        code = serve(labeller, signals, heartbeat=heartbeat, publisher=kept, reloaded=reloaded)
        if code is not None:
            cleanup()
            return code
        from gfd.cli import parse

        try:
            settings = parse(argv, environ)
            if settings.metrics_address != first.metrics_address:
                log.warning(
                    "--metrics-address changed to %r: it takes effect at the next start of the"
                    " process; metrics stay on %r",
                    settings.metrics_address,
                    first.metrics_address,
                )
            current = _load(settings, environ, labeller, metrics)
        except _LOAD_ERRORS as err:
            log.error("Reloading failed, keeping the last good config and labels: %s", _text(err))
            kept = labeller.publisher
            continue
        kept, reloaded = None, True


def _load(
    settings: GfdSettings,
    environ: Mapping[str, str],
    previous: Labeller | None,
    metrics: GfdMetrics = NO_METRICS,
) -> tuple[Labeller, Callable[[], None], Heartbeat | None]:
    """One config load: the labeller, its clean-up and its heartbeat.

    `previous` (a reload's load) has its output closed or taken over only once the new
    output is built, so a load that fails leaves it working; its label templates stay in
    force if the new ones do not compile.
    """
    from gfd.setup import build_labeller  # the edge: simulator, outputs, Kubernetes client

    heartbeat = _heartbeat(settings)
    if heartbeat is not None:
        heartbeat.start()  # a bad path fails here, before any pass
    labeller, cleanup = build_labeller(settings, environ, previous, metrics)
    if not settings.config.flags.gfd.no_timestamp:
        labeller.timestamp = int(time.time())
    return labeller, cleanup, heartbeat


def _text(err: BaseException) -> str:
    return err.located() if isinstance(err, ConfigError) else str(err)


def _serve_metrics(address: str) -> tuple[GfdMetrics, MetricsServer | None]:
    """The recorder and, with an address, the server of /metrics for the process's life."""
    if not address:
        return NO_METRICS, None
    from gfd.metrics import PrometheusGfdMetrics
    from nvlib.metrics import serve_recorder

    return serve_recorder(address, PrometheusGfdMetrics)


def _heartbeat(settings: GfdSettings) -> Heartbeat | None:
    """The heartbeat of this config load: its interval is this load's sleep interval."""
    if not settings.heartbeat_file:
        return None
    interval = settings.config.flags.gfd.sleep_interval
    return Heartbeat(settings.heartbeat_file, interval.seconds)
