"""`--device-id`: the devices a spec describes (docs/cdi.md#generate; toolkit lib-nvml.go).

`nvidia-ctk cdi generate --device-id 0` (and its `NVIDIA_CTK_CDI_GENERATE_DEVICE_IDS`)
selects devices by GPU index, `<gpu>:<mig>` index or UUID; `all` is the default and
`none` gives one placeholder device and no `all`. A GPU named explicitly gets a full
entry even with MIG enabled; names still follow the naming strategies.
"""

from __future__ import annotations

import gpu_builders as gb
import pytest

from cdi.cli import parse
from cdi.driverfiles import DeviceNodeInfo, DriverFiles, Library
from cdi.errors import GenerateError
from cdi.generate import GenerateOptions, generate_spec

LIB = "/usr/lib/x86_64-linux-gnu"
V = "550.54.15"

# GPU 0: MIG enabled with two MIG devices (0:0, 0:1); GPU 1: MIG disabled.
MACHINE = gb.machine(gb.gpu(0, migs=("3g.20gb", "1g.5gb")), gb.gpu(1))
GPU0, GPU1 = MACHINE.gpus
MIG00, MIG01 = GPU0.mig_devices


def _files() -> DriverFiles:
    nodes = {
        p: DeviceNodeInfo(p, p, 195, m, 0o666, 0)
        for p, m in (("/dev/nvidiactl", 255), ("/dev/nvidia0", 0), ("/dev/nvidia1", 1))
    }
    path = f"{LIB}/libcuda.so.{V}"
    return DriverFiles(
        driver_root="/",
        dev_root="/",
        version=V,
        lib_dirs=(LIB,),
        libraries=(Library(path, path),),
        device_nodes=nodes,
    )


@pytest.mark.parametrize(
    ("ids", "expected"),
    [
        pytest.param(("all",), ["0:0", "0:1", "1", "all"], id="all-skips-mig-enabled-parent"),
        pytest.param(("1",), ["1", "all"], id="gpu-index"),
        pytest.param(("0",), ["0", "all"], id="mig-enabled-gpu-named-explicitly"),
        pytest.param(("0:1",), ["0:1", "all"], id="mig-index"),
        pytest.param((MIG00.uuid,), ["0:0", "all"], id="mig-uuid"),
        pytest.param((GPU1.uuid, "0:1"), ["0:1", "1", "all"], id="gpu-uuid-and-mig-index"),
        pytest.param(("1", GPU1.uuid), ["1", "all"], id="same-device-twice-once"),
        pytest.param(("1", "all"), ["0:0", "0:1", "1", "all"], id="all-among-ids"),
        pytest.param(("none",), ["none"], id="none"),
        pytest.param(("none", "1"), ["none"], id="first-of-all-or-none-decides"),
    ],
)
def test_device_ids_select_devices(ids: tuple[str, ...], expected: list[str]) -> None:
    options = GenerateOptions(device_name_strategies=("index",), device_ids=ids)
    spec = generate_spec(MACHINE, _files(), options)
    assert [d.name for d in spec.devices] == expected


def test_explicit_gpu_edits_and_names_follow_strategies() -> None:
    options = GenerateOptions(device_name_strategies=("index", "uuid"), device_ids=("0",))
    spec = generate_spec(MACHINE, _files(), options)
    assert [d.name for d in spec.devices] == ["0", GPU0.uuid, "all"]
    nodes = {d.name: [n.path for n in d.container_edits.device_nodes] for d in spec.devices}
    assert nodes == {"0": ["/dev/nvidia0"], GPU0.uuid: ["/dev/nvidia0"], "all": ["/dev/nvidia0"]}


def test_none_device_keeps_common_edits() -> None:
    spec = generate_spec(MACHINE, _files(), GenerateOptions(device_ids=("none",)))
    (none,) = spec.devices
    assert none.container_edits.env == ("NVCT_EMPTY_DEVICE=",)
    assert [n.path for n in spec.container_edits.device_nodes] == ["/dev/nvidiactl"]


@pytest.mark.parametrize(
    ("ids", "message"),
    [
        pytest.param(("9",), 'identifier "9"', id="no-such-index"),
        pytest.param(("1:0",), 'identifier "1:0"', id="no-such-mig"),
        pytest.param(("GPU-ffffffff-0000-0000-0000-000000000000",), "identifier", id="uuid"),
        pytest.param(("gpu0",), 'not a valid UUID or index: "gpu0"', id="not-an-id"),
    ],
)
def test_bad_device_ids(ids: tuple[str, ...], message: str) -> None:
    with pytest.raises(GenerateError, match=message):
        generate_spec(MACHINE, _files(), GenerateOptions(device_ids=ids))


@pytest.mark.parametrize(
    ("argv", "env", "expected"),
    [
        pytest.param([], {}, ("all",), id="default"),
        pytest.param(["--device-id", "0", "--device-id", "1:0"], {}, ("0", "1:0"), id="repeat"),
        pytest.param(["--devices", "0,GPU-x"], {}, ("0", "GPU-x"), id="alias-comma-list"),
        pytest.param([], {"NVIDIA_CTK_CDI_GENERATE_DEVICE_IDS": "none"}, ("none",), id="env"),
        pytest.param(
            ["--device", "1"], {"NVIDIA_CTK_CDI_GENERATE_DEVICE_IDS": "0"}, ("1",),
            id="flag-beats-env",
        ),
    ],
)  # fmt: skip
def test_device_id_flag(argv: list[str], env: dict[str, str], expected: tuple[str, ...]) -> None:
    settings = parse(["generate", *argv], env)
    assert settings.device_ids == expected  # type: ignore[union-attr]
