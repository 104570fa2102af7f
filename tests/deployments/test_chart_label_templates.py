"""The chart's `gfd.labelTemplates`: a ConfigMap of templates GFD reads, or `builtin`.

Matrix: off by default (no ConfigMap, variable, mount or checksum); a map (the ConfigMap
holds it verbatim, mounted read-only where GFD_LABEL_TEMPLATES points, a checksum that
moves with the text, and the mounted files, laid out as the kubelet lays out a ConfigMap
volume, compile and render labels through GFD's own loader); `builtin` (the variable
only); GFD disabled; and the schema's refusals (file names, non-text entries, other
words). Lint and kubernetes-validate of both settings run in test_chart_render.py
(helm_chart.VALUE_SETS).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helm_chart import (
    NAMESPACE,
    assert_schema_rejects,
    container,
    daemonset,
    env,
    find,
    mounts,
    render,
)

from gfd.cli import parse
from gfd.labels import compute_labels
from gfd.templating import load_templates
from nvlib import sim
from nvlib.discover import discover

GFD = "gpu-feature-discovery"
DIRECTORY = "/etc/gpu-feature-discovery/label-templates"
CONFIGMAP = "gnt-gpu-node-toolkit-gfd-label-templates"
TEMPLATES = {
    "models.j2": "{% import 'macros.inc' as m %}\nnvidia.com/gpu.models={{ m.models(gpus) }}\n",
    "macros.inc": "{% macro models(gpus) %}{{ gpus | groupby('product') | length }}{% endmacro %}",
    "memory.j2": 'nvidia.com/gpu.memory-gib={{ gpus | map(attribute="memory_mib") | min | gib }}\n',
}


def _annotations(docs: list[dict[str, Any]]) -> dict[str, str]:
    return daemonset(docs, GFD)["spec"]["template"]["metadata"].get("annotations", {})


def test_off_by_default() -> None:
    docs = render()
    assert find(docs, "ConfigMap", "gfd-label-templates") is None
    assert "GFD_LABEL_TEMPLATES" not in env(container(docs, GFD))
    assert DIRECTORY not in mounts(docs, GFD)
    assert "checksum/label-templates" not in _annotations(docs)


def test_a_map_becomes_a_mounted_configmap() -> None:
    docs = render({"gfd": {"labelTemplates": TEMPLATES}})
    configmap = find(docs, "ConfigMap", "gfd-label-templates")
    assert configmap is not None
    assert configmap["metadata"]["name"] == CONFIGMAP
    assert configmap["metadata"]["namespace"] == NAMESPACE
    assert configmap["data"] == TEMPLATES
    assert mounts(docs, GFD)[DIRECTORY] == {"readOnly": True, "configMap": {"name": CONFIGMAP}}
    assert env(container(docs, GFD))["GFD_LABEL_TEMPLATES"] == DIRECTORY
    for other in ("device-plugin", "cdi-generator"):
        assert DIRECTORY not in mounts(docs, other)
        assert "checksum/label-templates" not in _annotations_of(docs, other)


def _annotations_of(docs: list[dict[str, Any]], component: str) -> dict[str, str]:
    return daemonset(docs, component)["spec"]["template"]["metadata"].get("annotations", {})


def test_a_template_change_rolls_gfd() -> None:
    first = _annotations(render({"gfd": {"labelTemplates": TEMPLATES}}))
    changed = dict(TEMPLATES, **{"memory.j2": "nvidia.com/gpu.memory-gib=1\n"})
    second = _annotations(render({"gfd": {"labelTemplates": changed}}))
    assert first["checksum/label-templates"] != second["checksum/label-templates"]


def test_checksum_beside_the_shared_annotations() -> None:
    values = {"podAnnotations": {"team": "ml"}, "gfd": {"labelTemplates": TEMPLATES}}
    annotations = _annotations(render(values))
    assert annotations["team"] == "ml"
    assert set(annotations) == {"team", "checksum/label-templates"}


def _as_configmap_volume(data: dict[str, str], directory: Path) -> None:
    """The kubelet's layout: `<key> -> ..data/<key>`, `..data -> ..<timestamp>`."""
    stamped = directory / "..2026_01_01_00_00_00.000000001"
    stamped.mkdir(parents=True)
    for key, text in data.items():
        (stamped / key).write_text(text)
        (directory / key).symlink_to(f"..data/{key}")
    (directory / "..data").symlink_to(stamped.name)


def test_gfd_reads_the_mounted_templates(tmp_path: Path) -> None:
    docs = render({"gfd": {"labelTemplates": TEMPLATES}})
    configmap = find(docs, "ConfigMap", "gfd-label-templates")
    assert configmap is not None
    mounted = tmp_path / DIRECTORY.lstrip("/")
    _as_configmap_volume(configmap["data"], mounted)
    variable = env(container(docs, GFD))["GFD_LABEL_TEMPLATES"]
    settings = parse([], {"GFD_LABEL_TEMPLATES": str(tmp_path) + variable})
    templates = load_templates(settings.config.flags.gfd.label_templates)
    assert templates.names == ["memory.j2", "models.j2"]
    with sim.activate("mixed") as simulation:
        machine = discover(simulation.root, "")
        builtin = compute_labels(machine, settings.config)
        added = templates.labels(machine, settings.config, builtin)
    assert added == {"nvidia.com/gpu.memory-gib": "15", "nvidia.com/gpu.models": "2"}


def test_builtin() -> None:
    docs = render({"gfd": {"labelTemplates": "builtin"}})
    assert env(container(docs, GFD))["GFD_LABEL_TEMPLATES"] == "builtin"
    assert find(docs, "ConfigMap", "gfd-label-templates") is None
    assert DIRECTORY not in mounts(docs, GFD)


def test_no_configmap_without_gfd() -> None:
    docs = render({"gfd": {"enabled": False, "labelTemplates": TEMPLATES}})
    assert find(docs, "ConfigMap", "gfd-label-templates") is None


@pytest.mark.parametrize(
    "templates",
    [
        pytest.param({"../x.j2": "nvidia.com/a=1\n"}, id="path"),
        pytest.param({".hidden.j2": "nvidia.com/a=1\n"}, id="dot-file"),
        pytest.param({"a b.j2": "nvidia.com/a=1\n"}, id="space"),
        pytest.param({"a.j2": ["nvidia.com/a=1"]}, id="not-text"),
        pytest.param("mine", id="other-word"),
        pytest.param(["a.j2"], id="list"),
    ],
)
def test_schema_rejects(templates: object) -> None:
    assert_schema_rejects({"gfd": {"labelTemplates": templates}}, "/gfd/labelTemplates")
