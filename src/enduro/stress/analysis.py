"""From a finished stress run to results and a verdict.

Everything here is read from what the run left: the store (pages, events,
resource samples), the tester's record of each injection, the site's record
of each server-side fault, and the site's ground truth. Nothing is assumed.
"""

from __future__ import annotations

import json
import math
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from enduro._endpoints import endpoint_of
from enduro.monitor import summarize, summarize_samples
from enduro.session import merge_stats
from enduro.store import Store
from enduro.stress.injector import HYBRID_SITE_KINDS
from enduro.stress.results import (
    CriterionResult,
    InjectionRecord,
    InjectionStats,
    Integrity,
    Leak,
    SeriesStats,
    StressTestResults,
    Timeline,
    UnexplainedError,
    Verdict,
)
from enduro.stress.scenario import StressTestConfig, SuccessCriteria
from enduro.stress.site import Fault, RequestLogEntry
from enduro.stress.tester import ProductionStressTester

__all__ = ["SITE_FAULT_TYPES", "EndpointReaction", "analyse", "judge", "retry_after_violations"]

# The site's fault kinds, as the stress tester's fault types.
SITE_FAULT_TYPES = {
    "stale_dom": "element_not_found",
    "missing_element": "element_not_found",
    "broken_script": "javascript_error",
    "rate_limit": "rate_limiting",
    "server_error": "server_error",
    "maintenance": "server_error",
    "reset": "network_timeout",
    "truncate": "network_timeout",
    "latency": "network_timeout",
    "session_expiry": "auth_loss",
    "csrf_rotation": "auth_loss",
}
# An error this soon after an injection is put down to it.
EXPLAINED_WITHIN = 30.0
MB = 1024 * 1024


def analyse(tester: ProductionStressTester) -> StressTestResults:
    """Results of the tester's finished run (the verdict included)."""
    config, info = tester.config, tester.run_info
    job, pages = tester.job_name, len(tester.keys)
    with Store.open(tester.store_path, create=False) as store:
        counts = store.page_counts(job)
        events = store.events(job)
        samples = store.samples()
        samples_of_records = _sample_records(store, job)
        done_at = store.done_at(job)
        http = merge_stats(store.http_stats(job))
        # the passes before the last too, for a cycling scenario
        done_times = sorted([*info.done_times, *(done_at[k] for k in tester.keys if k in done_at)])
    injections = _injections(tester, done_times)
    errors = [e for e in events if e["kind"] == "error"]
    attempts = len(errors) + len(done_times)
    duration = max(info.ended_at - info.started_at, 1e-9)
    critical = [
        f"{i.type} {i.id} at {i.at:.0f}: no page completed after it"
        for i in injections
        if i.delivered and i.recovered_at is None and counts["done"] < pages
    ]
    critical += [f"the runner exited with {code}" for code in info.runner_exits if code > 0]
    critical += [f"run halted: {e['message']}" for e in events if e["kind"] == "halt"]
    results = StressTestResults(
        scenario=config.name,
        job=config.job or "",
        not_injected=list(config.dropped_faults),
        seed=config.seed,
        started_at=info.started_at,
        ended_at=info.ended_at,
        duration_s=duration,
        time_budget_s=config.duration,
        pages_total=pages,
        pages_done=counts["done"],
        pages_failed=counts["failed"],
        success_rate=counts["done"] / pages,
        passes=info.passes + 1,
        pages_processed=len(done_times),
        pages_per_hour=len(done_times) / duration * 3600,
        attempts=attempts,
        errors=len(errors),
        error_rate=len(errors) / attempts if attempts else 0.0,
        session_restarts=sum(1 for e in events if e["kind"] == "browser_restart"),
        relogins=sum(1 for e in events if e["kind"] == "relogin"),
        critical_failures=len(critical),
        critical=critical,
        errors_by_category=dict(Counter(str(e["category"]) for e in errors)),
        injections=injections,
        injected_per_type=_per_type(tester, injections, len(done_times)),
        unexplained_errors=_unexplained(errors, injections),
        integrity=Integrity(**tester.integrity()),
        stopped_early=info.stopped_early,
        hybrid=config.hybrid,
        http=http,
        site_faults=dict(Counter(f.kind for f in tester.site_plan.delivered)),
        retry_after_violations=retry_after_violations(
            tester.request_log, config.retry_after, *_reactions(events)
        ),
        site_served=config.job is None,
        sample_records=samples_of_records,
        timeline=_timeline(done_times, samples, events, injections),
    )
    _resources(results, samples)
    results.verdict = judge(results, config)
    return results


