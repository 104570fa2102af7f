"""Spec bytes: the YAML and JSON that `nvidia-ctk` v1.20 writes, byte for byte.

YAML: `---`, then yaml.v3's block style over the Go struct order:
4-space indent, a sequence indented under its key, a mapping inside a sequence item
nested 4 columns past its dash, strings quoted only where yaml.v3 would (`"0"`, `"1:0"`,
`'C=a: b'`), no line folding. PyYAML cannot be told this layout, and the spec's shape is
small and fixed, so a dozen lines of emitter do it exactly and fast, with no import.
JSON is Go's `encoding/json`: compact, struct order, `<`, `>`, `&` escaped, no newline.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any

from cdi.spec import ContainerEdits, Spec

__all__ = ["to_json", "to_yaml", "yaml_scalar"]

# yaml.v3 resolve(): what a plain scalar would read back as. A plain string is written
# only if it reads back as a string; YAML-1.1 booleans and base-60 numbers are quoted
# too "for compatibility with other parsers" (yaml.v3 encode.go).
_NULLS = {"", "~", "null", "Null", "NULL"}
_BOOLS = {"true", "True", "TRUE", "false", "False", "FALSE"}
_OLD_BOOLS = {
    "y", "Y", "yes", "Yes", "YES", "on", "On", "ON",
    "n", "N", "no", "No", "NO", "off", "Off", "OFF",
}  # fmt: skip
_SPECIAL_FLOATS = {
    ".nan", ".NaN", ".NAN", ".inf", ".Inf", ".INF",
    "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF",
}  # fmt: skip
_BASE60 = re.compile(r"^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$")
_FLOAT = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")
_TIMESTAMP = re.compile(
    r"^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}"
    r"(?:(?:[Tt]|[ \t]+)[0-9]{1,2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]*)?"
    r"(?:[ \t]*(?:Z|[-+][0-9]{1,2}(?::[0-9]{2})?))?)?$"
)
_GO_INT = re.compile(r"^[-+]?(0[bB][01]+|0[oO][0-7]+|0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)$")


def _resolves_to_non_string(s: str) -> bool:
    if s in _NULLS or s in _BOOLS or s in _SPECIAL_FLOATS or s == "<<":
        return True
    if s in _OLD_BOOLS or _BASE60.match(s):
        return True
    if s[0] in "+-0123456789":
        plain = s.replace("_", "")
        if _TIMESTAMP.match(s) or _GO_INT.match(plain) or _FLOAT.match(plain):
            return True
    elif s[0] == "." and _FLOAT.match(s):
        return True
    return False


def _plain_allowed(s: str) -> bool:
    """libyaml's analysis of a scalar in block context (yaml.v3 emitterc.go)."""
    if s[0] in " \t" or s[-1] in " \t":
        return False
    if s.startswith(("---", "...")):
        return False
    if s[0] in "#,[]{}&*!|>'\"%@`":
        return False
    if s[0] in "?:-" and (len(s) == 1 or s[1] in " \t"):
        return False
    if ": " in s or ":\t" in s or s.endswith(":") or " #" in s or "\t#" in s:
        return False
    return s.isprintable()  # a tab is not printable either: one C loop, not a generator


def _single_quoted_allowed(s: str) -> bool:
    # Line breaks never reach here; tabs and unprintables need the escapes of "...".
    return s.isprintable()


_ESCAPES = {
    "\0": "\\0", "\a": "\\a", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\v": "\\v",
    "\f": "\\f", "\r": "\\r", "\x1b": "\\e", '"': '\\"', "\\": "\\\\",
    "\x85": "\\N", "\xa0": "\\_", "\u2028": "\\L", "\u2029": "\\P",
}  # fmt: skip


def _double_quoted(s: str) -> str:
    out = []
    for c in s:
        if c in _ESCAPES:
            out.append(_ESCAPES[c])
        elif c.isprintable():
            out.append(c)
        elif ord(c) <= 0xFF:
            out.append(f"\\x{ord(c):02X}")
        elif ord(c) <= 0xFFFF:
            out.append(f"\\u{ord(c):04X}")
        else:
            out.append(f"\\U{ord(c):08X}")
    return '"' + "".join(out) + '"'


