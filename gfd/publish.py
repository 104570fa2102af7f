"""Publishing the latest labels through one output, backing off while the API server fails.

A failure the output marks retryable (no answer, 408, 429, 5xx, a conflict that
re-reading did not settle; a feature file whose filesystem is full) is waited out:
the next attempt is due after `backoff_delay` (gfd/backoff.py), and a pass that comes
earlier only replaces the labels waiting to be published, so the fleet asks no more
often than the backoff allows, however short `--sleep-interval` is. The first attempt that succeeds
publishes the newest labels. Nothing here sleeps: the daemon's loop waits for
`retry_in()` on the same Event as for the next pass and for signals.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from gfd.backoff import DEFAULT_POLICY, BackoffPolicy, backoff_delay
from gfd.metrics import NO_METRICS, GfdMetrics
from gfd.outputs import Output, OutputError

__all__ = ["Publisher"]

log = logging.getLogger(__name__)


class Publisher:
    def __init__(
        self,
        output: Output,
        clock: Callable[[], float],
        *,
        policy: BackoffPolicy = DEFAULT_POLICY,
        jitter: Callable[[], float] | None = None,
        metrics: GfdMetrics = NO_METRICS,
    ) -> None:
        """`jitter`: draws from [0, 1) for the backoff; random.random when None,
        imported only when a publish first fails."""
        self.output = output
        self.metrics = metrics
        self.policy = policy
        self._clock, self._jitter = clock, jitter
        self.pending: dict[str, str] | None = None  # labels not yet published
        self.retry_at: float | None = None  # monotonic; None when not backing off
        self.failed_attempts = 0  # retryable failures in a row

    def publish(self, labels: Mapping[str, str]) -> bool:
        """Publish `labels` now, or when the backoff allows; True once published.

        Raises OutputError for a failure that waiting does not fix (a refused body,
        a forbidden request, a read-only or unwritable file): the caller decides, and
        the next pass tries again.
        """
        self.pending = dict(labels)
        wait = self.retry_in()
        if wait is not None and wait > 0:
            log.info(
                "Backing off after failed attempts: these labels are published in %.1f s", wait
            )
            return False
        return self._attempt()

    def retry_in(self) -> float | None:
        """Seconds until the labels waiting to be published are due; None if none wait."""
        if self.pending is None or self.retry_at is None:
            return None
        return max(self.retry_at - self._clock(), 0.0)

    def retry(self) -> None:
        """The backoff's own attempt, between passes, once `retry_in()` says 0; failures
        are logged, never raised."""
        try:
            self._attempt()
        except OutputError as err:
            log.error("Publishing the labels failed, keeping the last ones: %s", err)

    def _attempt(self) -> bool:
        assert self.pending is not None
        try:
            self.output.write(self.pending)
        except OutputError as err:
            if not err.retryable:
                self.pending, self.retry_at, self.failed_attempts = None, None, 0
                raise
            if self._jitter is None:
                import random

                self._jitter = random.random
            delay = backoff_delay(
                self.failed_attempts, err.retry_after_s, self._jitter(), self.policy
            )
            self.failed_attempts += 1
            self.retry_at = self._clock() + delay
            log.warning(
                "Publishing the labels failed (%d in a row), keeping the last ones; "
                "next attempt in %.1f s: %s",
                self.failed_attempts,
                delay,
                err,
            )
            return False
        if self.failed_attempts:
            log.info("Published the labels after %d failed attempts", self.failed_attempts)
        self.metrics.published(len(self.pending))
        self.pending, self.retry_at, self.failed_attempts = None, None, 0
        return True
