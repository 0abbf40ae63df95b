"""Crawlee for Python's PlaywrightCrawler on the built-in site (an optional peer).

Walks the reference job's pages as a Crawlee user would: one browser, one page
at a time (the same concurrency as the other loops of ``benchmarks/backends.py``),
the login through the site's form when a page lands on it, the rows read with
one ``page.evaluate`` and stored with ``push_data`` (Crawlee's dataset on disk).
Prints ``{"seconds": S, "records": N}`` as its last line.

    python benchmarks/peers/crawlee_playwright.py http://127.0.0.1:8700 100

Needs ``pip install 'crawlee[playwright]'`` (never ``playwright install``: it
drives Debian's Chromium through ``executable_path``).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import tempfile
import time

from crawlee import ConcurrencySettings, Request
from crawlee.crawlers import PlaywrightCrawler, PlaywrightCrawlingContext

from enduro.session import LAUNCH_FLAGS
from enduro.stress.reference import (
    COLLECT_ROWS_PW,
    DEFAULT_PASSWORD,
    DEFAULT_USER,
    WAIT_READY_PW,
    parse_row,
)


async def crawl(url: str, pages: int) -> tuple[float, int]:
    chromium = shutil.which("chromium")
    assert chromium is not None, "Chromium is not installed"
    crawler = PlaywrightCrawler(
        headless=True,
        browser_type="chromium",
        browser_launch_options={"executable_path": chromium, "args": list(LAUNCH_FLAGS)},
        concurrency_settings=ConcurrencySettings(
            min_concurrency=1, max_concurrency=1, desired_concurrency=1
        ),
        max_request_retries=3,
    )

    @crawler.router.default_handler
    async def handler(ctx: PlaywrightCrawlingContext) -> None:
        page = ctx.page
        if "/login" in page.url:
            await page.fill("#username", DEFAULT_USER)
            await page.fill("#password", DEFAULT_PASSWORD)
            await page.click("#login-button")
            await page.wait_for_function("() => location.pathname !== '/login'")
            await page.goto(ctx.request.url)
        state = await page.evaluate(WAIT_READY_PW)
        if state.get("state") != "ready":
            raise RuntimeError(f"page not ready: {state}")
        key = int(ctx.request.user_data["key"])
        rows = await page.evaluate(COLLECT_ROWS_PW)
        await ctx.push_data([parse_row(row, key) for row in rows])

    requests = [
        Request.from_url(f"{url}/matches?page={key}", user_data={"key": key})
        for key in range(1, pages + 1)
    ]
    began = time.perf_counter()
    await crawler.run(requests)
    seconds = time.perf_counter() - began
    data = await crawler.get_data(limit=pages * 100)
    return seconds, len(data.items)


def main() -> None:
    url, pages = sys.argv[1].rstrip("/"), int(sys.argv[2])
    storage = tempfile.mkdtemp(prefix="bench-crawlee-")
    os.environ["CRAWLEE_STORAGE_DIR"] = storage  # its dataset and queue, thrown away after
    try:
        seconds, records = asyncio.run(crawl(url, pages))
    finally:
        shutil.rmtree(storage, ignore_errors=True)
    print(json.dumps({"seconds": round(seconds, 3), "records": records}))


if __name__ == "__main__":
    main()
