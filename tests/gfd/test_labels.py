"""Label pipeline over hand-built machines: one table per rule of docs/labels.md.

Matrix: a worked example (a DGX A100's whole label map) and its variations (sharing, MIG
single / mixed / INVALID), sanitisation, the 63-character fix, versions, machine type,
multi-model determinism, the family table, mode, clique, vGPU, nodes without GPUs and
the fatal labeler errors (docs/labels.md#how-gfd-computes-the-labels).
"""

from __future__ import annotations

import pytest
from gpu_builders import A100, config, dgx_a100, gpu, machine, with_migs
from raw_labels import assert_valid_and_none_dropped, raw_outputs

from gfd import labels as labels_module
from gfd.labelers.resources import LabelError, family
from gfd.labelers.values import is_valid_value, product, sanitise
from gfd.labels import DEVICE_LABELERS, compute_labels, is_valid_key
from nvlib.config import Config
from nvlib.model import Fabric, Machine, VGpuDevice, VGpuInfo

WORKED_EXAMPLE = {
    "nvidia.com/cuda.driver-version.full": "550.54.15",
    "nvidia.com/cuda.driver-version.major": "550",
    "nvidia.com/cuda.driver-version.minor": "54",
    "nvidia.com/cuda.driver-version.revision": "15",
    "nvidia.com/cuda.driver.major": "550",
    "nvidia.com/cuda.driver.minor": "54",
    "nvidia.com/cuda.driver.rev": "15",
    "nvidia.com/cuda.runtime-version.full": "12.4",
    "nvidia.com/cuda.runtime-version.major": "12",
    "nvidia.com/cuda.runtime-version.minor": "4",
    "nvidia.com/cuda.runtime.major": "12",
    "nvidia.com/cuda.runtime.minor": "4",
    "nvidia.com/gfd.timestamp": "1764306000",
    "nvidia.com/gpu.compute.major": "8",
    "nvidia.com/gpu.compute.minor": "0",
    "nvidia.com/gpu.count": "8",
    "nvidia.com/gpu.family": "ampere",
    "nvidia.com/gpu.machine": "DGXA100-920-23687-2530-000",
    "nvidia.com/gpu.memory": "40960",
    "nvidia.com/gpu.mode": "compute",
    "nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB",
    "nvidia.com/gpu.replicas": "1",
    "nvidia.com/gpu.sharing-strategy": "none",
    "nvidia.com/mig.capable": "true",
    "nvidia.com/mps.capable": "false",
    "nvidia.com/vgpu.present": "false",
}

TIME_SLICING_4 = """
version: v1
sharing:
  timeSlicing:
    resources:
    - name: nvidia.com/gpu
      replicas: 4
"""
RENAMED_4 = """
version: v1
sharing:
  timeSlicing:
    renameByDefault: true
    resources:
    - name: nvidia.com/gpu
      replicas: 4
"""
MPS_4 = """
version: v1
sharing:
  mps:
    resources:
    - name: nvidia.com/gpu
      replicas: 4
"""
MIG_1G_4 = """
version: v1
sharing:
  timeSlicing:
    resources:
    - name: nvidia.com/mig-1g.5gb
      replicas: 4
"""

