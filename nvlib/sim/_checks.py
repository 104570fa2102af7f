"""Small validators for the profile YAML: each returns the value or raises ProfileError.

Every check takes the field path (`gpus[1].memory`) so that the error reads like the
input. Booleans are not integers here: `count: yes` is a typo, not 1.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from typing import TypeVar

import pynvml

from nvlib.sim.errors import ProfileError

T = TypeVar("T")

_DURATION = r"^(\d+(?:\.\d+)?)(ms|s|m)$"  # compiled on first use: most runs never need it
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0}


def mapping(value: object, path: str, allowed: Collection[str]) -> dict[str, object]:
    if not isinstance(value, dict):
        raise ProfileError(path, value, "expected a mapping")
    for key in value:
        if not isinstance(key, str) or key not in allowed:
            raise ProfileError(join(path, str(key)), value[key], _unknown_key(str(key), allowed))
    return value


def _unknown_key(key: str, allowed: Collection[str]) -> str:
    import difflib  # only on the error path: it is not free to import

    close = difflib.get_close_matches(key, list(allowed), n=1)
    if close:
        return f"unknown key (did you mean {close[0]!r}?)"
    return "unknown key; known keys: " + ", ".join(sorted(allowed))


def join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def integer(value: object, path: str, low: int | None = None, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProfileError(path, value, _range_text(low, high))
    if (low is not None and value < low) or (high is not None and value > high):
        raise ProfileError(path, value, _range_text(low, high))
    return value


def _range_text(low: int | None, high: int | None) -> str:
    if low == 1 and high is None:
        return "expected a positive integer"
    if low == 0 and high is None:
        return "expected a non-negative integer"
    if low is not None and high is not None:
        return f"expected an integer from {low} to {high}"
    return "expected an integer"


def positive(value: object, path: str) -> int:
    return integer(value, path, 1)


def string(value: object, path: str, hint: str = "") -> str:
    if not isinstance(value, str) or not value.strip():
        raise ProfileError(path, value, "expected a non-empty string" + hint)
    return value


def choice(value: object, path: str, choices: Collection[str]) -> str:
    if not isinstance(value, str) or value.lower() not in choices:
        raise ProfileError(path, value, "expected one of " + ", ".join(choices))
    return value.lower()


def sequence(value: object, path: str) -> list[object]:
    if not isinstance(value, list):
        raise ProfileError(path, value, "expected a list")
    return value


def per_gpu(
    value: object, path: str, count: int, item: Callable[[object, str], T], scalar: bool
) -> list[T]:
    """One value per GPU of a `count:` entry: a list of `count` values, or (if `scalar`) one."""
    if isinstance(value, list):
        if len(value) != count:
            raise ProfileError(path, value, f"expected {count} entries, one per GPU")
        return [item(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if not scalar:
        raise ProfileError(path, value, f"expected a list of {count} entries, one per GPU")
    one = item(value, path)
    return [one] * count


def duration(value: object, path: str) -> float:
    """Seconds from `2s`, `500ms`, `1m` or a plain number of seconds."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
        return float(value)
    if isinstance(value, str):
        match = re.match(_DURATION, value.strip())
        if match:
            return float(match.group(1)) * _DURATION_UNITS[match.group(2)]
    raise ProfileError(path, value, "expected a duration like '2s', '500ms' or '1m'")


def hex_int(value: object, path: str, high: int) -> int:
    """An integer written as YAML int (0x030200 is one) or as a hex string '0x030200'."""
    if isinstance(value, str):
        try:
            value = int(value, 16)
        except ValueError:
            raise ProfileError(path, value, f"expected a hex number up to {high:#x}") from None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= high:
        raise ProfileError(path, value, f"expected a hex number up to {high:#x}")
    return value


def error_code(value: object, path: str, allow_success: bool = False) -> int:
    """`UNKNOWN` or `NVML_ERROR_UNKNOWN` -> 999; `SUCCESS` only where `allow_success`."""
    name = value.upper() if isinstance(value, str) else ""
    if allow_success and name in ("SUCCESS", "NVML_SUCCESS"):
        return pynvml.NVML_SUCCESS
    if name and not name.startswith("NVML_ERROR_"):
        name = "NVML_ERROR_" + name
    code = getattr(pynvml, name, None) if name else None
    if not isinstance(code, int):
        raise ProfileError(path, value, "not an NVML error name (e.g. UNKNOWN, GPU_IS_LOST)")
    return code
