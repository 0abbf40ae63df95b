"""What does enduro cost over a bare httpx loop, for a hybrid job?

The same N pages of the built-in site (served by a separate process, so it
does not compete for this process's GIL), in both shapes of the hybrid
reference job — ``full`` (the list call and both detail calls of every
match: 101 calls a page) and ``list`` (the list call only) — go through:

(a) a bare httpx loop: one POST /login, the two cookies copied by hand into
    a Cookie header and the CSRF token into ``X-CSRF-Token``, then the job's
    calls (the same URLs, the records merged the same way); no store, no
    retries, no browser;
(b) enduro's hybrid reference job through ``Runner`` with a fresh SQLite
    store and otherwise default settings — the code path of ``enduro run``;
(c) for the ``list`` shape, enduro's browser-only reference job on the same
    pages (the records it reads are the list call's).

Each enduro run is timed from its first ``login`` event (the event's ts, read
from the store after the run) to the end of ``runner.run()`` (so closing the
browser counts), and the bare loop from after its login: starting the browser
and logging in is a one-off cost per run, not counted (its median is shown
apart). Both sides make the job's page-discovery call (the first list call,
which gives the page count) inside the timed part. Detail calls go
``--concurrency`` K at a time on both sides (a ThreadPoolExecutor of K in the
bare loop; ``http_concurrency=K`` and ``make_hybrid_job(concurrency=K)`` in
enduro); K=1 is sequential. Every run's records are checked against the
site's truth. An unmeasured bare pass over the list pages warms the site
first; the order of the runs alternates by round. Prints the median pages/s
and calls/s of each and the ratios, the last line a one-line summary
(``--json``: the figures as one JSON object).

Two more figures say what bounds the ratios. *Added per page*: the median
milliseconds a page takes in enduro minus in the bare loop — enduro's cost
per page, whatever the site's speed (the ratio at another site speed follows
from it). *Storing floor*: what keeping a page durably costs with no enduro
at all — the records encoded as enduro stores them and written with their
done mark in one raw ``sqlite3`` transaction on enduro's schema — as a share
of a bare page; the bare loop keeps nothing, so no durable runner can come
closer to it than ``bare / (bare + floor)``. ``--latency MS`` has the site
hold every answer back that long (its latency fault at rate 1), to measure
the ratios at a site speed nearer a real API's; ``--shape`` runs one shape
only (the full one takes 101 latencies a page).

    .venv/bin/python benchmarks/hybrid.py --pages 200 --rounds 3
    .venv/bin/python benchmarks/hybrid.py --pages 200 --rounds 3 --latency 20 --shape list
"""

from __future__ import annotations

import json
import os
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx

from enduro.job import Job
from enduro.runner import Runner
from enduro.settings import Settings
from enduro.store import Store, dumps_record
from enduro.stress.reference import DEFAULT_PASSWORD, DEFAULT_USER, make_job
from enduro.stress.reference_hybrid import CSRF_COOKIE, LIST, calls_per_page, make_hybrid_job
from enduro.stress.site import ground_truth, hybrid_truth
from overhead import make_parser, site_process

SEED, ROWS = 1, 50  # what ``enduro site`` serves unless told otherwise
SESSION_COOKIE = "enduro_session"
SHAPES = ("full", "list")


@dataclass(frozen=True)
class Timed:
    """One run: seconds timed, HTTP calls made in them, and the untimed start-up."""

    seconds: float
    calls: int
    startup: float = 0.0


# ---- (a) the bare httpx loop ---------------------------------------------------


def bare_login(url: str) -> dict[str, str]:
    """Log in through the site's form with plain httpx; returns the two cookies."""
    form = {"username": DEFAULT_USER, "password": DEFAULT_PASSWORD, "next": "/"}
    with httpx.Client() as client:
        response = client.post(f"{url}/login", data=form)
        assert response.status_code in (302, 303), response.status_code
        return {name: response.cookies[name] for name in (SESSION_COOKIE, CSRF_COOKIE)}


