"""One output taking over from another, so that a node never keeps two sources of labels.

NFD merges the feature file and every NodeFeature object of a node; a stale copy left
by the output GFD no longer uses would keep publishing old labels beside the new ones.
The old copy is removed only after the new output has published, so the node is never
without labels in between. Used when a NodeFeature takes over from the feature file
(at start, or when `auto` discovery answers late) and when a reload moves from a
NodeFeature back to the file.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from gfd.outputs import Output, OutputError, OutputKind

__all__ = ["Handover"]

log = logging.getLogger(__name__)


class Handover:
    """Writes to `new`; after each successful write, until it succeeds, withdraws `old`."""

    def __init__(self, new: Output, old: Output) -> None:
        self.new = new
        self.old: Output | None = old

    @property
    def kind(self) -> OutputKind:
        return self.new.kind

    def write(self, labels: Mapping[str, str]) -> None:
        self.new.write(labels)
        if self.old is None:
            return
        try:
            self.old.withdraw()
        except OutputError as err:
            # The labels are published; the stale copy is retried after the next write.
            log.warning("Could not remove the labels' previous %s yet: %s", self.old.kind, err)
            return
        self.old.close()
        self.old = None

    def withdraw(self) -> None:
        self.new.withdraw()

    def close(self) -> None:
        self.new.close()
        if self.old is not None:
            self.old.close()

    def cleanup(self) -> None:
        self.new.cleanup()
        if self.old is not None:
            self.old.close()
