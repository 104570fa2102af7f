"""The spec of a machine: a pure function of the device model and the driver files.

`generate_spec(machine, driver_files, options)` builds what `nvidia-ctk cdi generate`
v1.20 emits in NVML mode (docs/cdi.md#generate), with no I/O: one device per full GPU
whose MIG mode is disabled and one per MIG device, under each naming strategy, then the
merged `all`; the common edits (control nodes, libraries, graphics files, firmware,
binaries, sockets, hooks, environment); simplified and sorted exactly as the toolkit
does, at the lowest `cdiVersion` the content allows.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any, NamedTuple

from cdi import deviceids, names
from cdi._locate import matches
from cdi.driverfiles import (
    CONTROL_NODES,
    DeviceNodeInfo,
    DriverFiles,
    FileMount,
    Library,
    so_link_name,
)
from cdi.errors import GenerateError
from cdi.spec import ContainerEdits, Device, DeviceNode, Hook, Mount, Spec
from cdi.version import minimum_version
from nvlib.migcaps import cap_device, mig_cap_keys
from nvlib.model import Gpu, Machine, MigDevice

__all__ = [
    "HOOK_NAMES",
    "GenerateOptions",
    "add_simplified",
    "check_options",
    "chmod_hook",
    "common_hooks",
    "device_node",
    "generate_spec",
    "merged_device",
    "mount_of",
    "select_devices",
    "simplify",
]

# Hook names for --enable-hook / --disable-hook.
HOOK_NAMES = (
    "create-symlinks",
    "update-ldcache",
    "enable-cuda-compat",
    "disable-device-node-modification",
    "update-application-profile",
    "chmod",
)
_OFF_BY_DEFAULT = frozenset({"chmod"})  # deprecated, off by default since v1.18

MOUNT_OPTIONS = ("ro", "nosuid", "nodev", "rbind", "rprivate")
IPC_MOUNT_OPTIONS = ("nosuid", "nodev", "rbind", "rprivate", "noexec")
HOOK_ENV = ("NVIDIA_CTK_DEBUG=false",)
ALL_DEVICE = "all"
EMPTY_DEVICE_ENV = "NVCT_EMPTY_DEVICE="  # the one edit of the `none` device (--device-id none)


class GenerateOptions(NamedTuple):
    """How to name and shape the spec; the CLI flags, and the plugin's library options.

    Build it with keywords, change it with `_replace`.
    """

    vendor: str = names.DEFAULT_VENDOR
    device_class: str = names.DEFAULT_CLASS
    device_name_strategies: tuple[str, ...] = names.DEFAULT_STRATEGIES
    hook_path: str = "/usr/bin/nvidia-cdi-hook"
    disabled_hooks: frozenset[str] = frozenset()  # may hold "all"
    enabled_hooks: frozenset[str] = frozenset()  # beats disabled_hooks
    ldconfig_path: str | None = None
    no_all_device: bool = False
    # Feature flag no-additional-gids-for-device-nodes: the switch for consumers older
    # than CDI lib 0.7 (podman < 5), which reject `additionalGids`.
    no_additional_gids: bool = False
    # [PROJECT] full-GPU entries for MIG-enabled GPUs too: the device plugin advertises
    # them whole under mig-strategy none (docs/deviceplugin.md#what-it-serves). Not a flag.
    full_gpus_for_mig_enabled: bool = False
    # --device-id: GPU/MIG indexes or UUIDs, "all" or "none" (cdi.deviceids).
    device_ids: tuple[str, ...] = (deviceids.ALL,)

    @property
    def kind(self) -> str:
        return f"{self.vendor}/{self.device_class}"

    def hook_enabled(self, name: str) -> bool:
        if name in self.enabled_hooks:
            return True
        if name in self.disabled_hooks or "all" in self.disabled_hooks:
            return False
        return name not in _OFF_BY_DEFAULT


def check_options(options: GenerateOptions) -> None:
    problems = [
        names.vendor_error(options.vendor),
        names.class_error(options.device_class),
        names.short_qualifier_error(options.vendor, options.device_class),
    ]
    if not options.device_name_strategies:
        problems.append("at least one device name strategy is required")
    problems += [
        f"invalid device name strategy: {s}"
        for s in options.device_name_strategies
        if s not in names.STRATEGIES
    ]
    if "all" in options.enabled_hooks:
        problems.append('"all" cannot be enabled: name the hooks to enable')
    for problem in problems:
        if problem is not None:
            raise GenerateError(problem)


def _hook(options: GenerateOptions, subcommand: str, *args: str) -> Hook:
    """`[nvidia-cdi-hook, <subcommand>, ...]`; `[nvidia-ctk, hook, <subcommand>, ...]`."""
    base = os.path.basename(options.hook_path)
    prefix = (base, "hook", subcommand) if base == "nvidia-ctk" else (base, subcommand)
    return Hook("createContainer", options.hook_path, (*prefix, *args), HOOK_ENV)


def device_node(
    info: DeviceNodeInfo, options: GenerateOptions
) -> tuple[DeviceNode, tuple[int, ...]]:
    """A node as toolkit v1.20 writes it, and the gid it needs in `additionalGids`."""
    node = DeviceNode(
        path=info.path,
        host_path="" if info.host_path == info.path else info.host_path,
        major=info.major,
        minor=info.minor,
        file_mode=info.mode or None,
        permissions="rwm",
        gid=info.gid or None,
    )
    world_rw = info.mode & 0o006 == 0o006
    gids = () if options.no_additional_gids or not info.gid or world_rw else (info.gid,)
    return node, gids


def _node_edits(
    paths: Iterable[str], files: DriverFiles, options: GenerateOptions
) -> tuple[list[DeviceNode], list[int]]:
    nodes: list[DeviceNode] = []
    gids: list[int] = []
    for path in paths:
        info = files.device_nodes.get(path)
        if info is None:
            continue  # the toolkit warns and leaves it out
        node, extra = device_node(info, options)
        nodes.append(node)
        gids += extra
    return nodes, gids


def _drm_paths(gpu: Gpu, files: DriverFiles) -> list[str]:
    return [f"/dev/dri/{entry}" for entry in files.drm_entries.get(gpu.sysfs_bus_id, ())]


def _by_path_hook(
    gpu: Gpu, nodes: Sequence[DeviceNode], files: DriverFiles, options: GenerateOptions
) -> list[Hook]:
    """`create-symlinks` for /dev/dri/by-path links that point at this GPU's DRM nodes."""
    selected = {n.path for n in nodes}
    links = []
    for suffix in ("card", "render"):
        link = f"/dev/dri/by-path/pci-{gpu.sysfs_bus_id}-{suffix}"
        target = files.by_path_links.get(link)
        if target is None:
            continue
        resolved = target if target.startswith("/") else os.path.join("/dev/dri/by-path", target)
        if os.path.normpath(resolved) in selected:
            links += ["--link", f"{target}::{link}"]
    if not links or not options.hook_enabled("create-symlinks"):
        return []
    return [_hook(options, "create-symlinks", *links)]


