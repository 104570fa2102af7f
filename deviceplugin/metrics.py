"""What the device plugin counts, for `--metrics-address` (docs/metrics.md lists each).

`PluginMetrics` is the recorder the servers, the health monitor, the CDI keeper and the
daemon's loop call; its methods do nothing, so without `--metrics-address` nothing is
counted and `prometheus_client` is never imported. `PrometheusPluginMetrics` holds the
real metrics, in a registry of its own, and is made only when an address is given.

Labels stay few: the resource name (one per advertised resource), a result, the GPU's
NVML index and the XID; never a pod, a container or a device replica. Per-label-set
children are cached, so an Allocate pays two dictionary lookups and a histogram bucket
search, nothing more. The device gauge is read from the running servers at scrape time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported with --metrics-address only
    from prometheus_client.metrics_core import Metric
    from prometheus_client.registry import CollectorRegistry

PREFIX = "nvidia_device_plugin"
# Allocate is answered in tens of microseconds; the kubelet's own deadline is seconds.
ALLOCATE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 1.0)

# (resource, healthy devices, unhealthy devices) for every served resource.
DeviceCounts = Callable[[], Iterable[tuple[str, int, int]]]


def result(ok: bool) -> str:
    return "success" if ok else "error"


class PluginMetrics:
    """The recorder with metrics off: every method does nothing."""

    def serving(self, resource: str) -> None:
        """A resource is served: its series start at 0, so that rate() sees the first call."""

    def allocate(self, resource: str, ok: bool, seconds: float) -> None:
        """One Allocate call answered (`ok`) or refused, and how long it took."""

    def preferred_allocation(self, resource: str, ok: bool) -> None:
        """One GetPreferredAllocation call answered or refused."""

    def registration(self, resource: str, ok: bool) -> None:
        """One Register call to the kubelet, accepted or failed."""

    def kubelet_restart(self) -> None:
        """The kubelet's socket was created anew."""

    def xid(self, gpu: str, xid: int) -> None:
        """An XID event on the GPU of this NVML index ("unknown": NVML could not name the
        GPU, or the plugin does not advertise it)."""

    def cdi_check(self) -> None:
        """The spec directories were compared with the names the plugin hands out."""

    def cdi_write(self, outcome: str) -> None:
        """The plugin's own CDI spec was `written`, `removed`, or the write `failed`."""

    def count_devices(self, source: DeviceCounts) -> None:
        """Where the devices gauge reads the served resources from, at scrape time."""


NO_METRICS = PluginMetrics()


class PrometheusPluginMetrics(PluginMetrics):
    """The recorder with metrics on; `registry` is what the HTTP server exposes."""

    def __init__(self, registry: CollectorRegistry) -> None:
        from nvlib.metrics import prometheus

        client = prometheus()
        Counter, Histogram = client.Counter, client.Histogram
        self._allocate_total = Counter(
            f"{PREFIX}_allocate_requests_total",
            "Allocate calls from the kubelet, by resource and result (success, error)",
            ["resource", "result"],
            registry=registry,
        )
        self._allocate_seconds = Histogram(
            f"{PREFIX}_allocate_duration_seconds",
            "Time the plugin took to answer an Allocate call, by resource",
            ["resource"],
            buckets=ALLOCATE_BUCKETS,
            registry=registry,
        )
        self._preferred_total = Counter(
            f"{PREFIX}_get_preferred_allocation_requests_total",
            "GetPreferredAllocation calls from the kubelet, by resource and result",
            ["resource", "result"],
            registry=registry,
        )
        self._registrations = Counter(
            f"{PREFIX}_registrations_total",
            "Registrations with the kubelet, by resource and result (success, error)",
            ["resource", "result"],
            registry=registry,
        )
        self._kubelet_restarts = Counter(
            f"{PREFIX}_kubelet_restarts_total",
            "Times the kubelet's registration socket was seen created anew",
            registry=registry,
        )
        self._xids = Counter(
            f"{PREFIX}_xid_events_total",
            "XID events received, by GPU (NVML index; unknown: not named by NVML, or not"
            " advertised) and XID, the XIDs the health check ignores included",
            ["gpu", "xid"],
            registry=registry,
        )
        self._cdi_checks = Counter(
            f"{PREFIX}_cdi_spec_checks_total",
            "Checks of the CDI spec directories for the device names the plugin hands out",
            registry=registry,
        )
        self._cdi_writes = Counter(
            f"{PREFIX}_cdi_spec_writes_total",
            "Changes to the plugin's own CDI spec, by outcome (written, removed, failed)",
            ["outcome"],
            registry=registry,
        )
        self._device_source: DeviceCounts = tuple
        registry.register(_DeviceCollector(client, lambda: self._device_source()))
        client.ProcessCollector(namespace=PREFIX, registry=registry)
        self._children: dict[tuple[object, ...], Any] = {}

    def _child(self, metric: Any, *labels: str) -> Any:
        """The labelled child, made once: prometheus_client's labels() validates every call."""
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def serving(self, resource: str) -> None:
        for ok in (True, False):
            for metric in (self._allocate_total, self._preferred_total, self._registrations):
                self._child(metric, resource, result(ok))
        self._child(self._allocate_seconds, resource)

    def allocate(self, resource: str, ok: bool, seconds: float) -> None:
        self._child(self._allocate_total, resource, result(ok)).inc()
        self._child(self._allocate_seconds, resource).observe(seconds)

    def preferred_allocation(self, resource: str, ok: bool) -> None:
        self._child(self._preferred_total, resource, result(ok)).inc()

    def registration(self, resource: str, ok: bool) -> None:
        self._child(self._registrations, resource, result(ok)).inc()

    def kubelet_restart(self) -> None:
        self._kubelet_restarts.inc()

    def xid(self, gpu: str, xid: int) -> None:
        self._child(self._xids, gpu, str(xid)).inc()

    def cdi_check(self) -> None:
        self._cdi_checks.inc()

    def cdi_write(self, outcome: str) -> None:
        self._child(self._cdi_writes, outcome).inc()

    def count_devices(self, source: DeviceCounts) -> None:
        self._device_source = source


class _DeviceCollector:
    """`<prefix>_devices{resource, health}`, read from the servers when scraped: a
    restart that changes the resources changes the series, and nothing is kept."""

    def __init__(self, client: Any, source: DeviceCounts) -> None:
        self._family = client.metrics_core.GaugeMetricFamily
        self._source = source

    def collect(self) -> Iterable[Metric]:
        family = self._family(
            f"{PREFIX}_devices",
            "Devices advertised to the kubelet, by resource and health (healthy, unhealthy)",
            labels=["resource", "health"],
        )
        for resource, healthy, unhealthy in self._source():
            family.add_metric([resource, "healthy"], healthy)
            family.add_metric([resource, "unhealthy"], unhealthy)
        yield family

    def describe(self) -> Iterable[Metric]:
        return ()  # no registration-time collect: the servers may not exist yet
