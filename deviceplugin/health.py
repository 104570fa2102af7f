"""Health checking: NVML XID events mark devices unhealthy, a quiet GPU comes back.

One monitor thread per start watches every physical GPU the plugins advertise with
one NVML event set (upstream runs one per resource; the events are the same). The
procedure is upstream's (device-plugin.md §11.2) with the project's fixes:

- a GPU's event marks *every* device it carries: all its replicas, and all its MIG
  devices unless the event names one GPU/compute instance (§11.3);
- opt-in recovery (§11.4): once `recovery_period` passes without a critical event on a
  GPU, and an NVML probe of it succeeds, its devices are reported healthy again. The
  quiet period matters because NVML answers queries right after a fatal XID;
- a failing wait marks unhealthy only the GPUs that then fail a probe, and all of them
  (as upstream) only when none does; a lost GPU never stops the loop.

The monitor reports through `HealthSink.set_health`; it never touches gRPC.
"""

from __future__ import annotations

import ctypes
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import pynvml

from deviceplugin.errors import PluginError
from deviceplugin.xids import XidPolicy
from nvlib.nvml import error_text, text

log = logging.getLogger(__name__)

ALL_INSTANCES = 0xFFFFFFFF  # GPU/compute instance of an event on the whole GPU
EVENT_MASK = (
    pynvml.nvmlEventTypeXidCriticalError
    | pynvml.nvmlEventTypeDoubleBitEccError
    | pynvml.nvmlEventTypeSingleBitEccError
)
# Short waits: a stop or a recovery check never waits behind NVML for long, and an
# event still wakes the wait at once.
WAIT_MS = 250
WAIT_ERROR_BACKOFF = 0.2  # a wait that keeps failing must not spin
PROBE_INTERVAL = 1.0  # at most one recovery probe per GPU per second


class HealthSink(Protocol):
    """A plugin: it turns reports into ListAndWatch updates."""

    resource_name: str

    def set_health(self, device_ids: Sequence[str], healthy: bool) -> None: ...


@dataclass(frozen=True)
class Watched:
    """One advertised device and where events for it come from."""

    device_id: str
    gpu_uuid: str  # the physical GPU whose events concern it
    mig: tuple[int, int] | None  # (GPU instance, compute instance) of a MIG device
    sink: HealthSink

    def concerned_by(self, gi: int, ci: int) -> bool:
        if self.mig is None or gi == ALL_INSTANCES or ci == ALL_INSTANCES:
            return True
        return self.mig == (gi, ci)


