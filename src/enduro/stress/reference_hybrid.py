"""The hybrid reference job: the browser logs in, ``ctx.http`` walks the site's JSON API.

How the real 20-hour jobs are built. The browser fills the login form once
(and again when the site says the session lapsed); every page is then one
list call plus, per match, its relationship and its badge — 101 calls for a
page of 50 matches — merged into one record per match. ``ctx.http`` carries
the browser's cookies, sends the CSRF token from the ``enduro_csrf`` cookie
as ``X-CSRF-Token``, and retries what fails inside the page. The pages are
found as the job runs: ``Job.pages`` reads the total from the first list
answer. Its records are exactly ``enduro site --truth --hybrid``.

Shapes (``ENDURO_HYBRID_SHAPE``): ``full`` (the list call, then both detail
calls of every match), ``batch`` (the list, each match's relationship, one
batch call for all badges), ``list`` (the list call only: the records of the
browser reference job).

The browser that logs in is Selenium's or Playwright's (``backend``; ``job()``
follows ``ENDURO_BACKEND``): ``ctx.http`` is the same on both, it takes the
cookies through the backend.

Run it against a site you started yourself with::

    enduro site --pages 100 &
    ENDURO_SITE_URL=http://127.0.0.1:8700 enduro run enduro.stress.reference_hybrid:job
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from enduro.errors import BadResponse
from enduro.job import Job, PageContext, Record
from enduro.session import csrf_header
from enduro.stress.reference import (
    DEFAULT_PASSWORD,
    DEFAULT_URL,
    DEFAULT_USER,
    logged_in_hook,
    logged_in_hook_pw,
    login_hook,
    login_hook_pw,
)

__all__ = ["CSRF_COOKIE", "LIST", "SHAPES", "calls_per_page", "job", "make_hybrid_job"]

CSRF_COOKIE = "enduro_csrf"
LIST = "/api/v2/matches"
SHAPES = ("full", "batch", "list")


def calls_per_page(shape: str, rows: int) -> int:
    """Requests the job makes for a page of ``rows`` matches (without retries)."""
    return {"full": 1 + 2 * rows, "batch": 2 + rows, "list": 1}[shape]


def make_hybrid_job(
    base_url: str,
    *,
    shape: str = "full",
    username: str = DEFAULT_USER,
    password: str = DEFAULT_PASSWORD,
    name: str = "matches",
    concurrency: int | None = None,
    backend: str = "selenium",
) -> Job:
    """The hybrid reference job for a built-in site at ``base_url``.

    Args:
        shape: ``full``, ``batch`` or ``list`` (see the module docstring).
        concurrency: detail calls in flight at once (default: ``ENDURO_HTTP_CONCURRENCY``).
        backend: the browser its login hooks drive (``selenium``: ``ctx.driver``,
            ``playwright``: ``ctx.page``), which it pins.

    Raises:
        ValueError: an unknown shape or backend.
    """
    if shape not in SHAPES:
        raise ValueError(f"shape must be one of {', '.join(SHAPES)}, not {shape!r}")
    if backend not in ("selenium", "playwright"):
        raise ValueError(f"backend {backend!r} must be 'selenium' or 'playwright'")
    playwright = backend == "playwright"
    base = base_url.rstrip("/")
    per_page: dict[str, int] = {}  # itemsPerPage, from the first answer

    def pages(ctx: PageContext) -> Iterable[int]:
        first = ctx.http.get_json(LIST, params={"currentPage": 1})
        per_page["items"] = int(first["itemsPerPage"])
        return range(1, int(first["totalPages"]) + 1)

    def extract(ctx: PageContext) -> list[Record]:
        http = ctx.http
        params = {"itemsPerPage": per_page.get("items", 50), "currentPage": ctx.key}
        matches: list[dict[str, Any]] = http.get_json(LIST, params=params)["matches"]
        if shape == "list":
            return matches
        ids = [str(m["match_id"]) for m in matches]
        if shape == "full":
            urls = [f"{LIST}/{i}/{what}" for i in ids for what in ("relationship", "badge")]
            answers = http.map(http.get_json, urls, concurrency=concurrency)
            relationships, badges = answers[0::2], answers[1::2]
        else:
            urls = [f"{LIST}/{i}/relationship" for i in ids]
            relationships = http.map(http.get_json, urls, concurrency=concurrency)
            found = http.post_json(f"{LIST}/badges", json={"match_ids": ids})
            by_id = {b["match_id"]: b for b in found["badges"]}
            badges = [by_id.get(i, {}) for i in ids]
        records = []
        for match, relationship, badge in zip(matches, relationships, badges, strict=True):
            key = match["match_id"]
            if relationship.get("match_id") != key or badge.get("match_id") != key:
                raise BadResponse(f"page {ctx.key}: the details of {key} did not come back")
            records.append(
                {
                    **match,
                    "longest_cm": relationship["longest_cm"],
                    "shared_ancestors": badge["shared_ancestors"],
                }
            )
        return records

    return Job(
        name=name,
        pages=pages,
        handler=extract,
        login=(login_hook_pw if playwright else login_hook)(base, username, password),
        is_logged_in=(logged_in_hook_pw if playwright else logged_in_hook)(base),
        record_key="match_id",
        secrets=(password,),
        site=base,
        prepare_request=csrf_header(CSRF_COOKIE),
        backend=backend,
    )


def job() -> Job:
    """The hybrid reference job, configured by ``ENDURO_SITE_URL``, ``ENDURO_HYBRID_SHAPE``,
    ``ENDURO_SITE_USER`` and ``ENDURO_SITE_PASSWORD``; its browser logs in on the
    backend the run is given (``ENDURO_BACKEND``, Selenium by default)."""
    return make_hybrid_job(
        os.environ.get("ENDURO_SITE_URL", DEFAULT_URL),
        shape=os.environ.get("ENDURO_HYBRID_SHAPE", "full"),
        username=os.environ.get("ENDURO_SITE_USER", DEFAULT_USER),
        password=os.environ.get("ENDURO_SITE_PASSWORD", DEFAULT_PASSWORD),
        backend=os.environ.get("ENDURO_BACKEND") or "selenium",
    )
