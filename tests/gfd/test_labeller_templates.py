"""Label templates and the expiry in one config load (gfd/setup.py, gfd/daemon.py).

Matrix: a pass with templates (built-in labels unchanged, template labels added,
sorted), a template failing at run time (the built-in labels and the other templates'
still written), start-up versus SIGHUP reload with a template that does not compile
(start-up: TemplateLoadError; reload: logged, the templates in force stay in force, also
when there were none), and the feature file's expiry from K x the sleep interval.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import pytest

from gfd.cli import parse
from gfd.daemon import Labeller
from gfd.labels import compute_labels
from gfd.outputs.featurefile import FeatureFile
from gfd.setup import build_labeller, build_output
from gfd.templating import TemplateLoadError
from nvlib import mock
from nvlib.discover import discover


class Collect:
    """An Output that keeps what it was given."""

    def __init__(self) -> None:
        self.written: list[dict[str, str]] = []

    def write(self, labels: Mapping[str, str]) -> None:
        self.written.append(dict(labels))

    def cleanup(self) -> None:
        pass


def _labeller(tmp_path: Path, *argv: str) -> Labeller:
    settings = parse(["--nvml-mock", "mixed", "--output-file", str(tmp_path / "gfd"), *argv], {})
    labeller, _ = build_labeller(settings, {})
    labeller.output = Collect()
    return labeller


def _builtin(labeller: Labeller) -> dict[str, str]:
    root = mock.simulation("mixed").root
    return compute_labels(discover(root, facts=labeller.facts), labeller.settings.config)


def test_a_pass_adds_template_labels(tmp_path: Path) -> None:
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "a.j2").write_text("nvidia.com/zz.models={{ gpus | length }}\n")
    labeller = _labeller(tmp_path, "--label-templates", str(tmp_path / "t"), "--no-timestamp")
    labeller.output.write(labeller.labels())
    (written,) = labeller.output.written  # type: ignore[attr-defined]
    assert written == _builtin(labeller) | {"nvidia.com/zz.models": "3"}
    assert list(written) == sorted(written)


def test_a_failing_template_costs_only_its_own_labels(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "a.j2").write_text("nvidia.com/a={{ machine.nope }}\n")
    (tmp_path / "t" / "b.j2").write_text("nvidia.com/b=1\n")
    labeller = _labeller(tmp_path, "--label-templates", str(tmp_path / "t"), "--no-timestamp")
    labeller.output.write(labeller.labels())
    (written,) = labeller.output.written  # type: ignore[attr-defined]
    assert written == _builtin(labeller) | {"nvidia.com/b": "1"}
    assert f"label template {tmp_path / 't' / 'a.j2'}:1: UndefinedError" in caplog.text


def test_without_templates_nothing_is_added(tmp_path: Path) -> None:
    labeller = _labeller(tmp_path, "--no-timestamp")
    assert labeller.templates is None
    labeller.output.write(labeller.labels())
    assert labeller.output.written == [_builtin(labeller)]  # type: ignore[attr-defined]


def _broken(tmp_path: Path) -> str:
    (tmp_path / "t").mkdir(exist_ok=True)
    (tmp_path / "t" / "a.j2").write_text("nvidia.com/a=1\n{% if %}\n")
    return str(tmp_path / "t")


def test_a_syntax_error_at_start_is_a_start_up_error(tmp_path: Path) -> None:
    settings = parse(["--nvml-mock", "t4", "--label-templates", _broken(tmp_path)], {})
    with pytest.raises(TemplateLoadError) as caught:
        build_labeller(settings, {})
    assert str(caught.value) == (
        f"label template {tmp_path / 't' / 'a.j2'}:2: Expected an expression, got 'end of"
        " statement block'"
    )


def test_a_syntax_error_at_reload_keeps_the_templates_in_force(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    good = tmp_path / "good"
    good.mkdir()
    (good / "a.j2").write_text("nvidia.com/a=1\n")
    first, _ = build_labeller(parse(["--nvml-mock", "t4", "--label-templates", str(good)], {}), {})
    assert first.templates is not None
    caplog.set_level(logging.ERROR, logger="gfd.setup")
    reload = parse(["--nvml-mock", "t4", "--label-templates", _broken(tmp_path)], {})
    second, _ = build_labeller(reload, {}, first)
    assert second.templates is first.templates
    assert [r.getMessage() for r in caplog.records] == [
        f"label template {tmp_path / 't' / 'a.j2'}:2: Expected an expression, got 'end of"
        " statement block'; the label templates in force stay in force"
    ]


def test_a_syntax_error_at_reload_without_templates_before(tmp_path: Path) -> None:
    first, _ = build_labeller(parse(["--nvml-mock", "t4"], {}), {})
    reload = parse(["--nvml-mock", "t4", "--label-templates", _broken(tmp_path)], {})
    second, _ = build_labeller(reload, {}, first)
    assert second.templates is None


def test_reload_turns_templates_off(tmp_path: Path) -> None:
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "a.j2").write_text("nvidia.com/a=1\n")
    argv = ["--nvml-mock", "t4", "--label-templates", str(tmp_path / "t")]
    first, _ = build_labeller(parse(argv, {}), {})
    second, _ = build_labeller(parse(["--nvml-mock", "t4"], {}), {}, first)
    assert second.templates is None


@pytest.mark.parametrize(
    ("argv", "expiry"),
    [
        pytest.param([], None, id="off"),
        pytest.param(["--label-expiry=3"], 180.0, id="3-x-60s"),
        pytest.param(["--label-expiry=2", "--sleep-interval=90s"], 180.0, id="2-x-90s"),
        pytest.param(["--label-expiry=4", "--sleep-interval=500ms"], 2.0, id="4-x-500ms"),
    ],
)
def test_expiry_is_k_sleep_intervals(argv: list[str], expiry: float | None) -> None:
    output = build_output(parse(["--output-file=/x/gfd", *argv], {}), "file")
    assert isinstance(output, FeatureFile)
    assert output.expiry_seconds == expiry


def test_expiry_with_a_nodefeature_chosen_by_auto_is_a_warning(
    caplog: pytest.LogCaptureFixture, kubeconfig: str
) -> None:
    settings = parse(["--label-expiry=3", "--kubeconfig", kubeconfig], {"NODE_NAME": "n"})
    build_output(settings, "nodefeature")
    assert "--label-expiry applies to the feature file only; the NodeFeature has none" in (
        caplog.text
    )