class HealthMonitor:
    def __init__(
        self,
        watched: Sequence[Watched],
        policy: XidPolicy,
        *,
        recovery_period: float | None = None,
        fail_on_init_error: bool = True,
    ) -> None:
        self._policy = policy
        self._recovery = recovery_period
        self._fail_on_init_error = fail_on_init_error
        self._by_gpu: dict[str, list[Watched]] = {}
        for w in watched:
            self._by_gpu.setdefault(w.gpu_uuid, []).append(w)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._event_set: object = None
        self._registered: set[str] = set()
        self._by_handle: dict[int | None, str] = {}  # handle address -> GPU UUID
        self._last_bad: dict[str, float] = {}  # GPU UUID -> monotonic time of its last fault
        self._last_probe: dict[str, float] = {}
        self._unhealthy: set[Watched] = set()

    def start(self) -> None:
        """Register for events and start the thread; PluginError when that fails.

        With NVML unavailable and fail-on-init-error off it returns without checking,
        as upstream does.
        """
        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError as err:
            if self._fail_on_init_error:
                raise PluginError(f"failed to initialize NVML: {error_text(err)}") from err
            log.warning("NVML init failed: %s; health checks disabled", error_text(err))
            return
        try:
            self._event_set = pynvml.nvmlEventSetCreate()
        except pynvml.NVMLError as err:
            _shutdown()
            raise PluginError(f"failed to create event set: {error_text(err)}") from err
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

    # -- registration and probes -----------------------------------------------------

    def _register(self, gpu_uuid: str) -> bool:
        """Register the GPU's critical events; a failure marks its devices unhealthy."""
        try:
            handle = pynvml.nvmlDeviceGetHandleByUUID(gpu_uuid)
        except pynvml.NVMLError as err:
            log.info(
                "unable to get device handle from UUID: %s; marking it as unhealthy",
                error_text(err),
            )
            self._mark(gpu_uuid, ALL_INSTANCES, ALL_INSTANCES)
            return False
        try:
            supported = pynvml.nvmlDeviceGetSupportedEventTypes(handle)
        except pynvml.NVMLError as err:
            log.info(
                "unable to determine the supported events for %s: %s; marking it as unhealthy",
                gpu_uuid,
                error_text(err),
            )
            self._mark(gpu_uuid, ALL_INSTANCES, ALL_INSTANCES)
            return False
        try:
            pynvml.nvmlDeviceRegisterEvents(handle, EVENT_MASK & supported, self._event_set)
        except pynvml.NVMLError_NotSupported:
            log.warning("Device %s is too old to support healthchecking.", gpu_uuid)
            return True
        except pynvml.NVMLError as err:
            log.info("Marking device %s as unhealthy: %s", gpu_uuid, error_text(err))
            self._mark(gpu_uuid, ALL_INSTANCES, ALL_INSTANCES)
            return False
        self._registered.add(gpu_uuid)
        self._by_handle[_address(handle)] = gpu_uuid
        return True

    @staticmethod
    def _probe(gpu_uuid: str) -> bool:
        """Does NVML still reach this GPU? Handle, PCI info and memory must all answer."""
        try:
            handle = pynvml.nvmlDeviceGetHandleByUUID(gpu_uuid)
            pynvml.nvmlDeviceGetPciInfo(handle)
            pynvml.nvmlDeviceGetMemoryInfo(handle)
        except pynvml.NVMLError as err:
            log.debug("probe of %s failed: %s", gpu_uuid, error_text(err))
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
            try:
                pynvml.nvmlEventSetFree(self._event_set)
            except pynvml.NVMLError as err:  # NVML may be shut down under a stopping monitor
                log.debug("Failed to free event set: %s", error_text(err))
            _shutdown()

    def _step(self) -> None:
        try:
            event = pynvml.nvmlEventSetWait_v2(self._event_set, WAIT_MS)
        except pynvml.NVMLError_Timeout:
            self._recover()
            return
        except pynvml.NVMLError as err:
            if not self._stop.is_set():  # stopping: NVML may be going away under us
                self._wait_failed(err)
            return
        if self._stop.is_set():
            return
        self._handle(event)
        self._recover()

    def _wait_failed(self, err: pynvml.NVMLError) -> None:
        lost = [u for u in self._by_gpu if not self._probe(u)]
        if lost:
            log.info("Error waiting for event: %s; marking lost GPUs unhealthy", error_text(err))
        else:
            log.info(
                "Error waiting for event: %s; marking all devices as unhealthy", error_text(err)
            )
        for gpu_uuid in lost or list(self._by_gpu):
            self._mark(gpu_uuid, ALL_INSTANCES, ALL_INSTANCES)
        self._stop.wait(WAIT_ERROR_BACKOFF)

    def _handle(self, event: pynvml.c_nvmlEventData_t) -> None:
        if event.eventType != pynvml.nvmlEventTypeXidCriticalError:
            log.debug("Skipping non-nvmlEventTypeXidCriticalError event: %s", event)
            return
        xid = int(event.eventData)
        if self._policy.ignores(xid):
            log.info("Skipping event Xid=%d", xid)
            return
        # The handle we registered names the GPU without asking NVML, which a GPU that
        # fell off the bus no longer answers (upstream then marks every GPU).
        gpu_uuid = self._by_handle.get(_address(event.device))
        try:
            if gpu_uuid is None:
                gpu_uuid = text(pynvml.nvmlDeviceGetUUID(event.device))
        except pynvml.NVMLError as err:
            log.info(
                "Failed to determine uuid for event Xid=%d: %s; marking all devices as unhealthy.",
                xid,
                error_text(err),
            )
            for uuid in self._by_gpu:
                self._mark(uuid, ALL_INSTANCES, ALL_INSTANCES, xid)
            return
        if gpu_uuid not in self._by_gpu:
            log.info("Ignoring event for unexpected device: %s", gpu_uuid)
            return
        self._mark(gpu_uuid, int(event.gpuInstanceId), int(event.computeInstanceId), xid)

    def _mark(self, gpu_uuid: str, gi: int, ci: int, xid: int | None = None) -> None:
        hit = [w for w in self._by_gpu.get(gpu_uuid, ()) if w.concerned_by(gi, ci)]
        if not hit:
            return
        self._last_bad[gpu_uuid] = time.monotonic()
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
            if now - self._last_bad.get(gpu_uuid, 0.0) < self._recovery:
                continue
            if now - self._last_probe.get(gpu_uuid, -PROBE_INTERVAL) < PROBE_INTERVAL:
                continue
            self._last_probe[gpu_uuid] = now
            if not self._probe(gpu_uuid):
                continue
            if gpu_uuid not in self._registered and not self._register(gpu_uuid):
                continue
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


def _address(handle: object) -> int | None:
    """The pointer value of an NVML device handle, to compare handles by."""
    return ctypes.cast(handle, ctypes.c_void_p).value  # type: ignore[arg-type]


def _shutdown() -> None:
    try:
        pynvml.nvmlShutdown()
    except pynvml.NVMLError:
        pass  # a failed shutdown must not hide why the monitor stopped
