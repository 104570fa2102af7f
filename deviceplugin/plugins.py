"""One start of the plugins: discover, build the resources, serve, register, watch health.

This is upstream's `startPlugins` for one loaded config.
The daemon calls `start_plugins` at start and after every restart and keeps what it
returns until the next stop. Errors that upstream treats as fatal raise PluginError
with upstream's message chain; a plugin that fails to serve or register asks for a
retry in 30 s instead.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

from cdi.names import DEFAULT_KIND, imex_channel_name, qualified_name
from deviceplugin import imex
from deviceplugin.allocate import AllocateOptions, Allocator, present_control_nodes, visible_id
from deviceplugin.cdispec import (
    OWN_FILE,
    CdiKeeper,
    GenerateInput,
    generate_missing,
    mounted_roots,
    spec_dirs,
)
from deviceplugin.cli import DEFAULT_KUBELET_SOCKET, PluginSettings
from deviceplugin.devices import DeviceMap, Resource, build_device_map
from deviceplugin.errors import PluginError
from deviceplugin.health import HealthMonitor, Watched
from deviceplugin.metrics import NO_METRICS, PluginMetrics
from deviceplugin.nodehealth import NodeHealth
from deviceplugin.preferred import PairScore, PreferredAllocator, pair_score
from deviceplugin.server import PluginServer
from deviceplugin.xids import XidPolicy
from nvlib.config import ConfigError, validate_plugin_flags
from nvlib.config.validate import VALIDATE_PREFIX
from nvlib.discover import DiscoveryError, discover
from nvlib.migcaps import read_mig_minors
from nvlib.model import Machine
from nvlib.nvml import NvmlInitError, session
from nvlib.record import Plain, factory
from nvlib.topology import Topology, read_topology

log = logging.getLogger(__name__)

CREATE_PREFIX = "unable to create plugins"
MANAGERS_PREFIX = f"{CREATE_PREFIX}: failed to construct resource managers"
NVML_INIT_HELP = (
    "If this is a GPU node, did you set the docker default runtime to `nvidia`?",
    "You can check the prerequisites at: https://github.com/NVIDIA/k8s-device-plugin#prerequisites",
    "You can learn how to set the runtime at: "
    "https://github.com/NVIDIA/k8s-device-plugin#quick-start",
    "If this is not a GPU node, you should set up a toleration or nodeSelector to only"
    " deploy this plugin on GPU nodes",
)


class Host(NamedTuple):
    """Where host facts come from: `/`, or the simulator's host tree and driver root."""

    root: Path = Path("/")
    driver_root: str = "/"
    dev_root: str = "/"
    placeholder_nodes: Mapping[str, tuple[int, int]] | None = None  # simulated nodes
    # Where the control nodes are looked for: upstream stats the bare /dev paths in its
    # container (a quirk, kept); the simulator keeps its nodes under its dev root.
    control_root: str = "/"


class Running(Plain):
    """What one start left running; `stop()` undoes all of it."""

    servers: list[PluginServer] = factory(list)
    monitor: HealthMonitor | None = None
    cdi: CdiKeeper | None = None
    retry: bool = False  # a plugin failed to start: restart everything in 30 s

    def in_place(self) -> bool:
        """Every plugin of this start still served and registered; a start that found
        no devices serves none and waits, as upstream does, so it is in place too."""
        return not self.retry and all(server.in_place() for server in self.servers)

    def stop(self) -> None:
        if self.monitor is not None:
            self.monitor.stop()
            self.monitor = None
        for server in self.servers:
            server.stop()
        self.servers = []


class Remembered:
    """What outlives one start: the last good machine, its link topology, GPU health.

    The topology is read once per set of GPUs, never per call. The machine stands in when a
    later discovery fails on a GPU that fell off the bus: restarting with what was
    known keeps the healthy GPUs advertised, and the health check marks the lost one,
    where a fatal error would take every GPU of the node away. The GPUs' health is a
    fact of the node: a restart never advertises a marked GPU healthy again.
    """

    def __init__(self) -> None:
        self._cached: tuple[object, Topology | None] | None = None
        self.machine: Machine | None = None
        self.health = NodeHealth()
        self.cdi: CdiKeeper | None = None  # reused while its inputs stay the same

    def topology(self, machine: Machine) -> Topology | None:
        key = machine.gpus
        if self._cached is None or self._cached[0] != key:
            try:
                topology: Topology | None = read_topology(machine.gpus)
            except NvmlInitError as err:
                log.warning("unable to read the GPU link topology: %s", err)
                topology = None
            self._cached = (key, topology)
        return self._cached[1]


def scorer(topology: Topology | None) -> PairScore | None:
    if topology is None:
        return None
    table = {(p.a, p.b): pair_score(p.pcie_level, p.nvlinks) for p in topology.pairs}
    return lambda a, b: table.get((a, b) if a < b else (b, a), 0)


def _nvml_available() -> bool:
    try:
        with session():
            return True
    except NvmlInitError:
        return False