def _sample_records(store: Store, job: str, first: int = 3, marked: int = 3) -> list[str]:
    """The first records, and the first few whose text looks like markup."""
    picked: list[str] = []
    with_markup = 0
    for n, text in enumerate(store.iter_record_texts(job)):
        if n < first:
            picked.append(text)
        elif "<" in text and with_markup < marked:
            picked.append(text)
            with_markup += 1
        elif with_markup >= marked:
            break
    return picked


SUBRESOURCES = ("/api/", "/static/", "/favicon.ico")
"""Requests a loaded page makes on its own (its script, its data): not a page load."""
HYBRID_API = "/api/v2/"
"""The JSON API a hybrid job's ctx.http calls: judged per endpoint."""


@dataclass(frozen=True)
class EndpointReaction:
    """The runner holding one endpoint after a 429/503 (its ``cooldown`` event).

    Attributes:
        at: when the hold began.
        endpoint: the endpoint held.
        in_flight: requests to it that had passed the limiter and were not back yet.
    """

    at: float
    endpoint: str
    in_flight: int = 0


def retry_after_violations(
    log: list[RequestLogEntry],
    retry_after: float,
    reactions: Sequence[float] = (),
    endpoint_reactions: Sequence[EndpointReaction] = (),
) -> list[str]:
    """Requests that reached the site while a Retry-After it had sent was running.

    A window runs from the 429/503 for ``retry_after`` seconds (rounded up, as
    the header carries it).

    Page loads: inside a window no page may be requested once the runner knew
    of the answer: from its first reaction (``reactions``: times of its
    ``cooldown`` / ``rate_cut`` events) after the answer, or from the answer
    itself if it never reacted. A page another worker requested before that,
    and the script and data calls of a page already loading, were on their way
    (the site cannot tell them apart from a Retry-After the runner ignored,
    the runner's own events can).

    The hybrid API (``/api/v2/``): windows are per endpoint. Inside one, no
    request to that endpoint may arrive once the runner held it
    (``endpoint_reactions``), but for the ones it counted as already on their
    way at that moment.
    """
    window = float(math.ceil(retry_after))  # the site sends whole seconds, rounded up
    told = [e for e in log if e.fault_kind in ("rate_limit", "maintenance")]
    found = []
    for slow_down in told:
        end = slow_down.at + window
        if slow_down.path.startswith(HYBRID_API):
            found += _endpoint_violations(log, slow_down, end, endpoint_reactions)
            continue
        knew = min((t for t in reactions if slow_down.at <= t < end), default=slow_down.at)
        for entry in log:
            if entry is slow_down or entry.path.startswith(SUBRESOURCES):
                continue
            if knew <= entry.at < end and entry.at > slow_down.at:
                found.append(_violation(entry, slow_down))
    return found


def _endpoint_violations(
    log: list[RequestLogEntry],
    slow_down: RequestLogEntry,
    end: float,
    reactions: Sequence[EndpointReaction],
) -> list[str]:
    endpoint = endpoint_of(slow_down.path)
    held = min(
        (r for r in reactions if r.endpoint == endpoint and slow_down.at <= r.at < end),
        key=lambda r: r.at,
        default=EndpointReaction(slow_down.at, endpoint),
    )
    inside = [
        entry
        for entry in log
        if entry is not slow_down
        and held.at <= entry.at < end
        and entry.at > slow_down.at
        and entry.path.startswith(HYBRID_API)
        and endpoint_of(entry.path) == endpoint
    ]
    return [_violation(entry, slow_down) for entry in inside[held.in_flight :]]


