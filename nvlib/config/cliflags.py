"""Command lines and environment variables read the way upstream's urfave/cli reads them.

Each command declares a table of `Flag`s; `parse_argv` reads the command line with Go's
`flag` rules and `apply_env` adds the environment, so a flag given on the command line
beats its environment variables, and the first of those that is set beats the rest
(docs/config.md#precedence). What the config file and defaults add is the command's
business.

Go's rules, kept because manifests are written for them:
- `-flag` and `--flag` are the same; `-flag=value`, `-flag value` (the next argument is
  taken whatever it looks like, so `-o -` works); booleans take no separate value
  (`--oneshot`, `--oneshot=false`); parsing stops at `--` or the first non-flag.
- from the environment, a set-but-empty boolean means false, a set-but-empty duration or
  number is ignored, and a set-but-empty string is the empty string.
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

from nvlib.config.durations import Duration
from nvlib.config.envparse import (
    env_error,
    lookup_env,
    parse_bool,
    parse_float,
    parse_int,
)
from nvlib.config.errors import ConfigError
from nvlib.config.load import parse_config_file
from nvlib.config.schema import Config
from nvlib.record import Plain, factory

_T = TypeVar("_T")

# bool, string, duration (Go form or `infinite`), float, int, tristate (true|false|auto),
# string-list and int-list (comma-separated; a repeated flag appends).
KINDS = ("bool", "string", "duration", "float", "int", "tristate", "string-list", "int-list")
_TRISTATE_WORDS = frozenset(
    {"auto", "1", "t", "T", "TRUE", "true", "True", "0", "f", "F", "FALSE", "false", "False"}
)
# urfave/cli's word for each kind in "could not parse ... as <kind> value from env var".
_ENV_KIND = {
    "bool": "bool",
    "tristate": "bool",
    "duration": "duration",
    "float": "float64",
    "int": "int",
    "int-list": "int slice",
}


class Flag(Plain, frozen=True):
    name: str  # the long name, without dashes
    kind: str  # one of KINDS
    default: object
    usage: str = ""
    aliases: tuple[str, ...] = ()
    envs: tuple[str, ...] = ()  # first present wins

    @property
    def option(self) -> str:
        """How errors name the flag: `--sleep-interval`."""
        return f"--{self.name}"


class ParsedFlags(Plain):
    """Flag values after the command line and the environment, defaults elsewhere."""

    values: dict[str, object]
    origins: dict[str, str] = factory(dict)  # set flags: "--name" or "ENV_VAR"
    args: list[str] = factory(list)  # what followed the flags

    def is_set(self, name: str) -> bool:
        return name in self.origins

    def __getitem__(self, name: str) -> object:
        return self.values[name]

    # A value typed by its flag's kind (KINDS); asking with the wrong kind is a bug.
    def text(self, name: str) -> str:  # string, tristate
        return self._typed(name, str)

    def boolean(self, name: str) -> bool:
        return self._typed(name, bool)

    def integer(self, name: str) -> int:
        return self._typed(name, int)

    def number(self, name: str) -> float:
        value = self.values[name]
        return float(value if isinstance(value, int) else self._typed(name, float))

    def duration(self, name: str) -> Duration:
        return self._typed(name, Duration)

    def texts(self, name: str) -> list[str]:  # string-list
        return list(self._typed(name, list))

    def integers(self, name: str) -> list[int]:  # int-list
        return list(self._typed(name, list))

    def _typed(self, name: str, kind: type[_T]) -> _T:
        value = self.values[name]
        if not isinstance(value, kind):
            raise TypeError(f"flag {name!r} holds {value!r}, not {kind}")
        return value


def _tristate(text: str) -> str:
    return "auto" if text == "auto" else ("true" if parse_bool(text) else "false")


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",")]


def _scalar_parser(kind: str) -> Callable[[str], object]:
    parsers: dict[str, Callable[[str], object]] = {
        "bool": parse_bool,
        "tristate": _tristate,
        "string": str,
        "duration": Duration.parse,
        "float": parse_float,
        "int": parse_int,
    }
    return parsers[kind]


def _convert(flag: Flag, text: str) -> object:
    if flag.kind == "string-list":
        return _split(text)
    if flag.kind == "int-list":
        return [parse_int(part) for part in _split(text)]
    return _scalar_parser(flag.kind)(text)


def parse_argv(argv: Sequence[str], flags: Sequence[Flag]) -> ParsedFlags:
    """The command line alone: values (and origins) of the flags it names, and the rest."""
    by_name = {n: f for f in flags for n in (f.name, *f.aliases)}
    parsed = ParsedFlags(values={})
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if arg == "--":
            parsed.args = list(argv[i:])
            break
        if len(arg) < 2 or arg[0] != "-":
            parsed.args = list(argv[i - 1 :])
            break
        dashes = 2 if arg[1] == "-" else 1
        body = arg[dashes:]
        if not body or body[0] in "-=":
            raise ConfigError(arg, arg, "bad flag syntax")
        name, has_value, text = body.partition("=")
        flag = by_name.get(name)
        if flag is None:
            raise ConfigError(arg.partition("=")[0], arg, "flag provided but not defined")
        if not has_value:
            if flag.kind == "bool":
                text = "true"
            elif flag.kind == "tristate":
                # Upstream's --use-node-feature-api was a bare boolean: keep that form,
                # and also take a following true|false|auto as its value.
                if i < len(argv) and argv[i] in _TRISTATE_WORDS:
                    text, i = argv[i], i + 1
                else:
                    text = "true"
            elif i < len(argv):
                text, i = argv[i], i + 1
            else:
                raise ConfigError(flag.option, arg, "flag needs an argument")
        try:
            value = _convert(flag, text)
        except ValueError as err:
            raise ConfigError(flag.option, text, str(err)) from err
        if flag.kind.endswith("-list") and flag.name in parsed.values:
            value = [*parsed.values[flag.name], *value]  # type: ignore[misc]  # -list: lists
        parsed.values[flag.name] = value
        parsed.origins[flag.name] = flag.option
    return parsed


def _from_env(flag: Flag, var: str, raw: str) -> tuple[bool, object]:
    """(is it set, value) for one environment value; empty values per urfave/cli."""
    if raw == "":
        if flag.kind in ("bool", "tristate"):
            return True, False if flag.kind == "bool" else "false"
        if flag.kind != "string":
            return False, None
    try:
        return True, _convert(flag, raw)
    except ValueError as err:
        kind = _ENV_KIND.get(flag.kind, flag.kind)
        message = env_error(kind, raw, var, flag.name, err)
        raise ConfigError(var, raw, str(err), message=message) from err


def apply_env(parsed: ParsedFlags, environ: Mapping[str, str], flags: Sequence[Flag]) -> None:
    """Fill in, in place, what the environment sets and the command line did not.

    A bad environment value is an error even when the command line sets the same flag,
    as upstream reads the environment before the command line.
    """
    for flag in flags:
        hit = lookup_env(environ, flag.envs)
        if hit is None:
            continue
        is_set, value = _from_env(flag, *hit)
        if is_set and not parsed.is_set(flag.name):
            parsed.values[flag.name] = value
            parsed.origins[flag.name] = hit[0]
    for flag in flags:
        parsed.values.setdefault(flag.name, flag.default)


def _default_text(flag: Flag) -> str:
    value = flag.default
    if value is None or value is False or value == "" or value == []:
        return ""
    if value is True:
        value = "true"
    elif isinstance(value, str):
        value = f'"{value}"'
    elif isinstance(value, float) and value.is_integer():
        value = int(value)  # Go prints 5, not 5.0
    elif isinstance(value, list):
        value = ",".join(str(v) for v in value)
    return f" (default: {value})"


def format_help(command: str, summary: str, flags: Sequence[Flag]) -> str:
    """A urfave/cli-style help page: NAME, USAGE, and every flag with its variables."""
    lines = [
        "NAME:",
        f"   {command} - {summary}",
        "",
        "USAGE:",
        f"   {command} [global options]",
        "",
        "GLOBAL OPTIONS:",
    ]
    for flag in flags:
        value = "" if flag.kind == "bool" else " value"
        names = [("-" if len(n) == 1 else "--") + n + value for n in (flag.name, *flag.aliases)]
        envs = f" [{', '.join('$' + e for e in flag.envs)}]" if flag.envs else ""
        lines.append("   " + ", ".join(names))
        text = f"{flag.usage}{_default_text(flag)}{envs}"
        lines += textwrap.wrap(
            text, 96, initial_indent=" " * 7, subsequent_indent=" " * 7, break_on_hyphens=False
        )
    return "\n".join(lines) + "\n"


# The project's flags on every command: the simulator, help and version.
COMMON_FLAGS: tuple[Flag, ...] = (
    Flag(
        "nvml-mock", "string", "",
        "run against the built-in NVML simulator: a built-in machine name or the path"
        " of a YAML machine profile",
        envs=("NVML_MOCK",),
    ),
    Flag("help", "bool", False, "show help", aliases=("h",)),
    Flag("version", "bool", False, "print the version", aliases=("v",)),
)  # fmt: skip


def parse_flags(
    command: str,
    summary: str,
    argv: Sequence[str],
    environ: Mapping[str, str],
    flags: Sequence[Flag],
) -> ParsedFlags:
    """Command line > environment > default, for one command's flags.

    `-h`/`--help` prints the usage and exits 0; a stray argument is a ConfigError.
    """
    parsed = parse_argv(argv, flags)
    if parsed.values.get("help"):
        sys.stdout.write(format_help(command, summary, flags))
        raise SystemExit(0)
    if parsed.args:
        # urfave/cli would silently stop reading flags here, so `--oneshot false --x y`
        # would ignore `--x y`; refusing is kinder than running with the wrong options.
        raise ConfigError(
            parsed.args[0],
            parsed.args[0],
            f"unexpected argument: {command} takes only flags (write --flag=false for a boolean)",
        )
    apply_env(parsed, environ, flags)
    return parsed


def resolve(
    command: str,
    summary: str,
    argv: Sequence[str],
    environ: Mapping[str, str],
    flags: Sequence[Flag],
) -> tuple[ParsedFlags, Config]:
    """The flags (command line > environment > default) and the config file they name.

    The caller then lets each option set on the command line or in the environment
    override the file's value. `-h`/`--help` prints the usage and exits 0; with
    `--version` the config file is not read, so the version prints even when the file is
    broken.
    """
    parsed = parse_flags(command, summary, argv, environ, flags)
    config_file = parsed.text("config-file")
    show_version = parsed.boolean("version")
    config = parse_config_file(config_file) if config_file and not show_version else Config()
    return parsed, config
