"""From a finished stress run to results and a verdict.

Everything here is read from what the run left in its report directory: the
run record (``run.json``: the scenario, the tester's record of each
injection, the site's record of each server-side fault and of the requests
around each Retry-After), the store (pages, events, resource samples) and
the site's ground truth. Nothing is assumed, and nothing needs the tester
that ran it: a finished run is judged again from its directory alone.
"""

from __future__ import annotations

import json
import os
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from enduro._endpoints import endpoint_of
from enduro.monitor import summarize, summarize_samples
from enduro.report import (
    InjectionRecord,
    InjectionStats,
    Integrity,
    Leak,
    SeriesStats,
    StressTestResults,
    Timeline,
    UnexplainedError,
)
from enduro.session import merge_stats
from enduro.store import Store
from enduro.stress.integrity import check_integrity
from enduro.stress.record import (
    SLOW_DOWN_KINDS,
    Delivery,
    RunRecord,
    read_record,
    retry_after_window,
)
from enduro.stress.site import RequestLogEntry
from enduro.stress.tester import SPACING_SECONDS, ProductionStressTester
from enduro.stress.verdict import judge
from enduro.stress.vocabulary import fault_type_of

__all__ = ["EndpointReaction", "Turn", "analyse", "retry_after_violations"]

# An error this soon after an injection is put down to it.
EXPLAINED_WITHIN = 30.0
MB = 1024 * 1024


