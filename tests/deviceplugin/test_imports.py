"""The plugin never imports the Kubernetes client (docs/architecture.md#who-may-import-whom),
nor prometheus_client without `--metrics-address`.

A fresh interpreter imports the command's module and runs a whole start on the
simulator, then checks `sys.modules`: importing `kubernetes` would cost ~40 MiB per node.
The daemon's loop, run to its first start and stopped, imports prometheus_client only
with an address; then OpenSSL still stays out (the import goes around `ssl`, which the
command keeps unimportable for its memory budget) and /metrics answers.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

PROGRAM = """
import sys, tempfile
import deviceplugin.__main__
from deviceplugin.cli import parse
from deviceplugin.plugins import Host, Remembered, start_plugins
from nvlib import sim
with sim.activate("dgx-a100") as s, tempfile.TemporaryDirectory() as d:
    argv = ["--kubelet-socket", "", "--device-list-strategy", "cdi-cri", "--cdi-spec-dir", d]
    settings = parse(argv, {})
    host = Host(s.root, str(s.driver_root), str(s.driver_root), s.device_nodes)
    running = start_plugins(settings, {}, host, Remembered())
    assert running.servers, "no plugin started"
    running.stop()
heavy = sorted(
    m for m in sys.modules
    if m.split(".")[0] in ("kubernetes", "jinja2", "schedule", "prometheus_client")
)
print(heavy)
"""


def test_no_kubernetes_client() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": str(REPO), "PYTHONDONTWRITEBYTECODE": "1", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


DAEMON = """
import signal, sys, tempfile, threading
import deviceplugin.__main__
# As the command does before importing its daemon.
deviceplugin.__main__._without_openssl(metrics=bool(sys.argv[1:]))
from deviceplugin.cli import parse
from deviceplugin.daemon import Daemon
from nvlib.signals import Signals
import urllib.request  # after: it imports ssl where it can
with tempfile.TemporaryDirectory() as d:
    argv = ["--nvml-mock", "dgx-a100", "--kubelet-socket", "", *sys.argv[1:]]
    daemon, control = Daemon(argv, {}, parse(argv, {})), Signals()
    thread = threading.Thread(target=daemon.run, args=(control,))
    thread.start()
    assert daemon.started.wait(30), "no start"
    scraped = ""
    if daemon.metrics_server is not None:
        url = f"http://127.0.0.1:{daemon.metrics_server.port}/metrics"
        scraped = urllib.request.urlopen(url, timeout=10).read().decode()
    control.send(signal.SIGTERM)
    thread.join(30)
print("prometheus_client" in sys.modules, sys.modules.get("ssl", "absent"))
print("nvidia_device_plugin_devices{" in scraped)
"""


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        pytest.param([], ["False None", "False"], id="metrics-off"),
        pytest.param(["--metrics-address", "127.0.0.1:0"], ["True None", "True"], id="metrics-on"),
    ],
)
def test_prometheus_client_only_with_an_address(argv: list[str], expected: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-c", DAEMON, *argv],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": str(REPO), "PYTHONDONTWRITEBYTECODE": "1", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == expected
