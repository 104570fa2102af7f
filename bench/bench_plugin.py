"""Device plugin benchmark: `python bench/bench_plugin.py` (from the repository root).

Each line prints `name  figure  floor  ratio  goal`, the floor measured in the same run:

- allocate-seq / allocate-8x: Allocate p50 and p99 (1 container x 1 device, the
  kubelet's shape), sequential and with 8 concurrent callers on one channel (as the
  kubelet shares one), against a bare gRPC echo server: a separate process with the
  same thread pool, on the same kind of unix socket, that returns the request bytes
  untouched. Both are called with identical, pre-serialised requests, so the ratio is
  the plugin's own work. Goal: p99 <= 2x the echo's.
- xid-to-update: from an XID injected into the simulator to the ListAndWatch list the
  kubelet double receives with the device unhealthy, over every GPU of a DGX A100;
  floor: the same XID reaching a bare `nvmlEventSetWait_v2` loop. Goal: < 1 s.
- kubelet-restart-to-register: from the kubelet double's socket created anew to the
  plugin's Register on it; floor: the daemon's 100 ms look at the socket. Goal: < 1 s.
- daemon-rss: the plugin process (`--nvml-mock dgx-a100`, registered with the kubelet
  double, ListAndWatch open) after all the calls above; floor: the echo process. Goal:
  <= 45 MiB (the plugin never imports the Kubernetes client). The `real NVML` lines are
  the same processes on the real NVML path: no simulator, the production pynvml
  loading the test suite's stub libnvidia-ml of the dgx-a100 (built with gcc; it has no
  event calls, so health checks are off there), after a few Allocates.
- +metrics: the same for a second plugin process serving Prometheus metrics
  (`--metrics-address`), which counts every Allocate and times it into its histogram:
  Allocate p99 against the same echo (goal <= 2x), its RSS after the calls and the
  scrapes (goal <= 45 MiB), and a scrape of its /metrics (a fresh connection each, as
  the server closes them) against the same HTTP server serving an empty registry, in
  a process of its own (goal: p99 < 5 ms).

Plugin and echo rounds alternate, and each p99 is the median of ROUNDS rounds, so a
noisy moment of the machine hits both. Nothing here is a pass/fail test.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent import futures
from pathlib import Path

from timing import child_env

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests" / "support")]  # the package and the kubelet double

ECHO_METHOD = "/v1beta1.DevicePlugin/Allocate"
WARMUP = 300
SEQUENTIAL = int(os.environ.get("BENCH_CALLS", "3000"))
CONCURRENT_CALLERS = 8
PER_CALLER = SEQUENTIAL // CONCURRENT_CALLERS
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
SCRAPES = int(os.environ.get("BENCH_SCRAPES", "300"))
MIB = 1024 * 1024


def _line(name: str, figure: float, floor: float, unit: str, goal: str, ok: bool) -> None:
    ratio = figure / floor if floor else float("inf")
    print(
        f"{name:<30} {figure:9.3f} {unit:<3} floor {floor:9.3f} {unit:<3} "
        f"ratio {ratio:5.2f}x  goal {goal}  {'ok' if ok else 'OVER'}",
        flush=True,
    )


def serve_echo(socket_path: str, workers: int) -> None:
    """The floor: a sync gRPC server that hands the request bytes straight back."""
    import grpc

    def echo(request: bytes, context: object) -> bytes:
        return request

    handler = grpc.method_handlers_generic_handler(
        "v1beta1.DevicePlugin",
        {"Allocate": grpc.unary_unary_rpc_method_handler(echo)},  # bytes in, bytes out
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers))
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(f"unix:{socket_path}")
    server.start()
    server.wait_for_termination()


def serve_empty_metrics(port: int) -> None:
    """The scrape floor: prometheus_client's HTTP server with nothing to expose."""
    from nvlib.metrics import new_registry, serve

    serve(f"127.0.0.1:{port}", new_registry())
    threading.Event().wait()


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _scrape(port: int) -> float:
    """One GET of /metrics on a new connection; its seconds."""
    import urllib.request

    start = time.perf_counter()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        response.read()
    return time.perf_counter() - start


