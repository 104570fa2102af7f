"""Wiring one config load to the host: the simulator, the host root and the output.

Kept apart from the loop so that the heavy edges (the Kubernetes client) are imported
only when the resolved output needs them (spec/stack.md §3.3).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path

from gfd.cli import GfdSettings
from gfd.daemon import Labeller
from gfd.metrics import NO_METRICS, GfdMetrics
from gfd.outputs import Output
from gfd.outputs.featurefile import FeatureFile, removal_applies
from gfd.outputs.handover import Handover
from nvlib import host

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Literal

    Resolved = Literal["nodefeature", "file", "undecided"]

log = logging.getLogger(__name__)


def use_node_feature_api(
    settings: GfdSettings, environ: Mapping[str, str], metrics: GfdMetrics = NO_METRICS
) -> Resolved:
    """Resolve `true` / `false` / `auto` at each config load (spec/labels.md §17.1).

    `undecided`: `auto` with a client config whose discovery got no answer; the
    output asks again before each write (gfd/outputs/auto.py).
    """
    value = settings.config.flags.use_node_feature_api
    if value in ("true", "false"):
        return "nodefeature" if value == "true" else "file"
    if settings.output_file_explicit:
        return "file"
    from gfd.outputs.nodefeature import Discovery, discover_nodefeatures

    found = discover_nodefeatures(settings.kubeconfig, environ, metrics=metrics)
    if found is Discovery.UNREACHABLE:
        return "undecided"
    return "nodefeature" if found is Discovery.SERVED else "file"


def build_output(
    settings: GfdSettings,
    resolved: Resolved,
    environ: Mapping[str, str] | None = None,
    previous: Output | None = None,
    metrics: GfdMetrics = NO_METRICS,
) -> Output:
    """The output for `resolved`; `previous` is the last config load's output.

    Whenever a NodeFeature publishes, the feature file is withdrawn after its first
    write; a reload that moves from a NodeFeature to the file withdraws the object.
    """
    gfd_flags = settings.config.flags.gfd

    def nodefeature() -> Output:
        from gfd.outputs.nodefeature import NodeFeatureOutput

        return NodeFeatureOutput(
            node_name=settings.node_name,
            namespace=settings.namespace,
            pod_name=settings.pod_name,
            kubeconfig=settings.kubeconfig,
            qps=settings.kube_api_qps,
            burst=settings.kube_api_burst,
            metrics=metrics,
        )

    removable = removal_applies(
        use_node_feature_api=resolved == "nodefeature",
        oneshot=gfd_flags.oneshot,
        sleep_infinite=gfd_flags.sleep_interval.infinite,
        output_file=gfd_flags.output_file,
    )
    file = FeatureFile(gfd_flags.output_file or "-", remove_on_cleanup=removable, metrics=metrics)
    output: Output
    if resolved == "nodefeature":
        output = nodefeature()
        if not file.to_stdout:
            output = Handover(output, file)
    elif resolved == "undecided":
        from gfd.outputs.auto import AutoOutput
        from gfd.outputs.nodefeature import discover_nodefeatures

        env = environ or {}
        output = AutoOutput(
            file,
            lambda: discover_nodefeatures(settings.kubeconfig, env, metrics=metrics),
            nodefeature,
        )
    else:
        output = file
        if previous is not None and previous.kind == "nodefeature" and not file.to_stdout:
            return Handover(file, previous)
    if previous is not None:
        previous.close()
    return output


def build_labeller(
    settings: GfdSettings,
    environ: Mapping[str, str],
    previous: Output | None = None,
    metrics: GfdMetrics = NO_METRICS,
) -> tuple[Labeller, Callable[[], None]]:
    """`previous`: the output of the config load this one replaces (SIGHUP), or None;
    `metrics`: what the passes and the output report to."""
    flags = settings.config.flags
    log.info("Running with config:\n%s", settings.config.to_json())
    root = Path("/")
    machine_type_file = flags.gfd.machine_type_file
    if settings.nvml_mock:
        from nvlib import mock  # kept across SIGHUP reloads unless the profile changes

        root = mock.simulation(settings.nvml_mock).root
        if machine_type_file == host.DEFAULT_MACHINE_TYPE_FILE:
            # An explicit --machine-type-file beats the profile; the default reads its DMI.
            machine_type_file = str(host.in_root(root, machine_type_file))
    resolved = use_node_feature_api(settings, environ, metrics)
    output = build_output(settings, resolved, environ, previous, metrics)
    labeller = Labeller(settings, output, root, machine_type_file, metrics=metrics)
    return labeller, output.cleanup
