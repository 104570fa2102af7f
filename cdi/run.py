"""The edges of `nvidia-cdi generate`: simulation, discovery, the write, and `--watch`.

One pass is observe -> generate (pure) -> write (docs/architecture.md). What a pass observes
depends on `--mode`: in `nvml` mode the device model (NVML) and then the driver files;
in `imex` mode the IMEX channel nodes; in `management` mode the driver version and the
NVIDIA nodes, then the driver files. A pass that fails at any step writes nothing, so a
failed discovery never replaces a good spec. `--watch` keeps the spec in step with the
node: it observes every `--interval` and regenerates only when what the spec depends on
changed (the driver version, the GPUs and MIG layout; the set of channels; the driver
version and the set of nodes), so a stable node sees no writes and its engines no
rescans. A failed check is logged and retried at the next interval, leaving the last
good spec in place. With `--heartbeat-file` every check that ran to its end (spec
written, node unchanged, or discovery failed and the last good spec kept) touches the
heartbeat (nvlib/heartbeat.py); a hung check does not. With `--metrics-address` each
check and regeneration, with its cause (`regeneration_cause`), is counted and served
(cdi/metrics.py).
"""

from __future__ import annotations

import functools
import logging
import signal
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import NamedTuple

from cdi.cli import IGNORED_FEATURE_FLAGS, GenerateSettings
from cdi.devnodes import find_imex_channels, find_management_nodes
from cdi.driverfiles import DriverFiles, find_driver_files, find_hook_path
from cdi.errors import CdiError
from cdi.features import feature_options
from cdi.generate import GenerateOptions, generate_spec
from cdi.metrics import NO_METRICS, PrometheusWatchMetrics, WatchMetrics
from cdi.modes import imex_spec, management_spec
from cdi.owners import GENERATOR_LOCK_SECONDS, held_by_plugin, write_beside_plugin
from cdi.simroot import lay_out
from cdi.spec import Spec
from cdi.transform import name_host_roots
from cdi.write import output_target, write_spec
from nvlib import mock
from nvlib.discover import DiscoveryError, driver_version
from nvlib.discover import discover as discover_with_nvml
from nvlib.driverroot import preload_nvml
from nvlib.heartbeat import Heartbeat, HeartbeatError
from nvlib.host import HostFacts
from nvlib.metrics import MetricsError, MetricsServer, serve_recorder
from nvlib.model import Machine
from nvlib.nvml import LIBRARY_MISMATCH_EXIT, NvmlError, NvmlInitError, is_library_mismatch
from nvlib.signals import Signals

log = logging.getLogger("cdi")

__all__ = ["Host", "WatchControl", "generate_once", "node_state", "resolve_host", "watch"]

Discover = Callable[["Host"], Machine]
# What one pass saw (compared by --watch) and how to build the spec from it.
Observation = tuple[tuple[object, ...], Callable[[], Spec]]


class Host(NamedTuple):
    """Where this run reads from: the host tree, the driver root, the dev root.

    `moves` pairs a root as read here with the same root on the host, when the roots
    are mounted into this container elsewhere (`--driver-root-ctr-path`): the spec is
    built from what is read, then names the host's paths (`name_host_roots`).
    """

    host_root: str = "/"
    driver_root: str = "/"
    dev_root: str = "/"
    placeholder_nodes: Mapping[str, tuple[int, int]] = MappingProxyType({})
    moves: tuple[tuple[str, str], ...] = ()
    simulator_root: str | None = None  # --simulator-root: laid out before each pass


