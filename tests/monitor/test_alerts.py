"""Alert rules: hysteresis, direction, and the run summary built on the samples."""

from __future__ import annotations

import random

from enduro.monitor import AlertRule, summarize_samples

MB = 1024 * 1024


def test_a_value_hovering_at_the_line_alerts_once() -> None:
    rule = AlertRule("mem_percent", 90.0)
    rng = random.Random(3)
    values = [89.0] + [90.0 + rng.uniform(-3.5, 3.5) for _ in range(200)] + [80.0]
    changes = [a for a in (rule.check(v) for v in values) if a is not None]
    assert [a.state for a in changes] == ["open", "cleared"]
    assert changes[0].value >= 90.0 and changes[1].value == 80.0


def test_a_below_rule_opens_low_and_clears_above_its_band() -> None:
    rule = AlertRule("disk_free_mb", 500.0, above=False)
    states = [rule.check(v) for v in (900.0, 480.0, 510.0, 530.0)]
    assert [s.state if s else None for s in states] == [None, "open", None, "cleared"]


def _sample(pages: int, starts: int, pss_mb: float, rss_mb: float) -> dict[str, float]:
    return {
        "pages": pages,
        "browser_starts": starts,
        "browser_pss": pss_mb * MB,
        "runner_rss": rss_mb * MB,
        "mem_percent": 50.0,
    }


def test_the_summary_fits_the_browser_leak_between_restarts() -> None:
    rng = random.Random(7)
    samples = []
    for page in range(0, 2000, 10):
        start = page // 500  # a restart every 500 pages drops the browser back
        pss = 400 + 0.04 * (page % 500) + rng.uniform(-2, 2)  # 40 MB per 1,000 pages
        samples.append(_sample(page, start, pss, 80 + rng.uniform(-1, 1)))
    summary = summarize_samples(samples)
    browser = summary["leak"]["browser_pss"]
    assert browser["leaking"] and abs(browser["slope_mb_per_1000_pages"] - 40) < 2
    assert "40 MB per 1,000 pages" in browser["text"]
    assert summary["leak"]["runner_rss"]["leaking"] is False
    assert summary["series"]["mem_percent"]["max"] == 50.0


def test_a_sustained_rule_ignores_short_swings() -> None:
    rule = AlertRule("cpu_percent", 90.0, sustain=3)
    values = [95.0, 80.0, 95.0, 95.0, 80.0, 95.0, 95.0, 95.0, 95.0, 70.0, 70.0, 95.0]
    values += [70.0, 70.0, 70.0]
    changes = [(i, a.state) for i, a in enumerate(rule.check(v) for v in values) if a]
    assert changes == [(7, "open"), (14, "cleared")]
