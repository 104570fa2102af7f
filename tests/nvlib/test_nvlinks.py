"""nvlib.topology.read_nvlinks on the simulator: what label templates see as `nvlinks`.

Matrix: a DGX (every active link ends at an NVSwitch, not at a GPU), PCIe machines and a
fabric-attached one without NVLink answers (none), and a GPU whose queries fail (left
out, the others still read).
"""

from __future__ import annotations

import pytest

from nvlib import sim
from nvlib.discover import discover
from nvlib.topology import NvLink, read_nvlinks


def test_dgx_a100_links_end_at_nvswitches() -> None:
    with sim.activate("dgx-a100") as simulation:
        links = read_nvlinks(discover(simulation.root, "").gpus)
    assert len(links) == 8 * 12
    assert links[0] == NvLink(gpu=0, link=0, remote_pci_bus_id="0000:c4:00.0", peer=None)
    assert links[11] == NvLink(gpu=0, link=11, remote_pci_bus_id="0000:c9:00.0", peer=None)
    assert [link.gpu for link in links] == sorted(link.gpu for link in links)
    assert all(link.peer is None for link in links)


@pytest.mark.parametrize("profile", ["t4", "l40s", "mixed", "gb200", "no-gpu"])
def test_no_nvlinks(profile: str) -> None:
    with sim.activate(profile) as simulation:
        assert read_nvlinks(discover(simulation.root, "").gpus) == ()


def test_a_failing_gpu_is_left_out(caplog: pytest.LogCaptureFixture) -> None:
    with sim.activate("dgx-a100") as simulation:
        machine = discover(simulation.root, "")
        simulation.fall_off_bus(2)
        links = read_nvlinks(machine.gpus)
    assert sorted({link.gpu for link in links}) == [0, 1, 3, 4, 5, 6, 7]
    assert "NVLinks of GPU 2:" in caplog.text
