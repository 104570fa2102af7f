"""docs/labels.md, the label reference users select nodes by, against what GFD writes.

Matrix: every label key GFD writes on the built-in machines (each MIG strategy, no
sharing, time-slicing, MPS), on a node that MIG strategy `single` describes, and with
the shipped templates, is in the reference, and every key the reference lists is written
by one of them; every YAML example is a Pod that kubernetes-validate accepts; every
template example renders on the built-in machines; every name of the template context
and every filter is documented.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from gpu_builders import dgx_a100, with_migs

from gfd.labelers.resources import LabelError
from gfd.labels import compute_labels
from gfd.templating import LabelTemplates, load_templates
from gfd.templating.context import FILTERS, build_context
from nvlib import sim
from nvlib.config import Config, normalise, parse_config_data
from nvlib.discover import discover
from nvlib.model import Fabric
from nvlib.topology import NvLink

DOC = Path(__file__).resolve().parents[2] / "docs" / "labels.md"
TEXT = DOC.read_text()
MIN_KUBERNETES = "1.29.0"  # the chart's floor (test_chart_render.py)

SHARING = {
    "none": "version: v1\n",
    "time-slicing": "version: v1\nsharing:\n  timeSlicing:\n    resources:\n"
    "    - {name: nvidia.com/gpu, replicas: 4}\n",
    "mps": "version: v1\nsharing:\n  mps:\n    resources:\n"
    "    - {name: nvidia.com/gpu, replicas: 4}\n",
}


def _config(sharing: str, strategy: str) -> Config:
    config = parse_config_data(SHARING[sharing].encode())
    normalise(config)
    config.flags.mig_strategy = strategy
    return config


def _written_keys() -> Iterator[str]:
    """Every key GFD writes across the built-in machines, strategies and sharing."""
    templates = load_templates("builtin")
    for profile in sim.BUILTIN_PROFILES:
        with sim.activate(profile) as simulation:
            machine = discover(simulation.root)
            for strategy in ("none", "single", "mixed"):
                for sharing in SHARING:
                    config = _config(sharing, strategy)
                    try:
                        labels = compute_labels(machine, config, 1)
                    except LabelError:
                        continue  # MPS on MIG GPUs: refused, no labels
                    yield from labels
                    yield from templates.labels(machine, config, labels)
    # A node `single` describes: all MIG devices of one profile (the built-in MIG
    # machine mixes profiles, so `single` marks it INVALID).
    yield from compute_labels(with_migs(dgx_a100(), "1g.5gb"), _config("none", "single"))


WRITTEN = sorted(set(_written_keys()))


def _documented_keys() -> list[str]:
    """The first column of the reference tables: `nvidia.com/...` keys, placeholders kept."""
    keys = []
    for line in TEXT.splitlines():
        match = re.match(r"\| `(nvidia\.com/[^`]+)` \|", line)
        if match:
            keys.append(match.group(1))
    return keys


DOCUMENTED = _documented_keys()
_PLACEHOLDERS = {"<profile>": r"[0-9a-z.+-]+?", "<product>": r"[A-Za-z0-9._-]+"}


def _pattern(key: str) -> re.Pattern[str]:
    parts = re.split(r"(<[a-z]+>)", key)
    return re.compile("".join(_PLACEHOLDERS.get(p, re.escape(p)) for p in parts))


PATTERNS = {key: _pattern(key) for key in DOCUMENTED}


def test_the_reference_is_not_empty() -> None:
    assert len(DOCUMENTED) > 50
    assert len(WRITTEN) > 50


@pytest.mark.parametrize("key", WRITTEN)
def test_every_written_key_is_documented(key: str) -> None:
    assert any(p.fullmatch(key) for p in PATTERNS.values()), f"{key} is not in {DOC.name}"


@pytest.mark.parametrize("key", DOCUMENTED)
def test_every_documented_key_is_written(key: str) -> None:
    assert any(PATTERNS[key].fullmatch(k) for k in WRITTEN), f"{key}: GFD never writes it"


def _blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```$", TEXT, flags=re.MULTILINE | re.DOTALL)


POD_EXAMPLES = _blocks("yaml")


def test_there_are_recipes() -> None:
    assert len(POD_EXAMPLES) >= 8


@pytest.mark.parametrize("text", POD_EXAMPLES, ids=lambda t: yaml.safe_load(t)["metadata"]["name"])
def test_every_yaml_example_is_a_valid_pod(text: str) -> None:
    pod = yaml.safe_load(text)
    assert (pod["apiVersion"], pod["kind"]) == ("v1", "Pod")
    try:
        kubernetes_validate.validate(pod, MIN_KUBERNETES, strict=True)
    except kubernetes_validate.ValidationError as err:
        path = ".".join(str(p) for p in err.path)
        pytest.fail(f"{pod['metadata']['name']}: {path}: {err.message}", pytrace=False)


def test_recipes_select_by_labels_gfd_writes() -> None:
    """Each key a recipe selects on is one the reference documents."""
    for text in POD_EXAMPLES:
        spec = yaml.safe_load(text)["spec"]
        keys = list(spec.get("nodeSelector", {}))
        affinity = spec.get("affinity", {}).get("nodeAffinity", {})
        required = affinity.get("requiredDuringSchedulingIgnoredDuringExecution", {})
        terms = [t["matchExpressions"] for t in required.get("nodeSelectorTerms", [])]
        preferred = affinity.get("preferredDuringSchedulingIgnoredDuringExecution", [])
        terms += [p["preference"]["matchExpressions"] for p in preferred]
        keys += [e["key"] for term in terms for e in term]
        assert keys
        for key in keys:
            assert any(p.fullmatch(key) for p in PATTERNS.values()), key


@pytest.mark.parametrize("profile", ["dgx-a100", "mixed", "no-gpu"])
@pytest.mark.parametrize("index", range(len(_blocks("jinja"))))
def test_every_template_example_renders(tmp_path: Path, profile: str, index: int) -> None:
    (tmp_path / "example.j2").write_text(_blocks("jinja")[index])
    templates = LabelTemplates(tmp_path)
    config = Config()
    with sim.activate(profile) as simulation:
        machine = discover(simulation.root)
        builtin = compute_labels(machine, config)
        for template in templates.templates:  # raises TemplateFailure, unlike labels()
            templates.render(template, build_context(machine, config, builtin), builtin, {})


def _context_section() -> str:
    start = TEXT.index("### The context")
    return TEXT[start : TEXT.index("### The sandbox", start)]


def _names(prefix: str, value: object) -> Iterator[tuple[str, str]]:
    """(where, name) of every field of the context, lists by their first item."""
    if isinstance(value, dict):
        for name, inner in value.items():
            yield prefix, name
            yield from _names(name, inner)
    elif isinstance(value, list) and value:
        yield from _names(prefix, value[0])


def test_every_context_name_is_documented() -> None:
    machine = with_migs(dgx_a100(), "1g.5gb")
    machine = machine._replace(
        gpus=(machine.gpus[0]._replace(fabric=Fabric("7b968a6d-c8aa-45e1-9e07-e1e51be99c31", 1)),)
    )
    config = _config("time-slicing", "single")
    context = build_context(machine, config, {"k": "v"}, (NvLink(0, 0, "0000:c4:00.0", None),))
    section = _context_section()
    labels = context.pop("labels")
    assert labels == {"k": "v"}
    missing = [
        f"{where}.{name}" if where else name
        for where, name in _names("", context)
        if not re.search(rf"`([\w]+\.)*{re.escape(name)}`|[(,] `{re.escape(name)}`", section)
    ]
    assert "`labels`" in section
    assert not missing, f"context names missing from {DOC.name}: {missing}"


@pytest.mark.parametrize("name", sorted(FILTERS))
def test_every_filter_is_documented(name: str) -> None:
    assert f"| `{name}` |" in TEXT


def test_anchor_other_docs_link_to() -> None:
    deployment = (DOC.parent / "deployment.md").read_text()
    assert "labels.md#custom-labels-from-templates" in deployment
    assert "\n## Custom labels from templates\n" in TEXT
