"""Render deployments/static/ from the Helm chart: `python tools/render_manifests.py`.

The static manifests are the chart rendered with fixed values, so they never drift from
it: tests/deployments/test_static.py renders them again and compares (`--check` does the
same here). Each file starts with the Namespace, so `kubectl apply -f FILE` works alone.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "deployments" / "helm" / "gpu-node-toolkit"
STATIC = ROOT / "deployments" / "static"
NAMESPACE = "gpu-node-toolkit"
RELEASE = "gpu-node-toolkit"

# file name -> (what it is, the --set values beyond the chart's defaults)
VARIANTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "gpu-node-toolkit.yaml": (
        "the chart's defaults: device plugin, GFD (NodeFeature when NFD serves it) and the"
        " CDI generator",
        (),
    ),
    "gpu-node-toolkit-feature-file.yaml": (
        "GFD writes only the NFD feature file (no API access, no RBAC)",
        ("gfd.useNodeFeatureAPI=false",),
    ),
}

_HEADER = """\
# {name}: {about}.
# Rendered from deployments/helm/gpu-node-toolkit by tools/render_manifests.py; do not
# edit by hand (a test compares). Apply with: kubectl apply -f {name}
---
apiVersion: v1
kind: Namespace
metadata:
  name: {namespace}
"""


def render(helm: Path, name: str) -> str:
    """One static file's text: the header, the Namespace, then `helm template`."""
    about, values = VARIANTS[name]
    command = [str(helm), "template", RELEASE, str(CHART), "--namespace", NAMESPACE]
    for value in values:
        command += ["--set", value]
    rendered = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    text = _HEADER.format(name=name, about=about, namespace=NAMESPACE) + rendered
    return text if text.endswith("\n") else text + "\n"


def main(argv: list[str]) -> int:
    from fetch_helm import HINT, find_helm  # beside this script

    check = argv == ["--check"]
    if argv and not check:
        print("usage: python tools/render_manifests.py [--check]", file=sys.stderr)
        return 2
    helm = find_helm()
    if helm is None:
        print(f"render_manifests: no helm found; {HINT}", file=sys.stderr)
        return 1
    stale = []
    for name in VARIANTS:
        text, path = render(helm, name), STATIC / name
        if check:
            if not path.is_file() or path.read_text() != text:
                stale.append(name)
            continue
        STATIC.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path.relative_to(ROOT)}", file=sys.stderr)
    if stale:
        print(f"stale: {', '.join(stale)}; run python tools/render_manifests.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
