"""What GFD counts, for `--metrics-address` (docs/metrics.md lists each).

`GfdMetrics` is the recorder the loop (gfd/daemon.py), the publisher (gfd/publish.py)
and the outputs call; its methods do nothing, so without `--metrics-address` nothing is
counted and `prometheus_client` is never imported. `PrometheusGfdMetrics` holds the
real metrics, in a registry of its own, and is made only when an address is given.

A pass ends in one of four results: `success` (the labels were published, or found
unchanged), `deferred` (publishing waits out an API outage: the last labels stay),
`device_error` (the devices could not be read: the last labels stay) and
`publish_error` (a publishing failure that waiting does not fix).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported with --metrics-address only
    from prometheus_client.registry import CollectorRegistry

PREFIX = "gfd"
PASS_RESULTS = ("success", "deferred", "device_error", "publish_error")
# Where labels go, and how: the feature file (or standard output) and its removal when a
# NodeFeature takes over, the NodeFeature object's create, update and delete (when the
# file takes over again).
WRITE_KINDS = (
    "file",
    "stdout",
    "file_remove",
    "nodefeature_create",
    "nodefeature_update",
    "nodefeature_delete",
)
# A pass reads NVML in well under a second; one waiting on the API can take its 20 s budget.
PASS_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0)


class GfdMetrics:
    """The recorder with metrics off: every method does nothing."""

    def labelling_pass(self, result: str, seconds: float) -> None:
        """A pass ended with this result (PASS_RESULTS) after `seconds`."""

    def published(self, labels: int) -> None:
        """This many labels are now what the output carries."""

    def output_write(self, kind: str, ok: bool) -> None:
        """The output wrote (or failed to write) the labels, by kind."""

    def api_error(self, status: int | None) -> None:
        """An API request failed with this HTTP status (None: no answer at all)."""


NO_METRICS = GfdMetrics()


class PrometheusGfdMetrics(GfdMetrics):
    """The recorder with metrics on; `registry` is what the HTTP server exposes."""

    def __init__(self, registry: CollectorRegistry) -> None:
        from nvlib.metrics import prometheus

        client = prometheus()
        self._passes = client.Counter(
            f"{PREFIX}_passes_total",
            "Labelling passes, by result (success, deferred, device_error, publish_error)",
            ["result"],
            registry=registry,
        )
        self._duration = client.Histogram(
            f"{PREFIX}_pass_duration_seconds",
            "Time a labelling pass took: reading the devices, computing and publishing",
            buckets=PASS_BUCKETS,
            registry=registry,
        )
        self._last_success = client.Gauge(
            f"{PREFIX}_last_success_timestamp_seconds",
            "Unix time of the end of the last pass whose labels were published or unchanged",
            registry=registry,
        )
        self._labels = client.Gauge(
            f"{PREFIX}_labels",
            "Labels in the set last published",
            registry=registry,
        )
        self._writes = client.Counter(
            f"{PREFIX}_output_writes_total",
            "Writes of the labels, by kind (file, stdout, file_remove, nodefeature_create,"
            " nodefeature_update, nodefeature_delete) and result (success, error); an"
            " unchanged set writes nothing",
            ["kind", "result"],
            registry=registry,
        )
        self._api_errors = client.Counter(
            f"{PREFIX}_api_errors_total",
            "Kubernetes API requests that failed, by HTTP status code (none: no answer);"
            " a 404 for an object not there yet is no error",
            ["code"],
            registry=registry,
        )
        client.ProcessCollector(namespace=PREFIX, registry=registry)
        for result in PASS_RESULTS:  # every series from the start, for rate() and alerts
            self._passes.labels(result)
        for kind in WRITE_KINDS:
            for outcome in ("success", "error"):
                self._writes.labels(kind, outcome)

    def labelling_pass(self, result: str, seconds: float) -> None:
        self._passes.labels(result).inc()
        self._duration.observe(seconds)
        if result == "success":
            self._last_success.set(time.time())

    def published(self, labels: int) -> None:
        self._labels.set(labels)

    def output_write(self, kind: str, ok: bool) -> None:
        self._writes.labels(kind, "success" if ok else "error").inc()

    def api_error(self, status: int | None) -> None:
        self._api_errors.labels("none" if status is None else str(status)).inc()
