"""What does watching a run on the live dashboard cost it?

The reference job over the same pages of the built-in site through enduro's
runner, with the dashboard served from the runner's own process (as ``enduro
run --dashboard`` does) and open in a headless Chromium that polls it every
second, and with no dashboard; alternating rounds (which goes first
alternates) in one process, against one site in a separate process. Prints
the pages/s of each and the ratio watched / unwatched: the median of the
per-round ratios, since a round's two runs share the machine's mood and rounds
do not. The watching browser is started, and has drawn the page once, before
the clock starts; what it and the dashboard do while the run goes is counted.

    .venv/bin/python benchmarks/dashboard.py --pages 300 --rounds 3
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from selenium.webdriver import Chrome
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

from enduro.report import DashboardServer, LiveView
from enduro.runner import Runner
from enduro.session import CHROMIUM_FLAGS, find_browser
from enduro.settings import Settings
from enduro.store import Store
from enduro.stress.reference import make_job
from overhead import parse_args, site_process


@contextmanager
def watching(url: str) -> Iterator[Chrome]:
    """A headless Chromium with ``url`` open, once its page has drawn live figures."""
    chromium, chromedriver = find_browser(Settings())
    options = Options()
    options.binary_location = chromium
    options.add_argument("--headless")
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument("--window-size=1300,2000")
    options.add_argument(f"--user-data-dir={tempfile.mkdtemp(prefix='bench-watch-')}")
    browser = Chrome(options=options, service=Service(chromedriver))
    try:
        browser.get(url)
        browser.execute_script("performance.setResourceTimingBufferSize(100000)")
        WebDriverWait(browser, 30).until(
            lambda b: (
                "updated"
                in b.execute_script("return document.getElementById('connection').textContent")
            )
        )
        yield browser
    finally:
        browser.quit()


def run(url: str, pages: int, watched: bool) -> tuple[float, int]:
    """Seconds the run took, and how many times the page polled the dashboard."""
    store_path = Path(tempfile.mkdtemp(prefix="bench-dash-")) / "bench.db"
    settings = Settings(store=store_path)
    job = make_job(url, pages)
    with Store.open(store_path) as store:
        store.seed_pages(job.name, job.page_keys)  # the dashboard has a job to show
        with (
            DashboardServer(LiveView.of(store_path), port=0) if watched else _nothing() as server,
            watching(server.url) if server is not None else _nothing() as browser,
        ):
            began = time.perf_counter()
            result = Runner(job, store, settings).run()
            elapsed = time.perf_counter() - began
            polls = (
                int(
                    browser.execute_script(
                        "return performance.getEntriesByType('resource')"
                        ".filter(e => e.name.includes('api/live')).length"
                    )
                )
                if browser is not None
                else 0
            )
        assert result.status == "finished", result
        assert store.record_count() == pages * 50
    return elapsed, polls


@contextmanager
def _nothing() -> Iterator[None]:
    yield None


def main() -> None:
    args = parse_args(__doc__, pages=300, rounds=3)
    off: list[float] = []
    on: list[float] = []
    polls: list[int] = []
    with site_process(args.pages) as url:
        for round_ in range(args.rounds):
            for watched in (False, True) if round_ % 2 == 0 else (True, False):
                seconds, polled = run(url, args.pages, watched)
                (on if watched else off).append(args.pages / seconds)
                if watched:
                    polls.append(polled)
    figures = {
        "pages": args.pages,
        "rounds": args.rounds,
        "unwatched_pages_per_s": round(statistics.median(off), 2),
        "watched_pages_per_s": round(statistics.median(on), 2),
        "ratio": round(statistics.median(a / b for a, b in zip(on, off, strict=True)), 3),
        "ratio_of_medians": round(statistics.median(on) / statistics.median(off), 3),
        "unwatched_each": [round(x, 2) for x in off],
        "watched_each": [round(x, 2) for x in on],
        "dashboard_polls_each": polls,
    }
    if args.json:
        print(json.dumps(figures))
    else:
        print(f"{args.pages} pages, {args.rounds} rounds (median pages/s)")
        print(f"  no dashboard          : {figures['unwatched_pages_per_s']:7.2f}  {off}")
        print(f"  dashboard open, polled: {figures['watched_pages_per_s']:7.2f}  {on}")
        print(f"  page polls per watched run: {polls}")
        print(f"  ratio watched/unwatched: {figures['ratio']:.3f} (median of rounds)")


if __name__ == "__main__":
    main()
