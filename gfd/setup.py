"""Wiring one config load to the host: the simulator, the host root and the output.

Kept apart from the loop so that the heavy edges (the Kubernetes client) are imported
only when the resolved output needs them (docs/architecture.md#who-may-import-whom).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from gfd.cli import GfdSettings
from gfd.daemon import Labeller
from gfd.metrics import NO_METRICS, GfdMetrics
from gfd.outputs import Output
from gfd.outputs.featurefile import FeatureFile, removal_applies
from gfd.outputs.handover import Handover
from nvlib import host

if TYPE_CHECKING:
    from gfd.templating import LabelTemplates  # imports jinja2: only with templates

Resolved = Literal["nodefeature", "file", "undecided"]

log = logging.getLogger(__name__)


def use_node_feature_api(
    settings: GfdSettings, environ: Mapping[str, str], metrics: GfdMetrics = NO_METRICS
) -> Resolved:
    """Resolve `true` / `false` / `auto` at each config load (docs/labels-output.md).

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
    if resolved != "file" and gfd_flags.label_expiry:
        # An explicit --use-node-feature-api=true with an expiry is refused at start; here
        # `auto` chose (or may choose) the API, which has no expiry directive.
        log.warning("--label-expiry applies to the feature file only; the NodeFeature has none")

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
    expiry = None
    if gfd_flags.label_expiry:
        expiry = gfd_flags.label_expiry * (gfd_flags.sleep_interval.seconds or 0.0)
    file = FeatureFile(
        gfd_flags.output_file or "-",
        remove_on_cleanup=removable,
        expiry_seconds=expiry,
        metrics=metrics,
    )
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


def load_label_templates(
    settings: GfdSettings, previous: LabelTemplates | None, reloading: bool
) -> LabelTemplates | None:
    """This load's templates; at a SIGHUP reload a broken set keeps the previous one.

    At start a template that does not compile is a start-up error (TemplateLoadError, a
    ConfigError); at a reload it is logged and the templates in force stay in force.
    """
    gfd_flags = settings.config.flags.gfd
    if not gfd_flags.label_templates:
        return None
    from gfd.templating import TemplateLoadError, load_templates  # jinja2: only here

    try:
        return load_templates(gfd_flags.label_templates, gfd_flags.label_template_namespaces)
    except TemplateLoadError as err:
        if not reloading:
            raise
        log.error("%s; the label templates in force stay in force", err)
        return previous


def build_labeller(
    settings: GfdSettings,
    environ: Mapping[str, str],
    previous: Labeller | None = None,
    metrics: GfdMetrics = NO_METRICS,
) -> tuple[Labeller, Callable[[], None]]:
    """One config load's labeller; `previous` is the last load's at a SIGHUP reload (its
    output may have to be withdrawn, its templates stay if the new ones do not compile);
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
    templates = load_label_templates(
        settings, previous.templates if previous is not None else None, previous is not None
    )
    resolved = use_node_feature_api(settings, environ, metrics)
    output = build_output(
        settings, resolved, environ, previous.output if previous is not None else None, metrics
    )
    labeller = Labeller(
        settings, output, root, machine_type_file, templates=templates, metrics=metrics
    )
    return labeller, output.cleanup
