"""The device plugin's /metrics, scraped over HTTP while it serves the kubelet double.

In process, on the simulated DGX A100 with the cdi-cri strategy (so the CDI spec is
checked and written): every metric of docs/metrics.md is there with its help and
type, and each count moves when the test acts: an Allocate (and a refused one), a
GetPreferredAllocation, an XID injected into the simulator (the device gauge follows
it), a kubelet restart (a second registration). As a process: an address already in
use, or one that is no HOST:PORT, exits 1 with an error naming it, and without
`--metrics-address` prometheus_client is never imported (tests/deviceplugin/test_imports.py).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from kubelet_double import KubeletDouble
from metrics_scrape import check_documented, run_python, scrape, taken_address, value, wait_value

from deviceplugin.cli import parse
from deviceplugin.daemon import Daemon
from nvlib import sim
from nvlib.signals import Signals

REPO = Path(__file__).resolve().parents[2]
GPU = "nvidia.com/gpu"
P = "nvidia_device_plugin"

# family (a counter's without _total) -> (type, a word of its help)
DOCUMENTED = {
    f"{P}_allocate_requests": ("counter", "Allocate"),
    f"{P}_allocate_duration_seconds": ("histogram", "Allocate"),
    f"{P}_get_preferred_allocation_requests": ("counter", "GetPreferredAllocation"),
    f"{P}_devices": ("gauge", "health"),
    f"{P}_xid_events": ("counter", "XID"),
    f"{P}_registrations": ("counter", "kubelet"),
    f"{P}_kubelet_restarts": ("counter", "kubelet"),
    f"{P}_cdi_spec_checks": ("counter", "CDI"),
    f"{P}_cdi_spec_writes": ("counter", "CDI"),
    f"{P}_process_resident_memory_bytes": ("gauge", "memory"),
}


@dataclass
class Running:
    kubelet: KubeletDouble
    daemon: Daemon
    simulation: sim.Simulation
    port: int


@contextmanager
def plugin(tmp_path: Path) -> Iterator[Running]:
    directory = tmp_path / "device-plugins"
    kubelet = KubeletDouble(directory).start()
    simulation = sim.activate("dgx-a100")
    argv = [
        "--nvml-mock", "dgx-a100",
        "--kubelet-socket", str(directory / "kubelet.sock"),
        "--device-list-strategy", "cdi-cri",
        "--cdi-spec-dir", str(tmp_path / "cdi"),
        "--metrics-address", "127.0.0.1:0",
    ]  # fmt: skip
    daemon = Daemon(argv, {}, parse(argv, {}))
    control = Signals()
    codes: list[int] = []
    thread = threading.Thread(target=lambda: codes.append(daemon.run(control)), daemon=True)
    thread.start()
    try:
        assert daemon.started.wait(10), "the plugin did not start"
        assert daemon.metrics_server is not None
        yield Running(kubelet, daemon, simulation, daemon.metrics_server.port)
    finally:
        control.send(signal.SIGTERM)
        thread.join(10)
        kubelet.stop()
        simulation.deactivate()
    assert codes == [0]


def test_every_metric_is_served_and_moves(tmp_path: Path) -> None:
    with plugin(tmp_path) as run:
        endpoint = run.kubelet.endpoint(GPU)
        first = scrape(run.port)
        check_documented(first, DOCUMENTED)
        gpu = {"resource": GPU}
        ok, failed = {**gpu, "result": "success"}, {**gpu, "result": "error"}
        assert value(first, f"{P}_registrations_total", ok) == 1
        assert value(first, f"{P}_devices", {**gpu, "health": "healthy"}) == 8
        assert value(first, f"{P}_devices", {**gpu, "health": "unhealthy"}) == 0
        assert value(first, f"{P}_cdi_spec_checks_total") >= 1
        assert value(first, f"{P}_cdi_spec_writes_total", {"outcome": "written"}) == 1
        # Series that start at 0, so that rate() sees the first call.
        allocations = first[f"{P}_allocate_requests"].samples
        assert sorted((s.labels["result"], s.value) for s in allocations) == [
            ("error", 0.0),
            ("success", 0.0),
        ]

        devices = list(endpoint.devices)
        endpoint.allocate([devices[0]])
        with pytest.raises(grpc.RpcError):
            endpoint.allocate(["GPU-no-such-device"])
        assert endpoint.preferred(devices, size=2)
        after = scrape(run.port)
        assert value(after, f"{P}_allocate_requests_total", ok) == 1
        assert value(after, f"{P}_allocate_requests_total", failed) == 1
        assert value(after, f"{P}_allocate_duration_seconds_count", gpu) == 2
        # measured 0.03-0.04 ms for the two (3 runs)
        assert 0 < value(after, f"{P}_allocate_duration_seconds_sum", gpu) < 1
        assert value(after, f"{P}_get_preferred_allocation_requests_total", ok) == 1

        run.simulation.inject_xid(2, 48)
        wait_value(run.port, f"{P}_devices", {**gpu, "health": "unhealthy"}, lambda v: v == 1)
        xid = scrape(run.port)
        assert value(xid, f"{P}_xid_events_total", {"gpu": "2", "xid": "48"}) == 1
        assert value(xid, f"{P}_devices", {**gpu, "health": "healthy"}) == 7
        run.simulation.inject_xid(3, 13)  # an application error: counted, device healthy
        wait_value(run.port, f"{P}_xid_events_total", {"gpu": "3", "xid": "13"}, bool)
        assert value(scrape(run.port), f"{P}_devices", {**gpu, "health": "unhealthy"}) == 1

        created = run.kubelet.restart()
        run.kubelet.wait_registration(GPU, after=created, timeout=5)
        wait_value(run.port, f"{P}_registrations_total", ok, lambda v: v == 2)
        assert value(scrape(run.port), f"{P}_kubelet_restarts_total") == 1


def test_address_in_use_exits_1_naming_it(tmp_path: Path) -> None:
    with taken_address() as address:
        done = run_python(
            "-m", "deviceplugin", "--nvml-mock", "t4", "--kubelet-socket",
            str(tmp_path / "kubelet.sock"), "--metrics-address", address,
            cwd=tmp_path,
        )  # fmt: skip
    assert done.returncode == 1
    assert f"cannot serve metrics on {address}: Address already in use" in done.stderr
    assert "Starting GRPC server" not in done.stderr  # nothing served before the check


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("9410", "want HOST:PORT"),
        ("0.0.0.0:http", "port 'http' is not a number"),
        ("::1:9410", "an IPv6 host goes in brackets"),
        ("0.0.0.0:65536", "port '65536' is not a number from 0 to 65535"),
    ],
)
def test_bad_address_is_refused_naming_it(address: str, reason: str) -> None:
    from nvlib.config import ConfigError

    with pytest.raises(ConfigError) as caught:
        parse(["--metrics-address", address], {})
    assert str(caught.value).startswith(f"--metrics-address: {reason}")
    assert caught.value.value == address