def validate_settings(settings: PluginSettings) -> None:
    """The flag checks of a start (docs/deviceplugin.md#flags), alone: a reload runs them
    before it stops the servers, so a config that fails them leaves the running plugins
    alone."""
    config = settings.config
    # Only the CDI strategies care whether NVML loads (upstream's start-up check).
    cdi = any(s.startswith("cdi-") for s in config.flags.plugin.device_list_strategy)
    nvml = _nvml_available() if cdi else True
    try:
        validate_plugin_flags(config, nvml_available=nvml)
    except ConfigError as err:
        raise PluginError(f"unable to load config: {VALIDATE_PREFIX}: {err}") from err


def _discover(settings: PluginSettings, host: Host, remembered: Remembered) -> Machine | None:
    """The machine, or None when NVML is missing and that is not fatal (--fail-on-init-error)."""
    try:
        remembered.machine = discover(host.root, "", with_vgpu=False)
        return remembered.machine
    except NvmlInitError as err:
        if settings.config.flags.fail_on_init_error:
            raise PluginError(f"{MANAGERS_PREFIX}: nvml init failed: {err}") from err
        log.error("Failed to initialize NVML: %s.", err)
        for line in NVML_INIT_HELP:
            log.error("%s", line)
        return None
    except DiscoveryError as err:
        if remembered.machine is None:
            raise PluginError(f"{MANAGERS_PREFIX}: {err}") from err
        log.warning("Discovery failed (%s); restarting with the GPUs found before", err)
        return remembered.machine


def build_resources(settings: PluginSettings, machine: Machine, host: Host) -> DeviceMap:
    config = settings.config
    try:
        device_map = build_device_map(
            machine, config.flags.mig_strategy, config.sharing, read_mig_minors(host.root)
        )
    except PluginError as err:
        raise err.wrapped(f"{MANAGERS_PREFIX}: error building device map") from err
    for warning in device_map.warnings:
        log.warning("%s", warning)
    if config.sharing.sharing_strategy() == "mps" and any(
        d.mig is not None for r in device_map.resources for d in r.devices
    ):
        raise PluginError(f"{CREATE_PREFIX}: sharing using MPS is not supported for MIG devices")
    return device_map


def allocate_options(
    settings: PluginSettings, host: Host, channels: tuple[str, ...]
) -> AllocateOptions:
    flags = settings.config.flags
    sharing = settings.config.sharing
    strategy = sharing.sharing_strategy()
    section = sharing.replicated_resources()
    return AllocateOptions(
        strategies=tuple(flags.plugin.device_list_strategy),
        id_strategy=flags.plugin.device_id_strategy,
        pass_device_specs=flags.plugin.pass_device_specs,
        annotation_prefix=flags.plugin.cdi_annotation_prefix,
        dev_root=host.dev_root,
        control_nodes=present_control_nodes(host.control_root),
        imex_channels=channels,
        shared=strategy in ("time-slicing", "mps"),
        fail_requests_greater_than_one=bool(
            section is not None and section.fail_requests_greater_than_one
        ),
        mps_root=flags.mps_root if strategy == "mps" else None,
        gdrcopy=flags.gdrcopy_enabled,
        gds=flags.gds_enabled,
        mofed=flags.mofed_enabled,
    )


def start_plugins(
    settings: PluginSettings,
    environ: Mapping[str, str],
    host: Host,
    remembered: Remembered,
    metrics: PluginMetrics = NO_METRICS,
) -> Running:
    """Upstream's startPlugins for one config; PluginError for the fatal failures."""
    for warning in settings.warnings:
        log.warning("%s", warning)
    validate_settings(settings)
    log.info("Running with config:\n%s", settings.config.to_json(include_gfd=False))
    flags = settings.config.flags
    channels = imex.present_channels(
        settings.config.imex.channel_ids,
        flags.plugin.container_driver_root,
        settings.config.imex.required,
    )
    running = Running()
    machine = _discover(settings, host, remembered)
    if machine is None or not machine.gpus:
        log.info("No devices found. Waiting indefinitely.")
        return running
    resources = build_resources(settings, machine, host).resources
    if not resources:
        log.info("No devices found. Waiting indefinitely.")
        return running
    options = allocate_options(settings, host, channels)
    if any(s.startswith("cdi-") for s in options.strategies):
        keeper = _cdi_keeper(settings, machine, resources, options, host, metrics)
        if remembered.cdi is not None and remembered.cdi.identity == keeper.identity:
            keeper = remembered.cdi  # a kubelet restart: no generation unless files changed
        running.cdi = remembered.cdi = keeper
        keeper.recheck_if_changed()
    wants_topology = any(r.aligned_allocation_supported and len(r.devices) > 1 for r in resources)
    score = scorer(remembered.topology(machine)) if wants_topology else None
    socket_dir = Path(settings.kubelet_socket or DEFAULT_KUBELET_SOCKET).parent
    policy = flags.plugin.shared_devices_allocation_policy
    running.servers = [_server(r, options, score, policy, socket_dir, metrics) for r in resources]
    # Health first: events from before the kubelet connects are not lost, and its first
    # ListAndWatch list already tells a GPU that failed to register for events.
    running.monitor = _start_health(running.servers, settings, environ, remembered.health, metrics)
    for server in running.servers:
        try:
            _start(server, settings, options)
        except PluginError as err:
            log.error("Failed to start plugin: %s", err)
            log.error("Failed to start one or more plugins. Retrying in 30s...")
            running.stop()
            running.retry = True
            return running
    return running


