"""The device map: resource names, IDs, indices, paths and errors (docs/deviceplugin.md).

Matrix: MIG strategy none / single / mixed over full-GPU, all-MIG and mixed nodes;
time-slicing with and without renameByDefault; the MIG checks of `single` and
`mixed`; DGX display skipping; the pattern rules; socket names. Pure: hand-built
machines from tests/support/gpu_builders.py, no NVML.
"""

from __future__ import annotations

import gpu_builders as gb
import pytest

from deviceplugin.devices import (
    Resource,
    build_device_map,
    mig_resource_name,
    pattern_matches,
)
from deviceplugin.errors import PluginError
from nvlib.config import Sharing
from nvlib.migcaps import capability_device, gi_capability, parse_mig_minors
from nvlib.model import Machine

NO_SHARING = Sharing()


def minors_for(machine: Machine) -> dict[str, int]:
    """A mig-minors table covering every MIG device, minors counted up from 100."""
    lines = []
    for gpu, mig in machine.mig_devices:
        lines.append(f"gpu{gpu.minor}/gi{mig.gi_id}/access {100 + 10 * gpu.minor + mig.gi_id}")
        lines.append(
            f"gpu{gpu.minor}/gi{mig.gi_id}/ci{mig.ci_id}/access {200 + 10 * gpu.minor + mig.gi_id}"
        )
    return parse_mig_minors("\n".join(lines))


def names(machine: Machine, strategy: str, sharing: Sharing = NO_SHARING) -> dict[str, list[str]]:
    built = build_device_map(machine, strategy, sharing, minors_for(machine))
    return {r.name: [d.id for d in r.devices] for r in built.resources}


def uuid(i: int) -> str:
    return gb.gpu(i).uuid


def mig_uuid(gpu: int, j: int) -> str:
    return gb.mig("1g.5gb", j, gpu).uuid


TWO = gb.machine(gb.gpu(0), gb.gpu(1))
TWO_MIG = gb.machine(
    gb.gpu(0, migs=("3g.20gb", "2g.10gb", "1g.5gb", "1g.5gb")),
    gb.gpu(1, migs=("3g.20gb", "2g.10gb", "1g.5gb", "1g.5gb")),
)
UNIFORM_MIG = gb.machine(gb.gpu(0, migs=("1g.5gb", "1g.5gb")), gb.gpu(1, migs=("1g.5gb",)))
_HALF = gb.gpu(1, migs=("1g.5gb", "1g.10gb", "2g.10gb"))
HALF_MIG = gb.machine(
    gb.gpu(0),
    _HALF._replace(  # a 2g GPU instance with a 1-slice compute instance: profile 1c.2g.10gb
        mig_devices=(*_HALF.mig_devices[:2], _HALF.mig_devices[2]._replace(profile="1c.2g.10gb")),
    ),
)


@pytest.mark.parametrize(
    ("machine", "strategy", "expected"),
    [
        pytest.param(TWO, "none", {"nvidia.com/gpu": [uuid(0), uuid(1)]}, id="gpus-none"),
        pytest.param(TWO, "single", {"nvidia.com/gpu": [uuid(0), uuid(1)]}, id="gpus-single"),
        pytest.param(TWO, "mixed", {"nvidia.com/gpu": [uuid(0), uuid(1)]}, id="gpus-mixed"),
        pytest.param(
            TWO_MIG, "none", {"nvidia.com/gpu": [uuid(0), uuid(1)]}, id="mig-none-whole-gpus"
        ),
        pytest.param(
            UNIFORM_MIG,
            "single",
            {"nvidia.com/gpu": [mig_uuid(0, 0), mig_uuid(0, 1), mig_uuid(1, 0)]},
            id="mig-single",
        ),
        pytest.param(
            TWO_MIG,
            "mixed",
            {
                "nvidia.com/mig-3g.20gb": [mig_uuid(0, 0), mig_uuid(1, 0)],
                "nvidia.com/mig-2g.10gb": [mig_uuid(0, 1), mig_uuid(1, 1)],
                "nvidia.com/mig-1g.5gb": [
                    mig_uuid(0, 2),
                    mig_uuid(0, 3),
                    mig_uuid(1, 2),
                    mig_uuid(1, 3),
                ],
            },
            id="mig-mixed",
        ),
        pytest.param(
            HALF_MIG,
            "mixed",
            {
                "nvidia.com/gpu": [uuid(0)],
                "nvidia.com/mig-1g.5gb": [mig_uuid(1, 0)],
                "nvidia.com/mig-1g.10gb": [mig_uuid(1, 1)],
                "nvidia.com/mig-1c.2g.10gb": [mig_uuid(1, 2)],  # [PROJECT] C != G
            },
            id="mixed-node-mixed",
        ),
    ],
)
def test_resources(machine: Machine, strategy: str, expected: dict[str, list[str]]) -> None:
    assert names(machine, strategy) == expected


