"""Label value rules: upstream's sanitiser, product names, and the 63-character fix.

Values that are valid upstream pass through byte-identical; only a value Kubernetes
would reject is shortened, keeping the discriminating suffix
(docs/labels.md#values-sanitising-and-the-63-character-fix).
"""

from __future__ import annotations

import logging
from functools import lru_cache
from string import ascii_letters, digits

log = logging.getLogger(__name__)

MAX_VALUE_LENGTH = 63
# Character sets instead of regular expressions: compiling a pattern costs more than a
# whole labelling pass, and every oneshot would pay for it.
ALNUM = frozenset(ascii_letters + digits)
NAME_CHARS = ALNUM | {"-", "_", "."}
_SANITISED = NAME_CHARS | {" "}
_shortened: set[tuple[str, str]] = set()


def sanitise(value: str) -> str:
    """Drop characters outside `[A-Za-z0-9-_. ]`, then join whitespace-separated words with -."""
    return "-".join("".join(c for c in value if c in _SANITISED).split())


def is_name(text: str) -> bool:
    """`[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`: a label name, or a non-empty value."""
    return bool(text) and text[0] in ALNUM and text[-1] in ALNUM and NAME_CHARS.issuperset(text)


@lru_cache(maxsize=4096)  # the same values come back every pass
def is_valid_value(value: str) -> bool:
    return len(value) <= MAX_VALUE_LENGTH and (not value or is_name(value))


def _strip_edges(text: str, leading: bool = True) -> str:
    """Drop non-alphanumerics at the end (and the start, if `leading`)."""
    end = len(text)
    while end and text[end - 1] not in ALNUM:
        end -= 1
    start = 0
    while leading and start < end and text[start] not in ALNUM:
        start += 1
    return text[start:end]


def fit(key: str, head: str, tail: str = "", empty: str = "") -> str:
    """`head + tail` if Kubernetes accepts it, else the head cut so that the tail survives.

    `tail` is the suffix parts with their leading `-` (`-MIG-1g.5gb`, `-SHARED`); an
    empty result becomes `empty` (`unknown` for the machine type).
    """
    value = head + tail
    if is_valid_value(value):
        return value
    cut = _strip_edges(head)[: max(MAX_VALUE_LENGTH - len(tail), 0)]
    cut = _strip_edges(cut, leading=False)
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
    """`<model>[-MIG-<profile>][-SHARED]`, each part sanitised."""
    parts = [sanitise(p) for p in suffixes if p]
    if shared:
        parts.append("SHARED")
    tail = "".join(f"-{p}" for p in parts if p)
    return fit(key, sanitise(model), tail)
