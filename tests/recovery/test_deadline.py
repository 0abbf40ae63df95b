"""Tests for the page deadline watch, on a fake clock.

The watch's thread really waits, but reckons every deadline on the clock it is
given: these tests hold the fake clock still while the thread looks at it, then
move it past the deadline by hand.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from enduro.recovery import DeadlineWatch

# How long a test waits for the watch thread before it calls the watch stuck.
# A guard against hanging, not a timing: nothing is asserted about it.
STUCK = 10.0


class Clock:
    """A clock moved by hand, which counts how often the watch thread reads it."""

    def __init__(self, now: float) -> None:
        self.now = now
        self._test_thread = threading.current_thread()
        self._reads = 0
        self._read = threading.Condition()

    def __call__(self) -> float:
        if threading.current_thread() is not self._test_thread:
            with self._read:
                self._reads += 1
                self._read.notify_all()
        return self.now

    def watched(self, times: int) -> bool:
        """Wait until the watch thread has read the clock ``times`` more times."""
        with self._read:
            until = self._reads + times
            return self._read.wait_for(lambda: self._reads >= until, timeout=STUCK)


class Calls:
    """An ``on_expire`` that notes the fake time it was called at."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self.at: list[float] = []
        self.called = threading.Event()

    def __call__(self) -> None:
        self.at.append(self._clock.now)
        self.called.set()


@pytest.fixture
def clock() -> Clock:
    return Clock(now=100.0)


@pytest.fixture
def watch(clock: Clock) -> Iterator[DeadlineWatch]:
    watch = DeadlineWatch(clock=clock)
    watch.start()
    yield watch
    watch.close()


def test_a_deadline_fires_once_the_clock_passes_it_and_not_before(
    clock: Clock, watch: DeadlineWatch
) -> None:
    on_expire = Calls(clock)
    watch.arm(0.05, on_expire)

    clock.now = 100.04
    # Each look at the clock comes after a real wait for what the clock says
    # is left; on its own clock the watch would have fired by the second.
    assert clock.watched(3)
    assert not on_expire.called.is_set()

    clock.now = 100.06
    assert on_expire.called.wait(STUCK)
    assert on_expire.at == [100.06]


def test_a_disarmed_deadline_never_fires(clock: Clock, watch: DeadlineWatch) -> None:
    disarmed, armed = Calls(clock), Calls(clock)
    token = watch.arm(0.05, disarmed)
    watch.arm(0.1, armed)
    watch.disarm(token)

    assert clock.watched(2)
    assert not armed.called.is_set()

    clock.now = 101.0
    # Both are past; the watch calls what is due in the order it was armed,
    # so had the disarmed one still been armed it would have been called first.
    assert armed.called.wait(STUCK)
    assert armed.at == [101.0]
    assert disarmed.at == []