@pytest.mark.parametrize(
    ("profile", "resource"),
    [
        pytest.param("1g.5gb", "nvidia.com/mig-1g.5gb", id="plain"),
        pytest.param("7g.40gb", "nvidia.com/mig-7g.40gb", id="whole"),
        pytest.param("1g.10gb+me", "nvidia.com/mig-1g.10gb.me", id="plus-me"),
        pytest.param("1g.24gb-me", "nvidia.com/mig-1g.24gb-me", id="minus-me"),
        pytest.param("1g.24gb+me.all", "nvidia.com/mig-1g.24gb.me.all", id="me-all"),
        pytest.param("1c.2g.10gb", "nvidia.com/mig-1c.2g.10gb", id="c-not-g"),
    ],
)
def test_mig_resource_names(profile: str, resource: str) -> None:
    assert mig_resource_name(profile) == resource


@pytest.mark.parametrize(
    ("pattern", "text", "matches"),
    [
        pytest.param("*", "NVIDIA A100-SXM4-40GB", True, id="star"),
        pytest.param("1g.24gb", "1g.24gb", True, id="literal"),
        pytest.param("1g.24gb", "1g.24gb-me", False, id="anchored-end"),
        pytest.param("1g.24gb", "x1g.24gb", False, id="anchored-start"),
        pytest.param("1g.24gb", "1g.24gb+me.all", False, id="anchored-suffix"),
        pytest.param("*gb", "1g.24gb-me", False, id="star-anchored"),
        pytest.param("1g.?gb", "1g.5gb", False, id="question-mark-literal"),
        pytest.param("*A100*", "NVIDIA A100-SXM4-40GB", True, id="infix"),
    ],
)
def test_patterns(pattern: str, text: str, matches: bool) -> None:
    assert pattern_matches(pattern, text) is matches


def test_indices_paths_and_topology() -> None:
    machine = gb.machine(
        gb.gpu(0)._replace(numa_node=1), gb.gpu(1, migs=("1g.5gb",))._replace(minor=5)
    )
    built = build_device_map(machine, "mixed", NO_SHARING, minors_for(machine))
    gpu, mig = (r.devices[0] for r in built.resources)
    assert (gpu.index, gpu.paths, gpu.numa_node, gpu.mig) == ("0", ("/dev/nvidia0",), 1, None)
    assert gpu.compute_capability == "8.0"
    assert mig.index == "1:0"
    assert mig.gpu_uuid == uuid(1)
    assert mig.mig == (0, 0)
    assert mig.paths == (
        "/dev/nvidia5",
        "/dev/nvidia-caps/nvidia-cap150",
        "/dev/nvidia-caps/nvidia-cap250",
    )
    assert mig.memory_bytes == 4864 * 1024 * 1024


def test_dgx_display_is_skipped_and_indices_kept() -> None:
    machine = gb.machine(
        gb.gpu(0, name="NVIDIA DGX Display"), gb.gpu(1), gb.gpu(2, name="DGX Display")
    )
    built = build_device_map(machine, "none", NO_SHARING, {})
    assert [(d.id, d.index) for d in built.resources[0].devices] == [(uuid(1), "1")]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "sharing: {timeSlicing: {resources: [{name: nvidia.com/gpu, replicas: 2}]}}",
            {"nvidia.com/gpu": [f"{uuid(i)}::{k}" for i in (0, 1) for k in (0, 1)]},
            id="time-slicing",
        ),
        pytest.param(
            "sharing: {timeSlicing: {renameByDefault: true,"
            " resources: [{name: gpu, replicas: 3}]}}",
            {"nvidia.com/gpu.shared": [f"{uuid(i)}::{k}" for i in (0, 1) for k in range(3)]},
            id="rename-by-default",
        ),
        pytest.param(
            "sharing: {timeSlicing: {resources: [{name: nvidia.com/other, replicas: 2}]}}",
            {"nvidia.com/gpu": [uuid(0), uuid(1)]},
            id="unknown-name-skipped",
        ),
        pytest.param(
            "sharing: {timeSlicing: {resources: [{name: gpu, replicas: 2, devices: [0]}]}}",
            {"nvidia.com/gpu": [f"{uuid(i)}::{k}" for i in (0, 1) for k in (0, 1)]},
            id="devices-neutralised-to-all",
        ),
    ],
)
def test_time_slicing(text: str, expected: dict[str, list[str]]) -> None:
    config = gb.config(text)
    assert names(TWO, "none", config.sharing) == expected


