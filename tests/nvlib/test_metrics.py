"""nvlib.metrics: the address every daemon's `--metrics-address` takes, and the server.

A table of addresses (Go's net.Listen forms, and what is refused with which reason);
a server on port 0 answers /metrics and says its port; a second one on the same address
fails naming it; with `ssl` kept out of the process (as the device plugin keeps it),
prometheus_client still imports, `ssl` stays unimportable for everything else, and the
stand-in it saw refuses to be used.
"""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest
from metrics_scrape import run_python

from nvlib.metrics import MetricsError, new_registry, parse_address, prometheus, serve

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.0.0.0:9410", ("0.0.0.0", 9410)),
        (":9410", ("0.0.0.0", 9410)),
        ("127.0.0.1:0", ("127.0.0.1", 0)),
        ("[::1]:9410", ("::1", 9410)),
        ("[::]:65535", ("::", 65535)),
        ("localhost:80", ("localhost", 80)),
    ],
)
def test_addresses_taken(text: str, expected: tuple[str, int]) -> None:
    assert parse_address(text) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("9410", "want HOST:PORT, e.g. 0.0.0.0:9410 or :9410"),
        ("", "want HOST:PORT, e.g. 0.0.0.0:9410 or :9410"),
        ("host:", "port '' is not a number from 0 to 65535"),
        ("host:-1", "port '-1' is not a number from 0 to 65535"),
        ("host:70000", "port '70000' is not a number from 0 to 65535"),
        ("::1:9410", "an IPv6 host goes in brackets, e.g. [::1]:9410"),
    ],
)
def test_addresses_refused(text: str, reason: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_address(text)
    assert str(caught.value) == reason


def test_server_answers_and_a_taken_address_is_named() -> None:
    registry = new_registry()
    prometheus().Counter("probe_things_total", "Things probed", registry=registry).inc()
    server = serve("127.0.0.1:0", registry)
    try:
        assert server.port > 0
        url = f"http://127.0.0.1:{server.port}/metrics"
        text = urllib.request.urlopen(url, timeout=5).read().decode()
        assert "# TYPE probe_things_total counter\nprobe_things_total 1.0\n" in text
        assert "_created" not in text  # no extra series per counter
        taken = f"127.0.0.1:{server.port}"
        with pytest.raises(MetricsError) as caught:
            serve(taken, new_registry())
        assert str(caught.value) == f"cannot serve metrics on {taken}: Address already in use"
    finally:
        server.close()


WITHOUT_SSL = """
import sys
sys.modules["ssl"] = None  # as deviceplugin/__main__.py keeps it out
from nvlib.metrics import prometheus
client = prometheus()
assert sys.modules["ssl"] is None
try:
    import ssl
except ImportError:
    pass
else:
    raise AssertionError("ssl importable again")
seen = client.exposition.ssl
try:
    seen.SSLContext()
except RuntimeError as err:
    print(err)
"""


def test_prometheus_client_imports_around_a_missing_ssl() -> None:
    done = run_python("-c", WITHOUT_SSL)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "TLS is not available in this process (metrics are plain HTTP)\n"


def test_http_modules_imported_first_are_a_clear_error() -> None:
    program = 'import sys\nsys.modules["ssl"] = None\nimport urllib.request\n' + (
        "from nvlib.metrics import prometheus\nprometheus()\n"
    )
    done = run_python("-c", program)
    assert done.returncode == 1
    assert "http.client, urllib.request imported without TLS before prometheus_client" in (
        done.stderr
    )
