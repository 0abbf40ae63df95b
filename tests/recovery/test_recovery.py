"""Tests for the backoff policy (classification lives in test_classify.py)."""

from __future__ import annotations

import random

import pytest

from enduro.recovery import Backoff


def test_backoff_grows_exponentially() -> None:
    backoff = Backoff(base=0.5, cap=1000.0, jitter=0.0)

    assert [backoff.delay(n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0]


def test_backoff_is_capped() -> None:
    backoff = Backoff(base=1.0, cap=10.0, jitter=0.0)

    assert [backoff.delay(n) for n in range(1, 7)] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]


@pytest.mark.parametrize("attempt", [100, 1100, 10_000])
def test_backoff_is_capped_for_any_attempt(attempt: int) -> None:
    backoff = Backoff(base=1.0, cap=60.0, jitter=0.25, rng=random.Random(1))

    assert 60.0 * 0.875 <= backoff.delay(attempt) <= 60.0 * 1.125


def test_backoff_jitter_stays_within_bounds() -> None:
    backoff = Backoff(base=2.0, cap=30.0, jitter=0.4, rng=random.Random(7))

    for attempt in range(1, 9):
        raw = min(30.0, 2.0 * 2 ** (attempt - 1))
        delays = [backoff.delay(attempt) for _ in range(300)]
        assert all(raw * 0.8 <= d <= raw * 1.2 for d in delays), attempt
        # Jitter really spreads the delays over most of its range.
        assert max(delays) - min(delays) > raw * 0.3


def test_backoff_jitter_never_goes_negative() -> None:
    backoff = Backoff(base=1.0, cap=60.0, jitter=5.0, rng=random.Random(3))

    assert min(backoff.delay(1) for _ in range(200)) == 0.0


def test_backoff_replays_with_a_seeded_random() -> None:
    one = Backoff(rng=random.Random(42))
    two = Backoff(rng=random.Random(42))
    other = Backoff(rng=random.Random(43))

    first = [one.delay(n) for n in range(1, 20)]

    assert first == [two.delay(n) for n in range(1, 20)]
    assert first != [other.delay(n) for n in range(1, 20)]
