"""The chart lints strictly, renders, and every object is valid Kubernetes.

Matrix: each value set of helm_chart.VALUE_SETS x (helm lint --strict, helm template +
kubernetes-validate in strict mode against the oldest Kubernetes the chart supports).
kubernetes-validate stops at the first error in a document, so a document with two
errors needs two fixes; the message names the object and the field. A PodMonitor, a CRD
kubernetes-validate does not know, is checked against its shape (podmonitor_shape).
"""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import podmonitor_shape
import pytest
import yaml
from helm_chart import CHART, NAMESPACE, VALUE_SETS, render, run_helm

# Chart.yaml's kubeVersion floor: the oldest release the objects must validate against.
MIN_KUBERNETES = "1.29.0"

CASES = [pytest.param(values, id=name) for name, values in VALUE_SETS.items()]


@pytest.mark.parametrize("values", CASES)
def test_lint_strict(values: dict[str, Any]) -> None:
    result = run_helm("lint", "--strict", str(CHART), "--namespace", NAMESPACE, values=values)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout


@pytest.mark.parametrize("values", CASES)
def test_every_object_validates(values: dict[str, Any]) -> None:
    docs = render(values)
    assert docs, "rendered nothing"
    for doc in docs:
        name = f"{doc['kind']}/{doc['metadata']['name']}"
        if doc["kind"] == "PodMonitor":  # the Prometheus Operator's CRD: its shape checked here
            assert podmonitor_shape.problems(doc) == [], name
            continue
        try:
            kubernetes_validate.validate(doc, MIN_KUBERNETES, strict=True)
        except kubernetes_validate.ValidationError as err:
            path = ".".join(str(p) for p in err.path)
            pytest.fail(f"{name}: {path}: {err.message}", pytrace=False)


def test_chart_metadata() -> None:
    """appVersion is the package's version: the image tag follows the code."""
    import nvlib

    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert (chart["apiVersion"], chart["version"]) == ("v2", "0.1.0")
    assert chart["appVersion"] == nvlib.__version__
    assert chart["kubeVersion"] == f">={MIN_KUBERNETES}-0"
