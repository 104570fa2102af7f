"""GFD's label writers: the NFD feature file and the NodeFeature object.

This package face stays light on purpose: `gpu-feature-discovery --oneshot` in file
mode imports it, and must not pay for the Kubernetes client
(docs/architecture.md#who-may-import-whom). `nodefeature` imports `kubernetes`
inside its functions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, Protocol

OutputKind = Literal["file", "stdout", "nodefeature"]

__all__ = ["Output", "OutputError"]


class OutputError(RuntimeError):
    """Writing or publishing the labels failed; the text is upstream's where it has one.

    `retryable`: the API server did not answer, or answered 408, 429, 5xx or a conflict
    that re-reading did not settle, or the feature file's filesystem is full; waiting and
    trying again may succeed, so the daemon backs off instead of giving up.
    `retry_after_s`: the server's `Retry-After`.
    """

    def __init__(
        self, message: str, *, retryable: bool = False, retry_after_s: float | None = None
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after_s = retry_after_s


class Output(Protocol):
    """One place the labels go (docs/labels-output.md#choosing-the-output)."""

    @property
    def kind(self) -> OutputKind:
        """Where the labels go now: `auto` may move from the file to a NodeFeature."""

    def write(self, labels: Mapping[str, str]) -> None:
        """Publish `labels` (the complete set); raise OutputError on failure."""

    def withdraw(self) -> None:
        """Remove what this output published, because another output took over;
        raise OutputError on failure (an absent copy is not one)."""

    def close(self) -> None:
        """Release connections; removes nothing. Never raises."""

    def cleanup(self) -> None:
        """Run on exit; never raises (failures are logged as warnings)."""
