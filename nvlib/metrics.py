"""Serving Prometheus metrics: `--metrics-address HOST:PORT` on every daemon, off by default.

Each daemon keeps what it counts in a recorder of its own (`deviceplugin.metrics`,
`gfd.metrics`, `cdi.metrics`): a class whose methods do nothing, which its loops and
servers call unconditionally, and a subclass holding `prometheus_client` metrics, made
only when an address is given. So a daemon without `--metrics-address` never imports
`prometheus_client` (tests prove it per command), and its cores never know whether
anything is counted.

`serve` starts prometheus_client's own HTTP server on a daemon thread; it answers
`GET /metrics` (any path, in fact) with the text exposition format. A port of 0 picks a
free one (tests); `MetricsServer.port` says which. An address that cannot be bound
raises `MetricsError` naming it: the daemons exit 1 before doing anything else.

prometheus_client imports `ssl` (for TLS options this project never uses). The device
plugin keeps OpenSSL out of its process for its memory budget (deviceplugin/__main__.py);
there the import goes through `_without_tls`, which hands prometheus_client a stand-in
`ssl` module whose every name refuses to be used, and keeps `ssl` unimportable for
everything else. This module itself imports only the standard library, and that lazily.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from prometheus_client.registry import CollectorRegistry  # imported with an address only

Recorder = TypeVar("Recorder")

__all__ = [
    "MetricsError",
    "MetricsServer",
    "new_registry",
    "parse_address",
    "prometheus",
    "serve",
    "serve_recorder",
]


class MetricsError(Exception):
    """The metrics endpoint cannot be served; the message names the address."""


def parse_address(text: str) -> tuple[str, int]:
    """`HOST:PORT` as Go's net.Listen takes it: `0.0.0.0:9410`, `[::1]:9410`, `:9410`
    (every IPv4 interface), port 0 for any free port. ValueError names what is wrong."""
    host, sep, port_text = text.rpartition(":")
    if not sep:
        raise ValueError("want HOST:PORT, e.g. 0.0.0.0:9410 or :9410")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError("an IPv6 host goes in brackets, e.g. [::1]:9410")
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"port {port_text!r} is not a number from 0 to 65535")
    return host or "0.0.0.0", int(port_text)


class _Refused:
    """What the stand-in `ssl` module hands out: a name that fails when used."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        raise RuntimeError("TLS is not available in this process (metrics are plain HTTP)")


def _without_tls() -> ModuleType:
    """Import prometheus_client while `ssl` is kept out of the process.

    The stand-in must be what `http.client` and `urllib.request` see too, so they must
    not have been imported before (deviceplugin/__main__.py imports this first thing).
    """
    import types

    early = [name for name in ("http.client", "urllib.request") if name in sys.modules]
    if early:
        raise RuntimeError(
            f"{', '.join(early)} imported without TLS before prometheus_client: import"
            " prometheus_client first (nvlib.metrics.prometheus) where ssl is kept out"
        )

    stand_in = types.ModuleType("ssl", "No TLS: names exist for import-time use only.")

    def refused(name: str) -> type:
        if name.startswith("__"):  # the import system's own questions get true answers
            raise AttributeError(name)
        return _Refused

    stand_in.__getattr__ = refused  # type: ignore[method-assign]  # a module __getattr__
    sys.modules["ssl"] = stand_in
    try:
        import prometheus_client
    finally:
        sys.modules["ssl"] = None  # type: ignore[assignment]  # "import fails" again
    return prometheus_client


def prometheus() -> ModuleType:
    """prometheus_client, imported on the first call, without the `_created` series it
    adds by default (one more series per counter and histogram, which no alert reads)."""
    client = sys.modules.get("prometheus_client")
    if client is None and "ssl" in sys.modules and sys.modules["ssl"] is None:
        client = _without_tls()
    elif client is None:
        import prometheus_client

        client = prometheus_client
    client.disable_created_metrics()  # a global switch: also when imported elsewhere first
    return client


class MetricsServer:
    """prometheus_client's HTTP server for one registry, on a daemon thread."""

    def __init__(self, address: str, registry: CollectorRegistry) -> None:
        self.address = address
        host, port = parse_address(address)
        client = prometheus()
        try:
            self._httpd, self._thread = client.start_http_server(port, host, registry)
        except OSError as err:
            reason = err.strerror or str(err)
            raise MetricsError(f"cannot serve metrics on {address}: {reason}") from err
        self.host = host
        self.port: int = self._httpd.server_address[1]

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def new_registry() -> CollectorRegistry:
    """An empty registry: a daemon's metrics only, not prometheus_client's defaults."""
    registry: CollectorRegistry = prometheus().CollectorRegistry()
    return registry


def serve(address: str, registry: CollectorRegistry) -> MetricsServer:
    """Serve `registry` at `address` (already checked by the command line); MetricsError
    when it cannot be bound."""
    return MetricsServer(address, registry)


def serve_recorder(
    address: str, recorder: Callable[[CollectorRegistry], Recorder]
) -> tuple[Recorder, MetricsServer]:
    """A daemon's recorder on a registry of its own, served at `address` for the life of
    the process (MetricsError when it cannot be bound)."""
    import logging

    registry = new_registry()
    made = recorder(registry)
    server = serve(address, registry)
    logging.getLogger(__name__).info("Serving metrics on %s (port %d)", address, server.port)
    return made, server
