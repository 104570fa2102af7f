"""Allocate: validate a request and build each container's answer (docs/deviceplugin.md#allocate).

Every per-device piece (the ID the runtime sees, its CDI name, its device specs, the
whole answer for a one-device request) is computed once when the plugin starts, so a
call does dictionary look-ups and copies a prebuilt message: Allocate costs little
more than the gRPC round trip (the benchmark holds it to 2x a bare echo).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple

from deviceplugin.devices import Device, Resource, is_replica
from deviceplugin.errors import RequestError
from deviceplugin.imex import channel_path
from deviceplugin.v1beta1 import api_pb2

CDI_STRATEGIES = frozenset({"cdi-annotations", "cdi-cri"})
CONTROL_NODES = (
    "/dev/nvidiactl",
    "/dev/nvidia-uvm",
    "/dev/nvidia-uvm-tools",
    "/dev/nvidia-modeset",
)
VOLUME_MOUNT_ROOT = "/var/run/nvidia-container-devices"
ANNOTATION_NAME = "nvidia-device-plugin"
DEFAULT_ANNOTATION_PREFIX = "cdi.k8s.io/"
MPS_CONTAINER_ROOT = "/mps"  # hard-coded container side of the MPS mounts, as upstream's


class AllocateOptions(NamedTuple):
    """What shapes an answer; fixed for the life of one plugin start."""

    strategies: tuple[str, ...] = ("envvar",)
    id_strategy: str = "uuid"
    pass_device_specs: bool = False
    annotation_prefix: str = DEFAULT_ANNOTATION_PREFIX
    dev_root: str = "/"
    control_nodes: tuple[str, ...] = ()  # those of CONTROL_NODES the plugin can stat
    imex_channels: tuple[str, ...] = ()  # channel IDs present on the node
    shared: bool = False  # sharing strategy is time-slicing or MPS
    fail_requests_greater_than_one: bool = False
    mps_root: str | None = None  # set only when MPS sharing is on
    gdrcopy: bool = False
    gds: bool = False
    mofed: bool = False


def visible_id(device: Device, id_strategy: str) -> str:
    """The ID the container runtime sees: the UUID (a replica's GPU), or the index."""
    return device.base_id if id_strategy == "uuid" else device.index


def present_control_nodes(root: str = "/") -> tuple[str, ...]:
    """Upstream stats each control node inside the plugin's container: a quirk, kept."""
    return tuple(p for p in CONTROL_NODES if os.path.exists(os.path.join(root, p.lstrip("/"))))


def annotation_key(prefix: str) -> str:
    """`cdi.k8s.io/nvidia-device-plugin_<uuid4>`, the prefix replaceable."""
    return f"{prefix}{ANNOTATION_NAME}_{uuid.uuid4()}"


class Allocator:
    """One resource's Allocate, with everything per device prepared up front."""

    def __init__(
        self,
        resource: Resource,
        options: AllocateOptions,
        cdi_name: Callable[[str], str],
        imex_cdi_name: Callable[[str], str],
    ) -> None:
        self._resource = resource
        self._options = options
        self._devices: dict[str, Device] = {d.id: d for d in resource.devices}
        self._visible = {d.id: visible_id(d, options.id_strategy) for d in resource.devices}
        strategies = set(options.strategies)
        self._cdi = bool(strategies & CDI_STRATEGIES)
        self._cdi_only = strategies <= CDI_STRATEGIES
        self._annotate = "cdi-annotations" in strategies
        self._cdi_names = {v: cdi_name(v) for v in self._visible.values()} if self._cdi else {}
        self._imex_names = tuple(imex_cdi_name(c) for c in options.imex_channels)
        self._specs = {d.id: self._device_specs(d.paths) for d in resource.devices}
        self._control_specs = self._device_specs(options.control_nodes)
        self._imex_specs = self._device_specs(channel_path(int(c)) for c in options.imex_channels)
        self._error_prefix = f'invalid allocation request for "{resource.name}"'
        # The whole answer for each one-device request; only the annotation key is new
        # on every call (it holds a random UUID).
        self._single = {d.id: self._container((d.id,)) for d in resource.devices}

    def allocate(self, request: api_pb2.AllocateRequest) -> api_pb2.AllocateResponse:
        """The answer for every container; RequestError with upstream's text."""
        response = api_pb2.AllocateResponse()
        prefix = self._options.annotation_prefix
        for container in request.container_requests:
            ids = container.devices_ids
            self._validate(ids)
            built, annotation = self._single[ids[0]] if len(ids) == 1 else self._container(ids)
            response.container_responses.append(built)  # appends a copy
            if annotation is not None:
                response.container_responses[-1].annotations[annotation_key(prefix)] = annotation
        return response

    # -- validation ------------------------------------------------------------------

    def _validate(self, ids: Sequence[str]) -> None:
        for device_id in ids:
            if device_id not in self._devices:
                raise RequestError(
                    f"{self._error_prefix}: invalid request: unknown device: {device_id}"
                )
        if (
            len(ids) > 1
            and self._options.shared
            and self._options.fail_requests_greater_than_one
            and any(is_replica(i) for i in ids)
        ):
            raise RequestError(
                f"{self._error_prefix}: invalid request: maximum request size for shared"
                f" resources is 1; found {len(ids)}"
            )

    # -- construction ----------------------------------------------------------------

    def _device_specs(self, paths: Iterable[str]) -> tuple[api_pb2.DeviceSpec, ...]:
        root = self._options.dev_root
        return tuple(
            api_pb2.DeviceSpec(
                container_path=p, host_path=os.path.join(root, p.lstrip("/")), permissions="rw"
            )
            for p in paths
        )

    def _container(
        self, ids: Sequence[str]
    ) -> tuple[api_pb2.ContainerAllocateResponse, str | None]:
        """The answer for one container, and the value of its CDI annotation if any."""
        opts = self._options
        annotation = None
        visible = list(dict.fromkeys(self._visible[i] for i in ids))
        out = api_pb2.ContainerAllocateResponse()
        if self._cdi:
            names = [self._cdi_names[v] for v in visible] + list(self._imex_names)
            if names and "cdi-cri" in opts.strategies:
                out.cdi_devices.extend(api_pb2.CDIDevice(name=n) for n in names)
            if names and self._annotate:
                annotation = ",".join(names)
        if opts.mps_root is not None:
            pipe = f"{MPS_CONTAINER_ROOT}/{self._resource.name}/pipe"
            out.envs["CUDA_MPS_PIPE_DIRECTORY"] = pipe
            out.mounts.add(
                container_path=pipe, host_path=f"{opts.mps_root}/{self._resource.name}/pipe"
            )
            out.mounts.add(container_path="/dev/shm", host_path=f"{opts.mps_root}/shm")
        for enabled, var in (
            (opts.gdrcopy, "NVIDIA_GDRCOPY"),
            (opts.gds, "NVIDIA_GDS"),
            (opts.mofed, "NVIDIA_MOFED"),
        ):
            if enabled:
                out.envs[var] = "enabled"
        if self._cdi_only:
            return out, annotation
        if "envvar" in opts.strategies:
            out.envs["NVIDIA_VISIBLE_DEVICES"] = ",".join(visible)
            if opts.imex_channels:
                out.envs["NVIDIA_IMEX_CHANNELS"] = ",".join(opts.imex_channels)
        if "volume-mounts" in opts.strategies:
            out.envs["NVIDIA_VISIBLE_DEVICES"] = VOLUME_MOUNT_ROOT
            for v in visible:
                out.mounts.add(container_path=f"{VOLUME_MOUNT_ROOT}/{v}", host_path="/dev/null")
            for c in opts.imex_channels:
                out.mounts.add(
                    container_path=f"{VOLUME_MOUNT_ROOT}/imex/{c}", host_path="/dev/null"
                )
        if opts.pass_device_specs:
            out.devices.extend(self._control_specs)
            for device_id in ids:  # raw IDs: replicas of one GPU repeat its node, as upstream
                out.devices.extend(self._specs[device_id])
            out.devices.extend(self._imex_specs)
        return out, annotation
