"""A store's totals, as ``enduro status --json`` prints them and the dashboard's
``/api/status`` serves them."""

from __future__ import annotations

from typing import Any

from enduro.monitor import run_resources
from enduro.session import merge_stats
from enduro.store import Store

__all__ = ["error_lines", "status_report"]

MESSAGE_CHARS = 200  # of a message shown in a line


def status_report(store: Store) -> dict[str, Any]:
    """Every job's pages, records, restarts, errors by category (with each one's most
    frequent message, its count and an example page), failed pages, record keys that
    moved to another page and ``ctx.http`` counts; the latest resource sample; the
    resources of the run that started last (it may still run); the open alerts."""
    jobs = {}
    for name in store.jobs():
        events = store.event_counts(name)
        jobs[name] = {
            "pages": store.page_counts(name),
            "records": store.record_count(name),
            "restarts": events.get("browser_restart", 0),
            "errors": store.error_counts(name),
            "top_errors": store.top_errors(name),
            "key_moved": events.get("key_moved", 0),
            "failed_pages": [[k, e] for _, k, e in store.failed_pages(name)],
            "http": merge_stats(store.http_stats(name)),
        }
    runs = store.runs()
    last_run = None
    if runs:  # peak memory and growth of the run that started last (it may still run)
        run = runs[-1]
        last_run = {
            "run_id": run.run_id,
            "job": run.job,
            "status": run.status,
            **run_resources(store.samples(run.run_id)),
        }
    return {
        "store": store.location,
        "jobs": jobs,
        "latest_sample": store.latest_sample(),
        "last_run_resources": last_run,
        "open_alerts": store.open_alerts(),
    }


def error_lines(top_errors: dict[str, dict[str, Any]]) -> list[str]:
    """One line per category, by category: its most frequent message, how often it
    came and an example page (``Store.top_errors``); plain text, not escaped."""
    lines = []
    for category, top in sorted(top_errors.items()):
        message = top["message"]
        if len(message) > MESSAGE_CHARS:
            message = message[: MESSAGE_CHARS - 1] + "…"
        example = f", e.g. page {top['page']}" if top.get("page") is not None else ""
        lines.append(
            f"{category}: {message or '(no message)'} ({top['count']} of {top['errors']}{example})"
        )
    return lines