def _violation(entry: RequestLogEntry, slow_down: RequestLogEntry) -> str:
    gap = entry.at - slow_down.at
    return f"{entry.path} {gap:.2f}s after a {slow_down.status} on {slow_down.path}"


def _reactions(events: list[dict[str, Any]]) -> tuple[list[float], list[EndpointReaction]]:
    """The runner's reactions to a 429/503: times of its page-level ``cooldown`` /
    ``rate_cut`` events, and its holds of one ctx.http endpoint."""
    pages: list[float] = []
    endpoints: list[EndpointReaction] = []
    for event in events:
        if event["kind"] not in ("cooldown", "rate_cut"):
            continue
        data = json.loads(event["data"]) if event.get("data") else {}
        if "endpoint" not in data:
            pages.append(float(event["ts"]))
        elif event["kind"] == "cooldown":
            in_flight = int(data.get("in_flight") or 0)
            endpoints.append(EndpointReaction(float(event["ts"]), str(data["endpoint"]), in_flight))
    return pages, endpoints


def _injections(tester: ProductionStressTester, done_times: list[float]) -> list[InjectionRecord]:
    records = [
        InjectionRecord(
            id=d.injection.id,
            type=d.injection.type,
            layer=d.injection.layer,
            at=d.at,
            after_pages=d.injection.after_pages,
            delivered=d.delivered,
            detail=d.detail,
        )
        for d in tester.run_info.deliveries
    ]
    site: list[Fault] = tester.site_plan.delivered
    records += [
        InjectionRecord(
            id=f.id,
            type=SITE_FAULT_TYPES.get(f.kind, f.kind),
            layer="site",
            at=f.at,
            after_pages=0,
            delivered=True,
            detail=f"{f.kind} on {f.path}",
        )
        for f in site
    ]
    for record in records:
        if record.delivered:
            later = [t for t in done_times if t > record.at]
            record.recovered_at = min(later) if later else None
    return sorted(records, key=lambda r: (r.at, r.id))


def _per_type(
    tester: ProductionStressTester, injections: list[InjectionRecord], processed: int
) -> dict[str, InjectionStats]:
    """Planned (per pass, times the passes) against delivered (per page processed)."""
    config = tester.config
    passes = tester.run_info.passes + 1
    planned = {kind: n * passes for kind, n in tester.schedule.planned().items()}
    stats = {}
    for kind in sorted(set(config.faults) | {i.type for i in injections}):
        mine = [i for i in injections if i.type == kind]
        delivered = [i for i in mine if i.delivered]
        times = sorted(i.recovered_at - i.at for i in delivered if i.recovered_at is not None)
        stats[kind] = InjectionStats(
            configured_rate=planned.get(kind, 0) / passes / config.pages,
            planned=planned.get(kind, 0),
            delivered=len(delivered),
            delivered_rate=len(delivered) / max(1, processed),
            recovery_p50=statistics.median(times) if times else None,
            recovery_p95=summary.p95 if (summary := summarize(times)) else None,
            recovery_max=max(times) if times else None,
            unrecovered=len(delivered) - len(times),
        )
    return stats


def _unexplained(
    errors: list[dict[str, Any]], injections: list[InjectionRecord]
) -> list[UnexplainedError]:
    times = sorted(i.at for i in injections if i.delivered)
    found = []
    for error in errors:
        ts = float(error["ts"])
        if not any(at <= ts <= at + EXPLAINED_WITHIN for at in times):
            found.append(
                UnexplainedError(ts=ts, category=str(error["category"]), message=error["message"])
            )
    return found


