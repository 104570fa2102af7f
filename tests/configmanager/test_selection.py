"""Which config a node gets (configmanager/selection.py): every rule and every error."""

from __future__ import annotations

import pytest

from configmanager.selection import SelectionError, available_configs, select_config

TWO = ["a100", "default"]


@pytest.mark.parametrize(
    ("label", "available", "default", "fallbacks", "expected"),
    [
        # the label names the config
        pytest.param("a100", TWO, "", [], "a100", id="label"),
        pytest.param("a100", TWO, "default", ["empty"], "a100", id="label-beats-default"),
        pytest.param("a100", ["a100"], "", ["bogus"], "a100", id="label-never-reaches-fallbacks"),
        # no label: the default
        pytest.param("", TWO, "a100", [], "a100", id="default"),
        pytest.param("", TWO, "a100", ["named"], "a100", id="default-beats-fallbacks"),
        pytest.param("", TWO, "a100", ["bogus"], "a100", id="default-never-reaches-fallbacks"),
        # no label, no default: the fallbacks, in order
        pytest.param("", TWO, "", ["named"], "default", id="named"),
        pytest.param("", ["only"], "", ["single"], "only", id="single"),
        pytest.param("", TWO, "", ["empty"], "", id="empty"),
        pytest.param("", ["only"], "", ["named", "single"], "only", id="named-fails-single"),
        pytest.param("", TWO, "", ["single", "named"], "default", id="single-fails-named"),
        pytest.param("", TWO, "", ["single", "empty"], "", id="single-fails-empty"),
        pytest.param("", ["default"], "", ["single", "named"], "default", id="first-wins"),
        pytest.param("", ["x"], "", ["empty", "single"], "", id="empty-first-wins"),
        pytest.param("", TWO, "", ["named", "bogus"], "default", id="unknown-after-a-hit"),
    ],
)  # fmt: skip
def test_selected(
    label: str, available: list[str], default: str, fallbacks: list[str], expected: str
) -> None:
    assert select_config(label, available, default, fallbacks) == expected


@pytest.mark.parametrize(
    ("label", "available", "default", "fallbacks", "message"),
    [
        pytest.param("a100", [], "", ["empty"], "no configuration files available",
                     id="no-configs-with-label"),
        pytest.param("", [], "", ["empty"], "no configuration files available",
                     id="no-configs-even-for-empty"),
        pytest.param("h100", TWO, "a100", [], "specified config h100 does not exist",
                     id="label-missing"),
        # upstream printed the (empty) label value: "specified config  does not exist"
        pytest.param("", TWO, "h100", ["named"], "specified config h100 does not exist",
                     id="default-missing-names-the-default"),
        pytest.param("", TWO, "", ["bogus"], "unknown fallback strategy: bogus",
                     id="unknown-strategy"),
        pytest.param("", TWO, "", ["single", "Named"], "unknown fallback strategy: Named",
                     id="unknown-strategy-after-a-miss"),
        pytest.param("", TWO, "", [""], "unknown fallback strategy: ", id="empty-strategy"),
        pytest.param("", TWO, "", [],
                     "no config was set, no default was provided, and all fallbacks failed",
                     id="no-fallbacks"),
        pytest.param("", ["a", "b"], "", ["named", "single"],
                     "no config was set, no default was provided, and all fallbacks failed",
                     id="all-fallbacks-fail"),
    ],
)  # fmt: skip
def test_errors(
    label: str, available: list[str], default: str, fallbacks: list[str], message: str
) -> None:
    with pytest.raises(SelectionError) as caught:
        select_config(label, available, default, fallbacks)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        pytest.param([], [], id="empty"),
        pytest.param([("b", False), ("a", False)], ["a", "b"], id="sorted"),
        # a mounted ConfigMap: one link per key, and Kubernetes' own entries
        pytest.param(
            [("..data", False), ("..2026_01_01_00_00_00.123", True), ("a100", False)],
            ["a100"],
            id="configmap-mount",
        ),
        pytest.param([("sub", True), (".hidden", False)], [".hidden"], id="dirs-out-dots-in"),
    ],
)
def test_available_configs(entries: list[tuple[str, bool]], expected: list[str]) -> None:
    assert available_configs(entries) == expected
