"""The cluster goal without a cluster: a simulated node's GPUs reach a container.

What a cluster without GPUs runs with the chart's `simulator.profile=dgx-a100` and
`deviceListStrategy=cdi-cri`, every piece real but the kubelet and the container
engine: `nvidia-cdi generate --nvml-mock dgx-a100 --simulator-root DIR --disable-hook
all` (the chart's CDI container) writes the spec over real character devices; the
device plugin, a process with `NVML_MOCK=dgx-a100` and `DEVICE_LIST_STRATEGY=cdi-cri`
in its environment (the chart's plugin container), registers with the kubelet double;
the double asks for a preferred pair among the GPUs still free and allocates it, as
the kubelet does for a pod asking `nvidia.com/gpu: 2`; podman
(tests/support/podman_sandbox.py), the CDI consumer standing in for containerd, runs a
container with the CDI names Allocate answered. The container sees exactly those two
`/dev/nvidiaN`, with the minors the profile gives the two GPUs, and the control nodes.
Under both device-ID strategies.

Needs root (mknod, mount namespaces) and podman with busybox-static.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubelet_double import KubeletDouble
from podman_sandbox import Sandbox, nvidia_nodes, podman_sandbox

from nvlib.sim import load_profile

PROFILE = "dgx-a100"
GPU = "nvidia.com/gpu"
NVIDIA = 195  # the major the profile (and the NVIDIA driver) gives GPU and control nodes


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    with podman_sandbox(tmp_path_factory.mktemp("podman")) as box:
        yield box


def generate(simulator_root: Path, spec_dir: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "cdi", "generate", "--nvml-mock", PROFILE,
         "--simulator-root", str(simulator_root), "--output", str(spec_dir / "nvidia.yaml"),
         "--disable-hook", "all"],
        capture_output=True, text=True, timeout=60, check=False,
        env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


def start_plugin(
    tmp_path: Path, spec_dir: Path, simulator_root: Path, id_strategy: str
) -> subprocess.Popen[str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": os.pathsep.join(sys.path),
        "PYTHONDONTWRITEBYTECODE": "1",
        "NVML_MOCK": PROFILE,
        "DEVICE_LIST_STRATEGY": "cdi-cri",
        "DEVICE_ID_STRATEGY": id_strategy,
        # As the chart's plugin container: the generator's simulated root, mounted at its
        # host path, so a spec of the plugin's own names what exists on the host.
        "NVIDIA_DRIVER_ROOT": str(simulator_root),
        "CDI_DISABLE_HOOKS": "all",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "deviceplugin",
         "--kubelet-socket", str(tmp_path / "device-plugins" / "kubelet.sock"),
         "--cdi-spec-dir", str(spec_dir)],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("id_strategy", "plugin_first"),
    [("uuid", False), ("index", False), ("uuid", True)],
    ids=["uuid", "index", "plugin-first"],
)
def test_a_pod_asking_for_two_gpus_gets_exactly_their_nodes(
    tmp_path: Path, sandbox: Sandbox, id_strategy: str, plugin_first: bool
) -> None:
    """The DaemonSets start in any order: with the plugin first, its own spec (if any)
    names the simulated root's host paths, which the generator then lays out."""
    # (not `cdi`: in the plugin's working directory that would shadow the package)
    simulator_root, spec_dir = tmp_path / "simulator", tmp_path / "cdi-specs"
    spec_dir.mkdir()
    if not plugin_first:
        generate(simulator_root, spec_dir)
    gpus = load_profile(PROFILE).gpus
    # The plugin lists GPUs by UUID; Allocate names them by the ID strategy.
    name_of = {g.uuid: g.uuid if id_strategy == "uuid" else str(i) for i, g in enumerate(gpus)}
    minor_of = {g.uuid: g.minor for g in gpus}

    with KubeletDouble(tmp_path / "device-plugins") as kubelet:
        plugin = start_plugin(tmp_path, spec_dir, simulator_root, id_strategy)
        try:
            endpoint = kubelet.endpoint(GPU, timeout=30)
            if plugin_first:
                generate(simulator_root, spec_dir)
            _, devices = endpoint.wait_list(lambda d: len(d) == len(gpus), timeout=10)
            # GPUs 0 and 1 already went to another pod: the pair comes from the rest.
            free = [uuid for uuid in devices if minor_of[uuid] not in (0, 1)]
            picked = endpoint.preferred(free, [], 2)
            answer = endpoint.allocate(picked).container_responses[0]
        finally:
            plugin.send_signal(signal.SIGTERM)
            _, err = plugin.communicate(timeout=10)
    assert plugin.returncode == 0, err
    assert sorted(minor_of[uuid] for uuid in picked) == [2, 3]  # they share a PCIe switch
    names = [d.name for d in answer.cdi_devices]
    assert names == [f"{GPU}={name_of[uuid]}" for uuid in picked]
    if not plugin_first:  # the generator's defines them all
        assert sorted(os.listdir(spec_dir)) == ["nvidia.yaml"]

    devices = [arg for name in names for arg in ("--device", name)]
    result = sandbox.podman(
        spec_dir, *devices, "--rootfs", str(sandbox.rootfs), "/bin/sh", "-c", "ls -ln /dev/"
    )
    assert result.returncode == 0, sandbox.explain(spec_dir, result)
    nodes = nvidia_nodes(result.stdout)
    gpu_nodes = {name: numbers for name, numbers in nodes.items() if name[6:].isdigit()}
    assert gpu_nodes == {
        f"nvidia{minor_of[uuid]}": f"{NVIDIA}, {minor_of[uuid]}" for uuid in picked
    }
    assert nodes["nvidiactl"] == f"{NVIDIA}, 255"
    assert {"nvidia-modeset", "nvidia-uvm", "nvidia-uvm-tools"} <= nodes.keys()
