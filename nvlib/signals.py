"""Signals for a daemon loop: a signal only wakes the loop; the loop does the work.

GFD's labelling loop, the device plugin's event loop and the CDI watch loop `wait` for a
wake, then `take()` what arrived and act in their own thread: no work, no locks, no I/O
in a handler. SIGHUP asks for a reload; SIGINT, SIGTERM and SIGQUIT for an exit. Tests
drive a loop from a thread of their own with `send`.

No signal is lost or overwritten (`settle` is the rule): the first stop signal stays
pending for good and wins over any reload, whatever arrives after it; SIGHUPs that
arrive before the loop takes them make one reload, and a SIGHUP that arrives once the
loop has taken the previous one makes another.

How: each signal is one byte, its number, in a non-blocking pipe. `install` makes the
pipe Python's wakeup fd, so the interpreter's C-level handler writes the byte the
moment the signal is delivered, in whichever thread the kernel picked. `wait` polls the
pipe and `take` reads it, so the bytes are the one record of what arrived:
- a signal that comes just before the loop blocks, or lands in another thread (the
  plugin has gRPC and health threads), still wakes the poll. A Python-level handler
  would only run once the main thread next executes bytecode, i.e. after the poll.
- one that comes while `take` reads stays in the pipe and wakes the next `wait` at once.
- nothing takes a lock: a `threading.Event` set from a Python handler can deadlock
  against the same thread inside `Event.wait()` or `clear()`.
"""

from __future__ import annotations

import atexit
import math
import os
import select
import signal
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from types import FrameType
from typing import TypeVar

_T = TypeVar("_T")

DAEMON_SIGNALS = (signal.SIGHUP, signal.SIGINT, signal.SIGTERM, signal.SIGQUIT)
RELOAD = signal.SIGHUP


def settle(stop: int | None, arrived: Iterable[int]) -> tuple[int | None, int | None]:
    """The pending stop after `arrived`, and what the loop acts on now.

    `stop` is the stop signal taken earlier, if any: it is kept, and the first stop
    among `arrived` only counts when there was none. The action is that stop, else
    SIGHUP when any arrived (however many: one reload serves them all), else None.
    Signals other than the daemon's are ignored.
    """
    reload = False
    for signum in arrived:
        if signum == RELOAD:
            reload = True
        elif stop is None and signum in DAEMON_SIGNALS:
            stop = signum
    if stop is not None:
        return stop, stop
    return None, RELOAD if reload else None


class Signals:
    """A pipe of the signals that arrived, read by the loop; and the stop taken, if any."""

    def __init__(self) -> None:
        self._read_end, self._write_end = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._poll = select.poll()
        self._poll.register(self._read_end, select.POLLIN)
        self._stop: int | None = None  # touched only by `take`, in the loop's thread
        weakref.finalize(self, _close, self._read_end, self._write_end)

    def send(self, signum: int) -> None:
        """Record `signum` and wake the loop, as a delivered signal does; for tests."""
        try:
            os.write(self._write_end, bytes((signum,)))
        except BlockingIOError:  # 64 KiB of signals unread: the loop is awake anyway
            pass

    def wake(self) -> None:
        """Wake the loop's `wait` without a signal: a worker it waits on has finished.

        The byte is no daemon signal, so `take` drops it (see `settle`).
        """
        self.send(0)

    def wait(self, timeout: float | None) -> bool:
        """Block until a signal is there to take or `timeout` seconds pass (None: no limit).

        True when one is there. Returns at once when one arrived before the call.
        """
        ms = None if timeout is None else max(math.ceil(timeout * 1000), 0)
        return bool(self._poll.poll(ms))

    def take(self) -> int | None:
        """The signal to act on (see `settle`), or None; a stop stays pending for good."""
        self._stop, action = settle(self._stop, self._read_all())
        return action

    def install(self) -> None:
        """Route the process's daemon signals here (main thread only)."""
        global _installed
        for sig in DAEMON_SIGNALS:
            signal.signal(sig, _recorded_by_the_wakeup_fd)
        signal.set_wakeup_fd(self._write_end)
        if _installed is None:
            atexit.register(_ignore_from_now_on)
        _installed = self  # its pipe must stay open while the interpreter writes to it

    def _read_all(self) -> bytes:
        chunks = []
        while True:
            try:
                chunk = os.read(self._read_end, 4096)
            except BlockingIOError:  # empty: what arrives from now on wakes the next wait
                break
            if not chunk:  # cannot happen while the write end is open; never spin
                break
            chunks.append(chunk)
        return b"".join(chunks)


_installed: Signals | None = None

# How often a loop waiting on work off its thread looks again, besides the wakes.
_WORK_POLL_SECONDS = 0.1


class Stopped(Exception):
    """A stop signal came while the loop waited on work off its thread."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def call_taking_signals(
    signals: Signals,
    work: Callable[[], _T],
    *,
    name: str,
    grace: float,
    slow_after: float | None = None,
    on_slow: Callable[[float], object] = lambda _waited: None,
    on_reload: Callable[[], object] = lambda: None,
) -> _T:
    """`work()` on a thread of its own while the calling loop goes on taking signals.

    Work that calls NVML or a server can hang, and a stop must still end the process:
    on a stop signal the work is waited for `grace` seconds at most (a step about to
    finish is let finish), then left behind, never joined (the process exits without
    it), and Stopped is raised. A SIGHUP taken meanwhile calls `on_reload` (once) and is
    sent again when the work returns, so the loop's next `take` sees it. `on_slow` is
    called once with the seconds waited, when the work has run `slow_after` seconds.
    What `work` raises is raised here.
    """
    outcome: list[_T] = []
    failure: list[BaseException] = []
    done = threading.Event()

    def run() -> None:
        try:
            outcome.append(work())
        except BaseException as err:  # handed to the loop's thread, which raises it
            failure.append(err)
        finally:
            done.set()  # before the wake: the loop that takes the wake sees it done
            signals.wake()

    thread = threading.Thread(target=run, name=name, daemon=True)
    began = time.monotonic()
    thread.start()
    reload, reported = False, False
    while not done.is_set():
        signals.wait(_WORK_POLL_SECONDS)
        received = signals.take()
        if received == RELOAD:
            if not reload:
                on_reload()
            reload = True
        elif received is not None:
            thread.join(grace)
            raise Stopped(received)
        waited = time.monotonic() - began
        if not reported and slow_after is not None and waited >= slow_after:
            reported = not done.is_set()
            if reported:
                on_slow(waited)
    if reload:
        signals.send(RELOAD)
    if failure:
        raise failure[0]
    return outcome[0]


def _recorded_by_the_wakeup_fd(_signum: int, _frame: FrameType | None) -> None:
    """The Python-level handler: nothing left to do, the C-level one wrote the byte.

    Installing a Python handler is what makes the interpreter catch the signal (instead
    of the default action: terminate) and write it to the wakeup fd.
    """


def _ignore_from_now_on() -> None:
    """At exit, the interpreter puts back the default action of every signal it caught:
    a SIGHUP that came a moment after a SIGTERM would then kill the exiting process
    (status 129, not the 0 of a stop). The loop is over and acts on nothing more."""
    for sig in DAEMON_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)


def _close(*fds: int) -> None:
    for fd in fds:
        os.close(fd)
