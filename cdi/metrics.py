"""What `nvidia-cdi generate --watch` counts, for `--metrics-address` (docs/metrics.md).

`WatchMetrics` is the recorder the watch loop (cdi/run.py) calls; its methods do
nothing, so without `--metrics-address` nothing is counted and `prometheus_client` is
never imported. `PrometheusWatchMetrics` holds the real metrics, in a registry of its
own, and is made only when an address is given.

Every check ends in one result: `unchanged` (the node is as the spec says), `regenerated`
(the spec was generated and written, or found identical), `discovery_error` or
`generate_error` (the last good spec stays). A regeneration has one cause
(`regeneration_cause` in cdi/run.py): `start`, `signal`, `driver`, `gpus`, `mig`,
`imex_channels`, `device_nodes` or `simulator_root`.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported with --metrics-address only
    from prometheus_client.registry import CollectorRegistry

PREFIX = "nvidia_cdi"
CHECK_RESULTS = ("unchanged", "regenerated", "discovery_error", "generate_error")
CAUSES = ("start", "signal", "driver", "gpus", "mig")  # imex and management add theirs


class WatchMetrics:
    """The recorder with metrics off: every method does nothing."""

    def check(self, result: str) -> None:
        """A check of the node ended with this result (CHECK_RESULTS)."""

    def regenerated(self, cause: str, devices: int) -> None:
        """The spec, of `devices` devices, was written (or found identical) for `cause`."""


NO_METRICS = WatchMetrics()


class PrometheusWatchMetrics(WatchMetrics):
    """The recorder with metrics on; `registry` is what the HTTP server exposes."""

    def __init__(self, registry: CollectorRegistry) -> None:
        from nvlib.metrics import prometheus

        client = prometheus()
        self._checks = client.Counter(
            f"{PREFIX}_checks_total",
            "Checks of the node, by result (unchanged, regenerated, discovery_error,"
            " generate_error)",
            ["result"],
            registry=registry,
        )
        self._regenerations = client.Counter(
            f"{PREFIX}_regenerations_total",
            "Specs generated and written, by cause (start, signal, driver, gpus, mig,"
            " imex_channels, device_nodes, simulator_root)",
            ["cause"],
            registry=registry,
        )
        self._last_write = client.Gauge(
            f"{PREFIX}_last_spec_write_timestamp_seconds",
            "Unix time the spec was last written (or found identical) by a regeneration",
            registry=registry,
        )
        self._devices = client.Gauge(
            f"{PREFIX}_spec_devices",
            "Devices in the spec last written",
            registry=registry,
        )
        client.ProcessCollector(namespace=PREFIX, registry=registry)
        for result in CHECK_RESULTS:  # every series from the start, for rate() and alerts
            self._checks.labels(result)
        for cause in CAUSES:
            self._regenerations.labels(cause)

    def check(self, result: str) -> None:
        self._checks.labels(result).inc()

    def regenerated(self, cause: str, devices: int) -> None:
        self._regenerations.labels(cause).inc()
        self._last_write.set(time.time())
        self._devices.set(devices)
