"""The plugin's IMEX CDI name resolves against the spec `generate --mode imex` writes.

With IMEX channels configured and a CDI strategy, every Allocate answer carries
`nvidia.com/imex-channel=<id>`; the plugin's own spec file holds only `nvidia.com/gpu`
names, so an engine can resolve the channel only if a spec of kind
`nvidia.com/imex-channel` exists: the one `nvidia-cdi generate --mode imex` writes beside
`nvidia.yaml` (docs/cdi.md#modes). Both sides run here as in production: the spec through
the generator's command path on the simulated `gb200` (channel 0), the names through the
plugin's own server wiring (`plugins._server`) and its gRPC `Allocate`, then CDI's
resolution rules (`cdi.load_specs`). Matrix: both CDI strategies; a spec directory
without the imex spec (the name is then undefined).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cdi import load_specs, run
from cdi.cli import GenerateSettings, parse
from deviceplugin.allocate import AllocateOptions
from deviceplugin.devices import Device, Resource
from deviceplugin.plugins import _server
from deviceplugin.v1beta1 import api_pb2
from nvlib import mock

GPU = "GPU-aaaaaaaa-0000-0000-0000-000000000000"
RESOURCE = Resource("nvidia.com/gpu", (Device(GPU, "0", 0, GPU, ("/dev/nvidia0",)),))


@pytest.fixture
def spec_dir(tmp_path: Path) -> Iterator[Path]:
    """`/var/run/cdi` with `nvidia-imex.yaml` from `generate --mode imex` (gb200)."""
    out = tmp_path / "run-cdi" / "nvidia-imex.yaml"
    settings = parse(["generate", "--nvml-mock", "gb200", "--mode", "imex", "--output", str(out)])
    assert isinstance(settings, GenerateSettings)
    try:
        assert run.generate_once(settings) == 0
    finally:
        mock.release()
    yield out.parent


def allocated_names(strategies: tuple[str, ...], tmp_path: Path) -> list[str]:
    options = AllocateOptions(strategies=strategies, imex_channels=("0",))
    server = _server(RESOURCE, options, None, "best-effort", tmp_path)
    request = api_pb2.AllocateRequest(
        container_requests=[api_pb2.ContainerAllocateRequest(devices_ids=[GPU])]
    )
    (answer,) = server.Allocate(request, None).container_responses  # type: ignore[arg-type]
    names = [d.name for d in answer.cdi_devices]
    for value in answer.annotations.values():
        names += value.split(",")
    return names


@pytest.mark.parametrize("strategies", [("cdi-cri",), ("cdi-annotations",)], ids=str)
def test_imex_name_resolves(spec_dir: Path, tmp_path: Path, strategies: tuple[str, ...]) -> None:
    names = allocated_names(strategies, tmp_path)
    imex_names = [n for n in names if n.startswith("nvidia.com/imex-channel=")]
    assert imex_names == ["nvidia.com/imex-channel=0"]
    registry = load_specs([str(tmp_path / "etc-cdi"), str(spec_dir)])
    assert registry.errors == []
    assert all(registry.defines(n) for n in imex_names)
    spec = registry.devices[imex_names[0]].spec
    assert spec is not None
    (device,) = [d for d in spec.devices if d.name == "0"]
    (node,) = device.container_edits.device_nodes
    assert node.path == "/dev/nvidia-caps-imex-channels/channel0"


def test_without_the_imex_spec_the_name_is_undefined(tmp_path: Path) -> None:
    (name,) = [n for n in allocated_names(("cdi-cri",), tmp_path) if "imex" in n]
    assert not load_specs([str(tmp_path / "empty")]).defines(name)
