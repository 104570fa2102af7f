"""Go durations: `time.ParseDuration`, `Duration.String()` and the literal `infinite`.

The sleep interval is written as a Go duration on the command line, in the environment
and in the config file, and logged in Go's form (`1m0s`), so parsing and printing follow
Go's `time` package to the character.
"""

from __future__ import annotations

from nvlib.config.errors import ConfigError
from nvlib.record import Plain

INFINITE_TEXT = "infinite"

_NS = 1
_US = 1_000
_MS = 1_000_000
_S = 1_000_000_000
_UNITS = {
    "ns": _NS,
    "us": _US,
    "\u00b5s": _US,  # µs, MICRO SIGN
    "\u03bcs": _US,  # μs, GREEK SMALL LETTER MU
    "ms": _MS,
    "s": _S,
    "m": 60 * _S,
    "h": 3600 * _S,
}
_MAX = (1 << 63) - 1


def _time_quote(text: str) -> str:
    """`time.quote`: unlike strconv.Quote it writes every non-ASCII byte as `\\xNN`."""
    out = ['"']
    for ch in text:
        if ord(ch) >= 0x80 or ch < " ":
            out.extend(f"\\x{b:02x}" for b in ch.encode("utf-8", "surrogateescape"))
        else:
            out.append("\\" + ch if ch in ('"', "\\") else ch)
    out.append('"')
    return "".join(out)


def _leading_digits(text: str) -> tuple[str, str]:
    end = 0
    while end < len(text) and "0" <= text[end] <= "9":
        end += 1
    return text[:end], text[end:]


def parse_go_duration(text: str) -> int:
    """`time.ParseDuration`: nanoseconds, or ValueError with Go's message."""
    invalid = ValueError(f"time: invalid duration {_time_quote(text)}")
    rest, negative = text, False
    if rest[:1] in ("-", "+"):
        negative, rest = rest[0] == "-", rest[1:]
    if rest == "0":  # the one unitless value Go allows
        return 0
    if not rest:
        raise invalid
    total = 0
    while rest:
        if not (rest[0] == "." or "0" <= rest[0] <= "9"):
            raise invalid
        whole, rest = _leading_digits(rest)
        frac = ""
        if rest[:1] == ".":
            frac, rest = _leading_digits(rest[1:])
            if not whole and not frac:  # ".s": a point with no digits either side
                raise invalid
        elif not whole:
            raise invalid
        end = 0
        while end < len(rest) and not (rest[end] == "." or "0" <= rest[end] <= "9"):
            end += 1
        unit_text, rest = rest[:end], rest[end:]
        if not unit_text:
            raise ValueError(f"time: missing unit in duration {_time_quote(text)}")
        unit = _UNITS.get(unit_text)
        if unit is None:
            raise ValueError(
                f"time: unknown unit {_time_quote(unit_text)} in duration {_time_quote(text)}"
            )
        value = int(whole or "0")
        if value > (1 << 63) // unit:
            raise invalid
        value *= unit
        if frac.strip("0"):
            # Go keeps at most the digits that fit in an int64 and scales in float64;
            # doing the same keeps "1.0000000001h" identical to the nanosecond.
            kept = ""
            for digit in frac:
                if int(kept or "0") > ((1 << 63) - 1) // 10:
                    break
                kept += digit
            value += int(float(int(kept)) * (float(unit) / float(10 ** len(kept))))
            if value > 1 << 63:
                raise invalid
        total += value
        if total > 1 << 63:
            raise invalid
    if negative:
        return -total
    if total > _MAX:
        raise invalid
    return total


def _frac(value: int, precision: int) -> tuple[str, int]:
    """Go's fmtFrac: the fraction digits of value / 10**precision, trailing zeros dropped."""
    digits = ""
    for _ in range(precision):
        digit = value % 10
        if digits or digit:
            digits = str(digit) + digits
        value //= 10
    return ("." + digits if digits else ""), value


def format_go_duration(ns: int) -> str:
    """`time.Duration.String()`: 0s, 5ns, 1.5µs, 500ms, 1m30s, 1h0m0s."""
    magnitude = abs(ns)
    sign = "-" if ns < 0 else ""
    if magnitude < _S:
        if magnitude == 0:
            return "0s"
        if magnitude < _US:
            return f"{sign}{magnitude}ns"
        unit, precision = ("\u00b5s", 3) if magnitude < _MS else ("ms", 6)
        frac, whole = _frac(magnitude, precision)
        return f"{sign}{whole}{frac}{unit}"
    frac, seconds = _frac(magnitude, 9)
    out = f"{seconds % 60}{frac}s"
    minutes = seconds // 60
    if minutes:
        out = f"{minutes % 60}m{out}"
        if minutes // 60:
            out = f"{minutes // 60}h{out}"
    return sign + out


class Duration(Plain, frozen=True):
    """A Go duration in nanoseconds; `None` is the project's `infinite` (never relabel)."""

    nanoseconds: int | None

    @property
    def infinite(self) -> bool:
        return self.nanoseconds is None

    @property
    def seconds(self) -> float | None:
        return None if self.nanoseconds is None else self.nanoseconds / _S

    @classmethod
    def parse(cls, text: str) -> Duration:
        """A CLI or environment value: a Go duration, a bare `0`, or `infinite`.

        Raises ConfigError (a ValueError) whose text is Go's, e.g. `time: missing unit in
        duration "5"`; callers re-raise it with the flag or variable that held the value.
        """
        if text == INFINITE_TEXT:
            return cls(None)
        try:
            return cls(parse_go_duration(text))
        except ValueError as err:
            raise ConfigError.upstream("", text, str(err)) from None

    @classmethod
    def from_seconds(cls, seconds: float) -> Duration:
        return cls(round(seconds * _S))

    def __str__(self) -> str:
        if self.nanoseconds is None:
            return INFINITE_TEXT
        return format_go_duration(self.nanoseconds)
