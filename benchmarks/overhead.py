"""What does enduro cost over a bare Selenium loop?

The same N pages of the built-in site go through (a) a bare Selenium loop
doing the reference extraction in one browser, no store, no restarts, and
(b) enduro's runner with the reference job and default settings (a SQLite
store, a commit per page, proactive browser restarts every 200 pages) — the
code path of ``enduro run`` — and the same with restarts off, with page signals
off, and with a restart every 50 pages (what restarts cost). All run in this
one process, alternating for ``--rounds`` rounds, against one site served by a
separate process (so the site does not compete for this process's GIL). Prints
pages/s of each and the ratio enduro / bare.

    .venv/bin/python benchmarks/overhead.py --pages 500
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from selenium.webdriver import Chrome
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service

from enduro.job import PageContext
from enduro.runner import Runner
from enduro.session import CHROMIUM_FLAGS, find_browser
from enduro.settings import Settings
from enduro.store import Store
from enduro.stress.reference import extract_page, make_job


@contextmanager
def site_process(pages: int, *options: str) -> Iterator[str]:
    """Serve the built-in site from a separate process (``options``: more of
    ``enduro site``'s); yields its URL."""
    enduro = Path(sys.executable).parent / "enduro"
    proc = subprocess.Popen(
        [str(enduro), "site", "--port", "0", "--pages", str(pages), *options],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        yield next(word for word in line.split() if word.startswith("http://"))
    finally:
        proc.terminate()
        proc.wait()


def bare_loop(url: str, pages: int) -> float:
    """The reference extraction in one plain Selenium session; returns seconds."""
    settings = Settings()
    chromium, chromedriver = find_browser(settings)
    job = make_job(url, pages)
    began = time.perf_counter()
    options = Options()
    options.binary_location = chromium
    options.add_argument("--headless")
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    profile = tempfile.mkdtemp(prefix="bench-bare-")
    options.add_argument(f"--user-data-dir={profile}")
    driver = Chrome(options=options, service=Service(chromedriver))
    try:
        assert job.login is not None
        job.login(PageContext(key="1", driver=driver, attempt=1, job=job))
        count = 0
        for page in range(1, pages + 1):
            count += len(extract_page(driver, url, str(page)))
        assert count == pages * 50, count
    finally:
        driver.quit()
    return time.perf_counter() - began


def enduro_run(url: str, pages: int, **settings_overrides: object) -> float:
    """The same pages through enduro's runner (default settings unless overridden)."""
    store_path = Path(tempfile.mkdtemp(prefix="bench-enduro-")) / "bench.db"
    settings = Settings(store=store_path, **settings_overrides)  # type: ignore[arg-type]
    job = make_job(url, pages, backend=settings.backend or "selenium")
    began = time.perf_counter()
    with Store.open(store_path) as store:
        result = Runner(job, store, settings).run()
        elapsed = time.perf_counter() - began
        assert result.status == "finished", result
        assert store.record_count() == pages * 50
    return elapsed


def make_parser(doc: str, pages: int, rounds: int) -> argparse.ArgumentParser:
    """The options every benchmark here takes; a benchmark may add its own."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--pages", type=int, default=pages)
    parser.add_argument("--rounds", type=int, default=rounds)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    return parser


def parse_args(doc: str, pages: int, rounds: int) -> argparse.Namespace:
    """The options every benchmark here takes, parsed."""
    return make_parser(doc, pages, rounds).parse_args()


def main() -> None:
    args = parse_args(__doc__, pages=500, rounds=2)
    bare, ours, no_restart, no_signals, every_50 = [], [], [], [], []
    with site_process(args.pages) as url:
        for _ in range(args.rounds):
            bare.append(args.pages / bare_loop(url, args.pages))
            ours.append(args.pages / enduro_run(url, args.pages))
            no_restart.append(args.pages / enduro_run(url, args.pages, restart_every_pages=0))
            no_signals.append(args.pages / enduro_run(url, args.pages, page_signals=False))
            every_50.append(args.pages / enduro_run(url, args.pages, restart_every_pages=50))
    figures = {
        "pages": args.pages,
        "rounds": args.rounds,
        "bare_pages_per_s": round(statistics.median(bare), 2),
        "enduro_pages_per_s": round(statistics.median(ours), 2),
        "ratio": round(statistics.median(ours) / statistics.median(bare), 3),
        "enduro_no_restarts_pages_per_s": round(statistics.median(no_restart), 2),
        "ratio_no_restarts": round(statistics.median(no_restart) / statistics.median(bare), 3),
        "enduro_no_signals_pages_per_s": round(statistics.median(no_signals), 2),
        "ratio_no_signals": round(statistics.median(no_signals) / statistics.median(bare), 3),
        "enduro_every_50_pages_per_s": round(statistics.median(every_50), 2),
        "ratio_every_50": round(statistics.median(every_50) / statistics.median(bare), 3),
        "round_ratios": [round(o / b, 3) for o, b in zip(ours, bare, strict=True)],
        "bare_each": [round(x, 2) for x in bare],
        "enduro_each": [round(x, 2) for x in ours],
        "enduro_no_restarts_each": [round(x, 2) for x in no_restart],
        "enduro_no_signals_each": [round(x, 2) for x in no_signals],
        "enduro_every_50_each": [round(x, 2) for x in every_50],
        "cpus": os.cpu_count(),
    }
    if args.json:
        print(json.dumps(figures))
    else:
        print(f"{args.pages} pages, {args.rounds} rounds (median pages/s)")
        print(f"  bare Selenium loop : {figures['bare_pages_per_s']:7.2f} pages/s  {bare}")
        print(f"  enduro run         : {figures['enduro_pages_per_s']:7.2f} pages/s  {ours}")
        print(f"  ratio enduro/bare  : {figures['ratio']:.3f}  (default settings)")
        print(
            f"  enduro, no restarts: {figures['enduro_no_restarts_pages_per_s']:7.2f} pages/s"
            f"  ratio {figures['ratio_no_restarts']:.3f}  (restart_every_pages=0)"
        )
        print(
            f"  enduro, no signals : {figures['enduro_no_signals_pages_per_s']:7.2f} pages/s"
            f"  ratio {figures['ratio_no_signals']:.3f}  (page_signals=False)"
        )
        print(
            f"  enduro, every 50   : {figures['enduro_every_50_pages_per_s']:7.2f} pages/s"
            f"  ratio {figures['ratio_every_50']:.3f}  (restart_every_pages=50)"
        )
        print(f"  each round's ratio : {figures['round_ratios']}  (default settings)")


if __name__ == "__main__":
    main()
