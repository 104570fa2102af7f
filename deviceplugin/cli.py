"""The `nvidia-device-plugin` command line, environment and config file, merged once.

Flags, aliases, variables and defaults are upstream's (docs/deviceplugin.md#flags); each
option resolves as command line > first set environment variable > config file > default,
through nvlib.config's Go-compatible parsing (the same helpers as GFD). Additions:
`--nvml-mock` / `NVML_MOCK`, `--cdi-spec-dir` / `CDI_SPEC_DIR`,
`--health-recovery-period` / `DP_HEALTH_RECOVERY_PERIOD` (opt-in), `--heartbeat-file`
/ `DP_HEARTBEAT_FILE` (a liveness heartbeat, deviceplugin/daemon.py) and
`--metrics-address` / `DP_METRICS_ADDRESS` (Prometheus metrics, deviceplugin/metrics.py).

Imports nothing heavy: this runs before every start and on every SIGHUP.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from nvlib.config import Config, ConfigError, Duration, normalise
from nvlib.config.cliflags import COMMON_FLAGS, Flag, ParsedFlags, format_help, resolve
from nvlib.metrics import parse_address
from nvlib.record import Plain, factory

COMMAND = "nvidia-device-plugin"
SUMMARY = "NVIDIA device plugin for Kubernetes"
DEFAULT_KUBELET_SOCKET = "/var/lib/kubelet/device-plugins/kubelet.sock"
DEFAULT_CDI_SPEC_DIR = "/var/run/cdi"

FLAGS: tuple[Flag, ...] = (
    Flag(
        "mig-strategy", "string", "none",
        "the desired strategy for exposing MIG devices on GPUs that support it:"
        " [none | single | mixed]",
        envs=("MIG_STRATEGY",),
    ),
    Flag(
        "fail-on-init-error", "bool", True,
        "fail the plugin if an error is encountered during initialization,"
        " otherwise block indefinitely",
        envs=("FAIL_ON_INIT_ERROR",),
    ),
    Flag(
        "driver-root", "string", "/", "the root path for the NVIDIA driver installation",
        aliases=("nvidia-driver-root",), envs=("NVIDIA_DRIVER_ROOT",),
    ),
    Flag(
        "dev-root", "string", "",
        "the root path for the NVIDIA device nodes on the host (default: the driver root)",
        aliases=("nvidia-dev-root",), envs=("NVIDIA_DEV_ROOT",),
    ),
    Flag(
        "pass-device-specs", "bool", False,
        "pass the list of DeviceSpecs to the kubelet on Allocate()",
        envs=("PASS_DEVICE_SPECS",),
    ),
    Flag(
        "device-list-strategy", "string-list", ["envvar"],
        "the desired strategy for passing the device list to the underlying runtime:"
        " [envvar | volume-mounts | cdi-annotations | cdi-cri]",
        envs=("DEVICE_LIST_STRATEGY",),
    ),
    Flag(
        "device-id-strategy", "string", "uuid",
        "the desired strategy for passing device IDs to the underlying runtime: [uuid | index]",
        envs=("DEVICE_ID_STRATEGY",),
    ),
    Flag(
        "gdrcopy-enabled", "bool", False,
        "ensure that containers that request NVIDIA GPU resources are started with"
        " GDRCopy support",
        envs=("GDRCOPY_ENABLED",),
    ),
    Flag(
        "gds-enabled", "bool", False,
        "ensure that containers that request NVIDIA GPU resources are started with"
        " GPUDirect Storage support",
        envs=("GDS_ENABLED",),
    ),
    Flag(
        "mofed-enabled", "bool", False,
        "ensure that containers that request NVIDIA GPU resources are started with"
        " MOFED support",
        envs=("MOFED_ENABLED",),
    ),
    Flag(
        "cdi-annotation-prefix", "string", "cdi.k8s.io/",
        "the prefix to use for CDI container annotation keys",
        envs=("CDI_ANNOTATION_PREFIX",),
    ),
    Flag(
        "nvidia-cdi-hook-path", "string", "/usr/bin/nvidia-ctk",
        "the path to use for NVIDIA CDI hooks in the generated CDI specification",
        aliases=("nvidia-ctk-path",), envs=("NVIDIA_CDI_HOOK_PATH", "NVIDIA_CTK_PATH"),
    ),
    Flag(
        "driver-root-ctr-path", "string", "/driver-root",
        "the path where the NVIDIA driver root is mounted in the container; used for"
        " generating CDI specifications",
        aliases=("container-driver-root",),
        envs=("DRIVER_ROOT_CTR_PATH", "CONTAINER_DRIVER_ROOT"),
    ),
    Flag(
        "mps-root", "string", "",
        "the path on the host where MPS-specific mounts and files are created by the MPS"
        " control daemon manager",
        envs=("MPS_ROOT",),
    ),
    Flag(
        "shared-devices-allocation-policy", "string", "distributed",
        "the policy for allocating shared devices: [distributed | packed]",
        envs=("SHARED_DEVICES_ALLOCATION_POLICY",),
    ),
    Flag(
        "device-discovery-strategy", "string", "auto",
        "the strategy to use to discover devices: 'auto' or 'nvml'",
        envs=("DEVICE_DISCOVERY_STRATEGY",),
    ),
    Flag(
        "imex-channel-ids", "int-list", [],
        "a list of IMEX channels to inject", envs=("IMEX_CHANNEL_IDS",),
    ),
    Flag(
        "imex-required", "bool", False,
        "the specified IMEX channels are required", envs=("IMEX_REQUIRED",),
    ),
    Flag(
        "kubelet-socket", "string", DEFAULT_KUBELET_SOCKET,
        "the kubelet's registration socket; the plugin's own sockets go in its directory,"
        " and an empty value skips registration",
        envs=("KUBELET_SOCKET",),
    ),
    Flag(
        "config-file", "string", "",
        "the path to a config file as an alternative to command line options"
        " or environment variables",
        envs=("CONFIG_FILE",),
    ),
    Flag(
        "cdi-feature-flags", "string-list", [],
        "a set of feature flags to be passed to the CDI spec generation logic",
        envs=("CDI_FEATURE_FLAGS",),
    ),
    Flag(
        "cdi-disable-hooks", "string-list", [],
        "the CDI hooks to leave out of a generated spec; 'all' leaves out every hook",
        envs=("CDI_DISABLE_HOOKS",),
    ),
    Flag(
        "cdi-spec-dir", "string", DEFAULT_CDI_SPEC_DIR,
        "where the plugin looks for, and if need be writes, the CDI spec that defines"
        " the names it hands out",
        envs=("CDI_SPEC_DIR",),
    ),
    Flag(
        "health-recovery-period", "duration", Duration(None),
        "mark an unhealthy GPU healthy again after this long without a critical XID, if"
        " NVML still reaches it (a Go duration; infinite, the default, never does)",
        envs=("DP_HEALTH_RECOVERY_PERIOD",),
    ),
    Flag(
        "heartbeat-file", "string", "",
        "a file whose mtime is set after each registration with the kubelet and at each"
        " 30s node check while every plugin is still served and registered, for a"
        " liveness probe (python3 -m nvlib.heartbeat check)",
        envs=("DP_HEARTBEAT_FILE",),
    ),
    Flag(
        "metrics-address", "string", "",
        "serve Prometheus metrics at http://HOST:PORT/metrics (e.g. :9410); empty, the"
        " default, serves none",
        envs=("DP_METRICS_ADDRESS",),
    ),
    *COMMON_FLAGS,
)  # fmt: skip


def _flags_over_file(parsed: ParsedFlags, config: Config) -> None:
    """An option set on the command line or in the environment beats the config file."""
    flags, plugin, imex = config.flags, config.flags.plugin, config.imex
    given = parsed.is_set
    if given("mig-strategy"):
        flags.mig_strategy = parsed.text("mig-strategy")
    if given("fail-on-init-error"):
        flags.fail_on_init_error = parsed.boolean("fail-on-init-error")
    if given("driver-root"):
        flags.nvidia_driver_root = parsed.text("driver-root")
    if given("dev-root"):
        flags.nvidia_dev_root = parsed.text("dev-root")
    if given("gdrcopy-enabled"):
        flags.gdrcopy_enabled = parsed.boolean("gdrcopy-enabled")
    if given("gds-enabled"):
        flags.gds_enabled = parsed.boolean("gds-enabled")
    if given("mofed-enabled"):
        flags.mofed_enabled = parsed.boolean("mofed-enabled")
    if given("mps-root"):
        flags.mps_root = parsed.text("mps-root")
    if given("device-discovery-strategy"):
        flags.device_discovery_strategy = parsed.text("device-discovery-strategy")
    if given("pass-device-specs"):
        plugin.pass_device_specs = parsed.boolean("pass-device-specs")
    if given("device-list-strategy"):
        plugin.device_list_strategy = parsed.texts("device-list-strategy")
    if given("device-id-strategy"):
        plugin.device_id_strategy = parsed.text("device-id-strategy")
    if given("cdi-annotation-prefix"):
        plugin.cdi_annotation_prefix = parsed.text("cdi-annotation-prefix")
    if given("nvidia-cdi-hook-path"):
        plugin.nvidia_ctk_path = parsed.text("nvidia-cdi-hook-path")
    if given("driver-root-ctr-path"):
        plugin.container_driver_root = parsed.text("driver-root-ctr-path")
    if given("shared-devices-allocation-policy"):
        plugin.shared_devices_allocation_policy = parsed.text("shared-devices-allocation-policy")
    if given("imex-channel-ids"):
        imex.channel_ids = parsed.integers("imex-channel-ids")
    if given("imex-required"):
        imex.required = parsed.boolean("imex-required")


class PluginSettings(Plain):
    config: Config
    config_file: str
    kubelet_socket: str  # "" = do not register
    cdi_spec_dir: str
    cdi_feature_flags: list[str]
    cdi_disable_hooks: list[str]
    health_recovery_period: Duration
    heartbeat_file: str  # "" = none
    metrics_address: str  # "" = no metrics; else HOST:PORT, checked
    nvml_mock: str | None  # None when not given or empty
    driver_root_explicit: bool  # --driver-root / NVIDIA_DRIVER_ROOT set (beats a profile's)
    show_version: bool
    warnings: list[str] = factory(list)  # normalise()'s, for the caller to log


def usage() -> str:
    return format_help(COMMAND, SUMMARY, FLAGS)


def parse(argv: Sequence[str], environ: Mapping[str, str]) -> PluginSettings:
    """Resolve every option; raise ConfigError with upstream's text where it has one.

    `argv` excludes the program name; `-h` prints the usage and exits 0. Flag
    validation needs to know whether NVML loads, so it happens at start.
    """
    parsed, config = resolve(COMMAND, SUMMARY, argv, environ, FLAGS)
    _flags_over_file(parsed, config)
    show_version = parsed.boolean("version")
    config_file = parsed.text("config-file")
    file_flags = config.flags
    # Upstream fills an option the file leaves unset from the flag's default.
    if file_flags.nvidia_driver_root is None:
        file_flags.nvidia_driver_root = "/"
    if file_flags.mps_root == "":
        file_flags.mps_root = None
    metrics_address = parsed.text("metrics-address")
    if metrics_address:
        try:
            parse_address(metrics_address)
        except ValueError as err:
            raise ConfigError("--metrics-address", metrics_address, str(err)) from err
    warnings = normalise(config)
    return PluginSettings(
        config=config,
        config_file=config_file,
        kubelet_socket=parsed.text("kubelet-socket"),
        cdi_spec_dir=parsed.text("cdi-spec-dir"),
        cdi_feature_flags=parsed.texts("cdi-feature-flags"),
        cdi_disable_hooks=parsed.texts("cdi-disable-hooks"),
        health_recovery_period=parsed.duration("health-recovery-period"),
        heartbeat_file=parsed.text("heartbeat-file"),
        metrics_address=metrics_address,
        nvml_mock=parsed.text("nvml-mock") or None,
        driver_root_explicit=parsed.is_set("driver-root"),
        show_version=show_version,
        warnings=warnings,
    )
