"""A real CDI consumer: podman runs containers from specs `nvidia-cdi generate` wrote.

The sandbox is tests/support/podman_sandbox.py: podman in a private mount namespace, the
per-test spec directories bind-mounted on /etc/cdi and /var/run/cdi, a busybox rootfs, no
image pulled. The driver root is the simulator's laid out as `--simulator-root` lays it
(`cdi.simroot`): each placeholder device node a real character device (mknod) of the same
major and minor, so the engine injects real nodes. The hook binary is a script that
records its arguments, so hook order and arguments are checked too.

Matrix: a GPU by index, by UUID and `all` on dgx-a100; a MIG device on dgx-a100-mig;
and the spec loads without a registry error at podman's debug level. On gb200 (which
has IMEX channel 0) the gpu-operator layout: `nvidia.yaml` and `generate --mode imex`'s
`nvidia-imex.yaml` side by side, a container asking for `nvidia.com/imex-channel=0`
(alone, with a GPU, and `=all`), and `--mode management`'s `management.nvidia.com/gpu=all`.
Podman 4.3's CDI library reads only cdiVersion 0.1.0-0.5.0 and rejects unknown keys:
these runs are the proof that the lowest-version rule and the field set hold.

Needs root (mknod, mount namespaces). Without podman or busybox-static the tests fail
with the install command: CI installs them (`apt-get install -y podman busybox-static`).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from podman_sandbox import Sandbox, nvidia_nodes, podman_sandbox

HOOK_NAME = "nvidia-cdi-hook"

SHOW = (
    "ls -ln /dev/ | grep nvidia; ls -ln /dev/nvidia-caps 2>/dev/null | grep cap; "
    "env | sort; cat /usr/lib/x86_64-linux-gnu/libcuda.so.550.54.15; "
    "test -x /usr/bin/nvidia-smi && echo smi-ok"
)

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="needs root: mknod and mount namespaces (CI runs as root)"
)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    with podman_sandbox(tmp_path_factory.mktemp("podman")) as box:
        yield box


@dataclass
class Node:
    """A generated spec over a driver root with real device nodes."""

    spec_dir: Path
    driver_root: Path
    hook_log: Path
    text: str


def real_driver_root(profile: str, target: Path) -> Path:
    """The simulator's driver root with real character devices, as `--simulator-root`
    lays it out (`cdi.simroot`)."""
    from cdi.simroot import lay_out
    from nvlib.sim import load_profile

    lay_out(str(target), load_profile(profile))
    return target


def run_generate(profile: str, root: Path, hook: Path, output: Path, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "cdi", "generate", "--nvml-mock", profile,
         "--driver-root", str(root), "--nvidia-cdi-hook-path", str(hook),
         "--output", str(output), *args],
        capture_output=True, text=True, timeout=120, check=False,
        env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return output.read_text()


def generate(scratch: Path, profile: str) -> Node:
    root = real_driver_root(profile, scratch / f"driver-{profile}")
    hook_log = scratch / f"hooks-{profile}.log"
    hook = scratch / "bin" / HOOK_NAME
    hook.parent.mkdir(exist_ok=True)
    # Runs in the runtime's namespace with the OCI state on stdin: record argv, drop stdin.
    hook.write_text(f'#!/bin/sh\necho "$0 $*" >> {hook_log}\ncat > /dev/null\n')
    hook.chmod(0o755)
    spec_dir = scratch / f"specs-{profile}"
    text = run_generate(profile, root, hook, spec_dir / "nvidia.yaml")
    return Node(spec_dir, root, hook_log, text)


@pytest.fixture(scope="module")
def dgx(sandbox: Sandbox) -> Iterator[Node]:
    yield generate(sandbox.scratch, "dgx-a100")


@pytest.fixture(scope="module")
def dgx_mig(sandbox: Sandbox) -> Iterator[Node]:
    yield generate(sandbox.scratch, "dgx-a100-mig")


@pytest.fixture(scope="module")
def gb200(sandbox: Sandbox) -> Iterator[Node]:
    """nvidia.yaml plus `--mode imex`'s nvidia-imex.yaml in one directory, as the
    gpu-operator lays them out; `--mode management` in a directory of its own."""
    node = generate(sandbox.scratch, "gb200")
    hook = sandbox.scratch / "bin" / HOOK_NAME
    imex = run_generate(
        "gb200", node.driver_root, hook, node.spec_dir / "nvidia-imex.yaml", "--mode", "imex"
    )
    assert imex.startswith("---\ncdiVersion: 0.5.0\nkind: nvidia.com/imex-channel\n")
    management = sandbox.scratch / "specs-gb200-management" / "nvidia-management.yaml"
    run_generate("gb200", node.driver_root, hook, management, "--mode", "management")
    yield node


def test_spec_is_what_podman_4_3_reads(dgx: Node) -> None:
    assert dgx.text.startswith("---\ncdiVersion: 0.5.0\n")  # the highest podman 4.3 knows
    assert "additionalGids" not in dgx.text and "annotations" not in dgx.text


def test_one_gpu_by_index(sandbox: Sandbox, dgx: Node) -> None:
    dgx.hook_log.unlink(missing_ok=True)
    result = sandbox.podman(
        dgx.spec_dir, "--device", "nvidia.com/gpu=0", "--rootfs", str(sandbox.rootfs),
        "/bin/sh", "-c", SHOW,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    nodes = nvidia_nodes(result.stdout)
    assert nodes == {
        "nvidia0": "195, 0",
        "nvidia-modeset": "195, 254",
        "nvidia-uvm": nodes["nvidia-uvm"],
        "nvidia-uvm-tools": nodes["nvidia-uvm-tools"],
        "nvidiactl": "195, 255",
    }
    assert "NVIDIA_VISIBLE_DEVICES=void" in result.stdout
    assert "NVIDIA_CTK_LIBCUDA_DIR=/usr/lib/x86_64-linux-gnu" in result.stdout
    assert "nvlib.sim placeholder for libcuda.so.550.54.15" in result.stdout  # mounted library
    assert "smi-ok" in result.stdout
    hooks = dgx.hook_log.read_text().splitlines()
    assert [h.split()[1] for h in hooks] == [
        "create-symlinks",
        "create-symlinks",
        "enable-cuda-compat",
        "update-ldcache",
        "disable-device-node-modification",
        "update-application-profile",
    ]
    # A script's $0 is its path (the kernel's #! loses argv[0]); args[0] is unit-tested.
    assert all(h.startswith(f"{sandbox.scratch}/bin/{HOOK_NAME} ") for h in hooks)
    assert "update-ldcache --folder /usr/lib/x86_64-linux-gnu" in dgx.hook_log.read_text()


def test_one_gpu_by_uuid(sandbox: Sandbox, dgx: Node) -> None:
    from cdi.load import parse_spec

    spec, _ = parse_spec(dgx.text)
    assert spec is not None
    uuid = next(  # the UUID-named entry of GPU 0: the one with /dev/nvidia0
        d.name
        for d in spec.devices
        if d.name.startswith("GPU-") and d.container_edits.device_nodes[0].path == "/dev/nvidia0"
    )
    result = sandbox.podman(
        dgx.spec_dir, "--device", f"nvidia.com/gpu={uuid}", "--rootfs", str(sandbox.rootfs),
        "/bin/sh", "-c", "ls /dev",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    gpus = sorted(n for n in result.stdout.split() if n.startswith("nvidia") and n[6:].isdigit())
    assert gpus == ["nvidia0"]


def test_all_gpus(sandbox: Sandbox, dgx: Node) -> None:
    result = sandbox.podman(
        dgx.spec_dir, "--device", "nvidia.com/gpu=all", "--rootfs", str(sandbox.rootfs),
        "/bin/sh", "-c", SHOW,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    nodes = nvidia_nodes(result.stdout)
    assert {f"nvidia{i}": f"195, {i}" for i in range(8)}.items() <= nodes.items()


def test_mig_device(sandbox: Sandbox, dgx_mig: Node) -> None:
    result = sandbox.podman(
        dgx_mig.spec_dir, "--device", "nvidia.com/gpu=0:1", "--rootfs", str(sandbox.rootfs),
        "/bin/sh", "-c", SHOW,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    nodes = nvidia_nodes(result.stdout)
    assert nodes["nvidia0"] == "195, 0" and "nvidia1" not in nodes
    caps = [line.split()[-1] for line in result.stdout.splitlines() if line.startswith("c")]
    caps = [c for c in caps if c.startswith("nvidia-cap")]
    assert len(caps) == 2, result.stdout  # the GI and the CI access capabilities


def test_every_device_of_the_spec_resolves(sandbox: Sandbox, dgx: Node, dgx_mig: Node) -> None:
    """Every name the spec defines, in one `podman run`: 126 would list the unresolvable.

    Podman resolves CDI devices when the container is initialised (`create` alone does
    not). At debug level it logs why a spec did not load, but a debug run waits ~20 s
    for conmon here, so debug is used only to explain a failure.
    """
    from cdi.load import parse_spec

    for node in (dgx, dgx_mig):
        spec, _ = parse_spec(node.text)
        assert spec is not None
        devices = [arg for d in spec.devices for arg in ("--device", f"{spec.kind}={d.name}")]
        result = sandbox.podman(
            node.spec_dir, *devices, "--rootfs", str(sandbox.rootfs), "/bin/true"
        )
        assert result.returncode == 0, sandbox.explain(node.spec_dir, result)


def test_a_needlessly_higher_version_breaks_podman_4_3(sandbox: Sandbox, dgx: Node) -> None:
    """Why the generator writes the lowest version: the same spec at 0.6.0 is refused."""
    higher = sandbox.scratch / "specs-higher"
    higher.mkdir(exist_ok=True)
    text = dgx.text.replace("cdiVersion: 0.5.0", "cdiVersion: 0.6.0", 1)
    (higher / "nvidia.yaml").write_text(text)
    result = sandbox.podman(
        higher, "--device", "nvidia.com/gpu=0", "--rootfs", str(sandbox.rootfs), "/bin/true"
    )
    assert result.returncode == 126
    assert "unresolvable CDI devices nvidia.com/gpu=0" in result.stderr
    assert 'invalid version \\"0.6.0\\"' in sandbox.explain(higher, result)


IMEX_SHOW = "ls -ln /dev/nvidia-caps-imex-channels; ls -ln /dev | grep nvidia; env | sort"


def imex_major() -> int:
    from nvlib import sim

    with sim.activate("gb200") as simulation:
        return simulation.device_nodes["dev/nvidia-caps-imex-channels/channel0"][0]


@pytest.mark.parametrize(
    ("devices", "gpu"),
    [
        pytest.param(["nvidia.com/imex-channel=0"], False, id="channel-alone"),
        pytest.param(["nvidia.com/gpu=0", "nvidia.com/imex-channel=0"], True, id="with-a-gpu"),
        pytest.param(["nvidia.com/imex-channel=all"], False, id="all-channels"),
    ],
)
def test_imex_channel(sandbox: Sandbox, gb200: Node, devices: list[str], gpu: bool) -> None:
    """What the device plugin hands out with IMEX channels on (docs/cdi.md#modes)."""
    args = [arg for d in devices for arg in ("--device", d)]
    result = sandbox.podman(
        gb200.spec_dir, *args, "--rootfs", str(sandbox.rootfs), "/bin/sh", "-c", IMEX_SHOW
    )
    assert result.returncode == 0, sandbox.explain(gb200.spec_dir, result)
    channels = [line.split() for line in result.stdout.splitlines() if line.endswith(" channel0")]
    assert len(channels) == 1 and channels[0][0].startswith("crw-rw-rw-"), result.stdout
    assert channels[0][4:6] == [f"{imex_major()},", "0"]
    assert ("nvidia0" in nvidia_nodes(result.stdout)) == gpu
    assert "NVIDIA_VISIBLE_DEVICES=void" in result.stdout


def test_management_all(sandbox: Sandbox, gb200: Node) -> None:
    spec_dir = sandbox.scratch / "specs-gb200-management"
    result = sandbox.podman(
        spec_dir, "--device", "management.nvidia.com/gpu=all", "--rootfs", str(sandbox.rootfs),
        "/bin/sh", "-c", IMEX_SHOW + "; test -x /usr/bin/nvidia-smi && echo smi-ok",
    )  # fmt: skip
    assert result.returncode == 0, sandbox.explain(spec_dir, result)
    nodes = nvidia_nodes(result.stdout)
    assert {f"nvidia{i}" for i in range(4)} | {"nvidiactl", "nvidia-uvm"} <= nodes.keys()
    assert any(line.endswith(" channel0") for line in result.stdout.splitlines())
    assert "smi-ok" in result.stdout
