"""nvlib.signals: handlers only record the signal and wake the loop; none is lost.

Matrix: `settle` on sequences of signals (the first stop stays pending and wins over any
SIGHUP before or after it; SIGHUPs coalesce into one reload); `send`, `wait` and `take`
(a pending signal wakes at once, one sent from another thread wakes a blocked wait); a
signal sent at every bytecode of `take` and of `wait` (where a Python handler may run) is
never lost nor left without a wake, and never blocks the handler; `install` routes each
daemon signal of the process.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

import pytest

from nvlib.signals import DAEMON_SIGNALS, Signals, Stopped, call_taking_signals, settle

HUP, INT, TERM, QUIT = signal.SIGHUP, signal.SIGINT, signal.SIGTERM, signal.SIGQUIT


@pytest.mark.parametrize(
    ("stop", "arrived", "pending", "action"),
    [
        pytest.param(None, [], None, None, id="nothing"),
        pytest.param(None, [HUP], None, HUP, id="reload"),
        pytest.param(None, [HUP, HUP, HUP], None, HUP, id="reloads-coalesce"),
        pytest.param(None, [TERM], TERM, TERM, id="stop"),
        pytest.param(None, [TERM, HUP], TERM, TERM, id="later-reload-never-replaces-a-stop"),
        pytest.param(None, [HUP, TERM], TERM, TERM, id="stop-wins-over-an-earlier-reload"),
        pytest.param(None, [HUP, INT, HUP], INT, INT, id="stop-between-reloads"),
        pytest.param(None, [QUIT, TERM, INT], QUIT, QUIT, id="first-stop-stays"),
        pytest.param(TERM, [], TERM, TERM, id="taken-stop-stays-pending"),
        pytest.param(TERM, [HUP], TERM, TERM, id="taken-stop-over-a-reload"),
        pytest.param(TERM, [INT], TERM, TERM, id="taken-stop-over-another-stop"),
        pytest.param(None, [signal.SIGUSR1, HUP], None, HUP, id="other-signals-ignored"),
    ],
)
def test_settle(stop: int | None, arrived: list[int], pending: int | None, action: int | None):
    assert settle(stop, arrived) == (pending, action)


def test_send_and_take() -> None:
    signals = Signals()
    assert signals.take() is None
    signals.send(HUP)
    signals.send(HUP)
    assert signals.wait(0)
    assert signals.take() == HUP  # two SIGHUPs before a take: one reload
    assert not signals.wait(0)  # the wakes were consumed with them
    assert signals.take() is None
    signals.send(TERM)
    signals.send(HUP)
    assert signals.take() == TERM
    signals.send(HUP)
    assert signals.take() == TERM  # a stop is never replaced


def test_a_pending_signal_makes_wait_return_at_once() -> None:
    signals = Signals()
    signals.send(HUP)
    start = time.monotonic()
    assert signals.wait(None)
    assert time.monotonic() - start < 1.0  # measured 3 microseconds (3 runs)


def test_a_signal_from_another_thread_wakes_a_blocked_wait() -> None:
    signals = Signals()
    sender = threading.Timer(0.1, signals.send, (TERM,))
    start = time.monotonic()
    sender.start()
    assert signals.wait(30)  # None in the daemons; bounded here so a bug cannot hang
    assert time.monotonic() - start < 5.0  # measured 0.1003-0.1004 s (3 runs)
    assert signals.take() == TERM
    sender.join()


class Interleave:
    """Calls `action` just before the `at`-th bytecode the traced thread executes.

    A Python signal handler runs in the main thread between two bytecodes of whatever
    that thread runs; the daemons' loops run there, so this is where `send` may come.
    Counts the bytecodes when `at` is None.
    """

    def __init__(self, at: int | None, action: Callable[[], Any]) -> None:
        self.at = at
        self.action = action
        self.count = 0
        self.fired = False
        self.outcome: Any = None  # what `action` returned

    def trace(self, frame: FrameType, event: str, _arg: Any) -> Any:
        frame.f_trace_opcodes = True
        frame.f_trace_lines = False
        if event == "opcode":
            if self.count == self.at:
                self.fired = True
                self.outcome = self.action()  # not traced itself: tracing is off in a tracer
            self.count += 1
        return self.trace

    def run(self, call: Callable[[], Any]) -> Any:
        """`call()` traced, in a thread of its own: a handler that blocks fails the test."""
        result: list[Any] = []

        def traced() -> None:
            sys.settrace(self.trace)
            try:
                result.append(call())
            finally:
                sys.settrace(None)

        thread = threading.Thread(target=traced, daemon=True)
        thread.start()
        thread.join(30)
        assert not thread.is_alive(), f"blocked with a signal sent at bytecode {self.at}"
        return result[0]


def at_each_bytecode(
    prepare: Callable[[], Signals],
    call: Callable[[Signals], Any],
    during: Callable[[Signals], Any],
) -> Iterator[tuple[int, Signals, Any, Any]]:
    """For each bytecode of `call`: a fresh `prepare()`d Signals, `during` run just before
    that bytecode; yields (bytecode, signals, what `call` returned, what `during` did)."""
    counter = Interleave(None, lambda: None)
    signals = prepare()
    counter.run(lambda: call(signals))
    assert counter.count > 10, "the trace does not see the code"
    for at in range(counter.count):
        signals = prepare()
        interleave = Interleave(at, lambda s=signals: during(s))  # type: ignore[misc]
        result = interleave.run(lambda s=signals: call(s))  # type: ignore[misc]
        assert interleave.fired, at
        yield at, signals, result, interleave.outcome


@pytest.mark.parametrize(
    ("before", "during", "expected"),
    [
        pytest.param([], HUP, HUP, id="reload-into-nothing"),
        pytest.param([HUP], TERM, TERM, id="stop-after-a-reload"),
        pytest.param([TERM], HUP, TERM, id="reload-after-a-stop"),
        pytest.param([HUP], INT, INT, id="another-stop-after-a-reload"),
    ],
)
def test_a_signal_during_take_is_never_lost(before: list[int], during: int, expected: int) -> None:
    """Sent at any bytecode of `take`: taken now, or waiting with a wake for the next."""

    def prepare() -> Signals:
        signals = Signals()
        for signum in before:
            signals.send(signum)
        return signals

    for at, signals, taken, _ in at_each_bytecode(prepare, Signals.take, lambda s: s.send(during)):
        if taken != expected:
            assert signals.wait(0), f"no wake left for a signal sent at bytecode {at}"
            assert signals.take() == expected, at


class WatchedPoll:
    """The wait's poll object, noting when the wait started blocking."""

    def __init__(self, poll: Any) -> None:
        self.poll_object = poll
        self.blocking = False

    def poll(self, timeout: int | None) -> Any:
        self.blocking = True
        return self.poll_object.poll(timeout)


