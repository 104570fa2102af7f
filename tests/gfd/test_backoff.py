"""gfd.backoff: the delay before publishing again, and the Retry-After header, as tables.

Matrix: the delay doubles from the base to the cap; the jitter takes up to half of it
off, never adds; a Retry-After is a floor, itself capped; attempts far past the cap
neither overflow nor exceed it; a policy of its own is obeyed. Retry-After in seconds
and as an HTTP-date (past, future, "-0000"), and what is not one.
"""

from __future__ import annotations

import pytest

from gfd.backoff import DEFAULT_POLICY, BackoffPolicy, backoff_delay, parse_retry_after

FAST = BackoffPolicy(base_s=0.1, factor=3.0, cap_s=2.0, jitter=0.0)


@pytest.mark.parametrize(
    ("attempt", "retry_after", "sample", "policy", "delay"),
    [
        # capped exponential: 1, 2, 4, ... 32, then 60 for good
        pytest.param(0, None, 0.0, DEFAULT_POLICY, 1.0, id="first"),
        pytest.param(1, None, 0.0, DEFAULT_POLICY, 2.0, id="second"),
        pytest.param(5, None, 0.0, DEFAULT_POLICY, 32.0, id="sixth"),
        pytest.param(6, None, 0.0, DEFAULT_POLICY, 60.0, id="capped"),
        pytest.param(10**6, None, 0.0, DEFAULT_POLICY, 60.0, id="no-overflow"),
        pytest.param(-3, None, 0.0, DEFAULT_POLICY, 1.0, id="negative-is-first"),
        # jitter: up to half taken off, so a fleet spreads out; never above the cap
        pytest.param(0, None, 0.5, DEFAULT_POLICY, 0.75, id="jitter-half"),
        pytest.param(0, None, 0.999999, DEFAULT_POLICY, 0.5000005, id="jitter-most"),
        pytest.param(20, None, 1.0, DEFAULT_POLICY, 30.0, id="jitter-at-cap"),
        pytest.param(2, None, 7.0, DEFAULT_POLICY, 2.0, id="sample-clamped"),
        # Retry-After: a floor over the backoff, itself no more than the cap
        pytest.param(0, 20.0, 0.0, DEFAULT_POLICY, 20.0, id="retry-after-floor"),
        pytest.param(6, 5.0, 1.0, DEFAULT_POLICY, 30.0, id="backoff-above-retry-after"),
        pytest.param(0, 3600.0, 0.0, DEFAULT_POLICY, 60.0, id="retry-after-capped"),
        pytest.param(0, 0.0, 0.0, DEFAULT_POLICY, 1.0, id="retry-after-zero"),
        # a policy of its own
        pytest.param(0, None, 0.0, FAST, 0.1, id="fast-first"),
        pytest.param(2, None, 0.9, FAST, 0.9, id="fast-no-jitter"),
        pytest.param(3, None, 0.0, FAST, 2.0, id="fast-capped"),
    ],
)
def test_backoff_delay(
    attempt: int, retry_after: float | None, sample: float, policy: BackoffPolicy, delay: float
) -> None:
    assert backoff_delay(attempt, retry_after, sample, policy) == pytest.approx(delay)


def test_delays_of_a_long_outage() -> None:
    """The sequence a 10-minute outage sees with the middle jitter draw."""
    delays = [backoff_delay(n, None, 0.5) for n in range(9)]
    assert delays == [0.75, 1.5, 3.0, 6.0, 12.0, 24.0, 45.0, 45.0, 45.0]


NOW = 1_445_412_480.0  # Wed, 21 Oct 2015 07:28:00 GMT


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        pytest.param(None, None, id="absent"),
        pytest.param("7", 7.0, id="seconds"),
        pytest.param(" 0 ", 0.0, id="zero-padded"),
        pytest.param("Wed, 21 Oct 2015 07:28:30 GMT", 30.0, id="http-date"),
        pytest.param("Wed, 21 Oct 2015 07:28:30 -0000", 30.0, id="http-date-minus-zero"),
        pytest.param("Wed, 21 Oct 2015 07:27:00 GMT", 0.0, id="http-date-past"),
        pytest.param("-5", None, id="negative"),
        pytest.param("1.5", None, id="fraction"),
        pytest.param("soon", None, id="words"),
        pytest.param("", None, id="empty"),
    ],
)
def test_parse_retry_after(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header, NOW) == seconds
