"""Does the Playwright backend keep the browser's memory flat under a handler that
holds element handles?

A job whose handler takes every row as an element handle
(``page.query_selector_all``) and reads them through ``page.evaluate`` — what
grows Chromium's renderer ~1.3 MB a page until a garbage collection
(BROWSER-FACTS.md) — runs N pages through enduro's runner on Playwright with
no planned restarts (so nothing but the collections can flatten it), the
resource monitor sampling the browser's process tree (PSS) every second. Then
the same with the collections off (``browser_gc_every=0``) for comparison.
Prints the PSS after the first 100 pages, the most it reached after them and
at the end, and the ratio (the acceptance bar: within 20%); and the runner's own
RSS (the handles Playwright keeps in this process until their page closes: the
backend takes a fresh page every 250 pages). The collections-off run goes
second, in the same process.

    .venv/bin/python benchmarks/playwright_memory.py --pages 2000
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from enduro.job import PageContext, Record
from enduro.runner import Runner
from enduro.settings import Settings
from enduro.store import Store
from enduro.stress.reference import WAIT_READY_PW, make_job, parse_row
from overhead import make_parser, site_process

MB = 1024 * 1024
READ_HANDLES_JS = """(rows) => rows.map((tr) => {
  const row = {match_id: tr.dataset.matchId};
  for (const td of tr.querySelectorAll('td[data-field]')) row[td.dataset.field] = td.textContent;
  return row;
})"""


def handle_job(url: str, pages: int) -> Any:
    """The reference job, its rows read through element handles."""
    base = make_job(url, pages, backend="playwright")

    def extract(ctx: PageContext) -> list[Record]:
        page = ctx.page
        page.goto(f"{url}/matches?page={ctx.key}")
        if page.evaluate(WAIT_READY_PW).get("state") != "ready":
            raise RuntimeError(f"page {ctx.key} did not render")
        handles = page.query_selector_all("tr.match")
        rows = page.evaluate(READ_HANDLES_JS, handles)
        return [parse_row(row, int(ctx.key)) for row in rows]

    return replace(base, handler=extract)


def measure(url: str, pages: int, gc_every: int) -> dict[str, Any]:
    """Run the pages; the browser PSS the monitor saw, by pages done."""
    store_path = Path(tempfile.mkdtemp(prefix="bench-pw-mem-")) / "mem.db"
    settings = Settings(
        store=store_path,
        backend="playwright",
        browser_gc_every=gc_every,
        restart_every_pages=0,
        restart_max_age=0,
        monitor_interval=1.0,
        alert_browser_pss_mb=100_000,  # no restart on memory: this measures the growth
    )
    with Store.open(store_path) as store:
        result = Runner(handle_job(url, pages), store, settings).run()
        assert result.status == "finished", result
        assert store.record_count() == pages * 50
        found = [s for s in store.samples_after(0, limit=100_000) if s.get("browser_pss")]
        samples = [(int(s["pages"]), s["browser_pss"] / MB) for s in found]
        runner = [(int(s["pages"]), s["runner_rss"] / MB) for s in found]
    after_100 = next(pss for done, pss in samples if done >= 100)
    later = [pss for done, pss in samples if done >= 100]
    return {
        "gc_every": gc_every,
        "pages": pages,
        "samples": len(samples),
        "pss_mb_after_100": round(after_100, 1),
        "pss_mb_max_after_100": round(max(later), 1),
        "pss_mb_at_end": round(samples[-1][1], 1),
        "max_over_first": round(max(later) / after_100, 3),
        # the runner's own memory (this process: the handles Playwright keeps for it)
        "runner_rss_mb_after_100": round(next(rss for done, rss in runner if done >= 100), 1),
        "runner_rss_mb_at_end": round(runner[-1][1], 1),
        "by_pages": [(done, round(pss, 1)) for done, pss in samples[:: max(1, len(samples) // 20)]],
    }


def main() -> None:
    parser = make_parser(__doc__, pages=2000, rounds=1)
    parser.add_argument("--off-pages", type=int, default=600, help="pages with GC off")
    args = parser.parse_args()
    with site_process(max(args.pages, args.off_pages)) as url:
        on = measure(url, args.pages, Settings().browser_gc_every)
        off = measure(url, args.off_pages, 0)
    if args.json:
        print(json.dumps({"gc_on": on, "gc_off": off}))
        return
    for name, figures in (("collections on", on), ("collections off", off)):
        print(
            f"{name:16s}: {figures['pages']} pages, PSS after 100 pages "
            f"{figures['pss_mb_after_100']} MB, most after {figures['pss_mb_max_after_100']} MB,"
            f" at the end {figures['pss_mb_at_end']} MB: max/first {figures['max_over_first']};"
            f" runner RSS {figures['runner_rss_mb_after_100']} MB"
            f" -> {figures['runner_rss_mb_at_end']} MB"
        )
        print(f"{'':16s}  {figures['by_pages']}")


if __name__ == "__main__":
    main()
