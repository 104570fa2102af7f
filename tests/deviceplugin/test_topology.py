"""nvlib/topology.py on the simulator, and the scores the plugin derives from it.

Matrix: DGX A100 (PCIe levels per switch and NUMA node; NVLinks end at NVSwitches, so
no direct GPU-to-GPU link is counted, as go-gpuallocator counts them), a PCIe node, a
one-GPU node, and a GPU whose queries fail (kept out, the others still read).
"""

from __future__ import annotations

import pynvml
import pytest

from deviceplugin.plugins import scorer
from nvlib import sim
from nvlib.discover import discover
from nvlib.topology import GpuPair, Topology, read_topology


def topology_of(profile: str) -> Topology:
    with sim.activate(profile) as simulation:
        return read_topology(discover(simulation.root, "").gpus)


def test_dgx_a100_levels() -> None:
    topology = topology_of("dgx-a100")
    assert len(topology.pairs) == 28
    assert topology.pair(1, 0) == GpuPair(0, 1, pynvml.NVML_TOPOLOGY_MULTIPLE, 0)
    assert topology.pair(0, 2) == GpuPair(0, 2, pynvml.NVML_TOPOLOGY_NODE, 0)
    assert topology.pair(3, 4) == GpuPair(3, 4, pynvml.NVML_TOPOLOGY_SYSTEM, 0)
    assert topology.unreadable == ()


@pytest.mark.parametrize(
    ("profile", "pairs"),
    [
        pytest.param("t4", [], id="one-gpu"),
        pytest.param("l40s", [GpuPair(0, 1, pynvml.NVML_TOPOLOGY_SYSTEM, 0)], id="pcie"),
    ],
)
def test_small_nodes(profile: str, pairs: list[GpuPair]) -> None:
    assert list(topology_of(profile).pairs) == pairs


def test_a_failing_gpu_is_left_out() -> None:
    with sim.activate("dgx-a100") as simulation:
        machine = discover(simulation.root, "")
        simulation.fall_off_bus(2)
        topology = read_topology(machine.gpus)
    assert topology.unreadable == (2,)
    assert topology.pair(2, 3) == GpuPair(2, 3, None, 0)
    assert topology.pair(0, 1) == GpuPair(0, 1, pynvml.NVML_TOPOLOGY_MULTIPLE, 0)


def test_scores() -> None:
    score = scorer(Topology((GpuPair(0, 1, pynvml.NVML_TOPOLOGY_SINGLE, 2),)))
    assert score is not None
    assert (score(0, 1), score(1, 0), score(0, 2)) == (250, 250, 0)
    assert scorer(None) is None
