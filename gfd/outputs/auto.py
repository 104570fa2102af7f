"""`--use-node-feature-api auto` while API discovery has not answered yet.

A probe that gets no answer (connection refused, timeout, 429, 5xx) settles nothing: the
feature file carries the labels meanwhile, and discovery is asked again before each
write until it answers. SERVED moves the labels to the NodeFeature object and removes
the feature file once the object is written (gfd/outputs/handover.py); a definite no
keeps the file until the next config load. Kept free of the Kubernetes client: the
probe and the NodeFeature output are made by the caller (gfd/setup.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from gfd.outputs import Output, OutputKind
from gfd.outputs.featurefile import FeatureFile
from gfd.outputs.handover import Handover
from gfd.outputs.nodefeature import Discovery

__all__ = ["AutoOutput"]

log = logging.getLogger(__name__)


class AutoOutput:
    """The feature file until `probe` answers, then whichever output it chose."""

    def __init__(
        self,
        file: FeatureFile,
        probe: Callable[[], Discovery],
        make_nodefeature: Callable[[], Output],
    ) -> None:
        self.file = file
        self.active: Output = file
        self.settled = False
        self._probe, self._make_nodefeature = probe, make_nodefeature

    @property
    def kind(self) -> OutputKind:
        return self.active.kind

    def write(self, labels: Mapping[str, str]) -> None:
        if not self.settled:
            self._ask()
        self.active.write(labels)

    def _ask(self) -> None:
        found = self._probe()
        if found is Discovery.UNREACHABLE:
            return
        self.settled = True
        if found is Discovery.SERVED:
            # Made before the switch: a bad node name stops here, with the file still on.
            nodefeature = self._make_nodefeature()
            log.info("NodeFeature API answered: publishing to the NodeFeature object from now on")
            self.active = Handover(nodefeature, self.file)

    def withdraw(self) -> None:
        self.active.withdraw()

    def close(self) -> None:
        self.active.close()

    def cleanup(self) -> None:
        self.active.cleanup()
