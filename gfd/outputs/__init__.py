"""GFD's label writers: the NFD feature file and the NodeFeature object.

This package face stays light on purpose: `gpu-feature-discovery --oneshot`
in file mode imports it, and must not pay for the Kubernetes client
(spec/stack.md §3.3). `nodefeature` imports `kubernetes` inside its functions.
"""

from __future__ import annotations

from collections.abc import Mapping

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Protocol
else:
    Protocol = object  # at run time a plain base: nothing checks an Output with isinstance

__all__ = ["Output", "OutputError"]


class OutputError(RuntimeError):
    """Writing or publishing the labels failed; the text is upstream's where it has one."""


class Output(Protocol):
    """One place the labels go (spec/labels.md §17.1)."""

    def write(self, labels: Mapping[str, str]) -> None:
        """Publish `labels` (the complete set); raise OutputError on failure."""

    def cleanup(self) -> None:
        """Run on exit; never raises (failures are logged as warnings)."""