def resolve_host(settings: GenerateSettings) -> Host:
    """The roots to read; with `--nvml-mock` the simulated profile supplies them.

    Explicit `--driver-root` / `--dev-root` beat the profile (docs/cdi.md#simulated-nodes).
    In simulation the profile's placeholder nodes (regular files at the paths it names,
    relative to the dev root) count as devices under whichever dev root is read, so a
    test or benchmark can bring its own driver root; real character devices are always
    read as they are. With `--simulator-root DIR` the driver and dev root is DIR, where
    the simulated driver root is laid out with real nodes (`cdi.simroot`), so the spec
    names paths that stay on the host.
    """
    if not settings.nvml_mock:
        driver_root = settings.driver_root or "/"
        return _in_container(Host("/", driver_root, settings.dev_root or driver_root), settings)

    simulation = mock.simulation(settings.nvml_mock)
    if settings.simulator_root is not None:
        root = settings.simulator_root
        return Host(str(simulation.root), root, root, simulator_root=root)
    # With a mounted driver root, --driver-root is the host's (default /), not the profile's.
    mounted = settings.driver_root_ctr_path is not None
    driver_root = settings.driver_root or ("/" if mounted else str(simulation.driver_root))
    dev_root = settings.dev_root or driver_root
    host = Host(str(simulation.root), driver_root, dev_root, dict(simulation.device_nodes))
    return _in_container(host, settings)


def _in_container(host: Host, settings: GenerateSettings) -> Host:
    """Read the roots where `--driver-root-ctr-path` / `--dev-root-ctr-path` mount them.

    The dev root follows the driver root's mount when it is the driver root (the
    default) and has no mount of its own; a dev root given without one is read as given.
    With a real driver mounted, NVML is loaded from the mount too, as the plugin does.
    """
    driver_ctr, dev_ctr = settings.driver_root_ctr_path, settings.dev_root_ctr_path
    if driver_ctr is None and dev_ctr is None:
        return host
    moves: list[tuple[str, str]] = []
    driver_root, dev_root = host.driver_root, host.dev_root
    if driver_ctr is not None:
        moves.append((driver_ctr, host.driver_root))
        driver_root = driver_ctr
        if not settings.nvml_mock:
            preload_nvml(driver_ctr)
    if dev_ctr is not None:
        moves.append((dev_ctr, host.dev_root))
        dev_root = dev_ctr
    elif host.dev_root == host.driver_root:
        dev_root = driver_root
    return host._replace(driver_root=driver_root, dev_root=dev_root, moves=tuple(moves))


def _for_host(spec: Spec, host: Host) -> Spec:
    if not host.moves:
        return spec

    return name_host_roots(spec, host.moves)


def discover_machine(host: Host) -> Machine:
    """One NVML pass (real or simulated) under the host tree."""
    facts = _host_facts(host.host_root)
    return discover_with_nvml(facts.root, machine_type_file="", with_vgpu=False, facts=facts)


@functools.cache
def _host_facts(host_root: str) -> HostFacts:
    """Static sysfs facts, read (and warned about) once per process, not every --watch pass."""

    return HostFacts(Path(host_root), "")


def node_state(machine: Machine) -> tuple[object, ...]:
    """What `--watch` compares: the driver version, the GPUs, the MIG layout."""
    return machine.node_state


def _gpu_set(gpus: tuple[tuple[object, ...], ...]) -> tuple[tuple[object, ...], ...]:
    """Of each GPU of `Machine.node_state`: UUID, index, minor, PCI bus (not its MIG)."""
    return tuple(gpu[:4] for gpu in gpus)


def regeneration_cause(
    mode: str, written: tuple[object, ...] | None, state: tuple[object, ...], simulated: bool
) -> str:
    """Why `--watch` writes for `state` after `written` (None: nothing yet), one word for
    the metric (cdi/metrics.py): `start`; `signal` (a SIGHUP, the node as written);
    `driver`, `gpus` (a GPU came, went or moved) or `mig` (the MIG layout) in nvml mode;
    `imex_channels` in imex mode; `driver` or `device_nodes` in management mode;
    `simulator_root` (the simulated root repaired, nothing else). The first that applies
    wins, so one regeneration counts once. `simulated`: the states carry a repair count
    (`--simulator-root`)."""
    if written is None:
        return "start"
    if state == written:
        return "signal"
    if simulated:
        if state[0] == written[0]:
            return "simulator_root"
        written, state = written[0], state[0]  # type: ignore[assignment]  # (state, repairs)
    if mode == "imex":
        return "imex_channels"
    if mode == "management":
        return "driver" if state[1] != written[1] else "device_nodes"
    if state[0] != written[0]:
        return "driver"
    if _gpu_set(state[1]) != _gpu_set(written[1]):  # type: ignore[arg-type]  # GPUs' tuples
        return "gpus"
    return "mig"


