"""Scraping a daemon's /metrics as Prometheus does, for the metrics tests.

`scrape` GETs `http://127.0.0.1:<port>/metrics` and parses the text with
prometheus_client's own parser, so what the tests read is what a Prometheus server
would: families with their help and type, samples with their labels. A counter's
family is named without `_total` (the parser's convention); its sample keeps it.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

Families = dict[str, Metric]
REPO = Path(__file__).resolve().parents[2]


def run_python(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    """`python ARGS...` (`-c code ...`, `-m module ...`) with this checkout on its path, in
    a bare environment (what a module imports is what the test reads), writing no
    bytecode into the tree."""
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1"},
    )


@contextlib.contextmanager
def taken_address() -> Iterator[str]:
    """`127.0.0.1:PORT` where something already listens, while the block runs."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        yield f"127.0.0.1:{busy.getsockname()[1]}"


def free_port() -> int:
    """A port nothing listens on now, for a daemon started in this process."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def scrape_text(port: int, timeout: float = 5.0) -> str:
    url = f"http://127.0.0.1:{port}/metrics"
    with urllib.request.urlopen(url, timeout=timeout) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        return response.read().decode()


def scrape(port: int) -> Families:
    return {family.name: family for family in text_string_to_metric_families(scrape_text(port))}


def wait_scrape(port: int, timeout: float = 10.0) -> Families:
    """The first scrape that answers: the daemon's server may still be starting."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return scrape(port)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def value(families: Families, sample: str, labels: Mapping[str, str] | None = None) -> float:
    """The value of the one sample of this name and labels; 0 when there is none yet (a
    labelled counter has no sample for a label set before its first increment)."""
    wanted = dict(labels or {})
    for family in families.values():
        for s in family.samples:
            if s.name == sample and s.labels == wanted:
                return float(s.value)
    return 0.0


def wait_value(
    port: int,
    sample: str,
    labels: Mapping[str, str] | None,
    condition: Callable[[float], bool],
    timeout: float = 10.0,
) -> Families:
    """Scrape until the sample's value satisfies `condition`; the scrape that did. The
    daemon's server may still be starting at the first scrapes."""
    deadline = time.monotonic() + timeout
    while True:
        families = wait_scrape(port, max(deadline - time.monotonic(), 0.0))
        if condition(value(families, sample, labels)):
            return families
        assert time.monotonic() < deadline, (
            f"{sample}{dict(labels or {})} stayed at {value(families, sample, labels)}"
        )
        time.sleep(0.05)


def check_documented(families: Families, expected: Mapping[str, tuple[str, str]]) -> None:
    """Each family of `expected` (name -> (type, a word its help must contain)) is there,
    with that type and a help text."""
    for name, (kind, word) in expected.items():
        assert name in families, f"{name} missing; have {sorted(families)}"
        family = families[name]
        assert family.type == kind, f"{name}: type {family.type}, want {kind}"
        assert word.lower() in family.documentation.lower(), f"{name}: {family.documentation!r}"
