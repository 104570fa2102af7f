"""The rules a template's output must follow, as pure functions over its text.

A template renders `key=value` lines (blank lines are skipped; keys and values are
stripped of surrounding blanks). Keys must be valid Kubernetes label keys in a namespace
NFD accepts and the operator allowed (`nvidia.com`, or one of
`--label-template-namespaces`); values must be valid label values; a key the built-in
labels already have, or another template already wrote, is refused: templates add
labels, they never override one.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from gfd.labelers.values import is_valid_value
from gfd.labels import is_valid_key

DEFAULT_NAMESPACE = "nvidia.com"


class RuleError(ValueError):
    """A line of a template's output breaks a rule; `line` is its 1-based output line."""

    def __init__(self, line: int, text: str, reason: str) -> None:
        super().__init__(f"{text}: {reason}")
        self.line, self.text, self.reason = line, text, reason


def parse_output(
    text: str,
    *,
    namespaces: Collection[str],
    builtin: Mapping[str, str],
    taken: Mapping[str, str],
) -> dict[str, str]:
    """The labels of one template's output; raises RuleError at the first bad line.

    `taken` maps a key other templates wrote this pass to the one that wrote it.
    """
    labels: dict[str, str] = {}
    for number, raw in enumerate(text.split("\n"), 1):
        line = raw.strip()
        if not line:
            continue
        key, sep, value = line.partition("=")
        key, value = key.strip(), value.strip()
        reason = _problem(key, value, sep, namespaces)
        if reason is None:
            if key in builtin:
                reason = "a built-in label has this key (templates add labels, never override)"
            elif key in taken:
                reason = f"{taken[key]} already wrote this key"
            elif key in labels:
                reason = "this template writes the key twice"
        if reason is not None:
            raise RuleError(number, line, reason)
        labels[key] = value
    return labels


def _problem(key: str, value: str, sep: str, namespaces: Collection[str]) -> str | None:
    if not sep:
        return "not a key=value line"
    namespace, slash, _ = key.rpartition("/")
    if not slash:
        return f"the key has no namespace: write {DEFAULT_NAMESPACE}/{key}"
    if not is_valid_key(key):
        return "not a valid label key"
    if namespace != DEFAULT_NAMESPACE and namespace not in namespaces:
        return (
            f"namespace {namespace} is neither {DEFAULT_NAMESPACE} nor listed in"
            " --label-template-namespaces"
        )
    if not is_valid_value(value):
        return (
            "not a valid label value (at most 63 characters: letters, digits, '-', '_'"
            " and '.', starting and ending with a letter or digit; the label_value filter"
            " makes one)"
        )
    return None