def bare_loop(url: str, pages: int, shape: str, concurrency: int, truth: list[str]) -> Timed:
    """The hybrid job's calls with a hand-copied cookie and token; checks the records."""
    began_login = time.perf_counter()
    cookies = bare_login(url)
    headers = {
        "Cookie": "; ".join(f"{name}={value}" for name, value in cookies.items()),
        "X-CSRF-Token": unquote(cookies[CSRF_COOKIE]).split("|", 1)[0],
    }
    records: list[dict[str, Any]] = []
    calls = 0
    with (
        httpx.Client(base_url=url, headers=headers) as client,
        ThreadPoolExecutor(concurrency) as pool,
    ):

        def get(path: str, **params: object) -> Any:
            response = client.get(path, params=params or None)
            response.raise_for_status()
            return response.json()

        began = time.perf_counter()
        first = get(LIST, currentPage=1)  # the job's page discovery
        calls += 1
        per_page, total = int(first["itemsPerPage"]), int(first["totalPages"])
        assert total == pages, total
        for page in range(1, total + 1):
            matches = get(LIST, itemsPerPage=per_page, currentPage=page)["matches"]
            calls += 1
            if shape == "list":
                records.extend(matches)
                continue
            urls = [
                f"{LIST}/{m['match_id']}/{what}"
                for m in matches
                for what in ("relationship", "badge")
            ]
            answers = list(pool.map(get, urls)) if concurrency > 1 else [get(u) for u in urls]
            calls += len(urls)
            for match, relationship, badge in zip(
                matches, answers[0::2], answers[1::2], strict=True
            ):
                key = match["match_id"]
                assert relationship["match_id"] == key and badge["match_id"] == key, key
                records.append(
                    {
                        **match,
                        "longest_cm": relationship["longest_cm"],
                        "shared_ancestors": badge["shared_ancestors"],
                    }
                )
        elapsed = time.perf_counter() - began
    assert len(records) == pages * ROWS, len(records)
    assert [dumps_record(r) for r in records] == truth, "bare loop: records differ from the truth"
    return Timed(elapsed, calls, startup=began - began_login)


# ---- (b), (c) enduro --------------------------------------------------------------


def enduro_run(job: Job, pages: int, truth: list[str], **settings_overrides: Any) -> Timed:
    """``job`` through the runner, timed from its first login; checks the records."""
    with tempfile.TemporaryDirectory(prefix="bench-hybrid-", ignore_cleanup_errors=True) as tmp:
        store_path = Path(tmp) / "bench.db"
        settings = Settings(store=store_path, **settings_overrides)
        with Store.open(store_path) as store:
            runner = Runner(job, store, settings)
            started = time.time()
            result = runner.run()
            ended = time.time()  # the store's events use time.time() too
            assert result.status == "finished", result
            login = store.events(job=job.name, kind="login")[0]["ts"]
            assert store.record_count(job.name) == pages * ROWS, store.record_count(job.name)
            assert list(store.iter_record_texts(job.name)) == truth, (
                f"{job.name}: the stored records differ from the truth"
            )
            calls = sum(s["requests"] for s in runner.http_stats.snapshot().values())
    return Timed(ended - login, calls, startup=login - started)


def enduro_hybrid(url: str, pages: int, shape: str, concurrency: int, truth: list[str]) -> Timed:
    """(b) the hybrid reference job, ``concurrency`` detail calls in flight."""
    job = make_hybrid_job(url, shape=shape, concurrency=concurrency)
    return enduro_run(job, pages, truth, http_concurrency=concurrency)


def enduro_browser(url: str, pages: int, truth: list[str]) -> Timed:
    """(c) the browser-only reference job (no ``ctx.http`` calls)."""
    return enduro_run(make_job(url, pages), pages, truth)


# ---- the storing floor -----------------------------------------------------------

_FLOOR_JOB = "floor"


