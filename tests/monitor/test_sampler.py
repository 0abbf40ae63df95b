"""The monitor's own samples: primed CPU, a sample when the first browser is up, one at close.

The "browser" is a real process in a process group of its own (as a browser
is), so its PSS is read from /proc like a browser's; the CPU counters are
faked where a test needs an exact figure.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections import namedtuple
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from enduro.monitor import AlertRule, Monitor, ResourceSample
from enduro.monitor._cpu import MIN_WINDOW_SECONDS, CpuWindow, busy_percent

Times = namedtuple("Times", "user nice system idle iowait irq softirq steal guest guest_nice")


def _times(busy: float, idle: float, guest: float = 0.0) -> Times:
    return Times(busy, 0.0, 0.0, idle, 0.0, 0.0, 0.0, 0.0, guest, 0.0)


class _Sink:
    """Collects samples; ``wait(n)`` returns once ``n`` have come (or the timeout passed)."""

    def __init__(self) -> None:
        self.samples: list[ResourceSample] = []
        self._changed = threading.Condition()

    def __call__(self, sample: ResourceSample) -> None:
        with self._changed:
            self.samples.append(sample)
            self._changed.notify_all()

    def wait(self, n: int, timeout: float = 10.0) -> list[ResourceSample]:
        with self._changed:
            self._changed.wait_for(lambda: len(self.samples) >= n, timeout)
            return list(self.samples)


@pytest.fixture
def browser() -> Iterator[int]:
    """A process standing in for a browser: its own process group, some touched memory."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; b = bytearray(32 << 20); b[::4096] = b'1' * (len(b) // 4096);"
            " print('ready', flush=True); sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    yield proc.pid
    assert proc.stdin is not None
    proc.stdin.close()
    proc.wait(timeout=30)


def _monitor(tmp_path: Path, groups: list[int], starts: list[int], **kw: Any) -> Monitor:
    return Monitor(
        interval=3600,  # no timed sample in these tests: every sample is a start or an end one
        browser_groups=lambda: groups,
        browser_starts=lambda: starts[0],
        disk_path=tmp_path,
        **kw,
    )


def test_a_run_shorter_than_the_interval_gets_a_start_and_an_end_sample(
    tmp_path: Path, browser: int
) -> None:
    groups: list[int] = []
    starts = [0]
    sink = _Sink()
    monitor = _monitor(tmp_path, groups, starts, sink=sink, pages=lambda: len(sink.samples) * 7)
    monitor.start()
    groups.append(browser)
    starts[0] = 1
    first = sink.wait(1)
    monitor.close()
    samples = sink.wait(2)

    assert len(samples) == 2, "one sample when the browser came up, one at close"
    start, end = samples
    assert start.browser_count == 1 and start.browser_pss > 16 << 20  # taken once it was up
    assert start.browser_starts == 1 and start.pages == 0
    assert end.browser_count == 1 and end.browser_pss > 16 << 20
    assert end.pages == 7 and end.ts >= start.ts
    assert first == [start]
    monitor.close()  # safe twice: no third sample
    assert len(sink.samples) == 2


def test_the_first_sample_measures_cpu_since_start_not_an_unprimed_zero(
    tmp_path: Path, browser: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The kernel counts CPU time in 10 ms ticks: two readings a moment apart are
    # equal, which is why an unprimed psutil.cpu_percent() says 0.0.
    def ticking() -> Times:
        ticks = int(time.monotonic() * 100)
        return _times(busy=0.3 * ticks / 100, idle=0.7 * ticks / 100)

    monkeypatch.setattr(psutil, "cpu_times", ticking)
    starts = [0]
    sink = _Sink()
    monitor = _monitor(tmp_path, [browser], starts, sink=sink)
    monitor.start()
    starts[0] = 1
    sink.wait(1)
    monitor.close()
    samples = sink.wait(2)

    assert [s.cpu_percent for s in samples] == [30.0, 30.0]


def test_the_end_sample_raises_no_alert(tmp_path: Path, browser: int) -> None:
    sink = _Sink()
    alerts: list[Any] = []
    rule = AlertRule("browser_pss_mb", 1.0)  # any browser is over it
    monitor = _monitor(tmp_path, [browser], [0], sink=sink, rules=[rule])
    monitor.subscribe(alerts.append)
    monitor.start()
    monitor.close()  # the browser never said it was up: the end sample is the only one

    (end,) = sink.wait(1)
    assert end.browser_pss > 16 << 20
    assert alerts == [] and not rule.active  # nothing is left to act on it


def test_closers_on_two_threads_get_one_end_sample_and_both_wait_for_it(
    tmp_path: Path, browser: int
) -> None:
    in_sink, release = threading.Event(), threading.Event()
    sink = _Sink()

    def slow_sink(sample: ResourceSample) -> None:
        in_sink.set()
        release.wait(10)
        sink(sample)

    monitor = _monitor(tmp_path, [browser], [0], sink=slow_sink)
    monitor.start()
    seen: list[int] = []

    def close() -> None:
        monitor.close()
        seen.append(len(sink.samples))  # what a worker sees before closing its browser

    first, second = (threading.Thread(target=close) for _ in range(2))
    first.start()
    assert in_sink.wait(10)  # the first closer is storing the end sample
    second.start()
    second.join(timeout=0.3)
    waited = second.is_alive()
    release.set()
    first.join(10)
    second.join(10)
    assert waited, "the second closer returned before the end sample was stored"
    assert seen == [1, 1]


def test_a_monitor_never_started_takes_no_sample_and_starts_once(tmp_path: Path) -> None:
    sink = _Sink()
    monitor = _monitor(tmp_path, [], [0], sink=sink)
    monitor.close()
    assert sink.samples == []
    with pytest.raises(RuntimeError):
        monitor.start()


def test_cpu_window_is_primed_when_made() -> None:
    readings = iter([_times(10, 10), _times(13, 17), _times(14, 26)])
    clock = iter([0.0, 5.0, 10.0])
    window = CpuWindow(lambda: next(readings), lambda: next(clock))
    assert window.percent() == 30.0  # 3 busy of 10 since the window opened
    assert window.percent() == 10.0  # 1 of 10 since the last reading


def test_cpu_window_measures_a_reading_right_after_another_from_the_one_before() -> None:
    readings = iter([_times(0, 0), _times(5, 5), _times(5, 7)])
    clock = iter([0.0, 5.0, 5.0 + MIN_WINDOW_SECONDS / 10])
    window = CpuWindow(lambda: next(readings), lambda: next(clock))
    assert window.percent() == 50.0
    # since the last reading alone: 0 busy of 2; since the one before: 5 of 12
    assert window.percent() == 41.7


def test_busy_percent_follows_psutil_guest_is_in_user_and_iowait_is_not_busy() -> None:
    before = Times(0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    after = Times(4, 0, 1, 3, 2, 0, 0, 0, 4, 0)  # user 4 of which guest 4, iowait 2
    assert busy_percent(before, after) == 50.0  # busy 5 of 10 (guest not counted twice)
    assert busy_percent(before, before) == 0.0
