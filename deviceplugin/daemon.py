"""The plugin's life: start, watch for restarts and signals, stop (docs/deviceplugin.md).

`Daemon.run` is upstream's event loop. Each tick (100 ms) it looks at what asked for
attention: a signal (SIGHUP restarts with the re-read config; SIGINT, SIGTERM and
SIGQUIT stop and exit 0), the kubelet's socket created anew (a kubelet restart: the
same servers on new sockets, registered again well within a second; a full restart
only when the re-read config changed), the 30 s retry after a plugin failed to start,
changed CDI spec files, and every 30 s whether NVML reports other GPUs, MIG devices or
driver than at start (a restart re-advertises and re-checks CDI names).
A restart whose config does not load (a file turned to garbage, a value the flag
checks refuse) is refused on SIGHUP: the servers keep running with the last good config,
and the error names the file and the field. A kubelet restart or a retry meanwhile goes
on with the last good config too, and a new config that loads but cannot start the
plugins falls back to the last good one. Exiting instead would take every GPU of every
node a bad config is pushed to away from the kubelets, and crash-loop there. At start a
config that does not load exits 1 (a bad deployment: nothing is served yet).
Signal handlers only record the signal
(`nvlib.signals.Signals`), so all work happens in the loop's thread; tests drive the
same loop from a thread of their own. None is lost: a stop signal is never replaced by
a later SIGHUP, and a SIGHUP during a restart makes one more restart. The exceptions are
NVML's: the node check runs on a thread of its own (`NodeCheck`), as the health monitor
does, because a driver call can hang and the loop must not; and each start (discovery,
then the servers) runs on a thread of its own while the loop goes on taking signals: a
start hung in a driver call is reported once, a stop signal still exits at once, and a
SIGHUP that comes meanwhile makes one restart when the start returns.

With `--heartbeat-file` the loop touches the heartbeat (nvlib/heartbeat.py) after each
start that registered every plugin with the kubelet, and at each node check while every
plugin is still served on its socket and the kubelet it registered with is still there.
A kubelet restart wipes the sockets: the heartbeat then waits for the re-registration,
so a plugin that cannot register again, or a loop that hangs, goes stale and the
liveness probe restarts the container. A node without devices serves nothing and waits,
as upstream does; its node checks keep the heartbeat fresh.

With `--metrics-address` the process serves Prometheus metrics (deviceplugin/metrics.py)
from before its first start to its exit, on the address it started with: a SIGHUP that
names another one is logged and takes effect at the next start of the process. An
address that cannot be bound exits 1 before anything is served.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from deviceplugin.cli import DEFAULT_KUBELET_SOCKET, PluginSettings, parse
from deviceplugin.errors import PluginError
from deviceplugin.metrics import NO_METRICS, PluginMetrics
from deviceplugin.nodecheck import NodeCheck
from deviceplugin.plugins import (
    Host,
    Remembered,
    Running,
    serve_again,
    start_plugins,
    validate_settings,
)
from deviceplugin.watch import POLL_SECONDS, CreationWatch
from nvlib import __version__
from nvlib.config import ConfigError
from nvlib.discover import DiscoveryError, discover
from nvlib.driverroot import preload_nvml
from nvlib.heartbeat import Heartbeat, HeartbeatError
from nvlib.host import HostFacts
from nvlib.metrics import MetricsError, MetricsServer
from nvlib.nvml import LIBRARY_MISMATCH_EXIT, NvmlError, is_library_mismatch
from nvlib.signals import Signals, Stopped, call_taking_signals

log = logging.getLogger(__name__)

RETRY_SECONDS = 30.0
CDI_CHECK_SECONDS = 1.0  # how often the spec directories are fingerprinted
# How often NVML is asked whether the GPUs, the MIG layout or the driver changed: a
# change restarts the plugins, which re-advertise the devices and re-check the CDI names.
# A check that has not returned when the next is due is reported as hung.
NODE_CHECK_SECONDS = 30.0
# How long a stop signal waits for a start under way (a normal start takes 0.05-0.3 s)
# before the process exits without it: SIGTERM must end the process within a second.
STOP_GRACE_SECONDS = 0.5


class _DriverReplaced(Exception):
    """The driver was upgraded under this process: its libnvidia-ml can never init again,
    and an in-process restart keeps the same library. Exit; the DaemonSet restarts us."""


class Daemon:
    """One process's plugins across restarts; `run` returns the exit code."""

    def __init__(
        self, argv: Sequence[str], environ: Mapping[str, str], first: PluginSettings
    ) -> None:
        self._argv = list(argv)
        self._environ = dict(environ)
        self._settings = first
        self._remembered = Remembered()
        self._simulated = False  # --nvml-mock was used: release the simulation at the end
        self.retry_seconds = RETRY_SECONDS
        self.node_check_seconds = NODE_CHECK_SECONDS
        # The node check re-discovers every 30 s: static sysfs facts (and a warning
        # about them) once per start, not once per check.
        self._host_facts: HostFacts | None = None
        self.running = Running()
        self.started = threading.Event()  # set after each start: tests wait on it
        self.starts = 0
        self.node_checks = 0  # counted at the end of each check: tests wait on it
        self._heartbeat: Heartbeat | None = None
        self.metrics: PluginMetrics = NO_METRICS
        self.metrics_server: MetricsServer | None = None

    def run(self, control: Signals) -> int:
        log.info("Starting NVIDIA Device Plugin %s", __version__)
        if self._settings.metrics_address:
            try:
                self._serve_metrics(self._settings.metrics_address)
            except MetricsError as err:
                log.error("%s", err)
                return 1
        if self._settings.heartbeat_file:
            self._heartbeat = Heartbeat(self._settings.heartbeat_file, self.node_check_seconds)
            try:
                self._heartbeat.start()  # a bad path fails here, before any plugin serves
            except HeartbeatError as err:
                log.error("%s", err)
                return 1
        socket = self._settings.kubelet_socket
        try:
            Path(socket or DEFAULT_KUBELET_SOCKET).parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            log.warning("cannot create the socket directory: %s", err)
        watch = CreationWatch(socket) if socket else None
        try:
            return self._loop(control, watch)
        finally:
            self.running.stop()
            if watch is not None:
                watch.close()
            if self.metrics_server is not None:
                self.metrics_server.close()
            if self._simulated:
                from nvlib import mock

                mock.release()  # only one it activated itself; a test's stays active

    def _loop(self, control: Signals, watch: CreationWatch | None) -> int:
        try:
            return self._serve(control, watch)
        except Stopped as stop:  # it came while the plugins were starting
            log.info('Received signal "%s", shutting down.', signal.Signals(stop.signum).name)
            return 0

    def _serve(self, control: Signals, watch: CreationWatch | None) -> int:
        retry_at = self._start_watched(control)
        if retry_at is None:
            return 1
        next_cdi = time.monotonic() + CDI_CHECK_SECONDS
        node_check = NodeCheck(self._node_changed)
        while True:
            control.wait(POLL_SECONDS)
            signum = control.take()  # a stop wins over any SIGHUP, even a later one
            reason = None
            kubelet_restarted = False
            if signum == signal.SIGHUP:
                reason = "Received SIGHUP, restarting."
            elif signum is not None:
                log.info('Received signal "%s", shutting down.', signal.Signals(signum).name)
                return 0
            elif watch is not None and watch.created():
                reason = f"inotify: {watch.path} created, restarting."
                kubelet_restarted = True
                self.metrics.kubelet_restart()
            elif retry_at and time.monotonic() >= retry_at:
                reason = "Restarting after failed plugin start."
            else:
                rounds = node_check.rounds
                try:
                    reason = node_check.poll(self.node_check_seconds)
                except _DriverReplaced:
                    return 1
                if node_check.rounds != rounds:  # a check finished, or one hung on
                    if reason is None:
                        self._beat_if_in_place()
                    self.node_checks += 1
            if reason is None:
                if self.running.cdi is not None and time.monotonic() >= next_cdi:
                    next_cdi = time.monotonic() + CDI_CHECK_SECONDS
                    self.running.cdi.recheck_if_changed()
                continue
            log.info("%s", reason)
            try:  # every restart re-reads flags, environment and config file
                settings = parse(self._argv, self._environ)
                validate_settings(settings)  # before anything stops
            except (ConfigError, PluginError) as err:
                text = err.located() if isinstance(err, ConfigError) else str(err)
                if signum == signal.SIGHUP:
                    log.error(
                        "Reloading the config failed, keeping the running plugins and the "
                        "last good config: %s",
                        text,
                    )
                    continue
                log.error("The config does not load, going on with the last good one: %s", text)
                settings = self._settings
            if settings.metrics_address != self._settings.metrics_address:
                log.warning(
                    "--metrics-address changed to %r: it takes effect at the next start of the"
                    " process; metrics stay on %r",
                    settings.metrics_address,
                    self._settings.metrics_address,
                )
                # this reload's own parse (the last good settings keep their address)
                settings.metrics_address = self._settings.metrics_address
            if kubelet_restarted and settings == self._settings and self.running.servers:
                retry_at = self._serve_again()
                continue
            self.running.stop()
            last_good, self._settings = self._settings, settings
            retry_at = self._start_watched(control)
            if retry_at is None and settings is not last_good:
                log.error("The new config cannot start the plugins; starting the last good one")
                self._settings = last_good
                retry_at = self._start_watched(control)
            if retry_at is None:
                return 1
            node_check.restarted()

    def _node_changed(self) -> str | None:
        """A restart reason when NVML now reports other GPUs, MIG devices or driver."""
        known = self._remembered.machine
        if known is None or self._host_facts is None:
            return None
        try:
            current = discover(self._host_facts.root, "", with_vgpu=False, facts=self._host_facts)
        except (NvmlError, DiscoveryError) as err:
            if is_library_mismatch(err):
                log.error("%s", LIBRARY_MISMATCH_EXIT)
                raise _DriverReplaced from err
            # A lost GPU is health's business; the next check will tell again.
            log.debug("Node check skipped: %s", err)
            return None
        if current.node_state == known.node_state:
            return None
        return "GPUs, MIG devices or driver changed, restarting."

    def _serve_again(self) -> float:
        """The kubelet restarted and nothing else changed: re-register without NVML."""
        log.info("Same configuration: serving the same devices again")
        serve_again(self.running, self._settings)
        return time.monotonic() + self.retry_seconds if self.running.retry else 0.0

    def _start_watched(self, control: Signals) -> float | None:
        """`_start` on a thread of its own while the loop takes signals; Stopped on a stop.

        Discovery at start can hang in the driver as a node check can. After a stop the
        start is waited for STOP_GRACE_SECONDS at most; a SIGHUP taken while it ran makes
        one restart once it is back.
        """

        def slow(waited: float) -> None:
            log.warning(
                "The plugins' start has not returned after %.1fs (a hung driver call?);"
                " still waiting for it, signals are still taken",
                waited,
            )

        return call_taking_signals(
            control,
            self._start,
            name="plugin-start",
            grace=STOP_GRACE_SECONDS,
            slow_after=self.node_check_seconds,
            on_slow=slow,
            on_reload=lambda: log.info(
                "Received SIGHUP during the start: restarting once it returns."
            ),
        )

    def _start(self) -> float | None:
        """Start the plugins; the retry deadline (0: none), or None on a fatal error."""
        try:
            host = self._host()
        except ValueError as err:  # a --nvml-mock profile that cannot be simulated
            log.error("error starting plugins: %s", err)
            return None
        self._host_facts = HostFacts(host.root, "")
        try:
            self.running = start_plugins(
                self._settings, self._environ, host, self._remembered, self.metrics
            )
        except PluginError as err:
            log.error("error starting plugins: %s", err)
            return None
        if not self.running.retry:
            self._beat_if_in_place()
        self.starts += 1
        self.started.set()
        return time.monotonic() + self.retry_seconds if self.running.retry else 0.0

    def _serve_metrics(self, address: str) -> None:
        """Serve /metrics for the life of the process; MetricsError if it cannot."""
        from deviceplugin.metrics import PrometheusPluginMetrics
        from nvlib.metrics import serve_recorder

        metrics, self.metrics_server = serve_recorder(address, PrometheusPluginMetrics)
        metrics.count_devices(self._device_counts)
        self.metrics = metrics

    def _device_counts(self) -> list[tuple[str, int, int]]:
        """(resource, healthy, unhealthy) of every resource served now, for a scrape."""
        counts = []
        for server in self.running.servers:
            health = server.health()
            healthy = sum(health.values())
            counts.append((server.resource_name, healthy, len(health) - healthy))
        return counts

    def _beat_if_in_place(self) -> None:
        if self._heartbeat is not None and self.running.in_place():
            self._heartbeat.beat()

    def _host(self) -> Host:
        """`/`, or the simulator's host tree (kept across restarts for one profile)."""
        settings = self._settings
        flags = settings.config.flags
        driver_root = flags.nvidia_driver_root or "/"
        dev_root = flags.nvidia_dev_root or driver_root
        profile = settings.nvml_mock
        if not profile:
            preload_nvml(flags.plugin.container_driver_root)
            return Host(driver_root=driver_root, dev_root=dev_root)
        from nvlib import mock

        # One already active (a test's, with its faults) is used as it is; one activated
        # here is kept across restarts and replaced when the profile changes.
        simulation = mock.simulation(profile)
        self._simulated = True
        root = Path(simulation.root)
        if not settings.driver_root_explicit:
            driver_root = dev_root = str(simulation.driver_root)
        nodes = simulation.device_nodes
        return Host(root, driver_root, dev_root, nodes, control_root=dev_root)