def store_floor(records: list[dict[str, Any]], pages: int) -> tuple[float, float]:
    """Seconds a page takes to keep durably with no enduro (see the module's
    docstring), and the part of them spent encoding its records."""
    per_page = len(records) // pages
    with tempfile.TemporaryDirectory(prefix="bench-floor-", ignore_cleanup_errors=True) as tmp:
        path = Path(tmp) / "floor.db"
        with Store.open(path) as store:  # enduro's schema and indexes
            store.seed_pages(_FLOOR_JOB, [str(n) for n in range(1, pages + 1)])
        db = sqlite3.connect(path, isolation_level=None)
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")
        began = time.perf_counter()
        encoding = 0.0
        for page in range(1, pages + 1):
            encode_began = time.perf_counter()
            rows = [
                (_FLOOR_JOB, str(r["match_id"]), str(page), page, i, dumps_record(r))
                for i, r in enumerate(records[(page - 1) * per_page : page * per_page])
            ]
            encoding += time.perf_counter() - encode_began
            db.execute("BEGIN IMMEDIATE")
            db.execute(
                "UPDATE pages SET status = 'done', updated_at = ? WHERE job = ? AND key = ?",
                (time.time(), _FLOOR_JOB, str(page)),
            )
            db.execute(
                "DELETE FROM records WHERE job = ? AND page_key = ?", (_FLOOR_JOB, str(page))
            )
            db.executemany(
                "INSERT INTO records (job, record_key, page_key, page_seq, position, data) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (job, record_key) DO UPDATE SET "
                "page_key = excluded.page_key, page_seq = excluded.page_seq, "
                "position = excluded.position, data = excluded.data",
                rows,
            )
            db.execute("COMMIT")
        elapsed = time.perf_counter() - began
        db.close()
    return elapsed / pages, encoding / pages


# ---- figures ----------------------------------------------------------------------


def latency_options(latency_ms: float) -> list[str]:
    """``enduro site``'s options to hold every answer back ``latency_ms`` (0: none)."""
    return ["--fault", "latency=1", "--latency", str(latency_ms / 1000)] if latency_ms else []


def median(values: list[float], digits: int = 2) -> float:
    return round(statistics.median(values), digits)