def _timeline(
    done_times: list[float],
    samples: list[dict[str, Any]],
    events: list[dict[str, Any]],
    injections: list[InjectionRecord],
) -> Timeline:
    return Timeline(
        pages_done=[(t, float(n)) for n, t in enumerate(done_times, 1)],
        browser_pss_mb=[(s["ts"], s["browser_pss"] / MB) for s in samples if s.get("browser_pss")],
        system_mem_percent=[(s["ts"], s["mem_percent"]) for s in samples if "mem_percent" in s],
        restarts=[float(e["ts"]) for e in events if e["kind"] == "browser_restart"],
        injections=[(i.at, i.type) for i in injections if i.delivered],
        recoveries=[
            (i.recovered_at, i.type, i.recovered_at - i.at)
            for i in injections
            if i.delivered and i.recovered_at is not None
        ],
    )


def _resources(results: StressTestResults, samples: list[dict[str, Any]]) -> None:
    if not samples:
        return
    summary = summarize_samples(samples)
    results.resources = {
        name: SeriesStats(
            unit=s["unit"],
            count=s["count"],
            min=s["min"],
            mean=s["mean"],
            max=s["max"],
            p95=s["p95"],
        )
        for name, s in summary["series"].items()
    }
    # the longest run's samples give the leak estimate (pages count from 0 in each run)
    runs = Counter(s["run_id"] for s in samples)
    longest = [s for s in samples if s["run_id"] == runs.most_common(1)[0][0]]
    leak = summarize_samples(longest)["leak"]
    browser, runner = leak["browser_pss"], leak["runner_rss"]
    results.leak = Leak(
        browser_pss_mb_per_1000_pages=browser["slope_mb_per_1000_pages"] if browser else None,
        r2=browser["r_squared"] if browser else None,
        runner_rss_mb_per_1000_pages=runner["slope_mb_per_1000_pages"] if runner else None,
    )


def judge(results: StressTestResults, config: StressTestConfig) -> Verdict:
    """Every criterion, measured against its limit; GO only if all pass."""
    c: SuccessCriteria = config.criteria
    checks: list[CriterionResult] = []

    def check(name: str, passed: bool, measured: Any, limit: Any, detail: str = "") -> None:
        checks.append(
            CriterionResult(name=name, passed=passed, measured=measured, limit=limit, detail=detail)
        )

    check(
        "completion",
        results.success_rate >= c.min_completion,
        results.success_rate,
        c.min_completion,
        f"{results.pages_done}/{results.pages_total} pages done",
    )
    integrity = results.integrity
    for name, measured, limit in (
        ("records lost", integrity.lost, c.max_lost),
        ("records duplicated", integrity.duplicated, c.max_duplicated),
        ("records corrupted", integrity.corrupted, c.max_corrupted),
    ):
        if limit is not None:
            check(name, measured <= limit, measured, limit)
    check(
        "critical failures",
        results.critical_failures <= c.max_critical_failures,
        results.critical_failures,
        c.max_critical_failures,
        "; ".join(results.critical[:3]),
    )
    if results.attempts >= c.min_sample:
        check(
            "error rate",
            results.error_rate <= c.max_error_rate,
            round(results.error_rate, 4),
            c.max_error_rate,
        )
    else:
        check(
            "error rate",
            True,
            round(results.error_rate, 4),
            c.max_error_rate,
            f"not judged: {results.attempts} attempts, fewer than {c.min_sample}",
        )
    leak_limit = c.max_leak_mb_per_1000_pages
    for name, slope, why in (
        (
            "browser memory growth",
            results.leak.browser_pss_mb_per_1000_pages,
            "too few samples within a browser lifetime past its warm-up",
        ),
        (
            "runner memory growth",
            results.leak.runner_rss_mb_per_1000_pages,
            "too few samples past the warm-up",
        ),
    ):
        if leak_limit is None:
            continue
        if slope is None:
            check(name, True, None, leak_limit, f"not judged: {why}")
        else:
            check(name, slope <= leak_limit, round(slope, 1), leak_limit, "MB per 1,000 pages")
    for kind, p95_limit in sorted((c.max_recovery_p95 or {}).items()):
        stats = results.injected_per_type.get(kind)
        if stats is not None and stats.recovery_p95 is not None:
            check(
                f"recovery p95: {kind}",
                stats.recovery_p95 <= p95_limit,
                round(stats.recovery_p95, 2),
                p95_limit,
                "seconds to the next completed page",
            )
    if results.site_served:  # the site's request log is the witness; a user's site has none
        early = results.retry_after_violations
        check(
            "Retry-After honoured",
            not early,
            len(early),
            0,
            "; ".join(early[:3]) or "no request reached the site inside a Retry-After window",
        )
    missing = [
        k
        for k in config.faults
        if results.injected_per_type.get(k) is None or results.injected_per_type[k].delivered == 0
    ]
    if config.hybrid:  # and every fault of the API that those types stand for
        missing += [
            kind
            for fault_type in config.faults
            for kind in HYBRID_SITE_KINDS.get(fault_type, ())
            if not results.site_faults.get(kind)
        ]
    named = len(config.faults) + (
        sum(len(HYBRID_SITE_KINDS.get(f, ())) for f in config.faults) if config.hybrid else 0
    )
    check(
        "faults delivered",
        not missing,
        named - len(missing),
        named,
        ("not delivered: " + ", ".join(missing)) if missing else "every named fault happened",
    )
    check(
        "ran to the end",
        not results.stopped_early,
        results.stopped_early or "ok",
        f"{config.duration:g}s budget, stop conditions",
        f"stopped early: {results.stopped_early}" if results.stopped_early else "",
    )
    failed = [r for r in checks if not r.passed]
    return Verdict(
        go=not failed,
        failed=failed,
        criteria=checks,
        recommendations=recommendations(results, failed, config),
    )