def analyse(
    source: RunRecord | ProductionStressTester | str | os.PathLike[str],
) -> StressTestResults:
    """Results of a finished stress run, the verdict included.

    Args:
        source: the run's report directory (or its ``run.json``), its record, or
            the tester that ran it (its directory's record is read: a live run
            is judged exactly as it would be again from disk).

    Raises:
        UsageError: the directory holds no readable run record, or no store.
    """
    if isinstance(source, ProductionStressTester):
        source = source.directory
    record = source if isinstance(source, RunRecord) else read_record(source)
    config = record.config
    job, pages = record.job_name, len(record.keys)
    with Store.open(record.store_path, create=False) as store:
        counts = store.page_counts(job)
        events = store.events(job)
        samples = store.samples()
        samples_of_records = _sample_records(store, job)
        done_at = store.done_at(job)
        http = merge_stats(store.http_stats(job))
        # the passes before the last too, for a cycling scenario
        done_times = sorted(
            [*record.done_times, *(done_at[k] for k in record.keys if k in done_at)]
        )
    injections = _injections(record, done_times)
    errors = [e for e in events if e["kind"] == "error"]
    attempts = len(errors) + len(done_times)
    duration = max(record.ended_at - record.started_at, 1e-9)
    critical = [
        f"{i.type} {i.id} at {i.at:.0f}: no page completed after it"
        for i in injections
        if i.delivered and i.recovered_at is None and counts["done"] < pages
    ]
    critical += [f"the runner exited with {code}" for code in record.runner_exits if code > 0]
    critical += [f"run halted: {e['message']}" for e in events if e["kind"] == "halt"]
    results = StressTestResults(
        scenario=config.name,
        job=config.job or "",
        not_injected=list(config.dropped_faults),
        seed=config.seed,
        started_at=record.started_at,
        ended_at=record.ended_at,
        duration_s=duration,
        time_budget_s=config.duration,
        pages_total=pages,
        pages_done=counts["done"],
        pages_failed=counts["failed"],
        success_rate=counts["done"] / pages,
        passes=record.passes + 1,
        pages_processed=len(done_times),
        pages_per_hour=len(done_times) / duration * 3600,
        attempts=attempts,
        errors=len(errors),
        error_rate=len(errors) / attempts if attempts else 0.0,
        session_restarts=sum(1 for e in events if e["kind"] == "browser_restart"),
        relogins=sum(1 for e in events if e["kind"] == "relogin"),
        keys_moved=sum(1 for e in events if e["kind"] == "key_moved"),
        critical_failures=len(critical),
        critical=critical,
        errors_by_category=dict(Counter(str(e["category"]) for e in errors)),
        injections=injections,
        injected_per_type=_per_type(record, injections, len(done_times)),
        unexplained_errors=_unexplained(errors, injections),
        integrity=Integrity(**check_integrity(record)),
        stopped_early=record.stopped_early,
        hybrid=config.hybrid,
        http=http,
        site_faults=dict(Counter(f.kind for f in record.site_faults)),
        retry_after_violations=retry_after_violations(
            record.requests,
            config.retry_after,
            *_reactions(events),
            turns=_turns(events),
            unread=[d.at for d in record.deliveries if d.delivered and _cuts_browser(d)],
        ),
        site_served=record.site_served,
        runners=config.runners,
        shared_store=config.shared_store,
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
        at: when the hold began (or, ``began`` False, when another runner met it).
        endpoint: the endpoint held.
        in_flight: requests to it that had passed the limiter and were not back yet.
        began: whether this runner began the hold (its ``cooldown``), or met one
            another runner began (``hold_seen``).
        turns: for a hold met, when that runner took its turns of the last second
            before it met it: those taken before the hold began were on their way.
    """

    at: float
    endpoint: str
    in_flight: int = 0
    began: bool = True
    turns: tuple[float, ...] = ()


@dataclass(frozen=True)
class Turn:
    """A turn of the pace a runner took (its own record of it): a page attempt's,
    or a login's, from the ``turn_at`` its ``page_done`` / ``error`` / ``login``
    event carries to the event itself.

    Attributes:
        at: when the turn was taken.
        until: when the attempt or the login ended.
        page: the page attempted (empty: a login).
    """

    at: float
    until: float
    page: str = ""

    def sends(self, entry: RequestLogEntry) -> bool:
        """Whether ``entry`` is one this turn makes (within its time): the page's
        document, or a login's form, its post and the page it lands on."""
        if not self.at <= entry.at <= self.until:
            return False
        if self.page:
            return entry.path == f"/matches?page={self.page}"
        return entry.path in ("/login", LOGIN_LANDING)


_LOGIN_REQUESTS = 3  # a login's form, its post, the page it lands on
ON_THE_WAY = 0.1
"""Seconds before a 429/503 in which another runner's turn may still have been on
its way to the site when the hold began (a request takes milliseconds here)."""
LOGIN_LANDING = "/matches?page=1"
"""Where the built-in site's login lands."""
UNREAD_SECONDS = SPACING_SECONDS
"""A slow-down answer this close to the tester's hit on the browser may never have been read."""


def retry_after_violations(
    log: list[RequestLogEntry],
    retry_after: float,
    reactions: Sequence[float] = (),
    endpoint_reactions: Sequence[EndpointReaction] = (),
    *,
    turns: Sequence[Turn] = (),
    unread: Sequence[float] = (),
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
    the runner's own events can). So was a request of a turn of the pace taken
    before the runner knew (``turns``: one runner's turn, taken a moment before
    another runner stored the hold, reaches the site a moment after): a page
    attempt's document, a login's three requests.

    The hybrid API (``/api/v2/``): windows are per endpoint. Inside one, no
    request to that endpoint may arrive once the runner held it
    (``endpoint_reactions``), but for the ones it counted as already on their
    way at that moment, and the ones each other runner had on their way when it
    met that hold (their ``hold_seen``).

    A page's answer the runner never reacted to is not judged when the tester
    itself cut the browser off within ``UNREAD_SECONDS`` of it, before or after
    (``unread``: the times of its browser-side faults — a kill, a tab crash, the
    network taken away): the tester waits for the site's faults to be that old
    before it hits the browser, but a page may get its 429 in the instant between
    that check and the kill, or the site may answer a request of a browser killed
    a moment before (its next browser starts a second or more later); a browser
    killed as the answer arrives never shows it to anyone.
    """
    window = retry_after_window(retry_after)
    told = [e for e in log if e.fault_kind in SLOW_DOWN_KINDS]
    found = []
    for slow_down in told:
        end = slow_down.at + window
        if slow_down.path.startswith(HYBRID_API):
            found += _endpoint_violations(log, slow_down, end, endpoint_reactions)
            continue
        reacted = [t for t in reactions if slow_down.at <= t < end]
        if not reacted and any(abs(t - slow_down.at) <= UNREAD_SECONDS for t in unread):
            continue  # the tester killed the browser the answer was going to
        knew = min(reacted, default=slow_down.at)
        on_their_way = [t for t in turns if t.at < knew]
        sent: dict[Turn, int] = {}
        for entry in log:
            if entry is slow_down or entry.path.startswith(SUBRESOURCES):
                continue
            if knew <= entry.at < end and entry.at > slow_down.at:
                turn = next(
                    (
                        t
                        for t in on_their_way
                        if t.sends(entry) and sent.get(t, 0) < (1 if t.page else _LOGIN_REQUESTS)
                    ),
                    None,
                )
                if turn is not None:
                    sent[turn] = sent.get(turn, 0) + 1
                    continue
                found.append(_violation(entry, slow_down))
    return found


def _endpoint_violations(
    log: list[RequestLogEntry],
    slow_down: RequestLogEntry,
    end: float,
    reactions: Sequence[EndpointReaction],
) -> list[str]:
    endpoint = endpoint_of(slow_down.path)
    mine = [r for r in reactions if r.endpoint == endpoint and slow_down.at <= r.at < end]
    held = min(
        (r for r in mine if r.began),
        key=lambda r: r.at,
        default=EndpointReaction(slow_down.at, endpoint),
    )
    # the other runners' turns taken after the answer (or just before: on their
    # way already) and before the hold began: their requests were on their way
    since = slow_down.at - ON_THE_WAY
    allowed = held.in_flight + sum(
        sum(1 for t in r.turns if since <= t < held.at)
        for r in mine
        if not r.began and r.at >= held.at
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
    return [_violation(entry, slow_down) for entry in inside[allowed:]]


def _violation(entry: RequestLogEntry, slow_down: RequestLogEntry) -> str:
    gap = entry.at - slow_down.at
    return f"{entry.path} {gap:.2f}s after a {slow_down.status} on {slow_down.path}"


def _turns(events: list[dict[str, Any]]) -> list[Turn]:
    """The turns of the pace the runners recorded: page attempts and logins."""
    turns = []
    for event in events:
        if event["kind"] not in ("page_done", "error", "login", "relogin", "login_failed"):
            continue
        data = json.loads(event["data"]) if event.get("data") else {}
        if "turn_at" not in data:
            continue
        page = str(event.get("page_key") or "") if event["kind"] in ("page_done", "error") else ""
        turns.append(Turn(float(data["turn_at"]), float(event["ts"]), page))
    return turns


def _cuts_browser(delivery: Delivery) -> bool:
    """Whether the tester's fault cut the browser off from the site's answers."""
    return delivery.injection.layer == "browser"


def _reactions(events: list[dict[str, Any]]) -> tuple[list[float], list[EndpointReaction]]:
    """The runner's reactions to a 429/503: times of its page-level ``cooldown`` /
    ``rate_cut`` events, and its holds of one ctx.http endpoint."""
    pages: list[float] = []
    endpoints: list[EndpointReaction] = []
    for event in events:
        if event["kind"] not in ("cooldown", "rate_cut", "hold_seen"):
            continue
        data = json.loads(event["data"]) if event.get("data") else {}
        if event["kind"] == "hold_seen":  # another runner's requests already on their way
            at = float(event["ts"])
            turns = tuple(at - float(ago) for ago in data.get("turns_ago") or ())
            endpoints.append(EndpointReaction(at, str(data["endpoint"]), 0, False, turns))
        elif "endpoint" not in data:
            pages.append(float(event["ts"]))
        elif event["kind"] == "cooldown":
            in_flight = int(data.get("in_flight") or 0)
            endpoints.append(EndpointReaction(float(event["ts"]), str(data["endpoint"]), in_flight))
    return pages, endpoints


def _injections(run: RunRecord, done_times: list[float]) -> list[InjectionRecord]:
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
        for d in run.deliveries
    ]
    records += [
        InjectionRecord(
            id=f.id,
            type=fault_type_of(f.kind),
            layer="site",
            at=f.at,
            after_pages=0,
            delivered=True,
            detail=f"{f.kind} on {f.path}",
        )
        for f in run.site_faults
    ]
    for record in records:
        if record.delivered:
            later = [t for t in done_times if t > record.at]
            record.recovered_at = min(later) if later else None
    return sorted(records, key=lambda r: (r.at, r.id))


def _per_type(
    record: RunRecord, injections: list[InjectionRecord], processed: int
) -> dict[str, InjectionStats]:
    """Planned (per pass, times the passes) against delivered (per page processed)."""
    config = record.config
    passes = record.passes + 1
    planned = {kind: n * passes for kind, n in record.fault_schedule().planned().items()}
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
        runner_r2=runner["r_squared"] if runner else None,
    )