def main() -> None:
    parser = make_parser(__doc__, pages=200, rounds=3)
    parser.add_argument(
        "--concurrency", type=int, default=1, help="detail calls in flight (both sides)"
    )
    parser.add_argument(
        "--shape",
        choices=(*SHAPES, "both"),
        default="both",
        help="which shape to run (default: both; the ratios to the browser-only job and"
        " the storing floor need the list shape)",
    )
    parser.add_argument(
        "--latency",
        type=float,
        default=0.0,
        metavar="MS",
        help="the site holds every answer back MS milliseconds (default: none)",
    )
    args = parser.parse_args()
    pages, k = args.pages, args.concurrency
    list_records = list(ground_truth(SEED, pages, ROWS))
    truths = {
        "full": [dumps_record(r) for r in hybrid_truth(SEED, pages, ROWS)],
        "list": [dumps_record(r) for r in list_records],
    }
    floors: list[tuple[float, float]] = []
    shapes = SHAPES if args.shape == "both" else (args.shape,)
    runs: dict[str, dict[str, list[Timed]]] = {
        shape: {"bare": [], "enduro": [], **({"browser": []} if shape == "list" else {})}
        for shape in shapes
    }
    with site_process(pages, *latency_options(args.latency)) as url:
        # Unmeasured: the site builds a list page's rows on its first visit and
        # caches them (256 pages at most), so whichever run came first would pay.
        bare_loop(url, pages, "list", 1, truths["list"])
        for round_ in range(args.rounds):
            for shape in shapes:
                truth = truths[shape]
                todo: dict[str, Callable[[], Timed]] = {
                    "bare": lambda s=shape, t=truth: bare_loop(url, pages, s, k, t),
                    "enduro": lambda s=shape, t=truth: enduro_hybrid(url, pages, s, k, t),
                }
                if shape == "list":
                    todo["browser"] = lambda t=truth: enduro_browser(url, pages, t)
                order = list(todo) if round_ % 2 == 0 else list(reversed(todo))
                for name in order:
                    runs[shape][name].append(todo[name]())
            if "list" in shapes:
                floors.append(store_floor(list_records, pages))

    figures: dict[str, Any] = {
        "pages": pages,
        "rounds": args.rounds,
        "concurrency": k,
        "latency_ms": args.latency,
        "cpus": os.cpu_count(),
    }
    for shape, by_name in runs.items():
        figures[f"{shape}_calls_per_page"] = calls_per_page(shape, ROWS)
        for name, timed in by_name.items():
            rates = [pages / t.seconds for t in timed]
            prefix = f"{shape}_{name}"
            figures[f"{prefix}_pages_per_s"] = median(rates)
            figures[f"{prefix}_calls_per_s"] = (
                median([t.calls / t.seconds for t in timed], 1) if name != "browser" else None
            )
            figures[f"{prefix}_calls"] = timed[0].calls if name != "browser" else None
            figures[f"{prefix}_startup_s"] = median([t.startup for t in timed], 3)
            figures[f"{prefix}_each"] = [round(r, 2) for r in rates]
        figures[f"{shape}_enduro_over_bare"] = round(
            figures[f"{shape}_enduro_pages_per_s"] / figures[f"{shape}_bare_pages_per_s"], 3
        )
        page_ms = {
            name: statistics.median(t.seconds for t in by_name[name]) / pages * 1000
            for name in ("bare", "enduro")
        }
        figures[f"{shape}_bare_ms_per_page"] = round(page_ms["bare"], 3)
        figures[f"{shape}_enduro_added_ms_per_page"] = round(page_ms["enduro"] - page_ms["bare"], 3)
    if "list" in shapes:  # the storing floor and the ceiling are the list shape's
        floor_ms = statistics.median(total for total, _ in floors) * 1000
        encode_ms = statistics.median(encode for _, encode in floors) * 1000
        figures["store_floor_ms_per_page"] = round(floor_ms, 3)
        figures["store_encode_ms_per_page"] = round(encode_ms, 3)
        bare_list_ms = figures["list_bare_ms_per_page"]
        figures["list_ceiling"] = round(bare_list_ms / (bare_list_ms + floor_ms), 3)
        figures["list_hybrid_over_browser"] = round(
            figures["list_enduro_pages_per_s"] / figures["list_browser_pages_per_s"], 2
        )
    latency = f", site latency {args.latency:g} ms" if args.latency else ""
    parts = [f"{shape} enduro/bare {figures[f'{shape}_enduro_over_bare']:.2f}" for shape in shapes]
    if "list" in shapes:
        parts += [
            f"list hybrid/browser-only {figures['list_hybrid_over_browser']:.1f}x",
            f"list ceiling {figures['list_ceiling']:.2f}",
        ]
    summary = (
        f"hybrid.py {pages} pages{f', concurrency {k}' if k > 1 else ''}{latency}: "
        + ", ".join(parts)
    )
    if args.json:
        print(json.dumps(figures))
        return
    print(
        f"{pages} pages, {args.rounds} rounds, concurrency {k}{latency} "
        "(medians; timed from the login on, start-up shown apart)"
    )
    labels = {
        "bare": "bare httpx loop",
        "enduro": "enduro hybrid",
        "browser": "enduro browser-only",
    }
    for shape, by_name in runs.items():
        per = calls_per_page(shape, ROWS)
        print(f"  {shape} ({per} call{'s' if per > 1 else ''}/page)")
        for name in by_name:
            prefix = f"{shape}_{name}"
            calls = figures[f"{prefix}_calls_per_s"]
            shown = f"{calls:8.1f} calls/s" if calls is not None else "   (no API calls)"
            print(
                f"    {labels[name]:20}: {figures[f'{prefix}_pages_per_s']:7.2f} pages/s"
                f" {shown}  start-up {figures[f'{prefix}_startup_s']:.2f}s"
                f"  {figures[f'{prefix}_each']}"
            )
        print(f"    ratio enduro/bare   : {figures[f'{shape}_enduro_over_bare']:.3f}")
        added = figures[f"{shape}_enduro_added_ms_per_page"]
        print(
            f"    added per page      : {added:.2f} ms"
            f" ({added / per:.3f} ms a call; a bare page takes"
            f" {figures[f'{shape}_bare_ms_per_page']:.2f} ms)"
        )
    if "list" in shapes:  # floor_ms, encode_ms and bare_list_ms are set above
        print(f"    ratio hybrid/browser-only: {figures['list_hybrid_over_browser']:.2f}x")
        print(
            f"  storing floor: {floor_ms:.2f} ms a page (records encoded + one raw sqlite3"
            f" transaction, no enduro) = {floor_ms / bare_list_ms:.0%} of a bare list page:"
            f" no runner committing each page passes {figures['list_ceiling']:.2f} of the"
            f" list-only bare loop; encoding alone is {encode_ms:.2f} ms"
            f" ({encode_ms / bare_list_ms:.0%})"
        )
    print(summary)


if __name__ == "__main__":
    main()
