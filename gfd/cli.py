"""The `gpu-feature-discovery` command line, environment and config file, merged once.

Every flag and variable keeps upstream's name, aliases and default, and each option
resolves as: command line > first set environment variable > config file > default.
`--nvml-mock` / `NVML_MOCK`, `--heartbeat-file` / `GFD_HEARTBEAT_FILE` (a liveness
heartbeat touched after every pass, nvlib/heartbeat.py), `--label-templates`,
`--label-template-namespaces` and `--label-expiry` (docs/labels.md) and
`--metrics-address` / `GFD_METRICS_ADDRESS` (Prometheus metrics, gfd/metrics.py) are the
project's additions.

This runs on every `gpu-feature-discovery --oneshot`, so it imports nothing heavy: yaml
only when a YAML config file is read.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from nvlib.config import Config, ConfigError, normalise
from nvlib.config.cliflags import COMMON_FLAGS, Flag, ParsedFlags, format_help, resolve
from nvlib.config.schema import (
    DEFAULT_MACHINE_TYPE_FILE,
    DEFAULT_OUTPUT_FILE,
    DEFAULT_SLEEP_INTERVAL,
)
from nvlib.config.validate import (
    VALIDATE_PREFIX,
    check_device_discovery_strategy,
    check_label_expiry,
    check_label_template_namespaces,
)
from nvlib.record import Plain, factory

log = logging.getLogger("gfd")

COMMAND = "gpu-feature-discovery"
SUMMARY = "generate labels for NVIDIA devices"

FLAGS: tuple[Flag, ...] = (
    Flag(
        "mig-strategy", "string", "none",
        "the desired strategy for exposing MIG devices on GPUs that support it:"
        " [none | single | mixed]",
        envs=("GFD_MIG_STRATEGY", "MIG_STRATEGY"),
    ),
    Flag(
        "fail-on-init-error", "bool", True,
        "fail the plugin if an error is encountered during initialization,"
        " otherwise block indefinitely",
        envs=("GFD_FAIL_ON_INIT_ERROR", "FAIL_ON_INIT_ERROR"),
    ),
    Flag("oneshot", "bool", False, "Label once and exit", envs=("GFD_ONESHOT",)),
    Flag(
        "no-timestamp", "bool", False, "Do not add the timestamp to the labels",
        envs=("GFD_NO_TIMESTAMP",),
    ),
    Flag(
        "sleep-interval", "duration", DEFAULT_SLEEP_INTERVAL,
        "Time to sleep between labeling (a Go duration, or infinite)",
        envs=("GFD_SLEEP_INTERVAL",),
    ),
    Flag(
        "output-file", "string", DEFAULT_OUTPUT_FILE,
        "the file to write the labels to; - for standard output",
        aliases=("output", "o"), envs=("GFD_OUTPUT_FILE",),
    ),
    Flag(
        "machine-type-file", "string", DEFAULT_MACHINE_TYPE_FILE,
        "a path to a file that contains the DMI (SMBIOS) information for the node",
        envs=("GFD_MACHINE_TYPE_FILE",),
    ),
    Flag(
        "config-file", "string", "",
        "the path to a config file as an alternative to command line options"
        " or environment variables",
        envs=("GFD_CONFIG_FILE", "CONFIG_FILE"),
    ),
    Flag(
        "use-node-feature-api", "tristate", "auto",
        "Use NFD NodeFeature API to publish labels: true, false or auto",
        envs=("GFD_USE_NODE_FEATURE_API", "USE_NODE_FEATURE_API"),
    ),
    Flag(
        "device-discovery-strategy", "string", "auto",
        "the strategy to use to discover devices: 'auto' or 'nvml'",
        envs=("DEVICE_DISCOVERY_STRATEGY",),
    ),
    Flag(
        "driver-root-ctr-path", "string", "/driver-root",
        "the path where the NVIDIA driver root is mounted in the container",
        aliases=("container-driver-root",),
        envs=("DRIVER_ROOT_CTR_PATH", "CONTAINER_DRIVER_ROOT"),
    ),
    Flag(
        "kubeconfig", "string", "",
        "Absolute path to the KUBECONFIG file. Either this flag or the KUBECONFIG env"
        " variable need to be set if the driver is being run out of cluster.",
        envs=("KUBECONFIG",),
    ),
    Flag(
        "kube-api-qps", "float", 5.0,
        "QPS to use while communicating with the Kubernetes apiserver.",
        envs=("KUBE_API_QPS",),
    ),
    Flag(
        "kube-api-burst", "int", 10,
        "Burst to use while communicating with the Kubernetes apiserver.",
        envs=("KUBE_API_BURST",),
    ),
    Flag(
        "namespace", "string", "default", "The namespace used for the custom resources.",
        envs=("NAMESPACE",),
    ),
    Flag("node-name", "string", "", "The name of the node to be worked on.", envs=("NODE_NAME",)),
    Flag("pod-name", "string", "", "The name of the pod running GFD.", envs=("POD_NAME",)),
    Flag(
        "heartbeat-file", "string", "",
        "a file whose mtime is set after every labelling pass, for a liveness probe"
        " (python3 -m nvlib.heartbeat check); not with --oneshot",
        envs=("GFD_HEARTBEAT_FILE",),
    ),
    Flag(
        "label-templates", "string", "",
        "a directory of Jinja2 label templates (*.j2) whose labels are added to the"
        " built-in ones, or builtin for the shipped templates",
        envs=("GFD_LABEL_TEMPLATES",),
    ),
    Flag(
        "label-template-namespaces", "string-list", [],
        "label namespaces the templates may write besides nvidia.com (comma-separated)",
        envs=("GFD_LABEL_TEMPLATE_NAMESPACES",),
    ),
    Flag(
        "label-expiry", "int", 0,
        "write NFD's expiry directive into the feature file, this many sleep intervals"
        " ahead, so the labels vanish when GFD stops; 0 for none",
        envs=("GFD_LABEL_EXPIRY",),
    ),
    Flag(
        "metrics-address", "string", "",
        "serve Prometheus metrics at http://HOST:PORT/metrics (e.g. :9411); empty, the"
        " default, serves none; not with --oneshot",
        envs=("GFD_METRICS_ADDRESS",),
    ),
    *COMMON_FLAGS,
)  # fmt: skip

# How an error names an option the command line or environment did not set.
_CONFIG_KEYS = {
    "label-template-namespaces": "flags.gfd.labelTemplateNamespaces",
    "label-expiry": "flags.gfd.labelExpiry",
}


class GfdSettings(Plain):
    config: Config
    config_file: str
    output_file_explicit: bool  # --output-file/--output/-o or GFD_OUTPUT_FILE: `auto` -> file
    kubeconfig: str
    kube_api_qps: float
    kube_api_burst: int
    namespace: str
    node_name: str
    pod_name: str
    heartbeat_file: str  # "" = none
    metrics_address: str  # "" = no metrics; else HOST:PORT, checked
    nvml_mock: str | None  # --nvml-mock PROFILE / NVML_MOCK; None when not given or empty
    show_version: bool
    warnings: list[str] = factory(list)  # normalise()'s, already logged


def _flags_over_file(parsed: ParsedFlags, config: Config) -> None:
    """An option set on the command line or in the environment beats the config file."""
    flags, gfd = config.flags, config.flags.gfd
    given = parsed.is_set
    if given("mig-strategy"):
        flags.mig_strategy = parsed.text("mig-strategy")
    if given("fail-on-init-error"):
        flags.fail_on_init_error = parsed.boolean("fail-on-init-error")
    if given("use-node-feature-api"):
        flags.use_node_feature_api = parsed.text("use-node-feature-api")
    if given("device-discovery-strategy"):
        flags.device_discovery_strategy = parsed.text("device-discovery-strategy")
    if given("driver-root-ctr-path"):
        flags.plugin.container_driver_root = parsed.text("driver-root-ctr-path")
    if given("oneshot"):
        gfd.oneshot = parsed.boolean("oneshot")
    if given("no-timestamp"):
        gfd.no_timestamp = parsed.boolean("no-timestamp")
    if given("sleep-interval"):
        gfd.sleep_interval = parsed.duration("sleep-interval")
    if given("output-file"):
        gfd.output_file = parsed.text("output-file")
    if given("machine-type-file"):
        gfd.machine_type_file = parsed.text("machine-type-file")
    if given("label-templates"):
        gfd.label_templates = parsed.text("label-templates")
    if given("label-template-namespaces"):
        gfd.label_template_namespaces = parsed.texts("label-template-namespaces")
    if given("label-expiry"):
        gfd.label_expiry = parsed.integer("label-expiry")


def _origin(parsed: ParsedFlags, name: str) -> str:
    """The flag or variable that set an option, else its config-file key."""
    return parsed.origins.get(name) or _CONFIG_KEYS[name]


def _check_label_options(config: Config, parsed: ParsedFlags) -> None:
    gfd = config.flags.gfd
    check_label_template_namespaces(
        gfd.label_template_namespaces, _origin(parsed, "label-template-namespaces")
    )
    check_label_expiry(
        gfd.label_expiry,
        _origin(parsed, "label-expiry"),
        oneshot=gfd.oneshot,
        infinite=gfd.sleep_interval.infinite,
        node_feature_api=config.flags.use_node_feature_api == "true",
    )


def usage() -> str:
    return format_help(COMMAND, SUMMARY, FLAGS)


def parse(argv: Sequence[str], environ: Mapping[str, str]) -> GfdSettings:
    """Resolve every option; raise ConfigError, with upstream's text where it has one.

    `argv` excludes the program name. `-h`/`--help` prints the usage to standard output
    and exits 0. With `--version` the config file is not read, so the version prints even
    when the file is broken.
    """
    parsed, config = resolve(COMMAND, SUMMARY, argv, environ, FLAGS)
    _flags_over_file(parsed, config)
    show_version = parsed.boolean("version")
    config_file = parsed.text("config-file")
    if not show_version:
        try:
            check_device_discovery_strategy(config.flags.device_discovery_strategy)
        except ConfigError as err:
            raise err.wrapped(f"unable to load config: {VALIDATE_PREFIX}") from err
    heartbeat_file = parsed.text("heartbeat-file")
    if heartbeat_file and config.flags.gfd.oneshot and not show_version:
        raise ConfigError(
            "--heartbeat-file", heartbeat_file, "a one-shot run has no loop to prove alive"
        )
    metrics_address = parsed.text("metrics-address")
    if metrics_address and not show_version:
        _check_metrics_address(metrics_address, config.flags.gfd.oneshot)
    if config.flags.use_node_feature_api is None:
        config.flags.use_node_feature_api = "auto"  # GFD's default (docs/labels-output.md)
    if not show_version:
        _check_label_options(config, parsed)
    warnings = normalise(config)
    for warning in warnings:
        log.warning(warning)
    return GfdSettings(
        config=config,
        config_file=config_file,
        output_file_explicit=parsed.is_set("output-file"),
        kubeconfig=parsed.text("kubeconfig"),
        kube_api_qps=parsed.number("kube-api-qps"),
        kube_api_burst=parsed.integer("kube-api-burst"),
        namespace=parsed.text("namespace"),
        node_name=parsed.text("node-name"),
        pod_name=parsed.text("pod-name"),
        heartbeat_file=heartbeat_file,
        metrics_address=metrics_address,
        nvml_mock=parsed.text("nvml-mock") or None,
        show_version=show_version,
        warnings=warnings,
    )


def _check_metrics_address(address: str, oneshot: bool) -> None:
    from nvlib.metrics import parse_address

    if oneshot:
        raise ConfigError("--metrics-address", address, "a one-shot run exits before any scrape")
    try:
        parse_address(address)
    except ValueError as err:
        raise ConfigError("--metrics-address", address, str(err)) from err
