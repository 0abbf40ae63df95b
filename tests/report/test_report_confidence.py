"""Statements of confidence: exact Clopper-Pearson upper bounds, in plain words."""

from __future__ import annotations

import math

import pytest

from enduro.report import (
    InjectionStats,
    StressTestResults,
    confidence_statement,
    confidence_statements,
    fault_plural,
    upper_bound,
)


def test_no_failures_in_40_is_the_exact_bound_not_the_rule_of_three() -> None:
    assert upper_bound(0, 40) == pytest.approx(1 - 0.05 ** (1 / 40))
    assert upper_bound(0, 40) == pytest.approx(0.0722, abs=1e-4)
    assert confidence_statement(0, 40, "browser crashes") == (
        "0 unrecovered of 40 browser crashes: at 95% confidence fewer than 7.2% "
        "of browser crashes go unrecovered"
    )


@pytest.mark.parametrize(
    ("failures", "trials", "level", "expected"),
    [
        # Reference values: scipy.stats.beta.ppf(level, failures + 1, trials - failures).
        (1, 100, 0.95, 0.046560),
        (5, 1000, 0.95, 0.010484),
        (50, 100, 0.95, 0.586378),
        (2, 20, 0.99, 0.358335),
    ],
)
def test_upper_bound_matches_the_beta_quantile(
    failures: int, trials: int, level: float, expected: float
) -> None:
    bound = upper_bound(failures, trials, level)

    assert bound == pytest.approx(expected, abs=2e-6)
    # The defining property: at the bound, seeing this few failures has probability 1 - level.
    cdf = sum(
        math.comb(trials, k) * bound**k * (1 - bound) ** (trials - k) for k in range(failures + 1)
    )
    assert cdf == pytest.approx(1 - level, abs=1e-6)


def test_one_failure_in_100() -> None:
    assert confidence_statement(1, 100, "network timeouts") == (
        "1 unrecovered of 100 network timeouts: at 95% confidence fewer than 4.7% "
        "of network timeouts go unrecovered"
    )


def test_nothing_tried_gives_no_statement() -> None:
    assert confidence_statement(0, 0, "browser crashes") == (
        "no browser crashes injected: no statement"
    )


def test_all_failed_gives_no_bound() -> None:
    assert upper_bound(3, 3) == 1.0
    assert "no bound below 100% can be given" in confidence_statement(3, 3, "runner crashes")


def test_small_bounds_keep_two_significant_digits() -> None:
    text = confidence_statement(0, 36_200, "records", level=0.99)

    assert text.startswith("0 unrecovered of 36,200 records: at 99% confidence fewer than 0.013%")


def test_large_trials_do_not_overflow() -> None:
    assert upper_bound(10, 10_000_000) == pytest.approx(1.69622e-6, rel=1e-4)


@pytest.mark.parametrize(
    ("failures", "trials", "level"), [(-1, 5, 0.95), (6, 5, 0.95), (0, -1, 0.95), (0, 5, 1.0)]
)
def test_out_of_range_input_is_refused(failures: int, trials: int, level: float) -> None:
    with pytest.raises(ValueError):
        confidence_statement(failures, trials, "x", level)


def test_statements_are_derived_per_delivered_fault_type() -> None:
    results = StressTestResults(
        scenario="x",
        injected_per_type={
            "runner_crash": InjectionStats(planned=3, delivered=3),
            "browser_crash": InjectionStats(planned=40, delivered=40, unrecovered=0),
            "auth_loss": InjectionStats(planned=2, delivered=0),
        },
    )

    assert confidence_statements(results) == [
        confidence_statement(0, 40, "browser crashes"),
        confidence_statement(0, 3, "runner crashes"),
    ]


def test_the_testers_own_statements_win() -> None:
    results = StressTestResults(
        scenario="x",
        confidence=["said by the tester"],
        injected_per_type={"browser_crash": InjectionStats(delivered=4)},
    )

    assert confidence_statements(results) == ["said by the tester"]


def test_fault_plurals() -> None:
    assert fault_plural("browser_crash") == "browser crashes"
    assert fault_plural("cookie_wipe") == "cookie wipe faults"
