"""The device plugin against the kubelet double, over real v1beta1 gRPC on unix sockets.

In process (so the simulator's faults can be injected while it runs): registration and
options; ListAndWatch lists with NUMA topology; GetPreferredAllocation on the simulated
DGX topology; Allocate under every device-list strategy, both device-ID strategies and
--pass-device-specs, with the CDI names defined by the spec file the plugin writes;
MIG strategies none / single / mixed; time-slicing with and without renameByDefault and
failRequestsGreaterThanOne; health transitions (XID, MIG XID, replicas, a GPU falling
off the bus, recovery); a kubelet restart, re-registration timed under one second; a
node without GPUs; the liveness heartbeat (touched by a start that registered and by
node checks while registered, not while the sockets are gone or registration fails,
a bad path refused at start). As a process (`python -m deviceplugin`): SIGTERM exits 0 and removes
the sockets; SIGHUP re-registers with the re-read config file; --fail-on-init-error.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
import yaml
from kubelet_double import Endpoint, KubeletDouble

from deviceplugin.cli import parse
from deviceplugin.daemon import Daemon
from nvlib import sim
from nvlib.heartbeat import check
from nvlib.signals import Signals as Control

REPO = Path(__file__).resolve().parents[2]
GPU = "nvidia.com/gpu"


@dataclass
class Running:
    kubelet: KubeletDouble
    daemon: Daemon
    simulation: object
    directory: Path

    def endpoint(self, resource: str = GPU) -> Endpoint:
        return self.kubelet.endpoint(resource)


@contextmanager
def plugin(
    tmp_path: Path,
    profile: str = "dgx-a100",
    *args: str,
    environ: dict[str, str] | None = None,
    expect_registration: bool = True,
    reject: bool = False,
    retry_seconds: float | None = None,
) -> Iterator[Running]:
    directory = tmp_path / "device-plugins"
    kubelet = KubeletDouble(directory).start()
    kubelet.reject = reject
    simulation = sim.activate(profile if "/" not in profile else Path(profile))
    argv = [
        "--nvml-mock", profile,
        "--kubelet-socket", str(directory / "kubelet.sock"),
        "--cdi-spec-dir", str(tmp_path / "cdi"),
        *args,
    ]  # fmt: skip
    env = environ or {}
    daemon = Daemon(argv, env, parse(argv, env))
    if retry_seconds is not None:
        daemon.retry_seconds = retry_seconds
    control = Control()
    exit_code: list[int] = []
    thread = threading.Thread(target=lambda: exit_code.append(daemon.run(control)), daemon=True)
    thread.start()
    try:
        assert daemon.started.wait(10) or not expect_registration, "the plugin did not start"
        yield Running(kubelet, daemon, simulation, directory)
    finally:
        control.send(signal.SIGTERM)
        thread.join(10)
        kubelet.stop()
        simulation.deactivate()
    assert not thread.is_alive()
    assert exit_code == [0]
    assert sorted(p.name for p in directory.glob("nvidia-*.sock")) == []


def ids(endpoint: Endpoint) -> list[str]:
    return list(endpoint.devices)


def test_registration_options_and_list(tmp_path: Path) -> None:
    with plugin(tmp_path) as run:
        registration = run.kubelet.wait_registration(GPU)
        request = registration.request
        assert (request.version, request.endpoint, request.resource_name) == (
            "v1beta1",
            "nvidia-gpu.sock",
            GPU,
        )
        assert request.options.get_preferred_allocation_available
        assert not request.options.pre_start_required
        endpoint = run.endpoint()
        assert endpoint.options is not None and endpoint.options.get_preferred_allocation_available
        machine = run.simulation.profile  # type: ignore[attr-defined]
        assert len(endpoint.devices) == len(machine.gpus) == 8
        numa = [nodes for _, nodes in endpoint.devices.values()]
        assert numa == [(0,)] * 4 + [(1,)] * 4
        assert {health for health, _ in endpoint.devices.values()} == {"Healthy"}
        pre = endpoint.stub.PreStartContainer(
            __import__("deviceplugin.v1beta1.api_pb2", fromlist=["x"]).PreStartContainerRequest(),
            timeout=5,
        )
        assert pre.ByteSize() == 0


def test_preferred_allocation_follows_the_pcie_topology(tmp_path: Path) -> None:
    with plugin(tmp_path) as run:
        endpoint = run.endpoint()
        gpus = ids(endpoint)
        # dgx-a100: GPUs (0,1), (2,3), (4,5), (6,7) share a PCIe switch; 0-3 one NUMA node.
        assert endpoint.preferred(gpus, [], 2) == gpus[0:2]
        assert endpoint.preferred(gpus, [gpus[5]], 2) == gpus[4:6]
        assert endpoint.preferred(gpus, [], 4) == gpus[0:4]
        assert endpoint.preferred([gpus[i] for i in (7, 1, 4, 6)], [], 2) == [gpus[6], gpus[7]]
        assert endpoint.preferred(gpus[:1], [], 2) == []


@pytest.mark.parametrize(
    ("args", "visible"),
    [
        pytest.param((), "uuid", id="envvar-uuid"),
        pytest.param(("--device-id-strategy", "index"), "index", id="envvar-index"),
    ],
)
def test_allocate_envvar(tmp_path: Path, args: tuple[str, ...], visible: str) -> None:
    with plugin(tmp_path, "dgx-a100", *args) as run:
        endpoint = run.endpoint()
        gpus = ids(endpoint)
        answer = endpoint.allocate([gpus[2], gpus[0]]).container_responses[0]
        expected = f"{gpus[2]},{gpus[0]}" if visible == "uuid" else "2,0"
        assert dict(answer.envs) == {"NVIDIA_VISIBLE_DEVICES": expected}
        assert not answer.cdi_devices and not answer.annotations and not answer.devices


def test_allocate_volume_mounts_and_device_specs(tmp_path: Path) -> None:
    with plugin(
        tmp_path, "dgx-a100", "--device-list-strategy=volume-mounts", "--pass-device-specs"
    ) as run:
        endpoint = run.endpoint()
        gpu = ids(endpoint)[3]
        answer = endpoint.allocate([gpu]).container_responses[0]
        assert dict(answer.envs) == {"NVIDIA_VISIBLE_DEVICES": "/var/run/nvidia-container-devices"}
        assert [(m.container_path, m.host_path) for m in answer.mounts] == [
            (f"/var/run/nvidia-container-devices/{gpu}", "/dev/null")
        ]
        specs = [(d.container_path, d.permissions) for d in answer.devices]
        assert specs == [
            ("/dev/nvidiactl", "rw"),
            ("/dev/nvidia-uvm", "rw"),
            ("/dev/nvidia-uvm-tools", "rw"),
            ("/dev/nvidia-modeset", "rw"),
            ("/dev/nvidia3", "rw"),
        ]
        driver_root = str(run.simulation.driver_root)  # type: ignore[attr-defined]
        assert all(d.host_path == driver_root + d.container_path for d in answer.devices)


@pytest.mark.parametrize("id_strategy", ["uuid", "index"])
def test_allocate_cdi_names_are_defined_by_the_written_spec(
    tmp_path: Path, id_strategy: str
) -> None:
    args = (
        "--device-list-strategy", "cdi-annotations,cdi-cri",
        "--device-id-strategy", id_strategy,
        "--cdi-annotation-prefix", "nvidia.cdi.k8s.io/",
    )  # fmt: skip
    with plugin(tmp_path, "dgx-a100", *args) as run:
        endpoint = run.endpoint()
        gpus = ids(endpoint)
        answer = endpoint.allocate([gpus[1]]).container_responses[0]
        name = f"nvidia.com/gpu={gpus[1] if id_strategy == 'uuid' else '1'}"
        assert [d.name for d in answer.cdi_devices] == [name]
        ((key, value),) = answer.annotations.items()
        assert key.startswith("nvidia.cdi.k8s.io/nvidia-device-plugin_") and value == name
        assert dict(answer.envs) == {}
        spec = yaml.safe_load((tmp_path / "cdi" / "nvidia-device-plugin.yaml").read_text())
        defined = {f"{spec['kind']}={d['name']}" for d in spec["devices"]}
        assert name in defined and len(defined) == 8


def test_cdi_file_absent_when_a_generator_defines_everything(tmp_path: Path) -> None:
    with plugin(tmp_path, "dgx-a100", "--device-list-strategy", "cdi-cri") as run:
        own = tmp_path / "cdi" / "nvidia-device-plugin.yaml"
        assert own.exists()
        gpus = ids(run.endpoint())
        full = yaml.safe_load(own.read_text())
        full["devices"] = [
            *full["devices"],
            {"name": "all", "containerEdits": full["devices"][0]["containerEdits"]},
        ]
        (tmp_path / "cdi" / "nvidia.yaml").write_text(yaml.safe_dump(full))
        deadline = time.monotonic() + 5
        while own.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not own.exists()
        answer = run.endpoint().allocate([gpus[0]]).container_responses[0]
        assert [d.name for d in answer.cdi_devices] == [f"nvidia.com/gpu={gpus[0]}"]


@pytest.mark.parametrize(
    ("strategy", "resources"),
    [
        pytest.param("none", {GPU: 8}, id="none"),
        pytest.param(
            "mixed",
            {"nvidia.com/mig-3g.20gb": 8, "nvidia.com/mig-2g.10gb": 8, "nvidia.com/mig-1g.5gb": 16},
            id="mixed",
        ),
    ],
)
def test_mig_strategies(tmp_path: Path, strategy: str, resources: dict[str, int]) -> None:
    with plugin(
        tmp_path, "dgx-a100-mig", "--mig-strategy", strategy, "--device-id-strategy", "index"
    ) as run:
        for resource, count in resources.items():
            endpoint = run.endpoint(resource)
            assert len(endpoint.devices) == count
            registration = run.kubelet.wait_registration(resource).request
            assert registration.endpoint == f"nvidia-{resource.removeprefix('nvidia.com/')}.sock"
        if strategy == "mixed":
            endpoint = run.endpoint("nvidia.com/mig-2g.10gb")
            mig = ids(endpoint)[3]
            assert mig.startswith("MIG-")
            answer = endpoint.allocate([mig]).container_responses[0]
            assert dict(answer.envs) == {"NVIDIA_VISIBLE_DEVICES": "3:1"}
            picked = endpoint.preferred(ids(endpoint), [], 2)
            assert len(picked) == 2


def test_mig_single_on_a_uniform_node(tmp_path: Path) -> None:
    profile = tmp_path / "uniform.yaml"
    profile.write_text(
        "gpus:\n  - model: A100-SXM4-40GB\n    count: 2\n    mig: enabled\n"
        "    mig_devices: [1g.5gb, 1g.5gb, 1g.5gb]\n"
    )
    with plugin(tmp_path, str(profile), "--mig-strategy", "single") as run:
        endpoint = run.endpoint(GPU)
        assert len(endpoint.devices) == 6
        assert all(i.startswith("MIG-") for i in endpoint.devices)


@pytest.mark.parametrize(
    ("config", "resource"),
    [
        pytest.param("resources: [{name: nvidia.com/gpu, replicas: 4}]", GPU, id="same-name"),
        pytest.param(
            "renameByDefault: true\n    resources: [{name: nvidia.com/gpu, replicas: 4}]",
            "nvidia.com/gpu.shared",
            id="rename-by-default",
        ),
    ],
)
def test_time_slicing(tmp_path: Path, config: str, resource: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        "version: v1\nsharing:\n  timeSlicing:\n    failRequestsGreaterThanOne: true\n"
        f"    {config}\n"
    )
    with plugin(tmp_path, "dgx-a100", "--config-file", str(path)) as run:
        endpoint = run.endpoint(resource)
        replicas = ids(endpoint)
        assert len(replicas) == 32 and replicas[5].endswith("::1")
        assert [r.request.resource_name for r in run.kubelet.registrations] == [resource]
        with pytest.raises(grpc.RpcError) as err:
            endpoint.allocate(replicas[0:2])
        assert err.value.code() == grpc.StatusCode.UNKNOWN
        assert err.value.details() == (
            f'invalid allocation request for "{resource}": invalid request: maximum request size'
            " for shared resources is 1; found 2"
        )
        answer = endpoint.allocate([replicas[6]]).container_responses[0]
        assert dict(answer.envs) == {"NVIDIA_VISIBLE_DEVICES": replicas[6].split("::")[0]}
        picked = endpoint.preferred(replicas, [], 4)
        assert len({p.split("::")[0] for p in picked}) == 4  # distributed over GPUs


def test_xid_marks_every_replica_within_a_second(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("sharing: {timeSlicing: {resources: [{name: gpu, replicas: 3}]}}\n")
    with plugin(tmp_path, "dgx-a100", "--config-file", str(path)) as run:
        endpoint = run.endpoint()
        replicas = ids(endpoint)
        start = time.monotonic()
        run.simulation.inject_xid(2, 48)  # type: ignore[attr-defined]
        at, devices = endpoint.wait_list(lambda d: d[replicas[6]][0] == "Unhealthy")
        assert at - start < 1.0  # promised; measured 0.5-0.6 ms (3 runs)
        assert [i for i, (h, _) in devices.items() if h == "Unhealthy"] == replicas[6:9]
        run.simulation.inject_xid(4, 13)  # ignored by default  # type: ignore[attr-defined]
        run.simulation.inject_xid(5, 94)  # type: ignore[attr-defined]
        _, devices = endpoint.wait_list(lambda d: d[replicas[15]][0] == "Unhealthy")
        assert devices[replicas[12]][0] == "Healthy"


def test_mig_xid_marks_only_its_device(tmp_path: Path) -> None:
    with plugin(tmp_path, "dgx-a100-mig", "--mig-strategy", "mixed") as run:
        small = run.endpoint("nvidia.com/mig-1g.5gb")
        large = run.endpoint("nvidia.com/mig-3g.20gb")
        migs = ids(small)  # per GPU: MIG indices 2 and 3
        run.simulation.inject_xid(1, 48, mig=3)  # type: ignore[attr-defined]
        _, devices = small.wait_list(lambda d: d[migs[3]][0] == "Unhealthy")
        assert [i for i, (h, _) in devices.items() if h == "Unhealthy"] == [migs[3]]
        run.simulation.inject_xid(6, 48)  # the whole GPU  # type: ignore[attr-defined]
        small.wait_list(lambda d: d[migs[12]][0] == d[migs[13]][0] == "Unhealthy")
        large.wait_list(lambda d: d[ids(large)[6]][0] == "Unhealthy")


def test_lost_gpu_and_recovery(tmp_path: Path) -> None:
    with plugin(tmp_path, "dgx-a100", "--health-recovery-period", "200ms") as run:
        endpoint = run.endpoint()
        gpus = ids(endpoint)
        run.simulation.fall_off_bus(5)  # type: ignore[attr-defined]
        _, devices = endpoint.wait_list(lambda d: d[gpus[5]][0] == "Unhealthy")
        assert [i for i, (h, _) in devices.items() if h == "Unhealthy"] == [gpus[5]]
        # Healthy GPUs still allocate, and preferred allocation still answers.
        assert (
            endpoint.allocate([gpus[4]]).container_responses[0].envs["NVIDIA_VISIBLE_DEVICES"]
            == gpus[4]
        )
        assert endpoint.preferred(gpus, [], 2) == gpus[0:2]
        run.simulation.recover(5)  # type: ignore[attr-defined]
        count = len(endpoint.lists)
        endpoint.wait_list(
            lambda d: all(h == "Healthy" for h, _ in d.values()) and len(endpoint.lists) > count,
            timeout=5,
        )


def test_kubelet_restart_reregisters_within_a_second(tmp_path: Path) -> None:
    with plugin(tmp_path) as run:
        run.endpoint()
        run.simulation.fall_off_bus(1)  # type: ignore[attr-defined]
        for _ in range(3):
            created = run.kubelet.restart()
            registration = run.kubelet.wait_registration(GPU, after=created, timeout=5)
            assert registration.at - created < 1.0  # promised; measured 0.102-0.105 s (9)
            endpoint = run.endpoint()
            gpus = ids(endpoint)
            assert len(gpus) == 8  # the lost GPU stays advertised, unhealthy
            lost = gpus[1]
            endpoint.wait_list(lambda d, lost=lost: d[lost][0] == "Unhealthy")
            assert (run.directory / "nvidia-gpu.sock").is_socket()


def test_mps_sharing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    control = tmp_path / "bin" / "nvidia-cuda-mps-control"
    control.parent.mkdir()
    control.write_text("#!/bin/sh\ncat >/dev/null\necho 100\n")
    control.chmod(0o755)
    monkeypatch.setenv("PATH", f"{control.parent}{os.pathsep}{os.environ['PATH']}")
    path = tmp_path / "config.yaml"
    path.write_text("sharing: {mps: {resources: [{name: gpu, replicas: 2}]}}\n")
    args = ("--config-file", str(path), "--mps-root", "/run/nvidia/mps")
    with plugin(tmp_path, "l40s", *args) as run:
        endpoint = run.endpoint()
        replicas = ids(endpoint)
        assert len(replicas) == 4
        answer = endpoint.allocate([replicas[3]]).container_responses[0]
        assert dict(answer.envs) == {
            "NVIDIA_VISIBLE_DEVICES": replicas[3].split("::")[0],
            "CUDA_MPS_PIPE_DIRECTORY": "/mps/nvidia.com/gpu/pipe",
        }
        assert [(m.container_path, m.host_path) for m in answer.mounts] == [
            ("/mps/nvidia.com/gpu/pipe", "/run/nvidia/mps/nvidia.com/gpu/pipe"),
            ("/dev/shm", "/run/nvidia/mps/shm"),
        ]
        with pytest.raises(grpc.RpcError, match="maximum request size for shared resources"):
            endpoint.allocate(replicas[:2])  # MPS turns failRequestsGreaterThanOne on


def test_failed_registration_is_retried(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO")
    with plugin(tmp_path, "t4", reject=True, retry_seconds=0.3) as run:
        assert run.kubelet.registrations == []
        run.kubelet.reject = False
        run.kubelet.wait_registration(GPU, timeout=5)
    assert (
        "Failed to start plugin: unable to register device plugin for 'nvidia.com/gpu':"
        " rpc error: code = Unknown desc = registration refused by the test" in caplog.text
    )
    assert "Failed to start one or more plugins. Retrying in 30s..." in caplog.text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            ("--device-discovery-strategy", "tegra"),
            "error starting plugins: unable to load config: unable to validate flags:"
            " invalid --device-discovery-strategy option tegra: not supported",
            id="tegra",
        ),
        pytest.param(
            ("--device-list-strategy", "envvar,bogus"),
            "error starting plugins: unable to load config: unable to validate flags:"
            " invalid --device-list-strategy option: invalid strategy: bogus",
            id="device-list-strategy",
        ),
        pytest.param(
            ("--mig-strategy", "single"),
            "error starting plugins: unable to create plugins: failed to construct resource"
            " managers: error building device map: error building device map from"
            " config.resources: invalid MIG configuration: more than one MIG device type"
            " present on node",
            id="mig-single-mixed-profiles",
        ),
    ],
)
def test_fatal_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, args: tuple[str, ...], message: str
) -> None:
    directory = tmp_path / "dp"
    with KubeletDouble(directory), sim.activate("dgx-a100-mig"):
        argv = ["--nvml-mock", "dgx-a100-mig", "--kubelet-socket", str(directory / "kubelet.sock")]
        code = Daemon(argv, {}, parse([*argv, *args], {})).run(Control())
    assert code == 1
    assert message in caplog.text


def test_node_without_gpus_waits(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO")
    with plugin(tmp_path, "no-gpu", expect_registration=False) as run:
        assert run.daemon.started.wait(20)  # a start that found nothing to serve
        run.daemon.node_check_seconds = 0.05
        node_checks(run.daemon, 3)  # the loop went on past it, registering nothing
        assert run.kubelet.registrations == []
    assert "No devices found. Waiting indefinitely." in caplog.text


# -- the liveness heartbeat --------------------------------------------------------------


def stale(path: Path) -> None:
    os.utime(path, (0, 0))


def fresh(path: Path) -> bool:
    return check(str(path), limit=60.0)[0]


def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def node_checks(daemon: Daemon, count: int) -> None:
    """Wait for `count` more node checks to end (the last one began after this call)."""
    target = daemon.node_checks + count
    until(lambda: daemon.node_checks >= target)


def test_heartbeat_follows_registration_across_a_kubelet_restart(tmp_path: Path) -> None:
    beat = tmp_path / "heartbeat"
    with plugin(tmp_path, "t4", "--heartbeat-file", str(beat)) as run:
        run.kubelet.wait_registration(GPU)
        assert fresh(beat)
        assert beat.read_text() == "30\n"  # the node check's interval: the probe's limit
        run.daemon.node_check_seconds = 0.1
        stale(beat)
        until(lambda: fresh(beat))  # a node check, the plugin still served and registered
        # A restarting kubelet: gone, its directory's sockets wiped, not yet back.
        run.kubelet.stop()
        for path in run.directory.glob("*.sock"):
            path.unlink()
        node_checks(run.daemon, 2)  # every check from here on sees the wiped sockets
        stale(beat)
        node_checks(run.daemon, 2)
        assert not fresh(beat)  # checked, nothing in place: not touched
        back = time.monotonic()
        run.kubelet.start()
        run.kubelet.wait_registration(GPU, after=back)
        until(lambda: fresh(beat))  # registered again: touched


def test_heartbeat_stops_when_the_plugin_socket_is_lost(tmp_path: Path) -> None:
    """Its socket removed under it (the kubelet still there): nothing reaches the plugin
    any more, so it stops proving itself alive and the probe will restart it."""
    beat = tmp_path / "heartbeat"
    with plugin(tmp_path, "t4", "--heartbeat-file", str(beat)) as run:
        run.kubelet.wait_registration(GPU)
        run.daemon.node_check_seconds = 0.1
        (run.directory / "nvidia-gpu.sock").unlink()
        node_checks(run.daemon, 2)
        stale(beat)
        node_checks(run.daemon, 2)
        assert not fresh(beat)


def test_heartbeat_waits_for_a_registration_that_succeeds(tmp_path: Path) -> None:
    beat = tmp_path / "heartbeat"
    args = ("--heartbeat-file", str(beat))
    with plugin(tmp_path, "t4", *args, reject=True, retry_seconds=0.5) as run:
        run.daemon.node_check_seconds = 0.1
        stale(beat)
        starts = run.daemon.starts
        until(lambda: run.daemon.starts >= starts + 2)  # failed starts
        node_checks(run.daemon, 2)  # and checks between them
        assert not fresh(beat)
        run.kubelet.reject = False
        run.kubelet.wait_registration(GPU)
        until(lambda: fresh(beat))


def test_heartbeat_on_a_node_without_gpus(tmp_path: Path) -> None:
    """No devices: nothing to serve, the plugin waits as upstream does, and is alive."""
    beat = tmp_path / "heartbeat"
    with plugin(tmp_path, "no-gpu", "--heartbeat-file", str(beat)) as run:
        run.daemon.node_check_seconds = 0.1
        stale(beat)
        until(lambda: fresh(beat))
        assert run.kubelet.registrations == []


def test_bad_heartbeat_path_is_fatal_at_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    directory = tmp_path / "dp"
    beat = tmp_path / "missing" / "heartbeat"
    with KubeletDouble(directory) as kubelet, sim.activate("t4"):
        argv = ["--nvml-mock", "t4", "--kubelet-socket", str(directory / "kubelet.sock"),
                "--heartbeat-file", str(beat)]  # fmt: skip
        code = Daemon(argv, {}, parse(argv, {})).run(Control())
        assert kubelet.registrations == []
    assert code == 1
    assert f"heartbeat file {beat}: its directory {beat.parent} does not exist" in caplog.text


# -- the command as a process ------------------------------------------------------------


def spawn(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    env = {
        "PYTHONPATH": str(REPO),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "deviceplugin", *args],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_process_sigterm_and_sighup(tmp_path: Path) -> None:
    directory = tmp_path / "dp"
    config = tmp_path / "config.yaml"
    config.write_text("version: v1\n")
    with KubeletDouble(directory, connect=False) as kubelet:
        proc = spawn(
            tmp_path,
            "--nvml-mock", "dgx-a100",
            "--kubelet-socket", str(directory / "kubelet.sock"),
            "--config-file", str(config),
        )  # fmt: skip
        try:
            kubelet.wait_registration(GPU, timeout=20)
            assert (directory / "nvidia-gpu.sock").is_socket()
            config.write_text(
                "sharing: {timeSlicing: {renameByDefault: true,"
                " resources: [{name: gpu, replicas: 2}]}}\n"
            )
            sent = time.monotonic()
            proc.send_signal(signal.SIGHUP)
            kubelet.wait_registration("nvidia.com/gpu.shared", after=sent, timeout=10)
            assert (directory / "nvidia-gpu.shared.sock").is_socket()
            assert not (directory / "nvidia-gpu.sock").exists()
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=10)
        finally:
            proc.kill()
    assert proc.returncode == 0, err
    assert 'Received signal "SIGTERM", shutting down.' in err
    assert "Received SIGHUP, restarting." in err
    assert sorted(p.name for p in directory.iterdir()) == []


def init_failure_profile(tmp_path: Path) -> Path:
    path = tmp_path / "broken.yaml"
    path.write_text("gpus: [{model: T4}]\nfaults: [{call: nvmlInit, error: DRIVER_NOT_LOADED}]\n")
    return path


def test_process_fail_on_init_error(tmp_path: Path) -> None:
    profile = init_failure_profile(tmp_path)
    proc = spawn(tmp_path, "--nvml-mock", str(profile), "--kubelet-socket", "")
    try:
        _, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 1
    assert (
        "error starting plugins: unable to create plugins: failed to construct resource"
        " managers: nvml init failed: Driver Not Loaded" in err
    )


def test_process_without_fail_on_init_error_waits(tmp_path: Path) -> None:
    profile = init_failure_profile(tmp_path)
    proc = spawn(
        tmp_path, "--nvml-mock", str(profile), "--kubelet-socket", "", "--fail-on-init-error=false"
    )
    try:
        deadline = time.monotonic() + 20
        lines = []
        assert proc.stderr is not None
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            lines.append(line)
            if "No devices found. Waiting indefinitely." in line:
                break
        assert proc.poll() is None, "".join(lines)
        assert any("Failed to initialize NVML" in line for line in lines)
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert proc.returncode == 0


def test_node_change_restarts_and_readvertises(tmp_path: Path) -> None:
    """Other GPUs or driver under a running plugin: it restarts and lists the new devices.

    The simulated node is swapped for another profile (a new driver and GPU set), as a
    driver upgrade or a GPU swap would change what NVML reports.
    """
    with plugin(tmp_path, "t4", "--device-list-strategy", "cdi-cri") as run:
        run.daemon.node_check_seconds = 0.2
        assert len(ids(run.endpoint())) == 1
        starts = run.daemon.starts
        before = time.monotonic()
        run.simulation.deactivate()  # type: ignore[attr-defined]
        swapped = sim.activate("gb200")
        try:
            deadline = time.monotonic() + 10
            while run.daemon.starts == starts and time.monotonic() < deadline:
                time.sleep(0.05)
            assert run.daemon.starts == starts + 1
            run.kubelet.wait_registration(GPU, after=before, timeout=5)
            gpus = ids(run.endpoint())
            assert len(gpus) == 4
            spec = (tmp_path / "cdi" / "nvidia-device-plugin.yaml").read_text()
            assert all(uuid in spec for uuid in gpus)  # the new names are defined
        finally:
            run.simulation = swapped  # the fixture deactivates what it holds


def test_driver_upgraded_under_the_plugin_exits_for_a_restart(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """NVML's library/kernel version mismatch at a node check: the loaded library can
    never init again, so the plugin exits 1 (its DaemonSet restarts it) and removes its
    sockets, rather than advertising GPUs it can no longer watch."""
    directory = tmp_path / "device-plugins"
    simulation = sim.activate("t4")
    argv = ["--nvml-mock", "t4", "--kubelet-socket", str(directory / "kubelet.sock"),
            "--cdi-spec-dir", str(tmp_path / "cdi")]  # fmt: skip
    with KubeletDouble(directory) as kubelet:
        daemon = Daemon(argv, {}, parse(argv, {}))
        daemon.node_check_seconds = 0.2
        exit_code: list[int] = []
        thread = threading.Thread(target=lambda: exit_code.append(daemon.run(Control())))
        thread.start()
        try:
            kubelet.wait_registration(GPU, timeout=10)
            simulation.fail_call("nvmlInit", "LIB_RM_VERSION_MISMATCH")
            thread.join(10)
        finally:
            simulation.deactivate()
    assert not thread.is_alive() and exit_code == [1]
    assert "The NVIDIA driver changed under this process" in caplog.text
    assert list(directory.glob("nvidia-*.sock")) == []