MIXED_1G5 = {
    "nvidia.com/mig.strategy": "mixed",
    "nvidia.com/gpu.replicas": "0",
    "nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB",
    "nvidia.com/mig-1g.5gb.count": "56",
    "nvidia.com/mig-1g.5gb.replicas": "1",
    "nvidia.com/mig-1g.5gb.sharing-strategy": "none",
    "nvidia.com/mig-1g.5gb.product": "NVIDIA-A100-SXM4-40GB-MIG-1g.5gb",
    "nvidia.com/mig-1g.5gb.memory": "4864",
    "nvidia.com/mig-1g.5gb.multiprocessors": "14",
    "nvidia.com/mig-1g.5gb.slices.gi": "1",
    "nvidia.com/mig-1g.5gb.slices.ci": "1",
    "nvidia.com/mig-1g.5gb.engines.copy": "1",
    "nvidia.com/mig-1g.5gb.engines.decoder": "0",
    "nvidia.com/mig-1g.5gb.engines.encoder": "0",
    "nvidia.com/mig-1g.5gb.engines.jpeg": "0",
    "nvidia.com/mig-1g.5gb.engines.ofa": "0",
}
SINGLE_1G5 = {
    "nvidia.com/mig.strategy": "single",
    "nvidia.com/gpu.count": "56",
    "nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB-MIG-1g.5gb",
    "nvidia.com/gpu.replicas": "1",
    "nvidia.com/gpu.sharing-strategy": "none",
    "nvidia.com/gpu.memory": "4864",
    "nvidia.com/gpu.multiprocessors": "14",
    "nvidia.com/gpu.slices.gi": "1",
    "nvidia.com/gpu.slices.ci": "1",
    "nvidia.com/gpu.engines.copy": "1",
    "nvidia.com/gpu.engines.decoder": "0",
    "nvidia.com/gpu.engines.encoder": "0",
    "nvidia.com/gpu.engines.jpeg": "0",
    "nvidia.com/gpu.engines.ofa": "0",
}
SEVEN_1G = ("1g.5gb",) * 7


def test_worked_example() -> None:
    """The worked example, byte for byte."""
    assert compute_labels(dgx_a100(), config(), 1764306000) == WORKED_EXAMPLE


def test_labels_are_sorted_and_valid() -> None:
    """Sorted by key; every label each labeler produced is valid, so none was dropped."""
    labels = compute_labels(dgx_a100(), config(), 1)
    assert list(labels) == sorted(labels)
    assert_valid_and_none_dropped(dgx_a100(), config())


@pytest.mark.parametrize("strategy", ["none", "single", "mixed"])
def test_raw_labels_of_a_mig_machine_are_valid(strategy: str) -> None:
    machine_ = with_migs(dgx_a100(), *SEVEN_1G)
    assert_valid_and_none_dropped(machine_, config(mig_strategy=strategy))