def chmod_hook(nodes: Sequence[DeviceNode], options: GenerateOptions) -> list[Hook]:
    """Deprecated `chmod --mode 755` of the folders holding the nodes (only if enabled)."""
    if not options.hook_enabled("chmod"):
        return []
    folders = dict.fromkeys(os.path.dirname(n.path) for n in nodes)
    args = [arg for folder in folders if folder != "/dev" for arg in ("--path", folder)]
    return [_hook(options, "chmod", "--mode", "755", *args)] if args else []


def _gpu_edits(gpu: Gpu, files: DriverFiles, options: GenerateOptions) -> ContainerEdits:
    nodes, gids = _node_edits([f"/dev/nvidia{gpu.minor}", *_drm_paths(gpu, files)], files, options)
    hooks = _by_path_hook(gpu, nodes, files, options) + chmod_hook(nodes, options)
    return ContainerEdits(
        device_nodes=tuple(nodes), hooks=tuple(hooks), additional_gids=tuple(gids)
    )


def _mig_edits(
    gpu: Gpu, mig: MigDevice, files: DriverFiles, options: GenerateOptions
) -> ContainerEdits:
    paths = [f"/dev/nvidia{gpu.minor}"]
    for key in mig_cap_keys(gpu.minor, mig.gi_id, mig.ci_id):
        minor = files.mig_minors.get(key)
        if minor is not None:
            paths.append(cap_device(minor))
    gfx = "+gfx" in mig.profile  # DRM nodes only for graphics-capable MIG profiles
    if gfx:
        paths += _drm_paths(gpu, files)
    nodes, gids = _node_edits(paths, files, options)
    hooks = _by_path_hook(gpu, nodes, files, options) if gfx else []
    hooks += chmod_hook(nodes, options)
    return ContainerEdits(
        device_nodes=tuple(nodes), hooks=tuple(hooks), additional_gids=tuple(gids)
    )