def test_replicas_keep_the_device_facts() -> None:
    config = gb.config("sharing: {timeSlicing: {resources: [{name: gpu, replicas: 2}]}}")
    built = build_device_map(TWO, "none", config.sharing, {})
    replica = built.resources[0].devices[3]
    assert (replica.id, replica.base_id, replica.index, replica.replicas) == (
        f"{uuid(1)}::1",
        uuid(1),
        "1",
        2,
    )
    assert replica.paths == ("/dev/nvidia1",)


def test_mig_replicas_in_mixed() -> None:
    config = gb.config(
        "sharing: {timeSlicing: {resources: [{name: nvidia.com/mig-1g.5gb, replicas: 2}]}}"
    )
    assert names(UNIFORM_MIG, "mixed", config.sharing) == {
        "nvidia.com/mig-1g.5gb": [
            f"{mig_uuid(g, j)}::{k}" for g, j in ((0, 0), (0, 1), (1, 0)) for k in (0, 1)
        ]
    }


@pytest.mark.parametrize(
    ("machine", "strategy", "message"),
    [
        pytest.param(
            gb.machine(gb.gpu(0, migs=("1g.5gb",)), gb.gpu(1, migs=())),
            "single",
            "error building device map from config.resources: invalid MIG configuration: at"
            " least one device with migEnabled=true was not configured correctly: device 1"
            " has no MIG devices configured",
            id="single-empty-mig-gpu",
        ),
        pytest.param(
            gb.machine(gb.gpu(0, migs=("1g.5gb", "2g.10gb"))),
            "single",
            "error building device map from config.resources: invalid MIG configuration: more"
            " than one MIG device type present on node",
            id="single-two-types",
        ),
        pytest.param(
            gb.machine(gb.gpu(0), gb.gpu(1, migs=("1g.5gb",))),
            "single",
            "error building device map from config.resources: all devices on the node must be"
            " configured with the same migEnabled value",
            id="single-mixed-node",
        ),
    ],
)
def test_mig_errors(machine: Machine, strategy: str, message: str) -> None:
    with pytest.raises(PluginError) as err:
        build_device_map(machine, strategy, NO_SHARING, minors_for(machine))
    assert str(err.value) == message


def test_mixed_only_warns_on_an_empty_mig_gpu() -> None:
    machine = gb.machine(gb.gpu(0, migs=("1g.5gb",)), gb.gpu(1, migs=()))
    built = build_device_map(machine, "mixed", NO_SHARING, minors_for(machine))
    assert [r.name for r in built.resources] == ["nvidia.com/mig-1g.5gb"]
    assert built.warnings == (
        "invalid MIG configuration: at least one device with migEnabled=true was not"
        " configured correctly: device 1 has no MIG devices configured",
    )


def test_missing_mig_capability_is_an_error() -> None:
    machine = gb.machine(gb.gpu(0, migs=("1g.5gb",)))
    with pytest.raises(PluginError, match="missing MIG GPU instance capability path: "):
        build_device_map(machine, "mixed", NO_SHARING, {})


def test_capability_paths() -> None:
    minors = parse_mig_minors("config 1\nmonitor 2\ngpu3/gi4/access 48\nbogus line\n")
    assert capability_device(minors, gi_capability(3, 4)) == "/dev/nvidia-caps/nvidia-cap48"
    assert capability_device(minors, gi_capability(3, 5)) is None


@pytest.mark.parametrize(
    ("name", "socket"),
    [
        pytest.param("nvidia.com/gpu", "nvidia-gpu.sock", id="gpu"),
        pytest.param("nvidia.com/gpu.shared", "nvidia-gpu.shared.sock", id="shared"),
        pytest.param("nvidia.com/mig-1g.5gb", "nvidia-mig-1g.5gb.sock", id="mig"),
    ],
)
def test_socket_names(name: str, socket: str) -> None:
    assert Resource(name, ()).socket_name == socket
