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
from gfd.outputs import Output
from gfd.outputs.featurefile import FeatureFile, removal_applies
from nvlib import host

log = logging.getLogger(__name__)


def use_node_feature_api(settings: GfdSettings, environ: Mapping[str, str]) -> bool:
    """Resolve `true` / `false` / `auto` once per config load (spec/labels.md §17.1)."""
    value = settings.config.flags.use_node_feature_api
    if value in ("true", "false"):
        return value == "true"
    if settings.output_file_explicit:
        return False
    from gfd.outputs.nodefeature import api_serves_nodefeatures

    return api_serves_nodefeatures(settings.kubeconfig, environ)


def build_output(settings: GfdSettings, node_feature_api: bool) -> Output:
    gfd_flags = settings.config.flags.gfd
    if node_feature_api:
        from gfd.outputs.nodefeature import NodeFeatureOutput

        return NodeFeatureOutput(
            node_name=settings.node_name,
            namespace=settings.namespace,
            pod_name=settings.pod_name,
            kubeconfig=settings.kubeconfig,
            qps=settings.kube_api_qps,
            burst=settings.kube_api_burst,
        )
    removable = removal_applies(
        use_node_feature_api=node_feature_api,
        oneshot=gfd_flags.oneshot,
        sleep_infinite=gfd_flags.sleep_interval.infinite,
        output_file=gfd_flags.output_file,
    )
    return FeatureFile(gfd_flags.output_file or "-", remove_on_cleanup=removable)


def build_labeller(
    settings: GfdSettings, environ: Mapping[str, str]
) -> tuple[Labeller, Callable[[], None]]:
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
    output = build_output(settings, use_node_feature_api(settings, environ))
    return Labeller(settings, output, root, machine_type_file), output.cleanup
