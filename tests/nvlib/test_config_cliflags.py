"""The urfave/cli-compatible flag reader shared by the commands.

Matrix: Go `flag` syntax (one or two dashes, `=value` or the next argument, booleans,
`--`, the first non-flag); each kind from the command line and from the environment,
including set-but-empty values; command line over environment, first variable over the
rest; list flags (comma split, repeated flags append, CLI replaces env); error texts.
The GFD table itself is tested in tests/gfd/test_cli.py.
"""

from __future__ import annotations

import pytest

from nvlib.config import ConfigError, Duration
from nvlib.config.cliflags import Flag, ParsedFlags, apply_env, format_help, parse_argv

FLAGS = (
    Flag("verbose", "bool", False, "say more", aliases=("V",), envs=("APP_VERBOSE", "VERBOSE")),
    Flag("name", "string", "anon", "who", aliases=("n",), envs=("APP_NAME",)),
    Flag("interval", "duration", Duration(1_000_000_000), "how often", envs=("APP_INTERVAL",)),
    Flag("qps", "float", 5.0, "rate", envs=("APP_QPS",)),
    Flag("burst", "int", 10, "burst", envs=("APP_BURST",)),
    Flag("mode", "tristate", "auto", "true, false or auto", envs=("APP_MODE",)),
    Flag("strategy", "string-list", ["envvar"], "strategies", envs=("APP_STRATEGY",)),
    Flag("ids", "int-list", [], "ids", envs=("APP_IDS",)),
)


def _parse(argv: list[str], environ: dict[str, str] | None = None) -> ParsedFlags:
    parsed = parse_argv(argv, FLAGS)
    apply_env(parsed, environ or {}, FLAGS)
    return parsed


@pytest.mark.parametrize(
    ("argv", "name", "value"),
    [
        pytest.param(["--verbose"], "verbose", True, id="bool-bare"),
        pytest.param(["-verbose"], "verbose", True, id="bool-single-dash"),
        pytest.param(["-V"], "verbose", True, id="bool-short-alias"),
        pytest.param(["--V"], "verbose", True, id="short-alias-two-dashes"),
        pytest.param(["--verbose=false"], "verbose", False, id="bool-equals-false"),
        pytest.param(["--verbose=T"], "verbose", True, id="bool-go-form"),
        pytest.param(["--verbose=0"], "verbose", False, id="bool-zero"),
        pytest.param(["--name", "x"], "name", "x", id="string-next-arg"),
        pytest.param(["--name=x"], "name", "x", id="string-equals"),
        pytest.param(["-name", "x"], "name", "x", id="string-single-dash"),
        pytest.param(["-n", "-"], "name", "-", id="next-arg-taken-even-if-dash"),
        pytest.param(["-n", "--verbose"], "name", "--verbose", id="next-arg-taken-even-if-flag"),
        pytest.param(["--name="], "name", "", id="string-empty"),
        pytest.param(["--name=a=b"], "name", "a=b", id="string-with-equals"),
        pytest.param(["--interval=90s"], "interval", Duration(90_000_000_000), id="duration"),
        pytest.param(["--interval", "0"], "interval", Duration(0), id="duration-bare-zero"),
        pytest.param(["--interval=infinite"], "interval", Duration(None), id="duration-infinite"),
        pytest.param(["--qps=2.5"], "qps", 2.5, id="float"),
        pytest.param(["--burst=0x10"], "burst", 16, id="int-base-0"),
        pytest.param(["--mode"], "mode", "true", id="tristate-bare"),
        pytest.param(["--mode", "auto"], "mode", "auto", id="tristate-next-auto"),
        pytest.param(["--mode", "false"], "mode", "false", id="tristate-next-false"),
        pytest.param(["--mode", "F"], "mode", "false", id="tristate-next-go-form"),
        pytest.param(["--mode=auto"], "mode", "auto", id="tristate-equals"),
        pytest.param(["--mode=1"], "mode", "true", id="tristate-equals-go-form"),
        pytest.param(["--mode", "--verbose"], "mode", "true", id="tristate-not-eating-flags"),
        pytest.param(["--strategy", "a, b"], "strategy", ["a", "b"], id="list-split-trimmed"),
        pytest.param(["--strategy=a", "--strategy=b,c"], "strategy", ["a", "b", "c"],
                     id="list-repeated-appends"),
        pytest.param(["--ids=0,1"], "ids", [0, 1], id="int-list"),
        pytest.param(["--name=a", "--name=b"], "name", "b", id="last-wins"),
    ],
)  # fmt: skip
def test_command_line(argv: list[str], name: str, value: object) -> None:
    parsed = _parse(argv)
    assert parsed[name] == value
    assert parsed.is_set(name)


