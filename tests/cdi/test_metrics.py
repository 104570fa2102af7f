"""`generate --watch`'s /metrics, scraped over HTTP while the watch follows the node.

`regeneration_cause` is a table: what changed between the state written and the one
seen, in each mode. In process, as tests/cdi/test_watch.py runs it (the real simulator
beneath pynvml, swapped under the loop): every metric of docs/metrics.md is there with
its help and type; the first write counts as `start`; a driver upgrade, a MIG layout
change, another GPU set and a SIGHUP each count once under their cause, with the spec's
device count and the time of the write following; a failing discovery moves the
`discovery_error` checks. As a process: an address in use exits 1 naming it, and
without `--metrics-address` the watch never imports prometheus_client. The command
line: only with `--watch`, a malformed address refused, the environment variable.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from cdi_fixtures import DriverRoot, build_driver_root
from metrics_scrape import (
    check_documented,
    free_port,
    run_python,
    scrape,
    taken_address,
    value,
    wait_value,
)

from cdi import run
from cdi.cli import GenerateSettings, UsageError, parse
from nvlib import sim

REPO = Path(__file__).resolve().parents[2]
OLD, NEW = "550.54.15", "560.35.03"

DOCUMENTED = {
    "nvidia_cdi_checks": ("counter", "checks"),
    "nvidia_cdi_regenerations": ("counter", "cause"),
    "nvidia_cdi_last_spec_write_timestamp_seconds": ("gauge", "written"),
    "nvidia_cdi_spec_devices": ("gauge", "devices"),
    "nvidia_cdi_process_resident_memory_bytes": ("gauge", "memory"),
}

GPU0 = ("GPU-0", 0, 0, "0000:00:1e.0", False, ())
GPU0_MIG = ("GPU-0", 0, 0, "0000:00:1e.0", True, ((0, "MIG-0", 1, 0, "3g.20gb"),))
GPU1 = ("GPU-1", 1, 1, "0000:00:1f.0", False, ())


@pytest.mark.parametrize(
    ("mode", "written", "state", "simulated", "cause"),
    [
        pytest.param("nvml", None, (OLD, (GPU0,)), False, "start", id="first"),
        pytest.param("nvml", (OLD, (GPU0,)), (OLD, (GPU0,)), False, "signal", id="same-node"),
        pytest.param("nvml", (OLD, (GPU0,)), (NEW, (GPU0,)), False, "driver", id="driver"),
        pytest.param("nvml", (OLD, (GPU0,)), (NEW, (GPU0, GPU1)), False, "driver",
                     id="driver-wins-over-gpus"),
        pytest.param("nvml", (OLD, (GPU0,)), (OLD, (GPU0, GPU1)), False, "gpus", id="gpu-added"),
        pytest.param("nvml", (OLD, (GPU0, GPU1)), (OLD, (GPU1,)), False, "gpus", id="gpu-gone"),
        pytest.param("nvml", (OLD, (GPU0,)), (OLD, (GPU0_MIG,)), False, "mig", id="mig"),
        pytest.param("nvml", ((OLD, (GPU0,)), 0), ((OLD, (GPU0,)), 1), True, "simulator_root",
                     id="simulated-root-repaired"),
        pytest.param("nvml", ((OLD, (GPU0,)), 0), ((OLD, (GPU0_MIG,)), 0), True, "mig",
                     id="simulated-mig"),
        pytest.param("imex", ("imex", (0,)), ("imex", (0, 1)), False, "imex_channels",
                     id="imex-channel"),
        pytest.param("management", ("management", OLD, ("a",)), ("management", NEW, ("a",)),
                     False, "driver", id="management-driver"),
        pytest.param("management", ("management", OLD, ("a",)), ("management", OLD, ("a", "b")),
                     False, "device_nodes", id="management-nodes"),
    ],
)  # fmt: skip
def test_regeneration_cause(
    mode: str,
    written: tuple[object, ...] | None,
    state: tuple[object, ...],
    simulated: bool,
    cause: str,
) -> None:
    assert run.regeneration_cause(mode, written, state, simulated) == cause


def profile(tmp_path: Path, driver: str, mig: bool = False, gpus: int = 1) -> Path:
    """One or two A100s (MIG capable) with the given driver and MIG mode; one name seeds
    the UUIDs, so the first GPU is the same GPU in every one."""
    path = tmp_path / f"a100-{driver}-{gpus}-{'mig' if mig else 'full'}.yaml"
    mig_lines = "    mig: enabled\n    mig_devices: [3g.20gb, 3g.20gb]\n" if mig else ""
    buses = ", ".join(f'"0000:00:{0x1E + i:02x}.0"' for i in range(gpus))
    path.write_text(
        f'name: watched-a100\ndriver: "{driver}"\ngpus:\n  - model: A100-SXM4-40GB\n'
        f"    count: {gpus}\n    bus_ids: [{buses}]\n" + mig_lines
    )
    return path


@pytest.fixture
def root(tmp_path: Path) -> DriverRoot:
    """Libraries of both driver versions and nodes of two GPUs: every machine here fits."""
    r = build_driver_root(tmp_path / "driver", gpus=2, libraries=("libcuda.so", "libnvidia-ml.so"))
    for name in ("libcuda.so", "libnvidia-ml.so"):
        (r.path / "usr/lib/x86_64-linux-gnu" / f"{name}.{NEW}").write_bytes(b"new driver\n")
    return r


@contextmanager
def watching(
    tmp_path: Path, root: DriverRoot, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[int, run.WatchControl, threading.Lock]]:
    """The watch loop in a thread, every 50 ms; yields its metrics port, its control and
    the lock to hold while swapping the simulated machine (no check straddles two)."""
    port = free_port()
    settings = GenerateSettings(
        output=str(tmp_path / "cdi" / "nvidia.yaml"),
        driver_root=str(root.path),
        hook_path="/usr/bin/nvidia-cdi-hook",
        interval_ns=50_000_000,
        watch=True,
        metrics_address=f"127.0.0.1:{port}",
    )
    host = run.Host(str(tmp_path / "host"), str(root.path), str(root.path), root.nodes)
    monkeypatch.setattr(run, "resolve_host", lambda _settings: host)
    lock = threading.Lock()

    def discover(h: run.Host) -> object:
        with lock:
            return run.discover_machine(h)

    control = run.WatchControl()
    codes: list[int] = []
    thread = threading.Thread(
        target=lambda: codes.append(run.watch(settings, discover=discover, control=control))
    )
    thread.start()
    try:
        yield port, control, lock
    finally:
        control.stop()
        thread.join(10)
        current = sim.active()
        if current is not None:
            current.deactivate()
    assert codes == [0]


def test_every_metric_is_served_and_moves(
    tmp_path: Path, root: DriverRoot, monkeypatch: pytest.MonkeyPatch
) -> None:
    simulation = sim.activate(profile(tmp_path, OLD))
    with watching(tmp_path, root, monkeypatch) as (port, control, lock):
        regenerations = "nvidia_cdi_regenerations_total"
        first = wait_value(port, regenerations, {"cause": "start"}, lambda v: v == 1)
        check_documented(first, DOCUMENTED)
        assert value(first, "nvidia_cdi_spec_devices") == 3  # index, uuid, all
        written_at = value(first, "nvidia_cdi_last_spec_write_timestamp_seconds")
        assert written_at > 1.7e9
        assert value(first, regenerations, {"cause": "driver"}) == 0
        wait_value(port, "nvidia_cdi_checks_total", {"result": "unchanged"}, lambda v: v >= 3)

        with lock:
            simulation = sim.activate(profile(tmp_path, NEW))  # the driver was upgraded
        upgraded = wait_value(port, regenerations, {"cause": "driver"}, lambda v: v == 1)
        assert value(upgraded, "nvidia_cdi_last_spec_write_timestamp_seconds") >= written_at

        with lock:
            simulation = sim.activate(profile(tmp_path, NEW, mig=True))
        mig = wait_value(port, regenerations, {"cause": "mig"}, lambda v: v == 1)
        assert value(mig, "nvidia_cdi_spec_devices") == 5  # two MIG devices by index and uuid

        with lock:
            simulation = sim.activate(profile(tmp_path, NEW, gpus=2))
        gpus = wait_value(port, regenerations, {"cause": "gpus"}, lambda v: v == 1)
        assert value(gpus, "nvidia_cdi_spec_devices") == 5  # two GPUs by index and uuid

        control.regenerate()
        wait_value(port, regenerations, {"cause": "signal"}, lambda v: v == 1)

        failed = value(scrape(port), "nvidia_cdi_checks_total", {"result": "discovery_error"})
        simulation.fail_call("nvmlSystemGetDriverVersion", "UNKNOWN")
        wait_value(
            port, "nvidia_cdi_checks_total", {"result": "discovery_error"}, lambda v: v > failed
        )
        simulation.clear_faults()
        totals = scrape(port)
        assert value(totals, regenerations, {"cause": "start"}) == 1  # each counted once
        assert value(totals, "nvidia_cdi_checks_total", {"result": "regenerated"}) == 5


def test_address_in_use_exits_1_naming_it(tmp_path: Path) -> None:
    out = tmp_path / "nvidia.yaml"
    with taken_address() as address:
        done = run_python(
            "-m", "cdi", "generate", "--watch", "--nvml-mock", "t4",
            "--output", str(out), "--metrics-address", address,
            cwd=tmp_path,
        )  # fmt: skip
    assert done.returncode == 1
    assert f"failed to start: cannot serve metrics on {address}: Address already in use" in (
        done.stderr
    )
    assert not out.exists()


@pytest.mark.parametrize(
    ("argv", "env", "expected"),
    [
        pytest.param([], {}, None, id="default-none"),
        pytest.param([], {"NVIDIA_CTK_CDI_GENERATE_METRICS_ADDRESS": ":9412"}, ":9412", id="env"),
        pytest.param(["--metrics-address=[::1]:1"], {"NVIDIA_CTK_CDI_GENERATE_METRICS_ADDRESS":
                     ":9412"}, "[::1]:1", id="flag-beats-env"),
    ],
)  # fmt: skip
def test_metrics_address_option(argv: list[str], env: dict[str, str], expected: str | None) -> None:
    settings = parse(["generate", "--watch", *argv], env)
    assert isinstance(settings, GenerateSettings)
    assert settings.metrics_address == expected


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(["--metrics-address", ":9412"], "--metrics-address :9412: only with --watch",
                     id="without-watch"),
        pytest.param(["--watch", "--metrics-address", "9412"],
                     "--metrics-address 9412: want HOST:PORT, e.g. 0.0.0.0:9410 or :9410",
                     id="no-port"),
    ],
)  # fmt: skip
def test_bad_uses_are_refused(argv: list[str], message: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse(["generate", *argv], {})
    assert str(caught.value) == message


WATCH = """
import os, sys, tempfile, threading, time
from pathlib import Path
from cdi import run
from cdi.cli import parse
def until(condition):
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)
with tempfile.TemporaryDirectory() as d:
    out, beat = Path(d) / "nvidia.yaml", Path(d) / "heartbeat"
    settings = parse(["generate", "--watch", "--interval", "50ms", "--nvml-mock", "t4",
                      "--output", str(out), "--nvidia-cdi-hook-path", "/bin/hook",
                      "--heartbeat-file", str(beat), *sys.argv[1:]], {})
    control = run.WatchControl()
    thread = threading.Thread(target=run.watch, args=(settings,), kwargs={"control": control})
    thread.start()
    until(out.exists)
    for _ in range(3):  # three more checks ran to their end: each touched the heartbeat
        os.utime(beat, (0, 0))
        until(lambda: beat.stat().st_mtime > 0)
    control.stop()
    thread.join(30)
    assert out.exists()
print("prometheus_client" in sys.modules)
"""


@pytest.mark.parametrize(
    ("argv", "imported"),
    [
        pytest.param([], "False", id="metrics-off"),
        pytest.param(["--metrics-address", "127.0.0.1:0"], "True", id="metrics-on"),
    ],
)
def test_prometheus_client_only_with_an_address(argv: list[str], imported: str) -> None:
    done = run_python("-c", WATCH, *argv)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == imported
