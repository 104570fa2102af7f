"""The plugin never imports the Kubernetes client (docs/architecture.md#who-may-import-whom).

A fresh interpreter imports the command's module and runs a whole start on the
simulator, then checks `sys.modules`: importing `kubernetes` would cost ~40 MiB per node.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("kubernetes", "jinja2", "schedule"))
print(heavy)
"""


def test_no_kubernetes_client() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
