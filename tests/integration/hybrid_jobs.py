"""Hybrid jobs a user might write, for ``enduro run`` in the integration tests.

They read the built-in site at ``HYBRID_SITE_URL``; ``HYBRID_JOB`` picks one:

- ``found``: pages found as it runs: ``Job.pages`` reads the list's total from
  the API, and each list page enqueues a detail page for its first
  ``DETAILS`` matches (``ctx.enqueue``), whose handler calls the relationship
  endpoint. :func:`found_truth` is what it must export.
- ``no_cookies``: a login hook that logs nobody in (the site sets no cookie).
- ``html``: every fifth page asks the browser page ``/matches`` for JSON.
- ``elsewhere``: every fifth page sends a request to ``HYBRID_OTHER_URL``.
- ``broken_pages``: ``Job.pages`` reads a field the API does not have.
"""

from __future__ import annotations

import os
from typing import Any

from enduro import Job, PageContext, csrf_header
from enduro.store import dumps_record
from enduro.stress.reference import login_hook
from enduro.stress.site import hybrid_record

BASE = os.environ.get("HYBRID_SITE_URL", "http://127.0.0.1:8700").rstrip("/")
OTHER = os.environ.get("HYBRID_OTHER_URL", "http://127.0.0.1:9")
KIND = os.environ.get("HYBRID_JOB", "found")
DETAILS = 3
LIST = "/api/v2/matches"


def _list(ctx: PageContext, page: str) -> list[dict[str, Any]]:
    matches: list[dict[str, Any]] = ctx.http.get_json(LIST, params={"currentPage": page})["matches"]
    return matches


def found_pages(ctx: PageContext) -> list[str]:
    first = ctx.http.get_json(LIST, params={"currentPage": 1})
    return [f"list:{n}" for n in range(1, int(first["totalPages"]) + 1)]


def found_handler(ctx: PageContext) -> list[dict[str, Any]]:
    kind, _, arg = ctx.key.partition(":")
    if kind == "list":
        matches = _list(ctx, arg)
        ctx.enqueue(f"detail:{m['match_id']}" for m in matches[:DETAILS])
        return [{"key": m["match_id"], "name": m["name"], "page": m["page"]} for m in matches]
    relationship = ctx.http.get_json(f"{LIST}/{arg}/relationship")
    return [{"key": f"{arg}:longest", "longest_cm": relationship["longest_cm"]}]


def found_truth(pages: int, rows: int, seed: int = 1) -> list[str]:
    """The ``found`` job's export: every list page's matches, then the detail pages in
    the order they were found (list page by list page)."""
    lists, details = [], []
    for page in range(1, pages + 1):
        for row in range(rows):
            record = hybrid_record(seed, page, row)
            lists.append({"key": record["match_id"], "name": record["name"], "page": page})
            if row < DETAILS:
                key = f"{record['match_id']}:longest"
                details.append({"key": key, "longest_cm": record["longest_cm"]})
    return [dumps_record(r) for r in lists + details]


def _plain_handler(ctx: PageContext) -> list[dict[str, Any]]:
    if KIND == "html" and int(ctx.key) % 5 == 0:
        return list(ctx.http.get_json(f"/matches?page={ctx.key}"))  # the browser page, not JSON
    if KIND == "elsewhere" and int(ctx.key) % 5 == 0:
        ctx.http.get(f"{OTHER}/api/v2/matches?currentPage={ctx.key}")
    return [
        {"key": m["match_id"], "name": m["name"], "page": m["page"]} for m in _list(ctx, ctx.key)
    ]


def _no_login(ctx: PageContext) -> None:
    ctx.driver.get(f"{BASE}/login")  # looks at the form, never fills it in


def _make() -> Job:
    login = login_hook(BASE, "demo", "enduro-demo")
    common: dict[str, Any] = {
        "record_key": "key",
        "site": BASE,
        "prepare_request": csrf_header("enduro_csrf"),
        "secrets": ("enduro-demo",),
    }
    if KIND == "found":
        return Job(name="found", pages=found_pages, handler=found_handler, login=login, **common)
    if KIND == "broken_pages":

        def broken(ctx: PageContext) -> range:
            return range(ctx.http.get_json(LIST, params={"currentPage": 1})["pageCount"])

        return Job(name=KIND, pages=broken, handler=found_handler, login=login, **common)
    pages = range(1, int(os.environ.get("HYBRID_SITE_PAGES", "10")) + 1)
    hook = _no_login if KIND == "no_cookies" else login
    return Job(name=KIND, pages=pages, handler=_plain_handler, login=hook, **common)


job = _make()
