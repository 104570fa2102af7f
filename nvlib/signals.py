"""Signals for a daemon loop: a handler only records the signal and wakes the loop.

GFD's periodic loop and the device plugin's event loop wait on `wake`, then `take()`
what arrived and act in their own thread (spec/stack.md §6 pitfall 6: no work, no
locks, no I/O in a handler). SIGHUP asks for a reload; SIGINT, SIGTERM and SIGQUIT
for an exit. Tests drive a loop from a thread of their own with `send`.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

DAEMON_SIGNALS = (signal.SIGHUP, signal.SIGINT, signal.SIGTERM, signal.SIGQUIT)


class Signals:
    """The last signal received, and an Event that wakes the loop."""

    def __init__(self) -> None:
        self.wake = threading.Event()
        self.received: int | None = None

    def send(self, signum: int) -> None:
        """Record `signum` and wake the loop: what a handler does, callable from a test."""
        self.received = signum
        self.wake.set()

    def take(self) -> int | None:
        """The signal received since the last call, or None; clears `wake`."""
        received, self.received = self.received, None
        self.wake.clear()
        return received

    def install(self) -> None:
        """Route the process's daemon signals here (main thread only)."""
        for sig in DAEMON_SIGNALS:
            signal.signal(sig, self._handle)

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        self.send(signum)
