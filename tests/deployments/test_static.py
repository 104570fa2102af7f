"""deployments/static/ is the chart rendered: re-render each file and compare.

Also what every shipped manifest must say on its own ([PROJECT]: upstream's did not):
GFD gets NODE_NAME, NAMESPACE and POD_NAME from the downward API.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from helm_chart import helm, load_tool

render_manifests = load_tool("render_manifests")
NAMES = sorted(render_manifests.VARIANTS)


def test_every_file_is_a_variant() -> None:
    on_disk = sorted(p.name for p in render_manifests.STATIC.glob("*.yaml"))
    assert on_disk == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_static_matches_the_chart(name: str) -> None:
    path: Path = render_manifests.STATIC / name
    expected = render_manifests.render(Path(helm()), name)
    assert path.read_text() == expected, f"{path} is stale: run python tools/render_manifests.py"


@pytest.mark.parametrize("name", NAMES)
def test_static_gfd_has_downward_env(name: str) -> None:
    docs = [d for d in yaml.safe_load_all((render_manifests.STATIC / name).read_text()) if d]
    assert docs[0] == {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": render_manifests.NAMESPACE},
    }
    gfd = next(
        d for d in docs
        if d["kind"] == "DaemonSet" and d["metadata"]["name"].endswith("gpu-feature-discovery")
    )  # fmt: skip
    env = {
        e["name"]: e.get("valueFrom")
        for e in gfd["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["NODE_NAME"] == {"fieldRef": {"fieldPath": "spec.nodeName"}}
    assert env["NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert env["POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
