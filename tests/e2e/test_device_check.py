"""tools/device_check.py, the script run on a lent GPU machine, proven on the simulator.

On a GPU machine it compares the three commands with nvidia-smi; here it runs with
`--nvml-mock`, its reference being raw pynvml calls, so that the script itself is known
to work before any GPU time is spent on it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "tools" / "device_check.py"


@pytest.mark.parametrize("profile", ["dgx-a100", "dgx-a100-mig", "mixed"])
def test_device_check_passes_on_the_simulator(profile: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--nvml-mock", profile, "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    names = [c["name"] for c in report["checks"]]
    assert {"gfd gpu.count", "cdi validate", "plugin ListAndWatch", "plugin Allocate"} <= set(names)
    assert all(c["ok"] for c in report["checks"])
    assert "FAIL" not in result.stdout


def test_device_check_fails_when_a_check_fails(tmp_path: Path) -> None:
    """A reference that disagrees (another machine's GPUs) makes the script exit 1."""
    code = (
        "import sys, runpy; sys.argv = ['device_check', '--nvml-mock', 't4', '--out', "
        f"{str(tmp_path)!r}]\n"
        "ns = runpy.run_path(" + repr(str(SCRIPT)) + ", run_name='device_check')\n"
        "real = ns['reference_from_pynvml']\n"
        "ns['main'].__globals__['reference_from_pynvml'] = lambda p: real('l40s')\n"
        "sys.exit(ns['main']())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=180, check=False
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAIL gfd gpu.product" in result.stdout
