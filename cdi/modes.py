"""The specs of the `imex` and `management` modes: pure functions of what the walks found.

`nvidia-ctk cdi generate --mode imex|management` (docs/cdi.md#modes), built from the same
pieces as the NVML mode's spec (`cdi.generate`): nodes written as toolkit v1.20 writes
them, the same hooks, the same simplify and sort, the lowest `cdiVersion`.

- `imex_spec`: kind `nvidia.com/imex-channel`, one device per IMEX channel named by its
  number (`"0"`), holding that channel's node; then the merged `all` (the CLI adds it in
  every mode unless `--no-all-device`). No hooks, no mounts: the spec-level edits are
  only `NVIDIA_VISIBLE_DEVICES=void`, which upstream's wrapper adds to every spec.
- `management_spec`: kind `management.nvidia.com/gpu`, one device `all` with every
  NVIDIA node, and the driver's files (libraries, IPC sockets, firmware, binaries) with
  their hooks as common edits. No GPU is asked about: only the driver version matters.
"""

from __future__ import annotations

from collections.abc import Sequence

from cdi import deviceids
from cdi.devnodes import IMEX_CHANNEL_DIR, ImexChannel, imex_channel_id
from cdi.driverfiles import DeviceNodeInfo, DriverFiles
from cdi.errors import GenerateError
from cdi.generate import (
    ALL_DEVICE,
    IPC_MOUNT_OPTIONS,
    GenerateOptions,
    add_simplified,
    check_options,
    chmod_hook,
    common_hooks,
    device_node,
    merged_device,
    mount_of,
    simplify,
)
from cdi.spec import ContainerEdits, Device, DeviceNode, Spec
from cdi.version import minimum_version

__all__ = [
    "IMEX_CLASS",
    "MANAGEMENT_OFF_HOOKS",
    "MANAGEMENT_VENDOR",
    "imex_spec",
    "management_spec",
]

IMEX_CLASS = "imex-channel"
MANAGEMENT_VENDOR = "management.nvidia.com"
# Upstream turns these off for management containers, which need neither CUDA forward
# compatibility nor a guard on the device nodes; `--enable-hook` still brings them back.
MANAGEMENT_OFF_HOOKS = frozenset({"enable-cuda-compat", "disable-device-node-modification"})
_VOID = "NVIDIA_VISIBLE_DEVICES=void"


def _nodes(
    infos: Sequence[DeviceNodeInfo], options: GenerateOptions
) -> tuple[tuple[DeviceNode, ...], tuple[int, ...]]:
    nodes: list[DeviceNode] = []
    gids: list[int] = []
    for info in infos:
        node, extra = device_node(info, options)
        nodes.append(node)
        gids += extra
    return tuple(nodes), tuple(gids)


def _channel_name(device_id: str) -> str:
    return device_id if device_id.startswith("channel") else f"channel{device_id}"


def _select_channels(
    channels: Sequence[ImexChannel], device_ids: Sequence[str]
) -> list[ImexChannel]:
    """`--device-id` in imex mode: `all`, or channel numbers (`3` or `channel3`)."""
    if deviceids.ALL in device_ids:
        return list(channels)
    by_id = {c.id: c for c in channels}
    selected: dict[int, ImexChannel] = {}
    for device_id in device_ids:
        number = imex_channel_id(_channel_name(device_id))
        if number is None:
            raise GenerateError(f"invalid channel ID {device_id}")
        if number not in by_id:
            raise GenerateError(f"IMEX channel {number} not found under {IMEX_CHANNEL_DIR}")
        selected[number] = by_id[number]
    return [selected[n] for n in sorted(selected)]


def _finish(spec: Spec, no_all: bool) -> Spec:
    spec = simplify(spec)
    if not no_all and all(d.name != ALL_DEVICE for d in spec.devices):
        spec = add_simplified(spec, merged_device(spec.devices, ALL_DEVICE))
    return spec._replace(version=minimum_version(spec))


def imex_spec(
    channels: Sequence[ImexChannel], options: GenerateOptions, dev_root: str = "/"
) -> Spec:
    """The IMEX channel spec. Raises GenerateError without channels.

    `options` supplies the kind, `--device-id`, `--no-all-device` and the node rules;
    naming strategies and hooks do not apply (a channel has one name, and no hook).
    """
    check_options(options)
    selected = _select_channels(channels, options.device_ids)
    if not selected:
        raise GenerateError(
            "invalid spec, no devices: no IMEX channel "
            f"({dev_root.rstrip('/')}{IMEX_CHANNEL_DIR}/channel<N>) found"
        )
    devices = []
    for channel in selected:
        nodes, gids = _nodes([channel.node], options)
        edits = ContainerEdits(device_nodes=nodes, additional_gids=gids)
        devices.append(Device(str(channel.id), edits))
    spec = Spec("", options.kind, tuple(devices), ContainerEdits(env=(_VOID,)))
    return _finish(spec, options.no_all_device)


def management_spec(
    nodes: Sequence[DeviceNodeInfo], driver_files: DriverFiles, options: GenerateOptions
) -> Spec:
    """The management spec: one `all` device, the driver as common edits.

    Raises GenerateError when no NVIDIA node exists (upstream's wording).
    """
    check_options(options)
    if not nodes:
        raise GenerateError(
            f"no NVIDIA device nodes found (under {driver_files.dev_root.rstrip('/')}/dev)"
        )
    options = options._replace(disabled_hooks=options.disabled_hooks | MANAGEMENT_OFF_HOOKS)
    device_nodes, gids = _nodes(nodes, options)
    device = Device(
        ALL_DEVICE,
        ContainerEdits(
            device_nodes=device_nodes,
            hooks=tuple(chmod_hook(device_nodes, options)),
            additional_gids=gids,
        ),
    )
    files = driver_files
    mounts = (
        *(mount_of(m) for m in files.libraries),
        *(mount_of(m, IPC_MOUNT_OPTIONS) for m in files.ipc_sockets),
        *(mount_of(m) for m in files.firmware),
        *(mount_of(m) for m in files.binaries),
    )
    # Only the driver's own files: graphics libraries and configs belong to the
    # NVML mode's common edits, not to upstream's driver discoverer that this mirrors.
    driver_only = files._replace(graphics_libraries=(), xorg_libraries=())
    common = ContainerEdits(
        env=(f"NVIDIA_CTK_LIBCUDA_DIR={':'.join(files.lib_dirs)}", _VOID),
        hooks=tuple(common_hooks(driver_only, options, application_profile=False)),
        mounts=mounts,
    )
    return _finish(Spec("", options.kind, (device,), common), no_all=True)
