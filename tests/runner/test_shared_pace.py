"""Rate limiters of several runners sharing one pace through a real store
(SQLite here; the store conformance suite runs the same statements on
PostgreSQL). One fake clock drives both the limiters and the store, and
waiting moves it: nothing here really waits."""

from __future__ import annotations

from pathlib import Path

import pytest

from enduro.recovery import EndpointLimiters, RateLimiter
from enduro.runner._pace import HTTP_PACE, StorePace
from enduro.store import Store

JOB = "matches"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.waits: list[float] = []

    def __call__(self) -> float:
        return self.now

    def wait(self, seconds: float) -> bool:
        self.waits.append(round(seconds, 6))
        self.now += seconds
        return False


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> Store:
    return Store.open(tmp_path / "s.db", clock=clock)


def _runner(store: Store, clock: Clock, rate: float | None = None, **kw: float) -> RateLimiter:
    return RateLimiter(rate, clock=clock, shared=StorePace(store, JOB), **kw)  # type: ignore[arg-type]


def _acquire(limiter: RateLimiter, clock: Clock) -> float:
    """Acquire once; returns how long it waited."""
    before = len(clock.waits)
    assert limiter.acquire(wait=clock.wait)
    return sum(clock.waits[before:])


def test_two_runners_take_turns_at_the_one_shared_rate(store: Store, clock: Clock) -> None:
    store.set_pace(JOB, "pages", interval=1.0)
    a, b = _runner(store, clock), _runner(store, clock)

    waits = [_acquire(a, clock), _acquire(b, clock), _acquire(a, clock), _acquire(b, clock)]

    # four sends, one second apart: together at the rate, not twice it
    assert waits == [0.0, 1.0, 1.0, 1.0]
    assert a.rate == b.rate == 1.0


def test_a_retry_after_seen_by_one_runner_holds_the_other(store: Store, clock: Clock) -> None:
    a, b = _runner(store, clock), _runner(store, clock)
    _acquire(a, clock)

    a.throttled(retry_after=30.0)

    assert _acquire(b, clock) == pytest.approx(30.0)


def test_a_cool_down_of_one_runner_holds_the_other(store: Store, clock: Clock) -> None:
    a, b = _runner(store, clock), _runner(store, clock)

    a.hold(12.0)

    assert _acquire(b, clock) == pytest.approx(12.0)


def test_a_cut_by_one_runner_slows_every_runner_and_two_cuts_for_one_burst_cut_once(
    store: Store, clock: Clock
) -> None:
    store.set_pace(JOB, "pages", interval=0.25)  # 4 pages/s
    a, b, c = (_runner(store, clock, min_rate=0.1) for _ in range(3))
    for limiter in (a, b, c):
        _acquire(limiter, clock)

    a.throttled()  # a and b each cut 4 -> 2 pages/s for the same burst
    b.throttled()

    assert c.rate == 4.0
    _acquire(c, clock)
    assert c.rate == 2.0  # the runner that saw no 429 slows down too
    assert store.take_turn(JOB, "pages")[1] == 0.5  # cut once, not to 1 page/s


def test_a_ceiling_holds_even_where_the_shared_pace_says_unlimited(
    store: Store, clock: Clock
) -> None:
    a = _runner(store, clock, max_rate=2.0)
    b = _runner(store, clock, max_rate=2.0)

    waits = [_acquire(x, clock) for x in (a, b, a, b)]

    assert waits == [0.0, 0.5, 0.5, 0.5]  # 2 pages/s together
    assert a.rate == 2.0


def test_raises_never_pass_the_ceiling(store: Store, clock: Clock) -> None:
    limiter = _runner(store, clock, 1.0, max_rate=1.2, raise_after=1)
    _acquire(limiter, clock)

    limiter.succeeded()

    assert limiter.rate == 1.2
    assert store.take_turn(JOB, "pages")[1] == pytest.approx(1 / 1.2)


def test_a_hold_that_began_while_a_runner_waited_for_its_turn_holds_that_turn(
    store: Store, clock: Clock
) -> None:
    store.set_pace(JOB, "pages", interval=1.0)
    a, b = _runner(store, clock), _runner(store, clock)
    _acquire(a, clock)

    def wait_then_429(seconds: float) -> bool:
        # b waits for its turn; meanwhile a is told Retry-After: 20
        clock.wait(seconds)
        if len(clock.waits) == 1:
            a.throttled(retry_after=20.0)
        return False

    assert b.acquire(wait=wait_then_429)

    assert clock.waits == [1.0, 20.0]


