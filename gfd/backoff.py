"""How long GFD waits before publishing again after the API server failed: pure functions.

The delay doubles with each failed attempt from `base_s` up to `cap_s`, and a random
share of up to `jitter` is taken off it so that a fleet whose API server comes back does
not retry in step. A `Retry-After` the server sent is a floor, honoured up to the same
cap: a server asking for an hour cannot stop labelling for an hour. The daemon keeps
the state (the attempt number, the deadline); these functions only compute.

The daemon imports this on every start, file mode and `--oneshot` included: the
header parser's imports (email.utils, ~12 ms) wait until a header is parsed.
"""

from __future__ import annotations

import math

from nvlib.record import Plain

__all__ = ["DEFAULT_POLICY", "BackoffPolicy", "backoff_delay", "parse_retry_after"]


class BackoffPolicy(Plain, frozen=True):
    base_s: float = 1.0
    factor: float = 2.0
    # With 60 s a fleet in an outage asks no more often than a healthy one at the
    # default --sleep-interval, and a recovered server is used within a minute.
    cap_s: float = 60.0
    jitter: float = 0.5  # the share of the delay that is random: [d * (1 - jitter), d]


DEFAULT_POLICY = BackoffPolicy()


def backoff_delay(
    attempt: int,
    retry_after_s: float | None,
    jitter_sample: float,
    policy: BackoffPolicy = DEFAULT_POLICY,
) -> float:
    """Seconds to wait after failed attempt number `attempt` (0 for the first failure).

    `jitter_sample` is a draw from [0, 1) (random.random in the daemon, fixed in tests);
    `retry_after_s` the server's `Retry-After`, or None.
    """
    exponent = max(attempt, 0)
    # Compared in logarithms: factor ** attempt overflows a float long before an
    # outage could reach that attempt, and the cap applies anyway.
    if policy.factor > 1 and exponent * math.log(policy.factor) > math.log(
        policy.cap_s / policy.base_s
    ):
        nominal = policy.cap_s
    else:
        nominal = min(policy.cap_s, policy.base_s * policy.factor**exponent)
    sample = min(max(jitter_sample, 0.0), 1.0)
    delay = nominal * (1.0 - policy.jitter * sample)
    if retry_after_s is not None:
        delay = max(delay, min(retry_after_s, policy.cap_s))
    return delay


def parse_retry_after(value: str | None, now_epoch_s: float) -> float | None:
    """A `Retry-After` header in seconds from now: delay-seconds or an HTTP-date.

    None when absent or unreadable (the backoff alone then decides); never negative.
    """
    if value is None:
        return None
    import datetime
    import email.utils

    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000": still UTC, as every HTTP-date is
        when = when.replace(tzinfo=datetime.UTC)
    return max(when.timestamp() - now_epoch_s, 0.0)
