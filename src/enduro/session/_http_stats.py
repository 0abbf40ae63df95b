"""Counts and latencies of ``ctx.http`` requests, per endpoint: what the store keeps.

A run makes too many requests to keep an event for each, so each endpoint
keeps counters (requests sent, answered well, retried, errors by category)
and a latency histogram. The histogram has fixed logarithmic buckets (each
10% wider than the last, from 0.1 ms to 10 minutes), so it is small, it can
be merged across runs and workers by adding counts, and a percentile read
from it is within 10% of the true one.
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

__all__ = ["HttpStats", "LatencyHistogram", "merge_stats"]

_LOW = 1e-4  # seconds: the first bucket's upper edge
_RATIO = 1.1
_BUCKETS = math.ceil(math.log(600.0 / _LOW, _RATIO)) + 1  # the last one takes the rest


class LatencyHistogram:
    """Counts of latencies in logarithmic buckets; mergeable by adding counts."""

    def __init__(self, counts: dict[int, int] | None = None) -> None:
        self.counts: Counter[int] = Counter(counts or {})

    @staticmethod
    def bucket(seconds: float) -> int:
        """The bucket of a latency: 0 up to 0.1 ms, then 10% wider each."""
        if seconds <= _LOW:
            return 0
        return min(_BUCKETS - 1, math.ceil(math.log(seconds / _LOW, _RATIO)))

    @staticmethod
    def upper(bucket: int) -> float:
        """A bucket's upper edge in seconds."""
        return float(_LOW * _RATIO**bucket)

    def add(self, seconds: float) -> None:
        self.counts[self.bucket(seconds)] += 1

    def merge(self, other: LatencyHistogram) -> None:
        self.counts.update(other.counts)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def percentile(self, q: float) -> float | None:
        """The ``q``-th percentile (0-100) in seconds, as its bucket's upper edge."""
        total = self.total
        if not total:
            return None
        rank = max(1, math.ceil(total * q / 100))
        seen = 0
        for bucket in sorted(self.counts):
            seen += self.counts[bucket]
            if seen >= rank:
                return self.upper(bucket)
        return self.upper(max(self.counts))  # pragma: no cover - rank <= total

    def to_dict(self) -> dict[str, int]:
        return {str(k): v for k, v in sorted(self.counts.items())}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LatencyHistogram:
        return cls({int(k): int(v) for k, v in data.items()})


@dataclass
class _Endpoint:
    requests: int = 0
    ok: int = 0
    retries: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)


class HttpStats:
    """Per-endpoint counters of one run, shared by its workers (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._endpoints: dict[str, _Endpoint] = {}
        self.version = 0  # counts changes, so a saver can skip an unchanged snapshot

    def record(self, endpoint: str, seconds: float, category: str | None, retry: bool) -> None:
        """One request answered (``category`` None) or failed with ``category``."""
        with self._lock:
            stats = self._endpoints.get(endpoint)
            if stats is None:
                stats = self._endpoints[endpoint] = _Endpoint()
            stats.requests += 1
            stats.latency.add(seconds)
            if retry:
                stats.retries += 1
            if category is None:
                stats.ok += 1
            else:
                stats.errors[category] += 1
            self.version += 1

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Every endpoint's figures, as the store saves them."""
        with self._lock:
            return {
                name: {
                    "requests": s.requests,
                    "ok": s.ok,
                    "retries": s.retries,
                    "errors": dict(s.errors),
                    "latency": s.latency.to_dict(),
                }
                for name, s in self._endpoints.items()
            }


def merge_stats(snapshots: list[dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Snapshots of several runs added up per endpoint, with latency percentiles (ms)."""
    merged: dict[str, dict[str, Any]] = {}
    histograms: dict[str, LatencyHistogram] = {}
    for snapshot in snapshots:
        for name, s in snapshot.items():
            into = merged.setdefault(name, {"requests": 0, "ok": 0, "retries": 0, "errors": {}})
            for key in ("requests", "ok", "retries"):
                into[key] += int(s.get(key, 0))
            errors = Counter(into["errors"])
            errors.update({str(k): int(v) for k, v in s.get("errors", {}).items()})
            into["errors"] = dict(sorted(errors.items()))
            histograms.setdefault(name, LatencyHistogram()).merge(
                LatencyHistogram.from_dict(s.get("latency", {}))
            )
    for name, into in merged.items():
        histogram = histograms[name]
        into["latency_ms"] = {
            f"p{q}": round(value * 1000, 1)
            for q in (50, 95, 99)
            if (value := histogram.percentile(q)) is not None
        }
    return dict(sorted(merged.items()))
