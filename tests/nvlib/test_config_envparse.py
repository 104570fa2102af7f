"""Go's strconv forms as flags and environment variables use them.

Matrix: every ParseBool spelling both ways and typical near misses; ParseInt base 0
(prefixes, octal, underscores, range); ParseFloat's refusals that Python's float() lacks;
strconv.Quote escapes; first-present-wins lookup.
"""

from __future__ import annotations

import pytest

from nvlib.config.envparse import (
    env_error,
    go_quote,
    lookup_env,
    parse_bool,
    parse_float,
    parse_int,
    parse_uint,
)


@pytest.mark.parametrize("text", ["1", "t", "T", "TRUE", "true", "True"])
def test_bool_true_forms(text: str) -> None:
    assert parse_bool(text) is True


@pytest.mark.parametrize("text", ["0", "f", "F", "FALSE", "false", "False"])
def test_bool_false_forms(text: str) -> None:
    assert parse_bool(text) is False


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param("yes", id="yes"),
        pytest.param("no", id="no"),
        pytest.param("on", id="on"),
        pytest.param("tRUE", id="odd-case"),
        pytest.param(" true", id="leading-space"),
        pytest.param("2", id="two"),
    ],
)
def test_bool_rejects(text: str) -> None:
    with pytest.raises(ValueError, match=r"^strconv\.ParseBool: parsing .*: invalid syntax$"):
        parse_bool(text)


def test_bool_error_text() -> None:
    with pytest.raises(ValueError) as caught:
        parse_bool("maybe")
    assert str(caught.value) == 'strconv.ParseBool: parsing "maybe": invalid syntax'


@pytest.mark.parametrize(
    ("text", "value"),
    [
        pytest.param("10", 10, id="decimal"),
        pytest.param("-7", -7, id="negative"),
        pytest.param("+7", 7, id="plus"),
        pytest.param("0", 0, id="zero"),
        pytest.param("0x1f", 31, id="hex"),
        pytest.param("0o17", 15, id="octal-prefix"),
        pytest.param("017", 15, id="octal-leading-zero"),
        pytest.param("0b101", 5, id="binary"),
        pytest.param("1_000", 1000, id="underscores"),
        pytest.param("0x_1f", 31, id="underscore-after-prefix"),
        pytest.param("9223372036854775807", (1 << 63) - 1, id="max"),
    ],
)
def test_int(text: str, value: int) -> None:
    assert parse_int(text) == value


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        pytest.param("", "invalid syntax", id="empty"),
        pytest.param("ten", "invalid syntax", id="word"),
        pytest.param("1.5", "invalid syntax", id="fraction"),
        pytest.param("08", "invalid syntax", id="bad-octal"),
        pytest.param("_1", "invalid syntax", id="leading-underscore"),
        pytest.param("1__0", "invalid syntax", id="double-underscore"),
        pytest.param("1_", "invalid syntax", id="trailing-underscore"),
        pytest.param("\u0661", "invalid syntax", id="arabic-digit"),
        pytest.param("9223372036854775808", "value out of range", id="overflow"),
    ],
)
def test_int_errors(text: str, reason: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_int(text)
    assert str(caught.value) == f"strconv.ParseInt: parsing {go_quote(text)}: {reason}"


@pytest.mark.parametrize("text", ["1", "0", "18446744073709551615"])
def test_uint(text: str) -> None:
    assert parse_uint(text) == int(text)


@pytest.mark.parametrize("text", ["", "-1", "+1", "1_0", "18446744073709551616", "\u00b2"])
def test_uint_rejects(text: str) -> None:
    with pytest.raises(ValueError, match=r"^strconv\.ParseUint"):
        parse_uint(text)


@pytest.mark.parametrize(
    ("text", "value"),
    [("5", 5.0), ("2.5", 2.5), ("-1e3", -1000.0), (".5", 0.5), ("inf", float("inf"))],
)
def test_float(text: str, value: float) -> None:
    assert parse_float(text) == value


@pytest.mark.parametrize("text", ["", " 5", "5 ", "1_0", "five"])
def test_float_rejects_what_go_rejects(text: str) -> None:
    with pytest.raises(ValueError, match=r"^strconv\.ParseFloat: parsing .*: invalid syntax$"):
        parse_float(text)


@pytest.mark.parametrize(
    ("text", "quoted"),
    [
        pytest.param("plain", '"plain"', id="plain"),
        pytest.param('say "hi"', '"say \\"hi\\""', id="quotes"),
        pytest.param("a\\b", '"a\\\\b"', id="backslash"),
        pytest.param("tab\there", '"tab\\there"', id="tab"),
        pytest.param("nul\x00", '"nul\\x00"', id="control"),
        pytest.param("caf\u00e9", '"caf\u00e9"', id="printable-unicode-kept"),
        pytest.param("\u200b", '"\\u200b"', id="invisible-unicode"),
        pytest.param("bad\udcff", '"bad\\xff"', id="undecodable-env-byte"),
    ],
)
def test_go_quote(text: str, quoted: str) -> None:
    assert go_quote(text) == quoted


def test_lookup_env_first_present_wins_even_if_empty() -> None:
    assert lookup_env({"B": "2", "A": ""}, ["A", "B"]) == ("A", "")
    assert lookup_env({"B": "2"}, ["A", "B"]) == ("B", "2")
    assert lookup_env({}, ["A", "B"]) is None


def test_env_error_text() -> None:
    cause = ValueError('strconv.ParseBool: parsing "maybe": invalid syntax')
    assert env_error("bool", "maybe", "GFD_ONESHOT", "oneshot", cause) == (
        'could not parse "maybe" as bool value from env var "GFD_ONESHOT" for flag oneshot:'
        ' strconv.ParseBool: parsing "maybe": invalid syntax'
    )