def recommendations(
    results: StressTestResults, failed: list[CriterionResult], config: StressTestConfig
) -> list[str]:
    """What to change, derived from what failed."""
    advice = []
    names = {r.name for r in failed}
    if names & {"records lost", "records duplicated", "records corrupted"}:
        advice.append(
            "records were lost, duplicated or corrupted: this runner does not keep its "
            "promise; do not start the real run"
        )
    slope = results.leak.browser_pss_mb_per_1000_pages
    runner_slope = results.leak.runner_rss_mb_per_1000_pages
    if "runner memory growth" in names and runner_slope:
        advice.append(
            f"the runner's memory grows {runner_slope:.0f} MB per 1,000 pages: look for "
            "references the handler keeps between pages (a list it appends to, a cache)"
        )
    if "browser memory growth" in names and slope:
        every = max(5, int(1000 * 500 / slope / 10) // 5 * 5)
        advice.append(
            f"browser PSS grows {slope:.0f} MB per 1,000 pages: lower "
            f"ENDURO_RESTART_EVERY_PAGES to {every}"
        )
    for r in failed:
        if r.name.startswith("recovery p95: "):
            advice.append(
                f"recovery from {r.name[14:]} takes {r.measured}s at p95 "
                f"(limit {r.limit}s): look at the events of that fault type"
            )
    if "error rate" in names:
        top = sorted(results.errors_by_category.items(), key=lambda kv: -kv[1])[:2]
        advice.append(
            f"error rate {results.error_rate:.0%}; most errors: "
            + ", ".join(f"{k} ({v})" for k, v in top)
        )
    if "critical failures" in names:
        advice.extend(f"critical: {c}" for c in results.critical[:3])
    if "Retry-After honoured" in names:
        advice.append(
            f"{len(results.retry_after_violations)} requests reached the site inside a "
            "Retry-After window: the site will throttle or ban this client"
        )
    if "faults delivered" in names:
        advice.append("some named faults never happened: run longer or with more pages")
    if "ran to the end" in names:
        advice.append(f"stopped early ({results.stopped_early})")
    if "completion" in names and not advice:
        advice.append("pages were left undone: see `enduro status` on the store")
    return advice