def serve_again(running: Running, settings: PluginSettings) -> None:
    """A kubelet restart under the same settings: the same servers, on new sockets,
    registered again; the health monitor and the CDI keeper go on.

    Nothing here asks NVML, which may be hung: the kubelet gets its registrations
    back within a second whatever the driver does, and the devices keep their health.
    On a failure the plugins stop and `running.retry` asks for a full start in 30 s.
    """
    for server in running.servers:
        server.stop()
    for server in running.servers:
        try:
            server.serve()
            if settings.kubelet_socket:
                server.register(settings.kubelet_socket)
        except PluginError as err:
            log.error("Failed to start plugin: %s", err)
            log.error("Failed to start one or more plugins. Retrying in 30s...")
            running.stop()
            running.retry = True
            return
    if running.cdi is not None:
        running.cdi.recheck_if_changed()


def _cdi_keeper(
    settings: PluginSettings,
    machine: Machine,
    resources: tuple[Resource, ...],
    options: AllocateOptions,
    host: Host,
    metrics: PluginMetrics = NO_METRICS,
) -> CdiKeeper:
    flags = settings.config.flags
    needed = (visible_id(d, options.id_strategy) for r in resources for d in r.devices)
    moves: tuple[tuple[str, str], ...] = ()
    driver_root, dev_root = host.driver_root, host.dev_root
    if host.placeholder_nodes is None:  # a real host: the driver may be mounted here
        driver_root, dev_root, moves = mounted_roots(
            host.driver_root, host.dev_root, flags.plugin.container_driver_root
        )
    source = GenerateInput(
        machine=machine,
        driver_root=driver_root,
        dev_root=dev_root,
        host_root=str(host.root),
        hook_path=flags.plugin.nvidia_ctk_path,
        id_strategy=options.id_strategy,
        full_gpus_for_mig_enabled=flags.mig_strategy == "none",
        disabled_hooks=tuple(settings.cdi_disable_hooks),
        feature_flags=tuple(settings.cdi_feature_flags),
        placeholder_nodes=host.placeholder_nodes,
        moves=moves,
    )
    dirs = spec_dirs(host.root, settings.cdi_spec_dir)
    own = Path(settings.cdi_spec_dir) / OWN_FILE
    names = tuple(dict.fromkeys(qualified_name(DEFAULT_KIND, n) for n in needed))
    return CdiKeeper(
        spec_dirs=dirs,
        own_path=own,
        needed=names,
        generate=lambda missing: generate_missing(source, missing),
        identity=(dirs, own, names, source),
        metrics=metrics,
    )


def _server(
    resource: Resource,
    options: AllocateOptions,
    score: PairScore | None,
    policy: str,
    socket_dir: Path,
    metrics: PluginMetrics = NO_METRICS,
) -> PluginServer:
    allocator = Allocator(
        resource,
        options,
        cdi_name=lambda name: qualified_name(DEFAULT_KIND, name),
        imex_cdi_name=lambda channel: imex_channel_name(int(channel)),
    )
    return PluginServer(
        resource, allocator, PreferredAllocator(resource, score, policy), socket_dir, metrics
    )


def _start(server: PluginServer, settings: PluginSettings, options: AllocateOptions) -> None:
    if options.mps_root is not None:
        from deviceplugin.mps import check_daemon

        check_daemon(server.resource_name)
    server.serve()
    if settings.kubelet_socket:
        try:
            server.register(settings.kubelet_socket)
        except PluginError:
            server.stop()
            raise
    else:
        log.info("Skipping registration with Kubelet")


def _start_health(
    servers: list[PluginServer],
    settings: PluginSettings,
    environ: Mapping[str, str],
    node: NodeHealth,
    metrics: PluginMetrics = NO_METRICS,
) -> HealthMonitor | None:
    policy = XidPolicy.from_environ(environ)
    if policy.checks_off:
        log.info("Health checks disabled (%s)", policy)
        return None
    watched = [
        Watched(d.id, d.gpu_uuid, d.mig, server, d.gpu_index)
        for server in servers
        for d in server.resource.devices
    ]
    period = settings.health_recovery_period.seconds
    monitor = HealthMonitor(
        watched,
        policy,
        recovery_period=period,
        fail_on_init_error=settings.config.flags.fail_on_init_error,
        node=node,
        metrics=metrics,
    )
    try:
        monitor.start()
    except PluginError as err:
        # [PROJECT] error level: a plugin registered with a dead checker (#1640).
        log.error("Failed to start health check: %s; continuing with health checks disabled", err)
        return None
    return monitor
