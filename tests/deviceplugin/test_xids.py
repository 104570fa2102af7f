"""DP_DISABLE_HEALTHCHECKS / DP_ENABLE_HEALTHCHECKS (docs/deviceplugin.md#health), pure.

Matrix: the defaults, extra ignores, `all` and `xids` (anywhere in the list), enables
overriding defaults, `all` in the enable list, the project's fix for disable=all with
an enable list, malformed values, and the start-up log text.
"""

from __future__ import annotations

import logging

import pytest

from deviceplugin.xids import XidPolicy

DEFAULTS = (13, 31, 43, 45, 68, 109)


@pytest.mark.parametrize(
    ("disable", "enable", "ignored", "checked", "off"),
    [
        pytest.param(None, None, DEFAULTS, (48, 79, 94, 63), False, id="defaults"),
        pytest.param("79, 48", None, (*DEFAULTS, 79, 48), (94,), False, id="extra-ignores"),
        pytest.param("all", None, (48, 79, 13), (), True, id="all"),
        pytest.param("48,XIDS", None, (48, 79), (), True, id="xids-anywhere-any-case"),
        pytest.param(None, "13,109", (31, 43), (13, 109, 79), False, id="enable-beats-defaults"),
        pytest.param("all", "79", (48, 13), (79,), False, id="all-but-enabled"),  # [PROJECT]
        pytest.param("48", "all", (), (13, 48, 79), False, id="enable-all"),
        pytest.param(",, ,", None, DEFAULTS, (48,), False, id="empty-entries"),
    ],
)
def test_policy(
    disable: str | None,
    enable: str | None,
    ignored: tuple[int, ...],
    checked: tuple[int, ...],
    off: bool,
) -> None:
    environ = {}
    if disable is not None:
        environ["DP_DISABLE_HEALTHCHECKS"] = disable
    if enable is not None:
        environ["DP_ENABLE_HEALTHCHECKS"] = enable
    policy = XidPolicy.from_environ(environ)
    assert [x for x in ignored if not policy.ignores(x)] == []
    assert [x for x in checked if policy.ignores(x)] == []
    assert policy.checks_off is off


def test_malformed_values_are_logged_and_skipped(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    policy = XidPolicy.from_environ({"DP_DISABLE_HEALTHCHECKS": "-1,abc,48"})
    assert policy.ignores(48)
    assert [r.getMessage() for r in caplog.records] == [
        'Ignoring malformed Xid value -1: strconv.ParseUint: parsing "-1": invalid syntax',
        'Ignoring malformed Xid value abc: strconv.ParseUint: parsing "abc": invalid syntax',
    ]


def test_log_text_is_gos_map() -> None:
    policy = XidPolicy.from_environ({"DP_ENABLE_HEALTHCHECKS": "13"})
    assert str(policy) == "map[13:false 31:true 43:true 45:true 68:true 109:true]"