def test_defaults_when_nothing_is_given() -> None:
    parsed = _parse([])
    assert parsed.values == {f.name: f.default for f in FLAGS}
    assert parsed.origins == {}


def test_typed_values_by_kind() -> None:
    parsed = _parse(["--verbose", "--qps=2", "--burst=3", "--ids=4,5"], {"APP_STRATEGY": "a,b"})
    assert parsed.boolean("verbose") is True
    assert parsed.text("name") == "anon" and parsed.text("mode") == "auto"
    assert parsed.duration("interval") == Duration(1_000_000_000)
    assert parsed.number("qps") == 2.0 and isinstance(parsed.number("qps"), float)
    assert parsed.integer("burst") == 3
    assert parsed.texts("strategy") == ["a", "b"] and parsed.integers("ids") == [4, 5]
    assert parsed.texts("strategy") is not parsed.values["strategy"]  # a copy to keep


@pytest.mark.parametrize(
    ("ask", "name"),
    [("text", "verbose"), ("boolean", "name"), ("integer", "qps"), ("duration", "name"),
     ("number", "mode"), ("texts", "name")],
)  # fmt: skip
def test_asking_with_the_wrong_kind_is_a_type_error(ask: str, name: str) -> None:
    with pytest.raises(TypeError, match=repr(name)):
        getattr(_parse([]), ask)(name)


def test_parsing_stops_at_double_dash_and_first_argument() -> None:
    parsed = _parse(["--verbose", "--", "--name=x"])
    assert parsed.args == ["--name=x"]
    assert parsed["name"] == "anon"
    parsed = _parse(["--verbose", "false", "--name=x"])  # Go: a bool never takes "false"
    assert parsed.args == ["false", "--name=x"]
    assert parsed["name"] == "anon"


@pytest.mark.parametrize(
    ("environ", "name", "value"),
    [
        pytest.param({"APP_VERBOSE": "true"}, "verbose", True, id="bool"),
        pytest.param({"APP_VERBOSE": "T"}, "verbose", True, id="bool-go-form"),
        pytest.param({"APP_VERBOSE": ""}, "verbose", False, id="bool-empty-is-false"),
        pytest.param({"VERBOSE": "1"}, "verbose", True, id="second-variable"),
        pytest.param({"APP_VERBOSE": "0", "VERBOSE": "1"}, "verbose", False,
                     id="first-variable-wins"),
        pytest.param({"APP_VERBOSE": "", "VERBOSE": "1"}, "verbose", False,
                     id="first-variable-wins-even-empty"),
        pytest.param({"APP_NAME": ""}, "name", "", id="string-empty-is-set"),
        pytest.param({"APP_INTERVAL": "2m"}, "interval", Duration(120_000_000_000), id="duration"),
        pytest.param({"APP_QPS": "7"}, "qps", 7.0, id="float"),
        pytest.param({"APP_BURST": "017"}, "burst", 15, id="int-octal"),
        pytest.param({"APP_MODE": "auto"}, "mode", "auto", id="tristate-auto"),
        pytest.param({"APP_MODE": "t"}, "mode", "true", id="tristate-go-form"),
        pytest.param({"APP_MODE": ""}, "mode", "false", id="tristate-empty-is-false"),
        pytest.param({"APP_STRATEGY": "a , b"}, "strategy", ["a", "b"], id="list"),
        pytest.param({"APP_IDS": "0"}, "ids", [0], id="int-list"),
    ],
)  # fmt: skip
def test_environment(environ: dict[str, str], name: str, value: object) -> None:
    parsed = _parse([], environ)
    assert parsed[name] == value
    assert parsed.is_set(name)


@pytest.mark.parametrize(
    ("var", "name"),
    [
        ("APP_INTERVAL", "interval"),
        ("APP_QPS", "qps"),
        ("APP_BURST", "burst"),
        ("APP_STRATEGY", "strategy"),
    ],
)
def test_empty_environment_value_is_ignored_for_non_strings(var: str, name: str) -> None:
    parsed = _parse([], {var: ""})
    assert not parsed.is_set(name)
    assert parsed[name] == next(f.default for f in FLAGS if f.name == name)


