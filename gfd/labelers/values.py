"""Label value rules: upstream's sanitiser, product names, and the 63-character fix.

spec/labels.md §4. Values that are valid upstream pass through byte-identical; only a
value Kubernetes would reject is shortened, keeping the discriminating suffix.
"""

from __future__ import annotations

import logging
import re

log = logging.getLogger(__name__)

MAX_VALUE_LENGTH = 63
_INVALID_CHARS = re.compile(r"[^A-Za-z0-9\-_. ]")
_VALID_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")
_EDGE = re.compile(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$")
_TRAILING = re.compile(r"[^A-Za-z0-9]+$")
_shortened: set[tuple[str, str]] = set()


def sanitise(value: str) -> str:
    """Drop characters outside `[A-Za-z0-9-_. ]`, then join whitespace-separated words with -."""
    return "-".join(_INVALID_CHARS.sub("", value).split())


def is_valid_value(value: str) -> bool:
    return len(value) <= MAX_VALUE_LENGTH and bool(_VALID_VALUE.fullmatch(value))


def fit(key: str, head: str, tail: str = "", empty: str = "") -> str:
    """`head + tail` if Kubernetes accepts it, else the head cut so that the tail survives.

    `tail` is the suffix parts with their leading `-` (`-MIG-1g.5gb`, `-SHARED`); an
    empty result becomes `empty` (`unknown` for the machine type).
    """
    value = head + tail
    if is_valid_value(value):
        return value
    cut = _EDGE.sub("", head)[: max(MAX_VALUE_LENGTH - len(tail), 0)]
    cut = _TRAILING.sub("", cut)
    fitted = cut + tail if cut else tail.lstrip("-")
    fitted = fitted or empty
    if (key, value) not in _shortened:
        _shortened.add((key, value))
        log.warning(
            "Label value for %s shortened to satisfy Kubernetes label rules: %s -> %s",
            key,
            value,
            fitted,
        )
    return fitted


def product(key: str, model: str, suffixes: tuple[str, ...] = (), shared: bool = False) -> str:
    """`<model>[-MIG-<profile>][-SHARED]`, each part sanitised (labels.md §4.2)."""
    parts = [sanitise(p) for p in suffixes if p]
    if shared:
        parts.append("SHARED")
    tail = "".join(f"-{p}" for p in parts if p)
    return fit(key, sanitise(model), tail)