def _endpoints(store: Store, clock: Clock, **learned: float) -> EndpointLimiters:
    return EndpointLimiters(
        clock=clock,
        learned=learned,
        shared=lambda name: StorePace(store, JOB, f"{HTTP_PACE}{name}"),
    )


def test_an_endpoint_s_retry_after_holds_that_endpoint_in_every_runner_and_no_other(
    store: Store, clock: Clock
) -> None:
    a, b = _endpoints(store, clock), _endpoints(store, clock)
    _acquire(a.get("api/matches"), clock)

    a.get("api/matches").throttled(retry_after=20.0)

    assert _acquire(b.get("api/matches"), clock) == pytest.approx(20.0)
    assert _acquire(b.get("api/match/{id}"), clock) == 0.0  # another endpoint: not held
    assert store.hold_left(JOB, "pages") == 0.0  # nor the pages


def test_endpoints_without_a_shared_pace_keep_their_holds_to_themselves(
    store: Store, clock: Clock
) -> None:
    a, b = EndpointLimiters(clock=clock), EndpointLimiters(clock=clock)
    _acquire(a.get("api/matches"), clock)

    a.get("api/matches").throttled(retry_after=20.0)

    assert _acquire(b.get("api/matches"), clock) == 0.0


def test_a_learned_endpoint_rate_paces_every_runner_but_never_undoes_a_cut(
    store: Store, clock: Clock
) -> None:
    a = _endpoints(store, clock, **{"api/matches": 2.0})
    b = _endpoints(store, clock)

    waits = [_acquire(x.get("api/matches"), clock) for x in (a, b, a, b)]

    assert waits == [0.0, 0.5, 0.5, 0.5]  # 2 requests/s together
    store.set_pace(JOB, f"{HTTP_PACE}api/matches", interval=1.0)  # cut to 1/s since
    _endpoints(store, clock, **{"api/matches": 2.0}).get("api/matches")
    assert store.take_turn(JOB, f"{HTTP_PACE}api/matches")[1] == 1.0


def test_a_runner_meeting_another_s_hold_tells_what_it_had_on_the_way_once(
    store: Store, clock: Clock
) -> None:
    told: list[tuple[str, float, int, list[float]]] = []
    a = _endpoints(store, clock)
    b = EndpointLimiters(
        clock=clock,
        shared=lambda name: StorePace(store, JOB, f"{HTTP_PACE}{name}"),
        on_shared_hold=lambda *seen: told.append(seen),
    )
    for _ in range(2):  # two of b's requests passed before the hold, not back yet
        assert b.get("api/matches").acquire(wait=clock.wait, track=True)
    a.get("api/matches").hold(10.0)
    assert told == []  # b has not met it yet

    assert b.get("api/matches").acquire(wait=clock.wait, track=True)
    assert b.get("api/matches").acquire(wait=clock.wait, track=True)  # the same hold: once

    # its two requests still out, and its two turns a moment ago (the clock stood still)
    assert told == [("api/matches", pytest.approx(10.0), 2, [0.0, 0.0])]
    a.get("api/matches").hold(30.0)  # a new one, after the first ended: met again
    b.get("api/matches").acquire(wait=clock.wait)
    assert len(told) == 2 and told[1][2] == 4 and told[1][3] == [0.0]  # the one just before


def test_an_unlimited_free_pace_is_read_not_written_until_a_rate_is_set(
    store: Store, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    turns: list[str] = []
    take_turn = store.take_turn

    def counted(job: str, key: str, min_interval: float = 0.0) -> tuple[float, float]:
        turns.append(key)
        return take_turn(job, key, min_interval)

    monkeypatch.setattr(store, "take_turn", counted)
    a, b = _runner(store, clock), _runner(store, clock)

    waits = [_acquire(x, clock) for x in (a, b, a, b)]
    # one turn makes the pace's row; after it, nothing to reserve: no write per request
    assert waits == [0.0] * 4 and turns == ["pages"]

    store.set_pace(JOB, "pages", interval=1.0)
    waits = [_acquire(x, clock) for x in (a, b, a)]
    assert waits == [0.0, 1.0, 1.0] and turns == ["pages"] * 4  # turns again, spaced