def generate_options(settings: GenerateSettings) -> GenerateOptions:
    flags = set(settings.feature_flags)
    for flag in sorted(flags & IGNORED_FEATURE_FLAGS):
        log.warning("Feature flag %s has no effect in this generator", flag)
    if "enable-coherent-annotations" in flags:
        log.warning("Feature flag enable-coherent-annotations is not supported; ignored")
    features = feature_options(flags)
    return GenerateOptions(
        vendor=settings.vendor,
        device_class=settings.device_class,
        device_name_strategies=tuple(settings.device_name_strategies),
        hook_path=find_hook_path(settings.hook_path),
        disabled_hooks=frozenset(settings.disabled_hooks),
        enabled_hooks=frozenset(settings.enabled_hooks),
        ldconfig_path=settings.ldconfig_path,
        no_all_device=settings.no_all_device,
        device_ids=settings.device_ids,
        no_additional_gids=features.no_additional_gids,
    )


def _driver_files(machine: Machine, host: Host, settings: GenerateSettings) -> DriverFiles:
    features = feature_options(settings.feature_flags)
    return find_driver_files(
        machine,
        host.driver_root,
        host.dev_root,
        host_root=host.host_root,
        library_search_paths=settings.library_search_paths,
        config_search_paths=settings.config_search_paths,
        placeholder_nodes=host.placeholder_nodes,
        explicit_libraries=features.explicit_libraries,
        ipc_sockets=features.ipc_sockets,
    )


def build_spec(
    machine: Machine, host: Host, settings: GenerateSettings, options: GenerateOptions
) -> Spec:
    files = _driver_files(machine, host, settings)
    log.info("Using driver version %s", files.version)
    return generate_spec(machine, files, options)


def _write(spec: Spec, settings: GenerateSettings) -> None:
    path, fmt = output_target(settings.output, settings.format)
    log.info("Generated CDI spec with version %s", spec.version)
    if path == "-":
        write_spec(spec, path, fmt)
        return
    # Beside the device plugin's own spec file: never a name both files define (owners)

    done = write_beside_plugin(spec, path, fmt, GENERATOR_LOCK_SECONDS)
    log.info("%s %s", _WRITE_OUTCOMES[done], path)


_WRITE_OUTCOMES = {
    "written": "Wrote CDI spec to",
    "unchanged": "CDI spec unchanged:",
    "removed": "The device plugin's spec defines every device; no CDI spec at",
}


def _observe_nvml(
    host: Host, settings: GenerateSettings, options: GenerateOptions, discover: Discover
) -> Observation:
    machine = discover(host)
    return node_state(machine), lambda: build_spec(machine, host, settings, options)


def _observe_imex(host: Host, options: GenerateOptions) -> Observation:
    """The channel nodes; no NVML at all (a channel is whatever the driver created)."""
    channels = find_imex_channels(host.dev_root, host.placeholder_nodes)
    return ("imex", channels), lambda: imex_spec(channels, options, host.dev_root)


def _nvml_driver_version() -> str:
    """NVML's driver version, or "" (the libraries' suffix then names it, as upstream)."""
    try:
        return driver_version()
    except (NvmlError, DiscoveryError) as err:
        log.warning("No driver version from NVML (%s); using the libraries' suffix", err)
        return ""


