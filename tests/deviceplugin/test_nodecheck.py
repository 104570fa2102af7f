"""The node check off the control loop's thread (deviceplugin/nodecheck.py).

Matrix: a check's reason and its exception reach the poller; a hung check is reported
once, never waited for, and no second check starts beside it; one returning late is
logged and its answer used; a check begun before a restart has its answer dropped.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from deviceplugin.nodecheck import NodeCheck

INTERVAL = 0.05
HUNG = "NVML node check has not returned"


class Check:
    """A check whose answers a test scripts; it blocks while `gate` is closed."""

    def __init__(self, answer: Callable[[], str | None] = lambda: None) -> None:
        self.answer = answer
        self.calls = 0
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self) -> str | None:
        self.calls += 1
        self.gate.wait()
        return self.answer()


def poll_until(check: NodeCheck, done: Callable[[str | None], bool], timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    while True:
        started = time.monotonic()
        reason = check.poll(INTERVAL)
        # a wait would take INTERVAL; measured 0.001-0.38 ms a poll (108 polls)
        assert time.monotonic() - started < 0.05, "poll waited"
        if done(reason):
            assert reason is not None
            return reason
        assert time.monotonic() < deadline, "no answer"
        time.sleep(0.005)


def test_a_reason_reaches_the_poller() -> None:
    check = Check(lambda: "changed")
    assert poll_until(NodeCheck(check), lambda r: r is not None) == "changed"


def test_an_exception_reaches_the_poller() -> None:
    class Replaced(Exception):
        pass

    def fail() -> str | None:
        raise Replaced

    node_check = NodeCheck(Check(fail))
    with pytest.raises(Replaced):
        poll_until(node_check, lambda _: False)


def test_a_hung_check_is_reported_once_and_runs_alone(caplog: pytest.LogCaptureFixture) -> None:
    check = Check(lambda: "changed")
    check.gate.clear()
    node_check = NodeCheck(check)
    deadline = time.monotonic() + 20
    while HUNG not in caplog.text:
        assert node_check.poll(INTERVAL) is None
        assert time.monotonic() < deadline
        time.sleep(0.005)
    # Four more intervals the hung check let pass, each counted as a round: no second
    # report, no check beside the hung one.
    target, deadline = node_check.rounds + 4, time.monotonic() + 20
    while node_check.rounds < target:
        assert node_check.poll(INTERVAL) is None
        assert time.monotonic() < deadline, f"rounds stuck at {node_check.rounds}"
        time.sleep(0.005)
    assert caplog.text.count(HUNG) == 1 and check.calls == 1
    check.gate.set()  # the driver call returns at last
    assert poll_until(node_check, lambda r: r is not None) == "changed"
    assert "NVML node check returned after" in caplog.text


def test_a_check_begun_before_a_restart_is_dropped() -> None:
    answers = iter(["stale", "fresh"])
    check = Check(lambda: next(answers))
    check.gate.clear()
    node_check = NodeCheck(check)
    deadline = time.monotonic() + 20
    while check.calls == 0:
        assert node_check.poll(INTERVAL) is None and time.monotonic() < deadline
        time.sleep(0.005)
    node_check.restarted()
    check.gate.set()
    assert poll_until(node_check, lambda r: r is not None) == "fresh"


def test_rounds_go_on_while_a_check_hangs() -> None:
    """The heartbeat follows `rounds`: a finished check counts, and so does each interval
    a hung one lets pass, so a serving plugin is not restarted for a hung driver call."""
    check = Check()
    node = NodeCheck(check)
    check.gate.clear()  # the first check hangs
    deadline = time.monotonic() + 20
    while node.rounds < 3:
        node.poll(INTERVAL)
        assert time.monotonic() < deadline, f"rounds stuck at {node.rounds}"
        time.sleep(0.005)
    assert check.calls == 1  # still the one hung check: no second beside it
    rounds = node.rounds
    check.gate.set()
    while node.rounds == rounds:  # its late return counts once more
        node.poll(INTERVAL)
        assert time.monotonic() < deadline, "the late return was not counted"
        time.sleep(0.005)
