"""The host tree an activated profile writes: sysfs, DMI, procfs and the driver root.

Matrix: PCI devices of a DGX (GPUs and NVSwitch bridges: vendor, device, class, NUMA
node, 256-byte config); the vGPU guest's vendor capability walked as docs/labels.md#vgpu
says, and its absence elsewhere; DMI product names; mig-minors and the capability files
of MIG instances; placeholder device nodes and their majors and minors; driver libraries,
firmware, binaries, config files and sockets; who removes the tree.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from nvlib import sim

DEVICES = "sys/bus/pci/devices"


@pytest.fixture
def dgx() -> Iterator[sim.Simulation]:
    with sim.activate("dgx-a100-mig") as simulation:
        yield simulation


def vendor_capability(config: bytes) -> bytes:
    """Walk the capability list for id 0x09, stopping on a loop or 0xff."""
    if not config[0x06] & 0x10:
        return b""
    pos, seen = config[0x34], set()
    while pos and pos not in seen and config[pos] != 0xFF:
        seen.add(pos)
        if config[pos] == 0x09:
            return config[pos : pos + config[pos + 2]]
        pos = config[pos + 1]
    return b""


def host_driver(capability: bytes) -> tuple[str, str]:
    pos = 5
    while capability[pos] != 0:
        pos += capability[pos + 1]
    start = pos + 2
    version = capability[start : start + 10].split(b"\0")[0].decode()
    branch = capability[start + 10 : start + 20].split(b"\0")[0].decode()
    return version, branch


def read(root: Path, path: str) -> str:
    return (root / path).read_text()


def test_dgx_pci_devices(dgx: sim.Simulation) -> None:
    devices = dgx.root / DEVICES
    gpus = [
        "0000:07:00.0",
        "0000:0f:00.0",
        "0000:47:00.0",
        "0000:4e:00.0",
        "0000:87:00.0",
        "0000:90:00.0",
        "0000:b7:00.0",
        "0000:bd:00.0",
    ]
    switches = [f"0000:c{n}:00.0" for n in range(4, 10)]
    assert sorted(p.name for p in devices.iterdir()) == sorted(["0000:00:00.0", *gpus, *switches])
    for i, bus in enumerate(gpus):
        assert read(devices, f"{bus}/vendor") == "0x10de\n"
        assert read(devices, f"{bus}/device") == "0x20b0\n"
        assert read(devices, f"{bus}/class") == "0x030200\n"
        assert read(devices, f"{bus}/numa_node") == f"{i // 4}\n"
        config = (devices / bus / "config").read_bytes()
        assert len(config) == 256
        assert config[:4] == bytes.fromhex("de10b020")
        assert config[0x09:0x0C] == bytes((0x00, 0x02, 0x03))
        assert vendor_capability(config) == b""
    for bus in switches:
        assert read(devices, f"{bus}/class") == "0x068000\n"
        assert read(devices, f"{bus}/device") == "0x1af1\n"
        assert len((devices / bus / "config").read_bytes()) == 256
    assert read(devices, "0000:00:00.0/vendor") == "0x8086\n"


def test_vgpu_guest_capability() -> None:
    with sim.activate("vgpu") as simulation:
        config = (simulation.root / DEVICES / "0000:02:00.0" / "config").read_bytes()
    assert len(config) == 256
    capability = vendor_capability(config)
    assert len(capability) == 27
    assert capability[3:5] == b"VF"
    assert host_driver(capability) == ("535.161.05", "r535_00")


@pytest.mark.parametrize(
    ("profile", "product"),
    [
        pytest.param("dgx-a100", "NVIDIA DGX A100", id="dgx-a100"),
        pytest.param("dgx-a100-mig", "NVIDIA DGX A100", id="dgx-a100-mig"),
        pytest.param("dgx-h100", "NVIDIA DGX H100", id="dgx-h100"),
    ],
)
def test_dmi_product_name(profile: str, product: str) -> None:
    with sim.activate(profile) as simulation:
        assert read(simulation.root, "sys/class/dmi/id/product_name") == product + "\n"


@pytest.mark.parametrize("profile", sim.BUILTIN_PROFILES)
def test_every_profile_has_a_machine_and_readable_pci_config(profile: str) -> None:
    with sim.activate(profile) as simulation:
        assert read(simulation.root, "sys/class/dmi/id/product_name").strip()
        for device in (simulation.root / DEVICES).iterdir():
            assert len((device / "config").read_bytes()) >= 256
            has_vgpu = vendor_capability((device / "config").read_bytes())[3:5] == b"VF"
            assert has_vgpu == (profile == "vgpu" and device.name == "0000:02:00.0")


def test_mig_minors_and_capabilities(dgx: sim.Simulation) -> None:
    lines = read(dgx.root, "proc/driver/nvidia-caps/mig-minors").splitlines()
    assert lines[:4] == ["config 1", "monitor 2", "gpu0/gi0/access 3", "gpu0/gi0/ci0/access 4"]
    minors = dict(line.rsplit(" ", 1) for line in lines)
    assert len(minors) == 2 + 8 * 15 * 9
    assert minors["gpu7/gi14/ci7/access"] == str(2 + 8 * 15 * 9)
    # gpu0 holds GIs 2 (3g.20gb), 3 (2g.10gb), 9 and 10 (1g.5gb), each with CI 0
    caps = dgx.root / "proc/driver/nvidia/capabilities"
    for gi in (2, 3, 9, 10):
        for path in (f"gpu0/gi{gi}/access", f"gpu0/gi{gi}/ci0/access"):
            minor = int(minors[path])
            cap = caps / path.replace(f"gi{gi}", f"mig/gi{gi}")
            assert cap.read_text().splitlines()[0] == f"DeviceFileMinor: {minor}"
            assert dgx.device_nodes[f"dev/nvidia-caps/nvidia-cap{minor}"] == (509, minor)
    assert not (caps / "gpu0/mig/gi1").exists()
    assert (caps / "mig/config").is_file() and (caps / "mig/monitor").is_file()


def test_device_nodes(dgx: sim.Simulation) -> None:
    nodes = dgx.device_nodes
    assert nodes["dev/nvidiactl"] == (195, 255)
    assert nodes["dev/nvidia-modeset"] == (195, 254)
    assert nodes["dev/nvidia-uvm"] == (508, 0)
    assert nodes["dev/nvidia-uvm-tools"] == (508, 1)
    assert [nodes[f"dev/nvidia{i}"] for i in range(8)] == [(195, i) for i in range(8)]
    assert nodes["dev/nvidia-caps/nvidia-cap1"] == (509, 1)
    assert len([n for n in nodes if n.startswith("dev/nvidia-caps/")]) == 2 + 8 * 4 * 2
    for path in nodes:
        node = dgx.driver_root / path
        assert node.is_file() and node.stat().st_size == 0


@pytest.mark.parametrize(
    ("path", "mode"),
    [
        ("dev/nvidiactl", 0o666),
        ("dev/nvidia0", 0o666),
        ("dev/nvidia-uvm", 0o666),
        ("dev/nvidia-caps/nvidia-cap1", 0o400),  # mig/config: DeviceFileMode 256
        ("dev/nvidia-caps/nvidia-cap2", 0o444),  # mig/monitor
    ],
)
def test_device_node_modes_follow_the_driver(path: str, mode: int) -> None:
    with sim.activate("dgx-a100-mig") as simulation:
        assert path in simulation.device_nodes
        node = simulation.driver_root / path
        assert node.stat().st_mode & 0o777 == mode


def test_capability_node_modes_match_proc() -> None:
    """Each capability node's mode is the DeviceFileMode its /proc file states: MIG
    config, monitor, and every GPU and compute instance's access file."""
    with sim.activate("dgx-a100-mig") as simulation:
        caps = simulation.root / "proc/driver/nvidia/capabilities"
        checked = 0
        for access in caps.rglob("*"):
            if not access.is_file():
                continue
            fields = dict(line.split(": ") for line in access.read_text().splitlines())
            node = simulation.driver_root / f"dev/nvidia-caps/nvidia-cap{fields['DeviceFileMinor']}"
            assert node.stat().st_mode & 0o777 == int(fields["DeviceFileMode"]), access
            checked += 1
        assert checked == 2 + 8 * 4 * 2


