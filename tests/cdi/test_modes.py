"""`--mode imex` and `--mode management`: the walks (`cdi.devnodes`) and the pure specs
(`cdi.modes`), docs/cdi.md#modes.

Matrix, imex: which directory entries are channels (names, the 2^20-1 bound, non-devices);
the spec for one, several and no channels (names, nodes, `all`, version, the node fields
and `additionalGids` rules shared with the NVML mode), `--device-id`, `--no-all-device`,
vendor/class. Management: the node globs and exclusions, the spec (one `all`, driver
files as common edits, the hooks upstream turns off), no nodes. What is left out on
purpose: the command line (test_cli.py) and real character devices (e2e).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cdi_fixtures import DriverRoot, build_driver_root

from cdi.devnodes import (
    MAX_IMEX_CHANNEL,
    ImexChannel,
    find_imex_channels,
    find_management_nodes,
    imex_channel_id,
)
from cdi.driverfiles import DeviceNodeInfo, find_driver_files
from cdi.errors import GenerateError
from cdi.generate import GenerateOptions
from cdi.modes import MANAGEMENT_OFF_HOOKS, imex_spec, management_spec
from cdi.spec import DeviceNode
from cdi.validate import validate
from nvlib.model import Machine

HOOK = "/usr/bin/nvidia-cdi-hook"
IMEX = GenerateOptions(device_class="imex-channel", hook_path=HOOK)
MANAGEMENT = GenerateOptions(vendor="management.nvidia.com", hook_path=HOOK)
CHANNELS = "dev/nvidia-caps-imex-channels"


def channel(n: int, mode: int = 0o666, gid: int = 0, root: str = "") -> ImexChannel:
    path = f"/dev/nvidia-caps-imex-channels/channel{n}"
    return ImexChannel(n, DeviceNodeInfo(path, root + path, 507, n, mode, gid))


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        pytest.param("channel0", 0, id="zero"),
        pytest.param("channel2047", 2047, id="number"),
        pytest.param(f"channel{MAX_IMEX_CHANNEL}", MAX_IMEX_CHANNEL, id="largest"),
        pytest.param(f"channel{MAX_IMEX_CHANNEL + 1}", None, id="too-large"),
        pytest.param("channel007", None, id="leading-zero"),
        pytest.param("channel", None, id="no-number"),
        pytest.param("channel-1", None, id="negative"),
        pytest.param("channelX", None, id="letters"),
        pytest.param("channel\u0661", None, id="non-ascii-digit"),
        pytest.param("7", None, id="bare-number"),
        pytest.param("imex0", None, id="other-name"),
    ],
)
def test_channel_names(name: str, expected: int | None) -> None:
    assert imex_channel_id(name) == expected


def test_find_imex_channels(tmp_path: Path) -> None:
    root = DriverRoot(tmp_path)
    for n in (10, 2, 0):
        root.add_node(f"{CHANNELS}/channel{n}", 507, n)
    root.add_node(f"{CHANNELS}/channel007", 507, 7)  # not the driver's spelling
    root.add_file(f"{CHANNELS}/channel3")  # a regular file, not a placeholder
    (tmp_path / CHANNELS / "channel4").mkdir()  # a directory
    found = find_imex_channels(str(tmp_path), root.nodes)
    assert [c.id for c in found] == [0, 2, 10]
    assert found[1].node == DeviceNodeInfo(
        "/dev/nvidia-caps-imex-channels/channel2",
        f"{tmp_path}/dev/nvidia-caps-imex-channels/channel2",
        507,
        2,
        0o666,
        os.stat(tmp_path / CHANNELS / "channel2").st_gid,
    )


def test_find_imex_channels_without_the_directory(tmp_path: Path) -> None:
    assert find_imex_channels(str(tmp_path), {}) == ()


def imex_node(n: int, **fields: object) -> DeviceNode:
    values: dict[str, object] = {"major": 507, "minor": n, "file_mode": 0o666}
    values["permissions"] = "rwm"
    values.update(fields)
    return DeviceNode(f"/dev/nvidia-caps-imex-channels/channel{n}", **values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("channels", "opts", "names", "version"),
    [
        pytest.param([channel(0)], {}, ["0", "all"], "0.5.0", id="one"),
        pytest.param(
            [channel(0), channel(1), channel(2047), channel(10)], {},
            ["0", "1", "10", "2047", "all"], "0.5.0", id="several-byte-order",
        ),
        pytest.param([channel(0), channel(1)], {"no_all_device": True}, ["0", "1"], "0.5.0",
                     id="no-all-device"),
        pytest.param([channel(0), channel(1)], {"device_ids": ("1",)}, ["1", "all"], "0.5.0",
                     id="device-id"),
        pytest.param([channel(0), channel(1)], {"device_ids": ("channel1", "0")},
                     ["0", "1", "all"], "0.5.0", id="device-id-channel-prefix"),
        pytest.param([channel(0, mode=0o660, gid=44)], {}, ["0", "all"], "0.7.0",
                     id="group-only-node-needs-additional-gids"),
        pytest.param([channel(0, mode=0o660, gid=44)], {"no_additional_gids": True},
                     ["0", "all"], "0.5.0", id="no-additional-gids"),
    ],
)  # fmt: skip
def test_imex_spec(
    channels: list[ImexChannel], opts: dict[str, object], names: list[str], version: str
) -> None:
    spec = imex_spec(channels, IMEX._replace(**opts))
    assert spec.kind == "nvidia.com/imex-channel"
    assert [d.name for d in spec.devices] == names
    assert spec.version == version
    assert validate(spec) == []
    # No hooks, mounts or nodes in common: only what upstream's wrapper adds to every spec.
    assert spec.container_edits.to_dict() == {"env": ["NVIDIA_VISIBLE_DEVICES=void"]}
    for device in spec.devices:
        assert device.container_edits.hooks == () and device.container_edits.mounts == ()


def test_imex_device_content() -> None:
    spec = imex_spec([channel(1, root="/driver"), channel(0, mode=0o660, gid=44)], IMEX)
    by_name = {d.name: d.container_edits for d in spec.devices}
    assert by_name["0"].device_nodes == (imex_node(0, minor=0, file_mode=0o660, gid=44),)
    assert by_name["0"].additional_gids == (44,)
    assert by_name["1"].device_nodes == (
        imex_node(1, host_path="/driver/dev/nvidia-caps-imex-channels/channel1"),
    )
    assert by_name["all"].device_nodes == (*by_name["0"].device_nodes, *by_name["1"].device_nodes)
    assert by_name["all"].additional_gids == (44,)


@pytest.mark.parametrize(
    ("channels", "opts", "message"),
    [
        pytest.param([], {}, "invalid spec, no devices: no IMEX channel", id="no-channels"),
        pytest.param([], {"no_all_device": True}, "invalid spec, no devices", id="none-no-all"),
        pytest.param([channel(0)], {"device_ids": ("3",)}, "IMEX channel 3 not found",
                     id="missing-channel"),
        pytest.param([channel(0)], {"device_ids": ("none",)}, "invalid channel ID none",
                     id="not-a-channel"),
        pytest.param([channel(0)], {"device_class": "i"}, 'class "i" has 1 character',
                     id="one-char-class"),
    ],
)  # fmt: skip
def test_imex_errors(channels: list[ImexChannel], opts: dict[str, object], message: str) -> None:
    with pytest.raises(GenerateError, match=message):
        imex_spec(channels, IMEX._replace(**opts), "/driver")


def test_imex_vendor_and_class() -> None:
    spec = imex_spec([channel(0)], IMEX._replace(vendor="example.com", device_class="channel"))
    assert spec.kind == "example.com/channel"


# --- management ---


@pytest.fixture
def management_root(tmp_path: Path) -> DriverRoot:
    root = build_driver_root(tmp_path / "driver", gpus=2, caps=(1, 2))
    root.add_node("dev/nvidia-modeset", 195, 254)
    root.add_node(f"{CHANNELS}/channel0", 507, 0)
    for excluded in ("nvidia-nvswitch0", "nvidia-nvswitchctl", "nvidia-nvlink", "nvidia-fs0"):
        root.add_node(f"dev/{excluded}", 240, 0)
    root.add_node("dev/nvidia-caps/other", 508, 9)  # not nvidia-cap*
    root.add_file("dev/nvidia-stray")  # a regular file, not a placeholder
    return root


def test_find_management_nodes(management_root: DriverRoot) -> None:
    found = find_management_nodes(str(management_root.path), management_root.nodes)
    assert sorted(n.path for n in found) == [
        "/dev/nvidia-caps-imex-channels/channel0",
        "/dev/nvidia-caps/nvidia-cap1",
        "/dev/nvidia-caps/nvidia-cap2",
        "/dev/nvidia-modeset",
        "/dev/nvidia-uvm",
        "/dev/nvidia-uvm-tools",
        "/dev/nvidia0",
        "/dev/nvidia1",
        "/dev/nvidiactl",
    ]


def management(root: DriverRoot, **opts: object):  # type: ignore[no-untyped-def]
    nodes = find_management_nodes(str(root.path), root.nodes)
    machine = Machine(driver_version=root.version, cuda_driver_version=0)
    files = find_driver_files(machine, str(root.path), placeholder_nodes=root.nodes)
    return management_spec(nodes, files, MANAGEMENT._replace(**opts))


def test_management_spec(management_root: DriverRoot) -> None:
    spec = management(management_root)
    root = str(management_root.path)
    assert spec.kind == "management.nvidia.com/gpu"
    assert spec.version == "0.5.0"  # hostPath under a driver root
    assert validate(spec) == []
    assert [d.name for d in spec.devices] == ["all"]
    (device,) = spec.devices
    assert [n.path for n in device.container_edits.device_nodes] == [
        "/dev/nvidia-modeset",
        "/dev/nvidia-uvm",
        "/dev/nvidia-uvm-tools",
        "/dev/nvidia0",
        "/dev/nvidia1",
        "/dev/nvidiactl",
        "/dev/nvidia-caps-imex-channels/channel0",
        "/dev/nvidia-caps/nvidia-cap1",
        "/dev/nvidia-caps/nvidia-cap2",
    ]
    cap1 = device.container_edits.device_nodes[-2]
    assert cap1 == DeviceNode(
        "/dev/nvidia-caps/nvidia-cap1",
        f"{root}/dev/nvidia-caps/nvidia-cap1",
        major=508,
        minor=1,
        file_mode=0o400,
        permissions="rwm",
        gid=os.stat(f"{root}/dev/nvidia-caps/nvidia-cap1").st_gid or None,
    )
    common = spec.container_edits
    assert common.device_nodes == ()
    assert common.env == (
        "NVIDIA_CTK_LIBCUDA_DIR=/usr/lib/x86_64-linux-gnu",
        "NVIDIA_VISIBLE_DEVICES=void",
    )
    assert [h.args[1] for h in common.hooks] == ["create-symlinks", "update-ldcache"]
    paths = {m.container_path for m in common.mounts}
    assert "/usr/lib/x86_64-linux-gnu/libcuda.so.550.54.15" in paths
    assert "/usr/bin/nvidia-smi" in paths
    assert "/lib/firmware/nvidia/550.54.15/gsp_ga10x.bin" in paths
    # The NVML mode's graphics configs are not the driver's files: none here.
    assert not any(p.startswith(("/etc/vulkan", "/usr/share")) for p in paths)


@pytest.mark.parametrize(
    ("opts", "subcommands"),
    [
        pytest.param({}, ["create-symlinks", "update-ldcache"], id="upstream-defaults"),
        pytest.param(
            {"enabled_hooks": frozenset(MANAGEMENT_OFF_HOOKS)},
            ["create-symlinks", "enable-cuda-compat", "update-ldcache",
             "disable-device-node-modification"],
            id="enable-beats-the-mode-default",
        ),
        pytest.param({"disabled_hooks": frozenset({"all"})}, [], id="disable-all"),
    ],
)  # fmt: skip
def test_management_hooks(
    management_root: DriverRoot, opts: dict[str, object], subcommands: list[str]
) -> None:
    spec = management(management_root, **opts)
    assert [h.args[1] for h in spec.container_edits.hooks] == subcommands


def test_management_chmod_hook_on_the_device(management_root: DriverRoot) -> None:
    spec = management(management_root, enabled_hooks=frozenset({"chmod"}))
    (hook,) = spec.devices[0].container_edits.hooks
    # The folders in discovery order, as upstream.
    assert hook.args == (
        "nvidia-cdi-hook", "chmod", "--mode", "755",
        "--path", "/dev/nvidia-caps", "--path", "/dev/nvidia-caps-imex-channels",
    )  # fmt: skip


def test_management_without_nodes(tmp_path: Path) -> None:
    root = build_driver_root(tmp_path / "driver", gpus=0)
    for node in list(root.nodes):
        (root.path / node).unlink()
    root.nodes.clear()
    with pytest.raises(GenerateError, match="no NVIDIA device nodes found"):
        management(root)