def _devices(machine: Machine, files: DriverFiles, options: GenerateOptions) -> list[Device]:
    devices: list[Device] = []

    def add(edits: ContainerEdits, device_names: list[str], what: str) -> None:
        if edits.is_empty():
            raise GenerateError(
                f'failed add device "{device_names[0]}": invalid device, empty device edits '
                f"({what}: no device node under {files.dev_root})"
            )
        devices.extend(Device(name, edits) for name in device_names)

    strategies = options.device_name_strategies
    selected = deviceids.select(machine, options.device_ids)
    if selected == deviceids.NONE:
        return [Device(deviceids.NONE, ContainerEdits(env=(EMPTY_DEVICE_ENV,)))]
    gpus: Sequence[Gpu]
    if isinstance(selected, str):  # deviceids.ALL: NONE was answered above
        # a MIG-enabled GPU is offered through its MIG devices, as the toolkit does
        gpus = [g for g in machine.gpus if options.full_gpus_for_mig_enabled or not g.mig_enabled]
        migs = machine.mig_devices
    else:
        gpus, migs = selected  # named explicitly: a full entry whatever its MIG mode
    for gpu in gpus:
        device_names = [names.gpu_device_name(gpu, s) for s in strategies]
        add(_gpu_edits(gpu, files, options), device_names, f"GPU {gpu.index} {gpu.uuid}")
    for gpu, mig in migs:
        device_names = [names.mig_device_name(gpu, mig, s) for s in strategies]
        what = f"MIG device {gpu.index}:{mig.index} {mig.uuid}"
        add(_mig_edits(gpu, mig, files, options), device_names, what)
    return devices


def _library_links(files: DriverFiles) -> list[str]:
    """`create-symlinks` links for the driver libraries, in discovery order."""
    version = "*.*"  # the toolkit matches any X.Y suffix here, not the driver version
    links: list[str] = []
    seen_paths: set[str] = set()
    for lib in files.libraries:
        if lib.path in seen_paths:
            continue
        seen_paths.add(lib.path)
        directory, name = os.path.split(lib.path)
        found = []
        if matches(name, f"libcuda.so.{version}"):
            found.append(f"libcuda.so.1::{directory}/libcuda.so")
        elif matches(name, f"libGLX_nvidia.so.{version}"):
            found.append(f"{name}::{directory}/libGLX_indirect.so.0")
        elif matches(name, f"libnvidia-opticalflow.so.{version}"):
            found.append(f"libnvidia-opticalflow.so.1::{directory}/libnvidia-opticalflow.so")
        found += _soname_links(lib, directory, name)
        for link in found:
            if link not in links:  # libcuda's .so link comes both ways: once is enough
                links.append(link)
    return links


def _soname_links(lib: Library, directory: str, name: str) -> list[str]:
    """`<file>::<dir>/<SONAME>` and `<SONAME>::<dir>/<stem>.so` where the host has them."""
    if not matches(name, "*.*.*") or lib.soname is None:
        return []
    links = []
    if lib.soname != name and lib.soname in lib.host_links:
        links.append(f"{name}::{directory}/{lib.soname}")
    so_link = so_link_name(lib.soname)
    if so_link and so_link != lib.soname and so_link in lib.host_links:
        links.append(f"{lib.soname}::{directory}/{so_link}")
    return links


def _graphics_links(files: DriverFiles) -> list[str]:
    """`create-symlinks` links for graphics libraries."""
    suffix = f".{files.version}"
    links = []
    for mount in (*files.graphics_libraries, *files.xorg_libraries):
        directory, name = os.path.split(mount.path)
        if matches(name, f"libnvidia-allocator.so{suffix}"):
            links.append(f"../libnvidia-allocator.so.1::{directory}/gbm/nvidia-drm_gbm.so")
        elif matches(name, f"libnvidia-vulkan-producer.so{suffix}"):
            links.append(f"{name}::{directory}/libnvidia-vulkan-producer.so")
        elif matches(name, f"libglxserver_nvidia.so{suffix}"):
            links.append(f"{name}::{directory}/libglxserver_nvidia.so")
    return links


def _is_lib_name(path: str) -> bool:
    """`lib?*.so*` with nothing, or a `.`-led suffix, after the last `.so` (toolkit isLibName)."""
    base = os.path.basename(path)
    if not matches(base, "lib?*.so*"):
        return False
    tail = base.split(".so")[-1]
    return tail == "" or tail.startswith(".")