def watched() -> Signals:
    signals = Signals()
    signals._poll = WatchedPoll(signals._poll)  # type: ignore[assignment]
    return signals


def send_noting_blocking(signals: Signals) -> bool:
    """Send SIGHUP; whether the wait had not started blocking yet."""
    before_blocking = not signals._poll.blocking  # type: ignore[attr-defined]
    signals.send(HUP)
    return before_blocking


def test_a_signal_during_wait_wakes_it() -> None:
    """Sent at any bytecode of `wait` before it blocks: it returns True, woken.

    Sent once it blocked (and timed out): the next `wait` returns at once."""
    for at, signals, woke, before_blocking in at_each_bytecode(
        watched, lambda s: s.wait(0.2), send_noting_blocking
    ):
        if before_blocking:
            assert woke, f"a signal sent at bytecode {at}, before the wait blocked, did not wake it"
        else:
            assert signals.wait(0), f"no wake left for a signal sent at bytecode {at}"
        assert signals.take() == HUP


@pytest.fixture
def restored() -> Iterator[None]:
    saved = {sig: signal.getsignal(sig) for sig in DAEMON_SIGNALS}
    wakeup = signal.set_wakeup_fd(-1)
    signal.set_wakeup_fd(wakeup)
    yield
    signal.set_wakeup_fd(wakeup)
    for sig, handler in saved.items():
        signal.signal(sig, handler)


