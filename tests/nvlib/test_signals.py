"""nvlib.signals: handlers only record the signal and wake the loop.

Matrix: `send` and `take` (the last signal wins, `take` clears it and the wake);
`install` routes each daemon signal (SIGHUP, SIGINT, SIGTERM, SIGQUIT) of the process.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest

from nvlib.signals import DAEMON_SIGNALS, Signals


def test_send_and_take() -> None:
    signals = Signals()
    assert signals.take() is None
    signals.send(signal.SIGHUP)
    signals.send(signal.SIGTERM)
    assert signals.wake.is_set()
    assert signals.take() == signal.SIGTERM
    assert not signals.wake.is_set()
    assert signals.take() is None


@pytest.fixture
def restored() -> Iterator[None]:
    saved = {sig: signal.getsignal(sig) for sig in DAEMON_SIGNALS}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


@pytest.mark.parametrize("sig", DAEMON_SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_install_routes_the_daemon_signals(restored: None, sig: int) -> None:
    signals = Signals()
    signals.install()
    os.kill(os.getpid(), sig)
    assert signals.wake.wait(2)
    assert signals.take() == sig
