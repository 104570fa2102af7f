"""The shipped label templates (`--label-templates builtin`) on every built-in machine.

Matrix: each built-in simulated machine (DESIGN's table) x the three shipped templates,
through the real pipeline: discovery and NVLinks over the simulator beneath pynvml, the
built-in labels, then the templates; MIG strategies on the MIG machine; and the rule
that templates only add (every built-in label is unchanged, none is overridden).
"""

from __future__ import annotations

import pytest

from gfd.labels import compute_labels
from gfd.templating import load_templates
from nvlib import sim
from nvlib.config import Config
from nvlib.discover import discover

NO_NVLINK = {"nvidia.com/gpu.nvlink": "false", "nvidia.com/gpu.fabric": "false"}
NVSWITCH_12 = {
    "nvidia.com/gpu.nvlink": "true",
    "nvidia.com/gpu.nvlink.links": "12",
    "nvidia.com/gpu.nvlink.nvswitch": "true",
    "nvidia.com/gpu.fabric": "false",
}
A100_8 = {
    "nvidia.com/gpu.models": "1",
    "nvidia.com/gpu.count.NVIDIA-A100-SXM4-40GB": "8",
    "nvidia.com/gpu.memory-gib": "40",
    "nvidia.com/gpu.memory-gib.total": "320",
} | NVSWITCH_12

EXPECTED: dict[str, dict[str, str]] = {
    "dgx-a100": A100_8,
    "dgx-a100-mig": A100_8,
    "dgx-h100": {
        "nvidia.com/gpu.models": "1",
        "nvidia.com/gpu.count.NVIDIA-H100-80GB-HBM3": "8",
        # 81559 MiB is 79.6 GiB: the nearest whole GiB is the marketed 80
        "nvidia.com/gpu.memory-gib": "80",
        "nvidia.com/gpu.memory-gib.total": "637",
        "nvidia.com/gpu.nvlink": "true",
        "nvidia.com/gpu.nvlink.links": "18",
        "nvidia.com/gpu.nvlink.nvswitch": "true",
        "nvidia.com/gpu.fabric": "false",
    },
    "gb200": {
        "nvidia.com/gpu.models": "1",
        "nvidia.com/gpu.count.NVIDIA-GB200": "4",
        "nvidia.com/gpu.memory-gib": "185",
        "nvidia.com/gpu.memory-gib.total": "740",
        "nvidia.com/gpu.nvlink": "false",
        "nvidia.com/gpu.fabric": "true",
    },
    "t4": {
        "nvidia.com/gpu.models": "1",
        "nvidia.com/gpu.count.Tesla-T4": "1",
        "nvidia.com/gpu.memory-gib": "15",
        "nvidia.com/gpu.memory-gib.total": "15",
    }
    | NO_NVLINK,
    "l40s": {
        "nvidia.com/gpu.models": "1",
        "nvidia.com/gpu.count.NVIDIA-L40S": "2",
        "nvidia.com/gpu.memory-gib": "45",
        "nvidia.com/gpu.memory-gib.total": "90",
    }
    | NO_NVLINK,
    "mixed": {
        # the A10 the built-in labels cannot show: gpu.product is Tesla-T4, count 2
        "nvidia.com/gpu.models": "2",
        "nvidia.com/gpu.count.Tesla-T4": "2",
        "nvidia.com/gpu.count.NVIDIA-A10": "1",
        "nvidia.com/gpu.memory-gib": "15",  # the smaller model's
        "nvidia.com/gpu.memory-gib.total": "54",
    }
    | NO_NVLINK,
    "vgpu": {
        "nvidia.com/gpu.models": "1",
        "nvidia.com/gpu.count.NVIDIA-A100-SXM4-40GB": "1",
        "nvidia.com/gpu.memory-gib": "40",
        "nvidia.com/gpu.memory-gib.total": "40",
    }
    | NO_NVLINK,
    "no-gpu": {},
}


def label(profile: str, mig_strategy: str = "none") -> tuple[dict[str, str], dict[str, str]]:
    """(built-in labels, labels the shipped templates add) for one built-in machine."""
    config = Config()
    config.flags.mig_strategy = mig_strategy
    templates = load_templates("builtin")
    with sim.activate(profile) as simulation:
        machine = discover(simulation.root, "")
        builtin = compute_labels(machine, config, 0)
        added = templates.labels(machine, config, builtin)
    return builtin, added


def test_every_built_in_machine_has_a_row() -> None:
    assert set(EXPECTED) == set(sim.BUILTIN_PROFILES)


@pytest.mark.parametrize("profile", EXPECTED)
def test_shipped_templates(profile: str, caplog: pytest.LogCaptureFixture) -> None:
    builtin, added = label(profile)
    assert added == EXPECTED[profile]
    assert not set(added) & set(builtin), "templates add labels, never override"
    assert "label template" not in caplog.text, "no shipped template fails"


@pytest.mark.parametrize("strategy", ["single", "mixed"])
def test_shipped_templates_under_mig_strategies(strategy: str) -> None:
    """Whole GPUs, MIG or not: the MIG strategy changes the built-in labels only."""
    builtin, added = label("dgx-a100-mig", strategy)
    assert added == A100_8
    assert builtin["nvidia.com/mig.strategy"] == strategy