def common_hooks(
    files: DriverFiles, options: GenerateOptions, *, application_profile: bool = True
) -> list[Hook]:
    """The spec-level hooks in the toolkit's order; `application_profile` False
    leaves out `update-application-profile`, which only the NVML mode's edits carry."""
    hooks = []
    symlinks = options.hook_enabled("create-symlinks")
    graphics_links = _graphics_links(files)
    if symlinks and graphics_links:
        hooks.append(_hook(options, "create-symlinks", *_link_args(graphics_links)))
    library_links = _library_links(files)
    if symlinks and library_links:
        hooks.append(_hook(options, "create-symlinks", *_link_args(library_links)))
    if options.hook_enabled("enable-cuda-compat"):
        args = [] if "*" in files.version else [f"--host-driver-version={files.version}"]
        hooks.append(_hook(options, "enable-cuda-compat", *args))
    if options.hook_enabled("update-ldcache"):
        args = ["--ldconfig-path", options.ldconfig_path] if options.ldconfig_path else []
        folders = dict.fromkeys(
            os.path.dirname(lib.path) for lib in files.libraries if _is_lib_name(lib.path)
        )
        args += [arg for folder in folders for arg in ("--folder", folder)]
        hooks.append(_hook(options, "update-ldcache", *args))
    last = ["disable-device-node-modification"]
    last += ["update-application-profile"] if application_profile else []
    for name in last:
        if options.hook_enabled(name):
            hooks.append(_hook(options, name))
    return hooks


def _link_args(links: Iterable[str]) -> list[str]:
    return [arg for link in links for arg in ("--link", link)]


def mount_of(mount: FileMount | Library, options: tuple[str, ...] = MOUNT_OPTIONS) -> Mount:
    return Mount(mount.host_path, mount.path, options)


def _common_edits(files: DriverFiles, options: GenerateOptions) -> ContainerEdits:
    nodes, gids = _node_edits(CONTROL_NODES, files, options)
    allocator = f"libnvidia-allocator.so.{files.version}"
    graphics = [m for m in files.graphics_libraries if os.path.basename(m.path) != allocator]
    mounts = [
        *(mount_of(m) for m in graphics),
        *(mount_of(m) for m in files.xorg_libraries),
        *(mount_of(m) for m in files.configs),
        *(mount_of(m) for m in files.libraries),
        *(mount_of(m, IPC_MOUNT_OPTIONS) for m in files.ipc_sockets),
        *(mount_of(m) for m in files.firmware),
        *(mount_of(m) for m in files.binaries),
    ]
    env = (f"NVIDIA_CTK_LIBCUDA_DIR={':'.join(files.lib_dirs)}", "NVIDIA_VISIBLE_DEVICES=void")
    return ContainerEdits(
        env=env,
        device_nodes=tuple(nodes),
        hooks=tuple(common_hooks(files, options)),
        mounts=tuple(mounts),
        additional_gids=tuple(gids),
    )


# --- simplify: de-duplicate, drop what the common edits already give, sort ---


@lru_cache(maxsize=4096)  # a spec sorts the same few hundred paths in every device
def _path_key(path: str) -> tuple[int, str]:
    """The toolkit's order of nodes and mounts: fewer path components first, then by path."""
    return os.path.normpath(path).count("/"), path


def _node_key(node: DeviceNode) -> tuple[int, str]:
    return _path_key(node.path)


def _mount_key(mount: Mount) -> tuple[int, str]:
    return _path_key(mount.container_path)


def _device_key(device: Device) -> bytes:
    return device.name.encode("utf-8")


class _Seen:
    """The entities of the spec-level edits, as sets, to drop them from devices."""

    def __init__(self, edits: ContainerEdits) -> None:
        self.env = set(edits.env)
        self.device_nodes = set(edits.device_nodes)
        self.hooks = set(edits.hooks)
        self.mounts = set(edits.mounts)
        self.net_devices = set(edits.net_devices)


_NOTHING = _Seen(ContainerEdits())


def _keep(items: tuple[Any, ...], drop: set[Any]) -> list[Any]:
    if not items:  # most fields of most devices: no dict to build
        return []
    return [x for x in dict.fromkeys(items) if x not in drop]


