"""The container image, built offline by tools/build_image.py and run by podman.

One build per module (mmdebstrap base, wheels, `podman build --network=none`, saved as an
OCI archive) in a podman sandbox with storage of its own (tests/support/podman_sandbox.py).
Then, as a cluster would use it: GFD in the image prints exactly the host install's labels
and writes a NodeFeature to the fake API server; `nvidia-cdi generate` writes into a bind
mount a spec the host's `nvidia-cdi validate` accepts; the plugin in the image registers
with the kubelet double through a bind-mounted socket directory and answers Allocate;
every command's `--version` is the package's. The image holds no compiler, installer or
package cache, carries LICENSE and NOTICE and the OCI labels, and its archive loads into a
fresh podman and into containerd (`ctr images import`).

Needs root, podman, mmdebstrap and containerd (the README's install step brings them).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from helm_chart import container, render
from kubelet_double import KubeletDouble
from node_api import NodeApiFake
from podman_sandbox import PodmanStorage, require, require_root

from nvlib import __version__
from tests.gfd.kubefake import FakeApiServer

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
REF = f"localhost/gpu-node-toolkit:{__version__}"
COMMANDS = ("config-manager", "gpu-feature-discovery", "nvidia-cdi", "nvidia-device-plugin")
# What the image adds above its base (65 MB when written): the goal it was built to.
PROJECT_LAYERS_BOUND_MB = 80.0


@dataclass
class Built:
    podman: PodmanStorage
    report: str  # build_image.py's last line: reference, size, project share
    archive: Path

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return self.podman.run("run", "--rm", *args, timeout=timeout)


@pytest.fixture(scope="module")
def image() -> Iterator[Built]:
    require_root()
    for tool in ("podman", "mmdebstrap"):
        require(tool)
    podman = PodmanStorage()
    archive = podman.state / "image.tar"
    try:
        done = subprocess.run(
            [sys.executable, str(REPO / "tools" / "build_image.py"),
             "--podman", str(podman.command), "--save", str(archive)],
            capture_output=True, text=True, timeout=900,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-4000:]
        yield Built(podman, done.stdout.strip().splitlines()[-1], archive)
    finally:
        podman.remove()


def test_build_reports_reference_and_sizes(image: Built) -> None:
    match = re.fullmatch(
        rf"{re.escape(REF)} ([\d.]+) MB \(project layers ([\d.]+) MB, base \S+ ([\d.]+) MB\)",
        image.report,
    )
    assert match, image.report
    total, project, base = (float(g) for g in match.groups())
    assert abs(total - project - base) < 0.2
    assert 0 < project <= PROJECT_LAYERS_BOUND_MB, image.report


def test_gfd_in_the_image_prints_the_host_labels(image: Built) -> None:
    args = ["--oneshot", "--nvml-mock", "dgx-a100", "--no-timestamp", "--output-file", "-"]
    host = subprocess.run(
        [str(BIN / "gpu-feature-discovery"), *args], capture_output=True, text=True, timeout=60
    )
    assert host.returncode == 0, host.stderr
    inside = image.run("--network=none", REF, "gpu-feature-discovery", *args)
    assert inside.returncode == 0, inside.stderr
    assert "nvidia.com/gpu.product=NVIDIA-A100-SXM4-40GB" in inside.stdout
    assert inside.stdout == host.stdout


def test_gfd_in_the_image_writes_a_nodefeature(image: Built, tmp_path: Path) -> None:
    """The Kubernetes client path, with the asyncio half of the client removed."""
    with FakeApiServer() as server:
        kubeconfig = server.write_kubeconfig(tmp_path / "kubeconfig", namespace="gnt")
        inside = image.run(
            "--network=host", "--volume", f"{tmp_path}:{tmp_path}:ro",
            "--env", "NODE_NAME=node-a", "--env", "NAMESPACE=gnt",
            REF, "gpu-feature-discovery", "--oneshot", "--nvml-mock", "t4", "--no-timestamp",
            "--use-node-feature-api=true", f"--kubeconfig={kubeconfig}",
        )  # fmt: skip
        assert inside.returncode == 0, inside.stderr
        written = server.fake.nodefeature("gnt", "nvidia-features-for-node-a")
    assert written is not None, inside.stderr
    assert written["spec"]["labels"]["nvidia.com/gpu.product"] == "Tesla-T4"


def test_config_manager_in_the_image_picks_the_labelled_config(
    image: Built, tmp_path: Path
) -> None:
    """config-manager's Kubernetes path (list the Node) in the image, as the chart's init
    container runs it."""
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "default").write_text("version: v1\n")
    (tmp_path / "configs" / "sliced").write_text("version: v1\nsharing: {}\n")
    (tmp_path / "config").mkdir()
    with NodeApiFake() as api:
        api.put_node("node-a", {"nvidia.com/device-plugin.config": "sliced"})
        inside = image.run(
            "--network=host", "--volume", f"{tmp_path}:{tmp_path}",
            "--env", "NODE_NAME=node-a", "--env", "ONESHOT=true", "--env", "SEND_SIGNAL=false",
            "--env", f"KUBECONFIG={api.write_kubeconfig(tmp_path / 'kubeconfig')}",
            "--env", f"CONFIG_FILE_SRCDIR={tmp_path / 'configs'}",
            "--env", f"CONFIG_FILE_DST={tmp_path / 'config' / 'config.yaml'}",
            REF, "config-manager",
        )  # fmt: skip
    assert inside.returncode == 0, inside.stderr
    assert (tmp_path / "config" / "config.yaml").read_text() == "version: v1\nsharing: {}\n"


def test_cdi_spec_written_in_the_image_validates_on_the_host(image: Built) -> None:
    with tempfile.TemporaryDirectory() as out:
        inside = image.run(
            "--network=none", "--volume", f"{out}:/out",
            REF, "nvidia-cdi", "generate", "--nvml-mock", "dgx-a100", "--output",
            "/out/nvidia.yaml",
        )  # fmt: skip
        assert inside.returncode == 0, inside.stderr
        spec = Path(out) / "nvidia.yaml"
        checked = subprocess.run(
            [str(BIN / "nvidia-cdi"), "validate", str(spec)],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert checked.returncode == 0, checked.stdout + checked.stderr
        names = {d["name"] for d in yaml.safe_load(spec.read_text())["devices"]}
    assert {"0", "7", "all"} <= names


def test_plugin_in_the_image_registers_through_a_bind_mounted_socket_dir(
    image: Built, tmp_path: Path
) -> None:
    directory = tmp_path / "device-plugins"
    name = f"plugin-{tmp_path.name[-12:]}"
    with KubeletDouble(directory) as kubelet:
        started = image.podman.check(
            "run", "--detach", "--name", name, "--network=none",
            "--volume", f"{directory}:{directory}",
            REF, "nvidia-device-plugin", "--nvml-mock", "dgx-a100",
            f"--kubelet-socket={directory}/kubelet.sock",
        )  # fmt: skip
        try:
            endpoint = kubelet.endpoint("nvidia.com/gpu", timeout=60)
            devices = endpoint.wait_list(lambda d: len(d) == 8, timeout=30)[1]
            assert {health for health, _ in devices.values()} == {"Healthy"}
            response = endpoint.allocate(sorted(devices)[:2])
            visible = response.container_responses[0].envs["NVIDIA_VISIBLE_DEVICES"]
            assert sorted(visible.split(",")) == sorted(devices)[:2]
            stopped = time.monotonic()
            image.podman.check("stop", "--time", "10", name)
            assert time.monotonic() - stopped < 10
            logs = image.podman.check("logs", name)
        finally:
            image.podman.run("rm", "--force", started.strip())
    assert not (directory / "nvidia-gpu.sock").exists(), logs


def test_chart_liveness_probe_runs_in_the_image(image: Built) -> None:
    """The chart's exec probe, as the kubelet runs it in GFD's container, on a live GFD."""
    ctr = container(render(), "gpu-feature-discovery")
    probe = ctr["livenessProbe"]["exec"]["command"]
    heartbeat = {e["name"]: e.get("value") for e in ctr["env"]}["GFD_HEARTBEAT_FILE"]
    name = "gfd-liveness"
    image.podman.check(
        "run", "--detach", "--name", name, "--network=none",
        "--mount", f"type=tmpfs,destination={Path(heartbeat).parent}",
        "--env", f"GFD_HEARTBEAT_FILE={heartbeat}",
        REF, "gpu-feature-discovery", "--nvml-mock", "t4", "--sleep-interval", "1s",
        "--output-file", "/tmp/gfd",
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while (checked := image.podman.run("exec", name, *probe)).returncode != 0:
            assert time.monotonic() < deadline, checked.stdout + checked.stderr
            time.sleep(0.5)
        assert "old (limit" in checked.stdout, checked.stdout
    finally:
        image.podman.run("rm", "--force", name)


@pytest.mark.parametrize("command", COMMANDS)
def test_version_is_the_package_version(image: Built, command: str) -> None:
    inside = image.run("--network=none", REF, command, "--version")
    assert inside.returncode == 0, inside.stderr
    assert inside.stdout.strip() == f"{command} {__version__}"


def test_image_holds_no_compiler_installer_or_cache(image: Built) -> None:
    script = (
        "for t in cc gcc g++ pip pip3 apt-get; do command -v $t >/dev/null && echo has $t; done;"
        " ls /opt/gpu-node-toolkit/lib/python3*/site-packages | grep -Ei '^(pip|setuptools)'"
        " ; find /root/.cache /wheels /var/cache/apt/archives -name '*.whl' -o -name '*.deb'"
        " 2>/dev/null; true"
    )
    inside = image.run("--network=none", REF, "sh", "-c", script)
    assert inside.returncode == 0, inside.stderr
    # apt-get is part of a Debian base: only what the project's stage added counts.
    assert inside.stdout.split("\n") in (["has apt-get", ""], [""]), inside.stdout


def test_image_carries_licence_and_oci_labels(image: Built) -> None:
    inside = image.run("--network=none", REF, "cat", "/licenses/LICENSE", "/licenses/NOTICE")
    assert inside.returncode == 0, inside.stderr
    ours = (REPO / "LICENSE").read_text() + (REPO / "NOTICE").read_text()
    assert inside.stdout == ours
    labels = json.loads(image.podman.check("image", "inspect", REF))[0]["Labels"]
    assert labels["org.opencontainers.image.version"] == __version__
    assert labels["org.opencontainers.image.licenses"] == "Apache-2.0"
    assert labels["org.opencontainers.image.title"] == "gpu-node-toolkit"
    assert labels["org.opencontainers.image.source"]
    assert re.fullmatch(r"[0-9a-f]{40}|unknown", labels["org.opencontainers.image.revision"])


def test_archive_loads_into_a_fresh_podman(image: Built) -> None:
    built_id = image.podman.check("image", "inspect", "--format", "{{.Id}}", REF).strip()
    other = PodmanStorage()
    try:
        other.check("load", "--input", str(image.archive))
        assert other.check("image", "inspect", "--format", "{{.Id}}", REF).strip() == built_id
    finally:
        other.remove()


def test_archive_imports_into_containerd(image: Built) -> None:
    require("containerd")
    ctr = require("ctr")
    with tempfile.TemporaryDirectory(prefix="ctrd-", dir="/tmp") as tmp:
        root = Path(tmp)
        socket = root / "c.sock"
        (root / "config.toml").write_text(
            f'version = 2\nroot = "{root}/root"\nstate = "{root}/state"\n'
            f'[grpc]\n  address = "{socket}"\n'
        )
        log = (root / "containerd.log").open("w")
        daemon = subprocess.Popen(
            ["containerd", "--config", str(root / "config.toml")], stdout=log, stderr=log
        )
        try:
            deadline = time.monotonic() + 30
            while not socket.is_socket() and time.monotonic() < deadline:
                time.sleep(0.1)
            base = [ctr, "--address", str(socket), "--namespace", "k8s.io", "images"]
            imported = subprocess.run(
                [*base, "import", str(image.archive)], capture_output=True, text=True, timeout=120
            )
            assert imported.returncode == 0, imported.stderr + (root / "containerd.log").read_text()
            listed = subprocess.run([*base, "ls", "--quiet"], capture_output=True, text=True)
        finally:
            daemon.terminate()
            daemon.wait(timeout=30)
            log.close()
            subprocess.run(["umount", "-R", "-l", str(root / "root")], capture_output=True)
    # The name the chart uses by default, so an imported image needs no retagging.
    assert REF in listed.stdout.split(), listed.stdout
