"""When to look again: the poll schedule and the backoff for transient faults, in one place."""

from __future__ import annotations

import random

# How far towards the predicted finish the next poll aims. 0.5 (halfway) halves the
# calls' spacing each time; 0.9 lands one poll just short of the finish and the next just
# after it (measured in bench/poll_efficiency.py).
AIM = 0.9


def next_poll_delay(elapsed: float, progress: int, min_interval: float, max_interval: float) -> float:
    """Seconds until the next poll of an upstream task running for `elapsed` seconds.

    With progress to go on, aim just short of the finish it predicts (AIM of the way):
    one long wait, then a short one that lands just after the finish, so calls stay few
    and the lag stays near `min_interval` even when the prediction is a little off.
    Without it, wait about half the time waited so far.
    """
    if 0 < progress < 100:
        remaining = elapsed * (100 - progress) / progress
        delay = remaining * AIM
    else:
        delay = elapsed / 2
    return max(min_interval, min(max_interval, delay))


def backoff_delay(failures: int, base: float, cap: float, retry_after: float | None = None) -> float:
    """Exponential backoff with full jitter after `failures` consecutive transient faults.

    An upstream's Retry-After is honoured (up to `cap`), never undercut.
    """
    ceiling = min(cap, base * 2 ** max(0, failures - 1))
    delay = random.uniform(ceiling / 2, ceiling)
    if retry_after is not None:
        delay = max(delay, min(retry_after, cap))
    return delay
