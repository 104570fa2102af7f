"""The periodic node check, run off the control loop's thread.

Every interval the daemon asks NVML whether the GPUs, the MIG devices or the driver
changed. An NVML call can hang in the driver; the control loop must still answer a
kubelet restart and a SIGTERM within a second, so the check runs on a daemon thread
that nobody ever joins (at exit the process just leaves it). Each tick `poll` looks at
it without waiting: a check still running when the next one is due is reported as hung,
once, and no other check starts until it returns (a hung driver would only collect
hung threads). One that returns late is logged, and its answer used.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

Check = Callable[[], "str | None"]  # a restart reason, or None: nothing changed


class _Run:
    """One check on its thread; what it returned or raised lands here."""

    def __init__(self, check: Check, generation: int) -> None:
        self.generation = generation
        self.started = time.monotonic()
        self.reason: str | None = None
        self.error: Exception | None = None
        self.reported = False  # logged as hung
        self.last_round = self.started  # the last interval counted in NodeCheck.rounds
        self.done = threading.Event()
        threading.Thread(target=self._run, args=(check,), name="node-check", daemon=True).start()

    def _run(self, check: Check) -> None:
        try:
            self.reason = check()
        except Exception as err:  # handed to the control loop, which decides
            self.error = err
        finally:
            self.done.set()


class NodeCheck:
    """Start `check` every `interval` seconds off-thread; `poll` never blocks."""

    def __init__(self, check: Check) -> None:
        self._check = check
        # One per interval the loop saw through: a check that finished, or one interval
        # more that a hung check did not. The heartbeat follows it, so a hung driver
        # call does not make a serving, registered plugin look dead.
        self.rounds = 0
        self._last = time.monotonic()  # when the last check started (or the loop did)
        self._run: _Run | None = None
        self._generation = 0

    def restarted(self) -> None:
        """The plugins started again on a fresh discovery: a check begun before compares
        against what is no longer advertised, so its answer is dropped."""
        self._generation += 1

    def poll(self, interval: float) -> str | None:
        """A restart reason from a finished check; raises what the check raised.

        `interval` is read on every tick, so that a test may shorten it on a running loop.
        """
        now = time.monotonic()
        run = self._run
        if run is not None:
            if not run.done.is_set():
                if now - run.last_round >= interval:
                    run.last_round = now
                    self.rounds += 1
                if not run.reported and now - run.started >= interval:
                    run.reported = True
                    log.warning(
                        "NVML node check has not returned after %.1fs (a hung driver call?);"
                        " not waiting for it: serving on, no new check until it returns",
                        now - run.started,
                    )
                return None
            self._run = None
            self.rounds += 1
            if run.reported:
                log.warning("NVML node check returned after %.1fs", now - run.started)
            if run.generation == self._generation:
                if run.error is not None:
                    raise run.error
                return run.reason
        if now - self._last >= interval:
            self._last = now
            self._run = _Run(self._check, self._generation)
        return None