def _observe_management(
    host: Host, settings: GenerateSettings, options: GenerateOptions
) -> Observation:
    """The driver version and the NVIDIA nodes: no per-GPU query (upstream asks none)."""
    version = _nvml_driver_version()
    nodes = find_management_nodes(host.dev_root, host.placeholder_nodes)

    def build() -> Spec:
        # A machine without GPUs: find_driver_files then looks only for driver files.
        machine = Machine(driver_version=version, cuda_driver_version=0)
        files = _driver_files(machine, host, settings)
        log.info("Using driver version %s", files.version)
        return management_spec(nodes, files, options)

    return ("management", version, nodes), build


def _lay_out(settings: GenerateSettings) -> bool:
    """`--simulator-root`: the simulated driver root laid out again; True if that changed
    anything (an unchanged root is not touched: `cdi.simroot`)."""
    assert settings.simulator_root is not None and settings.nvml_mock is not None
    done = lay_out(settings.simulator_root, mock.simulation(settings.nvml_mock).profile)
    if done.changed:
        log.info("Simulated driver root %s laid out: %s", settings.simulator_root, done.summary())
    return done.changed


def _observer(
    settings: GenerateSettings, discover: Discover
) -> Callable[[Host, GenerateOptions], Observation]:
    """The mode's observation; the spec it builds names the host's roots (`_for_host`).

    With `--simulator-root` each observation first lays the simulated root out again,
    repairing what was removed or changed; a repair counts as a node change.
    """
    repairs = 0

    def observe(host: Host, options: GenerateOptions) -> Observation:
        nonlocal repairs
        if host.simulator_root is not None and _lay_out(settings):
            repairs += 1
        if settings.mode == "imex":
            state, build = _observe_imex(host, options)
        elif settings.mode == "management":
            state, build = _observe_management(host, settings, options)
        else:
            state, build = _observe_nvml(host, settings, options, discover)
        # the names left to the device plugin's file: one it lets go is taken back
        state = (*state, held_by_plugin(settings.output))
        if host.simulator_root is not None:
            state = (*state, repairs)
        return state, lambda: _for_host(build(), host)

    return observe


def _pass(
    host: Host, settings: GenerateSettings, options: GenerateOptions, discover: Discover
) -> tuple[object, ...]:
    """Observe, generate, write; returns the state written for. Raises on failure."""
    state, build = _observer(settings, discover)(host, options)
    _write(build(), settings)
    return state


def _failure_text(err: BaseException) -> str:
    text = str(err) or type(err).__name__
    if isinstance(err, NvmlInitError):
        return f"failed to initialize NVML: {text}"  # nvidia-ctk's wording
    return text


def generate_once(settings: GenerateSettings, discover: Discover = discover_machine) -> int:
    """`nvidia-cdi generate`: one pass; 0 on success, 1 (nothing written) on failure."""
    try:
        host = resolve_host(settings)
        options = generate_options(settings)
        _pass(host, settings, options, discover)
    except (CdiError, OSError, RuntimeError, ValueError) as err:
        log.error("failed to generate CDI spec: %s", _failure_text(err))
        return 1
    return 0


def _driver_replaced(err: BaseException) -> bool:
    """The driver was upgraded under this process: only a new one loads its library."""
    if not is_library_mismatch(err):
        return False
    log.error("%s and regenerates", LIBRARY_MISMATCH_EXIT)
    return True


class WatchControl(Signals):
    """How a signal handler (or a test) talks to the watch loop (`nvlib.signals`)."""

    def stop(self) -> None:
        self.send(signal.SIGTERM)

    def regenerate(self) -> None:
        self.send(signal.SIGHUP)

    def install_signals(self) -> None:
        """SIGTERM, SIGINT and SIGQUIT stop; SIGHUP regenerates now."""
        self.install()


