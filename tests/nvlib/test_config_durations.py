"""Go durations: parse (CLI/env text), print (Go's String()), and the config-file forms.

Matrix: every unit and Go's odd-but-valid spellings; each of Go's three error texts;
printing across the ns / µs / ms / s / m / h boundaries; `infinite` both ways. Config-file
numbers (nanoseconds) are covered in test_config_load.py, where they are read.
"""

from __future__ import annotations

import pytest

from nvlib.config import ConfigError, Duration
from nvlib.config.durations import format_go_duration, parse_go_duration

NS, US, MS, S, M, H = 1, 1_000, 1_000_000, 1_000_000_000, 60_000_000_000, 3_600_000_000_000


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        pytest.param("60s", 60 * S, id="seconds"),
        pytest.param("1m", M, id="minute"),
        pytest.param("1h30m", H + 30 * M, id="hours-and-minutes"),
        pytest.param("500ms", 500 * MS, id="milliseconds"),
        pytest.param("1.5s", 1500 * MS, id="fractional-seconds"),
        pytest.param("0s", 0, id="zero-with-unit"),
        pytest.param("0", 0, id="bare-zero"),
        pytest.param("-0", 0, id="signed-bare-zero"),
        pytest.param("5ns", 5, id="nanoseconds"),
        pytest.param("7us", 7 * US, id="us"),
        pytest.param("7\u00b5s", 7 * US, id="micro-sign"),
        pytest.param("7\u03bcs", 7 * US, id="greek-mu"),
        pytest.param("+2h", 2 * H, id="plus-sign"),
        pytest.param("-1.5h", -(H + 30 * M), id="negative"),
        pytest.param(".5s", 500 * MS, id="no-leading-digit"),
        pytest.param("5.s", 5 * S, id="no-trailing-digit"),
        pytest.param("1h1m1s1ms1us1ns", H + M + S + MS + US + 1, id="every-unit"),
        pytest.param("2h45m0.5s", 2 * H + 45 * M + 500 * MS, id="mixed"),
        pytest.param("1.0000000001h", H + 360, id="fraction-of-an-hour-to-the-ns"),
        pytest.param("9223372036854775807ns", (1 << 63) - 1, id="max-int64"),
    ],
)
def test_parse(text: str, ns: int) -> None:
    assert Duration.parse(text) == Duration(ns)
    assert parse_go_duration(text) == ns


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("5", 'time: missing unit in duration "5"', id="bare-five"),
        pytest.param("1.5", 'time: missing unit in duration "1.5"', id="bare-fraction"),
        pytest.param("5d", 'time: unknown unit "d" in duration "5d"', id="days"),
        pytest.param("5 s", 'time: unknown unit " s" in duration "5 s"', id="space-before-unit"),
        pytest.param("abc", 'time: invalid duration "abc"', id="word"),
        pytest.param("", 'time: invalid duration ""', id="empty"),
        pytest.param("-", 'time: invalid duration "-"', id="sign-only"),
        pytest.param(".s", 'time: invalid duration ".s"', id="point-without-digits"),
        pytest.param("1m-1s", 'time: unknown unit "m-" in duration "1m-1s"', id="sign-inside"),
        pytest.param("9223372036854775808ns", 'time: invalid duration "9223372036854775808ns"',
                     id="overflow"),
        pytest.param("Infinite", 'time: invalid duration "Infinite"', id="infinite-is-lowercase"),
        pytest.param("5\u00e9", 'time: unknown unit "\\xc3\\xa9" in duration "5\\xc3\\xa9"',
                     id="non-ascii-quoted-as-bytes"),
    ],
)  # fmt: skip
def test_parse_errors_keep_go_text(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Duration.parse(text)
    assert str(caught.value) == message
    assert caught.value.value == text


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        pytest.param(0, "0s", id="zero"),
        pytest.param(5, "5ns", id="nanoseconds"),
        pytest.param(1_500, "1.5\u00b5s", id="microseconds"),
        pytest.param(500 * MS, "500ms", id="milliseconds"),
        pytest.param(1_234_567, "1.234567ms", id="milliseconds-fraction"),
        pytest.param(S, "1s", id="second"),
        pytest.param(1500 * MS, "1.5s", id="fractional-second"),
        pytest.param(60 * S, "1m0s", id="minute"),
        pytest.param(90 * S, "1m30s", id="minute-and-half"),
        pytest.param(H, "1h0m0s", id="hour"),
        pytest.param(H + 30 * M, "1h30m0s", id="hour-and-half"),
        pytest.param(100 * H + 1, "100h0m0.000000001s", id="hours-with-ns"),
        pytest.param(-90 * S, "-1m30s", id="negative"),
        pytest.param((1 << 63) - 1, "2562047h47m16.854775807s", id="max-int64"),
    ],
)
def test_print(ns: int, text: str) -> None:
    assert str(Duration(ns)) == text
    assert format_go_duration(ns) == text


@pytest.mark.parametrize(
    "text", ["1m0s", "5ns", "0s", "1h0m0s", "1.5s", "500ms", "1h30m0s", "-3m0.5s", "infinite"]
)
def test_printed_form_parses_back(text: str) -> None:
    assert str(Duration.parse(text)) == text


def test_infinite() -> None:
    forever = Duration.parse("infinite")
    assert forever == Duration(None)
    assert forever.infinite
    assert forever.seconds is None
    assert str(forever) == "infinite"


def test_seconds() -> None:
    assert Duration.parse("1m30s").seconds == 90.0
    assert Duration.parse("500ms").seconds == 0.5
    assert not Duration.parse("0").infinite
    assert Duration.from_seconds(1.5) == Duration(1500 * MS)