def _wait_http(port: int) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            _scrape(port)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _rss(pid: int) -> tuple[int, int]:
    status = Path(f"/proc/{pid}/status").read_text()
    rss = int(re.search(r"VmRSS:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
    hwm = int(re.search(r"VmHWM:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
    return rss * 1024, hwm * 1024


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return ordered[len(ordered) // 2], ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def _caller(socket_path: Path) -> tuple[Callable[[bytes], bytes], object]:
    import grpc

    channel = grpc.insecure_channel(f"unix://{socket_path}")
    call = channel.unary_unary(ECHO_METHOD)  # no serialisers: identical work on both ends
    call(b"", timeout=10, wait_for_ready=True)  # connect first
    return (lambda payload: call(payload, timeout=10)), channel


def _sequential(call: Callable[[bytes], bytes], payload: bytes) -> list[float]:
    for _ in range(WARMUP):
        call(payload)
    samples = []
    for _ in range(SEQUENTIAL):
        start = time.perf_counter()
        call(payload)
        samples.append(time.perf_counter() - start)
    return samples


def _concurrent(call: Callable[[bytes], bytes], payload: bytes) -> list[float]:
    samples: list[float] = []
    lock = threading.Lock()
    ready = threading.Barrier(CONCURRENT_CALLERS)

    def run() -> None:
        mine = []
        ready.wait()
        for _ in range(PER_CALLER):
            start = time.perf_counter()
            call(payload)
            mine.append(time.perf_counter() - start)
        with lock:
            samples.extend(mine)

    threads = [threading.Thread(target=run) for _ in range(CONCURRENT_CALLERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return samples


def _plugin(
    tmp: Path, name: str, env: dict[str, str], *extra: str, real: bool = False
) -> tuple[object, object]:
    """A plugin process registered with a kubelet double of its own; (process, kubelet).

    `real`: no simulator; `env` must put an NVML library on the loader's path."""
    from kubelet_double import KubeletDouble

    directory = tmp / name
    kubelet = KubeletDouble(directory).start()
    machine = [] if real else ["--nvml-mock", "dgx-a100"]
    plugin = subprocess.Popen(
        [sys.executable, "-m", "deviceplugin", *machine,
         "--kubelet-socket", str(directory / "kubelet.sock"), *extra],
        env=env, cwd=tmp, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    return plugin, kubelet


def bench_real_rss(tmp: Path) -> dict[str, tuple[int, int]]:
    """(RSS, peak RSS) of the plugin, and with metrics, on the real NVML path (the stub)."""
    from nvml_stub import build, stub_env

    from deviceplugin.v1beta1 import api_pb2

    env = child_env(stub_env(build(tmp)))
    plugin, kubelet = _plugin(tmp, "real", env, real=True)
    metered, metered_kubelet = _plugin(
        tmp, "real-metrics", env, "--metrics-address", f"127.0.0.1:{_free_port()}", real=True
    )
    processes = {"plugin": plugin, "plugin+metrics": metered}
    try:
        for name, double in (("real", kubelet), ("real-metrics", metered_kubelet)):
            device = next(iter(double.endpoint("nvidia.com/gpu", timeout=30).devices))  # type: ignore[attr-defined]
            payload = api_pb2.AllocateRequest(
                container_requests=[api_pb2.ContainerAllocateRequest(devices_ids=[device])]
            ).SerializeToString()
            call, channel = _caller(tmp / name / "nvidia-gpu.sock")
            _sequential(call, payload)
            channel.close()  # type: ignore[attr-defined]
        return {who: _rss(process.pid) for who, process in processes.items()}  # type: ignore[attr-defined]
    finally:
        for process in processes.values():
            process.terminate()  # type: ignore[attr-defined]
            process.wait(10)  # type: ignore[attr-defined]
        kubelet.stop()  # type: ignore[attr-defined]
        metered_kubelet.stop()  # type: ignore[attr-defined]


def bench_allocate(tmp: Path) -> dict[str, tuple[int, int]]:
    """Allocate vs echo, with and without metrics, and scrapes vs an empty server;
    returns the (RSS, peak RSS) of each process by name."""
    from deviceplugin.server import MAX_WORKERS
    from deviceplugin.v1beta1 import api_pb2

    env = child_env()  # the installed project, as the other benchmarks run it
    echo_sock = tmp / "echo.sock"
    echo = subprocess.Popen(
        [sys.executable, __file__, "--serve-echo", str(echo_sock), str(MAX_WORKERS)],
        env=env,
        cwd=tmp,
    )
    metrics_port, floor_port = _free_port(), _free_port()
    floor = subprocess.Popen(
        [sys.executable, __file__, "--serve-empty-metrics", str(floor_port)], env=env, cwd=tmp
    )
    plugin, kubelet = _plugin(tmp, "device-plugins", env)
    metered, metered_kubelet = _plugin(
        tmp, "device-plugins-metrics", env, "--metrics-address", f"127.0.0.1:{metrics_port}"
    )
    processes = {"plugin": plugin, "plugin+metrics": metered, "echo": echo, "floor": floor}
    try:
        endpoint = kubelet.endpoint("nvidia.com/gpu", timeout=30)  # type: ignore[attr-defined]
        metered_kubelet.endpoint("nvidia.com/gpu", timeout=30)  # type: ignore[attr-defined]
        device = next(iter(endpoint.devices))
        payload = api_pb2.AllocateRequest(
            container_requests=[api_pb2.ContainerAllocateRequest(devices_ids=[device])]
        ).SerializeToString()
        plugin_call, plugin_channel = _caller(tmp / "device-plugins" / "nvidia-gpu.sock")
        metered_call, metered_channel = _caller(tmp / "device-plugins-metrics" / "nvidia-gpu.sock")
        deadline = time.monotonic() + 30
        while not echo_sock.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        echo_call, echo_channel = _caller(echo_sock)
        callers = (("echo", echo_call), ("plugin", plugin_call), ("plugin+metrics", metered_call))
        results: dict[tuple[str, str], list[tuple[float, float]]] = {}
        for _ in range(ROUNDS):
            for mode, run in (("seq", _sequential), ("8x", _concurrent)):
                for who, call in callers:
                    results.setdefault((mode, who), []).append(_percentiles(run(call, payload)))
        for mode in ("seq", "8x"):
            (e50, e99), (p50, p99), (m50, m99) = (
                tuple(statistics.median(r[i] for r in results[mode, who]) for i in (0, 1))
                for who, _ in callers
            )
            name = "allocate-seq" if mode == "seq" else f"allocate-{CONCURRENT_CALLERS}x"
            _line(f"{name} p50", p50 * 1e3, e50 * 1e3, "ms", "(info)", True)
            _line(f"{name} p99", p99 * 1e3, e99 * 1e3, "ms", "<= 2x", p99 <= 2 * e99)
            _line(f"{name}+metrics p50", m50 * 1e3, e50 * 1e3, "ms", "(info)", True)
            _line(f"{name}+metrics p99", m99 * 1e3, e99 * 1e3, "ms", "<= 2x", m99 <= 2 * e99)
        for channel in (plugin_channel, metered_channel, echo_channel):
            channel.close()  # type: ignore[attr-defined]
        bench_scrape(metrics_port, floor_port)
        rss = {who: _rss(process.pid) for who, process in processes.items()}  # type: ignore[attr-defined]
    finally:
        for process in processes.values():
            process.terminate()  # type: ignore[attr-defined]
        for process in processes.values():
            process.wait(10)  # type: ignore[attr-defined]
        kubelet.stop()  # type: ignore[attr-defined]
        metered_kubelet.stop()  # type: ignore[attr-defined]
    return rss


def bench_scrape(port: int, floor_port: int) -> None:
    """GETs of the metered plugin's /metrics against the empty server's, alternating."""
    _wait_http(port)
    _wait_http(floor_port)
    samples: dict[int, list[float]] = {port: [], floor_port: []}
    for _ in range(20):  # warm-up: the servers' threads and the client's imports
        _scrape(port)
        _scrape(floor_port)
    for _ in range(SCRAPES):
        for which in (port, floor_port):
            samples[which].append(_scrape(which))
    (p50, p99), (f50, f99) = _percentiles(samples[port]), _percentiles(samples[floor_port])
    _line("scrape p50", p50 * 1e3, f50 * 1e3, "ms", "(info)", True)
    _line("scrape p99", p99 * 1e3, f99 * 1e3, "ms", "< 5 ms", p99 < 0.005)


def _wait_once(events: object, got: list[float]) -> None:
    import pynvml

    pynvml.nvmlEventSetWait_v2(events, 5000)
    got.append(time.perf_counter())


def bench_xid(tmp: Path) -> None:
    """XID -> ListAndWatch update, in process so the simulator takes the fault."""
    import signal

    import pynvml
    from kubelet_double import KubeletDouble

    from deviceplugin.cli import parse
    from deviceplugin.daemon import Daemon
    from deviceplugin.watch import POLL_SECONDS
    from nvlib import sim
    from nvlib.signals import Signals as Control

    floor = []
    with sim.activate("dgx-a100") as simulation:
        pynvml.nvmlInit()
        events = pynvml.nvmlEventSetCreate()
        for i in range(8):
            handle = pynvml.nvmlDeviceGetHandleByIndex(i)
            pynvml.nvmlDeviceRegisterEvents(handle, pynvml.nvmlEventTypeXidCriticalError, events)
        for i in range(8):
            got: list[float] = []
            waiter = threading.Thread(target=_wait_once, args=(events, got))
            waiter.start()
            time.sleep(0.02)
            start = time.perf_counter()
            simulation.inject_xid(i, 48)
            waiter.join()
            floor.append(got[0] - start)
        pynvml.nvmlEventSetFree(events)
        pynvml.nvmlShutdown()

    directory = tmp / "xid"
    samples = []
    with KubeletDouble(directory) as kubelet, sim.activate("dgx-a100") as simulation:
        argv = ["--nvml-mock", "dgx-a100", "--kubelet-socket", str(directory / "kubelet.sock")]
        daemon = Daemon(argv, {}, parse(argv, {}))
        control = Control()
        thread = threading.Thread(target=daemon.run, args=(control,), daemon=True)
        thread.start()
        endpoint = kubelet.endpoint("nvidia.com/gpu", timeout=30)
        gpus = list(endpoint.devices)
        for i, gpu in enumerate(gpus):
            start = time.monotonic()
            simulation.inject_xid(i, 48)
            at, _ = endpoint.wait_list(lambda d, gpu=gpu: d[gpu][0] == "Unhealthy", timeout=5)
            samples.append(at - start)
        restarts = []
        for _ in range(5):
            created = kubelet.restart()
            registration = kubelet.wait_registration("nvidia.com/gpu", after=created, timeout=5)
            restarts.append(registration.at - created)
        control.send(signal.SIGTERM)
        thread.join(10)
    worst, floor_worst = max(samples), max(floor)
    _line(
        "xid-to-update p50",
        statistics.median(samples) * 1e3,
        statistics.median(floor) * 1e3,
        "ms",
        "(info)",
        True,
    )
    _line("xid-to-update max", worst * 1e3, floor_worst * 1e3, "ms", "< 1000 ms", worst < 1.0)
    slowest = max(restarts)
    _line(
        "restart-to-register max", slowest * 1e3, POLL_SECONDS * 1e3, "ms",
        "< 1000 ms", slowest < 1.0,
    )  # fmt: skip


def main() -> int:
    if len(sys.argv) == 4 and sys.argv[1] == "--serve-echo":
        serve_echo(sys.argv[2], int(sys.argv[3]))
        return 0
    if len(sys.argv) == 3 and sys.argv[1] == "--serve-empty-metrics":
        serve_empty_metrics(int(sys.argv[2]))
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-plugin-") as name:
        tmp = Path(name)
        rss = bench_allocate(tmp)
        bench_xid(tmp)
        real = bench_real_rss(tmp)
    echo_rss = rss["echo"][0]
    for figures, path in ((rss, "dgx-a100"), (real, "real NVML")):
        for who, label in (("plugin", "daemon-rss"), ("plugin+metrics", "daemon-rss+metrics")):
            figure = figures[who][0]
            _line(
                f"{label} {path}", figure / MIB, echo_rss / MIB, "MiB", "<= 45 MiB",
                figure <= 45 * MIB,
            )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