def test_command_line_beats_environment_and_lists_are_replaced() -> None:
    parsed = _parse(["--name=cli", "--strategy=c"], {"APP_NAME": "env", "APP_STRATEGY": "a,b"})
    assert (parsed["name"], parsed["strategy"]) == ("cli", ["c"])
    assert parsed.origins == {"name": "--name", "strategy": "--strategy"}


def test_origins_name_the_variable() -> None:
    assert _parse([], {"VERBOSE": "1"}).origins == {"verbose": "VERBOSE"}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(["--nope"], "--nope: flag provided but not defined (got '--nope')",
                     id="unknown"),
        pytest.param(["-nope=1"], "-nope: flag provided but not defined (got '-nope=1')",
                     id="unknown-single-dash-with-value"),
        pytest.param(["---x"], "---x: bad flag syntax (got '---x')", id="three-dashes"),
        pytest.param(["-=x"], "-=x: bad flag syntax (got '-=x')", id="empty-name"),
        pytest.param(["--name"], "--name: flag needs an argument (got '--name')",
                     id="missing-value"),
        pytest.param(["--verbose=maybe"],
                     "--verbose: strconv.ParseBool: parsing \"maybe\": invalid syntax"
                     " (got 'maybe')", id="bad-bool"),
        pytest.param(["--interval=5"],
                     "--interval: time: missing unit in duration \"5\" (got '5')",
                     id="bad-duration"),
        pytest.param(["--burst=1.5"],
                     "--burst: strconv.ParseInt: parsing \"1.5\": invalid syntax (got '1.5')",
                     id="bad-int"),
        pytest.param(["--mode=sometimes"],
                     "--mode: strconv.ParseBool: parsing \"sometimes\": invalid syntax"
                     " (got 'sometimes')", id="bad-tristate"),
    ],
)  # fmt: skip
def test_command_line_errors(argv: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_argv(argv, FLAGS)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        pytest.param({"APP_VERBOSE": "maybe"},
                     'could not parse "maybe" as bool value from env var "APP_VERBOSE" for flag'
                     ' verbose: strconv.ParseBool: parsing "maybe": invalid syntax', id="bool"),
        pytest.param({"APP_MODE": "sometimes"},
                     'could not parse "sometimes" as bool value from env var "APP_MODE" for flag'
                     ' mode: strconv.ParseBool: parsing "sometimes": invalid syntax',
                     id="tristate"),
        pytest.param({"APP_INTERVAL": "5"},
                     'could not parse "5" as duration value from env var "APP_INTERVAL" for'
                     ' flag interval: time: missing unit in duration "5"', id="duration"),
        pytest.param({"APP_QPS": "fast"},
                     'could not parse "fast" as float64 value from env var "APP_QPS" for flag'
                     ' qps: strconv.ParseFloat: parsing "fast": invalid syntax', id="float"),
        pytest.param({"APP_BURST": "x"},
                     'could not parse "x" as int value from env var "APP_BURST" for flag burst:'
                     ' strconv.ParseInt: parsing "x": invalid syntax', id="int"),
        pytest.param({"APP_IDS": "0,x"},
                     'could not parse "0,x" as int slice value from env var "APP_IDS" for flag'
                     ' ids: strconv.ParseInt: parsing "x": invalid syntax', id="int-list"),
    ],
)  # fmt: skip
def test_environment_errors(environ: dict[str, str], message: str) -> None:
    var, raw = next(iter(environ.items()))
    with pytest.raises(ConfigError) as caught:
        _parse([], environ)
    assert str(caught.value) == message
    assert (caught.value.path, caught.value.value) == (var, raw)


def test_bad_environment_fails_even_when_the_command_line_sets_the_flag() -> None:
    # urfave/cli reads the environment first; a bad value there is never silently masked.
    with pytest.raises(ConfigError, match="APP_VERBOSE"):
        _parse(["--verbose"], {"APP_VERBOSE": "maybe"})


def test_help_lists_every_spelling_and_variable() -> None:
    text = format_help("app", "does things", FLAGS)
    assert text.startswith("NAME:\n   app - does things\n\nUSAGE:\n   app [global options]\n")
    assert "   --verbose, -V\n" in text
    assert "   --name value, -n value\n" in text
    assert '(default: "anon") [$APP_NAME]' in text
    assert "[$APP_VERBOSE, $VERBOSE]" in text
    assert "(default: 5)" in text
