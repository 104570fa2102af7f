"""Go's `strconv` rules for flag and environment values, with Go's error texts.

Upstream parses `GFD_ONESHOT=T`, `--kube-api-burst=0x10` and friends with `strconv`, and
manifests in the field rely on those forms, so we accept exactly what Go accepts and
fail with the text Go prints (docs/config.md#precedence).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})
_NAMED_ESCAPES = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
}


def go_quote(text: str) -> str:
    """`strconv.Quote`: how Go's `%q` prints a string inside an error."""
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8 (os.environ's surrogateescape)
            out.append(f"\\x{code - 0xDC00:02x}")
        elif ch.isprintable():
            out.append(ch)
        elif ch in _NAMED_ESCAPES:
            out.append(_NAMED_ESCAPES[ch])
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


def _syntax(func: str, text: str) -> ValueError:
    return ValueError(f"strconv.{func}: parsing {go_quote(text)}: invalid syntax")


def parse_bool(text: str) -> bool:
    """`strconv.ParseBool`: 1 t T TRUE true True / 0 f F FALSE false False, nothing else."""
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise _syntax("ParseBool", text)


def _is_decimal(text: str) -> bool:
    # str.isdigit() also accepts non-ASCII digits such as "²"; Go does not.
    return text.isascii() and text.isdigit()


def parse_uint(text: str) -> int:
    """`strconv.ParseUint(s, 10, 64)`: ASCII digits only, no sign, below 2**64."""
    if not _is_decimal(text):
        raise _syntax("ParseUint", text)
    value = int(text)
    if value >= 1 << 64:
        raise ValueError(f"strconv.ParseUint: parsing {go_quote(text)}: value out of range")
    return value


_BASES = {"0x": 16, "0X": 16, "0o": 8, "0O": 8, "0b": 2, "0B": 2}


def _underscores_ok(digits: str, prefixed: bool) -> bool:
    """Go allows `_` only between digits (or right after a base prefix) when base is 0."""
    if "_" not in digits:
        return True
    if "__" in digits or digits.endswith("_"):
        return False
    return prefixed or not digits.startswith("_")


def parse_int(text: str, bits: int = 64) -> int:
    """`strconv.ParseInt(s, 0, bits)`, as `flag` and urfave/cli use for int flags.

    Base 0 means a `0x`, `0o` or `0b` prefix picks the base, a bare leading `0` means
    octal, and underscores may separate digits.
    """
    body = text[1:] if text[:1] in ("+", "-") else text
    base, digits, prefixed = 10, body, False
    if body[:2] in _BASES:
        base, digits, prefixed = _BASES[body[:2]], body[2:], True
    elif len(body) > 1 and body[0] == "0":
        base, digits, prefixed = 8, body[1:], True
    plain = digits.replace("_", "")
    if not plain or not plain.isascii() or not _underscores_ok(digits, prefixed):
        raise _syntax("ParseInt", text)
    try:
        value = int(plain, base)
    except ValueError:
        raise _syntax("ParseInt", text) from None
    if text.startswith("-"):
        value = -value
    if not -(1 << (bits - 1)) <= value < 1 << (bits - 1):
        raise ValueError(f"strconv.ParseInt: parsing {go_quote(text)}: value out of range")
    return value


def parse_float(text: str) -> float:
    """`strconv.ParseFloat(s, 64)` for the decimal forms (and inf/nan) people write."""
    # Python's float() also takes surrounding blanks and digit underscores; Go does not.
    if not text or text != text.strip() or "_" in text:
        raise _syntax("ParseFloat", text)
    try:
        return float(text)
    except ValueError:
        raise _syntax("ParseFloat", text) from None


def lookup_env(environ: Mapping[str, str], names: Iterable[str]) -> tuple[str, str] | None:
    """The first of `names` that is set, with its value: urfave/cli's "first present wins".

    Set-but-empty counts as present; what an empty value means is up to the flag's kind.
    """
    for name in names:
        if name in environ:
            return name, environ[name]
    return None


def env_error(kind: str, value: str, var: str, flag: str, cause: Exception) -> str:
    """urfave/cli's text for an environment value that does not parse."""
    return (
        f"could not parse {go_quote(value)} as {kind} value from env var {go_quote(var)}"
        f" for flag {flag}: {cause}"
    )