def test_an_invalid_raw_label_is_dropped_and_the_raw_check_fails(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Why the checks above read raw output: compute_labels hides an invalid label."""

    def bad_labels(machine: Machine, config: Config) -> dict[str, str]:
        return {"nvidia.com/Bad Key": "x", "nvidia.com/gpu.bad-value": "a b"}

    monkeypatch.setattr(labels_module, "DEVICE_LABELERS", (*DEVICE_LABELERS, bad_labels))
    labels = compute_labels(dgx_a100(), config())
    assert "nvidia.com/Bad Key" not in labels
    assert "nvidia.com/gpu.bad-value" not in labels
    assert "Dropping label that Kubernetes would reject: nvidia.com/Bad Key=x" in caplog.text
    assert raw_outputs(dgx_a100(), config())["bad_labels"]["nvidia.com/Bad Key"] == "x"
    with pytest.raises(AssertionError):
        assert_valid_and_none_dropped(dgx_a100(), config())


@pytest.mark.parametrize(
    ("machine_", "text", "strategy", "changes"),
    [
        pytest.param(
            dgx_a100(),
            TIME_SLICING_4,
            "none",
            {
                "nvidia.com/gpu.replicas": "4",
                "nvidia.com/gpu.sharing-strategy": "time-slicing",
                "nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB-SHARED",
            },
            id="time-slicing-4",
        ),
        pytest.param(
            dgx_a100(),
            RENAMED_4,
            "none",
            {
                "nvidia.com/gpu.replicas": "4",
                "nvidia.com/gpu.sharing-strategy": "time-slicing",
                "nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB",
            },
            id="time-slicing-renamed",
        ),
        pytest.param(
            dgx_a100(),
            MPS_4,
            "none",
            {
                "nvidia.com/gpu.replicas": "4",
                "nvidia.com/gpu.sharing-strategy": "mps",
                "nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB-SHARED",
                "nvidia.com/mps.capable": "true",
            },
            id="mps-4",
        ),
        pytest.param(with_migs(dgx_a100(), *SEVEN_1G), "", "mixed", MIXED_1G5, id="mixed-7x1g.5gb"),
        pytest.param(
            with_migs(dgx_a100(), *SEVEN_1G), "", "single", SINGLE_1G5, id="single-7x1g.5gb"
        ),
        pytest.param(
            with_migs(dgx_a100(), *SEVEN_1G),
            "",
            "none",
            {"nvidia.com/gpu.replicas": "0"},
            id="none-with-mig-enabled",
        ),
        pytest.param(
            with_migs(dgx_a100(), *SEVEN_1G),
            MIG_1G_4,
            "mixed",
            MIXED_1G5
            | {
                "nvidia.com/mig-1g.5gb.replicas": "4",
                "nvidia.com/mig-1g.5gb.sharing-strategy": "time-slicing",
                "nvidia.com/mig-1g.5gb.product": "NVIDIA-A100-SXM4-40GB-MIG-1g.5gb-SHARED",
            },
            id="mixed-shared-mig",
        ),
        pytest.param(
            with_migs(dgx_a100(), *SEVEN_1G),
            MIG_1G_4.replace("mig-1g.5gb", "gpu"),
            "single",
            SINGLE_1G5
            | {
                "nvidia.com/gpu.replicas": "4",
                "nvidia.com/gpu.sharing-strategy": "time-slicing",
                "nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB-MIG-1g.5gb-SHARED",
            },
            id="single-shared",
        ),
        pytest.param(
            machine(*(gpu(i, migs=SEVEN_1G) for i in range(7)), gpu(7)),
            "",
            "single",
            {
                "nvidia.com/mig.strategy": "single",
                "nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB-MIG-INVALID",
                "nvidia.com/gpu.count": "0",
                "nvidia.com/gpu.replicas": "0",
                "nvidia.com/gpu.sharing-strategy": "",
                "nvidia.com/gpu.memory": "0",
            },
            id="single-invalid-mixed-enabled",
        ),
    ],
)
def test_variations(machine_, text: str, strategy: str, changes: dict[str, str]) -> None:
    """Variations: the whole map is the worked example plus the changes."""
    labels = compute_labels(machine_, config(text, strategy), 1764306000)
    expected = WORKED_EXAMPLE | changes
    assert labels == dict(sorted(expected.items()))


@pytest.mark.parametrize(
    ("gpus", "reason"),
    [
        pytest.param(
            (gpu(0, migs=()), gpu(1, migs=("1g.5gb",))),
            "at least one MIG device is enabled but empty",
            id="enabled-but-empty",
        ),
        pytest.param(
            (gpu(0, migs=("1g.5gb",)), gpu(1, migs=("2g.10gb",))),
            "more than one MIG device type present on node",
            id="two-profiles",
        ),
        pytest.param(
            (gpu(0, migs=("1g.5gb",)), gpu(1)),
            "devices with MIG enabled and disable detected",
            id="enabled-and-disabled",
        ),
    ],
)
def test_single_invalid(gpus, reason: str, caplog: pytest.LogCaptureFixture) -> None:
    labels = compute_labels(machine(*gpus), config(mig_strategy="single"))
    assert labels["nvidia.com/gpu.product"] == "NVIDIA-A100-SXM4-40GB-MIG-INVALID"
    assert labels["nvidia.com/gpu.count"] == "0"
    assert labels["nvidia.com/gpu.family"] == "ampere"  # full-GPU labels remain
    assert f"Invalid configuration detected for mig-strategy=single: {reason}" in caplog.text


def test_single_without_mig_enabled_is_like_none() -> None:
    labels = compute_labels(dgx_a100(), config(mig_strategy="single"), 1764306000)
    assert labels == dict(sorted((WORKED_EXAMPLE | {"nvidia.com/mig.strategy": "single"}).items()))


def test_mixed_groups_profiles_in_first_seen_order() -> None:
    m = with_migs(dgx_a100(), "3g.20gb", "2g.10gb", "1g.5gb", "1g.5gb")
    labels = compute_labels(m, config(mig_strategy="mixed"))
    assert labels["nvidia.com/mig-3g.20gb.count"] == "8"
    assert labels["nvidia.com/mig-2g.10gb.count"] == "8"
    assert labels["nvidia.com/mig-1g.5gb.count"] == "16"
    assert labels["nvidia.com/mig-3g.20gb.engines.decoder"] == "2"
    assert "nvidia.com/mig-3g.20gb.family" not in labels  # mixed MIG labels carry no family


def test_mixed_profile_with_plus_becomes_dot() -> None:
    labels = compute_labels(machine(gpu(0, migs=("1g.5gb+me",))), config(mig_strategy="mixed"))
    assert labels["nvidia.com/mig-1g.5gb.me.product"] == "NVIDIA-A100-SXM4-40GB-MIG-1g.5gb.me"


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        pytest.param("a space separated string", "a-space-separated-string", id="spaces"),
        pytest.param("some(thing)else", "somethingelse", id="parentheses"),
        pytest.param("some ( thing )else", "some-thing-else", id="spaced-parentheses"),
        pytest.param("NVIDIA-TITAN-X-(Pascal)", "NVIDIA-TITAN-X-Pascal", id="titan"),
        pytest.param("  input  with multiple   spaces   ", "input-with-multiple-spaces", id="trim"),
        pytest.param("some [ / thing / ]else", "some-thing-else", id="brackets-slashes"),
        pytest.param("some / thing /else", "some-thing-else", id="slashes"),
        pytest.param("some-thing.else_new", "some-thing.else_new", id="unchanged"),
        pytest.param("NVIDIA A100-SXM4-80GB", "NVIDIA-A100-SXM4-80GB", id="a100"),
        pytest.param("NVIDIA DGX-2H", "NVIDIA-DGX-2H", id="dgx-2h"),
    ],
)
def test_sanitise(raw: str, clean: str) -> None:
    assert sanitise(raw) == clean


@pytest.mark.parametrize(
    ("model", "suffixes", "shared", "value"),
    [
        pytest.param("Tesla T4", (), False, "Tesla-T4", id="full"),
        pytest.param("Tesla T4", (), True, "Tesla-T4-SHARED", id="shared"),
        pytest.param(
            "NVIDIA RTX PRO 6000 Blackwell Max-Q Workstation Edition",
            ("MIG", "1g.24gb"),
            False,
            "NVIDIA-RTX-PRO-6000-Blackwell-Max-Q-Workstation-Edi-MIG-1g.24gb",
            id="67-chars-shortened",
        ),
        pytest.param(
            "NVIDIA RTX PRO 6000 Blackwell Max-Q Workstation Edition",
            ("MIG", "1g.24gb"),
            True,
            "NVIDIA-RTX-PRO-6000-Blackwell-Max-Q-Workstat-MIG-1g.24gb-SHARED",
            id="shortened-keeps-shared",
        ),
        pytest.param("(x)", ("MIG", "INVALID"), False, "x-MIG-INVALID", id="tiny"),
        pytest.param("-lead", (), False, "lead", id="bad-leading-char"),
    ],
)
def test_product(model: str, suffixes: tuple[str, ...], shared: bool, value: str) -> None:
    result = product("nvidia.com/gpu.product", model, suffixes, shared)
    assert result == value
    assert is_valid_value(result)


def test_long_machine_type_is_shortened() -> None:
    labels = compute_labels(dgx_a100(machine_type="X" * 70 + " ()"), config())
    assert labels["nvidia.com/gpu.machine"] == "X" * 63


@pytest.mark.parametrize(
    ("machine_type", "value"),
    [
        pytest.param("product-name\n", "product-name", id="newline"),
        pytest.param("NVIDIA DGX-2H", "NVIDIA-DGX-2H", id="spaces"),
        pytest.param(None, "unknown", id="unreadable"),
        pytest.param("", "unknown", id="empty"),
        pytest.param("(((", "unknown", id="nothing-left"),
    ],
)
def test_machine_type(machine_type: str | None, value: str) -> None:
    labels = compute_labels(dgx_a100(machine_type=machine_type), config())
    assert labels["nvidia.com/gpu.machine"] == value


@pytest.mark.parametrize(
    ("driver", "cuda", "expected"),
    [
        pytest.param("550.54.15", 12040, ("550", "54", "15", "12", "4"), id="three-fields"),
        pytest.param("455.06", 11020, ("455", "06", "", "11", "2"), id="two-fields-leading-zero"),
        pytest.param("570.124.06", 12080, ("570", "124", "06", "12", "8"), id="gb200"),
        pytest.param("580.1.2", 12100, ("580", "1", "2", "12", "10"), id="cuda-12.10"),
    ],
)
def test_versions(driver: str, cuda: int, expected: tuple[str, ...]) -> None:
    labels = compute_labels(dgx_a100(driver=driver, cuda=cuda), config())
    major, minor, rev, cuda_major, cuda_minor = expected
    assert labels["nvidia.com/cuda.driver.major"] == major
    assert labels["nvidia.com/cuda.driver-version.minor"] == minor
    assert labels["nvidia.com/cuda.driver.rev"] == rev
    assert labels["nvidia.com/cuda.driver-version.revision"] == rev
    assert labels["nvidia.com/cuda.driver-version.full"] == driver
    assert labels["nvidia.com/cuda.runtime-version.full"] == f"{cuda_major}.{cuda_minor}"


@pytest.mark.parametrize("driver", ["550", "1.2.3.4", ""])
def test_bad_driver_version_fails(driver: str) -> None:
    with pytest.raises(LabelError, match=f'Version "{driver}" does not match format'):
        compute_labels(dgx_a100(driver=driver), config())


@pytest.mark.parametrize(
    ("cc", "name"),
    [
        ((1, 0), "tesla"),
        ((2, 1), "fermi"),
        ((3, 5), "kepler"),
        ((4, 0), "undefined"),
        ((5, 2), "maxwell"),
        ((6, 1), "pascal"),
        ((7, 0), "volta"),
        ((7, 2), "volta"),
        ((7, 5), "turing"),
        ((8, 0), "ampere"),
        ((8, 6), "ampere"),
        ((8, 9), "ada-lovelace"),
        ((9, 0), "hopper"),
        ((10, 0), "blackwell"),
        ((11, 0), "undefined"),
        ((12, 0), "blackwell"),
        ((13, 0), "rubin"),
        ((14, 0), "undefined"),
        ((-1, -1), "undefined"),
    ],
    ids=lambda v: v if isinstance(v, str) else f"{v[0]}.{v[1]}",
)
def test_family(cc: tuple[int, int], name: str) -> None:
    assert family(*cc) == name


def test_cc_major_zero_has_no_architecture_labels() -> None:
    labels = compute_labels(machine(gpu(0, cc=(0, 0))), config())
    assert not {k for k in labels if ".family" in k or ".compute." in k}


@pytest.mark.parametrize("memory", [None, 0], ids=["unreadable", "zero"])
def test_memory_omitted(memory: int | None) -> None:
    labels = compute_labels(machine(gpu(0, memory_bytes=memory)), config())
    assert "nvidia.com/gpu.memory" not in labels


@pytest.mark.parametrize(
    ("gpus", "product_", "count", "memory"),
    [
        pytest.param(
            (
                gpu(0, "Tesla T4", 15360 << 20),
                gpu(1, "Tesla T4", 15360 << 20),
                gpu(2, "NVIDIA A10", 24564 << 20),
            ),
            "Tesla-T4",
            "2",
            "15360",
            id="majority-model",
        ),
        pytest.param(
            (gpu(0, "NVIDIA A10", 24564 << 20), gpu(1, "Tesla T4", 15360 << 20)),
            "NVIDIA-A10",
            "1",
            "24564",
            id="tie-lowest-index",
        ),
        pytest.param(
            (gpu(0, "Tesla T4", 15360 << 20), gpu(1, "NVIDIA A10", 24564 << 20)),
            "Tesla-T4",
            "1",
            "15360",
            id="tie-lowest-index-reversed",
        ),
        pytest.param(
            (gpu(0, "DGX Display", 4 << 30, cc=(8, 6)), *(gpu(i) for i in range(1, 5))),
            "NVIDIA-A100-SXM4-40GB",
            "4",
            "40960",
            id="dgx-station",
        ),
        pytest.param(
            (
                gpu(0, migs=("1g.5gb",)),
                gpu(1, migs=("1g.5gb",)),
                gpu(2, "Tesla T4", 15360 << 20, (7, 5)),
            ),
            "Tesla-T4",
            "1",
            "15360",
            id="non-mig-model-wins",
        ),
    ],
)
def test_multi_model_is_deterministic(gpus, product_: str, count: str, memory: str) -> None:
    """Upstream's winner is random; ours is fixed by preference (docs/labels.md#the-gpus)."""
    results = {tuple(compute_labels(machine(*gpus), config()).items()) for _ in range(5)}
    assert len(results) == 1
    labels = dict(results.pop())
    assert labels["nvidia.com/gpu.product"] == product_
    assert labels["nvidia.com/gpu.count"] == count
    assert labels["nvidia.com/gpu.memory"] == memory


@pytest.mark.parametrize(
    ("classes", "mode"),
    [
        pytest.param(("0x030200",), "compute", id="3d"),
        pytest.param(("0x030000", "0x030000"), "graphics", id="vga"),
        pytest.param(("0x030000", "0x030200"), "unknown", id="mixed"),
        pytest.param(("0x068000",), "unknown", id="bridge"),
        pytest.param(("0x030200", None), "unknown", id="unreadable"),
    ],
)
def test_mode(classes: tuple[str | None, ...], mode: str) -> None:
    gpus = [gpu(i, pci_class=c) for i, c in enumerate(classes)]
    assert compute_labels(machine(*gpus), config())["nvidia.com/gpu.mode"] == mode


def test_mig_enabled_gpu_counts_as_compute() -> None:
    labels = compute_labels(machine(gpu(0, migs=("1g.5gb",), pci_class="0x030000")), config())
    assert labels["nvidia.com/gpu.mode"] == "compute"


CLUSTER = "7b968a6d-c8aa-45e1-9e07-e1e51be99c31"
OTHER = "00000000-0000-0000-0000-000000000001"


@pytest.mark.parametrize(
    ("fabrics", "clique"),
    [
        pytest.param((Fabric(CLUSTER, 1), Fabric(CLUSTER, 1)), f"{CLUSTER}.1", id="unique"),
        pytest.param((Fabric(CLUSTER, 1), None), f"{CLUSTER}.1", id="one-unattached"),
        pytest.param((Fabric(CLUSTER, 1), Fabric(OTHER, 1)), None, id="two-clusters"),
        pytest.param((Fabric(CLUSTER, 1), Fabric(CLUSTER, 2)), None, id="two-cliques"),
        pytest.param((None, None), None, id="not-attached"),
    ],
)
def test_clique(fabrics: tuple[Fabric | None, ...], clique: str | None) -> None:
    gpus = [gpu(i, fabric=f) for i, f in enumerate(fabrics)]
    assert compute_labels(machine(*gpus), config()).get("nvidia.com/gpu.clique") == clique


@pytest.mark.parametrize(
    ("vgpu", "expected"),
    [
        pytest.param(None, {}, id="enumeration-failed"),
        pytest.param(VGpuInfo(), {"nvidia.com/vgpu.present": "false"}, id="none"),
        pytest.param(
            VGpuInfo(
                (
                    VGpuDevice("0000:07:00.0", "460.16", "r460_00"),
                    VGpuDevice("0000:08:00.0", "535.161.05", "r535_00"),
                )
            ),
            {
                "nvidia.com/vgpu.present": "true",
                "nvidia.com/vgpu.host-driver-version": "535.161.05",
                "nvidia.com/vgpu.host-driver-branch": "r535_00",
            },
            id="last-wins",
        ),
    ],
)
def test_vgpu(vgpu: VGpuInfo | None, expected: dict[str, str]) -> None:
    labels = compute_labels(dgx_a100(vgpu=vgpu), config())
    assert {k: v for k, v in labels.items() if k.startswith("nvidia.com/vgpu.")} == expected


def test_no_gpus(caplog: pytest.LogCaptureFixture) -> None:
    """No GPU: the device labelers yield nothing; a bogus strategy passes."""
    labels = compute_labels(machine(), config(mig_strategy="bogus"), 42)
    assert labels == {"nvidia.com/gfd.timestamp": "42", "nvidia.com/vgpu.present": "false"}
    assert compute_labels(machine(vgpu=None), config()) == {}
    assert "No labels generated from any source" in caplog.text


def test_unknown_mig_strategy_fails_with_devices() -> None:
    with pytest.raises(LabelError, match="failed to construct MIG resource labeler: unknown"):
        compute_labels(dgx_a100(), config(mig_strategy="bogus"))


def test_mps_with_mig_enabled_fails() -> None:
    with pytest.raises(LabelError, match="MPS sharing is not supported for mig devices"):
        compute_labels(with_migs(dgx_a100(), "1g.5gb"), config(MPS_4))


@pytest.mark.parametrize(
    ("gpus", "capable"),
    [
        pytest.param((gpu(0, mig_capable=False), gpu(1)), "true", id="any"),
        pytest.param((gpu(0, "Tesla T4", mig_capable=False),), "false", id="none"),
    ],
)
def test_mig_capable(gpus, capable: str) -> None:
    assert compute_labels(machine(*gpus), config())["nvidia.com/mig.capable"] == capable


def test_sharing_entry_for_other_resource_leaves_gpu_unshared() -> None:
    labels = compute_labels(dgx_a100(), config(MIG_1G_4))
    assert labels["nvidia.com/gpu.sharing-strategy"] == "none"
    assert labels["nvidia.com/gpu.replicas"] == "1"


def test_all_labels_use_product_named_a100() -> None:
    assert compute_labels(machine(gpu(0)), config())["nvidia.com/gpu.product"] == (
        A100.replace(" ", "-")
    )


@pytest.mark.parametrize(
    ("key", "valid"),
    [
        pytest.param("nvidia.com/gpu.product", True, id="prefixed"),
        pytest.param("nvidia.com/mig-1g.10gb.me.count", True, id="mig"),
        pytest.param("gpu", True, id="unprefixed"),
        pytest.param("Nvidia.com/gpu", False, id="upper-case-prefix"),
        pytest.param("nvidia..com/gpu", False, id="empty-dns-label"),
        pytest.param("-nvidia.com/gpu", False, id="dns-label-edge"),
        pytest.param("nvidia.com/", False, id="empty-name"),
        pytest.param("nvidia.com/-gpu", False, id="name-edge"),
        pytest.param("nvidia.com/" + "g" * 64, False, id="name-64"),
        pytest.param("nvidia.com/" + "g" * 63, True, id="name-63"),
        pytest.param("a/b/c", False, id="two-slashes"),
    ],
)
def test_is_valid_key(key: str, valid: bool) -> None:
    assert is_valid_key(key) is valid


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        pytest.param("", True, id="empty"),
        pytest.param("a", True, id="one-char"),
        pytest.param("NVIDIA-A100-SXM4-40GB-MIG-1g.5gb", True, id="product"),
        pytest.param("x" * 63, True, id="63"),
        pytest.param("x" * 64, False, id="64"),
        pytest.param("a-", False, id="trailing-dash"),
        pytest.param(".a", False, id="leading-dot"),
        pytest.param("a b", False, id="space"),
        pytest.param("a\n", False, id="trailing-newline"),
        pytest.param("é", False, id="non-ascii"),
        pytest.param("@nvidia.gpu.x", False, id="nfd-lookup"),
    ],
)
def test_is_valid_value(value: str, valid: bool) -> None:
    assert is_valid_value(value) is valid
