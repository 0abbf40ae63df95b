"""Plain statements of confidence from small samples: "0 of 40 ... fewer than 7.2%".

A scenario that injects 40 browser crashes and recovers from all of them has
not shown that crashes are always recovered, only that the failure rate is
probably small. The statement gives the exact one-sided Clopper-Pearson upper
bound of that rate, computed with ``math`` alone (no SciPy).
"""

from __future__ import annotations

import math

from enduro.report._results import StressTestResults

__all__ = ["confidence_statement", "confidence_statements", "fault_plural", "upper_bound"]

# How a fault type reads in a sentence, as a plural noun.
_PLURALS: dict[str, str] = {
    "browser_crash": "browser crashes",
    "network_timeout": "network timeouts",
    "memory_pressure": "memory-pressure episodes",
    "element_not_found": "missing-element faults",
    "javascript_error": "JavaScript errors",
    "rate_limiting": "rate-limit bursts",
    "auth_loss": "session expiries",
    "server_error": "server errors",
    "runner_crash": "runner crashes",
    "database_restart": "database restarts",
}


def fault_plural(fault_type: str) -> str:
    """The plural noun for a fault type, e.g. ``browser_crash`` -> ``browser crashes``."""
    return _PLURALS.get(fault_type, f"{fault_type.replace('_', ' ')} faults")


def upper_bound(failures: int, trials: int, level: float = 0.95) -> float:
    """The exact one-sided Clopper-Pearson upper confidence bound of a failure rate.

    The bound is the rate ``p`` at which seeing ``failures`` or fewer in
    ``trials`` has probability ``1 - level``. It is found by bisection on the
    binomial CDF, which falls as ``p`` grows; for no failures it is
    ``1 - (1 - level) ** (1 / trials)``.

    Raises:
        ValueError: counts out of range, or ``level`` not strictly between 0 and 1.
    """
    _check(failures, trials, level)
    if failures >= trials:
        return 1.0
    alpha = 1.0 - level
    if failures == 0:
        return 1.0 - math.pow(alpha, 1.0 / trials)
    low, high = 0.0, 1.0
    for _ in range(100):
        mid = (low + high) / 2
        if _binomial_cdf(failures, trials, mid) > alpha:
            low = mid
        else:
            high = mid
        if high - low < 1e-12:
            break
    return high


def confidence_statement(failures: int, trials: int, what: str, level: float = 0.95) -> str:
    """One plain sentence bounding the rate of unrecovered ``what`` at ``level`` confidence.

    The bound is the exact Clopper-Pearson one, not the "rule of three" (3/n),
    which overstates it slightly: 0 of 40 gives 7.2%, where 3/40 says 7.5%.

    ``confidence_statement(0, 40, "browser crashes")`` reads "0 unrecovered of
    40 browser crashes: at 95% confidence fewer than 7.2% of browser crashes go
    unrecovered".

    Args:
        failures: How many went unrecovered.
        trials: How many were tried (delivered faults).
        what: A plural noun, e.g. ``"browser crashes"``.
        level: Confidence level, e.g. 0.95.

    Raises:
        ValueError: counts out of range, or ``level`` not strictly between 0 and 1.
    """
    _check(failures, trials, level)
    if trials == 0:
        return f"no {what} injected: no statement"
    head = f"{failures:,} unrecovered of {trials:,} {what}"
    confidence = f"{_format_percent(level * 100)}% confidence"
    if failures == trials:
        return f"{head}: at {confidence} no bound below 100% can be given"
    bound = _format_percent(upper_bound(failures, trials, level) * 100)
    return f"{head}: at {confidence} fewer than {bound}% of {what} go unrecovered"


def confidence_statements(results: StressTestResults, level: float = 0.95) -> list[str]:
    """The scenario's own statements, or one per fault type that was delivered.

    The tester may write its statements into ``results.confidence``; when it
    did not, they are derived from the unrecovered and delivered counts.
    """
    if results.confidence:
        return list(results.confidence)
    return [
        confidence_statement(stats.unrecovered, stats.delivered, fault_plural(kind), level)
        for kind, stats in sorted(results.injected_per_type.items())
        if stats.delivered > 0
    ]


def _check(failures: int, trials: int, level: float) -> None:
    if trials < 0 or not 0 <= failures <= trials:
        raise ValueError(f"need 0 <= failures <= trials, got {failures} of {trials}")
    if not 0 < level < 1:
        raise ValueError(f"confidence level must be between 0 and 1, got {level}")


def _binomial_cdf(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p), summed in log space so large ``n`` cannot overflow."""
    if p <= 0.0:
        return 1.0
    if p >= 1.0:
        return 1.0 if k >= n else 0.0
    log_p, log_q = math.log(p), math.log1p(-p)
    log_n = math.lgamma(n + 1)
    return math.fsum(
        math.exp(log_n - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * log_p + (n - i) * log_q)
        for i in range(k + 1)
    )


def _format_percent(value: float) -> str:
    """7.22 -> "7.2", 0.5 -> "0.50", 0.0083 -> "0.0083", 95.0 -> "95"."""
    if value <= 0:
        return "0"
    if value >= 1:
        text = f"{value:.1f}"
    elif value >= 0.1:
        text = f"{value:.2f}"
    else:  # two significant digits, never in exponent notation
        text = f"{value:.{1 - math.floor(math.log10(value))}f}"
    return text[:-2] if text.endswith(".0") else text