@pytest.mark.parametrize("sig", DAEMON_SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_install_routes_the_daemon_signals(restored: None, sig: int) -> None:
    signals = Signals()
    signals.install()
    os.kill(os.getpid(), sig)
    assert signals.wait(2)
    assert signals.take() == sig


def test_a_signal_delivered_to_another_thread_wakes_the_main_thread(restored: None) -> None:
    """The kernel may hand a process's signal to any thread (the plugin has gRPC and
    health threads). The interpreter then runs no Python handler until the main thread
    executes bytecode again, which it does not while blocked in `wait`: the wakeup fd
    written by the C-level handler is what wakes it."""
    signals = Signals()
    signals.install()
    release = threading.Event()
    other = threading.Thread(target=release.wait, args=(30,))
    other.start()
    assert other.ident is not None
    sender = threading.Timer(0.1, signal.pthread_kill, (other.ident, signal.SIGTERM))
    start = time.monotonic()
    sender.start()
    try:
        assert signals.wait(10), "the main thread's wait was not woken"
        assert time.monotonic() - start < 5.0  # measured 0.1003-0.1007 s (3 runs)
        assert signals.take() == TERM
    finally:
        release.set()
        other.join()
        sender.join()


def test_a_real_signal_wakes_the_main_thread_blocked_in_wait(restored: None) -> None:
    signals = Signals()
    signals.install()
    sender = threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGHUP))
    start = time.monotonic()
    sender.start()
    assert signals.wait(30)
    assert time.monotonic() - start < 5.0  # measured 0.1004-0.1006 s (3 runs)
    assert signals.take() == HUP
    sender.join()


# -- work off the loop's thread --------------------------------------------------------


def test_work_off_the_thread_returns_its_result_and_raises_its_error() -> None:
    signals = Signals()
    caller = threading.get_ident()
    assert call_taking_signals(signals, threading.get_ident, name="w", grace=0.5) != caller

    def fail() -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        call_taking_signals(signals, fail, name="w", grace=0.5)
    assert signals.take() is None  # the wake-ups are no signal


def test_a_stop_leaves_hung_work_behind_after_the_grace() -> None:
    signals, release = Signals(), threading.Event()
    signals.send(signal.SIGTERM)
    started = time.monotonic()
    with pytest.raises(Stopped) as stopped:
        call_taking_signals(signals, release.wait, name="hung", grace=0.2)
    assert stopped.value.signum == signal.SIGTERM
    assert 0.2 <= time.monotonic() - started < 2.0  # waited the grace, not the work
    assert signals.take() == signal.SIGTERM  # a stop stays pending for good
    release.set()


def test_sighups_during_the_work_make_one_reload_after_it() -> None:
    signals, release, reloads, slow = Signals(), threading.Event(), [], []

    def work() -> str:
        signals.send(signal.SIGHUP)
        signals.send(signal.SIGHUP)
        release.wait(10)
        return "done"

    def on_reload() -> None:
        reloads.append(1)
        release.set()  # the work returns only once the loop has taken a SIGHUP

    result = call_taking_signals(
        signals, work, name="w", grace=0.5, slow_after=0.0, on_slow=slow.append,
        on_reload=on_reload,
    )  # fmt: skip
    assert result == "done" and reloads == [1]
    assert len(slow) <= 1  # reported at most once
    assert signals.take() == signal.SIGHUP  # sent again for the loop
    assert signals.take() is None


def test_slow_work_is_reported_once() -> None:
    signals, slow = Signals(), []
    call_taking_signals(
        signals, lambda: time.sleep(0.5), name="w", grace=0.5, slow_after=0.1,
        on_slow=slow.append,
    )  # fmt: skip
    assert len(slow) == 1 and 0.1 <= slow[0] < 0.5
