"""`nvidia-device-plugin` / `python -m deviceplugin`: serve the kubelet device plugin API."""

from __future__ import annotations

import logging
import os
import sys

from deviceplugin.cli import parse
from nvlib import __version__, logs
from nvlib.config import ConfigError

log = logging.getLogger("deviceplugin")


def _without_openssl(metrics: bool = False) -> None:
    """Keep OpenSSL's libcrypto (about 4 MiB resident) out of the daemon.

    grpc imports asyncio, which imports Python's `ssl` only to offer TLS to asyncio
    streams, and `hashlib` prefers OpenSSL's digests. The plugin speaks plain gRPC on
    unix sockets (grpc carries its own TLS library anyway) and needs no digest beyond
    CPython's built-in ones; both importers treat an ImportError as "not available".
    This is what keeps the daemon under its 45 MiB budget (bench/bench_plugin.py).

    With `metrics` (`--metrics-address`), prometheus_client is imported now, around
    `ssl` (nvlib/metrics.py), before anything else imports the HTTP modules it needs.
    """
    for name in ("ssl", "_hashlib"):
        if name not in sys.modules:
            sys.modules[name] = None  # type: ignore[assignment]  # "import fails"
    if metrics:
        from nvlib.metrics import prometheus

        prometheus()


def main(argv: list[str] | None = None) -> int:
    logs.configure()  # standard error only: standard output is the product
    args = sys.argv[1:] if argv is None else argv
    environ = dict(os.environ)
    try:
        settings = parse(args, environ)
    except ConfigError as err:
        log.error("error starting plugins: %s", err.located())
        return 1
    if settings.show_version:
        print(f"nvidia-device-plugin {__version__}")
        return 0
    _without_openssl(metrics=bool(settings.metrics_address))
    from deviceplugin.daemon import Daemon
    from nvlib.signals import Signals

    signals = Signals()
    signals.install()
    return Daemon(args, environ, settings).run(signals)


if __name__ == "__main__":
    sys.exit(main())