def watch(
    settings: GenerateSettings,
    discover: Discover = discover_machine,
    control: WatchControl | None = None,
) -> int:
    """`generate --watch`: a pass now, then one whenever the node state changes.

    Runs until `control.stop()` (SIGTERM, SIGINT or SIGQUIT when run as a command);
    SIGHUP (`control.regenerate()`) forces a pass at once, and one that comes during a
    pass forces another; a stop wins over any SIGHUP (`nvlib.signals`). Failures are
    logged and retried at the next interval: the spec on disk stays the last good one.
    One failure ends the watch (1): NVML reporting a library/kernel module version
    mismatch, i.e. a driver upgraded under this process, which a restart (the
    DaemonSet's) cures. Every check that ran to its end touches the heartbeat, if there
    is one. With `settings.metrics_address` the checks are counted and served at it
    (cdi/metrics.py); an address that cannot be bound ends the watch (1) before any
    check.
    """
    control = control or WatchControl()
    interval = settings.interval_ns / 1e9

    heartbeat = None
    if settings.heartbeat_file:
        heartbeat = Heartbeat(settings.heartbeat_file, interval)
    server = None
    try:
        metrics, server = _serve_metrics(settings.metrics_address)
        if heartbeat is not None:
            heartbeat.start()  # a bad path fails here, before any pass
        host = resolve_host(settings)
        options = generate_options(settings)
        if host.simulator_root is not None:
            _lay_out(settings)  # a DIR that cannot be laid out (no CAP_MKNOD) ends it now
    except (CdiError, HeartbeatError, MetricsError, OSError, RuntimeError, ValueError) as err:
        log.error("failed to start: %s", _failure_text(err))
        if server is not None:
            server.close()
        return 1
    try:
        return _watch_loop(settings, discover, control, metrics, heartbeat, host, options)
    finally:
        if server is not None:
            server.close()


def _serve_metrics(address: str | None) -> tuple[WatchMetrics, MetricsServer | None]:
    """The recorder and, with an address, the server of /metrics for the watch's life."""
    if not address:
        return NO_METRICS, None

    return serve_recorder(address, PrometheusWatchMetrics)


def _watch_loop(
    settings: GenerateSettings,
    discover: Discover,
    control: WatchControl,
    metrics: WatchMetrics,
    heartbeat: Heartbeat | None,
    host: Host,
    options: GenerateOptions,
) -> int:
    """`watch` once started: a check per interval until a stop."""
    interval = settings.interval_ns / 1e9
    simulated = host.simulator_root is not None
    observe = _observer(settings, discover)
    written: tuple[object, ...] | None = None
    forced = True  # the first pass always writes (an unchanged file is kept)
    while True:
        # Taken before the pass: a SIGHUP that comes during it forces the next one.
        received = control.take()
        if received == signal.SIGHUP:
            log.info("Received SIGHUP, regenerating.")
            forced = True
        elif received is not None:
            log.info("Received signal %s, shutting down.", signal.Signals(received).name)
            return 0
        try:
            state, build = observe(host, options)
        except Exception as err:  # whatever failed, the last good spec stays
            log.error("discovery failed, keeping the current spec: %s", _failure_text(err))
            metrics.check("discovery_error")
            if _driver_replaced(err):
                return 1
        else:
            if forced or state != written:
                if written is not None and state != written:
                    log.info("Node changed (%s mode); regenerating", settings.mode)
                cause = regeneration_cause(settings.mode, written, state, simulated)
                try:
                    spec = build()
                    _write(spec, settings)
                    written, forced = state, False
                    metrics.check("regenerated")
                    metrics.regenerated(cause, len(spec.devices))
                except (CdiError, OSError, ValueError) as err:
                    log.error("failed to generate CDI spec, keeping the current one: %s", err)
                    metrics.check("generate_error")
                except Exception:  # a bug must not end the watch: log it, retry next time
                    log.exception("failed to generate CDI spec, keeping the current one")
                    metrics.check("generate_error")
            else:
                metrics.check("unchanged")
        if heartbeat is not None:
            heartbeat.beat()
        control.wait(interval)
