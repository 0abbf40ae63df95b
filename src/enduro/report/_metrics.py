"""``/metrics``: a store's jobs in the Prometheus text format, through
``prometheus_client``.

Counted from the store by :class:`~enduro.report.LiveView` (so every runner of
a job is in it, on any host, and a runner's restart loses nothing), labelled by
``job`` and ``runner`` (the run's host id). The counters add up to what
``enduro status --json`` says: errors by category, browser restarts; the page
gauges and records are the same reads.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from enduro.report._live import LATENCY_BUCKETS, LiveView

__all__ = ["CONTENT_TYPE", "render_metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""What ``/metrics`` answers as (the Prometheus text format)."""


class _StoreCollector(Collector):
    """Collects a live view's counts at each scrape."""

    def __init__(self, view: LiveView) -> None:
        self._view = view

    def collect(self) -> Iterator[Metric]:
        counters = self._view.counters()
        rates = self._view.limiter_rates()
        jobs = ["job"]
        hosts = ["job", "runner"]
        pages = GaugeMetricFamily(
            "enduro_pages", "Pages of the job by status.", labels=["job", "status"]
        )
        records = GaugeMetricFamily("enduro_records", "Records stored.", labels=jobs)
        done = CounterMetricFamily(
            "enduro_pages_done",
            "Pages completed (redone ones again).",
            labels=hosts,
        )
        errors = CounterMetricFamily(
            "enduro_errors", "Errors by category.", labels=[*hosts, "category"]
        )
        restarts = CounterMetricFamily("enduro_browser_restarts", "Browser restarts.", labels=hosts)
        relogins = CounterMetricFamily("enduro_relogins", "Re-logins.", labels=hosts)
        pss = GaugeMetricFamily(
            "enduro_browser_pss_bytes",
            "Browser process tree PSS, latest sample that measured it.",
            labels=hosts,
        )
        rss = GaugeMetricFamily(
            "enduro_runner_rss_bytes", "Runner process RSS, latest sample.", labels=hosts
        )
        rate = GaugeMetricFamily(
            "enduro_rate_limit_pages_per_second",
            "Pages per second the rate limiter allows now (absent: unlimited).",
            labels=hosts,
        )
        latency = HistogramMetricFamily(
            "enduro_page_seconds", "Seconds a completed page took, claim to records.", labels=hosts
        )
        for job, (counts, by_host) in sorted(counters.items()):
            for status in ("pending", "leased", "done", "failed", "total"):
                pages.add_metric([job, status], float(counts["pages"].get(status, 0)))
            records.add_metric([job], float(counts["records"]))
            for host, c in sorted(by_host.items()):
                labels = [job, host]
                done.add_metric(labels, float(c.pages_done))
                for category, n in sorted(c.errors.items()):
                    errors.add_metric([*labels, category], float(n))
                restarts.add_metric(labels, float(c.restarts))
                relogins.add_metric(labels, float(c.relogins))
                if c.browser_pss is not None:
                    pss.add_metric(labels, float(c.browser_pss))
                if c.runner_rss is not None:
                    rss.add_metric(labels, float(c.runner_rss))
                cumulative, buckets = 0, []
                for bound, n in zip((*LATENCY_BUCKETS, float("inf")), c.latency, strict=True):
                    cumulative += n
                    buckets.append(("+Inf" if bound == float("inf") else str(bound), cumulative))
                latency.add_metric(labels, buckets, c.latency_sum)
        for host, allowed in sorted(rates.items()):
            if allowed is not None and self._view.job is not None:
                rate.add_metric([self._view.job, host], float(allowed))
        yield from (pages, records, done, errors, restarts, relogins, pss, rss, rate, latency)


def render_metrics(view: LiveView) -> bytes:
    """The Prometheus text exposition of ``view``'s store, read now."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_StoreCollector(view))
    return generate_latest(registry)