def yaml_scalar(value: str | int | bool) -> str:
    """One scalar as yaml.v3 writes it in block context."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return _yaml_string(value)


@lru_cache(maxsize=4096)  # a spec repeats its paths and options many times
def _yaml_string(s: str) -> str:
    if "\n" in s or not s or _resolves_to_non_string(s):
        return _double_quoted(s)  # spec strings never hold a newline; "" and "0" do occur
    if _plain_allowed(s):
        return s
    if _single_quoted_allowed(s):
        return "'" + s.replace("'", "''") + "'"
    return _double_quoted(s)


class _Shared:
    """A nested mapping that recurs in the document: written once per column."""

    __slots__ = ("mapping", "texts")

    def __init__(self, mapping: dict[str, Any]) -> None:
        self.mapping = mapping
        self.texts: dict[int, str] = {}

    def text(self, nested: int) -> str:
        """The mapping's lines as a nested block at column `nested`."""
        text = self.texts.get(nested)
        if text is None:
            lines: list[str] = []
            pad = " " * nested
            _emit_mapping(lines, self.mapping, pad, pad, nested + 4)
            text = self.texts[nested] = "".join(lines)
        return text


def _emit_mapping(
    out: list[str], mapping: dict[str, Any], first: str, rest: str, nested: int
) -> None:
    """Write `mapping`'s entries: the first line starts with `first`, the others with
    `rest`, and nested blocks start at column `nested`."""
    prefix = first
    for key, value in mapping.items():
        kind = type(value)  # one dispatch a value: most are strings, ints or lists
        if kind is str:
            out.append(f"{prefix}{key}: {_yaml_string(value)}\n")
        elif kind is list:
            if not value:
                out.append(f"{prefix}{key}: []\n")
            else:
                out.append(f"{prefix}{key}:\n")
                _emit_sequence(out, value, nested)
        elif kind is int:
            out.append(f"{prefix}{key}: {value}\n")
        elif kind is _Shared:
            out.append(f"{prefix}{key}:\n")
            out.append(value.text(nested))
        elif kind is dict:
            if not value:
                out.append(f"{prefix}{key}: {{}}\n")
            else:
                out.append(f"{prefix}{key}:\n")
                pad = " " * nested
                _emit_mapping(out, value, pad, pad, nested + 4)
        else:
            out.append(f"{prefix}{key}: {yaml_scalar(value)}\n")
        prefix = rest


def _emit_sequence(out: list[str], items: list[Any], indent: int) -> None:
    dash = " " * indent + "- "
    if all(type(item) is str for item in items):  # args, env, options: one line each
        out += [f"{dash}{_yaml_string(item)}\n" for item in items]
        return
    rest = " " * (indent + 2)
    for item in items:
        if type(item) is dict:
            # yaml.v3: the item's keys follow the dash, its nested blocks go 4 past it.
            _emit_mapping(out, item, dash, rest, indent + 4)
        else:
            out.append(f"{dash}{yaml_scalar(item)}\n")


def _share_device_edits(spec: Spec, devices: list[dict[str, Any]]) -> None:
    """Write each distinct device `containerEdits` once: a device named several ways
    (index, UUID) carries equal edits, so equal lines, under each of its names."""
    shared: dict[ContainerEdits, _Shared] = {}
    for entry, device in zip(devices, spec.devices, strict=True):
        if entry["containerEdits"]:  # an empty one is `{}` on the key's own line
            same = shared.get(device.container_edits)
            if same is None:
                same = shared[device.container_edits] = _Shared(entry["containerEdits"])
            entry["containerEdits"] = same


def to_yaml(spec: Spec) -> bytes:
    """The spec as `nvidia-ctk` >= v1.18 writes YAML."""
    data = spec.to_dict()
    if not data["containerEdits"]:
        del data["containerEdits"]  # yaml.v3 omits an empty struct; Go's JSON keeps `{}`
    _share_device_edits(spec, data["devices"])
    out = ["---\n"]
    _emit_mapping(out, data, "", "", 4)
    return "".join(out).encode("utf-8")


def to_json(spec: Spec) -> bytes:
    """Go `json.Marshal`: compact, struct order, HTML-safe escapes, no trailing newline."""
    text = json.dumps(spec.to_dict(), separators=(",", ":"), ensure_ascii=False)
    for raw, escaped in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(raw, escaped)
    return text.encode("utf-8")