def _dedupe(edits: ContainerEdits, common: _Seen = _NOTHING) -> ContainerEdits:
    """Unique entities, minus those in `common`, sorted the toolkit's way."""
    nodes = _keep(edits.device_nodes, common.device_nodes)
    mounts = _keep(edits.mounts, common.mounts)
    return edits._replace(
        env=tuple(_keep(edits.env, common.env)),
        device_nodes=tuple(sorted(nodes, key=_node_key)),
        hooks=tuple(_keep(edits.hooks, common.hooks)),
        mounts=tuple(sorted(mounts, key=_mount_key)),
        net_devices=tuple(_keep(edits.net_devices, common.net_devices)),
        additional_gids=tuple(sorted(set(edits.additional_gids))),
    )


def _device_edits(
    edits: ContainerEdits, seen: _Seen, done: dict[ContainerEdits, ContainerEdits]
) -> ContainerEdits:
    """A device's edits less the spec-level ones, unless that would leave them empty.

    `done` holds the edits already simplified against `seen`: a device named several
    ways (index, UUID) carries the same edits under each name, worked out once.
    """
    simplified = done.get(edits)
    if simplified is None:
        simplified = _dedupe(edits, seen)
        if simplified.is_empty():
            simplified = _dedupe(edits)
        done[edits] = simplified
    return simplified


def simplify(spec: Spec) -> Spec:
    """De-duplicate; remove from each device what the spec-level edits already give,
    unless that would leave the device empty; sort nodes, mounts and devices."""
    common = _dedupe(spec.container_edits)
    seen = _Seen(common)
    done: dict[ContainerEdits, ContainerEdits] = {}
    devices = [
        device._replace(container_edits=_device_edits(device.container_edits, seen, done))
        for device in spec.devices
    ]
    devices.sort(key=_device_key)
    return spec._replace(devices=tuple(devices), container_edits=common)


def add_simplified(spec: Spec, device: Device) -> Spec:
    """`simplify(spec + device)` for a `spec` that `simplify` returned.

    simplify is idempotent (unique stays unique, sorted stays sorted, what was dropped
    stays dropped), so only the new device needs the work, not every device again.
    """
    edits = _device_edits(device.container_edits, _Seen(spec.container_edits), {})
    devices = [*spec.devices, device._replace(container_edits=edits)]
    devices.sort(key=_device_key)
    return spec._replace(devices=tuple(devices))


def merged_device(devices: Sequence[Device], name: str) -> Device:
    """The union of every device's edits, in device order (toolkit mergedDevice)."""
    e = [d.container_edits for d in devices]
    edits = ContainerEdits(
        env=tuple(x for d in e for x in d.env),
        device_nodes=tuple(x for d in e for x in d.device_nodes),
        net_devices=tuple(x for d in e for x in d.net_devices),
        hooks=tuple(x for d in e for x in d.hooks),
        mounts=tuple(x for d in e for x in d.mounts),
        additional_gids=tuple(x for d in e for x in d.additional_gids),
    )
    return Device(name, edits)


def generate_spec(
    machine: Machine, driver_files: DriverFiles, options: GenerateOptions | None = None
) -> Spec:
    """The CDI spec for `machine` (docs/cdi.md#generate). Raises GenerateError.

    Same machine, same driver files and options: the same spec, so the same bytes.
    """
    options = options or GenerateOptions()
    check_options(options)
    devices = _devices(machine, driver_files, options)
    if not devices:
        raise GenerateError(
            "invalid spec, no devices: the machine has no GPU or MIG device to describe"
        )
    spec = simplify(Spec("", options.kind, tuple(devices), _common_edits(driver_files, options)))
    none = [d.name for d in devices] == [deviceids.NONE]  # --device-id none implies no `all`
    no_all = options.no_all_device or none
    if not no_all and all(d.name != ALL_DEVICE for d in spec.devices):
        spec = add_simplified(spec, merged_device(spec.devices, ALL_DEVICE))
    return spec._replace(version=minimum_version(spec))


def select_devices(spec: Spec, device_names: Iterable[str]) -> Spec:
    """The spec with only the named devices (unqualified names), at its new minimum version.

    For the device plugin's own file, which holds only the names no other spec defines
    (docs/cdi.md#beside-the-device-plugins-spec-file). Raises GenerateError for an unknown
    name or an empty result.
    """
    wanted = list(dict.fromkeys(device_names))
    known = {d.name for d in spec.devices}
    unknown = [n for n in wanted if n not in known]
    if unknown:
        raise GenerateError(f"no such devices in the spec: {', '.join(unknown)}")
    if not wanted:
        raise GenerateError("invalid spec, no devices")
    selected = spec.with_devices(tuple(d for d in spec.devices if d.name in set(wanted)))
    return selected._replace(version=minimum_version(selected))
