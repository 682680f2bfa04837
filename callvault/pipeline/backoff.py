"""Retry delays: exponential with jitter, capped."""

from __future__ import annotations

import random


def backoff_delay(attempt: int, *, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Delay before attempt ``attempt + 1``: ``base * 2**(attempt-1)`` capped at ``cap``, then scaled by a
    random factor in [0.5, 1] so workers that failed together do not retry together."""
    exponent = max(attempt - 1, 0)
    raw = cap if exponent >= 32 else min(cap, base * (2**exponent))
    return raw * (rng or random).uniform(0.5, 1.0)