def test_driver_root_files() -> None:
    with sim.activate("t4") as simulation:
        d = simulation.driver_root
        libs = d / "usr/lib/x86_64-linux-gnu"
        versioned = sorted(p.name for p in libs.rglob("*.so.550.54.15"))
        assert len(versioned) >= 30
        for name in (
            "libcuda",
            "libnvidia-ml",
            "libnvidia-ptxjitcompiler",
            "libnvidia-opencl",
            "libGLX_nvidia",
            "libEGL_nvidia",
            "libnvidia-glcore",
            "libnvcuvid",
            "libnvidia-encode",
        ):
            assert f"{name}.so.550.54.15" in versioned
        assert os.readlink(libs / "libcuda.so.1") == "libcuda.so.550.54.15"
        assert os.readlink(libs / "libcuda.so") == "libcuda.so.1"
        assert (libs / "libnvidia-ml.so.1").resolve().name == "libnvidia-ml.so.550.54.15"
        assert (libs / "vdpau/libvdpau_nvidia.so.550.54.15").is_file()
        assert len(list(libs.rglob("*.so*"))) >= 60
        assert (d / "lib/firmware/nvidia/550.54.15/gsp_ga10x.bin").is_file()
        for binary in (
            "nvidia-smi",
            "nvidia-debugdump",
            "nvidia-persistenced",
            "nvidia-cuda-mps-control",
            "nvidia-cuda-mps-server",
        ):
            assert os.access(d / "usr/bin" / binary, os.X_OK)
        assert (d / "etc/vulkan/icd.d/nvidia_icd.json").is_file()
        assert (d / "usr/share/glvnd/egl_vendor.d/10_nvidia.json").is_file()
        assert (d / "run/nvidia-persistenced/socket").exists()
        assert not (d / "run/nvidia-fabricmanager/socket").exists()  # no NVSwitch
        assert "550.54.15" in read(simulation.root, "proc/driver/nvidia/version")


def test_no_gpu_keeps_the_control_nodes() -> None:
    with sim.activate("no-gpu") as simulation:
        assert sorted(simulation.device_nodes) == [
            "dev/nvidia-modeset",
            "dev/nvidia-uvm",
            "dev/nvidia-uvm-tools",
            "dev/nvidiactl",
        ]
        assert read(simulation.root, "proc/driver/nvidia-caps/mig-minors") == (
            "config 1\nmonitor 2\n"
        )


def test_tree_lifetime(tmp_path: Path) -> None:
    with sim.activate("t4") as simulation:
        temporary = simulation.root
        assert temporary.is_dir()
    assert not temporary.exists()
    with sim.activate("t4", root=tmp_path / "given"):
        pass
    assert (tmp_path / "given" / DEVICES / "0000:00:1e.0" / "class").is_file()
