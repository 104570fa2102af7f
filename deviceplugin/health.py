"""Health checking: NVML XID events mark devices unhealthy, a quiet GPU comes back.

One monitor thread per start watches every physical GPU the plugins advertise with
one NVML event set (upstream runs one per resource; the events are the same). The
procedure is upstream's (docs/deviceplugin.md#health) with the project's fixes:

- a GPU's event marks *every* device it carries: all its replicas, and all its MIG
  devices unless the event names one GPU/compute instance;
- opt-in recovery: once `recovery_period` passes without a critical event on a
  GPU, and an NVML probe of it succeeds, its devices are reported healthy again. The
  quiet period matters because NVML answers queries right after a fatal XID;
- a failing wait marks unhealthy only the GPUs that then fail a probe, and all of them
  (as upstream) only when none does; a lost GPU never stops the loop. A wait answering
  Uninitialized marks nothing: NVML was shut down under the monitor (a simulated
  machine replaced), which says nothing about a GPU. The event set went with it, so
  the monitor opens a new one and registers its GPUs again;
- what was marked outlives the monitor (`NodeHealth`, kept by the daemon): a monitor
  starts by reporting the devices whose GPU was marked before, so a restart never
  advertises them healthy, and recovers them on the time of their last event.

The monitor reports through `HealthSink.set_health`; it never touches gRPC. NVML itself
(the event set, the probe, decoding an event) is `nvlib.events`; this module is the policy.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import NamedTuple, Protocol

from deviceplugin.errors import PluginError
from deviceplugin.metrics import NO_METRICS, PluginMetrics
from deviceplugin.nodehealth import NodeHealth, Scope, concerns
from deviceplugin.xids import XidPolicy
from nvlib import events
from nvlib.events import ALL_INSTANCES, UNINITIALIZED, Event, EventSet, RegistrationError
from nvlib.nvml import NvmlError, NvmlInitError

log = logging.getLogger(__name__)

# Short waits: a stop or a recovery check never waits behind NVML for long, and an
# event still wakes the wait at once.
WAIT_MS = 250
WAIT_ERROR_BACKOFF = 0.2  # a wait that keeps failing must not spin
PROBE_INTERVAL = 1.0  # at most one recovery probe per GPU per second


class HealthSink(Protocol):
    """A plugin: it turns reports into ListAndWatch updates."""

    resource_name: str

    def set_health(self, device_ids: Sequence[str], healthy: bool) -> None: ...


class Watched(NamedTuple):
    """One advertised device and where events for it come from."""

    device_id: str
    gpu_uuid: str  # the physical GPU whose events concern it
    mig: Scope | None  # (GPU instance, compute instance) of a MIG device
    sink: HealthSink
    gpu_index: int | None = None  # NVML index of that GPU, for the XID metric

    def concerned_by(self, gi: int, ci: int) -> bool:
        return concerns((gi, ci), self.mig)


class HealthMonitor:
    def __init__(
        self,
        watched: Sequence[Watched],
        policy: XidPolicy,
        *,
        recovery_period: float | None = None,
        fail_on_init_error: bool = True,
        node: NodeHealth | None = None,
        metrics: PluginMetrics = NO_METRICS,
    ) -> None:
        self._policy = policy
        self._metrics = metrics
        self._node = node if node is not None else NodeHealth()
        self._recovery = recovery_period
        self._fail_on_init_error = fail_on_init_error
        self._by_gpu: dict[str, list[Watched]] = {}
        self._gpu_index: dict[str, str] = {}  # GPU UUID -> its NVML index, as a label
        for w in watched:
            self._by_gpu.setdefault(w.gpu_uuid, []).append(w)
            if w.gpu_index is not None:
                self._gpu_index[w.gpu_uuid] = str(w.gpu_index)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._events: EventSet | None = None
        self._registered: set[str] = set()
        self._reopen_failed = False  # logged once per outage, not every back-off
        self._last_probe: dict[str, float] = {}
        self._unhealthy: set[Watched] = set()

    def start(self) -> None:
        """Register for events and start the thread; PluginError when that fails.

        With NVML unavailable and fail-on-init-error off it returns without checking,
        as upstream does. Devices whose GPU was marked before (by an earlier start's
        monitor) are reported unhealthy first, even then.
        """
        marked = [w for ws in self._by_gpu.values() for w in ws if self._is_marked(w)]
        if marked:
            gpus = ", ".join(dict.fromkeys(w.gpu_uuid for w in marked))
            log.info("Devices of GPUs marked before stay unhealthy: %s", gpus)
            self._report(marked, healthy=False)
        try:
            self._events = EventSet.open()
        except NvmlInitError as err:
            if self._fail_on_init_error:
                raise PluginError(f"failed to initialize NVML: {err}") from err
            log.warning("NVML init failed: %s; health checks disabled", err)
            return
        except NvmlError as err:
            raise PluginError(f"failed to create event set: {err}") from err
        log.info("Ignoring the following XIDs for health checks: %s", self._policy)
        for gpu_uuid in self._by_gpu:
            self._register(gpu_uuid)
        self._thread = threading.Thread(target=self._run, name="health", daemon=True)
        self._thread.start()
        log.info("Health monitoring started for %d devices", sum(map(len, self._by_gpu.values())))

    def stop(self, wait: bool = False) -> None:
        """Ask the thread to end; it frees its event set after its current wait.

        Not waiting keeps a restart (and re-registration) from idling through the rest
        of a wait: the next start's monitor has an event set of its own.
        """
        self._stop.set()
        if self._thread is not None and wait:
            self._thread.join(timeout=WAIT_MS / 1000 + 2)

    def _is_marked(self, w: Watched) -> bool:
        return self._node.unhealthy(w.gpu_uuid, w.mig)

    # -- registration and probes -----------------------------------------------------

    def _register(self, gpu_uuid: str) -> bool:
        """Register the GPU's critical events; a failure marks its devices unhealthy."""
        assert self._events is not None
        try:
            registered = self._events.register(gpu_uuid)
        except RegistrationError as err:
            if err.step == "handle":
                log.info("unable to get device handle from UUID: %s; marking it as unhealthy", err)
            elif err.step == "supported":
                log.info(
                    "unable to determine the supported events for %s: %s; marking it as unhealthy",
                    gpu_uuid,
                    err,
                )
            else:
                log.info("Marking device %s as unhealthy: %s", gpu_uuid, err)
            self._mark(gpu_uuid, ALL_INSTANCES, ALL_INSTANCES)
            return False
        if not registered:
            log.warning("Device %s is too old to support healthchecking.", gpu_uuid)
            return True
        self._registered.add(gpu_uuid)
        return True

    @staticmethod
    def _probe(gpu_uuid: str) -> bool:
        """Does NVML still reach this GPU? Handle, PCI info and memory must all answer."""
        try:
            events.probe(gpu_uuid)
        except NvmlError as err:
            log.debug("probe of %s failed: %s", gpu_uuid, err)
            return False
        return True

    # -- the loop --------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    self._step()
                except Exception:  # a lost GPU, a driver hiccup: log and keep watching
                    log.exception("health check iteration failed")
                    self._stop.wait(WAIT_ERROR_BACKOFF)
        finally:
            if self._events is not None:
                self._events.close()  # NVML may be shut down under a stopping monitor: logged

    def _step(self) -> None:
        if self._events is None:
            self._reopen()
            return
        try:
            event = self._events.wait(WAIT_MS)
        except NvmlError as err:
            if not self._stop.is_set():  # stopping: NVML may be going away under us
                self._wait_failed(err)
            return
        if event is None:  # timed out
            self._recover()
            return
        if self._stop.is_set():
            return
        self._handle(event)
        self._recover()

    def _wait_failed(self, err: NvmlError) -> None:
        if err.code == UNINITIALIZED:
            # Not freed: its NVML session is gone, and closing it would shut down NVML once
            # more, under the new set. No later wait may use it (a new session would call
            # its handle invalid, which marks GPUs).
            self._events = None
            self._registered.clear()
            log.info("Error waiting for event: %s; NVML was shut down, no device marked", err)
            self._stop.wait(WAIT_ERROR_BACKOFF)
            return
        lost = [u for u in self._by_gpu if not self._probe(u)]
        if lost:
            log.info("Error waiting for event: %s; marking lost GPUs unhealthy", err)
        else:
            log.info("Error waiting for event: %s; marking all devices as unhealthy", err)
        for gpu_uuid in lost or list(self._by_gpu):
            self._mark(gpu_uuid, ALL_INSTANCES, ALL_INSTANCES)
        self._stop.wait(WAIT_ERROR_BACKOFF)

    def _reopen(self) -> None:
        """A new event set, every GPU registered again (a failure marks it, as at start)."""
        try:
            self._events = EventSet.open()
        except NvmlError as err:
            if not self._reopen_failed:
                log.info("Cannot open a new event set: %s; retrying", err)
                self._reopen_failed = True
            self._stop.wait(WAIT_ERROR_BACKOFF)
            return
        self._reopen_failed = False
        log.info("Health monitoring resumed with a new event set")
        for gpu_uuid in self._by_gpu:
            self._register(gpu_uuid)

    def _handle(self, event: Event) -> None:
        xid = event.xid
        if xid is None:
            log.debug("Skipping non-nvmlEventTypeXidCriticalError event: %s", event)
            return
        self._metrics.xid(self._gpu_index.get(event.gpu_uuid or "", "unknown"), xid)
        if self._policy.ignores(xid):
            log.info("Skipping event Xid=%d", xid)
            return
        # The event set names the GPU by the handle registered, without asking NVML, which
        # a GPU that fell off the bus no longer answers (upstream then marks every GPU).
        gpu_uuid = event.gpu_uuid
        if gpu_uuid is None:
            log.info(
                "Failed to determine uuid for event Xid=%d: %s; marking all devices as unhealthy.",
                xid,
                event.uuid_error,
            )
            for uuid in self._by_gpu:
                self._mark(uuid, ALL_INSTANCES, ALL_INSTANCES, xid)
            return
        if gpu_uuid not in self._by_gpu:
            log.info("Ignoring event for unexpected device: %s", gpu_uuid)
            return
        self._mark(gpu_uuid, event.gpu_instance, event.compute_instance, xid)

    def _mark(self, gpu_uuid: str, gi: int, ci: int, xid: int | None = None) -> None:
        hit = [w for w in self._by_gpu.get(gpu_uuid, ()) if w.concerned_by(gi, ci)]
        if not hit:
            return
        self._node.record(gpu_uuid, (gi, ci), time.monotonic())
        if xid is not None:
            for base in dict.fromkeys(w.device_id.split("::", 1)[0] for w in hit):
                log.info(
                    "XidCriticalError: Xid=%d on Device=%s; marking device as unhealthy.",
                    xid,
                    base,
                )
        self._report(hit, healthy=False)

    def _recover(self) -> None:
        if self._recovery is None or not self._unhealthy:
            return
        now = time.monotonic()
        for gpu_uuid in {w.gpu_uuid for w in self._unhealthy}:
            fault = self._node.fault(gpu_uuid)
            if fault is not None and now - fault.last < self._recovery:
                continue
            if now - self._last_probe.get(gpu_uuid, -PROBE_INTERVAL) < PROBE_INTERVAL:
                continue
            self._last_probe[gpu_uuid] = now
            if not self._probe(gpu_uuid):
                continue
            if gpu_uuid not in self._registered and not self._register(gpu_uuid):
                continue
            if not self._node.clear(gpu_uuid, quiet_since=now - self._recovery):
                continue  # an event came in meanwhile, reported to another monitor
            back = [w for w in self._unhealthy if w.gpu_uuid == gpu_uuid]
            log.info(
                "GPU %s quiet for %gs and reachable: marking healthy", gpu_uuid, self._recovery
            )
            self._report(back, healthy=True)

    def _report(self, devices: Sequence[Watched], *, healthy: bool) -> None:
        by_sink: dict[int, tuple[HealthSink, list[str]]] = {}
        for w in devices:
            if healthy:
                self._unhealthy.discard(w)
            else:
                self._unhealthy.add(w)
            by_sink.setdefault(id(w.sink), (w.sink, []))[1].append(w.device_id)
        for sink, ids in by_sink.values():
            sink.set_health(ids, healthy)
