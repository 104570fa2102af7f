"""GFD's /metrics, scraped over HTTP while the daemon labels through the fake API server.

In process: the daemon's loop (`gfd.daemon.run`, every 200 ms) on the simulated T4
publishes a NodeFeature object on the fake API server (tests/gfd/kubefake.py). Every
metric of docs/metrics.md is there with its help and type; the create is counted;
another writer's edit with a 409 injected on the next PUT moves the API error count
(code 409) and the update writes (one refused, one done); a 503 outage moves passes
to `deferred` and the 503 count. As a process: an address in use exits 1 naming it;
`--oneshot` and a malformed address are refused; without `--metrics-address` the
periodic daemon never imports prometheus_client.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import kmock
import pytest
from metrics_scrape import check_documented, free_port, run_python, taken_address, value, wait_value

from gfd.cli import parse
from gfd.daemon import run
from nvlib import sim
from nvlib.config import ConfigError
from nvlib.signals import Signals
from tests.gfd.kubefake import FakeApiServer

REPO = Path(__file__).resolve().parents[2]
NS, NODE = "gpu-operator", "node-1"
NAME = f"nvidia-features-for-{NODE}"
NF_PATH = f"/apis/nfd.k8s-sigs.io/v1alpha1/namespaces/{NS}/nodefeatures/{NAME}"

# family (a counter's without _total) -> (type, a word of its help)
DOCUMENTED = {
    "gfd_passes": ("counter", "pass"),
    "gfd_pass_duration_seconds": ("histogram", "pass"),
    "gfd_last_success_timestamp_seconds": ("gauge", "pass"),
    "gfd_labels": ("gauge", "labels"),
    "gfd_output_writes": ("counter", "writes"),
    "gfd_api_errors": ("counter", "status code"),
    "gfd_process_resident_memory_bytes": ("gauge", "memory"),
}


def fault(code: int) -> kmock.KubernetesError:
    return kmock.KubernetesError(status=code, reason="Injected", message="x", details={"x": 1})


@contextmanager
def daemon(server: FakeApiServer, tmp_path: Path) -> Iterator[int]:
    """GFD's loop in a thread, publishing to `server`; yields its metrics port."""
    port = free_port()
    argv = [
        "--nvml-mock", "t4", "--use-node-feature-api=true", "--node-name", NODE,
        "--namespace", NS, "--kubeconfig", server.write_kubeconfig(tmp_path / "kc", NS),
        "--kube-api-qps=-1", "--sleep-interval", "200ms",
        "--output-file", str(tmp_path / "features.d" / "gfd"),
        "--metrics-address", f"127.0.0.1:{port}",
    ]  # fmt: skip
    signals = Signals()
    codes: list[int] = []
    with sim.activate("t4"):
        thread = threading.Thread(
            target=lambda: codes.append(run(argv, {}, parse(argv, {}), signals)), daemon=True
        )
        thread.start()
        try:
            yield port
        finally:
            signals.send(signal.SIGTERM)
            thread.join(30)
    assert codes == [0]


def test_every_metric_is_served_and_moves(tmp_path: Path) -> None:
    with FakeApiServer() as server, daemon(server, tmp_path) as port:
        created = {"kind": "nodefeature_create", "result": "success"}
        first = wait_value(port, "gfd_output_writes_total", created, lambda v: v == 1)
        check_documented(first, DOCUMENTED)
        stored = server.fake.nodefeature(NS, NAME)
        assert stored is not None
        labels = stored["spec"]["labels"]
        assert value(first, "gfd_labels") == len(labels) > 10
        assert value(first, "gfd_passes_total", {"result": "success"}) >= 1
        assert value(first, "gfd_pass_duration_seconds_count") >= 1
        assert value(first, "gfd_last_success_timestamp_seconds") > 1.7e9
        assert value(first, "gfd_api_errors_total", {"code": "409"}) == 0

        # Another writer changes the object, and gets in once more before our PUT.
        server.fake.queued["PUT", NF_PATH] = [fault(409)]
        server.edit_nodefeature(NS, NAME, {"nvidia.com/gpu.product": "stale"})
        updated = {"kind": "nodefeature_update", "result": "success"}
        after = wait_value(port, "gfd_output_writes_total", updated, lambda v: v == 1)
        assert value(after, "gfd_api_errors_total", {"code": "409"}) == 1
        assert value(after, "gfd_output_writes_total", {**updated, "result": "error"}) == 1
        assert server.fake.nodefeature(NS, NAME)["spec"]["labels"] == labels  # type: ignore[index]

        deferred = value(after, "gfd_passes_total", {"result": "deferred"})
        server.fake.outage = fault(503)
        try:
            outage = wait_value(
                port, "gfd_passes_total", {"result": "deferred"}, lambda v: v > deferred
            )
        finally:
            server.fake.outage = None
        assert value(outage, "gfd_api_errors_total", {"code": "503"}) >= 1


def test_address_in_use_exits_1_naming_it(tmp_path: Path) -> None:
    with taken_address() as address:
        done = run_python(
            "-m", "gfd", "--nvml-mock", "t4", "--output-file",
            str(tmp_path / "gfd"), "--metrics-address", address,
            cwd=tmp_path,
        )  # fmt: skip
    assert done.returncode == 1
    assert f"cannot serve metrics on {address}: Address already in use" in done.stderr
    assert not (tmp_path / "gfd").exists()  # no pass before the check


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        pytest.param(
            ["--metrics-address", "9411"], {},
            "--metrics-address: want HOST:PORT, e.g. 0.0.0.0:9410 or :9410 (got '9411')",
            id="no-port",
        ),
        pytest.param(
            [], {"GFD_METRICS_ADDRESS": "host:port"},
            "--metrics-address: port 'port' is not a number from 0 to 65535 (got 'host:port')",
            id="env-bad-port",
        ),
        pytest.param(
            ["--oneshot", "--metrics-address", ":9411"], {},
            "--metrics-address: a one-shot run exits before any scrape (got ':9411')",
            id="oneshot",
        ),
    ],
)  # fmt: skip
def test_bad_uses_are_refused_naming_the_value(
    argv: list[str], env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse(argv, env)
    assert str(caught.value) == message


PERIODIC = """
import os, signal, sys, tempfile, threading, time
from pathlib import Path
from gfd.cli import parse
from gfd.daemon import run
from nvlib.signals import Signals
def until(condition):
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)
with tempfile.TemporaryDirectory() as d:
    out, beat = Path(d) / "gfd", Path(d) / "heartbeat"
    argv = ["--nvml-mock", "t4", "--output-file", str(out), "--sleep-interval", "100ms",
            "--heartbeat-file", str(beat), *sys.argv[1:]]
    signals = Signals()
    thread = threading.Thread(target=run, args=(argv, {}, parse(argv, {}), signals))
    thread.start()
    until(out.exists)
    for _ in range(3):  # three more passes ran to their end: each touched the heartbeat
        os.utime(beat, (0, 0))
        until(lambda: beat.stat().st_mtime > 0)
    assert out.exists()  # (removed at the exit, as upstream removes it)
    signals.send(signal.SIGTERM)
    thread.join(30)
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
    done = run_python("-c", PERIODIC, *argv)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == imported
