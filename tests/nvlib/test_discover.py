"""nvlib.discover over the simulator: the model each built-in machine yields, and the
per-call NVML policy (NotSupported is absence; other failures name what was asked).

Matrix: every built-in profile's model facts; MIG profile naming through the GI/CI
profile tables (asked per GPU, not per device, and failing on the GPU that fails them),
and the NVML calls a dgx-a100-mig pass may make; fabric; vGPU config space (and no
scan when not asked for); tolerated failures (memory info, PCI class, machine type) and
fatal ones (compute capability, MIG mode, fabric, GPU lost, NVML init); the contract
that labels of every profile are valid and deterministic.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from raw_labels import assert_valid_and_none_dropped

from gfd.labels import compute_labels
from nvlib import host, sim
from nvlib.config import Config
from nvlib.discover import DiscoveryError, discover, mig_memory_gb
from nvlib.model import Machine
from nvlib.nvml import NvmlInitError


@pytest.fixture
def simulate() -> Iterator:
    active: list = []

    def start(profile: str | Path):
        simulation = sim.activate(profile)
        active.append(simulation)
        return simulation

    yield start
    for simulation in active:
        simulation.deactivate()


def discover_in(simulation) -> Machine:  # type: ignore[no-untyped-def]
    dmi = str(host.in_root(simulation.root, host.DEFAULT_MACHINE_TYPE_FILE))
    return discover(simulation.root, dmi)


@pytest.mark.parametrize(
    ("profile", "count", "name", "memory_mib", "cc", "driver", "cuda"),
    [
        ("dgx-a100", 8, "NVIDIA A100-SXM4-40GB", 40960, (8, 0), "550.54.15", 12040),
        ("dgx-a100-mig", 8, "NVIDIA A100-SXM4-40GB", 40960, (8, 0), "550.54.15", 12040),
        ("dgx-h100", 8, "NVIDIA H100 80GB HBM3", 81559, (9, 0), "550.54.15", 12040),
        ("gb200", 4, "NVIDIA GB200", 189471, (10, 0), "570.124.06", 12080),
        ("t4", 1, "Tesla T4", 15360, (7, 5), "550.54.15", 12040),
        ("l40s", 2, "NVIDIA L40S", 46068, (8, 9), "550.54.15", 12040),
        ("vgpu", 1, "NVIDIA A100-SXM4-40GB", 40960, (8, 0), "550.54.15", 12040),
    ],
)
def test_builtin_machine_facts(simulate, profile, count, name, memory_mib, cc, driver, cuda):
    machine = discover_in(simulate(profile))
    assert (machine.driver_version, machine.cuda_driver_version) == (driver, cuda)
    assert len(machine.gpus) == count
    for index, gpu in enumerate(machine.gpus):
        assert (gpu.index, gpu.minor, gpu.name) == (index, index, name)
        assert gpu.memory_mib == memory_mib
        assert (gpu.compute_major, gpu.compute_minor) == cc
        assert gpu.uuid.startswith("GPU-")
    assert len({gpu.uuid for gpu in machine.gpus}) == count


def test_uuids_are_stable(simulate) -> None:
    first = [gpu.uuid for gpu in discover_in(simulate("dgx-a100")).gpus]
    second = [gpu.uuid for gpu in discover_in(simulate("dgx-a100")).gpus]
    assert first == second


def test_dgx_a100_mig_layout(simulate) -> None:
    machine = discover_in(simulate("dgx-a100-mig"))
    for gpu in machine.gpus:
        assert gpu.mig_capable and gpu.mig_enabled
        assert [m.profile for m in gpu.mig_devices] == ["3g.20gb", "2g.10gb", "1g.5gb", "1g.5gb"]
        three, two, one, _ = gpu.mig_devices
        assert (three.memory_mib, three.multiprocessors, three.decoders) == (19968, 42, 2)
        assert (two.memory_mib, two.gi_slices, two.copy_engines) == (9856, 2, 2)
        assert (one.memory_mib, one.multiprocessors, one.ofas) == (4864, 14, 0)
        assert all(m.uuid.startswith("MIG-") for m in gpu.mig_devices)


def test_pcie_and_mode_facts(simulate) -> None:
    dgx = discover_in(simulate("dgx-a100"))
    assert [g.numa_node for g in dgx.gpus] == [0, 0, 0, 0, 1, 1, 1, 1]
    assert {g.pci_class for g in dgx.gpus} == {"0x030200"}
    assert dgx.machine_type == "NVIDIA DGX A100"
    l40s = discover_in(simulate("l40s"))
    assert {g.pci_class for g in l40s.gpus} == {"0x030000"}
    t4 = discover_in(simulate("t4"))
    assert not t4.gpus[0].mig_capable and t4.gpus[0].fabric is None


def test_gb200_fabric(simulate) -> None:
    machine = discover_in(simulate("gb200"))
    fabrics = {gpu.fabric for gpu in machine.gpus}
    assert len(fabrics) == 1
    (fabric,) = fabrics
    assert fabric is not None
    assert fabric.cluster_uuid == "7b968a6d-c8aa-45e1-9e07-e1e51be99c31"
    assert fabric.clique_id == 1


def test_vgpu_config_space(simulate) -> None:
    machine = discover_in(simulate("vgpu"))
    assert machine.vgpu is not None
    assert [(d.host_driver_version, d.host_driver_branch) for d in machine.vgpu.devices] == [
        ("535.161.05", "r535_00")
    ]
    assert discover_in(simulate("dgx-a100")).vgpu is not None
    assert discover_in(simulate("dgx-a100")).vgpu.devices == ()  # type: ignore[union-attr]


def test_short_pci_config_drops_vgpu_facts(simulate, caplog) -> None:  # type: ignore[no-untyped-def]
    """An unprivileged pod reads 64 bytes of config space: no vGPU labels at all."""
    simulation = simulate("t4")
    config = next((simulation.root / host.PCI_DEVICES).glob("*/config"))
    for path in (simulation.root / host.PCI_DEVICES).glob("*/vendor"):
        if path.read_text().strip() == host.NVIDIA_VENDOR:
            config = path.parent / "config"
    config.write_bytes(config.read_bytes()[:64])
    assert discover_in(simulation).vgpu is None
    assert "entire PCI configuration is not read" in caplog.text


def test_without_vgpu_skips_the_pci_scan(simulate, caplog) -> None:  # type: ignore[no-untyped-def]
    """CDI and the plugin ask for no vGPU facts: no scan, so no GFD warning, even unprivileged."""
    simulation = simulate("vgpu")
    for config in (simulation.root / host.PCI_DEVICES).glob("*/config"):
        config.write_bytes(config.read_bytes()[:64])
    machine = discover(simulation.root, "", with_vgpu=False)
    assert machine.vgpu is None
    assert len(machine.gpus) == 1
    assert "PCI configuration" not in caplog.text


def test_no_gpu(simulate) -> None:
    machine = discover_in(simulate("no-gpu"))
    assert machine.gpus == ()
    assert machine.machine_type is None


def test_memory_failure_is_tolerated(simulate, caplog) -> None:  # type: ignore[no-untyped-def]
    simulation = simulate("t4")
    simulation.fail_call("nvmlDeviceGetMemoryInfo", "UNKNOWN", gpu=0)
    machine = discover_in(simulation)
    assert machine.gpus[0].memory_total_bytes is None
    assert "Ignoring error getting memory info for device" in caplog.text


@pytest.mark.parametrize(
    ("call", "message"),
    [
        pytest.param(
            "nvmlDeviceGetCudaComputeCapability",
            "failed to determine CUDA compute capability",
            id="compute-capability",
        ),
        pytest.param("nvmlDeviceGetMigMode", "error getting mig capability", id="mig-mode"),
        pytest.param("nvmlDeviceGetGpuFabricInfoV", "error checking imex capability", id="fabric"),
        pytest.param("nvmlDeviceGetName", "error getting device 0", id="name"),
    ],
)
def test_fatal_nvml_failures(simulate, call: str, message: str) -> None:
    simulation = simulate("dgx-a100")
    simulation.fail_call(call, "UNKNOWN", gpu=0)
    with pytest.raises(DiscoveryError, match=message):
        discover_in(simulation)


def test_not_supported_mig_mode_means_not_capable(simulate) -> None:
    simulation = simulate("dgx-a100")
    simulation.fail_call("nvmlDeviceGetMigMode", "NOT_SUPPORTED")
    assert not any(gpu.mig_capable for gpu in discover_in(simulation).gpus)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        ("nvmlDeviceGetGpuInstanceProfileInfo", "UNKNOWN", "Unknown Error"),
        ("nvmlGpuInstanceGetComputeInstanceProfileInfo", "UNKNOWN", "Unknown Error"),
        ("nvmlDeviceGetGpuInstanceProfileInfo", "NOT_SUPPORTED", "Not Found"),
        ("nvmlGpuInstanceGetComputeInstanceProfileInfo", "INVALID_ARGUMENT", "Not Found"),
    ],
)
def test_mig_profile_query_failure_on_one_gpu(
    simulate, call: str, error: str, message: str
) -> None:
    """Profile answers are kept per parent GPU, so GPU 3's own queries are still asked:
    an error fails the pass, and a profile answered as absent leaves a device unnamed."""
    simulation = simulate("dgx-a100-mig")
    simulation.fail_call(call, error, gpu=3)
    with pytest.raises(DiscoveryError, match=f"error getting MIG device 0 info: {message}"):
        discover_in(simulation)


def _pass_calls(simulation) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """The NVML calls one discovery pass makes."""
    before = simulation.nvml_calls()
    discover_in(simulation)
    after = simulation.nvml_calls()
    return {name: count - before.get(name, 0) for name, count in after.items()}


def test_mig_profile_tables_are_asked_per_gpu_not_per_device(simulate) -> None:
    """dgx-a100-mig: 8 GPUs of 3g.20gb, 2g.10gb, 1g.5gb, 1g.5gb. Naming a device walks the
    GI profile indices up to its own (3g is the third), then that GI's CI profile indices
    up to its own; each answer is asked once per GPU and pass, not once per device."""
    calls = _pass_calls(simulate("dgx-a100-mig"))
    assert calls["nvmlDeviceGetGpuInstanceProfileInfoV"] <= 8 * 3
    assert calls["nvmlGpuInstanceGetComputeInstanceProfileInfoV"] <= 8 * (3 + 2 + 1)
    # The whole pass, so that a new per-device call is a decision: 8 GPUs x 10 calls,
    # 8 x 7 MIG slots, 32 devices x 8 calls, the profile tables above, 5 per session.
    assert sum(calls.values()) <= 469


def test_lost_gpu_fails_the_pass(simulate) -> None:
    simulation = simulate("dgx-a100")
    simulation.fall_off_bus(3)
    with pytest.raises(DiscoveryError, match="device 3"):
        discover_in(simulation)
    simulation.recover(3)
    assert len(discover_in(simulation).gpus) == 8


def test_init_failure(simulate) -> None:
    simulation = simulate("t4")
    simulation.fail_call("nvmlInit", "DRIVER_NOT_LOADED")
    with pytest.raises(NvmlInitError):
        discover_in(simulation)
    assert discover(simulation.root, with_nvml=False).gpus == ()


def test_profile_file_round_trip(simulate, tmp_path: Path) -> None:
    profile = tmp_path / "lab.yaml"
    profile.write_text(
        "machine: Lab Box\n"
        "gpus:\n"
        "  - model: A100-SXM4-80GB\n"
        "    mig: enabled\n"
        "    mig_devices: [1c.2g.20gb, 1g.10gb+me, 4g.40gb]\n"
    )
    machine = discover_in(simulate(profile))
    assert [m.profile for m in machine.gpus[0].mig_devices] == [
        "1c.2g.20gb",
        "1g.10gb+me",
        "4g.40gb",
    ]
    labels = compute_labels(machine, _mixed())
    assert labels["nvidia.com/mig-1g.10gb.me.count"] == "1"
    assert labels["nvidia.com/mig-1c.2g.20gb.product"] == "NVIDIA-A100-SXM4-80GB-MIG-1c.2g.20gb"


def _mixed() -> Config:
    config = Config()
    config.flags.mig_strategy = "mixed"
    return config


@pytest.mark.parametrize("profile", sim.BUILTIN_PROFILES)
@pytest.mark.parametrize("strategy", ["none", "single", "mixed"])
def test_labels_of_every_profile_are_valid_and_stable(simulate, profile, strategy) -> None:
    """The contract over every built-in machine: valid keys and values, same twice."""
    simulation = simulate(profile)
    config = Config()
    config.flags.mig_strategy = strategy
    first = compute_labels(discover_in(simulation), config, 1)
    second = compute_labels(discover_in(simulation), config, 1)
    assert first == second
    # compute_labels drops invalid labels: check what the labelers produced, before that
    assert_valid_and_none_dropped(discover_in(simulation), config)


@pytest.mark.parametrize(
    ("memory_mib", "total_mib", "gb"),
    [
        (4864, 40960, 5),
        (9856, 40960, 10),
        (19968, 40960, 20),
        (40192, 40960, 40),
        (9856, 81920, 10),
        (19968, 81920, 20),
        (40192, 81920, 40),
        (80384, 81920, 80),
    ],
)
def test_mig_memory_gb(memory_mib: int, total_mib: int, gb: int) -> None:
    """docs/labels.md#mig-strategies-and-profile-names, with Go's round-half-away-from-zero."""
    assert mig_memory_gb(memory_mib, total_mib * 1024 * 1024) == gb
